//! Runs: one attempt to back up one database with one backup type, from start to outcome.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use sqlx::sqlite::SqliteRow;
use sqlx::SqliteConnection;
use time::OffsetDateTime;

use super::backups::insert_backup;
use super::decode::RowReader;
use super::phase_totals;
use super::timestamp::format_utc;
use super::{to_sql_integer, Catalog, CatalogError};
use crate::backup::{BackupRecord, BackupType};

/// The phase a run records when it starts, before the job reports its first phase.
pub const START_PHASE: &str = "start";

/// A run the job pipeline is about to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRun {
    pub instance: String,
    pub database: String,
    /// The type requested; stored as `requested_type` and, until
    /// [`Catalog::change_run_type`] records a promotion, as `backup_type`.
    pub backup_type: BackupType,
    /// Origin of the run: `schedule`, `manual` or `demo`.
    pub trigger: String,
    pub started_at: OffsetDateTime,
    /// Host name and process id of the bakfleet process running the job.
    pub host: String,
    pub pid: u32,
    /// The schedule slot this run serves; `None` for manual and demo runs. A second run
    /// for the same instance, database, requested type and slot is rejected with
    /// [`CatalogError::SlotTaken`].
    pub slot: Option<OffsetDateTime>,
}

/// The cause of a skipped run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipKind {
    /// The requested type does not exist for the database: LOG under SIMPLE recovery,
    /// DIFF or LOG of master.
    NotApplicable,
    /// The database cannot be backed up now: not ONLINE, a snapshot, or tempdb.
    Unavailable,
}

impl SkipKind {
    /// Returns the name stored in `runs.skip_kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipKind::NotApplicable => "not_applicable",
            SkipKind::Unavailable => "unavailable",
        }
    }

    /// Returns the label pages and `list` show in place of the bare `skipped` status.
    pub fn label(self) -> &'static str {
        match self {
            SkipKind::NotApplicable => "not applicable",
            SkipKind::Unavailable => "skipped",
        }
    }
}

impl FromStr for SkipKind {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "not_applicable" => Ok(SkipKind::NotApplicable),
            "unavailable" => Ok(SkipKind::Unavailable),
            _ => Err(()),
        }
    }
}

/// Figures of a run that produced a backup.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunStats {
    pub finished_at: OffsetDateTime,
    pub duration_ms: u64,
    /// Bytes fetched into the store.
    pub bytes: u64,
    /// Bytes per second over the whole run.
    pub throughput_bps: f64,
}

/// Outcome of a run; `Running` until the job records one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Running,
    Succeeded,
    Failed,
    Skipped,
    /// A stop signal cancelled it, or the process running it ended before it recorded an
    /// outcome.
    Interrupted,
}

impl RunStatus {
    /// The name stored in `runs.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Skipped => "skipped",
            RunStatus::Interrupted => "interrupted",
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunStatus {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "running" => Ok(RunStatus::Running),
            "succeeded" => Ok(RunStatus::Succeeded),
            "failed" => Ok(RunStatus::Failed),
            "skipped" => Ok(RunStatus::Skipped),
            "interrupted" => Ok(RunStatus::Interrupted),
            _ => Err(()),
        }
    }
}

/// A run as the catalogue stores it, with the id of the backup it produced.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRow {
    pub id: i64,
    pub instance: String,
    pub database: String,
    /// The type the run takes: the requested type, or `full` after a promotion.
    pub backup_type: BackupType,
    /// The type the schedule or the operator asked for.
    pub requested_type: BackupType,
    /// The cause of a type change, a not-applicable run or a skipped run.
    pub reason: Option<String>,
    /// The schedule slot the run serves; `None` for manual and demo runs.
    #[serde(with = "time::serde::rfc3339::option")]
    pub slot: Option<OffsetDateTime>,
    /// Set when `status` is `skipped`.
    pub skip_kind: Option<SkipKind>,
    pub trigger: String,
    pub status: RunStatus,
    /// The last phase reached: `start`, then the phases the job reports, `done` on success.
    pub phase: String,
    pub error: Option<String>,
    /// Changes of course, one per line.
    pub note: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    pub duration_ms: Option<u64>,
    pub bytes: Option<u64>,
    pub throughput_bps: Option<f64>,
    pub host: String,
    pub pid: u32,
    pub backup_id: Option<i64>,
}

