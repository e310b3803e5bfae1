//! One backup job: one database, one backup type, taken through every stage in order.
//!
//! A backup is good only when BACKUP, VERIFYONLY, the fetch, the durable store, the header
//! check and the catalogue transaction all succeeded, and the staged files (one, or one
//! per media family of a striped backup) are deleted only after that.
//! Each stage lives in its own file, and [`run`] is the recipe.

mod backup;
mod backup_retry;
mod batch;
mod cleanup;
mod connect;
mod context;
mod fetch;
mod header;
mod history;
mod interrupt;
mod lease;
mod limits;
mod preflight;
mod record;
mod selection;
mod verify;

use std::fmt;
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tracing::Instrument;

pub use batch::run_batch;
pub use connect::connect_settings;
pub use context::{JobContext, JobEvent, JobEventKind, Trigger, HALT_AT_PHASE_VARIABLE};
pub use fetch::open_source;
pub use limits::{JobSlot, Limits, QueueSnapshot, QueuedJob};
pub use selection::{
    list_all_databases, select_and_record_databases, select_databases, SelectionError,
};

use crate::backup::{BackupRecord, BackupType};
use crate::catalog::{CatalogError, NewRun, SkipKind};
use crate::fleet::Instance;

/// The stage a job reached; a failed run records the stage that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Lease,
    Connect,
    Preflight,
    Backup,
    Verify,
    History,
    Fetch,
    Store,
    Header,
    Catalog,
    Cleanup,
    Done,
}

