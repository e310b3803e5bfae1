//! The folder of real SQL Server backups that the inspect and import tests read.

use std::path::PathBuf;

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

/// The dbOrphanUsers chain: full, differential and two logs, from SQL Server 2008 R2.
pub const ORPHAN_CHAIN: [&str; 4] = [
    "SQL2008_dbOrphanUsers_FULL_20170518_041740.bak",
    "SQL2008_dbOrphanUsers_DIFF_20170518_041819.bak",
    "SQL2008_dbOrphanUsers_LOG_20170518_041831.trn",
    "SQL2008_dbOrphanUsers_LOG_20170518_041837.trn",
];
