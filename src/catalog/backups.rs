//! Backups: files in the central store that passed every stage of a job.

use serde::Serialize;
use sqlx::sqlite::SqliteRow;
use sqlx::SqliteConnection;
use time::{OffsetDateTime, PrimitiveDateTime};

use super::backup_families::insert_backup_families;
use super::backup_files::insert_backup_files;
use super::decode::RowReader;
use super::timestamp::{format_local, format_utc, server_local_to_utc};
use super::verification::{failure_from_row, VerificationFailure};
use super::{to_sql_integer, Catalog, CatalogError};
use crate::backup::{BackupRecord, BackupType, Lsn};

time::serde::format_description!(
    server_local_time,
    PrimitiveDateTime,
    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]"
);

/// A catalogued backup with the run that produced it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackupRow {
    pub id: i64,
    pub run_id: i64,
    pub instance: String,
    pub database: String,
    pub backup_type: BackupType,
    /// Always `verified`: the catalogue stores no other backups.
    pub status: String,
    /// Path relative to the store root, with `/` separators, or an absolute path for a
    /// file that `bakfleet import` catalogued where it was found.
    pub store_path: String,
    /// The path the instance wrote, as the instance names it.
    pub staged_path: String,
    pub size_bytes: u64,
    pub sha256: String,
    pub first_lsn: Lsn,
    pub last_lsn: Lsn,
    pub checkpoint_lsn: Lsn,
    pub database_backup_lsn: Lsn,
    pub differential_base_lsn: Option<Lsn>,
    /// For a differential: the `backup_set_guid` of its base full, when recorded.
    pub differential_base_guid: Option<String>,
    pub backup_set_guid: Option<String>,
    pub database_guid: Option<String>,
    /// Server local time without offset, as msdb stores it.
    #[serde(with = "server_local_time")]
    pub backup_start: PrimitiveDateTime,
    #[serde(with = "server_local_time")]
    pub backup_finish: PrimitiveDateTime,
    /// `backup_finish` in UTC, or the fetch time when msdb's `time_zone` is unknown.
    #[serde(with = "time::serde::rfc3339")]
    pub finished_at: OffsetDateTime,
    /// msdb `time_zone`: offset from UTC in 15-minute steps; 127 means unknown.
    pub time_zone: Option<i16>,
    pub server_version: Option<String>,
    pub recovery_model: Option<String>,
    pub has_checksums: bool,
    pub is_copy_only: bool,
    pub compressed: bool,
    /// msdb `backup_size`: bytes of the backup set before compression.
    pub backup_size: Option<u64>,
    /// msdb `compressed_backup_size`.
    pub compressed_size: Option<u64>,
    #[serde(with = "time::serde::rfc3339")]
    pub fetched_at: OffsetDateTime,
    pub fetch_ms: u64,
}

impl BackupRow {
    /// Returns this row with the path, size and hash of one of its media families, so
    /// that checks written for one file apply to each file of a striped backup.
    pub fn for_family(&self, family: &crate::backup::BackupFamily) -> BackupRow {
        BackupRow {
            store_path: family.store_path.clone(),
            staged_path: family.staged_path.clone(),
            size_bytes: family.size_bytes,
            sha256: family.sha256.clone(),
            ..self.clone()
        }
    }
}

pub(super) const BACKUP_COLUMNS: &str =
    "id, run_id, instance, database, backup_type, status, store_path,
    staged_path, size_bytes, sha256, first_lsn, last_lsn, checkpoint_lsn, database_backup_lsn,
    differential_base_lsn, differential_base_guid, backup_set_guid, database_guid, backup_start,
    backup_finish, finished_at, time_zone, server_version, recovery_model, has_checksums,
    is_copy_only, compressed, backup_size, compressed_size, fetched_at, fetch_ms";

