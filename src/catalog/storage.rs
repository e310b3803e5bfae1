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

    /// Lists the chart sums of the backups of one database, pruned ones included, per
    /// type and per [`CHART_INTERVAL`], oldest first: how many and the largest size.
    /// Only intervals whose newest backup finished at or after `since` are listed.
    ///
    /// The sums are kept in `backup_chart_sums` as backups are catalogued, because
    /// summing a database's backups of 90 days (8,640 with 15-minute logs) on each page
    /// view took 3-7 ms of a database page's 5-11 ms on a catalogue of 1,000,000
    /// backups.
    pub async fn backup_buckets(
        &self,
        instance: &str,
        database: &str,
        since: OffsetDateTime,
    ) -> Result<Vec<BackupBucket>, CatalogError> {
        let rows = sqlx::query(
            "SELECT first_id AS id, backup_type, interval_start, newest_at,
                    backup_count, largest_bytes
             FROM backup_chart_sums
             WHERE instance = ?1 AND database = ?2 AND interval_start >= ?3
               AND newest_at >= ?4
             ORDER BY interval_start, backup_type",
        )
        .bind(instance)
        .bind(database)
        .bind(interval_start(since))
        .bind(format_utc(since))
        .fetch_all(&self.pool)
        .await
        .map_err(CatalogError::query(format!(
            "read the backup chart sums of database {database:?} on instance {instance}"
        )))?;

        rows.iter()
            .map(|row| {
                let row = RowReader::new(row, "backup_chart_sums", "id")?;
                Ok(BackupBucket {
                    backup_type: row.backup_type("backup_type")?,
                    from: interval_time(row.get("interval_start")?),
                    newest: row.utc("newest_at")?,
                    count: row.unsigned("backup_count")?,
                    largest_bytes: row.unsigned("largest_bytes")?,
                })
            })
            .collect()
    }

    /// Lists the chart sums of the succeeded runs of one database per type and per
    /// [`CHART_INTERVAL`], oldest first: how many, the longest duration and the mean
    /// fetch throughput. Only intervals whose newest run started at or after `since` are
    /// listed. `run_chart_sums` keeps them as runs succeed.
    pub async fn run_buckets(
        &self,
        instance: &str,
        database: &str,
        since: OffsetDateTime,
    ) -> Result<Vec<RunBucket>, CatalogError> {
        let rows = sqlx::query(
            "SELECT first_id AS id, backup_type, interval_start, newest_at, run_count,
                    longest_ms, throughput_sum, throughput_count
             FROM run_chart_sums
             WHERE instance = ?1 AND database = ?2 AND interval_start >= ?3
               AND newest_at >= ?4
             ORDER BY interval_start, backup_type",
        )
        .bind(instance)
        .bind(database)
        .bind(interval_start(since))
        .bind(format_utc(since))
        .fetch_all(&self.pool)
        .await
        .map_err(CatalogError::query(format!(
            "read the run chart sums of database {database:?} on instance {instance}"
        )))?;

        rows.iter()
            .map(|row| {
                let row = RowReader::new(row, "run_chart_sums", "id")?;
                let longest_ms: Option<i64> = row.get("longest_ms")?;
                let throughput_sum: Option<f64> = row.get("throughput_sum")?;
                let throughput_count: i64 = row.get("throughput_count")?;
                Ok(RunBucket {
                    backup_type: row.backup_type("backup_type")?,
                    from: interval_time(row.get("interval_start")?),
                    newest: row.utc("newest_at")?,
                    count: row.unsigned("run_count")?,
                    longest_ms: longest_ms.and_then(|ms| u64::try_from(ms).ok()),
                    mean_throughput_bps: throughput_sum
                        .filter(|_| throughput_count > 0)
                        .map(|sum| sum / throughput_count as f64),
                })
            })
            .collect()
    }
}

/// Length of the intervals that the chart sum tables cover, each from 00:00 or 12:00
/// UTC. Their triggers compute the same 43,200-second steps.
pub const CHART_INTERVAL: Duration = Duration::hours(12);

/// Returns the Unix second at which the chart interval holding `at` starts.
fn interval_start(at: OffsetDateTime) -> i64 {
    at.unix_timestamp()
        .div_euclid(CHART_INTERVAL.whole_seconds())
        * CHART_INTERVAL.whole_seconds()
}

/// Returns the time of a stored interval start, or the Unix epoch for a start that no
/// time can have.
fn interval_time(start: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(start).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}
