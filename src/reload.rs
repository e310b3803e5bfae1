//! Reloading fleet.toml while `serve` runs: on SIGHUP and when the file changes on disk,
//! the new file is loaded and checked, and only a valid file replaces the fleet in force.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::Watcher;
use serde::Serialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch};

use crate::fleet::{Fleet, FleetError, Secrets, Service};
use crate::job::JobContext;
use crate::schedule::{self, ScheduleError};

/// How long the fleet file's folder must stay quiet after a change before the file is
/// read, so that an editor's save or a git checkout is read once and complete.
const DEBOUNCE: Duration = Duration::from_millis(500);

/// Maximum time a `git` call may take before the revision falls back to the file's hash.
const GIT_TIMEOUT: Duration = Duration::from_secs(5);

/// Hex digits of a commit or a SHA-256 shown as the revision.
const REVISION_DIGITS: usize = 12;

/// The fleet file in force and the outcome of the last reload, shown by the admin site
/// and `/healthz`.
#[derive(Debug, Clone, Serialize)]
pub struct FleetStatus {
    /// The fleet file as `serve` was given it.
    pub path: PathBuf,
    /// `git COMMIT` when the file is in a git checkout, else `sha256 PREFIX` of its text.
    pub revision: String,
    /// SHA-256 of the text in force, compared with the file on disk to find a newer file.
    pub sha256: String,
    #[serde(with = "time::serde::rfc3339")]
    pub loaded_at: OffsetDateTime,
    /// The last reload that failed since the file in force was loaded.
    pub last_error: Option<ReloadFailure>,
    /// Root of the store this process writes to.
    pub store_dir: PathBuf,
    /// Free bytes the store needs for `/healthz` to report ready.
    pub min_store_free_bytes: u64,
}

/// A rejected fleet file: when it was read and why it was rejected.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadFailure {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub message: String,
}

/// Error that keeps a new fleet file from taking effect.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error(transparent)]
    Fleet(#[from] FleetError),
    #[error("{0}; fix the schedule in the fleet file")]
    Schedule(#[from] ScheduleError),
}

/// Result of one reload attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// The file on disk has the text in force.
    Unchanged,
    /// The new file is in force under this revision.
    Applied { revision: String },
    /// The file was rejected and the previous one stays in force.
    Rejected,
}

impl FleetStatus {
    /// Describes the fleet file `text` that `ctx` was built from, loaded now.
    pub async fn loaded(ctx: &JobContext, text: &str) -> FleetStatus {
        let sha256 = sha256_hex(text.as_bytes());
        FleetStatus {
            path: ctx.fleet.source.clone(),
            revision: revision(&ctx.fleet.source, &sha256).await,
            sha256,
            loaded_at: OffsetDateTime::now_utc(),
            last_error: None,
            store_dir: ctx.store.root().to_path_buf(),
            min_store_free_bytes: ctx.fleet.service.min_store_free_bytes,
        }
    }

    /// Checks whether the file on disk has the text in force; `Err` when it cannot be read.
    pub fn file_is_in_force(&self) -> std::io::Result<bool> {
        let text = std::fs::read(&self.path)?;
        Ok(sha256_hex(&text) == self.sha256)
    }
}

/// Reloads the fleet file of a running `serve`, publishing each valid file as a new job
/// context for the scheduler and a new status for the admin site.
pub struct Reloader {
    path: PathBuf,
    contexts: watch::Sender<JobContext>,
    status: watch::Sender<FleetStatus>,
}

impl Reloader {
    /// Starts from the context and status of the file loaded at start-up.
    pub fn new(ctx: JobContext, status: FleetStatus) -> Reloader {
        Reloader {
            path: ctx.fleet.source.clone(),
            contexts: watch::channel(ctx).0,
            status: watch::channel(status).0,
        }
    }

    /// Returns a receiver of the job context in force, which changes on each reload.
    pub fn contexts(&self) -> watch::Receiver<JobContext> {
        self.contexts.subscribe()
    }

    /// Returns a receiver of the fleet status, which changes on each reload attempt.
    pub fn status(&self) -> watch::Receiver<FleetStatus> {
        self.status.subscribe()
    }

