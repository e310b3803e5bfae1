//! The command line: one file per command.

mod api;
mod check;
mod config;
mod connectivity;
#[cfg(feature = "demo")]
mod demo;
mod drill;
pub mod import;
mod inspect;
#[cfg(feature = "demo")]
pub use demo::prepare_demo_environment;
mod list;
mod output;
pub mod prune;
pub mod restore_plan;
mod run;
mod serve;
pub mod token;
pub mod user;
mod verify;

#[cfg(feature = "demo")]
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::backup::BackupType;
use crate::mssql::transcript;

/// Agentless backups of SQL Server fleets, pulled to one central store.
#[derive(Debug, Parser)]
#[command(name = "bakfleet", version, about, long_about = None)]
pub struct Cli {
    /// The fleet inventory file.
    #[arg(
        long,
        short = 'f',
        global = true,
        env = "BAKFLEET_FLEET",
        default_value = "fleet.toml"
    )]
    pub fleet: PathBuf,

    /// Log level: error, warn, info, debug or trace. RUST_LOG, when set, takes precedence.
    #[arg(
        long,
        global = true,
        value_parser = ["error", "warn", "info", "debug", "trace"]
    )]
    pub log_level: Option<String>,

    /// Log line format: `text` for people, `json` for one JSON object per line.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Write logs to files in this folder, one per UTC day (bakfleet.YYYY-MM-DD.log),
    /// and not to stderr.
    #[arg(long, global = true, value_name = "DIR")]
    pub log_dir: Option<PathBuf>,

    /// Seconds that running jobs get to finish after SIGTERM or Ctrl-C before they are
    /// cancelled at their next stage boundary (serve and run).
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = crate::shutdown::DEFAULT_GRACE_SECS)]
    pub grace: u64,

    #[command(subcommand)]
    pub command: Command,
}

/// The format of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One line of text per event, for terminals and journald.
    Text,
    /// One JSON object per event, for log collectors.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the scheduler and the admin site until stopped.
    Serve,
    /// Back up now: every selected database, one instance's, or one database.
    Run {
        /// Instance name from the fleet file; all instances when left out.
        instance: Option<String>,
        /// Exact database name; every selected database of the instance when left out.
        database: Option<String>,
        /// Backup type: full, diff or log.
        #[arg(long = "type", short = 't', default_value = "full")]
        backup_type: BackupType,
    },
    /// Validate the fleet file, check that every secret resolves, and print what it defines.
    Check {
        /// Also reach the catalogue, the store, every instance and every staging folder,
        /// one line per check. Exit code 0 all passed, 1 warnings, 2 a check failed, 3
        /// the fleet file could not be read.
        #[arg(long)]
        connect: bool,
    },
    /// Show every catalogued database and its last good backup per type.
    List,
    /// Restore the latest chain of a database on the [drill] sandbox instance under a new
    /// name, run DBCC CHECKDB on it and drop it; the outcome is recorded on the backups.
    Drill {
        /// Instance name from the fleet file.
        instance: String,
        /// Exact database name.
        database: String,
    },
    /// Check the store against the catalogue: missing, changed or damaged backup files,
    /// and files no backup names. Exit code 0 ok, 1 uncatalogued files, 2 damaged or
    /// missing backups, 3 the check could not run.
    Verify {
        /// Check only this instance's backups and store folder.
        instance: Option<String>,
        /// Check only this database of the instance.
        database: Option<String>,
        /// Compare sizes only, without reading the files.
        #[arg(long, conflicts_with = "structure")]
        quick: bool,
        /// Also read each file's backup structure and checksums.
        #[arg(long)]
        structure: bool,
    },
    /// Compare two transcripts of statements and replies, taken with BAKFLEET_TRANSCRIPT
    /// set, one against a real SQL Server and one against the simulator.
    TranscriptDiff {
        /// The transcript taken against the real server.
        expected: PathBuf,
        /// The transcript taken against the simulator.
        actual: PathBuf,
    },
    /// Print the backup set headers of SQL Server backup files.
    Inspect {
        /// Backup files (.bak, .trn) to read.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Catalogue existing backup files found under a folder, such as an Ola Hallengren tree.
    Import {
        /// Folder to walk recursively.
        dir: PathBuf,
        /// Instance name to catalogue the backups under.
        #[arg(long)]
        instance: String,
        /// Catalogue only backups of this database.
        #[arg(long)]
        database: Option<String>,
        /// Copy each file into the store; without it the file is catalogued where it is.
        #[arg(long)]
        copy: bool,
    },
    /// Print the backups that restore a database to a point in time, and the T-SQL
    /// script that applies them.
    RestorePlan {
        /// Instance name as the catalogue records it.
        instance: String,
        /// Exact database name.
        database: String,
        /// Time to restore to: RFC 3339 (2026-03-01T10:15:00+01:00), or
        /// "YYYY-MM-DD HH:MM[:SS]" taken as UTC. Latest restorable point when left out.
        #[arg(long)]
        at: Option<String>,
        /// Restore under this database name; MOVE clauses give its files new names.
        #[arg(long = "as")]
        restore_as: Option<String>,
        /// Server folder for the restored database files (MOVE clauses).
        #[arg(long)]
        move_to: Option<String>,
        /// Add REPLACE, which overwrites an existing database of the target name and
        /// skips SQL Server's tail-log check.
        #[arg(long)]
        replace: bool,
        /// Output: the T-SQL script, or JSON with the chain and restorable windows.
        #[arg(long, value_enum, default_value = "sql")]
        format: restore_plan::PlanFormat,
    },
    /// Delete backups that retention no longer keeps, and print why each is kept or deleted.
    Prune {
        /// Print the verdicts and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print the fleet.toml reference (Markdown) or its JSON schema.
    #[command(hide = true)]
    Config {
        #[command(subcommand)]
        output: config::ConfigOutput,
    },
    /// Manage the admin site's users: add, list, remove, passwd.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Manage the JSON API's bearer tokens: add, list, remove.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Print descriptions of the JSON API, such as its OpenAPI document.
    #[command(hide = true)]
    Api {
        #[command(subcommand)]
        output: api::ApiOutput,
    },
    /// Start a simulated fleet, back it up, and serve the admin site.
    #[cfg(feature = "demo")]
    Demo {
        /// Run one backup cycle, print the catalogued backups and exit.
        #[arg(long)]
        once: bool,
        /// Folder for the demo's store, catalogue and staging folders.
        #[arg(long, default_value = "demo-data")]
        data_dir: PathBuf,
        /// Address of the admin site; loopback only.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
    },
}

impl Cli {
    /// Returns the command's default log level. Commands that print their own report log
    /// only warnings, and the service logs every step.
    pub fn default_log_level(&self) -> &'static str {
        match self.command {
            Command::Serve => "info",
            _ => "warn",
        }
    }
}

