//! Catalogue columns of the policy work: requested and taken type, reason, skip kind, the
//! one-run-per-slot index, the store history the type decision reads, and the catch-up
//! queries.

mod catalog_fixture;

use bakfleet::backup::{BackupType, Lsn};
use bakfleet::catalog::{Catalog, CatalogError, NewRun, SkipKind};
use catalog_fixture::{add_backup, new_run, record, T0};
use time::Duration;
use uuid::Uuid;

fn scheduled(database: &str, backup_type: BackupType, slot_hours: i64) -> NewRun {
    NewRun {
        slot: Some(T0 + Duration::hours(slot_hours)),
        ..new_run(
            "sales-prod",
            database,
            backup_type,
            T0 + Duration::hours(slot_hours),
        )
    }
}

#[tokio::test]
async fn slot_rejects_second_run() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let first = scheduled("orders", BackupType::Log, 1);
    catalog
        .start_run(&first)
        .await
        .expect("first run of the slot");

    let error = catalog.start_run(&first).await.unwrap_err();
    assert!(matches!(error, CatalogError::SlotTaken { .. }), "{error}");
    let message = error.to_string();
    assert!(message.contains("\"orders\""), "{message}");
    assert!(message.contains("each slot runs once"), "{message}");

    let other_type = scheduled("orders", BackupType::Full, 1);
    catalog.start_run(&other_type).await.expect("another type");
    let other_database = scheduled("customers", BackupType::Log, 1);
    catalog
        .start_run(&other_database)
        .await
        .expect("another database");
    let manual = new_run("sales-prod", "orders", BackupType::Log, T0);
    catalog
        .start_run(&manual)
        .await
        .expect("manual runs have no slot");
    catalog.start_run(&manual).await.expect("and never collide");
}

#[tokio::test]
async fn slot_is_unique_across_connections() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.db");
    let first = Catalog::open(&path).await.unwrap();
    let second = Catalog::open(&path).await.unwrap();
    let run = scheduled("orders", BackupType::Diff, 6);
    let (a, b) = tokio::join!(first.start_run(&run), second.start_run(&run));
    assert!(
        a.is_ok() != b.is_ok(),
        "exactly one insert wins: {a:?} {b:?}"
    );
}

#[tokio::test]
async fn promoted_run_keeps_requested_type() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let run_id = catalog
        .start_run(&scheduled("orders", BackupType::Log, 2))
        .await
        .unwrap();
    let reason = "log changed to full: the database has no log chain";
    catalog
        .change_run_type(run_id, BackupType::Full, reason)
        .await
        .unwrap();

    let run = catalog.run(run_id).await.unwrap().unwrap();
    assert_eq!(run.requested_type, BackupType::Log);
    assert_eq!(run.backup_type, BackupType::Full);
    assert_eq!(run.reason.as_deref(), Some(reason));
    assert_eq!(run.slot, Some(T0 + Duration::hours(2)));
}

#[tokio::test]
async fn skip_kinds_stay_distinct() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let simple = catalog
        .start_run(&scheduled("scratch", BackupType::Log, 1))
        .await
        .unwrap();
    catalog
        .skip_run_as(simple, SkipKind::NotApplicable, "not applicable: SIMPLE")
        .await
        .unwrap();
    let offline = catalog
        .start_run(&scheduled("old", BackupType::Full, 1))
        .await
        .unwrap();
    catalog
        .skip_run(offline, "database is OFFLINE")
        .await
        .unwrap();

    let simple = catalog.run(simple).await.unwrap().unwrap();
    assert_eq!(simple.status.as_str(), "skipped");
    assert_eq!(simple.skip_kind, Some(SkipKind::NotApplicable));
    assert_eq!(simple.reason.as_deref(), Some("not applicable: SIMPLE"));
    let offline = catalog.run(offline).await.unwrap().unwrap();
    assert_eq!(offline.skip_kind, Some(SkipKind::Unavailable));

    let overview = catalog.fleet_overview().await.unwrap();
    let scratch = overview
        .iter()
        .find(|database| database.database == "scratch")
        .and_then(|database| database.last_run.clone())
        .expect("last run of scratch");
    assert_eq!(scratch.skip_kind, Some(SkipKind::NotApplicable));
    assert_eq!(scratch.requested_type, BackupType::Log);
}

