//! The stored backups of one database, in the shape the backup type decision reads.

use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

use super::decode::RowReader;
use super::{Catalog, CatalogError};
use crate::policy::{StoreHistory, StoredFull};

/// The newest full that can be a differential base. Copy-only fulls are left out because
/// SQL Server never makes them one ("Copy-Only Backups (SQL Server)"). Here and below,
/// backups that retention deleted are left out: the store no longer contains them.
const NEWEST_FULL: &str = "SELECT id, backup_set_guid, database_guid, last_lsn FROM backups
    WHERE instance = ? AND database = ? AND backup_type = 'full' AND is_copy_only = 0
      AND id NOT IN (SELECT backup_id FROM pruned_backups)
    ORDER BY finished_at DESC, id DESC LIMIT 1";

const NEWEST_LOG: &str = "SELECT id, last_lsn FROM backups
    WHERE instance = ? AND database = ? AND backup_type = 'log'
      AND id NOT IN (SELECT backup_id FROM pruned_backups)
    ORDER BY finished_at DESC, id DESC LIMIT 1";

const NEWEST_BACKUP: &str = "SELECT id, database_guid FROM backups
    WHERE instance = ? AND database = ?
      AND id NOT IN (SELECT backup_id FROM pruned_backups)
    ORDER BY finished_at DESC, id DESC LIMIT 1";

impl Catalog {
    /// Reads the newest full that is not copy-only, the newest log and the newest backup
    /// of any type of one database.
    pub async fn store_history(
        &self,
        instance: &str,
        database: &str,
    ) -> Result<StoreHistory, CatalogError> {
        let mut history = StoreHistory::default();
        if let Some(row) = self.newest(NEWEST_FULL, instance, database).await? {
            let row = RowReader::new(&row, "backups", "id")?;
            history.newest_full = Some(StoredFull {
                backup_set_guid: guid(&row, "backup_set_guid")?,
                database_guid: guid(&row, "database_guid")?,
                last_lsn: row.lsn("last_lsn")?,
            });
        }
        if let Some(row) = self.newest(NEWEST_LOG, instance, database).await? {
            let row = RowReader::new(&row, "backups", "id")?;
            history.newest_log_last_lsn = Some(row.lsn("last_lsn")?);
        }
        if let Some(row) = self.newest(NEWEST_BACKUP, instance, database).await? {
            let row = RowReader::new(&row, "backups", "id")?;
            history.newest_database_guid = guid(&row, "database_guid")?;
        }
        Ok(history)
    }

    async fn newest(
        &self,
        sql: &'static str,
        instance: &str,
        database: &str,
    ) -> Result<Option<SqliteRow>, CatalogError> {
        sqlx::query(sql)
            .bind(instance)
            .bind(database)
            .fetch_optional(&self.pool)
            .await
            .map_err(CatalogError::query(format!(
                "read the stored backups of database {database:?} on instance {instance}"
            )))
    }
}

fn guid(row: &RowReader<'_>, column: &'static str) -> Result<Option<Uuid>, CatalogError> {
    let text: Option<String> = row.get(column)?;
    text.map(|text| {
        Uuid::parse_str(&text)
            .map_err(|error| row.invalid(column, text.clone(), &error.to_string()))
    })
    .transpose()
}
