//! Alerts on failed backups, breached RPOs and recoveries: `serve` runs a pass every
//! `alerts.check_interval_secs` that records alerts in the catalogue and sends them.

mod evaluator;
pub mod message;
mod rpo;
mod sender;

use std::sync::Arc;

use time::OffsetDateTime;
use tokio::sync::watch;

use crate::catalog::{Catalog, CatalogError};
use crate::fleet::{Fleet, FleetError, Secrets};
use crate::job::JobContext;

pub use evaluator::{Evaluator, PassSummary, RpoState, RpoStatus, SETTLE_TIME};
pub use rpo::rpo_statuses;
pub use sender::{
    deliver_pending, describe_target, post_webhook, send_email, target_names, test_smtp,
    DeliverySummary, EMAIL_TARGET, MAX_ATTEMPTS,
};

/// Error of an alert pass or of one send. Messages name the webhook by scheme and host
/// only and never contain a header value or password.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Secret(#[from] FleetError),
    #[error("cannot assess the RPO of the fleet's databases: {reason}")]
    Protection { reason: String },
    #[error("cannot build the HTTP client for alert webhooks: {reason}")]
    Client { reason: String },
    #[error("alert webhook {webhook} failed: {reason}")]
    Webhook { webhook: String, reason: String },
    #[error("alert e-mail via {server} failed: {reason}; check [alerts.email] in the fleet file")]
    Email { server: String, reason: String },
    #[error("alert target {target} is no longer in [alerts]; the delivery is dropped")]
    TargetRemoved { target: String },
}

/// Runs one pass: evaluates runs and RPO states, then sends what is pending. Does nothing
/// when the fleet has no `[alerts]` table.
///
/// # Errors
/// Catalogue errors. A failed send is logged and left pending, and a failed RPO
/// assessment is logged and skipped, so that failure alerts still go out.
pub async fn run_pass(
    fleet: &Fleet,
    catalog: &Catalog,
    secrets: &Secrets,
    now: OffsetDateTime,
) -> Result<(PassSummary, DeliverySummary), AlertError> {
    let Some(alerts) = &fleet.alerts else {
        return Ok(Default::default());
    };
    let rpo = match rpo_statuses(fleet, catalog, now).await {
        Ok(statuses) => Some(statuses),
        Err(error) => {
            tracing::error!(%error, "RPO alerts skipped in this pass");
            None
        }
    };
    let evaluator = Evaluator {
        catalog,
        alerts,
        targets: target_names(alerts),
        settle: SETTLE_TIME,
    };
    let passed = evaluator.evaluate(now, rpo.as_deref()).await?;
    let delivered = deliver_pending(catalog, alerts, secrets, now).await?;
    Ok((passed, delivered))
}

/// Runs a pass at start and then every `alerts.check_interval_secs` of the fleet file in
/// force, until the task is aborted. Passes run in their own task and take no job lease
/// or job slot, so jobs never wait for them.
pub async fn run_periodic(contexts: watch::Receiver<JobContext>) {
    loop {
        let (fleet, catalog, secrets): (Arc<Fleet>, Catalog, Arc<Secrets>) = {
            let ctx = contexts.borrow();
            (ctx.fleet.clone(), ctx.catalog.clone(), ctx.secrets.clone())
        };
        let Some(alerts) = &fleet.alerts else {
            // A reload may add [alerts]; check again at the default interval.
            tokio::time::sleep(crate::fleet::DEFAULT_CHECK_INTERVAL).await;
            continue;
        };
        let interval = alerts.check_interval;
        match run_pass(&fleet, &catalog, &secrets, OffsetDateTime::now_utc()).await {
            Ok((passed, delivered)) => {
                if passed.alerts + delivered.sent + delivered.failed > 0 {
                    tracing::info!(
                        alerts = passed.alerts,
                        suppressed = passed.suppressed,
                        sent = delivered.sent,
                        failed = delivered.failed,
                        "alert pass finished"
                    );
                }
            }
            Err(error) => tracing::error!(%error, "alert pass failed; retrying at the next pass"),
        }
        tokio::time::sleep(interval).await;
    }
}
