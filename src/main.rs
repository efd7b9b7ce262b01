//! The `boomerang` command: serve, check-config, check-flows, schema.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use std::sync::Arc;

use boomerang::clock::SystemClock;
use boomerang::config::Config;
use boomerang::engine::Engine;

/// SIP IVR, virtual queues, skill routing and customer callbacks in one engine.
#[derive(Parser)]
#[command(name = "boomerang", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the engine.
    Serve {
        /// Engine configuration file.
        #[arg(long, default_value = "boomerang.yaml")]
        config: PathBuf,
    },
    /// Validate a configuration file and print every problem with its line and column.
    CheckConfig {
        /// Engine configuration file.
        #[arg(default_value = "boomerang.yaml")]
        file: PathBuf,
    },
    /// Validate IVR flow files (default: every file in the configured flows directory) against
    /// the configuration's queues and prompts; prints every problem with file:line:column.
    CheckFlows {
        /// Flow files or directories.
        paths: Vec<PathBuf>,
        /// Engine configuration file (queues, business hours, prompt directory).
        #[arg(long, default_value = "boomerang.yaml")]
        config: PathBuf,
    },
    /// Read a password from standard input (one line) and print its Argon2id hash, for
    /// `admin.users[].password_hash` in the configuration.
    HashPassword,
    /// Print a JSON Schema.
    Schema {
        /// What to describe.
        #[arg(value_enum)]
        what: SchemaKind,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum SchemaKind {
    /// An IVR flow file.
    Flow,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Raises the soft limit on open descriptors to the hard one, so the HTTP connection caps
/// (`api.max_connections`, default 4096), not a 1024 default, bound the connections.
fn raise_descriptor_limit() {
    #[cfg(unix)]
    // SAFETY: getrlimit/setrlimit read and write the plain struct passed by pointer.
    unsafe {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 {
            // An unlimited hard limit is not a valid soft one (the kernel caps descriptors).
            let want = r.rlim_max.min(1 << 20);
            if r.rlim_cur < want {
                r.rlim_cur = want;
                libc::setrlimit(libc::RLIMIT_NOFILE, &r);
            }
        }
    }
}

fn serve(config: &std::path::Path) -> anyhow::Result<ExitCode> {
    boomerang::ops::heap::return_large_allocations();
    raise_descriptor_limit();
    let cfg = Config::load(config)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("loading {}", config.display()))?;
    boomerang::ops::logging::init(cfg.spec.logging.format);
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    let cfg = Arc::new(cfg);
    runtime.block_on(async {
        // Installed first, so a SIGTERM during start-up is handled, not fatal.
        let mut signals = Signals::install()?;
        let engine = Engine::start(cfg.clone(), SystemClock::shared()).await?;
        let mut lines = vec![format!(
            "boomerang: REST API on http://{}",
            engine.http_addr
        )];
        lines.extend(
            engine
                .metrics_addr
                .map(|a| format!("boomerang: metrics on http://{a}")),
        );
        lines.extend(
            engine
                .sip
                .udp
                .iter()
                .map(|a| format!("boomerang: SIP on udp {a}")),
        );
        lines.extend(
            engine
                .sip
                .tcp
                .iter()
                .map(|a| format!("boomerang: SIP on tcp {a}")),
        );
        announce(&lines);
        // SIGHUP reloads the configuration (an invalid file changes nothing and says why).
        let first = loop {
            match signals.next().await {
                "SIGHUP" => {
                    let _ = engine.reload().await;
                }
                stop => break stop,
            }
        };
        tracing::info!(
            signal = first,
            drain_seconds = cfg.spec.shutdown.drain_seconds,
            "shutting down gracefully (a second signal exits at once)"
        );
        tokio::select! {
            report = engine.drain(&cfg) => {
                tracing::info!(
                    calls = report.calls_at_start,
                    ended_by_themselves = report.calls_at_start.saturating_sub(report.hung_up),
                    hung_up = report.hung_up,
                    drained_ms = report.drained_for.as_millis() as u64,
                    store_flushed = report.store_flushed,
                    tasks_stopped = report.tasks_stopped,
                    "shutdown complete"
                );
                Ok::<_, anyhow::Error>(ExitCode::SUCCESS)
            }
            second = signals.next_stop() => {
                tracing::warn!(signal = second, "second signal: exiting at once");
                // Live calls and tasks are cut; the store's acknowledged writes are on disk.
                std::process::exit(1);
            }
        }
    })
}

/// Prints the listener lines, best effort: a reader that went away (`serve | head -1`, a
/// supervisor that stopped reading) must not take a running engine down, as `println!` would.
fn announce(lines: &[String]) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for line in lines {
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            return;
        }
    }
}

