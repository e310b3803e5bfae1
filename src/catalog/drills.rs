//! Restore drills: a chain restored on a sandbox instance, checked and dropped, with the
//! outcome on every backup it restored.

use serde::Serialize;
use sqlx::sqlite::SqliteRow;
use time::OffsetDateTime;

use super::decode::RowReader;
use super::lease::process_alive;
use super::timestamp::format_utc;
use super::{to_sql_integer, Catalog, CatalogError};

/// A drill about to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDrill {
    pub instance: String,
    pub database: String,
    pub sandbox: String,
    pub restored_as: String,
    /// `schedule` or `manual`.
    pub trigger: String,
    /// Backup ids in restore order: the full, the differential, then the logs.
    pub backup_ids: Vec<i64>,
    /// The restore target, or `None` for the latest point the chain reaches.
    pub stop_at: Option<OffsetDateTime>,
    pub started_at: OffsetDateTime,
    pub host: String,
    pub pid: u32,
}

/// The end of a drill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrillEnd {
    pub passed: bool,
    /// The last phase reached; the failed one when the drill failed.
    pub phase: String,
    pub error: Option<String>,
    /// Why the restored copy could not be dropped, if it could not: it then stays on the
    /// sandbox until a DBA drops it.
    pub drop_error: Option<String>,
    pub finished_at: OffsetDateTime,
    pub duration_ms: u64,
}

/// A drill as pages and commands show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DrillRow {
    pub id: i64,
    pub instance: String,
    pub database: String,
    pub sandbox: String,
    pub restored_as: String,
    pub trigger: String,
    pub status: String,
    pub phase: String,
    pub error: Option<String>,
    pub drop_error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    pub duration_ms: Option<u64>,
}

const DRILL_COLUMNS: &str = "drills.id, drills.instance, drills.database, drills.sandbox,
    drills.restored_as, drills.trigger, drills.status, drills.phase, drills.error,
    drills.drop_error, drills.started_at, drills.finished_at, drills.duration_ms";

