//! Schedule slots as the runs record them, for the scheduler's catch-up after downtime.

use time::OffsetDateTime;

use super::timestamp::{format_utc, parse_utc};
use super::{Catalog, CatalogError};
use crate::backup::BackupType;

impl Catalog {
    /// Returns whether any run of `instance` serves schedule slot `slot` for the requested
    /// type, whatever its outcome.
    pub async fn slot_has_run(
        &self,
        instance: &str,
        requested_type: BackupType,
        slot: OffsetDateTime,
    ) -> Result<bool, CatalogError> {
        let found: Option<(i64,)> = sqlx::query_as(
            "SELECT id FROM runs
             WHERE instance = ? AND COALESCE(requested_type, backup_type) = ? AND slot = ?
             LIMIT 1",
        )
        .bind(instance)
        .bind(requested_type.as_str())
        .bind(format_utc(slot))
        .fetch_optional(&self.pool)
        .await
        .map_err(CatalogError::query(format!(
            "look for {requested_type} runs of instance {instance} in slot {}",
            format_utc(slot)
        )))?;
        Ok(found.is_some())
    }

    /// Returns the start of the newest run of `instance` requested as `requested_type`,
    /// scheduled or manual; `None` when there is none.
    pub async fn newest_run_start(
        &self,
        instance: &str,
        requested_type: BackupType,
    ) -> Result<Option<OffsetDateTime>, CatalogError> {
        let newest: Option<(Option<String>,)> = sqlx::query_as(
            "SELECT MAX(started_at) FROM runs
             WHERE instance = ? AND COALESCE(requested_type, backup_type) = ?",
        )
        .bind(instance)
        .bind(requested_type.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(CatalogError::query(format!(
            "read the newest {requested_type} run of instance {instance}"
        )))?;
        let Some((Some(text),)) = newest else {
            return Ok(None);
        };
        // An aggregate has no row id; 0 stands for "the newest run".
        parse_utc("runs", "started_at", 0, &text).map(Some)
    }
}
