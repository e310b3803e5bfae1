//! Log output: text or JSON lines, to stderr or to a file in a folder rotated daily.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::cli::LogFormat;

/// File names in a log folder: `bakfleet.YYYY-MM-DD.log`, one file per UTC day.
const FILE_PREFIX: &str = "bakfleet";
const FILE_SUFFIX: &str = "log";

/// Destination and format of log lines.
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// The level for bakfleet's own events; `RUST_LOG`, when set, replaces the filter.
    pub level: String,
    pub format: LogFormat,
    /// A folder for daily files; `None` writes to stderr.
    pub dir: Option<PathBuf>,
}

/// The log output could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error("cannot open a log file in {dir}: {source}; check that the folder exists or can be created and that this user may write to it")]
    LogDir {
        dir: PathBuf,
        source: tracing_appender::rolling::InitError,
    },
    #[error("cannot install the logger: {0}")]
    Install(#[from] tracing_subscriber::util::TryInitError),
}

/// Installs the process's logger, and the layer that copies each run's events to its run
/// log (see [`crate::run_log`]). tiberius warns on every unencrypted connection, so its
/// events are kept to errors unless `RUST_LOG` sets another level; `check` reports the TLS
/// setting once instead.
///
/// # Errors
/// [`LoggingError`] when the log folder cannot be written or a logger is installed already.
pub fn init(settings: &LogSettings) -> Result<(), LoggingError> {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{},tiberius=error,sqlx=warn", settings.level)));
    let layer = match &settings.dir {
        Some(dir) => {
            let appender = open_daily_file(dir)?;
            format_layer(settings.format, appender, false)
        }
        None => {
            let ansi = std::io::stderr().is_terminal();
            format_layer(settings.format, std::io::stderr, ansi)
        }
    };
    let run_log = crate::run_log::RunLogLayer.with_filter(EnvFilter::new(crate::run_log::FILTER));
    tracing_subscriber::registry()
        .with(layer.with_filter(filter))
        .with(run_log)
        .try_init()?;
    Ok(())
}

/// Opens the appender that starts a new file at each UTC midnight. Old files are kept;
/// deleting them is left to logrotate, a timer or the operator.
fn open_daily_file(dir: &Path) -> Result<RollingFileAppender, LoggingError> {
    RollingFileAppender::builder()
        .rotation(Rotation::DAILY)
        .filename_prefix(FILE_PREFIX)
        .filename_suffix(FILE_SUFFIX)
        .build(dir)
        .map_err(|source| LoggingError::LogDir {
            dir: dir.to_path_buf(),
            source,
        })
}

/// Builds the formatting layer for `format`, writing through `writer`.
fn format_layer<W>(
    format: LogFormat,
    writer: W,
    ansi: bool,
) -> Box<dyn Layer<Registry> + Send + Sync>
where
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    let layer = tracing_subscriber::fmt::layer().with_writer(writer);
    match format {
        LogFormat::Text => layer.with_ansi(ansi).boxed(),
        // Each line is one object: `level`, `fields` (with `message`), `target`, and the
        // fields of the current span (`span`) and of every open span (`spans`).
        LogFormat::Json => layer
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .boxed(),
    }
}
