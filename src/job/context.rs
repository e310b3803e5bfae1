//! The context every job shares: catalogue, store, secrets, the lease holder identity,
//! and the channel for progress events.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;

use super::limits::Limits;
use super::{JobRequest, Phase};
use crate::catalog::{Catalog, LeaseHolder};
use crate::fleet::{Fleet, Secrets};
use crate::shutdown::Shutdown;
use crate::store::Store;

/// The reason a job runs, stored on the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Schedule,
    Manual,
    Demo,
}

impl Trigger {
    /// Returns the name stored in the catalogue.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Manual => "manual",
            Trigger::Demo => "demo",
        }
    }
}

/// A progress event for a terminal or the admin site.
#[derive(Debug, Clone, PartialEq)]
pub struct JobEvent {
    pub run_id: i64,
    pub instance: String,
    pub database: String,
    pub kind: JobEventKind,
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum JobEventKind {
    Phase(Phase),
    /// `percent_complete` of the running BACKUP, from `sys.dm_exec_requests`.
    BackupPercent(f32),
    /// Bytes fetched so far, and the file size when known.
    Fetched {
        bytes: u64,
        total: Option<u64>,
    },
    Succeeded {
        backup_id: i64,
    },
    Skipped(String),
    Failed(String),
}

/// Shared by every job of a process.
#[derive(Clone)]
pub struct JobContext {
    pub fleet: Arc<Fleet>,
    pub catalog: Catalog,
    pub store: Arc<Store>,
    pub secrets: Arc<Secrets>,
    /// This process, as other processes see it in a lease.
    pub holder: LeaseHolder,
    /// How long a lease lives without renewal; renewed at a third of it.
    pub lease_ttl: Duration,
    /// How often BACKUP progress is read from `sys.dm_exec_requests`.
    pub progress_interval: Duration,
    pub events: Option<UnboundedSender<JobEvent>>,
    /// Slots per process, instance and staging server; every job waits for one.
    pub limits: Arc<Limits>,
    /// The process's stop state: whether jobs may start, and whether running ones must stop.
    pub shutdown: Shutdown,
}

impl JobContext {
    pub(crate) fn emit(&self, request: &JobRequest, run_id: i64, kind: JobEventKind) {
        if let Some(events) = &self.events {
            let event = JobEvent {
                run_id,
                instance: request.instance.name.clone(),
                database: request.database.clone(),
                kind,
            };
            // A closed receiver means the watcher has gone; the job goes on.
            let _ = events.send(event);
        }
    }

    /// Records the phase a run entered, for the catalogue and for watchers.
    pub(crate) async fn phase(&self, request: &JobRequest, run_id: i64, phase: Phase) {
        tracing::debug!(phase = %phase, "phase started");
        if let Err(error) = self.catalog.set_run_phase(run_id, phase.as_str()).await {
            tracing::warn!(%error, phase = %phase, "could not record the run phase");
        }
        self.emit(request, run_id, JobEventKind::Phase(phase));
        halt_if_requested(phase).await;
    }
}

/// Environment variable that makes a job stop for good when it enters the named phase
/// (`connect`, `backup`, `fetch`, ...). Crash tests set it, wait for the warning, and kill
/// the process with SIGKILL, which puts the kill at a known point of the pipeline.
pub const HALT_AT_PHASE_VARIABLE: &str = "BAKFLEET_TEST_HALT_AT_PHASE";

async fn halt_if_requested(phase: Phase) {
    static HALT_AT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let halt_at = HALT_AT.get_or_init(|| std::env::var(HALT_AT_PHASE_VARIABLE).ok());
    if halt_at.as_deref() == Some(phase.as_str()) {
        tracing::warn!(%phase, "{HALT_AT_PHASE_VARIABLE} is set: halted until killed");
        std::future::pending::<()>().await;
    }
}
