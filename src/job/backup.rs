//! Stage 3: run BACKUP on the job's session, with progress read on a second connection
//! that also kills the session when the BACKUP stalls.

use std::time::{Duration, Instant};

use time::OffsetDateTime;

use super::connect::{open_query_connection, Session};
use super::preflight::Plan;
use super::{JobContext, JobEventKind, JobRequest, Phase, StageError};
use crate::mssql::{tsql, ConnectSettings, Connection, MssqlError};
use crate::store;

/// One file BACKUP wrote, named as the instance writes it and as bakfleet reads it. A
/// striped backup has one per media family.
#[derive(Debug, Clone)]
pub(crate) struct StagedFile {
    pub(crate) file_name: String,
    /// The path in the BACKUP statement: UNC or a path on the database host.
    pub(crate) server_path: String,
    /// The same file as the transfer reads it.
    pub(crate) fetch_path: String,
    /// The media family this file holds, from 1; 1 for a backup on one file.
    pub(crate) family_number: u32,
    pub(crate) has_checksums: bool,
    pub(crate) compressed: bool,
}

/// Returns the staged paths of a backup in family order, as `DISK =` clauses name them.
pub(crate) fn server_paths(staged: &[StagedFile]) -> Vec<&str> {
    staged
        .iter()
        .map(|file| file.server_path.as_str())
        .collect()
}

/// Runs the BACKUP statement and returns the staged files in family order: one, or one
/// per media family when the policy stripes the backup over `plan.files` files.
pub(crate) async fn take(
    ctx: &JobContext,
    session: &mut Session,
    request: &JobRequest,
    run_id: i64,
    plan: &Plan,
) -> Result<Vec<StagedFile>, StageError> {
    let now = OffsetDateTime::now_utc();
    let base_name = store::backup_file_name(&request.database, request.backup_type, now);
    let staging = &request.instance.staging;
    let count = plan.files.max(1);
    let staged: Vec<StagedFile> = (1..=count)
        .map(|family_number| {
            let file_name = store::family_file_name(&base_name, family_number, count);
            StagedFile {
                server_path: staging.server_path(&file_name),
                fetch_path: staging.fetch_path(&file_name),
                file_name,
                family_number,
                has_checksums: plan.options.checksum,
                compressed: plan.options.compression,
            }
        })
        .collect();
    let sql = tsql::backup_statement(
        &request.database,
        request.backup_type,
        &server_paths(&staged),
        plan.options.clone(),
    );

    let started = Instant::now();
    execute_watched(
        ctx,
        session,
        request,
        run_id,
        Phase::Backup,
        ("BACKUP", &sql),
    )
    .await
    .map_err(|error| error.at(Phase::Backup))?;
    tracing::info!(
        path = %staged[0].server_path,
        files = staged.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "backup written"
    );
    Ok(staged)
}

/// Why a watched statement failed: its own error, or a stall that ended in a KILL.
pub(crate) enum WatchedError {
    /// The statement's error, a dropped session among them.
    Statement(MssqlError),
    /// The statement stopped moving for `service.stall_timeout` and its session was
    /// killed; the cause names instance, database, phase and session.
    Stalled(StageError),
}

impl WatchedError {
    /// Converts the failure to a stage error, with `phase` attached to a statement's error.
    pub(crate) fn at(self, phase: Phase) -> StageError {
        match self {
            WatchedError::Statement(error) => StageError {
                phase,
                cause: error.to_string(),
            },
            WatchedError::Stalled(stall) => stall,
        }
    }
}

impl std::fmt::Display for WatchedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WatchedError::Statement(error) => error.fmt(f),
            WatchedError::Stalled(stall) => f.write_str(&stall.cause),
        }
    }
}

impl crate::retry::Classify for WatchedError {
    /// Classifies a stall as permanent, because its session was dropped on purpose and a
    /// new attempt would likely stall in the same place.
    fn transience(&self) -> crate::retry::Transience {
        match self {
            WatchedError::Statement(error) => error.transience(),
            WatchedError::Stalled(_) => crate::retry::Transience::Permanent,
        }
    }
}

