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

/// Run log lines per INSERT statement: 600 bound values, well under the limit of 32,766
/// that SQLite has had since 3.32. One statement per line cost a round trip to the
/// connection's thread each, about 28 per backup run, while the write turn was held.
const LINES_PER_INSERT: usize = 100;

impl Catalog {
    /// Stores `lines` in one transaction, [`LINES_PER_INSERT`] to a statement. A line
    /// whose run and seq are stored already is left as it is, so writing a batch twice
    /// does no harm.
    pub async fn append_run_log(&self, lines: &[RunLogLine]) -> Result<(), CatalogError> {
        if lines.is_empty() {
            return Ok(());
        }
        let _turn = self.write_turn().await;
        let action = || format!("store {} run log lines", lines.len());
        let mut transaction = self
            .relaxed()
            .begin()
            .await
            .map_err(CatalogError::query(action()))?;
        for chunk in lines.chunks(LINES_PER_INSERT) {
            let mut insert = sqlx::QueryBuilder::new(
                "INSERT OR IGNORE INTO run_log (run_id, seq, at, level, target, message) ",
            );
            insert.push_values(chunk, |mut row, line| {
                row.push_bind(line.run_id)
                    .push_bind(line.seq)
                    .push_bind(format_utc(line.at))
                    .push_bind(&line.level)
                    .push_bind(&line.target)
                    .push_bind(&line.message);
            });
            insert
                .build()
                .execute(&mut *transaction)
                .await
                .map_err(CatalogError::query(action()))?;
        }
        transaction
            .commit()
            .await
            .map_err(CatalogError::query(action()))
    }

    /// Deletes the logs of runs that started before `before` and succeeded or were
    /// skipped, and of every run that started before `failed_before`. Returns the number
    /// of lines deleted.
    ///
    /// Run ids grow with start time, so each cut-off is the id of the first run that
    /// started after it, found through the start-time index. The delete then reads only
    /// the log lines below that id.
    pub async fn prune_run_logs(
        &self,
        before: OffsetDateTime,
        failed_before: OffsetDateTime,
    ) -> Result<u64, CatalogError> {
        let _turn = self.write_turn().await;
        let first_run_since = |at: OffsetDateTime| {
            sqlx::query_scalar::<_, i64>(
                "SELECT COALESCE(
                     (SELECT id FROM runs WHERE started_at >= ? ORDER BY started_at LIMIT 1),
                     (SELECT COALESCE(MAX(id), 0) + 1 FROM runs))",
            )
            .bind(format_utc(at))
            .fetch_one(&self.pool)
        };
        let cut = first_run_since(before).await.map_err(CatalogError::query(
            "find the first run of the run log window",
        ))?;
        let failed_cut = first_run_since(failed_before)
            .await
            .map_err(CatalogError::query(
                "find the first run of the failed run log window",
            ))?;
        let done = sqlx::query(
            "DELETE FROM run_log
             WHERE run_id < ?2
                OR (run_id < ?1
                    AND (SELECT status FROM runs WHERE id = run_log.run_id)
                        IN ('succeeded', 'skipped'))",
        )
        .bind(cut)
        .bind(failed_cut)
        .execute(&self.pool)
        .await
        .map_err(CatalogError::query("delete old run logs"))?;
        Ok(done.rows_affected())
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

#[cfg(test)]
mod tests {
    use time::Duration;

    use super::*;
    use crate::backup::BackupType;
    use crate::catalog::NewRun;

    /// Adds a run that started `age` ago, ended with `status`, and logged one line.
    async fn run_with_line(catalog: &Catalog, age: Duration, status: &str) -> i64 {
        let started_at = OffsetDateTime::now_utc() - age;
        let run_id = catalog
            .start_run(&NewRun {
                instance: "sql01".into(),
                database: "Sales".into(),
                backup_type: BackupType::Log,
                trigger: "schedule".into(),
                started_at,
                host: "central".into(),
                pid: 1,
                slot: None,
            })
            .await
            .unwrap();
        sqlx::query("UPDATE runs SET status = ?, finished_at = started_at WHERE id = ?")
            .bind(status)
            .bind(run_id)
            .execute(&catalog.pool)
            .await
            .unwrap();
        let line = RunLogLine {
            run_id,
            seq: 0,
            at: started_at,
            level: "INFO".into(),
            target: "bakfleet::job".into(),
            message: "backup written".into(),
        };
        catalog.append_run_log(&[line]).await.unwrap();
        run_id
    }

    async fn has_log(catalog: &Catalog, run_id: i64) -> bool {
        !catalog.run_log(run_id, 10).await.unwrap().is_empty()
    }

    #[tokio::test]
    async fn prune_keeps_failed_logs_longer() {
        let catalog = Catalog::open_in_memory().await.unwrap();
        let old_success = run_with_line(&catalog, Duration::days(10), "succeeded").await;
        let old_failure = run_with_line(&catalog, Duration::days(10), "failed").await;
        let recent = run_with_line(&catalog, Duration::days(1), "succeeded").await;
        let now = OffsetDateTime::now_utc();

        let deleted = catalog
            .prune_run_logs(now - Duration::days(7), now - Duration::days(90))
            .await
            .unwrap();
        assert_eq!(deleted, 1);
        assert!(!has_log(&catalog, old_success).await);
        assert!(has_log(&catalog, old_failure).await);
        assert!(has_log(&catalog, recent).await);

        let deleted = catalog
            .prune_run_logs(now - Duration::days(7), now - Duration::days(5))
            .await
            .unwrap();
        assert_eq!(deleted, 1);
        assert!(!has_log(&catalog, old_failure).await);
        assert!(has_log(&catalog, recent).await);
    }
}
