//! Scheduled cycles: the cron entries of `serve` start jobs by themselves.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bakfleet::backup::BackupType;
use bakfleet::schedule::{Scheduler, SystemClock};
use mssql_sim::engine::Fault;
use time::OffsetDateTime;

use crate::fixture::{FleetOptions, TestFleet, Transport, INSTANCE};
use crate::smb::{succeeded, DATABASES};
use crate::target::skip_unless_simulator;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_runs_full_backups() {
    let options = FleetOptions {
        full_schedule: Some("*/2 * * * * *"),
        ..FleetOptions::default()
    };
    let fleet = TestFleet::start_with(Transport::Smb, DATABASES, options).await;
    let scheduler = Scheduler::start(fleet.ctx.clone())
        .await
        .expect("start the scheduler");

    let deadline = Instant::now() + Duration::from_secs(30);
    let mut backed_up = Vec::new();
    while Instant::now() < deadline {
        backed_up.clear();
        for (database, _) in DATABASES {
            let backups = fleet
                .ctx
                .catalog
                .backups_of_database(INSTANCE, fleet.db(database), 10)
                .await
                .expect("read catalogue");
            if !backups.is_empty() {
                backed_up.push(*database);
            }
        }
        if backed_up.len() == DATABASES.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    scheduler.shutdown().await;
    assert_eq!(
        backed_up.len(),
        DATABASES.len(),
        "scheduled backups: {backed_up:?}"
    );

    let runs = fleet.ctx.catalog.recent_runs(50).await.expect("runs");
    assert!(
        runs.iter().all(|run| run.trigger == "schedule"),
        "every run came from the schedule"
    );
}

// Simulator-only: the throttle makes the FULL of one policy last seconds, while the other
// policy of the same instance has a log slot every 2 seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_long_cycle_delays_no_other_policy() {
    let defaults = "schedule = { full = \"off\", diff = \"off\", log = \"*/2 * * * * *\" }\n\
                    [policy.slow]\n\
                    schedule = { full = \"*/2 * * * * *\", diff = \"off\", log = \"off\" }\n";
    let options = FleetOptions {
        defaults,
        // Test databases are named with a random prefix and a space.
        instance: "database_policies = [{ databases = [\"* Big\"], policy = \"slow\" }]\n",
        ..FleetOptions::default()
    };
    let databases: &[(&str, &str)] = &[("Big", "FULL"), ("Sales", "FULL")];
    let fleet = TestFleet::start_with(Transport::Smb, databases, options).await;
    if skip_unless_simulator(&fleet.target, "schedule_long_cycle_delays_no_other_policy") {
        return;
    }
    succeeded(fleet.run("Sales", BackupType::Full).await);
    fleet.target.set_fault(Fault::SlowBackup {
        bytes_per_sec: 256 * 1024,
    });
    let scheduler = Scheduler::start_with(fleet.ctx.clone(), Arc::new(SystemClock), false)
        .await
        .expect("start the scheduler");

    let big = fleet.db("Big").to_string();
    let sales = fleet.db("Sales").to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut overlapping = 0;
    while Instant::now() < deadline && overlapping < 2 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let runs = fleet.ctx.catalog.recent_runs(200).await.expect("runs");
        let Some(full) = runs
            .iter()
            .filter(|run| run.database == big && run.trigger == "schedule")
            .min_by_key(|run| run.started_at)
        else {
            continue;
        };
        let full_end = full.finished_at.unwrap_or(OffsetDateTime::now_utc());
        overlapping = runs
            .iter()
            .filter(|run| run.database == sales && run.trigger == "schedule")
            .filter(|run| run.started_at > full.started_at && run.started_at < full_end)
            .count();
    }
    fleet.target.clear_faults();
    scheduler.shutdown().await;
    assert!(
        overlapping >= 2,
        "Sales's log slots ran while Big's scheduled full ran: {overlapping}"
    );
}
