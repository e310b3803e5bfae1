//! The catalogue lease that keeps one job per database at a time, across processes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{AtPhase, JobContext, JobRequest, Phase, StageError};
use crate::catalog::{Catalog, LeaseError, LeaseHolder};

/// A held lease and the task that renews it.
pub(crate) struct JobLease {
    catalog: Catalog,
    instance: String,
    database: String,
    holder: LeaseHolder,
    /// Set by the renewer when another process took the lease over.
    lost: Arc<AtomicBool>,
    stop: Option<oneshot::Sender<()>>,
    renewer: Option<JoinHandle<()>>,
}

impl JobLease {
    /// Takes the lease of the request's database, or fails naming the holder.
    pub(crate) async fn acquire(
        ctx: &JobContext,
        request: &JobRequest,
    ) -> Result<JobLease, StageError> {
        let instance = request.instance.name.clone();
        let database = request.database.clone();
        ctx.catalog
            .acquire_lease(
                &instance,
                &database,
                &ctx.holder,
                ctx.lease_ttl,
                OffsetDateTime::now_utc(),
            )
            .await
            .at(Phase::Lease)?;

        let (stop, stopped) = oneshot::channel();
        let lost = Arc::new(AtomicBool::new(false));
        let renewer = tokio::spawn(renew_until_stopped(
            ctx.catalog.clone(),
            instance.clone(),
            database.clone(),
            ctx.holder.clone(),
            ctx.lease_ttl,
            Arc::clone(&lost),
            stopped,
        ));
        Ok(JobLease {
            catalog: ctx.catalog.clone(),
            instance,
            database,
            holder: ctx.holder.clone(),
            lost,
            stop: Some(stop),
            renewer: Some(renewer),
        })
    }

    /// Fails when the lease was lost, so that a job whose database another process now
    /// backs up stops before its next stage instead of racing it.
    pub(crate) fn ensure_held(&self, phase: Phase) -> Result<(), StageError> {
        if !self.lost.load(Ordering::SeqCst) {
            return Ok(());
        }
        Err(StageError {
            phase,
            cause: format!(
                "lost the job lease on database [{}] of instance {} (this process stalled \
                 longer than the lease lifetime, and another process may have taken it over); \
                 the job stopped without cataloguing anything",
                self.database, self.instance
            ),
        })
    }

    /// Stops renewing and gives the lease back.
    pub(crate) async fn release(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(renewer) = self.renewer.take() {
            let _ = renewer.await;
        }
        if let Err(error) = self
            .catalog
            .release_lease(&self.instance, &self.database, &self.holder)
            .await
        {
            tracing::warn!(%error, "could not release the job lease; it expires by itself");
        }
    }
}

/// Renews the lease at a third of its lifetime, so two renewals can fail before another
/// process may take it over.
async fn renew_until_stopped(
    catalog: Catalog,
    instance: String,
    database: String,
    holder: LeaseHolder,
    ttl: Duration,
    lost: Arc<AtomicBool>,
    mut stopped: oneshot::Receiver<()>,
) {
    let period = ttl / 3;
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            _ = tokio::time::sleep(period) => {}
        }
        let now = OffsetDateTime::now_utc();
        match catalog
            .renew_lease(&instance, &database, &holder, ttl, now)
            .await
        {
            Ok(()) => {}
            Err(error @ LeaseError::Lost { .. }) => {
                tracing::error!(%error, "job lease lost; the job stops at its next stage");
                lost.store(true, Ordering::SeqCst);
                return;
            }
            Err(error) => tracing::error!(%error, "could not renew the job lease"),
        }
    }
}
