//! Stage 4: RESTORE VERIFYONLY on the staged files, on the instance that wrote them.

use super::backup::{server_paths, StagedFile};
use super::connect::Session;
use super::{AtPhase, Phase, StageError};
use crate::mssql::tsql;

/// Verifies the staged files as one media set: SQL Server verifies a striped backup only
/// with every family named (error 3132 otherwise). `WITH CHECKSUM` is used exactly when
/// the backup was taken with checksums, because SQL Server rejects it otherwise (error
/// 3187).
pub(crate) async fn run(session: &mut Session, staged: &[StagedFile]) -> Result<(), StageError> {
    let has_checksums = staged.iter().all(|file| file.has_checksums);
    let sql = tsql::verify_statement(&server_paths(staged), has_checksums);
    session
        .connection
        .execute("RESTORE VERIFYONLY", &sql)
        .await
        .at(Phase::Verify)?;
    tracing::info!(path = %staged[0].server_path, files = staged.len(), checksum = has_checksums, "backup verified");
    Ok(())
}
