//! Helpers shared by the integration tests.

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
