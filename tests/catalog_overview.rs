//! Catalogue reads: the fleet overview, the inventory and backup listings.

mod catalog_fixture;

use bakfleet::backup::BackupType;
use bakfleet::catalog::{Catalog, CatalogError, DatabaseFacts, InstanceFacts, RunStatus};
use catalog_fixture::{add_backup, new_run, record, T0};
use time::Duration;

fn instance_facts(name: &str, product_version: Option<&str>) -> InstanceFacts {
    InstanceFacts {
        name: name.to_string(),
        host: "sql01.corp.example".to_string(),
        port: 1433,
        product_version: product_version.map(str::to_string),
        edition: product_version.map(|_| "Developer Edition (64-bit)".to_string()),
        engine_edition: product_version.map(|_| 3),
        server_name: product_version.map(|_| "SQL01".to_string()),
    }
}

fn database_facts(name: &str) -> DatabaseFacts {
    DatabaseFacts {
        name: name.to_string(),
        recovery_model: Some("FULL".to_string()),
        state: Some("ONLINE".to_string()),
    }
}

#[tokio::test]
async fn overview_picks_newest_per_type() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let newest_full = record(
        "sales-prod",
        "orders",
        BackupType::Full,
        T0 - Duration::days(1),
        300,
    );
    let older_full = record(
        "sales-prod",
        "orders",
        BackupType::Full,
        T0 - Duration::days(8),
        200,
    );
    let diff = record(
        "sales-prod",
        "orders",
        BackupType::Diff,
        T0 - Duration::hours(12),
        50,
    );
    let newest_log = record(
        "sales-prod",
        "orders",
        BackupType::Log,
        T0 - Duration::minutes(5),
        7,
    );
    let older_log = record(
        "sales-prod",
        "orders",
        BackupType::Log,
        T0 - Duration::minutes(20),
        9,
    );

    // Insert out of time order, so that the newest is not simply the highest id.
    let (_, newest_full_id) = add_backup(&catalog, &newest_full).await;
    add_backup(&catalog, &older_full).await;
    let (_, diff_id) = add_backup(&catalog, &diff).await;
    let (last_run_id, newest_log_id) = add_backup(&catalog, &newest_log).await;
    add_backup(&catalog, &older_log).await;

    let overview = catalog.fleet_overview().await.unwrap();

    assert_eq!(overview.len(), 1);
    let orders = &overview[0];
    assert_eq!(orders.instance, "sales-prod");
    assert_eq!(orders.database, "orders");
    let full = orders.last_full.as_ref().expect("a full backup");
    assert_eq!(full.id, newest_full_id);
    assert_eq!(full.finished_at, T0 - Duration::days(1));
    assert_eq!(full.size_bytes, 300);
    assert_eq!(orders.last_diff.as_ref().map(|b| b.id), Some(diff_id));
    assert_eq!(orders.last_log.as_ref().map(|b| b.id), Some(newest_log_id));
    let last_run = orders.last_run.as_ref().expect("a last run");
    assert_eq!(
        last_run.id, last_run_id,
        "the last run is the newest by start time"
    );
}

#[tokio::test]
async fn overview_shows_failed_last_run() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    add_backup(
        &catalog,
        &record("sales-prod", "orders", BackupType::Full, T0, 100),
    )
    .await;
    let failed = catalog
        .start_run(&new_run(
            "sales-prod",
            "orders",
            BackupType::Diff,
            T0 + Duration::hours(1),
        ))
        .await
        .unwrap();
    catalog
        .fail_run(failed, "backup", "error 3201: cannot open backup device")
        .await
        .unwrap();

    let overview = catalog.fleet_overview().await.unwrap();

    let last_run = overview[0].last_run.as_ref().unwrap();
    assert_eq!(last_run.id, failed);
    assert_eq!(last_run.status, RunStatus::Failed);
    assert_eq!(last_run.phase, "backup");
    assert_eq!(
        last_run.error.as_deref(),
        Some("error 3201: cannot open backup device")
    );
    assert!(overview[0].last_full.is_some());
    assert!(overview[0].last_diff.is_none());
}

#[tokio::test]
async fn overview_lists_inventory_without_runs() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    catalog
        .upsert_instance(&instance_facts("sales-prod", Some("16.0.1000.6")))
        .await
        .unwrap();
    catalog
        .upsert_database("sales-prod", &database_facts("orders"))
        .await
        .unwrap();
    catalog
        .upsert_database("sales-prod", &database_facts("billing"))
        .await
        .unwrap();
    catalog
        .start_run(&new_run("hr-prod", "staff", BackupType::Full, T0))
        .await
        .unwrap();

    let overview = catalog.fleet_overview().await.unwrap();

    let keys: Vec<_> = overview
        .iter()
        .map(|row| (row.instance.as_str(), row.database.as_str()))
        .collect();
    assert_eq!(
        keys,
        vec![
            ("hr-prod", "staff"),
            ("sales-prod", "billing"),
            ("sales-prod", "orders")
        ]
    );
    assert_eq!(overview[1].recovery_model.as_deref(), Some("FULL"));
    assert_eq!(overview[1].state.as_deref(), Some("ONLINE"));
    assert!(overview[1].last_run.is_none());
    assert_eq!(overview[0].recovery_model, None);
}

