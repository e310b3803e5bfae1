//! Upgrading a catalogue made by the first schema: `Catalog::open` applies every later
//! migration, keeps every row and value, and gives old rows the new columns' defaults.
//!
//! The test writes rows with SQL against the first migration only, so it keeps working
//! as migrations are added.

use std::collections::BTreeMap;
use std::path::Path;

use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::Row;

use bakfleet::catalog::{Catalog, RunStatus};

/// The first migration, the schema the catalogue is upgraded from.
const FIRST_MIGRATION: &str = "0001_initial.sql";

/// Tables of the first schema, each with the rows a running fleet would have.
const FIRST_TABLES: [&str; 5] = ["instances", "databases", "runs", "backups", "job_leases"];

/// Rows in the first schema's tables: two instances, their databases, runs of every
/// status with the backups of the succeeded ones, and one held lease.
const FIRST_SCHEMA_ROWS: &str = r#"
INSERT INTO instances (id, name, host, port, product_version, edition, engine_edition,
                       server_name, last_seen_at)
VALUES (1, 'sales-prod', 'sql01.corp.example', 1433, '16.0.4135.4',
        'Enterprise Edition (64-bit)', 3, 'SQL01', '2026-11-30T01:00:00.000Z'),
       (2, 'hr-linux', 'sql02.corp.example', 1433, NULL, NULL, NULL, NULL, NULL);

INSERT INTO databases (id, instance_id, name, recovery_model, state, last_seen_at)
VALUES (1, 1, 'Orders', 'FULL', 'ONLINE', '2026-11-30T01:00:00.000Z'),
       (2, 1, 'we''ird ]name', 'SIMPLE', 'ONLINE', '2026-11-30T01:00:00.000Z'),
       (3, 2, 'Payroll', 'FULL', 'OFFLINE', NULL);

INSERT INTO runs (id, instance, database, backup_type, trigger, status, phase, error, note,
                  started_at, finished_at, duration_ms, bytes, throughput_bps, host, pid)
VALUES (1, 'sales-prod', 'Orders', 'full', 'schedule', 'succeeded', 'done', NULL, NULL,
        '2026-11-30T01:00:00.000Z', '2026-11-30T01:02:00.000Z', 120000, 8388608,
        69905.0, 'backup01', 4242),
       (2, 'sales-prod', 'Orders', 'log', 'schedule', 'succeeded', 'done', NULL,
        'compression left out',
        '2026-11-30T01:15:00.000Z', '2026-11-30T01:15:03.000Z', 3000, 65536, 21845.3,
        'backup01', 4242),
       (3, 'sales-prod', 'we''ird ]name', 'log', 'schedule', 'skipped', 'preflight', NULL,
        'LOG backup does not apply under SIMPLE recovery',
        '2026-11-30T01:15:00.000Z', '2026-11-30T01:15:01.000Z', 1000, NULL, NULL,
        'backup01', 4242),
       (4, 'hr-linux', 'Payroll', 'full', 'manual', 'failed', 'connect',
        'instance hr-linux: login failed', NULL,
        '2026-11-30T02:00:00.000Z', '2026-11-30T02:00:05.000Z', 5000, NULL, NULL,
        'backup01', 4243),
       (5, 'hr-linux', 'Payroll', 'diff', 'schedule', 'interrupted', 'fetch',
        'the bakfleet process ended or lost its lease before the run finished', NULL,
        '2026-11-30T03:00:00.000Z', '2026-11-30T03:10:00.000Z', NULL, NULL, NULL,
        'backup01', 4244),
       (6, 'sales-prod', 'Orders', 'diff', 'schedule', 'running', 'backup', NULL, NULL,
        '2026-11-30T04:00:00.000Z', NULL, NULL, NULL, NULL, 'backup01', 4245);

INSERT INTO backups (id, run_id, instance, database, backup_type, status, store_path,
                     staged_path, size_bytes, sha256, first_lsn, last_lsn, checkpoint_lsn,
                     database_backup_lsn, differential_base_lsn, backup_set_guid,
                     database_guid, backup_start, backup_finish, finished_at, time_zone,
                     server_version, recovery_model, has_checksums, is_copy_only,
                     compressed, backup_size, compressed_size, fetched_at, fetch_ms)
