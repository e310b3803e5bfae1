//! Backups staged on an SMB share and fetched through smbd (against a real server: through
//! the staging location of `BAKFLEET_TEST_STAGING`).

use bakfleet::backup::{BackupRecord, BackupType};
use bakfleet::catalog::SkipKind;
use bakfleet::job::{JobFailure, JobOutcome};

use crate::fixture::{list_files, TestFleet, Transport};
use crate::target::skip_unless_simulator;

/// The databases of most tests: one per recovery model that matters.
pub const DATABASES: &[(&str, &str)] = &[("Sales", "FULL"), ("Scratch", "SIMPLE")];

/// Unwraps a successful outcome, with the failure's text otherwise.
pub fn succeeded(result: Result<JobOutcome, JobFailure>) -> (i64, BackupRecord) {
    match result {
        Ok(JobOutcome::Succeeded {
            backup_id, record, ..
        }) => (backup_id, *record),
        Ok(JobOutcome::Skipped { reason, .. }) => panic!("backup skipped: {reason}"),
        Err(failure) => panic!("backup failed: {failure}"),
    }
}

/// Runs a full backup of every test database and checks the whole contract of a good
/// backup; shared by the SMB and SFTP tests.
pub async fn check_full_backups(fleet: &TestFleet) {
    for (database, _) in DATABASES {
        let (backup_id, record) = succeeded(fleet.run(database, BackupType::Full).await);

        let row = fleet
            .ctx
            .catalog
            .backup(backup_id)
            .await
            .expect("read catalogue")
            .expect("backup row exists");
        assert_eq!(row.database, fleet.db(database));
        assert_eq!(row.backup_type, BackupType::Full);
        assert_eq!(row.status, "verified");
        assert_eq!(row.sha256, record.sha256);
        assert!(row.has_checksums, "backups are taken WITH CHECKSUM");
        assert!(row.last_lsn > row.first_lsn, "LSNs advance: {row:?}");

        let (size, sha256) = fleet
            .ctx
            .store
            .rehash(&row.store_path)
            .await
            .expect("stored file readable");
        assert_eq!(size, row.size_bytes);
        assert_eq!(
            sha256, row.sha256,
            "stored file hashes to the catalogued SHA-256"
        );

        let run = fleet
            .ctx
            .catalog
            .run(row.run_id)
            .await
            .expect("read run")
            .expect("run exists");
        assert_eq!(run.status.as_str(), "succeeded");
        assert!(
            !fleet.staged_file_exists(&row.staged_path).await,
            "staged file {} deleted after the durable copy",
            row.staged_path
        );
    }
}

/// Simulator-only: BACKUP then RESTORE VERIFYONLY reached the server for each database.
pub fn check_statement_order(fleet: &TestFleet) {
    if skip_unless_simulator(&fleet.target, "statement order") {
        return;
    }
    let statements = fleet.target.statements();
    for (database, _) in DATABASES {
        let quoted = bakfleet::mssql::tsql::quote_ident(fleet.db(database));
        let backup = statements
            .iter()
            .position(|sql| sql.starts_with(&format!("BACKUP DATABASE {quoted}")))
            .unwrap_or_else(|| panic!("no BACKUP of {quoted} in {statements:#?}"));
        let path = statements[backup]
            .split("DISK = N'")
            .nth(1)
            .and_then(|rest| rest.split('\'').next())
            .expect("BACKUP names a disk path");
        let verify = statements
            .iter()
            .position(|sql| sql.starts_with("RESTORE VERIFYONLY") && sql.contains(path))
            .unwrap_or_else(|| panic!("no VERIFYONLY of {path} in {statements:#?}"));
        assert!(backup < verify, "BACKUP comes before VERIFYONLY");
        assert!(
            statements[verify].contains("WITH CHECKSUM"),
            "a CHECKSUM backup is verified WITH CHECKSUM"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smb_full_backup_end_to_end() {
    let fleet = TestFleet::start(Transport::Smb, DATABASES).await;
    check_full_backups(&fleet).await;
    check_statement_order(&fleet);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smb_second_run_keeps_first_backup() {
    let fleet = TestFleet::start(Transport::Smb, DATABASES).await;
    let (first_id, first) = succeeded(fleet.run("Sales", BackupType::Full).await);
    let (second_id, second) = succeeded(fleet.run("Sales", BackupType::Full).await);

    assert_ne!(first_id, second_id);
    assert_ne!(first.store_path, second.store_path);
    assert!(
        second.first_lsn >= first.last_lsn,
        "the second full is later"
    );
    let (_, sha256) = fleet
        .ctx
        .store
        .rehash(&first.store_path)
        .await
        .expect("first file");
    assert_eq!(sha256, first.sha256, "the first backup is untouched");
    assert_eq!(list_files(fleet.store_root()).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smb_diff_and_log_follow_full() {
    let fleet = TestFleet::start(Transport::Smb, DATABASES).await;
    let (_, full) = succeeded(fleet.run("Sales", BackupType::Full).await);
    let (_, diff) = succeeded(fleet.run("Sales", BackupType::Diff).await);
    let (_, log) = succeeded(fleet.run("Sales", BackupType::Log).await);

    assert_eq!(diff.backup_type, BackupType::Diff);
    assert_eq!(
        diff.database_backup_lsn, full.checkpoint_lsn,
        "a differential's base is the full's checkpoint"
    );
    assert!(full.backup_set_guid.is_some(), "{full:?}");
    assert_eq!(
        diff.differential_base_guid, full.backup_set_guid,
        "a differential records its base full's backup set GUID"
    );
    assert_eq!(full.differential_base_guid, None);
    assert_eq!(log.differential_base_guid, None);
    assert_eq!(log.backup_type, BackupType::Log);
    assert!(log.store_path.ends_with(".trn"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smb_log_on_simple_is_skipped() {
    let fleet = TestFleet::start(Transport::Smb, DATABASES).await;
    match fleet.run("Scratch", BackupType::Log).await {
        Ok(JobOutcome::Skipped {
            reason,
            run_id,
            kind,
        }) => {
            assert!(
                reason.contains("SIMPLE"),
                "reason names the model: {reason}"
            );
            assert_eq!(kind, SkipKind::NotApplicable);
            let run = fleet.ctx.catalog.run(run_id).await.unwrap().unwrap();
            assert_eq!(run.status.as_str(), "skipped");
            assert_eq!(run.skip_kind, Some(SkipKind::NotApplicable));
            assert_eq!(run.reason.as_deref(), Some(reason.as_str()));
        }
        other => panic!("expected a skipped run, got {other:?}"),
    }
}
