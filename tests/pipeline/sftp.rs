//! Backups staged on a Linux host and fetched over SFTP through sshd (against a real
//! server: through the staging location of `BAKFLEET_TEST_STAGING`).

use bakfleet::backup::BackupType;

use crate::fixture::{TestFleet, Transport};
use crate::smb::{check_full_backups, check_statement_order, succeeded, DATABASES};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sftp_full_backup_end_to_end() {
    let fleet = TestFleet::start(Transport::Sftp, DATABASES).await;
    check_full_backups(&fleet).await;
    check_statement_order(&fleet);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sftp_log_backup_after_full() {
    let fleet = TestFleet::start(Transport::Sftp, DATABASES).await;
    let (_, full) = succeeded(fleet.run("Sales", BackupType::Full).await);
    let (_, log) = succeeded(fleet.run("Sales", BackupType::Log).await);
    assert!(log.first_lsn >= full.first_lsn);
    assert!(!fleet.staged_file_exists(&full.staged_path).await);
    assert!(!fleet.staged_file_exists(&log.staged_path).await);
}
