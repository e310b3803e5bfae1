//! Stage 3 under `service.retry`. A BACKUP cut off by a dropped session, such as a network
//! fault or a failover that killed the session, runs again as a new BACKUP on a new
//! session and to a new file name, once the partial staged file is removed.

use std::fmt;
use std::time::Duration;

use time::OffsetDateTime;

use super::backup::{self, StagedFile};
use super::connect::Session;
use super::fetch::open_source;
use super::preflight::Plan;
use super::{interrupt, JobContext, JobRequest, Phase, StageError};
use crate::mssql::{Connection, MssqlError};
use crate::retry::{Classify, Retry, RetryScope, Transience};
use crate::store;

/// Runs BACKUP, and again on a new session when the session dropped during it, up to
/// `service.retry.attempts` attempts in all. A BACKUP that failed with a server error on a
/// live session (3201 access denied, 3202 or 3271 disk full, 4208 LOG under SIMPLE) is not
/// retried, because the same statement fails the same way, and neither is a BACKUP that
/// stalled and was killed. Each retry is noted on the run.
pub(crate) async fn take(
    ctx: &JobContext,
    session: &mut Session,
    request: &JobRequest,
    run_id: i64,
    plan: &Plan,
) -> Result<Vec<StagedFile>, StageError> {
    let scope = RetryScope {
        instance: &request.instance.name,
        database: &request.database,
        phase: Phase::Backup.as_str(),
    };
    let mut retry = Retry::new(&ctx.fleet.service.retry, scope).stop_on(&ctx.shutdown);
    let mut reconnect = false;
    let result = loop {
        let result = attempt(ctx, session, request, run_id, plan, reconnect).await;
        reconnect = result.is_err();
        if let Err(AttemptError::Dropped(error)) = &result {
            let note = format!(
                "BACKUP attempt {} failed: {}",
                retry.attempts(),
                error.cause
            );
            ctx.catalog.add_run_note(run_id, &note).await.ok();
        }
        if let Some(result) = retry.next(result).await {
            break result;
        }
    };
    if retry.attempts() > 1 && result.is_ok() {
        let note = format!("BACKUP took {} attempts", retry.attempts());
        ctx.catalog.add_run_note(run_id, &note).await.ok();
    }
    match result {
        Ok(staged) => Ok(staged),
        Err(_) if retry.stopped() => Err(interrupt::interrupted(ctx, Phase::Backup)),
        Err(error) => Err(error.into_stage_error()),
    }
}

/// The failure of one BACKUP attempt, sorted by whether a retry may succeed.
enum AttemptError {
    /// The session to the instance could not be opened again; transient when the
    /// connect error is.
    Reconnect(MssqlError),
    /// The session dropped during BACKUP, which is transient.
    Dropped(StageError),
    /// BACKUP failed on a live session, or a stage other than BACKUP failed.
    Failed(StageError),
}

impl AttemptError {
    fn into_stage_error(self) -> StageError {
        match self {
            AttemptError::Reconnect(error) => StageError {
                phase: Phase::Backup,
                cause: format!("reopening the session for a new BACKUP failed: {error}"),
            },
            AttemptError::Dropped(error) | AttemptError::Failed(error) => error,
        }
    }
}

impl Classify for AttemptError {
    fn transience(&self) -> Transience {
        match self {
            AttemptError::Reconnect(error) => error.transience(),
            AttemptError::Dropped(_) => Transience::Transient,
            AttemptError::Failed(_) => Transience::Permanent,
        }
    }
}

impl fmt::Display for AttemptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttemptError::Reconnect(error) => error.fmt(f),
            AttemptError::Dropped(error) | AttemptError::Failed(error) => f.write_str(&error.cause),
        }
    }
}

