//! `bakfleet verify` on a store built by importing real backups. A clean store passes,
//! and a deleted, a changed and an uncatalogued file are each found with the right exit
//! code. A damaged backup stays marked in the catalogue until its file is good again.

mod fixtures_bak;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bakfleet::catalog::{Catalog, FailureKind};
use bakfleet::chain::Target;
use bakfleet::cli::import::{import_backups, ImportOptions};
use bakfleet::restore_plan::{build_plan, RestorePlan};
use bakfleet::restore_script::ScriptOptions;
use bakfleet::store::Store;

/// Writes a fleet file whose store and catalogue are in `dir`, with one local instance so
/// that the file is valid.
fn write_fleet(dir: &Path) -> PathBuf {
    let fleet = dir.join("fleet.toml");
    let text = r#"
[service]
store_dir = "store"
catalog = "catalog.db"

[[instance]]
name = "SQLHOST"
host = "127.0.0.1"
auth = { kind = "sql", user = "bakfleet", password_env = "BAKFLEET_VERIFY_TEST_PASSWORD" }
staging = { local = { server_path = "/var/opt/mssql/backup", dir = "share" } }
"#;
    std::fs::write(&fleet, text).unwrap();
    fleet
}

/// Imports the dbOrphanUsers chain with `--copy` and returns the fleet file.
async fn build_store(fixtures: &Path, dir: &Path) -> PathBuf {
    let fleet = write_fleet(dir);
    let source = dir.join("source");
    std::fs::create_dir_all(&source).unwrap();
    for name in fixtures_bak::ORPHAN_CHAIN {
        std::fs::copy(fixtures.join(name), source.join(name)).unwrap();
    }
    let catalog = Catalog::open(&dir.join("catalog.db")).await.unwrap();
    let store = Store::open(&dir.join("store")).unwrap();
    let options = ImportOptions {
        dir: source,
        instance: "SQLHOST".into(),
        database: None,
        copy: true,
    };
    let report = import_backups(&catalog, &store, &options).await.unwrap();
    assert_eq!(report.imported.len(), 4, "{report:?}");
    drop(catalog);
    fleet
}