/// Inserts a verified backup of run `run_id` and returns its id. The caller owns the
/// transaction, so the run's outcome and this row are stored together.
pub(crate) async fn insert_backup(
    connection: &mut SqliteConnection,
    run_id: i64,
    backup: &BackupRecord,
) -> Result<i64, CatalogError> {
    let finished_at =
        server_local_to_utc(backup.backup_finish, backup.time_zone).unwrap_or(backup.fetched_at);
    let backup_size = backup
        .backup_size
        .map(|size| to_sql_integer("backup_size", size))
        .transpose()?;
    let compressed_size = backup
        .compressed_size
        .map(|size| to_sql_integer("compressed_size", size))
        .transpose()?;

    let result = sqlx::query(
        "INSERT INTO backups (run_id, instance, database, backup_type, status, store_path,
             staged_path, size_bytes, sha256, first_lsn, last_lsn, checkpoint_lsn,
             database_backup_lsn, differential_base_lsn, differential_base_guid,
             backup_set_guid, database_guid, backup_start, backup_finish, finished_at,
             time_zone, server_version, recovery_model, has_checksums, is_copy_only,
             compressed, backup_size, compressed_size, fetched_at, fetch_ms)
         VALUES (?, ?, ?, ?, 'verified', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
                 ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(run_id)
    .bind(&backup.instance)
    .bind(&backup.database)
    .bind(backup.backup_type.as_str())
    .bind(&backup.store_path)
    .bind(&backup.staged_path)
    .bind(to_sql_integer("size_bytes", backup.size_bytes)?)
    .bind(&backup.sha256)
    .bind(backup.first_lsn.to_catalog_text())
    .bind(backup.last_lsn.to_catalog_text())
    .bind(backup.checkpoint_lsn.to_catalog_text())
    .bind(backup.database_backup_lsn.to_catalog_text())
    .bind(backup.differential_base_lsn.map(Lsn::to_catalog_text))
    .bind(&backup.differential_base_guid)
    .bind(&backup.backup_set_guid)
    .bind(&backup.database_guid)
    .bind(format_local(backup.backup_start))
    .bind(format_local(backup.backup_finish))
    .bind(format_utc(finished_at))
    .bind(backup.time_zone)
    .bind(&backup.server_version)
    .bind(&backup.recovery_model)
    .bind(backup.has_checksums)
    .bind(backup.is_copy_only)
    .bind(backup.compressed)
    .bind(backup_size)
    .bind(compressed_size)
    .bind(format_utc(backup.fetched_at))
    .bind(to_sql_integer("fetch_ms", backup.fetch_ms)?)
    .execute(&mut *connection)
    .await
    .map_err(CatalogError::query(format!(
        "store the {} backup {} of database {:?} on instance {}",
        backup.backup_type, backup.store_path, backup.database, backup.instance
    )))?;
    let backup_id = result.last_insert_rowid();
    if let Some(files) = &backup.files {
        insert_backup_files(connection, backup_id, files).await?;
    }
    insert_backup_families(connection, backup_id, &backup.families).await?;
    Ok(backup_id)
}

/// A backup as the database page lists it: a few columns of its [`BackupRow`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackupListing {
    pub id: i64,
    pub backup_type: BackupType,
    #[serde(with = "time::serde::rfc3339")]
    pub finished_at: OffsetDateTime,
    pub size_bytes: u64,
    pub first_lsn: Lsn,
    pub last_lsn: Lsn,
    pub has_checksums: bool,
    pub is_copy_only: bool,
    /// The mark of a failed verification, when a check found the file missing, changed
    /// or damaged.
    pub failure: Option<VerificationFailure>,
}

