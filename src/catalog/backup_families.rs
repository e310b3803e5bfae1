//! The media families of striped backups: every file a restore of the backup needs.

use sqlx::SqliteConnection;

use super::backups::BackupRow;
use super::decode::RowReader;
use super::{to_sql_integer, Catalog, CatalogError};
use crate::backup::BackupFamily;

/// Inserts the families of backup `backup_id`. The caller owns the transaction, so the
/// families are stored with the backup row or not at all.
pub(crate) async fn insert_backup_families(
    connection: &mut SqliteConnection,
    backup_id: i64,
    families: &[BackupFamily],
) -> Result<(), CatalogError> {
    for family in families {
        sqlx::query(
            "INSERT INTO backup_families (backup_id, family_number, store_path, staged_path,
                 size_bytes, sha256)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(backup_id)
        .bind(family.family_number)
        .bind(&family.store_path)
        .bind(&family.staged_path)
        .bind(to_sql_integer(
            "backup_families.size_bytes",
            family.size_bytes,
        )?)
        .bind(&family.sha256)
        .execute(&mut *connection)
        .await
        .map_err(CatalogError::query(format!(
            "store family {} ({}) of backup {backup_id}",
            family.family_number, family.store_path
        )))?;
    }
    Ok(())
}

impl Catalog {
    /// Lists every file of a backup in family order: the stored families of a striped
    /// backup, or the backup's one file as family 1.
    ///
    /// # Errors
    /// A query or decode error naming the backup.
    pub async fn backup_families(
        &self,
        backup: &BackupRow,
    ) -> Result<Vec<BackupFamily>, CatalogError> {
        let rows = sqlx::query(
            "SELECT rowid AS id, family_number, store_path, staged_path, size_bytes, sha256
             FROM backup_families WHERE backup_id = ? ORDER BY family_number",
        )
        .bind(backup.id)
        .fetch_all(&self.pool)
        .await
        .map_err(CatalogError::query(format!(
            "list the media families of backup {}",
            backup.id
        )))?;
        let mut families = Vec::with_capacity(rows.len().max(1));
        for row in &rows {
            let row = RowReader::new(row, "backup_families", "id")?;
            let family_number: i64 = row.get("family_number")?;
            families.push(BackupFamily {
                family_number: u32::try_from(family_number).unwrap_or(0),
                store_path: row.get("store_path")?,
                staged_path: row.get("staged_path")?,
                size_bytes: row.unsigned("size_bytes")?,
                sha256: row.get("sha256")?,
            });
        }
        if families.is_empty() {
            families.push(BackupFamily {
                family_number: 1,
                store_path: backup.store_path.clone(),
                staged_path: backup.staged_path.clone(),
                size_bytes: backup.size_bytes,
                sha256: backup.sha256.clone(),
            });
        }
        Ok(families)
    }
}
