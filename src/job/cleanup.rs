//! Stage 9: delete the staged file, only after its copy is durable and catalogued.

use super::backup::StagedFile;
use super::{AtPhase, Phase, StageError};
use crate::transfer::Source;

/// Removes the staged file through the transfer that fetched it.
pub(crate) async fn remove_staged(source: &Source, staged: &StagedFile) -> Result<(), StageError> {
    source.remove(&staged.fetch_path).await.at(Phase::Cleanup)?;
    tracing::info!(path = %staged.fetch_path, "staged file deleted");
    Ok(())
}