VALUES (1, 1, 'sales-prod', 'Orders', 'full', 'verified',
        'sales-prod/^orders/full/^orders_full_20261130T010000.000Z.bak',
        '\\files01\sqlbackup\sales-prod\^orders_full_20261130T010000.000Z.bak',
        8388608, 'aa' || substr(hex(zeroblob(31)), 1, 62),
        '0000000000000000042000000001', '0000000000000000042000000010',
        '0000000000000000042000000005', '0000000000000000000000000000', NULL,
        '6f9619ff-8b86-d011-b42d-00c04fc964ff', '1b4e28ba-2fa1-11d2-883f-0016d3cca427',
        '2026-11-30T02:00:00', '2026-11-30T02:01:50', '2026-11-30T01:01:50.000Z', 4,
        '16.0.4135.4', 'FULL', 1, 0, 1, 9437184, 8388608, '2026-11-30T01:02:00.000Z', 9500),
       (2, 2, 'sales-prod', 'Orders', 'log', 'verified',
        'sales-prod/^orders/log/^orders_log_20261130T011500.000Z.trn',
        '\\files01\sqlbackup\sales-prod\^orders_log_20261130T011500.000Z.trn',
        65536, 'bb' || substr(hex(zeroblob(31)), 1, 62),
        '0000000000000000042000000010', '0000000000000000043000000001',
        '0000000000000000042000000005', '0000000000000000042000000001', NULL,
        '7f9619ff-8b86-d011-b42d-00c04fc964ff', '1b4e28ba-2fa1-11d2-883f-0016d3cca427',
        '2026-11-30T02:15:00', '2026-11-30T02:15:02', '2026-11-30T01:15:02.000Z', 4,
        '16.0.4135.4', 'FULL', 1, 0, 0, 65536, NULL, '2026-11-30T01:15:03.000Z', 300);

INSERT INTO job_leases (instance, database, holder_host, holder_pid, holder_id,
                        acquired_at, expires_at)
VALUES ('sales-prod', 'Orders', 'backup01', 4245, 'e1c6a9f0-5b1e-4c57-9a53-3c1b8b0f2d11',
        '2026-11-30T04:00:00.000Z', '2999-01-01T00:00:00.000Z');
"#;

/// New columns that a migration fills from old data, each with the condition every old
/// row meets afterwards; every other new column must hold its declared default.
const BACKFILLED_COLUMNS: [(&str, &str, &str); 2] = [
    // The type asked for: for an old run, the type it took.
    ("runs", "requested_type", "requested_type IS backup_type"),
    // Why a skipped run was skipped; runs of other statuses have none.
    (
        "runs",
        "skip_kind",
        "(status = 'skipped' AND skip_kind IN ('not_applicable', 'unavailable')) \
         OR (status <> 'skipped' AND skip_kind IS NULL)",
    ),
];

/// Every row of one table as text, column by column, in rowid order.
type TableRows = Vec<Vec<Option<String>>>;

/// Creates a catalogue at `path` with only the first migration applied, using a migration
/// folder that contains a copy of that migration alone.
async fn create_first_schema_catalog(path: &Path, migrations: &Path) -> SqlitePool {
    std::fs::create_dir_all(migrations).expect("create the migration folder");
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(FIRST_MIGRATION);
    std::fs::copy(&source, migrations.join(FIRST_MIGRATION)).expect("copy the first migration");

    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .expect("create the catalogue file");
    let migrator = sqlx::migrate::Migrator::new(migrations)
        .await
        .expect("read the first migration");
    assert_eq!(migrator.iter().count(), 1, "only the first migration runs");
    migrator
        .run(&pool)
        .await
        .expect("apply the first migration");
    pool
}

/// Creates a first-schema catalogue at `path` and writes [`FIRST_SCHEMA_ROWS`] to it.
async fn create_filled_first_schema_catalog(dir: &Path, path: &Path) -> SqlitePool {
    let first = create_first_schema_catalog(path, &dir.join("migrations-0001")).await;
    sqlx::raw_sql(FIRST_SCHEMA_ROWS)
        .execute(&first)
        .await
        .expect("fill the first schema");
    first
}

/// Returns the column names of `table`, in declaration order.
async fn column_names(pool: &SqlitePool, table: &str) -> Vec<String> {
    let rows = sqlx::query("SELECT name FROM pragma_table_info(?) ORDER BY cid")
        .bind(table)
        .fetch_all(pool)
        .await
        .expect("read table columns");
    rows.iter()
        .map(|row| row.get::<String, _>("name"))
        .collect()
}

/// Reads `columns` of every row of `table` as text, in rowid order.
async fn read_rows(pool: &SqlitePool, table: &str, columns: &[String]) -> TableRows {
    let selected: Vec<String> = columns
        .iter()
        .map(|column| format!("CAST(\"{column}\" AS TEXT)"))
        .collect();
    let sql = format!("SELECT {} FROM {table} ORDER BY rowid", selected.join(", "));
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(pool)
        .await
        .unwrap_or_else(|error| panic!("read {table}: {error}"));
    rows.iter()
        .map(|row| {
            (0..columns.len())
                .map(|index| row.get::<Option<String>, _>(index))
                .collect()
        })
        .collect()
}

