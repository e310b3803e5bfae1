//! The `bakfleet` command.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use bakfleet::cli::{self, Cli};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    #[cfg(feature = "demo")]
    if matches!(cli.command, cli::Command::Demo { .. }) {
        // Before the runtime starts threads: the environment is process-wide.
        cli::prepare_demo_environment();
    }

    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::execute(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr so that a command's report on stdout stays clean. tiberius warns on
/// every unencrypted connection; `check` reports the TLS setting once instead.
fn init_logging(cli: &Cli) {
    let level = cli.log_level.as_deref().unwrap_or(cli.default_log_level());
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{level},tiberius=error,sqlx=warn")));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
