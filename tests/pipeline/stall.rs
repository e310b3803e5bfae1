//! A BACKUP or RESTORE VERIFYONLY whose progress stops is killed after
//! `service.stall_timeout`, the job
//! sockets carry TCP keep-alive, and job events drive the live progress of the site.

use std::sync::Arc;
use std::time::Duration;

use bakfleet::backup::BackupType;
use bakfleet::job::{self, JobContext, JobFailure, JobRequest, Phase};
use bakfleet::mssql::{Connection, KEEPALIVE_IDLE, KEEPALIVE_INTERVAL};
use bakfleet::web::LiveRuns;
use mssql_sim::engine::Fault;

use crate::failures::check_failure;
use crate::fixture::{list_files, TestFleet, Transport, INSTANCE};
use crate::smb::{succeeded, DATABASES};
use crate::target::skip_unless_simulator;

/// Stall timeout of these tests: a few progress polls, one second apart.
const STALL_TIMEOUT: Duration = Duration::from_secs(3);

/// Maximum time a stalled job may take to fail: the timeout, the KILL, and slack for a
/// loaded machine.
const STALL_WAIT_LIMIT: Duration = Duration::from_secs(60);

/// Returns the fleet's job context with `service.stall_timeout` set to `timeout`.
fn with_stall_timeout(fleet: &TestFleet, timeout: Duration) -> JobContext {
    let mut ctx = fleet.ctx.clone();
    let mut settings = (*ctx.fleet).clone();
    settings.service.stall_timeout = Some(timeout);
    ctx.fleet = Arc::new(settings);
    ctx
}

