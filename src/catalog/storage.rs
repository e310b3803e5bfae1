//! Store usage from the catalogue: bytes kept per database, their growth, and the sizes
//! and run times that the site's charts plot.

use serde::Serialize;
use time::{Duration, OffsetDateTime};

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

/// The backups of one type that finished in one interval of a chart, as the size chart
/// plots them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackupBucket {
    pub backup_type: BackupType,
    /// Start of the interval.
    #[serde(with = "time::serde::rfc3339")]
    pub from: OffsetDateTime,
    /// Finish time of the interval's newest backup, where its chart point sits.
    #[serde(with = "time::serde::rfc3339")]
    pub newest: OffsetDateTime,
    pub count: u64,
    pub largest_bytes: u64,
}

/// The succeeded runs of one type that started in one interval of a chart, as the
/// duration and throughput charts plot them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunBucket {
    pub backup_type: BackupType,
    /// Start of the interval.
    #[serde(with = "time::serde::rfc3339")]
    pub from: OffsetDateTime,
    /// Start time of the interval's newest run, where its chart point sits.
    #[serde(with = "time::serde::rfc3339")]
    pub newest: OffsetDateTime,
    pub count: u64,
    pub longest_ms: Option<u64>,
    /// Mean fetch throughput in bytes per second of the runs that recorded one.
    pub mean_throughput_bps: Option<f64>,
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

    /// Sums up the backups of one database that finished at or after `since`, pruned
    /// ones included, per type and per interval of `bucket`, oldest first: how many and
    /// the largest size.
    ///
    /// SQLite groups the rows, so a database with 15-minute log backups hands over a few
    /// hundred sums for 90 days instead of 8,640 rows.
    pub async fn backup_buckets(
        &self,
        instance: &str,
        database: &str,
        since: OffsetDateTime,
        bucket: Duration,
    ) -> Result<Vec<BackupBucket>, CatalogError> {
        let rows = sqlx::query(
            "SELECT MIN(id) AS id, backup_type,
                    CAST((julianday(finished_at) - julianday(?3)) * 86400.0 / ?4 AS INTEGER)
                        AS bucket,
                    MAX(finished_at) AS newest, COUNT(*) AS count,
                    MAX(size_bytes) AS largest_bytes
             FROM backups
             WHERE instance = ?1 AND database = ?2 AND finished_at >= ?3
             GROUP BY bucket, backup_type
             ORDER BY bucket, backup_type",
        )
        .bind(instance)
        .bind(database)
        .bind(format_utc(since))
        .bind(bucket_seconds(bucket))
        .fetch_all(&self.pool)
        .await
        .map_err(CatalogError::query(format!(
            "sum up the backup sizes of database {database:?} on instance {instance}"
        )))?;

        rows.iter()
            .map(|row| {
                let row = RowReader::new(row, "backups", "id")?;
                Ok(BackupBucket {
                    backup_type: row.backup_type("backup_type")?,
                    from: bucket_start(since, bucket, row.get("bucket")?),
                    newest: row.utc("newest")?,
                    count: row.unsigned("count")?,
                    largest_bytes: row.unsigned("largest_bytes")?,
                })
            })
            .collect()
    }

    /// Sums up the succeeded runs of one database that started at or after `since`, per
    /// type and per interval of `bucket`, oldest first: how many, the longest duration
    /// and the mean fetch throughput.
    pub async fn run_buckets(
        &self,
        instance: &str,
        database: &str,
        since: OffsetDateTime,
        bucket: Duration,
    ) -> Result<Vec<RunBucket>, CatalogError> {
        let rows = sqlx::query(
            "SELECT MIN(id) AS id, backup_type,
                    CAST((julianday(started_at) - julianday(?3)) * 86400.0 / ?4 AS INTEGER)
                        AS bucket,
                    MAX(started_at) AS newest, COUNT(*) AS count,
                    MAX(duration_ms) AS longest_ms,
                    AVG(throughput_bps) AS mean_throughput_bps
             FROM runs
             WHERE instance = ?1 AND database = ?2 AND started_at >= ?3
               AND status = 'succeeded'
             GROUP BY bucket, backup_type
             ORDER BY bucket, backup_type",
        )
        .bind(instance)
        .bind(database)
        .bind(format_utc(since))
        .bind(bucket_seconds(bucket))
        .fetch_all(&self.pool)
        .await
        .map_err(CatalogError::query(format!(
            "sum up the run times of database {database:?} on instance {instance}"
        )))?;

        rows.iter()
            .map(|row| {
                let row = RowReader::new(row, "runs", "id")?;
                let longest_ms: Option<i64> = row.get("longest_ms")?;
                Ok(RunBucket {
                    backup_type: row.backup_type("backup_type")?,
                    from: bucket_start(since, bucket, row.get("bucket")?),
                    newest: row.utc("newest")?,
                    count: row.unsigned("count")?,
                    longest_ms: longest_ms.and_then(|ms| u64::try_from(ms).ok()),
                    mean_throughput_bps: row.get("mean_throughput_bps")?,
                })
            })
            .collect()
    }
}

/// Whole seconds of a chart interval, at least one.
fn bucket_seconds(bucket: Duration) -> i64 {
    bucket.whole_seconds().max(1)
}

/// Start of interval `index` of `bucket`-long intervals from `since`.
fn bucket_start(since: OffsetDateTime, bucket: Duration, index: i64) -> OffsetDateTime {
    let offset = i32::try_from(index).unwrap_or(i32::MAX);
    since + Duration::seconds(bucket_seconds(bucket)) * offset
}