/// Runs `statement`, a label and its SQL (BACKUP or RESTORE), on the job's session while [`watch_progress`] follows it
/// on a second connection, so that a statement that stops moving is killed and reported
/// as stalled. The caller drops the session after a stall, so the killed connection is
/// never used again.
pub(crate) async fn execute_watched(
    ctx: &JobContext,
    session: &mut Session,
    request: &JobRequest,
    run_id: i64,
    phase: Phase,
    (label, sql): (&str, &str),
) -> Result<(), WatchedError> {
    let spid = session.facts.spid;
    let settings = session.settings.clone();
    let statement = session.connection.execute(label, sql);
    tokio::pin!(statement);
    let stall = tokio::select! {
        result = &mut statement => return result.map_err(WatchedError::Statement),
        stall = watch_progress(ctx, request, run_id, &settings, spid, phase) => stall,
    };
    let ended = wait_for_statement_end(statement).await;
    Err(WatchedError::Stalled(stall_error(
        request, phase, &stall, ended,
    )))
}

/// Polls `sys.dm_exec_requests` for the statement running on session `spid` and emits its
/// percent. tiberius does not hand the 3211 progress messages to its caller, so this is
/// the only source of progress. A failed poll is logged and retried, and does not fail
/// the statement. Returns only after `percent_complete` has not moved for
/// `service.stall_timeout` and KILL was sent for the session. Without a stall timeout it
/// runs until the caller's `select!` drops it.
pub(crate) async fn watch_progress(
    ctx: &JobContext,
    request: &JobRequest,
    run_id: i64,
    settings: &ConnectSettings,
    spid: i16,
    phase: Phase,
) -> Stall {
    let stall_timeout = ctx.fleet.service.stall_timeout;
    let mut tracker = StallTracker::new(Instant::now());
    let mut connection = None;
    loop {
        tokio::time::sleep(ctx.progress_interval).await;
        if connection.is_none() {
            match open_query_connection(settings).await {
                Ok(opened) => connection = Some(opened),
                Err(error) => {
                    tracing::debug!(%error, "progress connection failed; retrying");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    continue;
                }
            }
        }
        let Some(open) = connection.as_mut() else {
            continue;
        };
        match open.progress(spid).await {
            Ok(Some(progress)) => {
                let percent = progress.percent_complete;
                tracing::debug!(percent, %phase, "statement progress");
                ctx.emit(request, run_id, JobEventKind::BackupPercent(percent));
                let Some(timeout) = stall_timeout else {
                    continue;
                };
                if tracker.observe(percent, Instant::now()) < timeout {
                    continue;
                }
                tracing::warn!(
                    percent,
                    %phase,
                    spid,
                    timeout_secs = timeout.as_secs(),
                    "no progress within the stall timeout; killing the session"
                );
                let killed = kill_session(open, settings, spid).await;
                return Stall {
                    timeout,
                    percent,
                    spid,
                    killed,
                };
            }
            Ok(None) => {}
            Err(error) => {
                // A connection is never reused after an error: drop it and reconnect.
                tracing::debug!(%error, "progress query failed; reconnecting");
                connection = None;
            }
        }
    }
}

/// A stall the progress watcher found, and the outcome of the KILL it sent.
#[derive(Debug)]
pub(crate) struct Stall {
    pub(crate) timeout: Duration,
    /// `percent_complete` at which the statement stopped moving.
    pub(crate) percent: f32,
    pub(crate) spid: i16,
    /// The outcome of `KILL spid`.
    pub(crate) killed: Result<(), MssqlError>,
}

/// The time since `percent_complete` last moved.
#[derive(Debug)]
struct StallTracker {
    last_percent: Option<f32>,
    since: Instant,
}

impl StallTracker {
    fn new(now: Instant) -> StallTracker {
        StallTracker {
            last_percent: None,
            since: now,
        }
    }

    /// Records one reading and returns how long the percent has not moved. The first
    /// reading counts as a move, because the statement got that far since it started.
    fn observe(&mut self, percent: f32, now: Instant) -> Duration {
        if self.last_percent != Some(percent) {
            self.last_percent = Some(percent);
            self.since = now;
        }
        now.saturating_duration_since(self.since)
    }
}

