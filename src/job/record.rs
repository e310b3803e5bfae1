//! Stage 8: catalogue the backup and complete the run in one transaction.

use std::time::Instant;

use time::OffsetDateTime;

use super::backup::StagedFile;
use super::fetch::Fetched;
use super::preflight::Plan;
use super::{AtPhase, JobContext, JobRequest, Phase, StageError};
use crate::backup::{BackupFamily, BackupFile, BackupRecord};
use crate::catalog::RunStats;
use crate::mssql::BackupSetRow;

/// Combines what msdb recorded with what the store holds. Family 1 gives the row's store
/// path, staged path and hash, and the size is the sum over the families.
pub(crate) fn build(
    request: &JobRequest,
    staged: &[StagedFile],
    set: &BackupSetRow,
    fetched: &Fetched,
    plan: &Plan,
    files: Option<Vec<BackupFile>>,
) -> BackupRecord {
    let first = &fetched.stored[0];
    let families = if fetched.stored.len() > 1 {
        staged
            .iter()
            .zip(&fetched.stored)
            .map(|(staged, stored)| BackupFamily {
                family_number: staged.family_number,
                store_path: stored.rel_path.clone(),
                staged_path: staged.server_path.clone(),
                size_bytes: stored.size,
                sha256: stored.sha256.clone(),
            })
            .collect()
    } else {
        Vec::new()
    };
    BackupRecord {
        instance: request.instance.name.clone(),
        database: request.database.clone(),
        backup_type: request.backup_type,
        store_path: first.rel_path.clone(),
        staged_path: staged[0].server_path.clone(),
        size_bytes: fetched.stored.iter().map(|stored| stored.size).sum(),
        sha256: first.sha256.clone(),
        first_lsn: set.first_lsn,
        last_lsn: set.last_lsn,
        checkpoint_lsn: set.checkpoint_lsn,
        database_backup_lsn: set.database_backup_lsn,
        differential_base_lsn: set.differential_base_lsn,
        differential_base_guid: plan.differential_base_guid(),
        backup_set_guid: set.backup_set_uuid.map(|guid| guid.to_string()),
        database_guid: set.database_guid.map(|guid| guid.to_string()),
        backup_start: set.backup_start,
        backup_finish: set.backup_finish,
        time_zone: set.time_zone,
        server_version: set.software_version.clone(),
        recovery_model: set
            .recovery_model
            .clone()
            .or_else(|| Some(plan.recovery_model.clone())),
        has_checksums: set.has_backup_checksums,
        is_copy_only: set.is_copy_only,
        compressed: staged[0].compressed,
        backup_size: set.backup_size,
        compressed_size: set.compressed_backup_size,
        fetched_at: fetched.fetched_at,
        fetch_ms: fetched.elapsed.as_millis() as u64,
        files,
        families,
    }
}

/// Inserts the backup row and marks the run succeeded, atomically.
pub(crate) async fn store(
    ctx: &JobContext,
    run_id: i64,
    record: &BackupRecord,
    fetched: &Fetched,
    started: Instant,
) -> Result<i64, StageError> {
    let elapsed = started.elapsed();
    let stats = RunStats {
        finished_at: OffsetDateTime::now_utc(),
        duration_ms: elapsed.as_millis() as u64,
        bytes: record.size_bytes,
        throughput_bps: record.size_bytes as f64 / fetched.elapsed.as_secs_f64().max(1e-6),
    };
    let backup_id = ctx
        .catalog
        .complete_run(run_id, record, &stats)
        .await
        .at(Phase::Catalog)?;
    tracing::info!(
        backup_id,
        size = record.size_bytes,
        first_lsn = %record.first_lsn,
        last_lsn = %record.last_lsn,
        duration_ms = stats.duration_ms,
        "backup catalogued"
    );
    Ok(backup_id)
}
