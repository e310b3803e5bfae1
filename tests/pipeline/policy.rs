//! Policies on a simulated day: the scheduler with a simulated clock drives real jobs, and
//! the type decision changes or skips them as the databases require.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bakfleet::backup::BackupType;
use bakfleet::catalog::RunRow;
use bakfleet::schedule::{self, Scheduler, SimulatedClock};
use bakfleet::service;
use time::macros::datetime;
use time::OffsetDateTime;

use crate::fixture::{Databases, FleetOptions, TestFleet, Transport};
use crate::smb::succeeded;
use crate::target::skip_unless_simulator;

/// Full daily at 01:00, differential every 6 hours, log every hour at half past, in UTC.
const DAY_SCHEDULES: &str = "schedule.full = \"0 0 1 * * *\"\n\
                             schedule.diff = \"0 0 */6 * * *\"\n\
                             schedule.log = \"0 30 * * * *\"\n";

/// Sales gets a full backup before the day, Fresh has none, and Scratch uses SIMPLE.
const DAY_DATABASES: Databases = &[("Sales", "FULL"), ("Scratch", "SIMPLE"), ("Fresh", "FULL")];

/// How long a simulated day may take in real time.
const DAY_TIMEOUT: Duration = Duration::from_secs(900);

/// Counts runs per outcome, written "requested→taken status" or "type status".
fn outcomes(runs: &[&RunRow]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for run in runs {
        let types = if run.requested_type == run.backup_type {
            run.backup_type.to_string()
        } else {
            format!("{}→{}", run.requested_type, run.backup_type)
        };
        let status = match run.skip_kind {
            Some(kind) => kind.label().to_string(),
            None => run.status.as_str().to_string(),
        };
        *counts.entry(format!("{types} {status}")).or_insert(0) += 1;
    }
    counts
}

fn expected(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs
        .iter()
        .map(|(outcome, count)| (outcome.to_string(), *count))
        .collect()
}

async fn scheduled_runs(fleet: &TestFleet) -> Vec<RunRow> {
    let runs = fleet.ctx.catalog.recent_runs(10_000).await.expect("runs");
    runs.into_iter()
        .filter(|run| run.trigger == "schedule")
        .collect()
}

