//! `bakfleet serve`: the scheduler and the admin site, until SIGTERM or Ctrl-C.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use time::OffsetDateTime;
use tokio::signal::unix::SignalKind;
use tokio::sync::oneshot;

use crate::fleet::{Fleet, FleetError};
use crate::reload::{FleetStatus, Reloader};
use crate::schedule::{Scheduler, SystemClock};
use crate::service;
use crate::shutdown::{self, StopSignal};
use crate::web::{self, WebState};

/// Starts the schedules and serves the admin site until a stop signal, then gives running
/// jobs `grace` to finish.
///
/// Returns [`shutdown::EXIT_INTERRUPTED`] when the stop interrupted a job.
pub(crate) async fn execute(fleet_path: &Path, grace: Duration) -> anyhow::Result<ExitCode> {
    // tokio keeps a signal handler installed for the life of the process, so this
    // keeps a SIGHUP during start-up from ending it (SIGHUP's default action).
    let _early_hangups = tokio::signal::unix::signal(SignalKind::hangup())
        .context("cannot install the SIGHUP handler that reloads the fleet file")?;
    // The status hashes the same text the fleet was parsed from.
    let text = std::fs::read_to_string(fleet_path).map_err(|cause| FleetError::Read {
        path: fleet_path.to_path_buf(),
        cause,
    })?;
    let fleet = Fleet::parse(&text, fleet_path)?;
    // Job events feed the live progress of `/runs/live`.
    let (events, event_receiver) = tokio::sync::mpsc::unbounded_channel();
    let ctx = service::open_fleet(fleet, Some(events)).await?;
    let live = web::LiveRuns::new();
    let live_events = tokio::spawn(web::collect_events(
        live.clone(),
        ctx.catalog.clone(),
        event_receiver,
    ));
    let status = FleetStatus::loaded(&ctx, &text).await;
    tracing::info!(fleet = %fleet_path.display(), revision = %status.revision, "fleet file loaded");
    let reloader = Reloader::new(ctx.clone(), status);
    let contexts = reloader.contexts();
    let fleet_status = reloader.status();
    let reloads = tokio::spawn(async move {
        if let Err(error) = reloader.run().await {
            tracing::error!(%error, "fleet file reloads stopped");
        }
    });
    let scheduler =
        Scheduler::start_reloading(contexts.clone(), Arc::new(SystemClock), true).await?;
    // TODO: restart the drill schedules when a reload changes them; until then a reload
    // logs that they wait for the next restart.
    let drills = tokio::spawn(crate::drill::run_scheduled(
        ctx.fleet.clone(),
        ctx.secrets.clone(),
        ctx.catalog.clone(),
        std::sync::Arc::new(crate::schedule::SystemClock),
    ));
    let daily_prune = tokio::spawn(super::prune::run_daily(contexts.clone()));
    let alerts = tokio::spawn(crate::alert::run_periodic(contexts.clone()));
    // "Run now" on the site hands its backups to this task, which runs them with the
    // scheduler's limits and stop handling.
    let (run_requests, run_receiver) = tokio::sync::mpsc::channel(16);
    let requested_runs = tokio::spawn(web::run_requested_backups(contexts.clone(), run_receiver));
    let state = WebState {
        catalog: ctx.catalog.clone(),
        fleet_name: ctx.fleet.source.display().to_string(),
        started_at: OffsetDateTime::now_utc(),
        limits: Some(ctx.limits.clone()),
        fleet_status: Some(fleet_status),
        sessions: web::SessionSettings::from_service(&ctx.fleet.service),
        store: Some(ctx.store.clone()),
        run_requests: Some(run_requests),
        fleet: Some(web::FleetInForce::Reloading(contexts.clone())),
        metrics: ctx.fleet.service.metrics,
        live: Some(live.clone()),
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
            // Open event streams would hold the site's graceful shutdown forever.
            live.close();
            let _ = stopped.send(signal);
        }
    };
    web::serve(listen, state, stop).await?;
    scheduler.shutdown().await;
    reloads.abort();
    daily_prune.abort();
    // A pass cut off here leaves its unsent deliveries pending for the next start.
    alerts.abort();
    // Jobs it already started hold stop tokens, so the drain below still waits for them.
    requested_runs.abort();
    // A drill cut off here is marked interrupted at the next start; its copy may remain
    // on the sandbox, as the drill's record states.
    drills.abort();
    live_events.abort();

    // The site ends only through the stop future, so a signal was received.
    let signal = signal_received.await.unwrap_or(StopSignal::Terminate);
    ctx.shutdown.drain(signal, grace).await;
    crate::run_log::finish().await;
    ctx.catalog.close().await;
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