/// Runs one BACKUP, on a new session when `reconnect` is set, and sorts its failure.
async fn attempt(
    ctx: &JobContext,
    session: &mut Session,
    request: &JobRequest,
    run_id: i64,
    plan: &Plan,
    reconnect: bool,
) -> Result<Vec<StagedFile>, AttemptError> {
    if reconnect {
        reopen(session).await.map_err(AttemptError::Reconnect)?;
    }
    let started_at = OffsetDateTime::now_utc();
    let error = match backup::take(ctx, session, request, run_id, plan).await {
        Ok(staged) => return Ok(staged),
        Err(error) => error,
    };
    if error.phase != Phase::Backup
        || interrupt::is_interruption(ctx, &error)
        || backup::is_stall(&error)
        || session_alive(session).await
    {
        return Err(AttemptError::Failed(error));
    }
    tracing::warn!(cause = %error.cause, "the session dropped during BACKUP");
    remove_partial_files(ctx, request, run_id, started_at).await;
    Err(AttemptError::Dropped(error))
}

/// Opens a new session with the job's settings and reads its facts again, because the
/// progress query follows the session id of the BACKUP.
async fn reopen(session: &mut Session) -> Result<(), MssqlError> {
    let mut connection = Connection::open(&session.settings).await?;
    let facts = connection.server_facts().await?;
    session.connection = connection;
    session.facts = facts;
    Ok(())
}

/// Checks whether the session still runs a query after a failed BACKUP. A server error
/// such as 3201 leaves it open; a dropped or killed session does not. The check waits at
/// most the connect timeout, since a half-open TCP connection may never answer.
async fn session_alive(session: &mut Session) -> bool {
    let limit = session.settings.connect_timeout.max(Duration::from_secs(1));
    let probe = session.connection.execute("session check", "SELECT 1");
    matches!(tokio::time::timeout(limit, probe).await, Ok(Ok(())))
}

/// Removes the staged files that a cut-off BACKUP started at `started_at` may have left,
/// so a retry does not leave a partial file beside the good one. They are the files of the
/// database and type whose time stamp is not earlier than `started_at`. File names embed
/// the start time in a fixed-width UTC format, so they sort by time. The job's lease keeps
/// any other job from writing this database and type meanwhile. When the staging location
/// cannot be listed or a file cannot be deleted, a warning and a run note name it.
async fn remove_partial_files(
    ctx: &JobContext,
    request: &JobRequest,
    run_id: i64,
    started_at: OffsetDateTime,
) {
    let earliest = store::backup_file_name(&request.database, request.backup_type, started_at);
    let Some(prefix_len) = earliest.rfind('_') else {
        return;
    };
    let prefix = &earliest[..=prefix_len];
    let staging = &request.instance.staging;
    let folder = staging.fetch_dir();
    let listed = match open_source(&ctx.fleet, &ctx.secrets, &request.instance).await {
        Ok(source) => match source.list_files(&folder).await {
            Ok(names) => Ok((source, names)),
            Err(error) => Err(error.to_string()),
        },
        Err(error) => Err(format!("{error:#}")),
    };
    let (source, names) = match listed {
        Ok(listed) => listed,
        Err(error) => {
            tracing::warn!(%error, prefix, "cannot list the staging folder; a partial backup file may remain");
            let note = format!(
                "a partial backup file named {prefix}* at or after {earliest} may remain in the staging folder: {error}"
            );
            ctx.catalog.add_run_note(run_id, &note).await.ok();
            return;
        }
    };
    let partial = names
        .into_iter()
        .filter(|name| name.starts_with(prefix) && name.as_str() >= earliest.as_str());
    for name in partial {
        let path = staging.fetch_path(&name);
        match source.remove(&path).await {
            Ok(()) => tracing::info!(%path, "removed the partial file of a cut-off BACKUP"),
            Err(error) => {
                tracing::warn!(%path, %error, "cannot remove the partial file of a cut-off BACKUP");
                let note = format!("partial backup file {path} not deleted: {error}");
                ctx.catalog.add_run_note(run_id, &note).await.ok();
            }
        }
    }
}
