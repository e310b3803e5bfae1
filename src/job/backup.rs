//! Stage 3: run BACKUP on the job's session, with progress read on a second connection.

use std::time::{Duration, Instant};

use time::OffsetDateTime;

use super::connect::{open_query_connection, Session};
use super::preflight::Plan;
use super::{AtPhase, JobContext, JobEventKind, JobRequest, Phase, StageError};
use crate::mssql::{tsql, ConnectSettings};
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
    let spid = session.facts.spid;
    let settings = session.settings.clone();
    let statement = session.connection.execute("BACKUP", &sql);
    tokio::pin!(statement);
    tokio::select! {
        result = &mut statement => result.at(Phase::Backup)?,
        _ = watch_progress(ctx, request, run_id, &settings, spid) => {}
    }
    tracing::info!(
        path = %staged[0].server_path,
        files = staged.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "backup written"
    );
    Ok(staged)
}

/// Polls `sys.dm_exec_requests` for the BACKUP's session until cancelled by the caller's
/// `select!`. tiberius does not hand the 3211 progress messages to its caller, so this is
/// the only source of progress. A failed poll is logged and retried, and does not fail the backup.
async fn watch_progress(
    ctx: &JobContext,
    request: &JobRequest,
    run_id: i64,
    settings: &ConnectSettings,
    spid: i16,
) {
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
                tracing::debug!(percent = progress.percent_complete, "backup progress");
                ctx.emit(
                    request,
                    run_id,
                    JobEventKind::BackupPercent(progress.percent_complete),
                );
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
