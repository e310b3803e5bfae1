//! Database names that need quoting in T-SQL and encoding in file names.

use bakfleet::backup::BackupType;
use bakfleet::store::decode_name;

use crate::fixture::{TestFleet, Transport};
use crate::smb::{succeeded, DATABASES};
use crate::target::skip_unless_simulator;

/// A name with `]`, `'`, spaces and non-ASCII letters.
const HARD_NAME: &str = "Ventes d'été ]2026[ Ærø";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hard_database_name_backed_up_exactly() {
    let mut fleet = TestFleet::start(Transport::Smb, DATABASES).await;
    fleet.add_database(HARD_NAME, "FULL").await;
    let exact = fleet.db(HARD_NAME).to_string();
    assert!(exact.ends_with(HARD_NAME));

    let (backup_id, record) = succeeded(fleet.run(HARD_NAME, BackupType::Full).await);
    assert_eq!(record.database, exact);
    let row = fleet.ctx.catalog.backup(backup_id).await.unwrap().unwrap();
    assert_eq!(row.database, exact, "catalogue keeps the exact name");

    let folder = row.store_path.split('/').nth(1).expect("database folder");
    assert_eq!(decode_name(folder).as_deref(), Some(exact.as_str()));
    assert!(
        folder
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"\\/:*?\"<>|".contains(&b)),
        "folder name {folder:?} is valid on Windows and Linux"
    );
    assert!(!fleet.staged_file_exists(&row.staged_path).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn name_in_other_case_rejected() {
    let fleet = TestFleet::start(Transport::Smb, DATABASES).await;
    let mut request = fleet.request("Sales", BackupType::Full);
    request.database = request.database.to_uppercase();
    let failure = bakfleet::job::run(&fleet.ctx, &request)
        .await
        .expect_err("a name in another case is not the database's name");
    assert_eq!(failure.phase, bakfleet::job::Phase::Preflight);
    assert!(
        failure.cause.contains(fleet.db("Sales")),
        "{}",
        failure.cause
    );
}

/// Names that break naive quoting or file naming: Windows device names in either case,
/// brackets and quotes, a statement separator, an emoji, leading and trailing spaces,
/// and 128 characters (SQL Server's limit) that encode to over 255 bytes.
fn hostile_names() -> Vec<String> {
    vec![
        "CON".to_string(),
        "nul".to_string(),
        "COM1".to_string(),
        "x; DROP DATABASE Sales; --".to_string(),
        "a]b".to_string(),
        "O'Brien's ]]; data".to_string(),
        "Éléphant 🐘".to_string(),
        " leading space".to_string(),
        "trailing space ".to_string(),
        "  both  ".to_string(),
        "ü".repeat(128),
        "Z".repeat(128),
    ]
}

/// Checks that a file or folder name is one path component that Windows and Linux
/// accept: not a device name, at most 255 bytes, no separator or reserved character,
/// and no leading or trailing space or trailing dot.
fn assert_safe_component(component: &str) {
    let stem = component
        .split('.')
        .next()
        .unwrap_or(component)
        .to_ascii_lowercase();
    assert!(
        !["con", "nul", "com1", "prn", "aux"].contains(&stem.as_str()),
        "{component:?} is a Windows device name"
    );
    assert!(
        component.len() <= 255,
        "{component:?} fits a path component"
    );
    assert!(
        component
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"\\/:*?\"<>|".contains(&b)),
        "{component:?} has only characters valid on Windows and Linux"
    );
    assert!(!component.ends_with('.'), "{component:?} ends with a dot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_names_backed_up_apart() {
    let mut fleet = TestFleet::start(Transport::Smb, DATABASES).await;
    if skip_unless_simulator(&fleet.target, "hostile_names_backed_up_apart") {
        return;
    }
    let mut folders = Vec::new();
    let mut file_names = Vec::new();
    for name in hostile_names() {
        fleet.add_database_exact(&name, "FULL").await;
        let exact = fleet.db(&name).to_string();

        let (backup_id, record) = succeeded(fleet.run(&name, BackupType::Full).await);
        assert_eq!(record.database, exact);
        let row = fleet.ctx.catalog.backup(backup_id).await.unwrap().unwrap();
        assert_eq!(row.database, exact, "catalogue keeps the exact name");

        let folder = row.store_path.split('/').nth(1).expect("database folder");
        assert_safe_component(folder);
        folders.push(folder.to_string());
        let file_name = row.store_path.rsplit('/').next().expect("file name");
        assert_safe_component(file_name);
        file_names.push(file_name.to_string());
        assert!(
            !fleet.staged_file_exists(&row.staged_path).await,
            "the run for {name:?} deleted its staged file {}",
            row.staged_path
        );
    }
    let mut unique = folders.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        folders.len(),
        "one folder per name: {folders:?}"
    );
    let mut unique_files = file_names.clone();
    unique_files.sort();
    unique_files.dedup();
    assert_eq!(
        unique_files.len(),
        file_names.len(),
        "one file name per backup: {file_names:?}"
    );
}
