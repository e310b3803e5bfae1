//! Cron schedules: one scheduler entry per instance and backup type, each running a cycle
//! over the instance's selected databases.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};

use crate::backup::BackupType;
use crate::fleet::Instance;
use crate::job::{self, JobContext, JobRequest, Trigger};

/// A started scheduler; dropping it does not stop it, [`Scheduler::shutdown`] does.
pub struct Scheduler {
    inner: JobScheduler,
}

/// The scheduler could not be built from the fleet's schedules.
#[derive(Debug, thiserror::Error)]
#[error("instance {instance}: {backup_type} schedule {expression:?}: {reason}")]
pub struct ScheduleError {
    pub instance: String,
    pub backup_type: BackupType,
    pub expression: String,
    pub reason: String,
}

impl Scheduler {
    /// Adds every schedule of every instance and starts ticking. Times are UTC.
    ///
    /// # Errors
    /// [`ScheduleError`] naming the instance and expression the scheduler rejected.
    pub async fn start(ctx: JobContext) -> Result<Scheduler, ScheduleError> {
        let scheduler_error = |reason: JobSchedulerError| ScheduleError {
            instance: String::new(),
            backup_type: BackupType::Full,
            expression: String::new(),
            reason: reason.to_string(),
        };
        let inner = JobScheduler::new().await.map_err(scheduler_error)?;
        for instance in ctx.fleet.instances.clone() {
            for backup_type in BackupType::ALL {
                let Some(expression) = instance.schedule.for_type(backup_type) else {
                    continue;
                };
                let job = cycle_job(&ctx, &instance, backup_type, expression)?;
                inner.add(job).await.map_err(scheduler_error)?;
                tracing::info!(instance = %instance.name, %backup_type, %expression, "scheduled");
            }
        }
        inner.start().await.map_err(scheduler_error)?;
        Ok(Scheduler { inner })
    }

    /// Stops ticking; jobs already running finish on their own.
    pub async fn shutdown(mut self) {
        if let Err(error) = self.inner.shutdown().await {
            tracing::warn!(%error, "scheduler did not shut down cleanly");
        }
    }
}

/// One scheduler entry. A cycle that is still running when the next tick comes is not
/// started twice: the tick is logged and dropped, and the database leases guard the rest.
fn cycle_job(
    ctx: &JobContext,
    instance: &Instance,
    backup_type: BackupType,
    expression: &str,
) -> Result<Job, ScheduleError> {
    let running = Arc::new(AtomicBool::new(false));
    let ctx = ctx.clone();
    let instance = instance.clone();
    let name = instance.name.clone();
    Job::new_async(expression, move |_id, _lock| {
        let ctx = ctx.clone();
        let instance = instance.clone();
        let running = Arc::clone(&running);
        Box::pin(async move {
            if running.swap(true, Ordering::SeqCst) {
                tracing::warn!(instance = %instance.name, %backup_type, "previous cycle still running; tick dropped");
                return;
            }
            run_cycle(&ctx, &instance, backup_type).await;
            running.store(false, Ordering::SeqCst);
        })
    })
    .map_err(|error| ScheduleError {
        instance: name,
        backup_type,
        expression: expression.to_string(),
        reason: error.to_string(),
    })
}

/// Backs up every selected database of one instance with one type.
pub async fn run_cycle(ctx: &JobContext, instance: &Instance, backup_type: BackupType) {
    let databases = match job::select_databases(instance, &ctx.secrets).await {
        Ok(databases) => databases,
        Err(error) => {
            tracing::error!(instance = %instance.name, %error, "scheduled cycle could not list databases");
            return;
        }
    };
    let requests = databases
        .into_iter()
        .map(|database| JobRequest {
            instance: instance.clone(),
            database: database.name,
            backup_type,
            trigger: Trigger::Schedule,
        })
        .collect();
    let results = job::run_batch(ctx, requests, ctx.fleet.service.max_parallel_jobs).await;
    let failed = results.iter().filter(|(_, result)| result.is_err()).count();
    tracing::info!(instance = %instance.name, %backup_type, jobs = results.len(), failed, "cycle finished");
}
