//! Store usage from the catalogue: bytes kept per database, their growth, and the sizes
//! and run times that the site's charts plot.

use serde::Serialize;
use time::OffsetDateTime;

use super::decode::RowReader;
use super::timestamp::format_utc;
use super::{Catalog, CatalogError};
use crate::backup::BackupType;

/// Bytes of one database in the store now and at an earlier time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DatabaseStorage {
    pub instance: String,
    pub database: String,
    /// Sum of `size_bytes` of the backups that retention has not pruned.
    pub stored_bytes: u64,
    /// Number of those backups.
    pub backup_count: u64,
    /// Bytes stored at the earlier time: backups finished by then and not pruned by then.
    pub stored_bytes_then: u64,
}

impl DatabaseStorage {
    /// Returns the bytes added since the earlier time, negative when retention pruned more.
    pub fn growth_bytes(&self) -> i64 {
        let growth = i128::from(self.stored_bytes) - i128::from(self.stored_bytes_then);
        i64::try_from(growth).unwrap_or(if growth < 0 { i64::MIN } else { i64::MAX })
    }
}

/// One catalogued backup as the size chart plots it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackupPoint {
    pub backup_type: BackupType,
    #[serde(with = "time::serde::rfc3339")]
    pub finished_at: OffsetDateTime,
    pub size_bytes: u64,
}

/// One succeeded run as the duration and throughput charts plot it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunPoint {
    pub backup_type: BackupType,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    pub duration_ms: Option<u64>,
    /// Fetch throughput in bytes per second, as the run recorded it.
    pub throughput_bps: Option<f64>,
}

impl Catalog {
    /// Sums the stored bytes of each database now and at `then`, ordered by instance and
    /// database. A backup counts at `then` when it finished by then and was not pruned
    /// before then.
    // NOTE: this reads every backup row once; it is the storage page's only query.
    pub async fn storage_by_database(
        &self,
        then: OffsetDateTime,
    ) -> Result<Vec<DatabaseStorage>, CatalogError> {
        let then = format_utc(then);
        let rows = sqlx::query(
            "SELECT MIN(b.id) AS id, b.instance, b.database,
                    SUM(CASE WHEN p.backup_id IS NULL THEN b.size_bytes ELSE 0 END)
                        AS stored_bytes,
                    SUM(CASE WHEN p.backup_id IS NULL THEN 1 ELSE 0 END) AS backup_count,
                    SUM(CASE WHEN b.finished_at <= ?1
                                  AND (p.backup_id IS NULL OR p.pruned_at > ?1)
                             THEN b.size_bytes ELSE 0 END) AS stored_bytes_then
             FROM backups b LEFT JOIN pruned_backups p ON p.backup_id = b.id
             GROUP BY b.instance, b.database
             ORDER BY b.instance, b.database",
        )
        .bind(then)
        .fetch_all(&self.pool)
        .await
        .map_err(CatalogError::query("sum the stored bytes of each database"))?;

        rows.iter()
            .map(|row| {
                let row = RowReader::new(row, "backups", "id")?;
                Ok(DatabaseStorage {
                    instance: row.get("instance")?,
                    database: row.get("database")?,
                    stored_bytes: row.unsigned("stored_bytes")?,
                    backup_count: row.unsigned("backup_count")?,
                    stored_bytes_then: row.unsigned("stored_bytes_then")?,
                })
            })
            .collect()
    }

    /// Lists the backups of one database that finished at or after `since`, oldest first,
    /// pruned ones included, because the chart shows sizes over time.
    pub async fn backup_points(
        &self,
        instance: &str,
        database: &str,
        since: OffsetDateTime,
    ) -> Result<Vec<BackupPoint>, CatalogError> {
        let rows = sqlx::query(
            "SELECT id, backup_type, finished_at, size_bytes FROM backups
             WHERE instance = ? AND database = ? AND finished_at >= ?
             ORDER BY finished_at, id",
        )
        .bind(instance)
        .bind(database)
        .bind(format_utc(since))
        .fetch_all(&self.pool)
        .await
        .map_err(CatalogError::query(format!(
            "list the backup sizes of database {database:?} on instance {instance}"
        )))?;

        rows.iter()
            .map(|row| {
                let row = RowReader::new(row, "backups", "id")?;
                Ok(BackupPoint {
                    backup_type: row.backup_type("backup_type")?,
                    finished_at: row.utc("finished_at")?,
                    size_bytes: row.unsigned("size_bytes")?,
                })
            })
            .collect()
    }

    /// Lists the succeeded runs of one database that started at or after `since`, oldest
    /// first.
    pub async fn run_points(
        &self,
        instance: &str,
        database: &str,
        since: OffsetDateTime,
    ) -> Result<Vec<RunPoint>, CatalogError> {
        let rows = sqlx::query(
            "SELECT id, backup_type, started_at, duration_ms, throughput_bps FROM runs
             WHERE instance = ? AND database = ? AND started_at >= ? AND status = 'succeeded'
             ORDER BY started_at, id",
        )
        .bind(instance)
        .bind(database)
        .bind(format_utc(since))
        .fetch_all(&self.pool)
        .await
        .map_err(CatalogError::query(format!(
            "list the run times of database {database:?} on instance {instance}"
        )))?;

        rows.iter()
            .map(|row| {
                let row = RowReader::new(row, "runs", "id")?;
                let duration_ms: Option<i64> = row.get("duration_ms")?;
                Ok(RunPoint {
                    backup_type: row.backup_type("backup_type")?,
                    started_at: row.utc("started_at")?,
                    duration_ms: duration_ms.and_then(|ms| u64::try_from(ms).ok()),
                    throughput_bps: row.get("throughput_bps")?,
                })
            })
            .collect()
    }
}
