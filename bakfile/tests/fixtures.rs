//! Verification and header reading of real SQL Server backups.

mod common;

use bakfile::{verify_file, ChecksumMode, VerifyError};

const REAL_BACKUPS: &[&str] = &[
    "Northwind.bak",
    "RestoreTimeClean2.bak",
    "RestoreTimeClean2_1.trn",
    "RestoreTimeClean_1.trn",
    "SQL2008_dbOrphanUsers_DIFF_20170518_041819.bak",
    "SQL2008_dbOrphanUsers_FULL_20170518_041740.bak",
    "SQL2008_dbOrphanUsers_LOG_20170518_041831.trn",
    "SQL2008_dbOrphanUsers_LOG_20170518_041837.trn",
    "StopAt_21.trn",
    "StopAt_23.trn",
    "TutorialDB.bak",
    "pubs.bak",
];

#[test]
fn verify_accepts_every_real_backup() {
    let Some(dir) = common::fixtures_dir() else {
        return;
    };
    for name in REAL_BACKUPS {
        for mode in [ChecksumMode::IfPresent, ChecksumMode::Skip] {
            let report = verify_file(&dir.join(name), mode)
                .unwrap_or_else(|e| panic!("{name} in {mode:?} mode: {e}"));
            assert_eq!(report.sets.len(), 1, "{name}");
            assert!(
                !report.checksums_checked,
                "{name}: real CSUM values cannot be checked"
            );
        }
    }
}

#[test]
fn verify_rejects_postgres_dump() {
    let Some(dir) = common::fixtures_dir() else {
        return;
    };
    let result = verify_file(
        &dir.join("not-a-sql-server-backup.bak"),
        ChecksumMode::IfPresent,
    );
    assert!(
        matches!(result, Err(VerifyError::NotABackup { .. })),
        "{result:?}"
    );
}