impl Phase {
    /// Returns the name stored in the catalogue and shown to the DBA.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Lease => "lease",
            Phase::Connect => "connect",
            Phase::Preflight => "preflight",
            Phase::Backup => "backup",
            Phase::Verify => "verify",
            Phase::History => "history",
            Phase::Fetch => "fetch",
            Phase::Store => "store",
            Phase::Header => "header",
            Phase::Catalog => "catalog",
            Phase::Cleanup => "cleanup",
            Phase::Done => "done",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request for one backup of one database.
#[derive(Debug, Clone)]
pub struct JobRequest {
    pub instance: Instance,
    pub database: String,
    /// The type requested; the policy may take a FULL in its place.
    pub backup_type: BackupType,
    pub trigger: Trigger,
    /// The schedule slot (UTC) this job serves; `None` for manual and demo runs. The
    /// catalogue accepts one run per instance, database, type and slot.
    pub slot: Option<OffsetDateTime>,
}

/// The end of a job that did not fail.
#[derive(Debug, Clone)]
pub enum JobOutcome {
    /// A verified, fetched, durable and catalogued backup.
    Succeeded {
        run_id: i64,
        backup_id: i64,
        record: Box<BackupRecord>,
        notes: Vec<String>,
    },
    /// No backup was taken: the type does not apply (a LOG backup under SIMPLE recovery)
    /// or the database is unavailable (offline), as `kind` records.
    Skipped {
        run_id: i64,
        kind: SkipKind,
        reason: String,
    },
}

/// A failed job: which stage failed, on which instance and database, and why.
#[derive(Debug, thiserror::Error)]
#[error("instance {instance}, database [{database}], {backup_type} backup failed in phase {phase}: {cause}")]
pub struct JobFailure {
    /// `None` when the job failed before a run was recorded (a lease held elsewhere).
    pub run_id: Option<i64>,
    pub instance: String,
    pub database: String,
    pub backup_type: BackupType,
    pub phase: Phase,
    pub cause: String,
}

/// A stage error before it gets the job's names attached.
pub(crate) struct StageError {
    phase: Phase,
    cause: String,
}

pub(crate) trait AtPhase<T> {
    fn at(self, phase: Phase) -> Result<T, StageError>;
}

impl<T, E: fmt::Display> AtPhase<T> for Result<T, E> {
    fn at(self, phase: Phase) -> Result<T, StageError> {
        self.map_err(|error| StageError {
            phase,
            cause: error.to_string(),
        })
    }
}

/// Runs one job to its end and records it in the catalogue.
///
/// # Errors
/// [`JobFailure`] names the phase that failed and the cause; the run row (when one was
/// started) is marked failed with the same text.
pub async fn run(ctx: &JobContext, request: &JobRequest) -> Result<JobOutcome, JobFailure> {
    // An ERROR-level span stays enabled under any log filter, so the warnings and errors
    // of a command that logs only those still carry instance, database and run id.
    let span = tracing::error_span!(
        "job",
        instance = %request.instance.name,
        database = %request.database,
        backup_type = %request.backup_type,
        run_id = tracing::field::Empty,
    );
    run_in_span(ctx, request).instrument(span).await
}

async fn run_in_span(ctx: &JobContext, request: &JobRequest) -> Result<JobOutcome, JobFailure> {
    let _slot = ctx
        .limits
        .acquire(
            &request.instance.name,
            &request.database,
            request.backup_type,
            &request.instance.staging,
        )
        .await;
    // A job that waited for its slot while a stop began does not start any more.
    if ctx.shutdown.is_draining() {
        return Err(batch::not_started(ctx, request));
    }
    // The stages make a future of about 28 KB (the test below prints it), and one slot of
    // a large fleet queues thousands of jobs: 10,000 of them held about 280 MB while they
    // waited. Boxing the stages once the slot is held keeps a waiting job at a few
    // hundred bytes.
    Box::pin(run_holding_slot(ctx, request)).await
}

/// Runs a job whose slot is held: takes its lease, starts its run and runs its stages.
async fn run_holding_slot(
    ctx: &JobContext,
    request: &JobRequest,
) -> Result<JobOutcome, JobFailure> {
    let failure = |run_id: Option<i64>, error: StageError| JobFailure {
        run_id,
        instance: request.instance.name.clone(),
        database: request.database.clone(),
        backup_type: request.backup_type,
        phase: error.phase,
        cause: error.cause,
    };
    let lease = lease::JobLease::acquire(ctx, request)
        .await
        .map_err(|error| failure(None, error))?;

    let run_id = match start_run(ctx, request).await {
        Ok(run_id) => run_id,
        Err(error) => {
            lease.release().await;
            return Err(failure(None, error));
        }
    };
    tracing::Span::current().record("run_id", run_id);

    let result = stages(ctx, request, run_id, &lease).await;
    lease.release().await;

    match result {
        Ok(outcome) => Ok(outcome),
        Err(error) if interrupt::is_interruption(ctx, &error) => {
            record_interruption(ctx, request, run_id, &error).await;
            Err(failure(Some(run_id), error))
        }
        Err(error) => {
            tracing::error!(phase = %error.phase, cause = %error.cause, "backup failed");
            ctx.emit(request, run_id, JobEventKind::Failed(error.cause.clone()));
            record_failure(ctx, run_id, &error).await;
            Err(failure(Some(run_id), error))
        }
    }
}

/// How long a job keeps trying to mark its run failed while the catalogue is locked,
/// for example by another process holding a long transaction. A run that still cannot be
/// marked stays `running` until the next bakfleet start marks it interrupted.
const RECORD_FAILURE_PATIENCE: Duration = Duration::from_secs(120);

/// Pause between two attempts to mark a run failed. Each attempt itself waits up to the
/// catalogue's busy timeout.
const RECORD_FAILURE_PAUSE: Duration = Duration::from_secs(1);

/// Marks the run failed, retrying a failed catalogue query until
/// [`RECORD_FAILURE_PATIENCE`] has passed.
async fn record_failure(ctx: &JobContext, run_id: i64, error: &StageError) {
    let deadline = Instant::now() + RECORD_FAILURE_PATIENCE;
    let mut attempt = 1;
    loop {
        let result = ctx
            .catalog
            .fail_run(run_id, error.phase.as_str(), &error.cause)
            .await;
        let Err(catalog_error) = result else {
            return;
        };
        let retryable = matches!(catalog_error, CatalogError::Query { .. });
        if !retryable || Instant::now() >= deadline {
            tracing::error!(error = %catalog_error, attempt, "could not record the failed run; the next bakfleet start marks it interrupted");
            return;
        }
        tracing::warn!(error = %catalog_error, attempt, "could not record the failed run; retrying");
        tokio::time::sleep(RECORD_FAILURE_PAUSE).await;
        attempt += 1;
    }
}

/// Marks an interrupted run in the catalogue and counts it for the exit code.
async fn record_interruption(
    ctx: &JobContext,
    request: &JobRequest,
    run_id: i64,
    error: &StageError,
) {
    tracing::warn!(phase = %error.phase, reason = %error.cause, "backup interrupted");
    ctx.shutdown.count_interrupted();
    ctx.emit(request, run_id, JobEventKind::Failed(error.cause.clone()));
    if let Err(catalog_error) = ctx
        .catalog
        .interrupt_run(run_id, error.phase.as_str(), &error.cause)
        .await
    {
        tracing::error!(error = %catalog_error, "could not record the interrupted run");
    }
}

async fn start_run(ctx: &JobContext, request: &JobRequest) -> Result<i64, StageError> {
    let run = NewRun {
        instance: request.instance.name.clone(),
        database: request.database.clone(),
        backup_type: request.backup_type,
        trigger: request.trigger.as_str().to_string(),
        started_at: OffsetDateTime::now_utc(),
        host: ctx.holder.host.clone(),
        pid: ctx.holder.pid,
        slot: request.slot,
    };
    ctx.catalog.start_run(&run).await.at(Phase::Catalog)
}

/// Runs the stages of one run, one call per stage.
async fn stages(
    ctx: &JobContext,
    request: &JobRequest,
    run_id: i64,
    lease: &lease::JobLease,
) -> Result<JobOutcome, StageError> {
    let started = std::time::Instant::now();

    interrupt::checkpoint(ctx, Phase::Connect)?;
    ctx.phase(request, run_id, Phase::Connect).await;
    let mut session = connect::open(ctx, request, run_id).await?;

    interrupt::checkpoint(ctx, Phase::Preflight)?;
    ctx.phase(request, run_id, Phase::Preflight).await;
    let mut plan = match preflight::check(ctx, &mut session, request, run_id).await? {
        preflight::Decision::Run(plan) => plan,
        preflight::Decision::Skip { kind, reason } => {
            ctx.catalog
                .skip_run_as(run_id, kind, &reason)
                .await
                .at(Phase::Catalog)?;
            tracing::info!(kind = kind.as_str(), %reason, "backup skipped");
            ctx.emit(request, run_id, JobEventKind::Skipped(reason.clone()));
            return Ok(JobOutcome::Skipped {
                run_id,
                kind,
                reason,
            });
        }
    };
    // Every later stage works on the type the decision chose.
    let decided = JobRequest {
        backup_type: plan.backup_type,
        ..request.clone()
    };
    let request = &decided;

    interrupt::checkpoint(ctx, Phase::Backup)?;
    lease.ensure_held(Phase::Backup)?;
    preflight::confirm(ctx, &mut session, request, run_id, &mut plan).await?;
    ctx.phase(request, run_id, Phase::Backup).await;
    let staged = backup_retry::take(ctx, &mut session, request, run_id, &plan).await?;

    interrupt::checkpoint(ctx, Phase::Verify)?;
    ctx.phase(request, run_id, Phase::Verify).await;
    verify::run(ctx, &mut session, request, run_id, &staged).await?;

    interrupt::checkpoint(ctx, Phase::History)?;
    ctx.phase(request, run_id, Phase::History).await;
    let backup_set = history::read(&mut session, request, &staged).await?;
    let backup_files = history::read_files(&mut session, request, &backup_set).await;

    interrupt::checkpoint(ctx, Phase::Fetch)?;
    lease.ensure_held(Phase::Fetch)?;
    ctx.phase(request, run_id, Phase::Fetch).await;
    let fetched = fetch::pull(ctx, request, run_id, &staged).await?;

    let catalogued = async {
        interrupt::checkpoint(ctx, Phase::Header)?;
        ctx.phase(request, run_id, Phase::Header).await;
        header::check(ctx, request, &backup_set, &fetched).await?;

        interrupt::checkpoint(ctx, Phase::Catalog)?;
        lease.ensure_held(Phase::Catalog)?;
        ctx.phase(request, run_id, Phase::Catalog).await;
        let record = record::build(request, &staged, &backup_set, &fetched, &plan, backup_files);
        let backup_id = record::store(ctx, run_id, &record, &fetched, started).await?;
        Ok((record, backup_id))
    }
    .await;
    let (record, backup_id) = match catalogued {
        Ok(catalogued) => catalogued,
        Err(error) => {
            fetch::discard(ctx, &fetched).await;
            return Err(error);
        }
    };

    // The run is already complete in the catalogue; clean-up only reports to watchers.
    ctx.emit(request, run_id, JobEventKind::Phase(Phase::Cleanup));
    let mut notes = plan.notes.clone();
    if let Err(error) = cleanup::remove_staged(&fetched.source, &staged).await {
        tracing::warn!(cause = %error.cause, "backup is safe, but a staged file was not deleted");
        let note = format!("staged file not deleted: {}", error.cause);
        ctx.catalog.add_run_note(run_id, &note).await.ok();
        notes.push(note);
    }

    ctx.emit(request, run_id, JobEventKind::Succeeded { backup_id });
    Ok(JobOutcome::Succeeded {
        run_id,
        backup_id,
        record: Box::new(record),
        notes,
    })
}

#[cfg(test)]
mod tests {
    use std::future::Future;

    use super::*;

    /// Returns the size of the future that `job` returns, without calling it.
    fn future_size<'a, F: Future>(_job: fn(&'a JobContext, &'a JobRequest) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    #[test]
    fn waiting_job_is_small() {
        let waiting = future_size(run);
        let running = future_size(run_holding_slot);

        eprintln!("job future: {waiting} bytes while waiting, {running} bytes once running");
        assert!(waiting <= 4096, "{waiting} bytes");
        assert!(
            running > waiting,
            "{running} bytes running, {waiting} waiting"
        );
    }
}