/// Counts the rows of `table` whose `column` differs from the column's declared default
/// (NULL when it declares none).
async fn rows_off_default(pool: &SqlitePool, table: &str, column: &str) -> i64 {
    let default = sqlx::query("SELECT dflt_value FROM pragma_table_info(?) WHERE name = ?")
        .bind(table)
        .bind(column)
        .fetch_one(pool)
        .await
        .expect("read the column default")
        .get::<Option<String>, _>(0)
        .unwrap_or_else(|| "NULL".to_string());
    let sql = format!("SELECT COUNT(*) FROM {table} WHERE NOT (\"{column}\" IS ({default}))");
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_one(pool)
        .await
        .unwrap_or_else(|error| panic!("compare {table}.{column} with its default: {error}"))
}

/// Counts the rows of `table` that do not meet `condition`.
async fn rows_failing(pool: &SqlitePool, table: &str, condition: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM {table} WHERE NOT ({condition})");
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_one(pool)
        .await
        .unwrap_or_else(|error| panic!("check {table} rows for {condition}: {error}"))
}

/// Opens the upgraded file with a plain pool, to read it with SQL beside the catalogue.
async fn open_plain(path: &Path) -> SqlitePool {
    let options = SqliteConnectOptions::new().filename(path);
    SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .expect("open the upgraded catalogue")
}

#[tokio::test]
async fn first_schema_upgrade_keeps_rows() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("catalog.db");
    let first = create_filled_first_schema_catalog(dir.path(), &path).await;

    let mut before = BTreeMap::new();
    for table in FIRST_TABLES {
        let columns = column_names(&first, table).await;
        let rows = read_rows(&first, table, &columns).await;
        assert!(!rows.is_empty(), "{table} has rows before the upgrade");
        before.insert(table, (columns, rows));
    }
    first.close().await;

    let catalog = Catalog::open(&path).await.expect("upgrade the catalogue");
    let upgraded = open_plain(&path).await;
    for (table, (old_columns, old_rows)) in &before {
        let rows = read_rows(&upgraded, table, old_columns).await;
        assert_eq!(&rows, old_rows, "{table}: every row and value kept");

        // A migration that fills a new column from old data needs an entry in
        // BACKFILLED_COLUMNS; any other new column must hold its default.
        let columns = column_names(&upgraded, table).await;
        for column in columns
            .iter()
            .filter(|column| !old_columns.contains(column))
        {
            let backfill = BACKFILLED_COLUMNS
                .iter()
                .find(|(name, backfilled, _)| name == table && backfilled == column);
            let failing = match backfill {
                Some((_, _, condition)) => rows_failing(&upgraded, table, condition).await,
                None => rows_off_default(&upgraded, table, column).await,
            };
            assert_eq!(
                failing, 0,
                "{table}.{column}: old rows get the expected value"
            );
        }
    }

    // The catalogue's own queries read the old rows.
    let runs = catalog.recent_runs(100).await.expect("list runs");
    assert_eq!(runs.len(), 6, "every run listed");
    let first_run = catalog.run(1).await.expect("read run 1").expect("run 1");
    assert_eq!(first_run.status, RunStatus::Succeeded);
    assert_eq!(first_run.backup_id, Some(1), "run 1 keeps its backup");
    let interrupted = catalog.run(5).await.expect("read run 5").expect("run 5");
    assert_eq!(interrupted.status, RunStatus::Interrupted);
    assert_eq!(interrupted.phase, "fetch");
}

#[tokio::test]
async fn upgraded_catalog_accepts_new_runs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("catalog.db");
    let first = create_filled_first_schema_catalog(dir.path(), &path).await;
    first.close().await;

    let catalog = Catalog::open(&path).await.expect("upgrade the catalogue");
    // The running run of the old process keeps its live lease, so it stays running.
    let now = time::OffsetDateTime::now_utc();
    let marked = catalog
        .interrupt_orphaned_runs(now)
        .await
        .expect("mark orphaned runs");
    assert_eq!(marked, 0, "run 6 still holds its lease");
    catalog
        .interrupt_run(6, "backup", "stopped by SIGTERM after 60 s grace")
        .await
        .expect("interrupt run 6");
    let run = catalog.run(6).await.expect("read run 6").expect("run 6");
    assert_eq!(run.status, RunStatus::Interrupted);
    assert_eq!(
        run.error.as_deref(),
        Some("stopped by SIGTERM after 60 s grace")
    );
}
