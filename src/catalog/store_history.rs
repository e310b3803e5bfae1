//! The stored backups of one database, in the shape the backup type decision reads.

use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

use super::decode::RowReader;
use super::{Catalog, CatalogError};
use crate::policy::{StoreHistory, StoredFull};

/// The newest full that can be a differential base. Copy-only fulls are left out because
/// SQL Server never makes them one ("Copy-Only Backups (SQL Server)"). Here and below,
/// backups that retention deleted are left out, because the store no longer contains
/// them. So are backups that failed verification, because no restore can use them: a
/// differential on a marked full, or a log after a marked log, is then due as a full.
const NEWEST_FULL: &str = "SELECT id, backup_set_guid, database_guid, last_lsn, finished_at
    FROM backups
    WHERE instance = ? AND database = ? AND backup_type = 'full' AND is_copy_only = 0
      AND id NOT IN (SELECT backup_id FROM pruned_backups)
      AND id NOT IN (SELECT backup_id FROM backup_verification_failures)
    ORDER BY finished_at DESC, id DESC LIMIT 1";

/// The newest log that finished at or after a time, the newest full's finish. An empty
/// text as that time selects the newest log of any time.
const NEWEST_LOG_SINCE: &str = "SELECT id, last_lsn FROM backups
    WHERE instance = ? AND database = ? AND backup_type = 'log' AND finished_at >= ?
      AND id NOT IN (SELECT backup_id FROM pruned_backups)
      AND id NOT IN (SELECT backup_id FROM backup_verification_failures)
    ORDER BY finished_at DESC, id DESC LIMIT 1";

const NEWEST_BACKUP: &str = "SELECT id, database_guid FROM backups
    WHERE instance = ? AND database = ?
      AND id NOT IN (SELECT backup_id FROM pruned_backups)
      AND id NOT IN (SELECT backup_id FROM backup_verification_failures)
    ORDER BY finished_at DESC, id DESC LIMIT 1";

impl Catalog {
    /// Reads the newest full that is not copy-only, the newest log since that full (or
    /// since ever, without a full) and the newest backup of any type of one database.
    ///
    /// A log that finished before the newest full does not continue that full's chain,
    /// whatever its LSNs. After a restore to an earlier point and a new full, the old
    /// branch's last log ends at a higher LSN than the new full, and would make the next
    /// log look like a break in the chain.
    pub async fn store_history(
        &self,
        instance: &str,
        database: &str,
    ) -> Result<StoreHistory, CatalogError> {
        let mut history = StoreHistory::default();
        let mut full_finished_at = String::new();
        if let Some(row) = self.newest(NEWEST_FULL, instance, database, None).await? {
            let row = RowReader::new(&row, "backups", "id")?;
            history.newest_full = Some(StoredFull {
                backup_set_guid: guid(&row, "backup_set_guid")?,
                database_guid: guid(&row, "database_guid")?,
                last_lsn: row.lsn("last_lsn")?,
            });
            full_finished_at = row.get("finished_at")?;
        }
        let since = Some(full_finished_at.as_str());
        if let Some(row) = self
            .newest(NEWEST_LOG_SINCE, instance, database, since)
            .await?
        {
            let row = RowReader::new(&row, "backups", "id")?;
            history.newest_log_last_lsn = Some(row.lsn("last_lsn")?);
        }
        if let Some(row) = self.newest(NEWEST_BACKUP, instance, database, None).await? {
            let row = RowReader::new(&row, "backups", "id")?;
            history.newest_database_guid = guid(&row, "database_guid")?;
        }
        Ok(history)
    }

    /// Runs one of the queries above. `since` binds the third parameter of
    /// [`NEWEST_LOG_SINCE`], the only query that has one.
    async fn newest(
        &self,
        sql: &'static str,
        instance: &str,
        database: &str,
        since: Option<&str>,
    ) -> Result<Option<SqliteRow>, CatalogError> {
        let mut query = sqlx::query(sql).bind(instance).bind(database);
        if let Some(since) = since {
            query = query.bind(since);
        }
        query
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
