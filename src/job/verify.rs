//! Stage 4: RESTORE VERIFYONLY on the staged files, on the instance that wrote them.

use super::backup::{execute_watched, server_paths, StagedFile, WatchedError};
use super::connect::Session;
use super::{JobContext, JobRequest, Phase, StageError};
use crate::mssql::{tsql, Connection};
use crate::retry::{Retry, RetryScope};

/// Verifies the staged files as one media set: SQL Server verifies a striped backup only
/// with every family named (error 3132 otherwise). `WITH CHECKSUM` is used exactly when
/// the backup was taken with checksums, because SQL Server rejects it otherwise (error
/// 3187). A transient fault (a dropped session) reopens the session and verifies again
/// under `service.retry`; VERIFYONLY only reads the files, so running it twice is harmless.
/// A VERIFYONLY whose progress stops for `service.stall_timeout` is killed and fails the
/// run as stalled, without a retry.
pub(crate) async fn run(
    ctx: &JobContext,
    session: &mut Session,
    request: &JobRequest,
    run_id: i64,
    staged: &[StagedFile],
) -> Result<(), StageError> {
    let has_checksums = staged.iter().all(|file| file.has_checksums);
    let sql = tsql::verify_statement(&server_paths(staged), has_checksums);
    let scope = RetryScope {
        instance: &request.instance.name,
        database: &request.database,
        phase: Phase::Verify.as_str(),
    };
    let mut retry = Retry::new(&ctx.fleet.service.retry, scope).stop_on(&ctx.shutdown);
    let mut reconnect = false;
    let result = loop {
        let result = async {
            if reconnect {
                // A new session has a new id, which the progress watcher follows.
                session.connection = Connection::open(&session.settings)
                    .await
                    .map_err(WatchedError::Statement)?;
                session.facts = session
                    .connection
                    .server_facts()
                    .await
                    .map_err(WatchedError::Statement)?;
            }
            let statement = ("RESTORE VERIFYONLY", sql.as_str());
            execute_watched(ctx, session, request, run_id, Phase::Verify, statement).await
        }
        .await;
        reconnect = result.is_err();
        if let Some(result) = retry.next(result).await {
            break result;
        }
    };
    if retry.attempts() > 1 {
        let note = format!("RESTORE VERIFYONLY took {} attempts", retry.attempts());
        ctx.catalog.add_run_note(run_id, &note).await.ok();
    }
    match result {
        Err(WatchedError::Stalled(stall)) => return Err(stall),
        result => super::interrupt::unless_cancelled(ctx, Phase::Verify, result)?,
    }
    tracing::info!(path = %staged[0].server_path, files = staged.len(), checksum = has_checksums, "backup verified");
    Ok(())
}
