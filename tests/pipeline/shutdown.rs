//! A job cancelled by a stop while it fetches: the run is interrupted, the store keeps no
//! temp file, and the staged file stays on the share.

use std::time::{Duration, Instant};

use bakfleet::backup::BackupType;
use bakfleet::catalog::RunStatus;
use bakfleet::job::{self, Phase};
use mssql_sim::engine::Fault;

use crate::fixture::{list_files, TestFleet, Transport};
use crate::smb::DATABASES;
use crate::target::skip_unless_simulator;

/// Maximum wait for the job to reach a phase, and to stop once cancelled.
const WAIT_LIMIT: Duration = Duration::from_secs(60);

/// Polls the catalogue until a run reaches `phase`, and returns its id.
async fn wait_for_phase(fleet: &TestFleet, phase: &str) -> i64 {
    let started = Instant::now();
    loop {
        let runs = fleet.ctx.catalog.recent_runs(10).await.expect("read runs");
        if let Some(run) = runs.iter().find(|run| run.phase == phase) {
            return run.id;
        }
        assert!(
            started.elapsed() < WAIT_LIMIT,
            "no run reached the {phase} phase within {WAIT_LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// smbd is paused while the job verifies, so the fetch that follows hangs in smbclient
// until the cancellation drops it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_during_fetch_interrupts_run() {
    let fleet = TestFleet::start(Transport::Smb, DATABASES).await;
    if skip_unless_simulator(&fleet.target, "cancel_during_fetch_interrupts_run") {
        return;
    }
    fleet.target.set_fault(Fault::SlowBackup {
        bytes_per_sec: 8 * 1024 * 1024,
    });
    let request = fleet.request("Sales", BackupType::Full);
    let job = tokio::spawn({
        let ctx = fleet.ctx.clone();
        async move { job::run(&ctx, &request).await }
    });

    wait_for_phase(&fleet, "verify").await;
    let smbd_pid = fleet.smbd.as_ref().expect("simulated SMB staging").pid() as libc::pid_t;
    // SAFETY: pausing the smbd this test started, by its PID.
    unsafe { libc::kill(smbd_pid, libc::SIGSTOP) };
    let run_id = wait_for_phase(&fleet, "fetch").await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    fleet
        .ctx
        .shutdown
        .cancel("stopped by SIGTERM after 0 s grace".to_string());
    let result = tokio::time::timeout(WAIT_LIMIT, job)
        .await
        .expect("the job stops once cancelled")
        .expect("job task");
    // SAFETY: resuming the smbd this test paused.
    unsafe { libc::kill(smbd_pid, libc::SIGCONT) };

    let failure = result.expect_err("the job is interrupted");
    assert_eq!(failure.phase, Phase::Fetch);
    assert!(
        failure
            .cause
            .starts_with("stopped by SIGTERM after 0 s grace"),
        "{}",
        failure.cause
    );
    let run = fleet
        .ctx
        .catalog
        .run(run_id)
        .await
        .expect("read run")
        .expect("run");
    assert_eq!(run.status, RunStatus::Interrupted, "{run:?}");
    assert_eq!(run.phase, "fetch", "{run:?}");
    assert_eq!(run.backup_id, None, "no backup is catalogued");
    assert_eq!(fleet.ctx.shutdown.interrupted_jobs(), 1);
    let stored = list_files(fleet.store_root());
    assert!(stored.is_empty(), "no temp file in the store: {stored:?}");
    let staged = fleet.staged_files();
    assert_eq!(staged.len(), 1, "the staged file stays: {staged:?}");
}
