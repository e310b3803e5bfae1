//! Narrow reads for restore plans: the chain facts of every restorable backup of one
//! database, then whole rows and media families only for the backups a plan restores.

use std::collections::HashMap;

use super::backups::{backup_from_row, BACKUP_COLUMNS};
use super::decode::RowReader;
use super::{BackupRow, Catalog, CatalogError};
use crate::backup::BackupFamily;
use crate::chain::ChainBackup;

/// The columns that [`ChainBackup`] reads, a third of a backups row.
const CHAIN_COLUMNS: &str = "id, backup_type, first_lsn, last_lsn, checkpoint_lsn,
    database_backup_lsn, differential_base_lsn, differential_base_guid, is_copy_only,
    database_guid, backup_set_guid, finished_at";

impl Catalog {
    /// Lists the chain facts of the backups of one database that retention has not
    /// pruned, oldest first by UTC finish time.
    ///
    /// Restore plans read these instead of whole rows because the restorable windows
    /// need every backup, while the script needs the paths of the chain's members only.
    pub async fn restorable_chain_backups(
        &self,
        instance: &str,
        database: &str,
    ) -> Result<Vec<ChainBackup>, CatalogError> {
        // Only the constant column list is spliced in; values are bound.
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CHAIN_COLUMNS} FROM backups
             WHERE instance = ? AND database = ?
               AND id NOT IN (SELECT backup_id FROM pruned_backups)
             ORDER BY finished_at, id"
        )))
        .bind(instance)
        .bind(database)
        .fetch_all(&self.pool)
        .await
        .map_err(CatalogError::query(format!(
            "list restorable backups of database {database:?} on instance {instance}"
        )))?;
        rows.iter()
            .map(|row| {
                let row = RowReader::new(row, "backups", "id")?;
                Ok(ChainBackup {
                    id: row.id(),
                    backup_type: row.backup_type("backup_type")?,
                    first_lsn: row.lsn("first_lsn")?,
                    last_lsn: row.lsn("last_lsn")?,
                    checkpoint_lsn: row.lsn("checkpoint_lsn")?,
                    database_backup_lsn: row.lsn("database_backup_lsn")?,
                    differential_base_lsn: row.optional_lsn("differential_base_lsn")?,
                    differential_base_guid: row.get("differential_base_guid")?,
                    is_copy_only: row.get("is_copy_only")?,
                    database_guid: row.get("database_guid")?,
                    backup_set_guid: row.get("backup_set_guid")?,
                    finished_at: row.utc("finished_at")?,
                })
            })
            .collect()
    }

    /// Reads the backups with these ids in one query, by id. Ids without a backup are
    /// left out of the result.
    pub async fn backups_with_ids(&self, ids: &[i64]) -> Result<Vec<BackupRow>, CatalogError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {BACKUP_COLUMNS} FROM backups
             WHERE id IN (SELECT value FROM json_each(?))
             ORDER BY id"
        )))
        .bind(json_id_list(ids))
        .fetch_all(&self.pool)
        .await
        .map_err(CatalogError::query(format!(
            "read {} backups by id",
            ids.len()
        )))?;
        rows.iter().map(backup_from_row).collect()
    }

    /// Reads what a restore script needs of each backup with these ids: its media
    /// families, checksum flag and time zone, keyed by backup id. Ids without a backup
    /// are left out.
    ///
    /// A latest plan restores every log since the last full or differential, thousands
    /// on a busy database, so this reads 7 columns of each instead of whole rows.
    pub async fn script_members(
        &self,
        ids: &[i64],
    ) -> Result<HashMap<i64, ScriptMember>, CatalogError> {
        let rows = sqlx::query(
            "SELECT id, store_path, staged_path, size_bytes, sha256, has_checksums, time_zone
             FROM backups
             WHERE id IN (SELECT value FROM json_each(?))",
        )
        .bind(json_id_list(ids))
        .fetch_all(&self.pool)
        .await
        .map_err(CatalogError::query(format!(
            "read the script facts of {} backups",
            ids.len()
        )))?;

        let mut families = self.families_of(ids).await?;
        let mut members = HashMap::with_capacity(rows.len());
        for row in &rows {
            let row = RowReader::new(row, "backups", "id")?;
            // A backup without family rows is one file, which its backups row describes.
            let families = match families.remove(&row.id()) {
                Some(families) => families,
                None => vec![BackupFamily {
                    family_number: 1,
                    store_path: row.get("store_path")?,
                    staged_path: row.get("staged_path")?,
                    size_bytes: row.unsigned("size_bytes")?,
                    sha256: row.get("sha256")?,
                }],
            };
            members.insert(
                row.id(),
                ScriptMember {
                    families,
                    has_checksums: row.get("has_checksums")?,
                    time_zone: row.get("time_zone")?,
                },
            );
        }
        Ok(members)
    }

    /// Lists the media family rows of these backups in one query, keyed by backup id.
    /// Backups of one file have no family rows and are not in the map.
    async fn families_of(
        &self,
        ids: &[i64],
    ) -> Result<HashMap<i64, Vec<BackupFamily>>, CatalogError> {
        let rows = sqlx::query(
            "SELECT rowid AS id, backup_id, family_number, store_path, staged_path,
                    size_bytes, sha256
             FROM backup_families
             WHERE backup_id IN (SELECT value FROM json_each(?))
             ORDER BY backup_id, family_number",
        )
        .bind(json_id_list(ids))
        .fetch_all(&self.pool)
        .await
        .map_err(CatalogError::query(format!(
            "list the media families of {} backups",
            ids.len()
        )))?;

        let mut families: HashMap<i64, Vec<BackupFamily>> = HashMap::new();
        for row in &rows {
            let row = RowReader::new(row, "backup_families", "id")?;
            let family_number: i64 = row.get("family_number")?;
            families
                .entry(row.get("backup_id")?)
                .or_default()
                .push(BackupFamily {
                    family_number: u32::try_from(family_number).unwrap_or(0),
                    store_path: row.get("store_path")?,
                    staged_path: row.get("staged_path")?,
                    size_bytes: row.unsigned("size_bytes")?,
                    sha256: row.get("sha256")?,
                });
        }
        Ok(families)
    }
}

/// The facts a restore script needs of one backup of its chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptMember {
    /// The backup's files in family order; one for a backup that is not striped.
    pub families: Vec<BackupFamily>,
    pub has_checksums: bool,
    /// msdb `time_zone`: offset from UTC in 15-minute steps; 127 means unknown.
    pub time_zone: Option<i16>,
}

/// Formats ids as a JSON array for `json_each`, which takes any number of ids in one
/// bound value where an `IN (?, ?, ...)` list would hit SQLite's limit on variables.
fn json_id_list(ids: &[i64]) -> String {
    let mut text = String::with_capacity(ids.len() * 8 + 2);
    text.push('[');
    for (index, id) in ids.iter().enumerate() {
        if index > 0 {
            text.push(',');
        }
        text.push_str(&id.to_string());
    }
    text.push(']');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_list_formats_json_array() {
        assert_eq!(json_id_list(&[]), "[]");
        assert_eq!(json_id_list(&[7]), "[7]");
        assert_eq!(json_id_list(&[1, 22, 333]), "[1,22,333]");
    }
}
