//! Catalogue queries of restore plans and retention: file lists, pruned backups,
//! staged leftovers.

mod catalog_fixture;

use bakfleet::backup::{BackupFile, BackupType};
use bakfleet::catalog::Catalog;
use catalog_fixture::{add_backup, new_run, record, T0};
use time::Duration;

fn data_and_log_files() -> Vec<BackupFile> {
    vec![
        BackupFile {
            file_number: 1,
            logical_name: "orders".to_string(),
            physical_name: r"D:\data\orders.mdf".to_string(),
            file_type: "D".to_string(),
            size_bytes: Some(8 << 20),
        },
        BackupFile {
            file_number: 2,
            logical_name: "orders_log".to_string(),
            physical_name: r"L:\log\orders_log.ldf".to_string(),
            file_type: "L".to_string(),
            size_bytes: None,
        },
    ]
}

#[tokio::test]
async fn backup_files_stored_with_backup() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let mut with_files = record("sales-prod", "orders", BackupType::Full, T0, 100);
    with_files.files = Some(data_and_log_files());
    let (_, full_id) = add_backup(&catalog, &with_files).await;
    let without = record(
        "sales-prod",
        "orders",
        BackupType::Log,
        T0 + Duration::hours(1),
        10,
    );
    let (_, log_id) = add_backup(&catalog, &without).await;

    let files = catalog.backup_files(full_id).await.unwrap();
    assert_eq!(files, Some(data_and_log_files()));
    assert_eq!(catalog.backup_files(log_id).await.unwrap(), None);
}

#[tokio::test]
async fn pruned_backup_leaves_restorable_list() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let old = record("sales-prod", "orders", BackupType::Full, T0, 100);
    let (_, old_id) = add_backup(&catalog, &old).await;
    let new = record(
        "sales-prod",
        "orders",
        BackupType::Full,
        T0 + Duration::days(8),
        100,
    );
    let (_, new_id) = add_backup(&catalog, &new).await;

    catalog
        .mark_pruned(old_id, "expired", T0 + Duration::days(40))
        .await
        .unwrap();
    let restorable = catalog
        .restorable_backups("sales-prod", "orders")
        .await
        .unwrap();
    let ids: Vec<i64> = restorable.iter().map(|b| b.id).collect();
    assert_eq!(ids, vec![new_id]);
    assert_eq!(
        catalog
            .pruned_backup_ids("sales-prod", "orders")
            .await
            .unwrap(),
        vec![old_id]
    );

    let unfinished = catalog.unfinished_prunes().await.unwrap();
    assert_eq!(unfinished.len(), 1);
    assert_eq!(unfinished[0].id, old_id);
    catalog
        .finish_prune(old_id, T0 + Duration::days(40))
        .await
        .unwrap();
    assert!(catalog.unfinished_prunes().await.unwrap().is_empty());

    // The history row stays.
    assert!(catalog.backup(old_id).await.unwrap().is_some());
    let databases = catalog.catalogued_databases().await.unwrap();
    assert_eq!(databases.len(), 1);
    assert_eq!(databases[0].database, "orders");
}

#[tokio::test]
async fn staged_leftovers_lists_failed_fetches() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let failed_fetch = catalog
        .start_run(&new_run("sales-prod", "orders", BackupType::Full, T0))
        .await
        .unwrap();
    catalog.set_run_phase(failed_fetch, "fetch").await.unwrap();
    catalog
        .fail_run(failed_fetch, "fetch", "smbclient failed")
        .await
        .unwrap();
    let failed_connect = catalog
        .start_run(&new_run("sales-prod", "orders", BackupType::Full, T0))
        .await
        .unwrap();
    catalog
        .fail_run(failed_connect, "connect", "login failed")
        .await
        .unwrap();

    let leftovers = catalog.staged_leftovers().await.unwrap();
    let ids: Vec<i64> = leftovers.iter().map(|l| l.run_id).collect();
    assert_eq!(ids, vec![failed_fetch], "a failed connect wrote no file");
    assert_eq!(leftovers[0].phase, "fetch");
}