    /// Reloads on SIGHUP and on changes in the fleet file's folder until the task is
    /// aborted. Without a file watch (inotify limits reached) SIGHUP still works.
    ///
    /// # Errors
    /// The SIGHUP handler cannot be installed.
    pub async fn run(self) -> std::io::Result<()> {
        let mut hangups = signal(SignalKind::hangup())?;
        let (changes, mut changed) = mpsc::unbounded_channel();
        let _watcher = match watch_folder(&self.path, changes) {
            Ok(watcher) => Some(watcher),
            Err(error) => {
                tracing::warn!(
                    file = %self.path.display(),
                    %error,
                    "cannot watch the fleet file's folder; send SIGHUP to reload it"
                );
                None
            }
        };
        loop {
            tokio::select! {
                _ = hangups.recv() => {
                    tracing::info!(file = %self.path.display(), "SIGHUP received: reloading the fleet file");
                }
                Some(()) = changed.recv() => {
                    settle(&mut changed).await;
                    tracing::debug!(file = %self.path.display(), "the fleet file's folder changed");
                }
            }
            self.reload().await;
        }
    }

    /// Reads the fleet file once and puts it in force when it is valid and new.
    pub async fn reload(&self) -> ReloadOutcome {
        let current = self.contexts.borrow().clone();
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(cause) => {
                let error = FleetError::Read {
                    path: self.path.clone(),
                    cause,
                };
                return self.reject(&error.into());
            }
        };

        let sha256 = sha256_hex(text.as_bytes());
        if sha256 == self.status.borrow().sha256 {
            self.status.send_modify(|status| status.last_error = None);
            tracing::info!(file = %self.path.display(), "the fleet file is unchanged");
            return ReloadOutcome::Unchanged;
        }
        let fleet = match check(&text, &self.path, &current.fleet.service) {
            Ok(fleet) => fleet,
            Err(error) => return self.reject(&error),
        };
        let secrets = match Secrets::load(&fleet.service) {
            Ok(secrets) => secrets,
            Err(error) => return self.reject(&error.into()),
        };

        crate::service::register_instances(&current.catalog, &fleet).await;
        let revision = revision(&self.path, &sha256).await;
        log_changes(&current.fleet, &fleet, &revision);
        let min_store_free_bytes = fleet.service.min_store_free_bytes;
        let next = JobContext {
            fleet: Arc::new(fleet),
            secrets: Arc::new(secrets),
            ..current
        };

        self.contexts.send_replace(next);
        self.status.send_modify(|status| {
            status.revision = revision.clone();
            status.sha256 = sha256;
            status.loaded_at = OffsetDateTime::now_utc();
            status.last_error = None;
            status.min_store_free_bytes = min_store_free_bytes;
        });
        ReloadOutcome::Applied { revision }
    }

    fn reject(&self, error: &ReloadError) -> ReloadOutcome {
        let in_force = self.status.borrow().revision.clone();
        tracing::error!(
            file = %self.path.display(),
            revision_in_force = %in_force,
            "fleet file rejected; the fleet file in force stays: {error}"
        );
        self.status.send_modify(|status| {
            status.last_error = Some(ReloadFailure {
                at: OffsetDateTime::now_utc(),
                message: error.to_string(),
            });
        });
        ReloadOutcome::Rejected
    }
}

/// Parses and checks a new fleet file, keeping the running values of the `[service]`
/// keys that only a restart can change.
fn check(text: &str, path: &Path, running: &Service) -> Result<Fleet, ReloadError> {
    let mut fleet = Fleet::parse(text, path)?;
    schedule::entries(&fleet)?;
    keep_restart_keys(&mut fleet.service, running);
    Ok(fleet)
}

/// Puts the running values back into the `[service]` keys that the open catalogue, store,
/// listener and job limits were built from, with a warning for each changed key.
// TODO: apply changed job limits without a restart; the /queue page shows one `Limits`.
fn keep_restart_keys(new: &mut Service, running: &Service) {
    let mut changed: Vec<&str> = Vec::new();
    if new.store_dir != running.store_dir {
        changed.push("service.store_dir");
    }
    if new.catalog != running.catalog {
        changed.push("service.catalog");
    }
    if new.listen != running.listen {
        changed.push("service.listen");
    }
    if new.lease != running.lease {
        changed.push("service.lease_seconds");
    }
    if new.max_parallel_jobs != running.max_parallel_jobs {
        changed.push("service.max_parallel_jobs");
    }
    if new.max_jobs_per_instance != running.max_jobs_per_instance {
        changed.push("service.max_jobs_per_instance");
    }
    if new.max_jobs_per_staging != running.max_jobs_per_staging {
        changed.push("service.max_jobs_per_staging");
    }
    for key in changed {
        tracing::warn!(
            key,
            "the new fleet file changes a key that takes effect at the next restart; \
             the running value stays until then"
        );
    }
    new.store_dir.clone_from(&running.store_dir);
    new.catalog.clone_from(&running.catalog);
    new.listen = running.listen;
    new.lease = running.lease;
    new.max_parallel_jobs = running.max_parallel_jobs;
    new.max_jobs_per_instance = running.max_jobs_per_instance;
    new.max_jobs_per_staging = running.max_jobs_per_staging;
}

