//! Helpers shared by the integration tests.

#![allow(dead_code)] // Each test file uses a different part of this module.

use std::path::PathBuf;

use bakfile::{BackupSet, BackupType, Collation, Lsn, RecoveryModel};
use time::macros::datetime;
use uuid::Uuid;

/// Every real SQL Server backup among the fixtures.
pub const REAL_BACKUPS: &[&str] = &[
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

/// Folder of real SQL Server backups, from `BAKFLEET_FIXTURES_BAK`. Returns `None` (after
/// printing why) when it is unset, and panics instead when `CI=true`, so CI never passes
/// without running the fixture tests.
pub fn fixtures_dir() -> Option<PathBuf> {
    match std::env::var_os("BAKFLEET_FIXTURES_BAK") {
        Some(dir) => Some(PathBuf::from(dir)),
        None if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("BAKFLEET_FIXTURES_BAK is not set; point it at the folder of real .bak fixtures")
        }
        None => {
            eprintln!("fixture test did not run: set BAKFLEET_FIXTURES_BAK to the folder of real .bak fixtures");
            None
        }
    }
}

/// Returns a backup set with distinct values in every field, for writing test files.
pub fn sample_set(backup_type: BackupType, has_checksums: bool) -> BackupSet {
    let differential = backup_type == BackupType::Differential;
    BackupSet {
        backup_type,
        position: 1,
        database_name: "Sales".into(),
        server_name: "SQLHOST\\PROD".into(),
        machine_name: "SQLHOST".into(),
        user_name: "CORP\\svc_backup".into(),
        backup_name: "Sales-Full Database Backup".into(),
        backup_description: "written by the round-trip test".into(),
        software_major: 16,
        software_minor: 0,
        software_build: 4135,
        database_version: 957,
        compatibility_level: 160,
        first_lsn: Lsn {
            vlf: 41,
            block: 1200,
            slot: 37,
        },
        last_lsn: Lsn {
            vlf: 41,
            block: 1800,
            slot: 1,
        },
        checkpoint_lsn: Lsn {
            vlf: 41,
            block: 1200,
            slot: 37,
        },
        database_backup_lsn: Lsn {
            vlf: 40,
            block: 300,
            slot: 37,
        },
        database_creation_date: datetime!(2023-01-05 09:30:00),
        backup_start_date: datetime!(2024-06-01 02:00:00),
        backup_finish_date: Some(datetime!(2024-06-01 02:00:07)),
        time_zone: 8,
        backup_size: 123_456,
        has_checksums,
        is_copy_only: false,
        compressed: false,
        backup_set_guid: Uuid::from_u128(0x1b0e9401_d8eb_40e3_a8d4_57594c8795cd),
        differential_base_guid: differential
            .then(|| Uuid::from_u128(0x41a43d77_6a7a_4403_983f_5ab7e68a087b)),
        family_guid: Uuid::from_u128(0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10),
        binding_id: Uuid::from_u128(0x1112_1314_1516_1718_191a_1b1c_1d1e_1f20),
        recovery_fork_id: Uuid::from_u128(0x2122_2324_2526_2728_292a_2b2c_2d2e_2f30),
        recovery_model: RecoveryModel::Full,
        collation: Collation::from_parts(0x00D0_0C0A, 0),
        media_set_guid: Uuid::from_u128(0x3132_3334_3536_3738_393a_3b3c_3d3e_3f40),
        family_count: 1,
        family_sequence: 1,
        provisional: false,
    }
}
