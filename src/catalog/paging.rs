//! Listings read page by page with an id cursor, for the JSON API: each page holds the
//! rows with an id below the `before` of the request, newest first.

use super::backups::{backup_from_row, BACKUP_COLUMNS};
use super::runs::{run_from_row, RUN_COLUMNS};
use super::{BackupRow, Catalog, CatalogError, RunRow, RunStatus};

impl Catalog {
    /// Lists at most `limit` backups of one database that retention has not deleted,
    /// with an id below `before` when given, by id from the highest. Ids follow the order
    /// in which backups were catalogued, which an import may make differ from finish order.
    pub async fn backups_page(
        &self,
        instance: &str,
        database: &str,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<BackupRow>, CatalogError> {
        // Only the constant column list is spliced in; values are bound.
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {BACKUP_COLUMNS} FROM backups
             WHERE instance = ? AND database = ? AND (?3 IS NULL OR id < ?3)
               AND id NOT IN (SELECT backup_id FROM pruned_backups)
             ORDER BY id DESC LIMIT ?4"
        )))
        .bind(instance)
        .bind(database)
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(CatalogError::query(format!(
            "list a page of backups of database {database:?} on instance {instance}"
        )))?;
        rows.iter().map(backup_from_row).collect()
    }

    /// Lists at most `limit` runs of every database, with an id below `before` and the
    /// given status when given, by id from the highest.
    pub async fn runs_page(
        &self,
        status: Option<RunStatus>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<RunRow>, CatalogError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RUN_COLUMNS} FROM runs r
             WHERE (?1 IS NULL OR r.status = ?1) AND (?2 IS NULL OR r.id < ?2)
             ORDER BY r.id DESC LIMIT ?3"
        )))
        .bind(status.map(RunStatus::as_str))
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(CatalogError::query("list a page of runs"))?;
        rows.iter().map(run_from_row).collect()
    }

    /// Counts runs by status, for the metrics endpoint.
    pub async fn run_counts_by_status(&self) -> Result<Vec<(String, i64)>, CatalogError> {
        sqlx::query_as("SELECT status, COUNT(*) FROM runs GROUP BY status ORDER BY status")
            .fetch_all(&self.pool)
            .await
            .map_err(CatalogError::query("count runs by status"))
    }
}