/// Runs a job that must stall and fail within [`STALL_WAIT_LIMIT`], and returns its failure.
async fn run_until_stalled(ctx: &JobContext, request: &JobRequest) -> JobFailure {
    let result = tokio::time::timeout(STALL_WAIT_LIMIT, job::run(ctx, request))
        .await
        .expect("the stalled job must fail within the wait limit");
    match result {
        Err(failure) => failure,
        Ok(outcome) => panic!("expected a stalled job, got {outcome:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_backup_stalled_is_killed() {
    let fleet = TestFleet::start(Transport::Smb, DATABASES).await;
    if skip_unless_simulator(&fleet.target, "fault_backup_stalled_is_killed") {
        return;
    }
    fleet
        .target
        .set_fault(Fault::StallBackup { at_percent: 30 });
    let ctx = with_stall_timeout(&fleet, STALL_TIMEOUT);
    let request = fleet.request("Sales", BackupType::Full);

    let failure = run_until_stalled(&ctx, &request).await;
    let failure = check_failure(&fleet, "Sales", Phase::Backup, failure).await;
    let cause = &failure.cause;
    assert!(cause.contains("stalled"), "{cause}");
    assert!(cause.contains(INSTANCE), "{cause}");
    assert!(cause.contains("phase backup"), "{cause}");
    assert!(cause.contains("no progress for 3s"), "{cause}");
    assert!(cause.contains("killed session"), "{cause}");
    let kills: Vec<String> = fleet
        .target
        .statements()
        .into_iter()
        .filter(|statement| statement.starts_with("KILL "))
        .collect();
    assert_eq!(kills.len(), 1, "one KILL sent: {kills:?}");
    // The simulator removes the file of a BACKUP that did not finish.
    assert!(fleet.staged_files().is_empty(), "no staged file: {cause}");
    assert!(list_files(fleet.store_root()).is_empty(), "nothing stored");

    // The slot and the lease are free: the next run of the same database succeeds.
    fleet.target.clear_faults();
    let next = tokio::time::timeout(STALL_WAIT_LIMIT, job::run(&ctx, &request))
        .await
        .expect("the next run must not wait for the stalled run's slot");
    succeeded(next);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_verify_stalled_is_killed() {
    let fleet = TestFleet::start(Transport::Smb, DATABASES).await;
    if skip_unless_simulator(&fleet.target, "fault_verify_stalled_is_killed") {
        return;
    }
    fleet
        .target
        .set_fault(Fault::StallVerify { at_percent: 40 });
    let ctx = with_stall_timeout(&fleet, STALL_TIMEOUT);
    let request = fleet.request("Sales", BackupType::Full);

    let failure = run_until_stalled(&ctx, &request).await;
    let failure = check_failure(&fleet, "Sales", Phase::Verify, failure).await;
    let cause = &failure.cause;
    assert!(cause.contains("stalled"), "{cause}");
    assert!(cause.contains("phase verify"), "{cause}");
    assert!(cause.contains("no progress for 3s"), "{cause}");
    assert!(cause.contains("killed session"), "{cause}");
    let statements = fleet.target.statements();
    let kills = statements
        .iter()
        .filter(|statement| statement.starts_with("KILL "))
        .count();
    assert_eq!(kills, 1, "one KILL sent: {statements:?}");
    let verifies = statements
        .iter()
        .filter(|statement| statement.starts_with("RESTORE VERIFYONLY"))
        .count();
    assert_eq!(verifies, 1, "a stalled VERIFYONLY is not retried");
    // The backup itself finished, so its file stays on the share for the next run.
    assert_eq!(fleet.staged_files().len(), 1, "staged file kept: {cause}");
    assert!(list_files(fleet.store_root()).is_empty(), "nothing stored");

    fleet.target.clear_faults();
    let next = tokio::time::timeout(STALL_WAIT_LIMIT, job::run(&ctx, &request))
        .await
        .expect("the next run must not wait for the stalled run's slot");
    succeeded(next);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stall_timeout_spares_slow_backup() {
    let fleet = TestFleet::start(Transport::Smb, DATABASES).await;
    if skip_unless_simulator(&fleet.target, "stall_timeout_spares_slow_backup") {
        return;
    }
    // Slow but moving: every poll reads a higher percent, so no KILL is sent.
    fleet.target.resize_database(fleet.db("Sales"), 16);
    fleet.target.set_fault(Fault::SlowBackup {
        bytes_per_sec: 2 * 1024 * 1024,
    });
    let ctx = with_stall_timeout(&fleet, STALL_TIMEOUT);
    let request = fleet.request("Sales", BackupType::Full);

    succeeded(job::run(&ctx, &request).await);
    let kills = fleet
        .target
        .statements()
        .into_iter()
        .filter(|statement| statement.starts_with("KILL "))
        .count();
    assert_eq!(kills, 0, "a moving backup is not killed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_connection_has_keepalive() {
    let fleet = TestFleet::start(Transport::Smb, DATABASES).await;
    let instance = fleet.ctx.fleet.instance(INSTANCE).expect("test instance");
    let settings = job::connect_settings(instance, &fleet.ctx.secrets, None).expect("settings");

    let connection = Connection::open(&settings).await.expect("connect");

    let keepalive = connection.keepalive().expect("keep-alive read back");
    assert!(keepalive.enabled, "SO_KEEPALIVE");
    assert_eq!(keepalive.idle, KEEPALIVE_IDLE, "TCP_KEEPIDLE");
    assert_eq!(keepalive.interval, KEEPALIVE_INTERVAL, "TCP_KEEPINTVL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_runs_follow_slowed_backup() {
    let fleet = TestFleet::start(Transport::Smb, DATABASES).await;
    if skip_unless_simulator(&fleet.target, "live_runs_follow_slowed_backup") {
        return;
    }
    fleet.target.resize_database(fleet.db("Sales"), 16);
    fleet.target.set_fault(Fault::SlowBackup {
        bytes_per_sec: 4 * 1024 * 1024,
    });
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    let mut ctx = fleet.ctx.clone();
    ctx.events = Some(sender);
    let live = LiveRuns::new();
    let mut updates = live.subscribe();
    // Reads changes while the job runs, so that none is lost to the channel's buffer.
    let watcher = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Ok(run) = updates.recv().await {
            let ended = run.state != "running";
            seen.push(run);
            if ended {
                break;
            }
        }
        seen
    });
    let collector = tokio::spawn(bakfleet::web::collect_events(
        live.clone(),
        fleet.ctx.catalog.clone(),
        receiver,
    ));
    let request = fleet.request("Sales", BackupType::Full);

    let outcome = job::run(&ctx, &request).await;
    drop(ctx);
    succeeded(outcome);
    collector.await.expect("collector task");
    let seen = watcher.await.expect("watcher task");

    let mut phases: Vec<String> = Vec::new();
    let mut percents: Vec<f32> = Vec::new();
    let mut fetched = None;
    let mut last_state = "";
    for run in seen {
        if phases.last() != Some(&run.phase) {
            phases.push(run.phase.clone());
        }
        if let Some(percent) = run.percent {
            if percents.last() != Some(&percent) {
                percents.push(percent);
            }
        }
        fetched = run.bytes_fetched.or(fetched);
        assert_eq!(run.backup_type.as_deref(), Some("full"));
        last_state = run.state;
    }
    assert!(phases.contains(&"backup".to_string()), "{phases:?}");
    assert!(phases.contains(&"fetch".to_string()), "{phases:?}");
    assert!(
        percents.len() >= 2,
        "percent changed during the backup: {percents:?}"
    );
    assert!(
        fetched.is_some_and(|bytes| bytes > 0),
        "bytes fetched shown"
    );
    assert_eq!(last_state, "succeeded");
    assert!(live.snapshot().is_empty(), "an ended run leaves the table");
}

/// A backup started with "run now" reports to its own channel for the run id, and every
/// event also reaches the process's channel that `/runs/live` reads.
#[tokio::test]
async fn run_now_events_reach_live_runs() {
    let fleet = TestFleet::start(Transport::Smb, DATABASES).await;
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
    let mut ctx = fleet.ctx.clone();
    ctx.events = Some(sender);
    let (requests, request_receiver) = tokio::sync::mpsc::channel(1);
    let runner = tokio::spawn(bakfleet::web::run_requested_backups(
        tokio::sync::watch::channel(ctx).1,
        request_receiver,
    ));

    let (started, start) = tokio::sync::oneshot::channel();
    let request = bakfleet::web::RunRequest {
        instance: INSTANCE.to_string(),
        database: Some(fleet.db("Sales").to_string()),
        backup_type: BackupType::Full,
        requested_by: "operator".to_string(),
        started,
    };
    requests
        .send(request)
        .await
        .expect("the runner takes requests");
    let bakfleet::web::RunStart::Started(run_id) = start.await.expect("the runner answers") else {
        panic!("the run did not start");
    };

    let mut succeeded = false;
    while !succeeded {
        let event = tokio::time::timeout(STALL_WAIT_LIMIT, receiver.recv())
            .await
            .expect("events keep coming until the run ends")
            .expect("the process channel stays open");
        assert_eq!(event.run_id, run_id, "{event:?}");
        match event.kind {
            job::JobEventKind::Failed(cause) => panic!("run {run_id} failed: {cause}"),
            job::JobEventKind::Succeeded { .. } => succeeded = true,
            _ => {}
        }
    }
    runner.abort();
}