/// Columns of [`RunRow`], with the backup the run produced. Queries splice in this
/// constant with `format!`, never a value: values are bound.
pub(super) const RUN_COLUMNS: &str = "r.id, r.instance, r.database, r.backup_type,
    COALESCE(r.requested_type, r.backup_type) AS requested_type, r.reason, r.slot,
    r.skip_kind, r.trigger, r.status,
    r.phase, r.error, r.note, r.started_at, r.finished_at, r.duration_ms, r.bytes,
    r.throughput_bps, r.host, r.pid,
    (SELECT MAX(b.id) FROM backups b WHERE b.run_id = r.id) AS backup_id";

impl Catalog {
    /// Records a new run with status `running` and phase [`START_PHASE`], and returns
    /// its id.
    ///
    /// # Errors
    /// [`CatalogError::SlotTaken`] when a run for the same instance, database, requested
    /// type and schedule slot exists, from this process or another.
    pub async fn start_run(&self, run: &NewRun) -> Result<i64, CatalogError> {
        let _turn = self.write_turn().await;
        let result = sqlx::query(
            "INSERT INTO runs (instance, database, backup_type, requested_type, slot,
                               trigger, status, phase, started_at, phase_started_at, host, pid)
             VALUES (?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?)",
        )
        .bind(&run.instance)
        .bind(&run.database)
        .bind(run.backup_type.as_str())
        .bind(run.backup_type.as_str())
        .bind(run.slot.map(format_utc))
        .bind(&run.trigger)
        .bind(START_PHASE)
        .bind(format_utc(run.started_at))
        .bind(format_utc(run.started_at))
        .bind(&run.host)
        .bind(i64::from(run.pid))
        .execute(&self.pool)
        .await;
        match result {
            Ok(result) => Ok(result.last_insert_rowid()),
            Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
                Err(CatalogError::SlotTaken {
                    instance: run.instance.clone(),
                    database: run.database.clone(),
                    backup_type: run.backup_type,
                    slot: run.slot.map(format_utc).unwrap_or_default(),
                })
            }
            Err(source) => Err(CatalogError::Query {
                action: format!(
                    "start a {} run of database {:?} on instance {}",
                    run.backup_type, run.database, run.instance
                ),
                source,
            }),
        }
    }

    /// Records that a running run takes `backup_type` in place of the requested type,
    /// and why.
    pub async fn change_run_type(
        &self,
        run_id: i64,
        backup_type: BackupType,
        reason: &str,
    ) -> Result<(), CatalogError> {
        let _turn = self.write_turn().await;
        let result = sqlx::query(
            "UPDATE runs SET backup_type = ?, reason = ? WHERE id = ? AND status = 'running'",
        )
        .bind(backup_type.as_str())
        .bind(reason)
        .bind(run_id)
        .execute(&self.pool)
        .await
        .map_err(CatalogError::query(format!(
            "record the {backup_type} type of run {run_id}"
        )))?;
        if result.rows_affected() == 0 {
            return Err(explain_unchanged_run(&self.pool, run_id).await);
        }
        Ok(())
    }

    /// Records the phase a running run has reached. The catalogue's trigger
    /// `phase_totals_on_next_phase` adds the time it spent in the phase it leaves to that
    /// phase's totals in the same statement.
    ///
    /// # Errors
    /// [`CatalogError::RunNotFound`], or [`CatalogError::RunFinished`] when the run
    /// already has an outcome.
    pub async fn set_run_phase(&self, run_id: i64, phase: &str) -> Result<(), CatalogError> {
        let _turn = self.write_turn().await;
        let now = format_utc(OffsetDateTime::now_utc());
        // A phase lost in a power cut only shows an earlier phase of a run that the next
        // start marks interrupted anyway.
        let result = sqlx::query(
            "UPDATE runs SET phase = ?, phase_started_at = ? WHERE id = ? AND status = 'running'",
        )
        .bind(phase)
        .bind(&now)
        .bind(run_id)
        .execute(self.relaxed())
        .await
        .map_err(CatalogError::query(format!(
            "set phase {phase} of run {run_id}"
        )))?;
        if result.rows_affected() == 0 {
            return Err(explain_unchanged_run(&self.pool, run_id).await);
        }
        Ok(())
    }

    /// Begins a transaction that takes the write lock at once. A deferred transaction
    /// that reads first can fail with SQLITE_BUSY when it later writes in WAL mode,
    /// whatever the busy timeout.
    async fn begin_write(
        &self,
        action: &str,
    ) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, CatalogError> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(CatalogError::query(format!("begin to {action}")))
    }

    /// Appends a line to a run's notes. Works on finished runs too, so that a failed
    /// clean-up after a successful backup can be recorded.
    pub async fn add_run_note(&self, run_id: i64, note: &str) -> Result<(), CatalogError> {
        let _turn = self.write_turn().await;
        let result = sqlx::query(
            "UPDATE runs
             SET note = CASE WHEN note IS NULL THEN ? ELSE note || char(10) || ? END
             WHERE id = ?",
        )
        .bind(note)
        .bind(note)
        .bind(run_id)
        .execute(self.relaxed())
        .await
        .map_err(CatalogError::query(format!("add a note to run {run_id}")))?;
        if result.rows_affected() == 0 {
            return Err(CatalogError::RunNotFound { run_id });
        }
        Ok(())
    }

    /// Marks a running run failed in `phase` with `error`, finishing it now.
    pub async fn fail_run(
        &self,
        run_id: i64,
        phase: &str,
        error: &str,
    ) -> Result<(), CatalogError> {
        self.end_run(run_id, RunStatus::Failed, phase, error).await
    }

    /// Marks a running run interrupted in `phase` with `reason`, finishing it now. A stop
    /// signal interrupts a run; nothing failed, so running it again is expected to work.
    pub async fn interrupt_run(
        &self,
        run_id: i64,
        phase: &str,
        reason: &str,
    ) -> Result<(), CatalogError> {
        self.end_run(run_id, RunStatus::Interrupted, phase, reason)
            .await
    }

    /// Finishes a running run without a backup: sets `status`, `phase` and `error`.
    async fn end_run(
        &self,
        run_id: i64,
        status: RunStatus,
        phase: &str,
        error: &str,
    ) -> Result<(), CatalogError> {
        let _turn = self.write_turn().await;
        let now = format_utc(OffsetDateTime::now_utc());
        let mut transaction = self
            .begin_write(&format!("mark run {run_id} {status}"))
            .await?;
        phase_totals::close_phase(&mut transaction, run_id, &now).await?;
        let result = sqlx::query(
            "UPDATE runs
             SET status = ?, phase = ?, error = ?, finished_at = ?,
                 duration_ms = CAST(ROUND((julianday(?) - julianday(started_at)) * 86400000.0)
                                    AS INTEGER)
             WHERE id = ? AND status = 'running'",
        )
        .bind(status.as_str())
        .bind(phase)
        .bind(error)
        .bind(&now)
        .bind(&now)
        .bind(run_id)
        .execute(&mut *transaction)
        .await
        .map_err(CatalogError::query(format!("mark run {run_id} {status}")))?;
        if result.rows_affected() == 0 {
            // The explanation reads on another connection, so the write lock goes first.
            transaction.rollback().await.ok();
            return Err(explain_unchanged_run(&self.pool, run_id).await);
        }
        transaction
            .commit()
            .await
            .map_err(CatalogError::query(format!("commit run {run_id} {status}")))
    }

    /// Marks a running run skipped because the database is unavailable, finishing it
    /// now; `reason` becomes a note line.
    pub async fn skip_run(&self, run_id: i64, reason: &str) -> Result<(), CatalogError> {
        self.skip_run_as(run_id, SkipKind::Unavailable, reason)
            .await
    }

    /// Marks a running run skipped with `kind`, finishing it now; `reason` is stored as
    /// the run's reason and as a note line.
    pub async fn skip_run_as(
        &self,
        run_id: i64,
        kind: SkipKind,
        reason: &str,
    ) -> Result<(), CatalogError> {
        let _turn = self.write_turn().await;
        let now = format_utc(OffsetDateTime::now_utc());
        let mut transaction = self
            .begin_write(&format!("mark run {run_id} skipped"))
            .await?;
        phase_totals::close_phase(&mut transaction, run_id, &now).await?;
        let result = sqlx::query(
            "UPDATE runs
             SET status = 'skipped', skip_kind = ?, reason = ?, finished_at = ?,
                 duration_ms = CAST(ROUND((julianday(?) - julianday(started_at)) * 86400000.0)
                                    AS INTEGER),
                 note = CASE WHEN note IS NULL THEN ? ELSE note || char(10) || ? END
             WHERE id = ? AND status = 'running'",
        )
        .bind(kind.as_str())
        .bind(reason)
        .bind(&now)
        .bind(&now)
        .bind(reason)
        .bind(reason)
        .bind(run_id)
        .execute(&mut *transaction)
        .await
        .map_err(CatalogError::query(format!("mark run {run_id} skipped")))?;
        if result.rows_affected() == 0 {
            // The explanation reads on another connection, so the write lock goes first.
            transaction.rollback().await.ok();
            return Err(explain_unchanged_run(&self.pool, run_id).await);
        }
        transaction
            .commit()
            .await
            .map_err(CatalogError::query(format!("commit run {run_id} skipped")))
    }

    /// Inserts the backup row (status verified) and marks the run succeeded with its
    /// stats, in one transaction, and returns the backup's id.
    ///
    /// When any step fails, neither change is stored and the run stays as it was.
    ///
    /// # Errors
    /// [`CatalogError::RunNotFound`], [`CatalogError::RunFinished`],
    /// [`CatalogError::RunMismatch`] when the backup is of another instance or database,
    /// and a query error when the insert fails (a `store_path` already catalogued).
    pub async fn complete_run(
        &self,
        run_id: i64,
        backup: &BackupRecord,
        stats: &RunStats,
    ) -> Result<i64, CatalogError> {
        let _turn = self.write_turn().await;
        let duration_ms = to_sql_integer("run duration_ms", stats.duration_ms)?;
        let bytes = to_sql_integer("run bytes", stats.bytes)?;

        // IMMEDIATE takes the write lock at once: a deferred transaction that reads first
        // can fail with SQLITE_BUSY when it later writes in WAL mode, whatever the timeout.
        let mut transaction =
            self.pool
                .begin_with("BEGIN IMMEDIATE")
                .await
                .map_err(CatalogError::query(format!(
                    "begin completing run {run_id}"
                )))?;

        check_run_owns_backup(&mut transaction, run_id, backup).await?;
        let finished_at = format_utc(stats.finished_at);
        phase_totals::close_phase(&mut transaction, run_id, &finished_at).await?;
        add_run_bytes(&mut transaction, backup, bytes).await?;
        sqlx::query(
            "UPDATE runs
             SET status = 'succeeded', phase = 'done', finished_at = ?, duration_ms = ?,
                 bytes = ?, throughput_bps = ?
             WHERE id = ?",
        )
        .bind(&finished_at)
        .bind(duration_ms)
        .bind(bytes)
        .bind(stats.throughput_bps)
        .bind(run_id)
        .execute(&mut *transaction)
        .await
        .map_err(CatalogError::query(format!("mark run {run_id} succeeded")))?;
        let backup_id = insert_backup(&mut transaction, run_id, backup).await?;

        transaction
            .commit()
            .await
            .map_err(CatalogError::query(format!(
                "commit the outcome of run {run_id}"
            )))?;
        Ok(backup_id)
    }

    /// Marks `interrupted` every running run whose process no longer holds a live lease
    /// on its database at `now`, and returns how many it marked.
    ///
    /// A job holds its database's lease for as long as it runs, so a running run without
    /// one belongs to a process that ended (or lost its lease) before recording an outcome.
    pub async fn interrupt_orphaned_runs(&self, now: OffsetDateTime) -> Result<u64, CatalogError> {
        let _turn = self.write_turn().await;
        let now = format_utc(now);
        let result = sqlx::query(
            "UPDATE runs
             SET status = 'interrupted', finished_at = ?,
                 error = 'the bakfleet process ended or lost its lease before the run finished'
             WHERE status = 'running'
               AND NOT EXISTS (
                   SELECT 1 FROM job_leases l
                   WHERE l.instance = runs.instance AND l.database = runs.database
                     AND l.holder_host = runs.host AND l.holder_pid = runs.pid
                     AND l.expires_at > ?)",
        )
        .bind(&now)
        .bind(&now)
        .execute(&self.pool)
        .await
        .map_err(CatalogError::query("mark orphaned runs interrupted"))?;
        Ok(result.rows_affected())
    }

    /// Lists the newest runs of every database, newest first.
    pub async fn recent_runs(&self, limit: i64) -> Result<Vec<RunRow>, CatalogError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RUN_COLUMNS} FROM runs r ORDER BY r.started_at DESC, r.id DESC LIMIT ?"
        )))
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(CatalogError::query("list recent runs"))?;
        rows.iter().map(run_from_row).collect()
    }

    /// Lists the newest runs of one database, newest first by start time. With `before`,
    /// only those that come after run `before` in that order: the next page.
    pub async fn runs_of_database(
        &self,
        instance: &str,
        database: &str,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<RunRow>, CatalogError> {
        // A `before` that is no run of this database selects nothing.
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RUN_COLUMNS} FROM runs r
             WHERE r.instance = ?1 AND r.database = ?2
               AND (?3 IS NULL OR (r.started_at, r.id) < (
                    SELECT started_at, id FROM runs
                    WHERE id = ?3 AND instance = ?1 AND database = ?2))
             ORDER BY r.started_at DESC, r.id DESC LIMIT ?4"
        )))
        .bind(instance)
        .bind(database)
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(CatalogError::query(format!(
            "list runs of database {database:?} on instance {instance}"
        )))?;
        rows.iter().map(run_from_row).collect()
    }

    /// Returns one run, or `None` when no run has that id.
    pub async fn run(&self, id: i64) -> Result<Option<RunRow>, CatalogError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RUN_COLUMNS} FROM runs r WHERE r.id = ?"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(CatalogError::query(format!("read run {id}")))?;
        row.as_ref().map(run_from_row).transpose()
    }
}