/// Returns a backup of sales-prod's orders that finished `hours` after `T0`.
fn orders(backup_type: BackupType, hours: i64) -> bakfleet::backup::BackupRecord {
    record(
        "sales-prod",
        "orders",
        backup_type,
        T0 + Duration::hours(hours),
        100,
    )
}

#[tokio::test]
async fn store_history_ignores_copy_only_full() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let base = orders(BackupType::Full, 0);
    add_backup(&catalog, &base).await;
    let log = orders(BackupType::Log, 1);
    add_backup(&catalog, &log).await;
    let copy_only = bakfleet::backup::BackupRecord {
        is_copy_only: true,
        backup_set_guid: Some("6f1e2a3b-0000-4000-8000-0000000000cc".to_string()),
        ..orders(BackupType::Full, 2)
    };
    add_backup(&catalog, &copy_only).await;

    let history = catalog.store_history("sales-prod", "orders").await.unwrap();
    let full = history.newest_full.expect("a base full");
    assert_eq!(
        full.backup_set_guid,
        Some(Uuid::parse_str("6f1e2a3b-0000-4000-8000-000000000001").unwrap())
    );
    assert_eq!(full.last_lsn, base.last_lsn);
    assert_eq!(history.newest_log_last_lsn, Some(log.last_lsn));
    assert_eq!(
        history.newest_database_guid,
        Some(Uuid::parse_str("6f1e2a3b-0000-4000-8000-0000000000db").unwrap())
    );

    let empty = catalog.store_history("sales-prod", "other").await.unwrap();
    assert_eq!(empty.newest_full, None);
    assert_eq!(empty.newest_log_last_lsn, None::<Lsn>);
}

#[tokio::test]
async fn store_history_ignores_logs_before_newest_full() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let old_full = orders(BackupType::Full, 0);
    add_backup(&catalog, &old_full).await;
    add_backup(&catalog, &orders(BackupType::Log, 1)).await;
    // Restored to a point before that log, then backed up again: the new full ends at a
    // lower LSN than the log.
    let new_full = bakfleet::backup::BackupRecord {
        first_lsn: Lsn(old_full.last_lsn.0 + 1_000),
        last_lsn: Lsn(old_full.last_lsn.0 + 2_000),
        checkpoint_lsn: Lsn(old_full.last_lsn.0 + 1_500),
        ..orders(BackupType::Full, 2)
    };
    add_backup(&catalog, &new_full).await;

    let history = catalog.store_history("sales-prod", "orders").await.unwrap();
    let full = history.newest_full.expect("the new full");
    assert_eq!(full.last_lsn, new_full.last_lsn);
    assert_eq!(history.newest_log_last_lsn, None::<Lsn>);

    let new_log = orders(BackupType::Log, 3);
    add_backup(&catalog, &new_log).await;
    let history = catalog.store_history("sales-prod", "orders").await.unwrap();
    assert_eq!(history.newest_log_last_lsn, Some(new_log.last_lsn));
}

#[tokio::test]
async fn catch_up_queries_find_slots() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let slot = T0 + Duration::hours(3);
    assert!(!catalog
        .slot_has_run("sales-prod", BackupType::Log, slot)
        .await
        .unwrap());
    assert_eq!(
        catalog
            .newest_run_start("sales-prod", BackupType::Log)
            .await
            .unwrap(),
        None
    );

    catalog
        .start_run(&scheduled("orders", BackupType::Log, 3))
        .await
        .unwrap();
    assert!(catalog
        .slot_has_run("sales-prod", BackupType::Log, slot)
        .await
        .unwrap());
    assert!(!catalog
        .slot_has_run("sales-prod", BackupType::Full, slot)
        .await
        .unwrap());
    assert_eq!(
        catalog
            .newest_run_start("sales-prod", BackupType::Log)
            .await
            .unwrap(),
        Some(slot)
    );
}
