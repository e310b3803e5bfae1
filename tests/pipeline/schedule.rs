//! Scheduled cycles: the cron entries of `serve` start jobs by themselves.

use std::time::{Duration, Instant};

use bakfleet::schedule::Scheduler;

use crate::fixture::{FleetOptions, TestFleet, Transport, INSTANCE};
use crate::smb::DATABASES;

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
