//! The points where a cancelled job stops: stage boundaries and the fetch, never the
//! middle of a catalogue write.

use super::{JobContext, Phase, StageError};

/// Returns an error that stops the job before `phase` when running jobs were cancelled.
/// The run is then marked `interrupted`, and the staged file stays on the share.
pub(crate) fn checkpoint(ctx: &JobContext, phase: Phase) -> Result<(), StageError> {
    if ctx.shutdown.is_cancelled() {
        return Err(interrupted(ctx, phase));
    }
    Ok(())
}

/// Builds the error of a job stopped in `phase` by a cancellation.
pub(crate) fn interrupted(ctx: &JobContext, phase: Phase) -> StageError {
    let reason = ctx.shutdown.reason().unwrap_or("stopped by a stop signal");
    StageError {
        phase,
        cause: format!("{reason}, before the {phase} phase finished"),
    }
}

/// Checks whether `error` is the error of [`interrupted`], so the run is marked
/// `interrupted` and not `failed`.
pub(crate) fn is_interruption(ctx: &JobContext, error: &StageError) -> bool {
    match ctx.shutdown.reason() {
        Some(reason) => error.cause.starts_with(reason),
        None => false,
    }
}