fn verify(fleet: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bakfleet"))
        .arg("--fleet")
        .arg(fleet)
        .arg("verify")
        .args(args)
        .output()
        .expect("run bakfleet verify")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Lists the stored files by walking the store.
fn stored_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut folders = vec![dir.join("store")];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

#[tokio::test]
async fn verify_passes_clean_store() {
    let Some(fixtures) = fixtures_bak::fixtures_dir() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let fleet = build_store(&fixtures, dir.path()).await;

    for args in [
        &[][..],
        &["--quick"],
        &["--structure"],
        &["SQLHOST", "dbOrphanUsers"],
    ] {
        let output = verify(&fleet, args);
        let text = stdout(&output);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {text}");
        assert!(
            text.starts_with("OK: 4 backups checked"),
            "{args:?}: {text}"
        );
    }
}

#[tokio::test]
async fn verify_finds_missing_changed_and_orphan_files() {
    let Some(fixtures) = fixtures_bak::fixtures_dir() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let fleet = build_store(&fixtures, dir.path()).await;
    let files = stored_files(dir.path());
    assert_eq!(files.len(), 4, "{files:?}");

    let orphan = files[0].with_file_name("left-behind.bak");
    std::fs::write(&orphan, b"not catalogued").unwrap();
    let output = verify(&fleet, &[]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("WARNING: file not in the catalogue (14 bytes)"),
        "{text}"
    );
    assert!(text.contains("left-behind.bak"), "{text}");

    // One byte changed in the middle keeps the size: only the hash finds it, and the
    // quick check does not.
    let changed = &files[1];
    let mut bytes = std::fs::read(changed).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(changed, &bytes).unwrap();
    std::fs::remove_file(&files[2]).unwrap();

    let output = verify(&fleet, &[]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(text.contains("file missing"), "{text}");
    assert!(text.contains("SHA-256"), "{text}");
    assert!(text.contains("on SQLHOST"), "{text}");
    assert!(
        text.lines()
            .last()
            .unwrap()
            .contains("2 damaged or missing, 1 not catalogued"),
        "{text}"
    );

    let quick = stdout(&verify(&fleet, &["--quick"]));
    assert!(!quick.contains("SHA-256 "), "{quick}");
    assert!(quick.contains("1 damaged or missing"), "{quick}");
}

#[tokio::test]
async fn verify_rejects_unknown_instance_and_database() {
    let Some(fixtures) = fixtures_bak::fixtures_dir() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let fleet = build_store(&fixtures, dir.path()).await;

    let cases: [(&[&str], &str); 2] = [
        (&["NOSUCH"], "no backup of instance NOSUCH"),
        (
            &["SQLHOST", "dbOrphanUser"],
            "no backup of database [dbOrphanUser] on instance SQLHOST",
        ),
    ];
    for (args, expected) in cases {
        let output = verify(&fleet, args);
        let text = stdout(&output);
        assert_eq!(output.status.code(), Some(3), "{args:?}: {text}");
        assert!(text.contains(expected), "{args:?}: {text}");
        assert!(text.contains("bakfleet list"), "{args:?}: {text}");
    }
}

#[tokio::test]
async fn verify_reports_unknown_without_catalogue() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = dir.path().join("fleet.toml");
    std::fs::write(&fleet, "[service]\nthis is not toml").unwrap();
    let output = verify(&fleet, &[]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(3), "{text}");
    assert!(
        text.starts_with("UNKNOWN: the store check could not run"),
        "{text}"
    );
}

#[tokio::test]
async fn verify_skips_pruned_backups() {
    let Some(fixtures) = fixtures_bak::fixtures_dir() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let fleet = build_store(&fixtures, dir.path()).await;
    let catalog = Catalog::open(&dir.path().join("catalog.db")).await.unwrap();
    let backups = catalog
        .backups_of_database("SQLHOST", "dbOrphanUsers", 10)
        .await
        .unwrap();
    let oldest = backups.last().unwrap().clone();
    let now = time::OffsetDateTime::now_utc();
    catalog
        .mark_pruned(oldest.id, "expired", now)
        .await
        .unwrap();
    std::fs::remove_file(dir.path().join("store").join(&oldest.store_path)).unwrap();
    catalog.finish_prune(oldest.id, now).await.unwrap();

    let output = verify(&fleet, &[]);
    let text = stdout(&output);
    assert_eq!(
        output.status.code(),
        Some(0),
        "a pruned file is no finding: {text}"
    );
    assert!(text.starts_with("OK: 3 backups checked"), "{text}");
    let listed = catalog
        .backups_of_database("SQLHOST", "dbOrphanUsers", 10)
        .await
        .unwrap();
    assert_eq!(listed.len(), 3, "pruned backups leave the database's list");
}

/// Plans a restore of dbOrphanUsers to its latest point from the store under `dir`.
async fn latest_plan(catalog: &Catalog, dir: &Path) -> RestorePlan {
    build_plan(
        catalog,
        &dir.join("store"),
        "SQLHOST",
        "dbOrphanUsers",
        Target::Latest,
        &ScriptOptions::default(),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn verify_marks_and_clears_damaged_backup() {
    let Some(fixtures) = fixtures_bak::fixtures_dir() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let fleet = build_store(&fixtures, dir.path()).await;
    let catalog = Catalog::open(&dir.path().join("catalog.db")).await.unwrap();
    let backups = catalog
        .backups_of_database("SQLHOST", "dbOrphanUsers", 10)
        .await
        .unwrap();
    // Newest first: the second log, the first log, the differential, the full.
    let first_log = backups[1].clone();
    assert_eq!(first_log.backup_type.as_str(), "log");
    let path = dir.path().join("store").join(&first_log.store_path);
    let copy = dir.path().join("copy.trn");
    std::fs::rename(&path, &copy).unwrap();

    let output = verify(&fleet, &["--quick"]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(text.contains("marked as failed verification"), "{text}");
    let mark = catalog
        .verification_failure(first_log.id)
        .await
        .unwrap()
        .expect("the missing log is marked");
    assert_eq!(mark.finding, FailureKind::Missing);
    assert!(mark.detail.contains("file missing"), "{}", mark.detail);

    // The latest plan stops before the marked log and names it.
    let plan = latest_plan(&catalog, dir.path()).await;
    assert_eq!(
        plan.stopped_by.as_ref().map(|failed| failed.backup_id),
        Some(first_log.id)
    );
    assert!(plan.chain.members().all(|member| member.id != first_log.id));

    // A good copy put back clears the mark at the next check.
    std::fs::rename(&copy, &path).unwrap();
    let output = verify(&fleet, &[]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(
        text.contains(&format!("OK: backup {} (log backup", first_log.id)),
        "{text}"
    );
    assert!(text.contains("mark set on"), "{text}");
    assert_eq!(
        catalog.verification_failure(first_log.id).await.unwrap(),
        None
    );
    let plan = latest_plan(&catalog, dir.path()).await;
    assert_eq!(plan.chain.logs.len(), 2);
    assert_eq!(plan.stopped_by, None);
}