/// Sends `KILL spid` on the progress connection; when that connection fails, once more on
/// a new one.
async fn kill_session(
    open: &mut Connection,
    settings: &ConnectSettings,
    spid: i16,
) -> Result<(), MssqlError> {
    if let Err(error) = open.kill(spid).await {
        tracing::warn!(%error, spid, "KILL failed on the progress connection; retrying on a new one");
        let mut fresh = open_query_connection(settings).await?;
        return fresh.kill(spid).await;
    }
    Ok(())
}

/// How long a killed statement gets to end. SQL Server ends a killed BACKUP after it
/// stops its I/O (KILL (Transact-SQL): a killed session may take time to roll back), and
/// a hung share may delay that.
const STATEMENT_END_WAIT: Duration = Duration::from_secs(60);

/// Waits up to [`STATEMENT_END_WAIT`] for a killed statement to return; returns false when
/// it still runs.
pub(crate) async fn wait_for_statement_end<F>(statement: std::pin::Pin<&mut F>) -> bool
where
    F: std::future::Future<Output = Result<(), MssqlError>>,
{
    match tokio::time::timeout(STATEMENT_END_WAIT, statement).await {
        Ok(result) => {
            tracing::info!(ended_with_error = result.is_err(), "killed statement ended");
            true
        }
        Err(_) => false,
    }
}

/// Start of the cause of every stalled statement's failure.
const STALLED: &str = "stalled on instance";

/// Returns whether a stage failed because its statement stalled and was killed. Such a
/// failure ends the run, because its session was dropped on purpose and a new attempt
/// would likely stall in the same place.
pub(crate) fn is_stall(error: &StageError) -> bool {
    error.cause.starts_with(STALLED)
}

/// Builds the failure of a stalled statement for the run's cause, naming the instance,
/// database, phase, timeout and the killed session.
pub(crate) fn stall_error(
    request: &JobRequest,
    phase: Phase,
    stall: &Stall,
    ended: bool,
) -> StageError {
    let mut cause = format!(
        "{STALLED} {}, database [{}], phase {phase}: no progress for {} at {:.1}%",
        request.instance.name,
        request.database,
        format_timeout(stall.timeout),
        stall.percent,
    );
    match &stall.killed {
        Ok(()) => cause.push_str(&format!("; killed session {}", stall.spid)),
        Err(error) => cause.push_str(&format!(
            "; KILL of session {} failed ({error}), so the statement may still run on the server",
            stall.spid
        )),
    }
    if stall.killed.is_ok() && !ended {
        cause.push_str(&format!(
            "; the statement did not end within {} after the KILL",
            format_timeout(STATEMENT_END_WAIT)
        ));
    }
    StageError { phase, cause }
}

/// Formats a timeout in the largest whole unit: `10m`, `90s`, `2h`.
fn format_timeout(timeout: Duration) -> String {
    let seconds = timeout.as_secs();
    if seconds >= 3600 && seconds % 3600 == 0 {
        format!("{}h", seconds / 3600)
    } else if seconds >= 60 && seconds % 60 == 0 {
        format!("{}m", seconds / 60)
    } else {
        format!("{seconds}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracker_counts_time_without_progress() {
        let start = Instant::now();
        let mut tracker = StallTracker::new(start);
        assert_eq!(tracker.observe(10.0, start), Duration::ZERO);
        let later = start + Duration::from_secs(30);
        assert_eq!(tracker.observe(10.0, later), Duration::from_secs(30));
    }

    #[test]
    fn tracker_resets_when_percent_moves() {
        let start = Instant::now();
        let mut tracker = StallTracker::new(start);
        tracker.observe(10.0, start);
        let moved = start + Duration::from_secs(30);
        assert_eq!(tracker.observe(10.5, moved), Duration::ZERO);
        let later = moved + Duration::from_secs(5);
        assert_eq!(tracker.observe(10.5, later), Duration::from_secs(5));
    }

    #[test]
    fn timeout_uses_largest_whole_unit() {
        assert_eq!(format_timeout(Duration::from_secs(600)), "10m");
        assert_eq!(format_timeout(Duration::from_secs(90)), "90s");
        assert_eq!(format_timeout(Duration::from_secs(7200)), "2h");
        assert_eq!(format_timeout(Duration::from_secs(5)), "5s");
    }
}
