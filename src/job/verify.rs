//! Stage 4: RESTORE VERIFYONLY on the staged file, on the instance that wrote it.

use super::backup::StagedFile;
use super::connect::Session;
use super::{AtPhase, Phase, StageError};
use crate::mssql::tsql;

/// Verifies the staged file. `WITH CHECKSUM` is used exactly when the backup was taken
/// with checksums, because SQL Server rejects it otherwise (error 3187).
pub(crate) async fn run(session: &mut Session, staged: &StagedFile) -> Result<(), StageError> {
    let sql = tsql::verify_statement(&staged.server_path, staged.has_checksums);
    session
        .connection
        .execute("RESTORE VERIFYONLY", &sql)
        .await
        .at(Phase::Verify)?;
    tracing::info!(path = %staged.server_path, checksum = staged.has_checksums, "backup verified");
    Ok(())
}
