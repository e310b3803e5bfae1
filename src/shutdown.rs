//! Stopping a process that runs jobs: on SIGTERM or Ctrl-C no new job starts, running jobs
//! get a grace time to finish, and the rest are cancelled at their next safe point.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;
use tokio_util::task::{task_tracker::TaskTrackerToken, TaskTracker};

/// Default seconds that running jobs get to finish after a stop signal.
pub const DEFAULT_GRACE_SECS: u64 = 60;

/// Exit code of `serve` and `run` when a stop signal interrupted a job or kept a queued
/// job from starting. It is `EX_TEMPFAIL` from sysexits.h: running the command again
/// finishes the work.
pub const EXIT_INTERRUPTED: u8 = 75;

/// A signal that requests a stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    Terminate,
    Interrupt,
}

impl fmt::Display for StopSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopSignal::Terminate => f.write_str("SIGTERM"),
            StopSignal::Interrupt => f.write_str("SIGINT"),
        }
    }
}

/// The stop state shared by every job of a process. Cloning shares the state.
///
/// Two tokens mark the two steps of a stop: `draining` keeps new jobs from starting, and
/// `cancel` makes running jobs to stop at their next stage boundary or inside the fetch.
#[derive(Clone, Default)]
pub struct Shutdown {
    draining: CancellationToken,
    cancel: CancellationToken,
    /// The reason stored on every interrupted run; set once, before `cancel` fires.
    reason: Arc<OnceLock<String>>,
    running: TaskTracker,
    interrupted: Arc<AtomicUsize>,
}

impl fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shutdown")
            .field("draining", &self.is_draining())
            .field("cancelled", &self.is_cancelled())
            .field("running_jobs", &self.running.len())
            .field("interrupted_jobs", &self.interrupted_jobs())
            .finish()
    }
}

/// The end of a stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopOutcome {
    /// Every running job finished within the grace time.
    Finished,
    /// The grace time ran out, or a second signal came, and running jobs were cancelled.
    Cancelled,
}

impl Shutdown {
    /// Creates the state of a process that is not stopping.
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Checks whether a stop began, so no new job may start.
    pub fn is_draining(&self) -> bool {
        self.draining.is_cancelled()
    }

    /// Checks whether running jobs were cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Waits until running jobs are cancelled.
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await;
    }

    /// Returns the reason for the cancellation, once running jobs were cancelled.
    pub fn reason(&self) -> Option<&str> {
        self.reason.get().map(String::as_str)
    }

    /// Registers a job as running, until the returned token is dropped; a stop waits for
    /// every registered job. Returns `None` once a stop began, and the job must not start.
    pub fn start_job(&self) -> Option<TaskTrackerToken> {
        if self.is_draining() {
            return None;
        }
        Some(self.running.token())
    }

    /// Counts a job that a stop interrupted or kept from starting.
    pub fn count_interrupted(&self) {
        self.interrupted.fetch_add(1, Ordering::SeqCst);
    }

    /// Returns how many jobs a stop interrupted or kept from starting.
    pub fn interrupted_jobs(&self) -> usize {
        self.interrupted.load(Ordering::SeqCst)
    }

    /// Stops new jobs from starting.
    pub fn begin(&self, signal: StopSignal) {
        if !self.is_draining() {
            tracing::info!(%signal, running_jobs = self.running.len(), "stopping: no new jobs start");
        }
        self.draining.cancel();
    }

    /// Cancels running jobs, which stop at their next safe point. The first reason given is kept.
    pub fn cancel(&self, reason: String) {
        self.draining.cancel();
        if self.reason.set(reason).is_ok() {
            tracing::warn!(
                reason = self.reason().unwrap_or_default(),
                running_jobs = self.running.len(),
                "cancelling running jobs"
            );
        }
        self.cancel.cancel();
    }

    /// Runs a stop that `signal` began: waits up to `grace` for running jobs, then cancels
    /// them and waits until each one reached a safe point. A second signal during the grace
    /// time cancels at once.
    pub async fn drain(&self, signal: StopSignal, grace: Duration) -> StopOutcome {
        self.begin(signal);
        self.running.close();
        let finished = tokio::select! {
            () = self.running.wait() => true,
            () = tokio::time::sleep(grace) => false,
            second = wait_for_stop_signal() => {
                self.cancel(format!("stopped by a second {second} during the {} s grace", grace.as_secs()));
                false
            }
        };
        if finished {
            tracing::info!("every running job finished");
            return StopOutcome::Finished;
        }
        self.cancel(format!(
            "stopped by {signal} after {} s grace",
            grace.as_secs()
        ));
        self.running.wait().await;
        tracing::info!(
            interrupted_jobs = self.interrupted_jobs(),
            "every cancelled job stopped"
        );
        StopOutcome::Cancelled
    }

    /// Returns the exit code for a stopped `serve` or `run`: [`EXIT_INTERRUPTED`] when a
    /// stop interrupted a job or kept one from starting, otherwise `None`.
    pub fn exit_code(&self) -> Option<u8> {
        (self.interrupted_jobs() > 0).then_some(EXIT_INTERRUPTED)
    }
}

/// Waits for SIGTERM or SIGINT (Ctrl-C) and returns which came.
///
/// When the SIGTERM handler cannot be installed, the failure is logged and only Ctrl-C
/// stops the process.
pub async fn wait_for_stop_signal() -> StopSignal {
    let terminate = async {
        match signal(SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => StopSignal::Interrupt,
        () = terminate => StopSignal::Terminate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn drain_without_jobs_finishes() {
        let shutdown = Shutdown::new();
        let outcome = shutdown
            .drain(StopSignal::Terminate, Duration::from_secs(5))
            .await;
        assert_eq!(outcome, StopOutcome::Finished);
        assert!(shutdown.is_draining());
        assert!(!shutdown.is_cancelled());
        assert_eq!(shutdown.exit_code(), None);
    }

    #[tokio::test]
    async fn start_job_rejected_after_begin() {
        let shutdown = Shutdown::new();
        assert!(shutdown.start_job().is_some());
        shutdown.begin(StopSignal::Interrupt);
        assert!(shutdown.start_job().is_none());
    }

    #[tokio::test]
    async fn drain_waits_for_finishing_job() {
        let shutdown = Shutdown::new();
        let token = shutdown.start_job().expect("job starts");
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            drop(token);
        });
        let outcome = shutdown
            .drain(StopSignal::Terminate, Duration::from_secs(10))
            .await;
        assert_eq!(outcome, StopOutcome::Finished);
        assert!(!shutdown.is_cancelled());
    }

    #[tokio::test]
    async fn drain_cancels_job_after_grace() {
        let shutdown = Shutdown::new();
        let token = shutdown.start_job().expect("job starts");
        let job = {
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                shutdown.cancelled().await;
                shutdown.count_interrupted();
                drop(token);
            })
        };
        let outcome = shutdown
            .drain(StopSignal::Terminate, Duration::from_millis(50))
            .await;
        job.await.expect("job task");
        assert_eq!(outcome, StopOutcome::Cancelled);
        assert_eq!(
            shutdown.reason(),
            Some("stopped by SIGTERM after 0 s grace")
        );
        assert_eq!(shutdown.exit_code(), Some(EXIT_INTERRUPTED));
    }
}
