//! Catalogue runs: schema migrations, run outcomes and the one-transaction completion.

mod catalog_fixture;

use bakfleet::backup::BackupType;
use bakfleet::catalog::{Catalog, CatalogError, RunStatus};
use catalog_fixture::{add_backup, holder, new_run, record, stats, T0};
use time::Duration;

#[tokio::test]
async fn open_creates_directory_and_migrates() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state/nested/catalog.db");

    let catalog = Catalog::open(&path).await.expect("open a new catalogue");
    catalog.ping().await.expect("ping");
    let run_id = catalog
        .start_run(&new_run("sales-prod", "orders", BackupType::Full, T0))
        .await
        .unwrap();
    assert!(
        path.exists(),
        "catalogue file missing at {}",
        path.display()
    );
    assert!(
        dir.path().join("state/nested/catalog.db-wal").exists(),
        "no WAL file beside the catalogue: journal mode is not WAL"
    );
    drop(catalog);

    let reopened = Catalog::open(&path)
        .await
        .expect("reopen an existing catalogue");
    let run = reopened
        .run(run_id)
        .await
        .unwrap()
        .expect("run survives reopening");
    assert_eq!(run.database, "orders");
}

#[tokio::test]
async fn run_failure_records_phase_and_error() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let run_id = catalog
        .start_run(&new_run("sales-prod", "orders", BackupType::Log, T0))
        .await
        .unwrap();

    let started = catalog.run(run_id).await.unwrap().unwrap();
    assert_eq!(started.status, RunStatus::Running);
    assert_eq!(started.phase, "start");
    assert_eq!(started.started_at, T0);
    assert_eq!(started.finished_at, None);

    catalog.set_run_phase(run_id, "backup").await.unwrap();
    catalog
        .fail_run(run_id, "verify", "RESTORE VERIFYONLY failed: error 3187")
        .await
        .unwrap();

    let failed = catalog.run(run_id).await.unwrap().unwrap();
    assert_eq!(failed.status, RunStatus::Failed);
    assert_eq!(failed.phase, "verify");
    assert_eq!(
        failed.error.as_deref(),
        Some("RESTORE VERIFYONLY failed: error 3187")
    );
    assert!(failed.finished_at.is_some());
    assert!(failed.duration_ms.is_some());
    assert_eq!(failed.backup_id, None);
}

#[tokio::test]
async fn finished_run_rejects_phase_change() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let run_id = catalog
        .start_run(&new_run("sales-prod", "orders", BackupType::Full, T0))
        .await
        .unwrap();
    catalog
        .fail_run(run_id, "connect", "login failed")
        .await
        .unwrap();

    let error = catalog.set_run_phase(run_id, "backup").await.unwrap_err();
    assert!(
        matches!(error, CatalogError::RunFinished { run_id: id, ref status } if id == run_id && status == "failed"),
        "unexpected error: {error}"
    );
    let error = catalog
        .skip_run(run_id, "database offline")
        .await
        .unwrap_err();
    assert!(
        matches!(error, CatalogError::RunFinished { .. }),
        "unexpected error: {error}"
    );

    let error = catalog.set_run_phase(9999, "backup").await.unwrap_err();
    assert!(
        matches!(error, CatalogError::RunNotFound { run_id: 9999 }),
        "unexpected error: {error}"
    );
}

#[tokio::test]
async fn skip_and_notes_append_lines() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let run_id = catalog
        .start_run(&new_run("sales-prod", "scratch", BackupType::Log, T0))
        .await
        .unwrap();

    catalog
        .add_run_note(run_id, "LOG backup under SIMPLE recovery is impossible")
        .await
        .unwrap();
    catalog
        .skip_run(run_id, "database uses SIMPLE recovery")
        .await
        .unwrap();
    catalog
        .add_run_note(run_id, "noted after the outcome")
        .await
        .unwrap();

    let run = catalog.run(run_id).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Skipped);
    assert_eq!(
        run.note.as_deref(),
        Some(
            "LOG backup under SIMPLE recovery is impossible\n\
             database uses SIMPLE recovery\n\
             noted after the outcome"
        )
    );
    assert!(run.finished_at.is_some());

    let error = catalog.add_run_note(9999, "lost").await.unwrap_err();
    assert!(matches!(error, CatalogError::RunNotFound { run_id: 9999 }));
}

