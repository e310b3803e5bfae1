//! One job per database at a time, across processes.

use std::time::Duration;

use bakfleet::backup::BackupType;
use bakfleet::catalog::LeaseHolder;
use bakfleet::job::{self, JobContext, Phase};
use mssql_sim::engine::Fault;
use time::OffsetDateTime;

use crate::fixture::{TestFleet, Transport, INSTANCE};
use crate::smb::{succeeded, DATABASES};
use crate::target::skip_unless_simulator;

/// Opens the same fleet as another process would: same catalogue, another holder.
async fn second_process(fleet: &TestFleet) -> JobContext {
    let mut other = bakfleet::service::open(&fleet.fleet_path, None)
        .await
        .expect("open as a second process");
    other.holder = LeaseHolder {
        host: "other-host".to_string(),
        pid: 4242,
        id: "second-process".to_string(),
    };
    other
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_run_refused_naming_holder() {
    let fleet = TestFleet::start(Transport::Smb, DATABASES).await;
    if skip_unless_simulator(&fleet.target, "concurrent_run_refused_naming_holder") {
        return;
    }
    // Simulator-only: slow the first backup down so the second arrives while it runs.
    fleet.target.set_fault(Fault::SlowBackup {
        bytes_per_sec: 8 * 1024 * 1024,
    });
    let other = second_process(&fleet).await;
    let request = fleet.request("Sales", BackupType::Full);

    let first = tokio::spawn({
        let ctx = fleet.ctx.clone();
        let request = request.clone();
        async move { job::run(&ctx, &request).await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let refused = job::run(&other, &request)
        .await
        .expect_err("second run refused");
    assert_eq!(refused.phase, Phase::Lease);
    assert!(refused.run_id.is_none(), "a refused job records no run");
    let holder = &fleet.ctx.holder;
    assert!(refused.cause.contains(&holder.host), "{}", refused.cause);
    assert!(
        refused.cause.contains(&holder.pid.to_string()),
        "{}",
        refused.cause
    );

    succeeded(first.await.expect("first job task"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_lease_taken_over() {
    let fleet = TestFleet::start(Transport::Smb, DATABASES).await;
    let dead = LeaseHolder {
        host: "gone-host".to_string(),
        pid: 99_999,
        id: "dead-process".to_string(),
    };
    let long_ago = OffsetDateTime::now_utc() - time::Duration::hours(1);
    fleet
        .ctx
        .catalog
        .acquire_lease(
            INSTANCE,
            fleet.db("Sales"),
            &dead,
            Duration::from_secs(60),
            long_ago,
        )
        .await
        .expect("plant a lease that expired");

    succeeded(fleet.run("Sales", BackupType::Full).await);
}