/// Checks that run `run_id` is running and backs up the backup's instance and database.
async fn check_run_owns_backup(
    connection: &mut SqliteConnection,
    run_id: i64,
    backup: &BackupRecord,
) -> Result<(), CatalogError> {
    let row: Option<(String, String, String)> =
        sqlx::query_as("SELECT instance, database, status FROM runs WHERE id = ?")
            .bind(run_id)
            .fetch_optional(&mut *connection)
            .await
            .map_err(CatalogError::query(format!("read run {run_id}")))?;
    let Some((run_instance, run_database, status)) = row else {
        return Err(CatalogError::RunNotFound { run_id });
    };

    if status != RunStatus::Running.as_str() {
        return Err(CatalogError::RunFinished { run_id, status });
    }
    if run_instance != backup.instance || run_database != backup.database {
        return Err(CatalogError::RunMismatch {
            run_id,
            instance: backup.instance.clone(),
            database: backup.database.clone(),
            run_instance,
            run_database,
        });
    }
    Ok(())
}

/// Explains why an update that requires a running run changed no row.
async fn explain_unchanged_run<'e>(
    executor: impl sqlx::SqliteExecutor<'e>,
    run_id: i64,
) -> CatalogError {
    let status: Result<Option<(String,)>, _> =
        sqlx::query_as("SELECT status FROM runs WHERE id = ?")
            .bind(run_id)
            .fetch_optional(executor)
            .await;
    match status {
        Ok(Some((status,))) => CatalogError::RunFinished { run_id, status },
        Ok(None) => CatalogError::RunNotFound { run_id },
        Err(source) => CatalogError::Query {
            action: format!("read the status of run {run_id}"),
            source,
        },
    }
}

