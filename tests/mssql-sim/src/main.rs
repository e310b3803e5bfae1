//! `mssql-sim --config FILE [--statement-log FILE]`: runs the simulated SQL Server
//! instances until SIGTERM or SIGINT, printing `listening NAME ADDR` per instance.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context};
use mssql_sim::server::{start_with, StartOptions};
use mssql_sim::SimConfig;
use tokio::signal::unix::{signal, SignalKind};

const USAGE: &str = "usage: mssql-sim --config FILE [--statement-log FILE]

  --config FILE          TOML file with one [[instance]] table per simulated SQL Server
  --statement-log FILE   append every batch received to FILE, each followed by GO";

/// Command-line arguments.
struct Arguments {
    config: PathBuf,
    statement_log: Option<PathBuf>,
}

fn parse_arguments() -> anyhow::Result<Option<Arguments>> {
    let mut config = None;
    let mut statement_log = None;
    let mut arguments = std::env::args_os().skip(1);
    while let Some(argument) = arguments.next() {
        match argument.to_str() {
            Some("--config") => config = arguments.next().map(PathBuf::from),
            Some("--statement-log") => statement_log = arguments.next().map(PathBuf::from),
            Some("--help") | Some("-h") => return Ok(None),
            _ => bail!("unknown argument {argument:?}\n{USAGE}"),
        }
    }
    let Some(config) = config else {
        bail!("--config FILE is required\n{USAGE}");
    };
    Ok(Some(Arguments {
        config,
        statement_log,
    }))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();

    let Some(arguments) = parse_arguments()? else {
        println!("{USAGE}");
        return Ok(());
    };
    let config = SimConfig::load(&arguments.config)
        .with_context(|| format!("reading {} failed", arguments.config.display()))?;
    let options = StartOptions {
        statement_log: arguments.statement_log,
    };

    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler failed")?;
    let mut interrupt =
        signal(SignalKind::interrupt()).context("installing the SIGINT handler failed")?;
    let simulator = start_with(config, options).await?;

    let mut stdout = std::io::stdout().lock();
    for (name, addr) in simulator.instances() {
        writeln!(stdout, "listening {name} {addr}")?;
    }
    stdout.flush()?;
    drop(stdout);

    tokio::select! {
        _ = terminate.recv() => tracing::info!("SIGTERM received; stopping"),
        _ = interrupt.recv() => tracing::info!("SIGINT received; stopping"),
    }
    simulator.shutdown().await;
    Ok(())
}
