//! The catalogue: instances, databases, runs, backups and job leases in SQLite (sqlx).
//!
//! Times are stored as UTC RFC 3339 text with milliseconds, so text order is time order.

mod accounts;
mod alerts;
mod backup_families;
mod backup_files;
mod backups;
mod chain_backups;
mod database_overview;
mod decode;
mod drills;
mod inventory;
mod lease;
mod overview;
mod overview_cache;
mod paging;
mod phase_totals;
mod pruning;
mod run_log;
mod runs;
mod slots;
mod storage;
mod store_history;
mod timestamp;
mod tokens;
mod verification;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::backup::BackupType;

pub use accounts::{
    AuditOutcome, AuditRow, FailureCount, NewAuditEntry, NewSession, SessionRow, UserRow,
};
pub use alerts::{
    AlertKey, AlertProblem, AlertRow, AlertState, FinishedRun, NewAlert, PendingDelivery,
    StateChange,
};
pub use backups::{BackupListing, BackupRow};
pub use chain_backups::ScriptMember;
pub use drills::{DrillEnd, DrillRow, NewDrill};
pub use inventory::{DatabaseFacts, InstanceFacts, InstanceRow};
pub use lease::{LeaseError, LeaseHolder};
pub use overview::{DatabaseOverview, LastBackup, LastRun, Reachability};
pub use phase_totals::PhaseTotal;
pub use pruning::{CataloguedDatabase, StagedLeftover};
pub use run_log::RunLogLine;
pub use runs::{NewRun, RunRow, RunStats, RunStatus, SkipKind};
pub use storage::{BackupBucket, DatabaseStorage, RunBucket, CHART_INTERVAL};
pub use tokens::{NewToken, TokenRow};
pub use verification::{FailedBackup, FailureKind, VerificationFailure};

/// How long a statement waits for another connection's write lock before it fails.
///
/// The scheduler, the web site and a manual `bakfleet run` may write at the same time,
/// and SQLite serialises writers. Catalogue transactions are a few short statements, so
/// five seconds runs out only when another process keeps a transaction open far longer.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Rows a connection's worker thread reads ahead of the task that takes them. sqlx runs
/// each SQLite connection on a thread of its own and buffers 50 rows by default, so a
/// restore plan that reads 10,000 backups switched threads hundreds of times. A larger
/// buffer lets the worker read on while the task decodes.
const ROW_BUFFER: usize = 1024;

/// Page cache of each connection, in SQLite's form: a negative number of KiB, so 8 MiB.
/// SQLite's default of 2,000 KiB does not hold the pages of one database's 10,000 log
/// backups, so a restore plan read them again through the file system on every request. With five
/// connections the caches take at most 40 MiB.
const PAGE_CACHE_SIZE: &str = "-8192";

/// Maximum pooled connections to a catalogue file. WAL mode lets readers run beside the
/// one writer, so a few connections keep pages responsive while a job writes.
const MAX_CONNECTIONS: u32 = 4;

/// Pooled connections for writes that may skip the `fsync` (see [`Catalog::relaxed`]).
/// SQLite serialises writers, so more than one such connection would only queue on the
/// write lock instead of in the pool.
const RELAXED_CONNECTIONS: u32 = 1;