/// Reads the `skip_kind` column of a runs row.
pub(super) fn read_skip_kind(row: &RowReader<'_>) -> Result<Option<SkipKind>, CatalogError> {
    let kind: Option<String> = row.get("skip_kind")?;
    kind.map(|kind| {
        kind.parse()
            .map_err(|()| row.invalid("skip_kind", kind.clone(), "not a skip kind"))
    })
    .transpose()
}

pub(super) fn run_from_row(row: &SqliteRow) -> Result<RunRow, CatalogError> {
    let row = RowReader::new(row, "runs", "id")?;
    let status: String = row.get("status")?;
    let status = status
        .parse()
        .map_err(|()| row.invalid("status", status.clone(), "not a run status"))?;
    let skip_kind = read_skip_kind(&row)?;
    let pid: i64 = row.get("pid")?;
    let pid =
        u32::try_from(pid).map_err(|_| row.invalid("pid", pid.to_string(), "not a process id"))?;

    Ok(RunRow {
        id: row.id(),
        instance: row.get("instance")?,
        database: row.get("database")?,
        backup_type: row.backup_type("backup_type")?,
        requested_type: row.backup_type("requested_type")?,
        reason: row.get("reason")?,
        slot: row.optional_utc("slot")?,
        skip_kind,
        trigger: row.get("trigger")?,
        status,
        phase: row.get("phase")?,
        error: row.get("error")?,
        note: row.get("note")?,
        started_at: row.utc("started_at")?,
        finished_at: row.optional_utc("finished_at")?,
        duration_ms: row.optional_unsigned("duration_ms")?,
        bytes: row.optional_unsigned("bytes")?,
        throughput_bps: row.get("throughput_bps")?,
        host: row.get("host")?,
        pid,
        backup_id: row.get("backup_id")?,
    })
}

/// Adds a succeeded run's bytes to the phase totals: what BACKUP wrote to the share
/// (compressed when compression was on) and `fetched`, the bytes fetched into the store.
async fn add_run_bytes(
    connection: &mut sqlx::SqliteConnection,
    backup: &BackupRecord,
    fetched: i64,
) -> Result<(), CatalogError> {
    let backup_type = backup.backup_type.as_str();
    if let Some(written) = backup.compressed_size.or(backup.backup_size) {
        let written = to_sql_integer("backup bytes", written)?;
        phase_totals::add_phase_bytes(connection, "backup", backup_type, written).await?;
    }
    phase_totals::add_phase_bytes(connection, "fetch", backup_type, fetched).await
}
