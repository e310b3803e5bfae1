//! The catalogue lease that keeps one job per database at a time, across processes.

use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{AtPhase, JobContext, JobRequest, Phase, StageError};
use crate::catalog::{Catalog, LeaseHolder};

/// A held lease and the task that renews it.
pub(crate) struct JobLease {
    catalog: Catalog,
    instance: String,
    database: String,
    holder: LeaseHolder,
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
        let renewer = tokio::spawn(renew_until_stopped(
            ctx.catalog.clone(),
            instance.clone(),
            database.clone(),
            ctx.holder.clone(),
            ctx.lease_ttl,
            stopped,
        ));
        Ok(JobLease {
            catalog: ctx.catalog.clone(),
            instance,
            database,
            holder: ctx.holder.clone(),
            stop: Some(stop),
            renewer: Some(renewer),
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
    mut stopped: oneshot::Receiver<()>,
) {
    let period = ttl / 3;
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            _ = tokio::time::sleep(period) => {}
        }
        let now = OffsetDateTime::now_utc();
        if let Err(error) = catalog
            .renew_lease(&instance, &database, &holder, ttl, now)
            .await
        {
            tracing::error!(%error, "could not renew the job lease");
        }
    }
}