/// Logs the reload with the instances it added and removed.
fn log_changes(old: &Fleet, new: &Fleet, revision: &str) {
    let names = |fleet: &Fleet| -> Vec<String> {
        fleet
            .instances
            .iter()
            .map(|instance| instance.name.clone())
            .collect()
    };
    let (old_names, new_names) = (names(old), names(new));
    let added: Vec<&String> = new_names
        .iter()
        .filter(|name| !old_names.contains(name))
        .collect();
    let removed: Vec<&String> = old_names
        .iter()
        .filter(|name| !new_names.contains(name))
        .collect();
    tracing::info!(
        file = %new.source.display(),
        %revision,
        instances = new_names.len(),
        added = ?added,
        removed = ?removed,
        "fleet file reloaded; new runs use it, running jobs finish under the previous one"
    );
    if drill_plan(old) != drill_plan(new) {
        tracing::warn!(
            "the new fleet file changes the [drill] table or the drill schedules; the \
             running drill schedules stay until the next restart"
        );
    }
    for warning in new.warnings() {
        tracing::warn!("{warning}");
    }
}

/// Returns the drill settings and the distinct drill schedules of a fleet, which the drill
/// loop of `serve` reads once at start.
fn drill_plan(fleet: &Fleet) -> Option<(crate::fleet::Drills, Vec<String>)> {
    let settings = fleet.drills.as_ref()?;
    Some((
        settings.clone(),
        crate::drill::drill_schedules(fleet, settings),
    ))
}

/// Waits until no change arrives for [`DEBOUNCE`], dropping the changes seen meanwhile.
async fn settle(changed: &mut mpsc::UnboundedReceiver<()>) {
    while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, changed.recv()).await {}
}

/// Watches the folder of `path`, not the file: git and most editors write a new file and
/// rename it over the old one, which a watch on the old file's inode would miss.
fn watch_folder(
    path: &Path,
    changes: mpsc::UnboundedSender<()>,
) -> notify::Result<notify::RecommendedWatcher> {
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path.file_name().map(|name| name.to_os_string());
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else {
            return;
        };
        if event.kind.is_access() {
            return;
        }
        let concerns_file = event
            .paths
            .iter()
            .any(|changed| changed.file_name().map(|n| n.to_os_string()) == file_name);
        if concerns_file {
            // The receiver is gone only when the reloader stopped.
            let _ = changes.send(());
        }
    })?;
    watcher.watch(&folder, notify::RecursiveMode::NonRecursive)?;
    Ok(watcher)
}

/// Returns the lower-case hex SHA-256 of `bytes`.
fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Names the revision of the fleet file: `git COMMIT` when its folder is a git checkout
/// and the file has no uncommitted change, `git COMMIT + sha256 PREFIX` when it has, and
/// `sha256 PREFIX` when git is missing or the folder is not a checkout.
pub async fn revision(path: &Path, sha256: &str) -> String {
    let hash = format!("sha256 {}", &sha256[..REVISION_DIGITS]);
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let Some(head) = git(folder, &["rev-parse", "HEAD"]).await else {
        return hash;
    };
    let commit: String = head.trim().chars().take(REVISION_DIGITS).collect();
    let file = path.file_name().unwrap_or(path.as_os_str());
    let file = file.to_string_lossy();
    // `status --porcelain` lists the file when it is modified, staged or untracked.
    match git(folder, &["status", "--porcelain", "--", &file]).await {
        Some(status) if status.trim().is_empty() => format!("git {commit}"),
        _ => format!("git {commit} + {hash}"),
    }
}

/// Runs `git -C folder ARGS` and returns its output, or `None` when git is missing,
/// fails or takes longer than [`GIT_TIMEOUT`].
async fn git(folder: &Path, args: &[&str]) -> Option<String> {
    let run = tokio::process::Command::new("git")
        .arg("-C")
        .arg(folder)
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(GIT_TIMEOUT, run).await.ok()?.ok()?;
    if !output.status.success() {
        return None;
    }
    String::from_utf8(output.stdout).ok()
}
