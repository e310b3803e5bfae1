//! The points where a cancelled job stops: stage boundaries and the fetch, never the
//! middle of a catalogue write.

use std::fmt;

use super::{AtPhase, JobContext, Phase, StageError};

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

/// Attaches `phase` to the error of an operation that retries under `service.retry`. When
/// running jobs were cancelled, which also ends a backoff sleep, the error is the
/// interruption and not the last transient fault, so the run is marked `interrupted`.
pub(crate) fn unless_cancelled<T, E: fmt::Display>(
    ctx: &JobContext,
    phase: Phase,
    result: Result<T, E>,
) -> Result<T, StageError> {
    match result {
        Err(_) if ctx.shutdown.is_cancelled() => Err(interrupted(ctx, phase)),
        result => result.at(phase),
    }
}
