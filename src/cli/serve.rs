//! `bakfleet serve`: the scheduler and the admin site, until SIGTERM or Ctrl-C.

use std::path::Path;
use std::process::ExitCode;

use time::OffsetDateTime;

use crate::schedule::Scheduler;
use crate::service;
use crate::web::{self, WebState};

/// Starts the schedules and serves the admin site until a stop signal.
pub(crate) async fn execute(fleet_path: &Path) -> anyhow::Result<ExitCode> {
    let ctx = service::open(fleet_path, None).await?;
    let scheduler = Scheduler::start(ctx.clone()).await?;
    let daily_prune = tokio::spawn(super::prune::run_daily(
        ctx.catalog.clone(),
        ctx.fleet.clone(),
    ));
    let state = WebState {
        catalog: ctx.catalog.clone(),
        fleet_name: ctx.fleet.source.display().to_string(),
        started_at: OffsetDateTime::now_utc(),
    };
    let listen = ctx.fleet.service.listen;
    tracing::info!(%listen, fleet = %ctx.fleet.source.display(), "bakfleet serving");
    web::serve(listen, state, stop_signal()).await?;
    scheduler.shutdown().await;
    daily_prune.abort();
    tracing::info!("bakfleet stopped");
    Ok(ExitCode::SUCCESS)
}

/// Resolves on SIGTERM or Ctrl-C.
pub(crate) async fn stop_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}