#[tokio::test]
async fn upsert_instance_keeps_known_facts() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    catalog
        .upsert_instance(&instance_facts("sales-prod", Some("16.0.1000.6")))
        .await
        .unwrap();
    let mut from_fleet_file = instance_facts("sales-prod", None);
    from_fleet_file.port = 14330;

    catalog.upsert_instance(&from_fleet_file).await.unwrap();
    catalog
        .upsert_database("sales-prod", &database_facts("orders"))
        .await
        .unwrap();

    let instances = catalog.instances().await.unwrap();
    assert_eq!(instances.len(), 1);
    let instance = &instances[0];
    assert_eq!(instance.port, 14330);
    assert_eq!(instance.product_version.as_deref(), Some("16.0.1000.6"));
    assert_eq!(instance.engine_edition, Some(3));
    assert_eq!(instance.server_name.as_deref(), Some("SQL01"));
    assert!(instance.last_seen_at.is_some());
    assert_eq!(instance.database_count, 1);
}

#[tokio::test]
async fn upsert_database_rejects_unknown_instance() {
    let catalog = Catalog::open_in_memory().await.unwrap();

    let error = catalog
        .upsert_database("nowhere", &database_facts("orders"))
        .await
        .unwrap_err();

    assert!(
        matches!(error, CatalogError::InstanceNotFound { ref instance } if instance == "nowhere"),
        "unexpected error: {error}"
    );
}

#[tokio::test]
async fn backups_list_newest_first() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    for days in [3, 1, 2] {
        let finish = T0 - Duration::days(days);
        add_backup(
            &catalog,
            &record("sales-prod", "orders", BackupType::Full, finish, 10),
        )
        .await;
    }
    add_backup(
        &catalog,
        &record("sales-prod", "billing", BackupType::Full, T0, 10),
    )
    .await;

    let backups = catalog
        .backups_of_database("sales-prod", "orders", 2)
        .await
        .unwrap();

    let finishes: Vec<_> = backups.iter().map(|b| b.finished_at).collect();
    assert_eq!(
        finishes,
        vec![T0 - Duration::days(1), T0 - Duration::days(2)]
    );
    assert_eq!(catalog.backup(9999).await.unwrap(), None);
}

#[tokio::test]
async fn overview_skips_pruned_newest_backup() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let older = record(
        "sales-prod",
        "orders",
        BackupType::Full,
        T0 - Duration::days(8),
        200,
    );
    let newer = record(
        "sales-prod",
        "orders",
        BackupType::Full,
        T0 - Duration::days(1),
        300,
    );
    let (_, older_id) = add_backup(&catalog, &older).await;
    let (_, newer_id) = add_backup(&catalog, &newer).await;

    catalog.mark_pruned(newer_id, "test", T0).await.unwrap();
    let after_newest_pruned = catalog.fleet_overview().await.unwrap();
    catalog.mark_pruned(older_id, "test", T0).await.unwrap();
    let after_all_pruned = catalog.fleet_overview().await.unwrap();

    let full = after_newest_pruned[0].last_full.as_ref().unwrap();
    assert_eq!(full.id, older_id);
    assert_eq!(full.size_bytes, 200);
    assert!(after_all_pruned[0].last_full.is_none());
    assert!(after_all_pruned[0].last_run.is_some());
}

/// The overview reads are kept in memory between changes; each kind of change must show.
#[tokio::test]
async fn cached_overview_follows_changes() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    catalog
        .upsert_instance(&instance_facts("sales-prod", None))
        .await
        .unwrap();
    catalog
        .upsert_database("sales-prod", &database_facts("orders"))
        .await
        .unwrap();
    let overview = catalog.fleet_overview().await.unwrap();
    assert_eq!(overview.len(), 1);
    assert!(overview[0].last_full.is_none());
    assert!(catalog.instance_reachability().await.unwrap().is_empty());

    catalog
        .upsert_database("sales-prod", &database_facts("billing"))
        .await
        .unwrap();
    assert_eq!(catalog.fleet_overview().await.unwrap().len(), 2);

    let full = record("sales-prod", "orders", BackupType::Full, T0, 300);
    let (run_id, backup_id) = add_backup(&catalog, &full).await;
    let overview = catalog.fleet_overview().await.unwrap();
    let orders = overview
        .iter()
        .find(|row| row.database == "orders")
        .unwrap();
    assert_eq!(
        orders.last_full.as_ref().map(|last| last.id),
        Some(backup_id)
    );
    assert_eq!(orders.last_run.as_ref().map(|last| last.id), Some(run_id));
    let reachability = catalog.instance_reachability().await.unwrap();
    assert_eq!(reachability.len(), 1);
    assert!(reachability[0].reachable);

    let failed = catalog
        .start_run(&new_run("sales-prod", "billing", BackupType::Full, T0))
        .await
        .unwrap();
    catalog
        .fail_run(failed, "connect", "refused")
        .await
        .unwrap();
    let overview = catalog.fleet_overview().await.unwrap();
    let billing = overview
        .iter()
        .find(|row| row.database == "billing")
        .unwrap();
    let last_run = billing.last_run.as_ref().unwrap();
    assert_eq!(last_run.status, RunStatus::Failed);

    let instances = catalog.instances().await.unwrap();
    assert_eq!(instances[0].product_version, None);
    catalog
        .upsert_instance(&instance_facts("sales-prod", Some("16.0.1000.6")))
        .await
        .unwrap();
    let instances = catalog.instances().await.unwrap();
    assert_eq!(instances[0].product_version.as_deref(), Some("16.0.1000.6"));
}