#[tokio::test]
async fn complete_run_stores_backup_and_outcome() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let backup = record("sales-prod", "orders", BackupType::Full, T0, 1_048_576);

    let (run_id, backup_id) = add_backup(&catalog, &backup).await;

    let run = catalog.run(run_id).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(run.bytes, Some(1_048_576));
    assert_eq!(run.duration_ms, Some(60_000));
    assert_eq!(run.finished_at, Some(backup.fetched_at));
    assert_eq!(run.backup_id, Some(backup_id));

    let stored = catalog
        .backup(backup_id)
        .await
        .unwrap()
        .expect("backup row");
    assert_eq!(stored.run_id, run_id);
    assert_eq!(stored.status, "verified");
    assert_eq!(stored.store_path, backup.store_path);
    assert_eq!(stored.staged_path, backup.staged_path);
    assert_eq!(stored.size_bytes, backup.size_bytes);
    assert_eq!(stored.sha256, backup.sha256);
    assert_eq!(stored.first_lsn, backup.first_lsn);
    assert_eq!(stored.last_lsn, backup.last_lsn);
    assert_eq!(stored.checkpoint_lsn, backup.checkpoint_lsn);
    assert_eq!(stored.database_backup_lsn, backup.database_backup_lsn);
    assert_eq!(stored.differential_base_lsn, None);
    assert_eq!(stored.backup_start, backup.backup_start);
    assert_eq!(stored.backup_finish, backup.backup_finish);
    assert_eq!(
        stored.finished_at, T0,
        "backup_finish converted with time_zone +2 h"
    );
    assert_eq!(stored.time_zone, Some(8));
    assert!(stored.has_checksums);
    assert!(!stored.is_copy_only);
    assert!(stored.compressed);
    assert_eq!(stored.backup_size, backup.backup_size);
    assert_eq!(stored.compressed_size, backup.compressed_size);
    assert_eq!(stored.fetched_at, backup.fetched_at);
    assert_eq!(stored.fetch_ms, backup.fetch_ms);
}

#[tokio::test]
async fn complete_run_keeps_large_lsns() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let mut backup = record("sales-prod", "orders", BackupType::Diff, T0, 10);
    // numeric(25,0) holds values beyond u64::MAX.
    backup.last_lsn = bakfleet::backup::Lsn(9_999_999_999_999_999_999_999_999);
    backup.differential_base_lsn = Some(bakfleet::backup::Lsn(41_000_000_012_300_001));

    let (_, backup_id) = add_backup(&catalog, &backup).await;

    let stored = catalog.backup(backup_id).await.unwrap().unwrap();
    assert_eq!(stored.last_lsn, backup.last_lsn);
    assert_eq!(stored.differential_base_lsn, backup.differential_base_lsn);
}

#[tokio::test]
async fn complete_run_rolls_back_failed_insert() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let first = record("sales-prod", "orders", BackupType::Full, T0, 100);
    add_backup(&catalog, &first).await;
    let run_id = catalog
        .start_run(&new_run(
            "sales-prod",
            "orders",
            BackupType::Full,
            T0 + Duration::hours(1),
        ))
        .await
        .unwrap();
    catalog.set_run_phase(run_id, "catalogue").await.unwrap();

    // The same store_path again violates the UNIQUE constraint on backups.
    let error = catalog
        .complete_run(run_id, &first, &stats(T0 + Duration::hours(2), 100))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains(&first.store_path),
        "error does not name the store path: {error}"
    );

    let run = catalog.run(run_id).await.unwrap().unwrap();
    assert_eq!(
        run.status,
        RunStatus::Running,
        "run outcome was stored without its backup"
    );
    assert_eq!(run.phase, "catalogue");
    assert_eq!(run.finished_at, None);
    assert_eq!(run.bytes, None);
    assert_eq!(run.backup_id, None);
    let backups = catalog
        .backups_of_database("sales-prod", "orders", 10)
        .await
        .unwrap();
    assert_eq!(backups.len(), 1);
}

#[tokio::test]
async fn complete_run_rejects_other_database() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let run_id = catalog
        .start_run(&new_run("sales-prod", "orders", BackupType::Full, T0))
        .await
        .unwrap();
    let other = record("sales-prod", "billing", BackupType::Full, T0, 100);

    let error = catalog
        .complete_run(run_id, &other, &stats(T0, 100))
        .await
        .unwrap_err();
    assert!(
        matches!(error, CatalogError::RunMismatch { .. }),
        "unexpected error: {error}"
    );
    let message = error.to_string();
    assert!(message.contains("\"billing\""), "{message}");
    assert!(message.contains("\"orders\""), "{message}");

    let run = catalog.run(run_id).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Running);
    assert!(catalog
        .backups_of_database("sales-prod", "billing", 10)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn complete_run_rejects_finished_run() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let backup = record("sales-prod", "orders", BackupType::Full, T0, 100);
    let (run_id, _) = add_backup(&catalog, &backup).await;
    let mut again = backup.clone();
    again.store_path.push_str(".second");

    let error = catalog
        .complete_run(run_id, &again, &stats(T0, 100))
        .await
        .unwrap_err();
    assert!(
        matches!(error, CatalogError::RunFinished { ref status, .. } if status == "succeeded"),
        "unexpected error: {error}"
    );
}

