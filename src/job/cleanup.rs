//! Stage 9: delete the staged files, only after every copy is durable and catalogued.

use super::backup::StagedFile;
use super::{AtPhase, Phase, StageError};
use crate::transfer::Source;

/// Removes every staged file through the transfer that fetched them. It tries each file
/// and returns the first error, so a file that cannot be deleted keeps no other file.
pub(crate) async fn remove_staged(
    source: &Source,
    staged: &[StagedFile],
) -> Result<(), StageError> {
    let mut first_error = None;
    for file in staged {
        match source.remove(&file.fetch_path).await.at(Phase::Cleanup) {
            Ok(()) => tracing::info!(path = %file.fetch_path, "staged file deleted"),
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}
