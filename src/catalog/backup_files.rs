//! Database files recorded in each backup, for the MOVE clauses of restore scripts.

use sqlx::SqliteConnection;

use super::decode::RowReader;
use super::{to_sql_integer, Catalog, CatalogError};
use crate::backup::BackupFile;

/// Inserts the file list of backup `backup_id`. The caller owns the transaction, so the
/// list is stored with the backup row or not at all.
pub(crate) async fn insert_backup_files(
    connection: &mut SqliteConnection,
    backup_id: i64,
    files: &[BackupFile],
) -> Result<(), CatalogError> {
    for file in files {
        let size = file
            .size_bytes
            .map(|size| to_sql_integer("backup_files.size_bytes", size))
            .transpose()?;
        sqlx::query(
            "INSERT INTO backup_files (backup_id, file_number, logical_name, physical_name,
                 file_type, size_bytes)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(backup_id)
        .bind(file.file_number)
        .bind(&file.logical_name)
        .bind(&file.physical_name)
        .bind(&file.file_type)
        .bind(size)
        .execute(&mut *connection)
        .await
        .map_err(CatalogError::query(format!(
            "store file {:?} of backup {backup_id}",
            file.logical_name
        )))?;
    }
    Ok(())
}

impl Catalog {
    /// Lists the database files of a backup in file order; `None` when none were
    /// recorded (imported backups, or msdb did not return them).
    pub async fn backup_files(
        &self,
        backup_id: i64,
    ) -> Result<Option<Vec<BackupFile>>, CatalogError> {
        let rows = sqlx::query(
            "SELECT rowid AS id, file_number, logical_name, physical_name, file_type, size_bytes
             FROM backup_files WHERE backup_id = ? ORDER BY file_number",
        )
        .bind(backup_id)
        .fetch_all(&self.pool)
        .await
        .map_err(CatalogError::query(format!(
            "list the files of backup {backup_id}"
        )))?;

        let mut files = Vec::with_capacity(rows.len());
        for row in &rows {
            let row = RowReader::new(row, "backup_files", "id")?;
            files.push(BackupFile {
                file_number: row.get("file_number")?,
                logical_name: row.get("logical_name")?,
                physical_name: row.get("physical_name")?,
                file_type: row.get("file_type")?,
                size_bytes: row.optional_unsigned("size_bytes")?,
            });
        }
        Ok((!files.is_empty()).then_some(files))
    }
}
