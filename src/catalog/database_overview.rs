//! The overview row of one database, read through the summary tables with the database
//! in every WHERE clause, so a database page costs the same at any fleet size.

use super::decode::RowReader;
use super::overview::{DatabaseOverview, LastBackup, LastRun};
use super::runs::read_skip_kind;
use super::{Catalog, CatalogError};
use crate::backup::BackupType;

impl Catalog {
    /// Returns the overview row of one database, the same row that
    /// [`Catalog::fleet_overview`] lists for it, or `None` when the catalogue knows the
    /// database neither from an inventory, nor from a run or a backup.
    pub async fn database_overview(
        &self,
        instance: &str,
        database: &str,
    ) -> Result<Option<DatabaseOverview>, CatalogError> {
        let mut overview = DatabaseOverview {
            instance: instance.to_string(),
            database: database.to_string(),
            recovery_model: None,
            state: None,
            last_full: None,
            last_diff: None,
            last_log: None,
            last_run: None,
        };
        let inventoried = self.add_inventory_of(&mut overview).await?;
        self.add_last_run_of(&mut overview).await?;
        self.add_last_backups_of(&mut overview).await?;

        let known = inventoried
            || overview.last_run.is_some()
            || overview.last_full.is_some()
            || overview.last_diff.is_some()
            || overview.last_log.is_some();
        Ok(known.then_some(overview))
    }

    /// Copies the recovery model and state of the last inventory; returns whether the
    /// inventory lists the database.
    async fn add_inventory_of(
        &self,
        overview: &mut DatabaseOverview,
    ) -> Result<bool, CatalogError> {
        let row = sqlx::query(
            "SELECT d.id, d.recovery_model, d.state
             FROM databases d JOIN instances i ON i.id = d.instance_id
             WHERE i.name = ? AND d.name = ?",
        )
        .bind(&overview.instance)
        .bind(&overview.database)
        .fetch_optional(&self.pool)
        .await
        .map_err(CatalogError::query(format!(
            "read the inventory of database {:?} on instance {}",
            overview.database, overview.instance
        )))?;
        let Some(row) = row else {
            return Ok(false);
        };
        let row = RowReader::new(&row, "databases", "id")?;
        overview.recovery_model = row.get("recovery_model")?;
        overview.state = row.get("state")?;
        Ok(true)
    }

    async fn add_last_run_of(&self, overview: &mut DatabaseOverview) -> Result<(), CatalogError> {
        let row = sqlx::query(
            "SELECT r.id, r.backup_type,
                    COALESCE(r.requested_type, r.backup_type) AS requested_type, r.reason,
                    r.status, r.skip_kind, r.phase, r.error, r.started_at, r.finished_at
             FROM latest_runs l JOIN runs r ON r.id = l.run_id
             WHERE l.instance = ? AND l.database = ?",
        )
        .bind(&overview.instance)
        .bind(&overview.database)
        .fetch_optional(&self.pool)
        .await
        .map_err(CatalogError::query(format!(
            "find the last run of database {:?} on instance {}",
            overview.database, overview.instance
        )))?;
        let Some(row) = row else {
            return Ok(());
        };
        let row = RowReader::new(&row, "runs", "id")?;
        let status: String = row.get("status")?;
        overview.last_run = Some(LastRun {
            id: row.id(),
            backup_type: row.backup_type("backup_type")?,
            requested_type: row.backup_type("requested_type")?,
            reason: row.get("reason")?,
            status: status
                .parse()
                .map_err(|()| row.invalid("status", status.clone(), "not a run status"))?,
            skip_kind: read_skip_kind(&row)?,
            phase: row.get("phase")?,
            error: row.get("error")?,
            started_at: row.utc("started_at")?,
            finished_at: row.optional_utc("finished_at")?,
        });
        Ok(())
    }

    async fn add_last_backups_of(
        &self,
        overview: &mut DatabaseOverview,
    ) -> Result<(), CatalogError> {
        let rows = sqlx::query(
            "SELECT b.id, b.backup_type, b.finished_at, b.size_bytes
             FROM latest_backups l JOIN backups b ON b.id = l.backup_id
             WHERE l.instance = ? AND l.database = ?",
        )
        .bind(&overview.instance)
        .bind(&overview.database)
        .fetch_all(&self.pool)
        .await
        .map_err(CatalogError::query(format!(
            "find the newest backups of database {:?} on instance {}",
            overview.database, overview.instance
        )))?;
        for row in &rows {
            let row = RowReader::new(row, "backups", "id")?;
            let last = LastBackup {
                id: row.id(),
                finished_at: row.utc("finished_at")?,
                size_bytes: row.unsigned("size_bytes")?,
            };
            match row.backup_type("backup_type")? {
                BackupType::Full => overview.last_full = Some(last),
                BackupType::Diff => overview.last_diff = Some(last),
                BackupType::Log => overview.last_log = Some(last),
            }
        }
        Ok(())
    }
}
