//! Pruning: backups that retention deletes, the backups still restorable, and staged
//! files that failed runs left on shares.

use serde::Serialize;
use time::OffsetDateTime;

use super::backups::{backup_from_row, BACKUP_COLUMNS};
use super::decode::RowReader;
use super::timestamp::format_utc;
use super::{BackupRow, Catalog, CatalogError};

/// A database with at least one catalogued backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CataloguedDatabase {
    pub instance: String,
    pub database: String,
}

/// A run that ended after its BACKUP statement wrote a staged file, and whose staged file
/// may still be on the share: a failed run past the backup phase, or a run whose cleanup
/// failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StagedLeftover {
    pub run_id: i64,
    pub instance: String,
    pub database: String,
    pub status: String,
    pub phase: String,
    /// The run's error or note, which names the staged path when the job knew it.
    pub detail: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
}

/// Phases a job reaches only after BACKUP wrote the staged file.
const PHASES_AFTER_BACKUP: &str = "'verify', 'history', 'fetch', 'store', 'header', 'catalog'";

impl Catalog {
    /// Lists every backup of one database that is neither pruned nor marked as failed
    /// verification, oldest first: the input of drills and retention.
    ///
    /// Retention counts only these, so a damaged newest full does not take the place of
    /// the older good full that restores. Prune deletes a marked backup once it is older
    /// than every backup retention keeps (see [`crate::retention::evaluate_failed`]).
    pub async fn restorable_backups(
        &self,
        instance: &str,
        database: &str,
    ) -> Result<Vec<BackupRow>, CatalogError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {BACKUP_COLUMNS} FROM backups
             WHERE instance = ? AND database = ?
               AND id NOT IN (SELECT backup_id FROM pruned_backups)
               AND id NOT IN (SELECT backup_id FROM backup_verification_failures)
             ORDER BY finished_at, id"
        )))
        .bind(instance)
        .bind(database)
        .fetch_all(&self.pool)
        .await
        .map_err(CatalogError::query(format!(
            "list restorable backups of database {database:?} on instance {instance}"
        )))?;
        rows.iter().map(backup_from_row).collect()
    }

    /// Lists the databases with backups, by instance and name.
    pub async fn catalogued_databases(&self) -> Result<Vec<CataloguedDatabase>, CatalogError> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT DISTINCT instance, database FROM backups ORDER BY instance, database",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(CatalogError::query("list catalogued databases"))?;
        Ok(rows
            .into_iter()
            .map(|(instance, database)| CataloguedDatabase { instance, database })
            .collect())
    }

    /// Records that retention deletes backup `backup_id`. From this commit on the backup
    /// no longer counts as restorable, so its file may be deleted next.
    pub async fn mark_pruned(
        &self,
        backup_id: i64,
        reason: &str,
        at: OffsetDateTime,
    ) -> Result<(), CatalogError> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "INSERT INTO pruned_backups (backup_id, reason, pruned_at) VALUES (?, ?, ?)
             ON CONFLICT (backup_id) DO NOTHING",
        )
        .bind(backup_id)
        .bind(reason)
        .bind(format_utc(at))
        .execute(&self.pool)
        .await
        .map_err(CatalogError::query(format!(
            "mark backup {backup_id} pruned"
        )))?;
        Ok(())
    }

    /// Records that the store file of pruned backup `backup_id` is gone.
    pub async fn finish_prune(
        &self,
        backup_id: i64,
        at: OffsetDateTime,
    ) -> Result<(), CatalogError> {
        let _turn = self.write_turn().await;
        sqlx::query("UPDATE pruned_backups SET file_deleted_at = ? WHERE backup_id = ?")
            .bind(format_utc(at))
            .bind(backup_id)
            .execute(&self.pool)
            .await
            .map_err(CatalogError::query(format!(
                "record the deleted file of pruned backup {backup_id}"
            )))?;
        Ok(())
    }

    /// Lists pruned backups whose file deletion was not recorded: prunes that stopped
    /// between the catalogue mark and the file deletion.
    pub async fn unfinished_prunes(&self) -> Result<Vec<BackupRow>, CatalogError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {BACKUP_COLUMNS} FROM backups
             WHERE id IN (SELECT backup_id FROM pruned_backups WHERE file_deleted_at IS NULL)
             ORDER BY id"
        )))
        .fetch_all(&self.pool)
        .await
        .map_err(CatalogError::query("list unfinished prunes"))?;
        rows.iter().map(backup_from_row).collect()
    }

    /// Returns the ids of the pruned backups of one database.
    pub async fn pruned_backup_ids(
        &self,
        instance: &str,
        database: &str,
    ) -> Result<Vec<i64>, CatalogError> {
        let ids: Vec<(i64,)> = sqlx::query_as(
            "SELECT p.backup_id FROM pruned_backups AS p JOIN backups AS b ON b.id = p.backup_id
             WHERE b.instance = ? AND b.database = ? ORDER BY p.backup_id",
        )
        .bind(instance)
        .bind(database)
        .fetch_all(&self.pool)
        .await
        .map_err(CatalogError::query(format!(
            "list pruned backups of database {database:?} on instance {instance}"
        )))?;
        Ok(ids.into_iter().map(|(id,)| id).collect())
    }

    /// Lists runs that may have left a staged file on a share, newest first.
    // TODO: runs do not record the staged path, so the caller sees it only where the
    // run's error or note names it.
    pub async fn staged_leftovers(&self) -> Result<Vec<StagedLeftover>, CatalogError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT id, instance, database, status, phase, COALESCE(error, note) AS detail,
                    started_at
             FROM runs
             WHERE (status = 'failed' AND phase IN ({PHASES_AFTER_BACKUP}))
                OR note LIKE 'staged file not deleted%'
             ORDER BY started_at DESC, id DESC"
        )))
        .fetch_all(&self.pool)
        .await
        .map_err(CatalogError::query("list runs that left staged files"))?;

        let mut leftovers = Vec::with_capacity(rows.len());
        for row in &rows {
            let row = RowReader::new(row, "runs", "id")?;
            leftovers.push(StagedLeftover {
                run_id: row.id(),
                instance: row.get("instance")?,
                database: row.get("database")?,
                status: row.get("status")?,
                phase: row.get("phase")?,
                detail: row.get("detail")?,
                started_at: row.utc("started_at")?,
            });
        }
        Ok(leftovers)
    }
}