impl Catalog {
    /// Lists the newest backups of one database that retention has not deleted, newest
    /// first by UTC finish time.
    pub async fn backups_of_database(
        &self,
        instance: &str,
        database: &str,
        limit: i64,
    ) -> Result<Vec<BackupRow>, CatalogError> {
        // Only the constant column list is spliced in; values are bound.
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {BACKUP_COLUMNS} FROM backups
             WHERE instance = ? AND database = ?
               AND id NOT IN (SELECT backup_id FROM pruned_backups)
             ORDER BY finished_at DESC, id DESC LIMIT ?"
        )))
        .bind(instance)
        .bind(database)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(CatalogError::query(format!(
            "list backups of database {database:?} on instance {instance}"
        )))?;
        rows.iter().map(backup_from_row).collect()
    }

    /// Lists the newest backups of one database that retention has not deleted, newest
    /// first by UTC finish time, with the columns the database page shows. With `before`,
    /// only those that come after backup `before` in that order: the next page.
    ///
    /// sqlx and the template both spend time per value, so this reads 8 columns of each
    /// instead of the 31 of a whole row.
    pub async fn backup_listing(
        &self,
        instance: &str,
        database: &str,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<BackupListing>, CatalogError> {
        // A `before` that is no backup of this database selects nothing.
        // The join looks up each listed backup's mark by the failures table's key.
        let rows = sqlx::query(
            "SELECT b.id, b.backup_type, b.finished_at, b.size_bytes, b.first_lsn,
                    b.last_lsn, b.has_checksums, b.is_copy_only, f.backup_id, f.finding,
                    f.detail, f.found_at, f.checked_at
             FROM backups b LEFT JOIN backup_verification_failures f ON f.backup_id = b.id
             WHERE b.instance = ?1 AND b.database = ?2
               AND (?3 IS NULL OR (b.finished_at, b.id) < (
                    SELECT finished_at, id FROM backups
                    WHERE id = ?3 AND instance = ?1 AND database = ?2))
               AND b.id NOT IN (SELECT backup_id FROM pruned_backups)
             ORDER BY b.finished_at DESC, b.id DESC LIMIT ?4",
        )
        .bind(instance)
        .bind(database)
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(CatalogError::query(format!(
            "list backups of database {database:?} on instance {instance}"
        )))?;
        rows.iter()
            .map(|sqlite_row| {
                let row = RowReader::new(sqlite_row, "backups", "id")?;
                let marked: Option<i64> = row.get("backup_id")?;
                Ok(BackupListing {
                    id: row.id(),
                    backup_type: row.backup_type("backup_type")?,
                    finished_at: row.utc("finished_at")?,
                    size_bytes: row.unsigned("size_bytes")?,
                    first_lsn: row.lsn("first_lsn")?,
                    last_lsn: row.lsn("last_lsn")?,
                    has_checksums: row.get("has_checksums")?,
                    is_copy_only: row.get("is_copy_only")?,
                    failure: marked.map(|_| failure_from_row(sqlite_row)).transpose()?,
                })
            })
            .collect()
    }

    /// Lists the backups whose file has this SHA-256, so an import can skip a file that
    /// is already catalogued under another path.
    pub async fn backups_with_sha256(&self, sha256: &str) -> Result<Vec<BackupRow>, CatalogError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {BACKUP_COLUMNS} FROM backups WHERE sha256 = ? ORDER BY id"
        )))
        .bind(sha256)
        .fetch_all(&self.pool)
        .await
        .map_err(CatalogError::query(format!(
            "find backups with SHA-256 {sha256}"
        )))?;
        rows.iter().map(backup_from_row).collect()
    }

    /// Lists every backup of an instance, of one database, or of the whole catalogue when
    /// both are `None`, in id order, with whether retention pruned it.
    pub async fn backups_in_scope_with_pruned(
        &self,
        instance: Option<&str>,
        database: Option<&str>,
    ) -> Result<Vec<(BackupRow, bool)>, CatalogError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {BACKUP_COLUMNS},
                    id IN (SELECT backup_id FROM pruned_backups) AS pruned
             FROM backups
             WHERE (?1 IS NULL OR instance = ?1) AND (?2 IS NULL OR database = ?2)
             ORDER BY id"
        )))
        .bind(instance)
        .bind(database)
        .fetch_all(&self.pool)
        .await
        .map_err(CatalogError::query("list catalogued backups"))?;
        rows.iter()
            .map(|row| {
                let pruned: bool = sqlx::Row::try_get(row, "pruned")
                    .map_err(CatalogError::query("read the pruned flag of a backup"))?;
                Ok((backup_from_row(row)?, pruned))
            })
            .collect()
    }

    /// Returns one backup, or `None` when no backup has that id.
    pub async fn backup(&self, id: i64) -> Result<Option<BackupRow>, CatalogError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {BACKUP_COLUMNS} FROM backups WHERE id = ?"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(CatalogError::query(format!("read backup {id}")))?;
        row.as_ref().map(backup_from_row).transpose()
    }
}

pub(super) fn backup_from_row(row: &SqliteRow) -> Result<BackupRow, CatalogError> {
    let row = RowReader::new(row, "backups", "id")?;
    Ok(BackupRow {
        id: row.id(),
        run_id: row.get("run_id")?,
        instance: row.get("instance")?,
        database: row.get("database")?,
        backup_type: row.backup_type("backup_type")?,
        status: row.get("status")?,
        store_path: row.get("store_path")?,
        staged_path: row.get("staged_path")?,
        size_bytes: row.unsigned("size_bytes")?,
        sha256: row.get("sha256")?,
        first_lsn: row.lsn("first_lsn")?,
        last_lsn: row.lsn("last_lsn")?,
        checkpoint_lsn: row.lsn("checkpoint_lsn")?,
        database_backup_lsn: row.lsn("database_backup_lsn")?,
        differential_base_lsn: row.optional_lsn("differential_base_lsn")?,
        differential_base_guid: row.get("differential_base_guid")?,
        backup_set_guid: row.get("backup_set_guid")?,
        database_guid: row.get("database_guid")?,
        backup_start: row.local("backup_start")?,
        backup_finish: row.local("backup_finish")?,
        finished_at: row.utc("finished_at")?,
        time_zone: row.get("time_zone")?,
        server_version: row.get("server_version")?,
        recovery_model: row.get("recovery_model")?,
        has_checksums: row.get("has_checksums")?,
        is_copy_only: row.get("is_copy_only")?,
        compressed: row.get("compressed")?,
        backup_size: row.optional_unsigned("backup_size")?,
        compressed_size: row.optional_unsigned("compressed_size")?,
        fetched_at: row.utc("fetched_at")?,
        fetch_ms: row.unsigned("fetch_ms")?,
    })
}