/// Error of a catalogue operation.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot create the catalogue directory {path}: {source}")]
    CreateDirectory {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the catalogue {path}: {source}; check that the file and its directory are writable")]
    Open { path: PathBuf, source: sqlx::Error },
    #[error("catalogue {path} not found; check service.catalog in the fleet file, or take a first backup with `bakfleet run` or `bakfleet serve`, which create it")]
    NotFound { path: PathBuf },
    #[error("cannot apply the catalogue schema migrations: {0}; a newer bakfleet may have written this catalogue")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("catalogue query failed while trying to {action}: {source}")]
    Query { action: String, source: sqlx::Error },
    #[error("run {run_id} not found in the catalogue")]
    RunNotFound { run_id: i64 },
    #[error("run {run_id} already finished with status {status}; only a running run can change phase or outcome")]
    RunFinished { run_id: i64, status: String },
    #[error("backup of database {database:?} on instance {instance} does not belong to run {run_id}, which backs up database {run_database:?} on instance {run_instance}")]
    RunMismatch {
        run_id: i64,
        instance: String,
        database: String,
        run_instance: String,
        run_database: String,
    },
    #[error("instance {instance} not found in the catalogue; store it with upsert_instance before its databases")]
    InstanceNotFound { instance: String },
    #[error("invalid value {value:?} in column {column} of table {table}, row {row_id}: {reason}")]
    InvalidValue {
        table: &'static str,
        column: &'static str,
        row_id: i64,
        value: String,
        reason: String,
    },
    #[error("a {backup_type} run of database {database:?} on instance {instance} for schedule slot {slot} already exists; each slot runs once")]
    SlotTaken {
        instance: String,
        database: String,
        backup_type: BackupType,
        slot: String,
    },
    #[error("user {name:?} already exists; choose another name, or change its password with `bakfleet user passwd {name}`")]
    UserExists { name: String },
    #[error("value {value} of {field} does not fit in a 64-bit signed integer column")]
    OutOfRange { field: &'static str, value: u64 },
}

impl CatalogError {
    /// Wraps a sqlx error with the action that failed, built only when an error occurs.
    fn query(action: impl Into<String>) -> impl FnOnce(sqlx::Error) -> CatalogError {
        let action = action.into();
        move |source| CatalogError::Query { action, source }
    }
}

/// The catalogue database. Cloning is cheap: clones share the connection pools and one
/// cache of overview reads.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// Connections that commit with `fsync` (synchronous FULL), for reads and for every
    /// write that must survive a power loss.
    pool: SqlitePool,
    /// Connections that commit without `fsync` (synchronous NORMAL), for the writes that
    /// [`Catalog::relaxed`] lists.
    relaxed: SqlitePool,
    cache: std::sync::Arc<overview_cache::OverviewCache>,
    /// Held by the write under way in this process (see [`Catalog::write_turn`]).
    writes: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl Catalog {
    /// Opens the catalogue file at `path`, creating its directory and the file when
    /// missing, and applies pending schema migrations.
    ///
    /// The file runs in WAL mode with foreign keys enforced, so pages can read while a
    /// job writes. Synchronous is FULL because with NORMAL a WAL-mode commit may roll
    /// back after a power loss (SQLite docs, "PRAGMA synchronous"), and a job deletes its
    /// staged file once the backup row is committed.
    pub async fn open(path: &Path) -> Result<Catalog, CatalogError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| CatalogError::CreateDirectory {
                path: parent.to_path_buf(),
                source,
            })?;
        }

        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .row_buffer_size(ROW_BUFFER)
            .pragma("cache_size", PAGE_CACHE_SIZE);
        let open_error = |source| CatalogError::Open {
            path: path.to_path_buf(),
            source,
        };
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options.clone())
            .await
            .map_err(open_error)?;
        let catalog = Self::migrate(pool.clone(), pool).await?;

        // Opened after the migrations, which the FULL pool applies and makes durable.
        let relaxed = SqlitePoolOptions::new()
            .max_connections(RELAXED_CONNECTIONS)
            .connect_lazy_with(options.synchronous(SqliteSynchronous::Normal));
        Ok(Catalog { relaxed, ..catalog })
    }

    /// Opens an existing catalogue for commands that only read it, so that a wrong
    /// `service.catalog` is reported instead of read from a new, empty file.
    ///
    /// # Errors
    /// [`CatalogError::NotFound`] when no file is at `path`; else as [`Catalog::open`].
    pub async fn open_existing(path: &Path) -> Result<Catalog, CatalogError> {
        if !path.is_file() {
            return Err(CatalogError::NotFound {
                path: std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
            });
        }
        Catalog::open(path).await
    }

    /// Opens an empty catalogue in memory, for tests.
    ///
    /// Every SQLite connection to `:memory:` gets its own database, so the pool keeps
    /// exactly one connection open for the catalogue's whole life.
    pub async fn open_in_memory() -> Result<Catalog, CatalogError> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")
            .expect("the in-memory SQLite URL is valid")
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(|source| CatalogError::Open {
                path: PathBuf::from(":memory:"),
                source,
            })?;

        // One in-memory database, so relaxed writes share the one connection.
        Self::migrate(pool.clone(), pool).await
    }

    async fn migrate(pool: SqlitePool, relaxed: SqlitePool) -> Result<Catalog, CatalogError> {
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Catalog {
            pool,
            relaxed,
            cache: std::sync::Arc::default(),
            writes: std::sync::Arc::default(),
        })
    }

    /// Returns the connections for writes whose loss in a power cut harms nothing: a run's
    /// phase and notes, job leases, run log lines and the facts learnt on connecting.
    ///
    /// In WAL mode a commit under synchronous NORMAL appends to the log without waiting
    /// for the disk, and may roll back after a power loss but never corrupts the file
    /// (SQLite docs, "PRAGMA synchronous"). The next FULL commit syncs the whole log,
    /// these frames included. A run makes about a dozen such writes and two that must be
    /// durable (its start and its outcome), and SQLite serialises writers, so syncing
    /// every commit bounded the fleet's job rate by the disk's flush latency.
    fn relaxed(&self) -> &SqlitePool {
        &self.relaxed
    }

    /// Waits until no other write of this process is under way, and holds the turn until
    /// the guard drops. Every method that writes takes it before it begins.
    ///
    /// SQLite lets one connection write at a time. A connection that finds the write
    /// lock taken retries from its busy handler, which sleeps 1 ms, then 2, 5, 10 and up
    /// to 100 ms between tries. So the lock stood free while writers slept, and the FULL
    /// and relaxed connections kept finding each other's lock. Writers of one process
    /// queue here instead, and the next starts as soon as the one before ends. The busy
    /// timeout still covers other processes on the same file.
    async fn write_turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.writes.lock().await
    }

    /// Closes every connection, so later queries fail. A clean stop calls it, because
    /// SQLite folds the write-ahead log into the catalogue file and removes it when the
    /// last connection closes. Tests use it to stand in for a catalogue that stopped
    /// responding.
    pub async fn close(&self) {
        self.relaxed.close().await;
        self.pool.close().await;
    }

    /// Runs `SELECT 1`, so that health checks can tell whether the catalogue responds.
    pub async fn ping(&self) -> Result<(), CatalogError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(CatalogError::query("check that the catalogue responds"))?;
        Ok(())
    }
}

