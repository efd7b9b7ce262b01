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

fn serve(config: &std::path::Path) -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cfg = Config::load(config)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("loading {}", config.display()))?;
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(async {
        let engine = Engine::start(Arc::new(cfg), SystemClock::shared()).await?;
        println!("boomerang: REST API on http://{}", engine.http_addr);
        tokio::signal::ctrl_c()
            .await
            .context("waiting for Ctrl-C")?;
        engine.shutdown();
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
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
    }
}
