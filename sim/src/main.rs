//! `boomerang-sim`: generates callers and agents to load-test a boomerang configuration.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use boomerang_sim::{Mode, RunOptions, Scenario};
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "boomerang-sim",
    version,
    about = "Load simulator for boomerang"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum ModeArg {
    Virtual,
    Wire,
    Sip,
}

/// Wire mode: SIP against a running engine, in real time.
#[derive(clap::Args)]
struct WireArgs {
    /// The engine's SIP address (UDP), e.g. 127.0.0.1:5060.
    #[arg(long)]
    target: Option<SocketAddr>,
    /// The simulator's SIP address (UDP); the engine's trunk must point here for callbacks.
    #[arg(long, default_value = "127.0.0.1:5090")]
    local: SocketAddr,
    /// REGISTER the scenario's agents that the engine configuration gives a `sip_user`.
    #[arg(long)]
    register: bool,
    /// Arrivals this many times faster than the scenario.
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// Calls up at once at most.
    #[arg(long, default_value_t = 1000)]
    max_concurrent: usize,
    /// New calls per second at most.
    #[arg(long)]
    max_rate: Option<f64>,
    /// Only the first N callers.
    #[arg(long)]
    max_calls: Option<usize>,
    /// Seconds from answer to the first key.
    #[arg(long, default_value_t = 2.5)]
    digit_delay: f64,
    /// Seconds between keys.
    #[arg(long, default_value_t = 2.5)]
    digit_gap: f64,
    /// Seconds without a final response before a call counts as failed.
    #[arg(long, default_value_t = 32.0)]
    setup_timeout: f64,
    /// Seconds phones ring before answering.
    #[arg(long, default_value_t = 0.5)]
    ring: f64,
    /// After the last caller, seconds to keep serving callbacks and agents' calls.
    #[arg(long, default_value_t = 60.0)]
    drain: f64,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs a scenario and prints its report.
    Run {
        /// Scenario file.
        scenario: PathBuf,
        /// Writes the report as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Also writes every caller's record into the JSON.
        #[arg(long)]
        calls: bool,
        /// Writes SVG plots into this directory.
        #[arg(long)]
        svg_dir: Option<PathBuf>,
        /// Seed replacing the scenario's.
        #[arg(long)]
        seed: Option<u64>,
        /// Virtual (engine code in-process, virtual time), sip (the same with callers and agents
        /// as SIP user agents talking to the engine's user agent in-process, no sockets) or wire
        /// (SIP against a running engine, real time).
        #[arg(long, value_enum, default_value = "virtual")]
        mode: ModeArg,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
        #[command(flatten)]
        wire: Box<WireArgs>,
    },
    /// Validates a scenario and the engine configuration and flows it uses.
    Check {
        /// Scenario file.
        scenario: PathBuf,
    },
}

fn load(path: &Path) -> Result<Scenario> {
    Scenario::load(path).map_err(|e| anyhow::anyhow!("{e}"))
}

fn main() -> std::process::ExitCode {
    match real_main(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn real_main(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Check { scenario } => {
            let s = load(&scenario)?;
            let tmp = tempfile::tempdir()?;
            let config = boomerang_sim::run::build_config(&s, tmp.path())?;
            boomerang_sim::run::check_against(&s, &config)?;
            let arrivals = boomerang_sim::run::arrivals(&s, s.spec.seed)?;
            println!(
                "{}: ok ({} agents, about {} callers)",
                scenario.display(),
                boomerang_sim::run::agent_plan(&s).len(),
                arrivals.len()
            );
        }
        Cmd::Run {
            scenario,
            json,
            calls,
            svg_dir,
            seed,
            mode,
            quiet,
            wire,
        } => {
            let s = load(&scenario)?;
            let opts = RunOptions {
                seed,
                progress: !quiet,
                mode: match mode {
                    ModeArg::Virtual => Mode::Virtual,
                    ModeArg::Wire => Mode::Wire,
                    ModeArg::Sip => Mode::Sip,
                },
                wire: boomerang_sim::WireOptions {
                    target: wire.target,
                    local: wire.local,
                    register: wire.register,
                    speed: wire.speed,
                    max_concurrent: wire.max_concurrent,
                    max_rate: wire.max_rate,
                    max_calls: wire.max_calls,
                    digit_delay: wire.digit_delay,
                    digit_gap: wire.digit_gap,
                    setup_timeout: wire.setup_timeout,
                    ring: wire.ring,
                    drain: wire.drain,
                    ..boomerang_sim::WireOptions::default()
                },
            };
            let report = boomerang_sim::run(&s, &opts)?;
            print!("{}", report.table());
            if let Some(path) = json {
                let mut v = serde_json::to_value(&report)?;
                if calls && let Some(o) = v.as_object_mut() {
                    o.insert("calls".into(), serde_json::to_value(&report.calls)?);
                }
                std::fs::write(&path, serde_json::to_string_pretty(&v)?)
                    .with_context(|| format!("writing {}", path.display()))?;
                println!("report written to {}", path.display());
            }
            if let Some(dir) = svg_dir {
                for p in report
                    .write_svgs(&dir)
                    .with_context(|| format!("writing plots into {}", dir.display()))?
                {
                    println!("plot written to {}", p.display());
                }
            }
        }
    }
    Ok(())
}
