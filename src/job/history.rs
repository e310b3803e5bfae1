//! Stage 5: read the backup set back from msdb.

use super::backup::StagedFile;
use super::connect::Session;
use super::{AtPhase, JobRequest, Phase, StageError};
use crate::backup::BackupFile;
use crate::mssql::BackupSetRow;

/// Reads the msdb row of the set just written and checks it is the set the job asked for.
/// A striped set has one row per family in msdb, and the row of family 1 describes it.
pub(crate) async fn read(
    session: &mut Session,
    request: &JobRequest,
    staged: &[StagedFile],
) -> Result<BackupSetRow, StageError> {
    let staged = &staged[0];
    let row = session
        .connection
        .backup_set(&request.database, &staged.server_path)
        .await
        .at(Phase::History)?;
    let Some(row) = row else {
        return Err(StageError {
            phase: Phase::History,
            cause: format!(
                "msdb has no backup set for database [{}] on {}; the backup history may have \
                 been pruned while the job ran",
                request.database, staged.server_path
            ),
        });
    };
    if !row.matches_type(request.backup_type) {
        return Err(StageError {
            phase: Phase::History,
            cause: format!(
                "msdb records type {} for {}, expected {} ({})",
                row.backup_type,
                staged.server_path,
                request.backup_type.msdb_letter(),
                request.backup_type
            ),
        });
    }
    tracing::info!(
        first_lsn = %row.first_lsn,
        last_lsn = %row.last_lsn,
        checkpoint_lsn = %row.checkpoint_lsn,
        "backup set read from msdb"
    );
    Ok(row)
}

/// Reads the database files of the set from msdb `backupfile`, which restore scripts need
/// for MOVE clauses.
///
/// A failure is logged and gives `None`: the backup itself is good, and only a restore
/// under another name or into another folder then needs the list written by hand.
pub(crate) async fn read_files(
    session: &mut Session,
    request: &JobRequest,
    set: &BackupSetRow,
) -> Option<Vec<BackupFile>> {
    match session.connection.backup_files(set.backup_set_id).await {
        Ok(files) => {
            tracing::debug!(files = files.len(), "backup file list read from msdb");
            Some(files)
        }
        Err(error) => {
            tracing::warn!(
                instance = %request.instance.name,
                database = %request.database,
                backup_set_id = set.backup_set_id,
                %error,
                "cannot read msdb.dbo.backupfile; the backup is catalogued without its file list"
            );
            None
        }
    }
}