impl Catalog {
    /// Records a drill as running, with the backups it restores, and returns its id.
    pub async fn start_drill(&self, drill: &NewDrill) -> Result<i64, CatalogError> {
        let _turn = self.write_turn().await;
        let action = || {
            format!(
                "record a restore drill of database {:?} on instance {}",
                drill.database, drill.instance
            )
        };
        let mut transaction = self
            .pool
            .begin()
            .await
            .map_err(CatalogError::query(action()))?;
        let result = sqlx::query(
            "INSERT INTO drills (instance, database, sandbox, restored_as, trigger, status,
                 phase, stop_at, started_at, host, pid)
             VALUES (?, ?, ?, ?, ?, 'running', 'plan', ?, ?, ?, ?)",
        )
        .bind(&drill.instance)
        .bind(&drill.database)
        .bind(&drill.sandbox)
        .bind(&drill.restored_as)
        .bind(&drill.trigger)
        .bind(drill.stop_at.map(format_utc))
        .bind(format_utc(drill.started_at))
        .bind(&drill.host)
        .bind(i64::from(drill.pid))
        .execute(&mut *transaction)
        .await
        .map_err(CatalogError::query(action()))?;
        let drill_id = result.last_insert_rowid();
        for (position, backup_id) in drill.backup_ids.iter().enumerate() {
            sqlx::query(
                "INSERT INTO drill_backups (drill_id, backup_id, position) VALUES (?, ?, ?)",
            )
            .bind(drill_id)
            .bind(backup_id)
            .bind(position as i64)
            .execute(&mut *transaction)
            .await
            .map_err(CatalogError::query(action()))?;
        }
        transaction
            .commit()
            .await
            .map_err(CatalogError::query(action()))?;
        Ok(drill_id)
    }

    /// Records the name the restored copy has on the sandbox, which contains the drill id.
    pub async fn set_drill_restored_as(
        &self,
        drill_id: i64,
        restored_as: &str,
    ) -> Result<(), CatalogError> {
        let _turn = self.write_turn().await;
        sqlx::query("UPDATE drills SET restored_as = ? WHERE id = ?")
            .bind(restored_as)
            .bind(drill_id)
            .execute(&self.pool)
            .await
            .map_err(CatalogError::query(format!(
                "record the copy name of drill {drill_id}"
            )))?;
        Ok(())
    }

    /// Records the phase a running drill reached, so an interrupted drill shows where.
    pub async fn set_drill_phase(&self, drill_id: i64, phase: &str) -> Result<(), CatalogError> {
        let _turn = self.write_turn().await;
        sqlx::query("UPDATE drills SET phase = ? WHERE id = ? AND status = 'running'")
            .bind(phase)
            .bind(drill_id)
            .execute(&self.pool)
            .await
            .map_err(CatalogError::query(format!(
                "record phase {phase} of drill {drill_id}"
            )))?;
        Ok(())
    }

    /// Records the outcome of a drill.
    pub async fn finish_drill(&self, drill_id: i64, end: &DrillEnd) -> Result<(), CatalogError> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "UPDATE drills SET status = ?, phase = ?, error = ?, drop_error = ?,
                 finished_at = ?, duration_ms = ?
             WHERE id = ?",
        )
        .bind(if end.passed { "passed" } else { "failed" })
        .bind(&end.phase)
        .bind(&end.error)
        .bind(&end.drop_error)
        .bind(format_utc(end.finished_at))
        .bind(to_sql_integer("duration_ms", end.duration_ms)?)
        .bind(drill_id)
        .execute(&self.pool)
        .await
        .map_err(CatalogError::query(format!(
            "record the outcome of drill {drill_id}"
        )))?;
        Ok(())
    }

    /// Marks interrupted the drills left running on `host` by a process that is no longer
    /// alive, and returns how many it marked. Drills of other hosts are left alone,
    /// because only their own host can tell whether the process still runs.
    pub async fn interrupt_orphaned_drills(
        &self,
        host: &str,
        now: OffsetDateTime,
    ) -> Result<u64, CatalogError> {
        let _turn = self.write_turn().await;
        let running: Vec<(i64, i64)> =
            sqlx::query_as("SELECT id, pid FROM drills WHERE status = 'running' AND host = ?")
                .bind(host)
                .fetch_all(&self.pool)
                .await
                .map_err(CatalogError::query("list running drills"))?;
        let mut marked = 0;
        for (drill_id, pid) in running {
            if u32::try_from(pid).is_ok_and(process_alive) {
                continue;
            }
            sqlx::query(
                "UPDATE drills SET status = 'interrupted', finished_at = ?,
                     error = 'the bakfleet process ended before the drill finished; the \
                              restored copy may remain on the sandbox'
                 WHERE id = ? AND status = 'running'",
            )
            .bind(format_utc(now))
            .bind(drill_id)
            .execute(&self.pool)
            .await
            .map_err(CatalogError::query(format!(
                "mark drill {drill_id} interrupted"
            )))?;
            marked += 1;
        }
        Ok(marked)
    }

    /// Lists the newest drills of one database, newest first.
    pub async fn drills_of_database(
        &self,
        instance: &str,
        database: &str,
        limit: i64,
    ) -> Result<Vec<DrillRow>, CatalogError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DRILL_COLUMNS} FROM drills
             WHERE instance = ? AND database = ?
             ORDER BY started_at DESC, id DESC LIMIT ?"
        )))
        .bind(instance)
        .bind(database)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(CatalogError::query(format!(
            "list drills of database {database:?} on instance {instance}"
        )))?;
        rows.iter().map(drill_from_row).collect()
    }

    /// Lists the drills that restored a backup, newest first.
    pub async fn drills_of_backup(&self, backup_id: i64) -> Result<Vec<DrillRow>, CatalogError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DRILL_COLUMNS} FROM drills
             JOIN drill_backups ON drill_backups.drill_id = drills.id
             WHERE drill_backups.backup_id = ?
             ORDER BY drills.started_at DESC, drills.id DESC"
        )))
        .bind(backup_id)
        .fetch_all(&self.pool)
        .await
        .map_err(CatalogError::query(format!(
            "list drills of backup {backup_id}"
        )))?;
        rows.iter().map(drill_from_row).collect()
    }
}

fn drill_from_row(row: &SqliteRow) -> Result<DrillRow, CatalogError> {
    let row = RowReader::new(row, "drills", "id")?;
    Ok(DrillRow {
        id: row.id(),
        instance: row.get("instance")?,
        database: row.get("database")?,
        sandbox: row.get("sandbox")?,
        restored_as: row.get("restored_as")?,
        trigger: row.get("trigger")?,
        status: row.get("status")?,
        phase: row.get("phase")?,
        error: row.get("error")?,
        drop_error: row.get("drop_error")?,
        started_at: row.utc("started_at")?,
        finished_at: row.optional_utc("finished_at")?,
        duration_ms: row.optional_unsigned("duration_ms")?,
    })
}
