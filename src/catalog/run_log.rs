//! Each run's own log lines, written by the run log writer and read by the site.

use serde::Serialize;
use time::OffsetDateTime;

use super::decode::RowReader;
use super::timestamp::format_utc;
use super::{Catalog, CatalogError};

/// One logged event of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunLogLine {
    pub run_id: i64,
    /// The line's place in its run's log, from 0.
    pub seq: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// `ERROR`, `WARN`, `INFO` or `DEBUG`.
    pub level: String,
    /// The module that logged the line, such as `bakfleet::job::fetch`.
    pub target: String,
    /// The message followed by the event's fields as `key=value`.
    pub message: String,
}

impl Catalog {
    /// Stores `lines` in one transaction. A line whose run and seq are stored already is
    /// left as it is, so writing a batch twice does no harm.
    pub async fn append_run_log(&self, lines: &[RunLogLine]) -> Result<(), CatalogError> {
        if lines.is_empty() {
            return Ok(());
        }
        let action = || format!("store {} run log lines", lines.len());
        let mut transaction = self
            .pool
            .begin()
            .await
            .map_err(CatalogError::query(action()))?;
        for line in lines {
            sqlx::query(
                "INSERT OR IGNORE INTO run_log (run_id, seq, at, level, target, message)
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(line.run_id)
            .bind(line.seq)
            .bind(format_utc(line.at))
            .bind(&line.level)
            .bind(&line.target)
            .bind(&line.message)
            .execute(&mut *transaction)
            .await
            .map_err(|source| CatalogError::Query {
                action: format!("store log line {} of run {}", line.seq, line.run_id),
                source,
            })?;
        }
        transaction
            .commit()
            .await
            .map_err(CatalogError::query(action()))
    }

    /// Reads the log of run `run_id` in the order it was logged, at most `limit` lines.
    pub async fn run_log(&self, run_id: i64, limit: i64) -> Result<Vec<RunLogLine>, CatalogError> {
        let rows = sqlx::query(
            "SELECT run_id, seq, at, level, target, message FROM run_log
             WHERE run_id = ? ORDER BY seq LIMIT ?",
        )
        .bind(run_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(CatalogError::query(format!("read the log of run {run_id}")))?;
        rows.iter()
            .map(|row| {
                let reader = RowReader::new(row, "run_log", "seq")?;
                Ok(RunLogLine {
                    run_id: reader.get("run_id")?,
                    seq: reader.id(),
                    at: reader.utc("at")?,
                    level: reader.get("level")?,
                    target: reader.get("target")?,
                    message: reader.get("message")?,
                })
            })
            .collect()
    }
}
