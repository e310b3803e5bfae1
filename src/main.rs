//! The `bakfleet` command.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use bakfleet::cli::{self, Cli};
use bakfleet::logging;

/// The crate version and the git revision it was built from, set by build.rs.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("BAKFLEET_GIT_REVISION"),
    ")"
);

fn main() -> ExitCode {
    let cli = parse_arguments();
    if let Err(error) = init_logging(&cli) {
        eprintln!("error: {error}");
        return ExitCode::FAILURE;
    }
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

/// Parses the command line; `--version` prints [`VERSION`].
fn parse_arguments() -> Cli {
    let matches = Cli::command().version(VERSION).get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit())
}

/// Installs the logger the flags ask for. Logs go to stderr, or to files with `--log-dir`,
/// so that a command's report on stdout stays clean.
fn init_logging(cli: &Cli) -> Result<(), logging::LoggingError> {
    let level = cli.log_level.as_deref().unwrap_or(cli.default_log_level());
    let settings = logging::LogSettings {
        level: level.to_string(),
        format: cli.log_format,
        dir: cli.log_dir.clone(),
    };
    logging::init(&settings)
}
