//! `bakfleet check --connect`: reaches the catalogue, the store, every instance and every
//! staging folder, and prints one line per check with monitoring exit codes.

use std::fmt;
use std::path::Path;
use std::process::ExitCode;

use futures_util::stream::{self, StreamExt};

use crate::catalog::Catalog;
use crate::fleet::{Fleet, Instance, Secrets};
use crate::job::{connect_settings, open_source};
use crate::mssql::Connection;
use crate::store::Store;
use crate::transfer::TransferError;

/// Instances checked at once: enough that a fleet with a few unreachable hosts does not
/// wait out their timeouts one after the other.
const PARALLEL_INSTANCES: usize = 8;

/// The outcome of one check, in the order monitoring systems rank them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Status {
    Ok,
    Warning,
    Critical,
}

impl Status {
    fn exit_code(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Warning => 1,
            Status::Critical => 2,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad` applies the width and alignment of the report columns.
        f.pad(match self {
            Status::Ok => "OK",
            Status::Warning => "WARNING",
            Status::Critical => "CRITICAL",
        })
    }
}

/// One printed line: the subject checked and the outcome.
struct Line {
    status: Status,
    subject: String,
    detail: String,
}

impl Line {
    fn new(status: Status, subject: impl Into<String>, detail: impl Into<String>) -> Line {
        Line {
            status,
            subject: subject.into(),
            detail: detail.into(),
        }
    }
}

/// Runs every check and prints them. Exit code 0 when all passed, 1 with warnings only,
/// 2 when a check failed, 3 when the fleet file or secrets file cannot be read.
pub(crate) async fn execute(fleet_path: &Path) -> ExitCode {
    let (fleet, secrets) = match load(fleet_path) {
        Ok(loaded) => loaded,
        Err(error) => {
            println!("UNKNOWN  {}: {error:#}", fleet_path.display());
            return ExitCode::from(3);
        }
    };
    let mut lines = vec![check_catalog(&fleet).await, check_store(&fleet)];
    let instance_lines: Vec<Vec<Line>> = stream::iter(&fleet.instances)
        .map(|instance| check_instance(&fleet, &secrets, instance))
        .buffered(PARALLEL_INSTANCES)
        .collect()
        .await;
    lines.extend(instance_lines.into_iter().flatten());
    lines.extend(check_alert_email(&fleet, &secrets).await);

    for line in &lines {
        println!("{:<8} {}: {}", line.status, line.subject, line.detail);
    }
    let worst = lines
        .iter()
        .map(|line| line.status)
        .max()
        .unwrap_or(Status::Ok);
    let failed = lines
        .iter()
        .filter(|l| l.status == Status::Critical)
        .count();
    let warned = lines.iter().filter(|l| l.status == Status::Warning).count();
    println!(
        "{worst}: {} checks, {failed} failed, {warned} warnings",
        lines.len()
    );
    ExitCode::from(worst.exit_code())
}

fn load(fleet_path: &Path) -> anyhow::Result<(Fleet, Secrets)> {
    let fleet = Fleet::load(fleet_path)?;
    let secrets = Secrets::load(&fleet.service)?;
    Ok((fleet, secrets))
}

async fn check_catalog(fleet: &Fleet) -> Line {
    let path = &fleet.service.catalog;
    let subject = format!("catalogue {}", path.display());
    let opened = match Catalog::open(path).await {
        Ok(catalog) => catalog,
        Err(error) => return Line::new(Status::Critical, subject, error.to_string()),
    };
    match opened.ping().await {
        Ok(()) => Line::new(Status::Ok, subject, "opened, schema up to date"),
        Err(error) => Line::new(Status::Critical, subject, error.to_string()),
    }
}

/// Writes, syncs and removes a small file in the store root, and reports the free space.
fn check_store(fleet: &Fleet) -> Line {
    let root = &fleet.service.store_dir;
    let subject = format!("store {}", root.display());
    if let Err(error) = Store::open(root) {
        return Line::new(Status::Critical, subject, error.to_string());
    }
    let probe = root.join(format!(".bakfleet-check-{}", uuid::Uuid::new_v4().simple()));
    let written = write_probe(&probe);
    let removed = std::fs::remove_file(&probe);
    if let Err(error) = written.and(removed) {
        let detail = format!(
            "cannot write, sync and remove {}: {error}; check the folder's owner and mode",
            probe.display()
        );
        return Line::new(Status::Critical, subject, detail);
    }
    match free_bytes(root) {
        Some(free) => Line::new(
            Status::Ok,
            subject,
            format!("writable, {} free", super::output::human_bytes(free)),
        ),
        None => Line::new(Status::Ok, subject, "writable"),
    }
}

fn write_probe(path: &Path) -> std::io::Result<()> {
    use std::io::Write;

    let mut file = std::fs::File::create_new(path)?;
    file.write_all(b"bakfleet store check\n")?;
    file.sync_all()
}

/// Returns the bytes available to this user on the file system of `path`.
fn free_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;

    let text = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: `statvfs` is plain data that the call fills in, and `text` is a valid C string.
    let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
    let result = unsafe { libc::statvfs(text.as_ptr(), &mut stats) };
    (result == 0).then(|| stats.f_bavail as u64 * stats.f_frsize as u64)
}

async fn check_instance(fleet: &Fleet, secrets: &Secrets, instance: &Instance) -> Vec<Line> {
    let (line, databases) = check_sql(secrets, instance).await;
    let mut lines = vec![line];
    if let Some(databases) = databases {
        lines.extend(selection_warnings(instance, &databases));
    }
    if let Some(line) = tls_warning(instance) {
        lines.push(line);
    }
    lines.push(check_staging(fleet, secrets, instance).await);
    lines
}

/// Logs in and reads the server facts and the database names, which the selection
/// checks use; the names are `None` when the login failed.
async fn check_sql(secrets: &Secrets, instance: &Instance) -> (Line, Option<Vec<String>>) {
    let subject = format!(
        "instance {} ({}:{})",
        instance.name, instance.host, instance.port
    );
    let failed = |error: String| (Line::new(Status::Critical, subject.clone(), error), None);
    let settings = match connect_settings(instance, secrets, Some(instance.connect_timeout)) {
        Ok(settings) => settings,
        Err(error) => return failed(error.to_string()),
    };
    let mut connection = match Connection::open(&settings).await {
        Ok(connection) => connection,
        Err(error) => return failed(error.to_string()),
    };
    let facts = match connection.server_facts().await {
        Ok(facts) => facts,
        Err(error) => return failed(error.to_string()),
    };
    let databases = match connection.databases().await {
        Ok(databases) => databases
            .into_iter()
            .map(|database| database.name)
            .collect(),
        Err(error) => return failed(error.to_string()),
    };
    let detail = format!(
        "logged in as {}; {} {} ({})",
        settings.user, facts.server_name, facts.product_version, facts.edition
    );
    (Line::new(Status::Ok, subject, detail), Some(databases))
}

/// Warns when the instance's `databases` selects no database on the server, and when a
/// `database_policies` entry matches none of the selected ones: a mistyped pattern would
/// otherwise leave databases under another policy without a word.
fn selection_warnings(instance: &Instance, databases: &[String]) -> Vec<Line> {
    let selected: Vec<&String> = databases
        .iter()
        .filter(|name| instance.databases.selects(name))
        .collect();
    let mut lines = Vec::new();
    if selected.is_empty() {
        lines.push(Line::new(
            Status::Warning,
            format!("instance {} databases", instance.name),
            format!(
                "include {:?} selects none of the {} databases on the server",
                instance.databases.include_patterns(),
                databases.len()
            ),
        ));
    }
    for (index, entry) in instance.database_policies.iter().enumerate() {
        if !selected.iter().any(|name| entry.databases.selects(name)) {
            lines.push(Line::new(
                Status::Warning,
                format!("instance {} database_policies[{index}]", instance.name),
                format!(
                    "databases {:?} (policy {}) match no selected database; patterns use * \
                     and ?, not regular expressions",
                    entry.databases.include_patterns(),
                    entry.policy.name
                ),
            ));
        }
    }
    lines
}

/// Returns a warning for TLS settings that leave the connection open to reading or to a
/// forged server.
fn tls_warning(instance: &Instance) -> Option<Line> {
    let subject = format!("instance {} TLS", instance.name);
    let warnings = instance.tls_warnings();
    if warnings.is_empty() {
        return None;
    }
    Some(Line::new(Status::Warning, subject, warnings.join(". ")))
}

async fn check_staging(fleet: &Fleet, secrets: &Secrets, instance: &Instance) -> Line {
    let subject = format!(
        "instance {} staging {}",
        instance.name,
        instance.staging.describe()
    );
    let source = match open_source(fleet, secrets, instance).await {
        Ok(source) => source,
        Err(error) => return Line::new(Status::Critical, subject, format!("{error:#}")),
    };
    let folder = instance.staging.fetch_dir();
    match source.check_folder(&folder).await {
        Ok(()) => Line::new(Status::Ok, subject, "folder listed"),
        Err(TransferError::NotFound { location, path }) => Line::new(
            Status::Critical,
            subject,
            format!(
                "{location}: folder {path:?} not found; create it, or correct the staging \
                 setting in fleet.toml"
            ),
        ),
        Err(error) => Line::new(Status::Critical, subject, error.to_string()),
    }
}

/// Opens an SMTP session to the alert e-mail server with its TLS mode and login, when
/// `[alerts.email]` is set. Webhooks are not called, because a test POST would reach
/// the people subscribed to them.
async fn check_alert_email(fleet: &Fleet, secrets: &Secrets) -> Option<Line> {
    let email = fleet.alerts.as_ref()?.email.as_ref()?;
    let subject = format!("alert e-mail {}:{}", email.host, email.port);
    let accepted = match email.login {
        Some(_) => "TLS session and login accepted",
        None => "TLS session accepted",
    };
    Some(match crate::alert::test_smtp(email, secrets).await {
        Ok(()) => Line::new(Status::Ok, subject, accepted),
        Err(error) => Line::new(Status::Critical, subject, error.to_string()),
    })
}
