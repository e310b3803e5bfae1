//! `bakfleet serve`: the scheduler and the admin site, until SIGTERM or Ctrl-C.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::oneshot;

use crate::schedule::Scheduler;
use crate::service;
use crate::shutdown::{self, StopSignal};
use crate::web::{self, WebState};

/// Starts the schedules and serves the admin site until a stop signal, then gives running
/// jobs `grace` to finish.
///
/// Returns [`shutdown::EXIT_INTERRUPTED`] when the stop interrupted a job.
pub(crate) async fn execute(fleet_path: &Path, grace: Duration) -> anyhow::Result<ExitCode> {
    let ctx = service::open(fleet_path, None).await?;
    let scheduler = Scheduler::start(ctx.clone()).await?;
    let drills = tokio::spawn(crate::drill::run_scheduled(
        ctx.fleet.clone(),
        ctx.secrets.clone(),
        ctx.catalog.clone(),
        std::sync::Arc::new(crate::schedule::SystemClock),
    ));
    let daily_prune = tokio::spawn(super::prune::run_daily(
        ctx.catalog.clone(),
        ctx.fleet.clone(),
    ));
    // "Run now" on the site hands its backups to this task, which runs them with the
    // scheduler's limits and stop handling.
    let (run_requests, run_receiver) = tokio::sync::mpsc::channel(16);
    let requested_runs = tokio::spawn(web::run_requested_backups(ctx.clone(), run_receiver));
    let state = WebState {
        catalog: ctx.catalog.clone(),
        fleet_name: ctx.fleet.source.display().to_string(),
        started_at: OffsetDateTime::now_utc(),
        limits: Some(ctx.limits.clone()),
        sessions: web::SessionSettings::from_service(&ctx.fleet.service),
        store: Some(ctx.store.clone()),
        run_requests: Some(run_requests),
    };
    let listen = ctx.fleet.service.listen;
    tracing::info!(%listen, fleet = %ctx.fleet.source.display(), grace_secs = grace.as_secs(), "bakfleet serving");

    // The signal stops new jobs at once; the site then finishes its open requests.
    let (stopped, signal_received) = oneshot::channel();
    let stop = {
        let shutdown = ctx.shutdown.clone();
        async move {
            let signal = shutdown::wait_for_stop_signal().await;
            shutdown.begin(signal);
            let _ = stopped.send(signal);
        }
    };
    web::serve(listen, state, stop).await?;
    scheduler.shutdown().await;
    daily_prune.abort();
    // Jobs it already started hold stop tokens, so the drain below still waits for them.
    requested_runs.abort();
    // A drill cut off here is marked interrupted at the next start; its copy may remain
    // on the sandbox, as the drill's record states.
    drills.abort();

    // The site ends only through the stop future, so a signal was received.
    let signal = signal_received.await.unwrap_or(StopSignal::Terminate);
    ctx.shutdown.drain(signal, grace).await;
    tracing::info!(
        interrupted_jobs = ctx.shutdown.interrupted_jobs(),
        "bakfleet stopped"
    );
    Ok(match ctx.shutdown.exit_code() {
        Some(code) => ExitCode::from(code),
        None => ExitCode::SUCCESS,
    })
}

/// Resolves on SIGTERM or Ctrl-C.
#[cfg(feature = "demo")]
pub(crate) async fn stop_signal() {
    shutdown::wait_for_stop_signal().await;
}
