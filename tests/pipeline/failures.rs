//! Failures: each leaves a failed run naming instance, database, phase and cause, no
//! backup catalogued as good, and the staged file in place when no durable copy exists.

use bakfleet::backup::BackupType;
use bakfleet::job::{JobFailure, Phase};
use mssql_sim::engine::{Corruption, Fault};

use crate::fixture::{list_files, FleetOptions, TestFleet, Transport, INSTANCE};
use crate::smb::DATABASES;
use crate::target::skip_unless_simulator;

/// Runs a full backup of `database` that must fail, and checks what every failure must
/// leave.
pub async fn expect_failure(fleet: &TestFleet, database: &str, phase: Phase) -> JobFailure {
    let failure = match fleet.run(database, BackupType::Full).await {
        Err(failure) => failure,
        Ok(outcome) => panic!("expected a failure in {phase}, got {outcome:?}"),
    };
    check_failure(fleet, database, phase, failure).await
}

/// Checks that a failed full backup of `database` names instance, database and phase,
/// that its run is marked failed with the cause, and that nothing was catalogued.
pub async fn check_failure(
    fleet: &TestFleet,
    database: &str,
    phase: Phase,
    failure: JobFailure,
) -> JobFailure {
    let text = failure.to_string();
    let name = fleet.request(database, BackupType::Full).database;
    assert_eq!(failure.phase, phase, "failed phase: {text}");
    assert!(text.contains(INSTANCE), "names the instance: {text}");
    assert!(text.contains(&name), "names the database: {text}");

    let run_id = failure.run_id.expect("a run was recorded");
    let run = fleet
        .ctx
        .catalog
        .run(run_id)
        .await
        .unwrap()
        .expect("run row");
    assert_eq!(run.status.as_str(), "failed");
    assert_eq!(run.phase, phase.as_str());
    assert_eq!(run.error.as_deref(), Some(failure.cause.as_str()));
    let backups = fleet
        .ctx
        .catalog
        .backups_of_database(INSTANCE, &name, 10)
        .await
        .unwrap();
    assert!(backups.is_empty(), "nothing catalogued: {backups:?}");
    failure
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_staging_path_fails_backup_with_3201() {
    let options = FleetOptions {
        missing_staging_folder: true,
        ..FleetOptions::default()
    };
    let fleet = TestFleet::start_with(Transport::Smb, DATABASES, options).await;
    let failure = expect_failure(&fleet, "Sales", Phase::Backup).await;
    assert!(failure.cause.contains("3201"), "{}", failure.cause);
    assert!(
        failure.cause.contains("Operating system error 3"),
        "{}",
        failure.cause
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_database_fails_preflight() {
    let fleet = TestFleet::start(Transport::Smb, DATABASES).await;
    let failure = expect_failure(&fleet, "NoSuchDb", Phase::Preflight).await;
    assert!(
        failure.cause.contains("does not exist"),
        "{}",
        failure.cause
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_data_byte_fails_verify_with_3189() {
    let fleet = TestFleet::start(Transport::Smb, DATABASES).await;
    if skip_unless_simulator(&fleet.target, "flipped_data_byte_fails_verify_with_3189") {
        return;
    }
    // Simulator-only: damage the file between BACKUP and VERIFYONLY.
    fleet.target.set_fault(Fault::CorruptNextBackup {
        what: Corruption::PayloadByte,
    });
    let failure = expect_failure(&fleet, "Sales", Phase::Verify).await;
    assert!(failure.cause.contains("3189"), "{}", failure.cause);
    assert_eq!(fleet.staged_files().len(), 1, "staged file kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_header_byte_fails_verify_with_3241() {
    // Descriptor blocks of a compressed backup sit inside compressed records, where a
    // flipped byte is data damage; a plain file shows header damage as such.
    let options = FleetOptions {
        compression: false,
        ..FleetOptions::default()
    };
    let fleet = TestFleet::start_with(Transport::Smb, DATABASES, options).await;
    if skip_unless_simulator(&fleet.target, "flipped_header_byte_fails_verify_with_3241") {
        return;
    }
    // Simulator-only: damage a descriptor block between BACKUP and VERIFYONLY.
    fleet.target.set_fault(Fault::CorruptNextBackup {
        what: Corruption::HeaderByte,
    });
    let failure = expect_failure(&fleet, "Sales", Phase::Verify).await;
    assert!(failure.cause.contains("3241"), "{}", failure.cause);
    assert_eq!(fleet.staged_files().len(), 1, "staged file kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_smbd_fails_fetch_and_keeps_staged_file() {
    let mut fleet = TestFleet::start(Transport::Smb, DATABASES).await;
    if skip_unless_simulator(
        &fleet.target,
        "stopped_smbd_fails_fetch_and_keeps_staged_file",
    ) {
        return;
    }
    fleet.smbd.as_mut().expect("smbd").stop();
    let failure = expect_failure(&fleet, "Sales", Phase::Fetch).await;
    assert_eq!(fleet.staged_files().len(), 1, "staged file kept: {failure}");
    assert!(
        list_files(fleet.store_root()).is_empty(),
        "no partial file left in the store"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msdb_mismatch_fails_header_check() {
    let fleet = TestFleet::start(Transport::Smb, DATABASES).await;
    // Simulator-only: msdb records a GUID and LastLSN that the file does not hold.
    fleet.target.set_fault(Fault::MisrecordNextHistory);
    let failure = expect_failure(&fleet, "Sales", Phase::Header).await;
    assert!(
        failure.cause.contains("backup set GUID: file "),
        "{}",
        failure.cause
    );
    assert!(
        failure.cause.contains("LastLSN: file "),
        "{}",
        failure.cause
    );
    assert!(
        !failure.cause.contains("FirstLSN"),
        "only differing fields: {}",
        failure.cause
    );
    assert_eq!(fleet.staged_files().len(), 1, "staged file kept");
    assert!(
        super::fixture::list_files(fleet.store_root()).is_empty(),
        "stored copy removed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_changed_after_verify_not_catalogued() {
    let fleet = TestFleet::start(Transport::Smb, DATABASES).await;
    if skip_unless_simulator(&fleet.target, "file_changed_after_verify_not_catalogued") {
        return;
    }
    // Simulator-only: damage the staged file after VERIFYONLY passed, before the fetch.
    fleet.target.set_fault(Fault::CorruptAfterVerify {
        what: Corruption::PayloadByte,
    });
    let failure = expect_failure(&fleet, "Sales", Phase::Store).await;
    assert!(
        failure.cause.contains("fails verification"),
        "{}",
        failure.cause
    );
    assert_eq!(fleet.staged_files().len(), 1, "staged file kept");
    assert!(
        list_files(fleet.store_root()).is_empty(),
        "the uncatalogued copy is removed from the store"
    );
}