/// SIGTERM and SIGINT, which start a graceful shutdown (and a second one ends it at once), and
/// SIGHUP, which reloads the configuration (ignored once a shutdown started).
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            hup: signal(SignalKind::hangup()).context("installing the SIGHUP handler")?,
        })
    }

    /// Waits for the next SIGTERM, SIGINT or SIGHUP; its name.
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
            _ = self.hup.recv() => "SIGHUP",
        }
    }

    /// Waits for the next SIGTERM or SIGINT (a SIGHUP while draining is logged and ignored).
    async fn next_stop(&mut self) -> &'static str {
        loop {
            match self.next().await {
                "SIGHUP" => tracing::warn!("SIGHUP ignored: shutting down"),
                stop => return stop,
            }
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::CheckConfig { file } => match Config::load(&file) {
            Ok(cfg) => {
                println!(
                    "{}: ok ({} route points, {} queues, {} agents, {} trunks)",
                    file.display(),
                    cfg.spec.route_points.len(),
                    cfg.spec.queues.len(),
                    cfg.spec.agents.len(),
                    cfg.spec.trunks.len()
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(errors) => {
                eprintln!("{errors}");
                eprintln!(
                    "{} problem(s) in {}",
                    errors.diagnostics.len(),
                    file.display()
                );
                Ok(ExitCode::FAILURE)
            }
        },
        Command::Serve { config } => serve(&config),
        Command::CheckFlows { paths, config } => check_flows(&paths, &config),
        Command::HashPassword => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("reading the password from standard input")?;
            let password = line.trim_end_matches(['\r', '\n']);
            if password.is_empty() {
                anyhow::bail!("the password is empty");
            }
            let hash = boomerang::api::admin::auth::hash_password(password)?;
            println!("{hash}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Schema {
            what: SchemaKind::Flow,
        } => {
            println!(
                "{}",
                serde_json::to_string_pretty(&boomerang::flow::model::schema())?
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn check_flows(paths: &[PathBuf], config: &std::path::Path) -> anyhow::Result<ExitCode> {
    let cfg = Config::load(config)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("loading {}", config.display()))?;
    let prompts = boomerang::flow::load::prompt_names(&cfg.prompts_dir());
    let ctx = boomerang::flow::LoadContext {
        config: &cfg,
        prompts: Some(&prompts),
    };
    let targets = if paths.is_empty() {
        vec![cfg.flows_dir()]
    } else {
        paths.to_vec()
    };
    let (mut ok, mut bad) = (0usize, 0usize);
    for t in targets {
        let (flows, errors) = if t.is_dir() {
            boomerang::flow::load_dir(&t, &ctx)
        } else {
            match boomerang::flow::load_file(&t, &ctx) {
                Ok(f) => (vec![f], vec![]),
                Err(e) => (vec![], vec![e]),
            }
        };
        for f in &flows {
            println!(
                "{}: ok ({} application `{}`, {} blocks)",
                f.file.display(),
                format!("{:?}", f.kind).to_lowercase(),
                f.name,
                f.blocks.len()
            );
        }
        for e in &errors {
            eprintln!("{e}");
        }
        ok += flows.len();
        bad += errors.len();
    }
    if bad > 0 {
        eprintln!("{bad} file(s) with problems, {ok} ok");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
