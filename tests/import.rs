//! `bakfleet import` on real backups: the dbOrphanUsers chain lands in the catalogue with
//! the LSNs its headers hold, in place or copied, and repeated or broken files are skipped.

mod fixtures_bak;

use std::path::Path;

use bakfleet::backup::BackupType;
use bakfleet::catalog::Catalog;
use bakfleet::cli::import::{import_backups, ImportOptions};
use bakfleet::store::Store;
use serde_json::Value;

/// Copies the chain into an Ola Hallengren style tree under `root`, plus two files that
/// must be skipped.
fn build_tree(fixtures: &Path, root: &Path) {
    let folder = root.join("SQLHOST").join("dbOrphanUsers");
    for (name, kind) in fixtures_bak::ORPHAN_CHAIN
        .iter()
        .zip(["FULL", "DIFF", "LOG", "LOG"])
    {
        let target = folder.join(kind);
        std::fs::create_dir_all(&target).unwrap();
        std::fs::copy(fixtures.join(name), target.join(name)).unwrap();
    }
    std::fs::write(root.join("README.txt"), "not a backup").unwrap();
    std::fs::copy(
        fixtures.join("not-a-sql-server-backup.bak"),
        root.join("other.bak"),
    )
    .unwrap();
}

async fn import(
    root: &Path,
    store: &Store,
    catalog: &Catalog,
    copy: bool,
) -> bakfleet::cli::import::ImportReport {
    let options = ImportOptions {
        dir: root.to_path_buf(),
        instance: "SQLHOST".into(),
        database: None,
        copy,
    };
    import_backups(catalog, store, &options).await.unwrap()
}

fn expected_sets(fixtures: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures.join("expected.json")).unwrap()).unwrap()
}

async fn check_chain(fixtures: &Path, catalog: &Catalog) {
    let expected = expected_sets(fixtures);
    let backups = catalog
        .backups_of_database("SQLHOST", "dbOrphanUsers", 10)
        .await
        .unwrap();
    assert_eq!(backups.len(), 4, "{backups:?}");
    for name in fixtures_bak::ORPHAN_CHAIN {
        let want = &expected[name]["backup_sets"][0];
        let backup = backups
            .iter()
            .find(|backup| backup.staged_path.ends_with(name))
            .unwrap_or_else(|| panic!("{name} catalogued"));
        let lsn = |key: &str| want[key].as_u64().unwrap() as u128;
        assert_eq!(backup.first_lsn.0, lsn("first_lsn"), "{name}: first LSN");
        assert_eq!(backup.last_lsn.0, lsn("last_lsn"), "{name}: last LSN");
        assert_eq!(
            backup.checkpoint_lsn.0,
            lsn("checkpoint_lsn"),
            "{name}: checkpoint LSN"
        );
        assert_eq!(
            backup.database_backup_lsn.0,
            lsn("database_backup_lsn"),
            "{name}: database backup LSN"
        );
        assert_eq!(backup.status, "verified");
        assert_eq!(
            backup.sha256,
            expected[name]["sha256"].as_str().unwrap(),
            "{name}: sha256"
        );
        let run = catalog.run(backup.run_id).await.unwrap().unwrap();
        assert_eq!(run.trigger, "import");
        assert_eq!(run.phase, "done");
        assert_eq!(run.status.as_str(), "succeeded");
    }
    let types: Vec<BackupType> = backups.iter().map(|backup| backup.backup_type).collect();
    assert_eq!(
        types.iter().filter(|t| **t == BackupType::Log).count(),
        2,
        "{types:?}"
    );
}

#[tokio::test]
async fn import_catalogues_chain_in_place() {
    let Some(fixtures) = fixtures_bak::fixtures_dir() else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path().join("backups");
    build_tree(&fixtures, &root);
    let store = Store::open(&scratch.path().join("store")).unwrap();
    let catalog = Catalog::open_in_memory().await.unwrap();

    let report = import(&root, &store, &catalog, false).await;
    assert_eq!(report.imported.len(), 4, "{report:?}");
    assert_eq!(report.skipped.len(), 2, "{report:?}");
    let reasons: Vec<&str> = report.skipped.iter().map(|s| s.reason.as_str()).collect();
    assert!(
        reasons
            .iter()
            .all(|reason| reason.starts_with("not a backup")),
        "{reasons:?}"
    );
    check_chain(&fixtures, &catalog).await;
    for imported in &report.imported {
        assert!(
            Path::new(&imported.record.store_path).is_absolute(),
            "in place: {}",
            imported.record.store_path
        );
        assert!(Path::new(&imported.record.store_path).exists());
    }

    let again = import(&root, &store, &catalog, false).await;
    assert!(again.imported.is_empty(), "{again:?}");
    let duplicates = again
        .skipped
        .iter()
        .filter(|s| s.reason.starts_with("already catalogued"))
        .count();
    assert_eq!(duplicates, 4, "{again:?}");
}

#[tokio::test]
async fn import_copy_fills_store() {
    let Some(fixtures) = fixtures_bak::fixtures_dir() else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path().join("backups");
    build_tree(&fixtures, &root);
    let store = Store::open(&scratch.path().join("store")).unwrap();
    let catalog = Catalog::open_in_memory().await.unwrap();

    let report = import(&root, &store, &catalog, true).await;
    assert_eq!(report.imported.len(), 4, "{report:?}");
    check_chain(&fixtures, &catalog).await;
    for imported in &report.imported {
        let rel_path = &imported.record.store_path;
        assert!(rel_path.starts_with("SQLHOST/"), "{rel_path}");
        let copy = std::fs::read(store.absolute(rel_path)).unwrap();
        let original = std::fs::read(&imported.path).unwrap();
        assert_eq!(copy, original, "{rel_path}");
    }
}

#[tokio::test]
async fn import_skips_damaged_and_foreign() {
    let Some(fixtures) = fixtures_bak::fixtures_dir() else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path().join("backups");
    std::fs::create_dir_all(&root).unwrap();
    let mut bytes = std::fs::read(fixtures.join(fixtures_bak::ORPHAN_CHAIN[0])).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(root.join("a_cut.bak"), &bytes).unwrap();
    std::fs::copy(fixtures.join("Northwind.bak"), root.join("b_stripe.bak")).unwrap();
    std::fs::copy(fixtures.join("pubs.bak"), root.join("c_pubs.bak")).unwrap();
    let store = Store::open(&scratch.path().join("store")).unwrap();
    let catalog = Catalog::open_in_memory().await.unwrap();

    let options = ImportOptions {
        dir: root.clone(),
        instance: "SQLHOST".into(),
        database: Some("Northwind".into()),
        copy: false,
    };
    let report = import_backups(&catalog, &store, &options).await.unwrap();
    assert!(report.imported.is_empty(), "{report:?}");
    let reasons: Vec<&str> = report.skipped.iter().map(|s| s.reason.as_str()).collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(reasons[0].starts_with("truncated"), "{reasons:?}");
    assert!(reasons[1].starts_with("stripe 1 of 2"), "{reasons:?}");
    assert!(
        reasons[2].contains("does not match --database"),
        "{reasons:?}"
    );
}