/// Converts a count or size to the signed 64-bit integer SQLite stores.
fn to_sql_integer(field: &'static str, value: u64) -> Result<i64, CatalogError> {
    i64::try_from(value).map_err(|_| CatalogError::OutOfRange { field, value })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn synchronous(pool: &SqlitePool) -> i64 {
        sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(pool)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn relaxed_pool_skips_fsync() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open(&dir.path().join("catalog.db")).await.unwrap();

        // SQLite numbers the levels OFF 0, NORMAL 1, FULL 2.
        assert_eq!(synchronous(&catalog.pool).await, 2);
        assert_eq!(synchronous(catalog.relaxed()).await, 1);
    }

    #[tokio::test]
    async fn writes_wait_for_the_write_turn() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open(&dir.path().join("catalog.db")).await.unwrap();
        let turn = catalog.write_turn().await;

        // One write of each pool: a note goes to the relaxed connection, the orphan
        // sweep to the FULL ones.
        let relaxed = tokio::spawn({
            let catalog = catalog.clone();
            async move { catalog.add_run_note(1, "note").await }
        });
        let full = tokio::spawn({
            let catalog = catalog.clone();
            async move {
                catalog
                    .interrupt_orphaned_runs(time::OffsetDateTime::now_utc())
                    .await
            }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!relaxed.is_finished());
        assert!(!full.is_finished());

        drop(turn);
        assert!(matches!(
            relaxed.await.unwrap(),
            Err(CatalogError::RunNotFound { run_id: 1 })
        ));
        assert_eq!(full.await.unwrap().unwrap(), 0);
    }

    #[tokio::test]
    async fn relaxed_writes_visible_on_full_pool() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open(&dir.path().join("catalog.db")).await.unwrap();
        catalog
            .upsert_instance(&InstanceFacts {
                name: "sql01".into(),
                host: "db1.example.net".into(),
                port: 1433,
                product_version: Some("16.0.1000.6".into()),
                edition: None,
                engine_edition: None,
                server_name: None,
            })
            .await
            .unwrap();

        let instances = catalog.read_instances().await.unwrap();
        assert_eq!(instances.len(), 1);
        assert_eq!(instances[0].product_version.as_deref(), Some("16.0.1000.6"));
    }
}