#[tokio::test]
async fn interrupt_marks_runs_without_lease() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let leased = catalog
        .start_run(&new_run("sales-prod", "orders", BackupType::Full, T0))
        .await
        .unwrap();
    let orphaned = catalog
        .start_run(&new_run("sales-prod", "billing", BackupType::Full, T0))
        .await
        .unwrap();
    let lease_holder = holder("central01", 4242);
    catalog
        .acquire_lease(
            "sales-prod",
            "orders",
            &lease_holder,
            std::time::Duration::from_secs(600),
            T0,
        )
        .await
        .unwrap();

    let marked = catalog
        .interrupt_orphaned_runs(T0 + Duration::minutes(1))
        .await
        .unwrap();

    assert_eq!(marked, 1);
    let orphaned = catalog.run(orphaned).await.unwrap().unwrap();
    assert_eq!(orphaned.status, RunStatus::Interrupted);
    assert!(orphaned.error.is_some());
    let leased = catalog.run(leased).await.unwrap().unwrap();
    assert_eq!(leased.status, RunStatus::Running);

    let marked = catalog
        .interrupt_orphaned_runs(T0 + Duration::minutes(11))
        .await
        .unwrap();
    assert_eq!(marked, 1, "a run whose lease expired counts as orphaned");
}

#[tokio::test]
async fn runs_list_newest_first() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    for hour in 0..5 {
        catalog
            .start_run(&new_run(
                "sales-prod",
                "orders",
                BackupType::Log,
                T0 + Duration::hours(hour),
            ))
            .await
            .unwrap();
    }
    catalog
        .start_run(&new_run(
            "sales-prod",
            "billing",
            BackupType::Log,
            T0 + Duration::minutes(30),
        ))
        .await
        .unwrap();

    let recent = catalog.recent_runs(3).await.unwrap();
    let starts: Vec<_> = recent.iter().map(|run| run.started_at).collect();
    assert_eq!(
        starts,
        vec![
            T0 + Duration::hours(4),
            T0 + Duration::hours(3),
            T0 + Duration::hours(2)
        ]
    );

    let billing = catalog
        .runs_of_database("sales-prod", "billing", None, 10)
        .await
        .unwrap();
    assert_eq!(billing.len(), 1);
    assert_eq!(billing[0].started_at, T0 + Duration::minutes(30));
    assert_eq!(catalog.run(9999).await.unwrap(), None);
}

#[tokio::test]
async fn chart_sums_follow_backups_and_runs() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let day = time::macros::datetime!(2026-06-01 00:00 UTC);
    // Each run starts 40 s before its backup finishes, so the last run falls in the
    // morning interval and its backup in the afternoon one.
    for (finish, size) in [
        (day + Duration::minutes(10), 100),
        (day + Duration::hours(6), 900),
        (day + Duration::minutes(719), 300),
        (day + Duration::hours(12) + Duration::seconds(30), 50),
    ] {
        add_backup(
            &catalog,
            &record("sales-prod", "orders", BackupType::Log, finish, size),
        )
        .await;
    }
    let failed = catalog
        .start_run(&new_run("sales-prod", "orders", BackupType::Log, day))
        .await
        .unwrap();
    catalog
        .fail_run(failed, "backup", "error 3201")
        .await
        .unwrap();

    let backups = catalog
        .backup_buckets("sales-prod", "orders", day - Duration::days(30))
        .await
        .unwrap();
    let runs = catalog
        .run_buckets("sales-prod", "orders", day - Duration::days(30))
        .await
        .unwrap();

    assert_eq!(backups.len(), 2, "{backups:?}");
    assert_eq!(backups[0].from, day);
    assert_eq!(backups[0].count, 3);
    assert_eq!(backups[0].largest_bytes, 900);
    assert_eq!(backups[0].newest, day + Duration::minutes(719));
    assert_eq!(backups[1].from, day + Duration::hours(12));
    assert_eq!(backups[1].count, 1);
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].count, 4, "the failed run does not count");
    assert_eq!(runs[0].longest_ms, Some(60_000));
    assert_eq!(runs[0].mean_throughput_bps, Some(1350.0 / 60.0 / 4.0));
    assert_eq!(
        runs[0].newest,
        day + Duration::hours(12) + Duration::seconds(30) - Duration::seconds(40)
    );

    let afternoon = day + Duration::hours(12) + Duration::seconds(10);
    let late = catalog
        .backup_buckets("sales-prod", "orders", afternoon)
        .await
        .unwrap();
    assert_eq!(late.len(), 1, "only intervals with a backup since then");
    assert_eq!(late[0].largest_bytes, 50);
    assert!(catalog
        .run_buckets("sales-prod", "orders", afternoon)
        .await
        .unwrap()
        .is_empty());
}
