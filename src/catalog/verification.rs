//! Verification failures: backups whose stored file a later check found missing, changed
//! or damaged. A marked backup stays catalogued but is no good backup: restore plans,
//! drills, retention and the newest-backup summaries leave it out.

use std::collections::HashMap;
use std::fmt;

use serde::Serialize;
use sqlx::sqlite::SqliteRow;
use time::OffsetDateTime;

use super::backups::{backup_from_row, BACKUP_COLUMNS};
use super::chain_backups::json_id_list;
use super::decode::RowReader;
use super::timestamp::format_utc;
use super::{BackupRow, Catalog, CatalogError};

/// The kind of problem that a check found with a backup's stored file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The file is not in the store.
    Missing,
    /// The file has another size than catalogued.
    SizeMismatch,
    /// The file has another SHA-256 than catalogued.
    HashMismatch,
    /// The file could not be read, or its backup structure or checksums are damaged.
    Unreadable,
}

impl FailureKind {
    /// Returns the name stored in `backup_verification_failures.finding`.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Missing => "missing",
            FailureKind::SizeMismatch => "size_mismatch",
            FailureKind::HashMismatch => "hash_mismatch",
            FailureKind::Unreadable => "unreadable",
        }
    }

    fn parse(text: &str) -> Option<FailureKind> {
        match text {
            "missing" => Some(FailureKind::Missing),
            "size_mismatch" => Some(FailureKind::SizeMismatch),
            "hash_mismatch" => Some(FailureKind::HashMismatch),
            "unreadable" => Some(FailureKind::Unreadable),
            _ => None,
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailureKind::Missing => "file missing",
            FailureKind::SizeMismatch => "size differs from the catalogue",
            FailureKind::HashMismatch => "SHA-256 differs from the catalogue",
            FailureKind::Unreadable => "file unreadable or damaged",
        })
    }
}

/// The mark that a failed check left on a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerificationFailure {
    pub backup_id: i64,
    pub finding: FailureKind,
    /// The finding as the check reported it, with the file's path.
    pub detail: String,
    /// When a check first found the problem.
    #[serde(with = "time::serde::rfc3339")]
    pub found_at: OffsetDateTime,
    /// When the last check found it still there.
    #[serde(with = "time::serde::rfc3339")]
    pub checked_at: OffsetDateTime,
}

/// A marked backup with its catalogue row.
#[derive(Debug, Clone, PartialEq)]
pub struct FailedBackup {
    pub backup: BackupRow,
    pub failure: VerificationFailure,
}

const FAILURE_COLUMNS: &str = "backup_id, finding, detail, found_at, checked_at";

impl Catalog {
    /// Marks backup `backup_id` as failed verification with `finding` at `at`, or updates
    /// its mark with the newest finding and check time. Returns the stored mark, whose
    /// `found_at` equals its `checked_at` when the mark is new.
    pub async fn record_verification_failure(
        &self,
        backup_id: i64,
        finding: FailureKind,
        detail: &str,
        at: OffsetDateTime,
    ) -> Result<VerificationFailure, CatalogError> {
        let _turn = self.write_turn().await;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO backup_verification_failures
                 (backup_id, finding, detail, found_at, checked_at)
             VALUES (?1, ?2, ?3, ?4, ?4)
             ON CONFLICT (backup_id) DO UPDATE
                 SET finding = excluded.finding, detail = excluded.detail,
                     checked_at = excluded.checked_at
             RETURNING {FAILURE_COLUMNS}"
        )))
        .bind(backup_id)
        .bind(finding.as_str())
        .bind(detail)
        .bind(format_utc(at))
        .fetch_one(&self.pool)
        .await
        .map_err(CatalogError::query(format!(
            "mark backup {backup_id} as failed verification"
        )))?;
        failure_from_row(&row)
    }

    /// Removes the failed-verification mark of backup `backup_id`, so that it counts as a
    /// good backup again. Returns the removed mark, or `None` when it had none.
    pub async fn clear_verification_failure(
        &self,
        backup_id: i64,
    ) -> Result<Option<VerificationFailure>, CatalogError> {
        let _turn = self.write_turn().await;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM backup_verification_failures WHERE backup_id = ?
             RETURNING {FAILURE_COLUMNS}"
        )))
        .bind(backup_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(CatalogError::query(format!(
            "clear the failed-verification mark of backup {backup_id}"
        )))?;
        row.as_ref().map(failure_from_row).transpose()
    }

    /// Returns the failed-verification mark of backup `backup_id`, or `None`.
    pub async fn verification_failure(
        &self,
        backup_id: i64,
    ) -> Result<Option<VerificationFailure>, CatalogError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {FAILURE_COLUMNS} FROM backup_verification_failures WHERE backup_id = ?"
        )))
        .bind(backup_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(CatalogError::query(format!(
            "read the failed-verification mark of backup {backup_id}"
        )))?;
        row.as_ref().map(failure_from_row).transpose()
    }

    /// Reads the failed-verification marks of the backups with these ids, keyed by backup
    /// id. Backups without a mark are not in the map.
    pub async fn verification_failures_with_ids(
        &self,
        ids: &[i64],
    ) -> Result<HashMap<i64, VerificationFailure>, CatalogError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {FAILURE_COLUMNS} FROM backup_verification_failures
             WHERE backup_id IN (SELECT value FROM json_each(?))"
        )))
        .bind(json_id_list(ids))
        .fetch_all(&self.pool)
        .await
        .map_err(CatalogError::query(format!(
            "read the failed-verification marks of {} backups",
            ids.len()
        )))?;
        rows.iter()
            .map(|row| failure_from_row(row).map(|failure| (failure.backup_id, failure)))
            .collect()
    }

    /// Lists the marked backups that retention has not pruned, of an instance, of one
    /// database, or of the whole catalogue when both are `None`, oldest first by finish
    /// time.
    ///
    /// The query starts from the marks, which are few, and reads each backup by its id.
    pub async fn failed_backups(
        &self,
        instance: Option<&str>,
        database: Option<&str>,
    ) -> Result<Vec<FailedBackup>, CatalogError> {
        // The failures table and backups share no column name, so the backups columns
        // need no table prefix.
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {BACKUP_COLUMNS}, {FAILURE_COLUMNS}
             FROM backup_verification_failures f CROSS JOIN backups b ON b.id = f.backup_id
             WHERE (?1 IS NULL OR b.instance = ?1) AND (?2 IS NULL OR b.database = ?2)
               AND b.id NOT IN (SELECT backup_id FROM pruned_backups)
             ORDER BY b.finished_at, b.id"
        )))
        .bind(instance)
        .bind(database)
        .fetch_all(&self.pool)
        .await
        .map_err(CatalogError::query("list backups that failed verification"))?;
        rows.iter()
            .map(|row| {
                Ok(FailedBackup {
                    backup: backup_from_row(row)?,
                    failure: failure_from_row(row)?,
                })
            })
            .collect()
    }
}

pub(super) fn failure_from_row(row: &SqliteRow) -> Result<VerificationFailure, CatalogError> {
    let row = RowReader::new(row, "backup_verification_failures", "backup_id")?;
    let finding: String = row.get("finding")?;
    Ok(VerificationFailure {
        backup_id: row.id(),
        finding: FailureKind::parse(&finding).ok_or_else(|| {
            row.invalid(
                "finding",
                finding.clone(),
                "not missing, size_mismatch, hash_mismatch or unreadable",
            )
        })?,
        detail: row.get("detail")?,
        found_at: row.utc("found_at")?,
        checked_at: row.utc("checked_at")?,
    })
}