/// Prints the differences between two transcripts; exits 1 when there are any.
fn transcript_diff(expected: &Path, actual: &Path) -> anyhow::Result<ExitCode> {
    let expected_entries = transcript::load(expected)?;
    let actual_entries = transcript::load(actual)?;
    let differences = transcript::diff(&expected_entries, &actual_entries);
    for difference in &differences {
        println!("{difference}");
    }
    println!(
        "{} difference(s) between {} and {} ({} and {} entries)",
        differences.len(),
        expected.display(),
        actual.display(),
        expected_entries.len(),
        actual_entries.len()
    );
    Ok(if differences.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs the parsed command.
///
/// # Errors
/// Whatever the command reports; `main` prints it with its causes.
pub async fn execute(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve => serve::execute(&cli.fleet, Duration::from_secs(cli.grace)).await,
        Command::Run {
            instance,
            database,
            backup_type,
        } => {
            run::execute(
                &cli.fleet,
                instance.as_deref(),
                database.as_deref(),
                backup_type,
                Duration::from_secs(cli.grace),
            )
            .await
        }
        Command::Check { connect: false } => check::execute(&cli.fleet),
        Command::Check { connect: true } => Ok(connectivity::execute(&cli.fleet).await),
        Command::List => list::execute(&cli.fleet).await,
        Command::Drill { instance, database } => {
            drill::execute(&cli.fleet, &instance, &database).await
        }
        Command::Verify {
            instance,
            database,
            quick,
            structure,
        } => {
            let depth = if quick {
                crate::integrity::Depth::Size
            } else if structure {
                crate::integrity::Depth::Structure
            } else {
                crate::integrity::Depth::Hash
            };
            let scope = crate::integrity::Scope { instance, database };
            Ok(verify::execute(&cli.fleet, scope, depth).await)
        }
        Command::TranscriptDiff { expected, actual } => transcript_diff(&expected, &actual),
        Command::Inspect { files, json } => inspect::execute(&files, json),
        Command::Import {
            dir,
            instance,
            database,
            copy,
        } => {
            let options = import::ImportOptions {
                dir,
                instance,
                database,
                copy,
            };
            import::execute(&cli.fleet, options).await
        }
        Command::RestorePlan {
            instance,
            database,
            at,
            restore_as,
            move_to,
            replace,
            format,
        } => {
            let request = restore_plan::PlanRequest {
                instance,
                database,
                at,
                options: crate::restore_script::ScriptOptions {
                    restore_as,
                    move_to,
                    replace,
                },
                format,
            };
            restore_plan::execute(&cli.fleet, request).await
        }
        Command::Prune { dry_run } => prune::execute(&cli.fleet, dry_run).await,
        Command::Config { output } => config::execute(output),
        Command::User(command) => user::execute(&cli.fleet, command).await,
        Command::Token(command) => token::execute(&cli.fleet, command).await,
        Command::Api { output } => api::execute(output),
        #[cfg(feature = "demo")]
        Command::Demo {
            once,
            data_dir,
            listen,
        } => demo::execute(&data_dir, listen, once).await,
    }
}