fn runs_of<'r>(runs: &'r [RunRow], database: &str) -> Vec<&'r RunRow> {
    runs.iter().filter(|run| run.database == database).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_day_takes_expected_types() {
    let options = FleetOptions {
        defaults: DAY_SCHEDULES,
        system_databases: &["master"],
        ..FleetOptions::default()
    };
    let fleet = TestFleet::start_with(Transport::Sftp, DAY_DATABASES, options).await;
    if skip_unless_simulator(&fleet.target, "policy_day_takes_expected_types") {
        return;
    }
    succeeded(fleet.run("Sales", BackupType::Full).await);

    let start = datetime!(2026-06-01 00:00 UTC);
    let end = datetime!(2026-06-02 00:00 UTC);
    let clock = Arc::new(SimulatedClock::new(start, end));
    let scheduler = Scheduler::start_with(fleet.ctx.clone(), clock.clone(), false)
        .await
        .expect("start the scheduler");
    tokio::time::timeout(DAY_TIMEOUT, clock.parked())
        .await
        .expect("the simulated day finishes");
    scheduler.shutdown().await;

    let runs = scheduled_runs(&fleet).await;
    for database in [
        fleet.db("Sales"),
        fleet.db("Scratch"),
        fleet.db("Fresh"),
        "master",
    ] {
        let of_database = runs_of(&runs, database);
        assert_eq!(
            of_database.len(),
            29,
            "{database}: 24 log, 1 full and 4 diff slots"
        );
        let mut slots: Vec<(BackupType, OffsetDateTime)> = of_database
            .iter()
            .map(|run| {
                (
                    run.requested_type,
                    run.slot.expect("scheduled runs have a slot"),
                )
            })
            .collect();
        slots.sort();
        slots.dedup();
        assert_eq!(slots.len(), 29, "{database}: each slot runs once");
    }

    let sales = outcomes(&runs_of(&runs, fleet.db("Sales")));
    let expected_sales = expected(&[
        ("diff succeeded", 4),
        ("full succeeded", 1),
        ("log succeeded", 24),
    ]);
    assert_eq!(sales, expected_sales, "Sales runs every type as requested");

    let fresh_runs = runs_of(&runs, fleet.db("Fresh"));
    let fresh = outcomes(&fresh_runs);
    let expected_fresh = expected(&[
        ("diff succeeded", 4),
        ("full succeeded", 1),
        ("log succeeded", 23),
        ("log→full succeeded", 1),
    ]);
    assert_eq!(fresh, expected_fresh, "Fresh's first log becomes a full");
    let promoted = fresh_runs
        .iter()
        .find(|run| run.backup_type != run.requested_type)
        .expect("a promoted run");
    assert_eq!(promoted.slot, Some(datetime!(2026-06-01 00:30 UTC)));
    let reason = promoted.reason.as_deref().unwrap_or_default();
    assert!(reason.starts_with("log changed to full: "), "{reason}");
    assert!(reason.contains("no log chain"), "{reason}");

    let scratch = outcomes(&runs_of(&runs, fleet.db("Scratch")));
    let expected_scratch = expected(&[
        ("diff succeeded", 4),
        ("full succeeded", 1),
        ("log not applicable", 24),
    ]);
    assert_eq!(scratch, expected_scratch, "SIMPLE has no log backups");

    let master_runs = runs_of(&runs, "master");
    let master = outcomes(&master_runs);
    let expected_master = expected(&[
        ("diff not applicable", 4),
        ("full succeeded", 1),
        ("log not applicable", 24),
    ]);
    assert_eq!(master, expected_master, "master has only full backups");
    let diff_reason = master_runs
        .iter()
        .find(|run| run.requested_type == BackupType::Diff)
        .and_then(|run| run.reason.clone())
        .unwrap_or_default();
    assert!(diff_reason.starts_with("not applicable: "), "{diff_reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_catch_up_runs_once_per_type() {
    let options = FleetOptions {
        defaults: "schedule.full = \"0 0 1 * * *\"\nschedule.diff = \"0 0 */6 * * *\"\n\
                   schedule.log = \"0 0 * * * *\"\n",
        ..FleetOptions::default()
    };
    let fleet = TestFleet::start_with(Transport::Sftp, &[("Sales", "FULL")], options).await;
    if skip_unless_simulator(&fleet.target, "policy_catch_up_runs_once_per_type") {
        return;
    }

    // An empty catalogue is the longest downtime: every slot so far was missed.
    let now = OffsetDateTime::now_utc();
    for round in 1..=2 {
        let clock = Arc::new(SimulatedClock::new(now, now));
        let scheduler = Scheduler::start_with(fleet.ctx.clone(), clock.clone(), true)
            .await
            .expect("start the scheduler");
        tokio::time::timeout(DAY_TIMEOUT, clock.parked())
            .await
            .expect("the catch-up finishes");
        scheduler.shutdown().await;

        let runs = scheduled_runs(&fleet).await;
        let mut types: Vec<BackupType> = runs.iter().map(|run| run.requested_type).collect();
        types.sort();
        assert_eq!(
            types,
            vec![BackupType::Full, BackupType::Diff, BackupType::Log],
            "round {round}: one run per overdue type, none for a served slot"
        );
        for run in &runs {
            let slot = run.slot.expect("a caught-up run has its slot");
            assert!(slot <= now, "the slot is the newest before the start");
            assert!(
                now - slot <= time::Duration::DAY,
                "the slot is the newest one"
            );
            assert_eq!(run.backup_type, run.requested_type, "{run:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_slot_runs_once_across_schedulers() {
    let fleet = TestFleet::start(Transport::Sftp, &[("Sales", "FULL")]).await;
    let second = service::open(&fleet.fleet_path, None)
        .await
        .expect("open a second service on the same catalogue");
    let entries = schedule::entries(&fleet.ctx.fleet).expect("entries");
    let full = entries
        .iter()
        .find(|entry| entry.backup_type == BackupType::Full)
        .expect("a full schedule");
    let slot = datetime!(2026-06-07 01:00 UTC);

    tokio::join!(
        schedule::run_cycle(&fleet.ctx, full, slot),
        schedule::run_cycle(&second, full, slot),
    );
    schedule::run_cycle(&second, full, slot).await;

    let runs = scheduled_runs(&fleet).await;
    let in_slot: Vec<&RunRow> = runs.iter().filter(|run| run.slot == Some(slot)).collect();
    assert_eq!(in_slot.len(), 1, "one run for the slot: {in_slot:?}");
    assert_eq!(in_slot[0].status.as_str(), "succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_options_reach_backup() {
    let options = FleetOptions {
        defaults: "buffer_count = 16\nmax_transfer_size = 1048576\n",
        ..FleetOptions::default()
    };
    let fleet = TestFleet::start_with(Transport::Sftp, &[("Sales", "FULL")], options).await;
    if skip_unless_simulator(&fleet.target, "policy_options_reach_backup") {
        return;
    }
    succeeded(fleet.run("Sales", BackupType::Full).await);

    let quoted = bakfleet::mssql::tsql::quote_ident(fleet.db("Sales"));
    let statements = fleet.target.statements();
    let backup = statements
        .iter()
        .find(|sql| sql.starts_with(&format!("BACKUP DATABASE {quoted}")))
        .unwrap_or_else(|| panic!("no BACKUP of {quoted} in {statements:#?}"));
    assert!(backup.contains("BUFFERCOUNT = 16"), "{backup}");
    assert!(backup.contains("MAXTRANSFERSIZE = 1048576"), "{backup}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_without_change_fails_log() {
    let options = FleetOptions {
        defaults: "change_backup_type = false\n",
        ..FleetOptions::default()
    };
    let fleet = TestFleet::start_with(Transport::Sftp, &[("Fresh", "FULL")], options).await;
    let failure = match fleet.run("Fresh", BackupType::Log).await {
        Err(failure) => failure,
        Ok(outcome) => panic!("expected a failed run, got {outcome:?}"),
    };
    assert_eq!(failure.phase.as_str(), "preflight");
    assert!(failure.cause.contains("no log chain"), "{}", failure.cause);
    assert!(
        failure.cause.contains("change_backup_type = false"),
        "{}",
        failure.cause
    );
    let run_id = failure.run_id.expect("the run was recorded");
    let run = fleet.ctx.catalog.run(run_id).await.unwrap().unwrap();
    assert_eq!(run.status.as_str(), "failed");
    assert_eq!(run.backup_type, BackupType::Log, "no type change recorded");
    let backups = fleet
        .ctx
        .catalog
        .backups_of_database(crate::fixture::INSTANCE, fleet.db("Fresh"), 10)
        .await
        .unwrap();
    assert!(backups.is_empty(), "no backup was taken: {backups:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_backup_names_certificate() {
    let defaults = format!(
        "encryption = {{ algorithm = \"AES_256\", server_certificate = {:?} }}\n",
        crate::target::SIMULATOR_CERTIFICATE
    );
    let options = FleetOptions {
        defaults: &defaults,
        ..FleetOptions::default()
    };
    let fleet = TestFleet::start_with(Transport::Sftp, &[("Sales", "FULL")], options).await;
    if skip_unless_simulator(&fleet.target, "encrypted_backup_names_certificate") {
        return;
    }
    succeeded(fleet.run("Sales", BackupType::Full).await);

    let quoted = bakfleet::mssql::tsql::quote_ident(fleet.db("Sales"));
    let statements = fleet.target.statements();
    let backup = statements
        .iter()
        .find(|sql| sql.starts_with(&format!("BACKUP DATABASE {quoted}")))
        .unwrap_or_else(|| panic!("no BACKUP of {quoted} in {statements:#?}"));
    assert!(
        backup.contains("ENCRYPTION (ALGORITHM = AES_256, SERVER CERTIFICATE = [BackupCert])"),
        "{backup}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_certificate_fails_backup() {
    let options = FleetOptions {
        defaults: "encryption = { algorithm = \"AES_256\", server_certificate = \"NoSuchCert\" }\n",
        ..FleetOptions::default()
    };
    let fleet = TestFleet::start_with(Transport::Sftp, &[("Sales", "FULL")], options).await;
    if skip_unless_simulator(&fleet.target, "unknown_certificate_fails_backup") {
        return;
    }
    let failure = match fleet.run("Sales", BackupType::Full).await {
        Err(failure) => failure,
        Ok(outcome) => panic!("expected a failed run, got {outcome:?}"),
    };
    assert_eq!(failure.phase.as_str(), "backup");
    assert!(failure.cause.contains("15151"), "{}", failure.cause);
    assert!(failure.cause.contains("NoSuchCert"), "{}", failure.cause);
}
