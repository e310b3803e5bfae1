//! The fleet overview: per database, the newest backup of each type and the last run.

use std::collections::BTreeMap;

use serde::Serialize;
use time::OffsetDateTime;

use super::decode::RowReader;
use super::runs::{read_skip_kind, run_from_row, RunRow, RunStatus, SkipKind, RUN_COLUMNS};
use super::timestamp::format_utc;
use super::{Catalog, CatalogError};
use crate::backup::BackupType;

/// One database in the catalogue, from the inventory or from its runs and backups.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatabaseOverview {
    pub instance: String,
    pub database: String,
    /// From the last inventory; `None` for a database known only from runs.
    pub recovery_model: Option<String>,
    pub state: Option<String>,
    pub last_full: Option<LastBackup>,
    pub last_diff: Option<LastBackup>,
    pub last_log: Option<LastBackup>,
    pub last_run: Option<LastRun>,
}

impl DatabaseOverview {
    /// Tells whether the database appears in the catalogue only through runs: no
    /// inventory has listed it and no backup of it is catalogued. A `bakfleet run` with a misspelled
    /// name leaves such an entry behind, with its failed run.
    pub fn is_known_only_from_runs(&self) -> bool {
        self.recovery_model.is_none()
            && self.state.is_none()
            && self.last_full.is_none()
            && self.last_diff.is_none()
            && self.last_log.is_none()
    }
}

/// The newest catalogued backup of one type that retention has not pruned and that did
/// not fail verification.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LastBackup {
    pub id: i64,
    /// Finish time in UTC (see [`super::BackupRow::finished_at`]).
    #[serde(with = "time::serde::rfc3339")]
    pub finished_at: OffsetDateTime,
    pub size_bytes: u64,
}

/// The newest run of a database, whatever its type.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LastRun {
    pub id: i64,
    /// The type taken: the requested one, or `full` after a promotion.
    pub backup_type: BackupType,
    pub requested_type: BackupType,
    /// The reason the type changed, or the reason the run was skipped.
    pub reason: Option<String>,
    pub status: RunStatus,
    /// Set when `status` is `skipped`.
    pub skip_kind: Option<SkipKind>,
    pub phase: String,
    pub error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
}

/// The outcome of the newest connection attempt to an instance, as its runs record it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reachability {
    pub instance: String,
    /// False when that run failed in its `connect` phase.
    pub reachable: bool,
    /// Start of the run that connected, or end of the run that failed to connect.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub run_id: i64,
    /// The connect error when `reachable` is false.
    pub error: Option<String>,
}

type DatabaseKey = (String, String);

impl Catalog {
    /// Lists every known database, ordered by instance and database name, with its newest
    /// backup of each type (by UTC finish time) and its newest run.
    pub(super) async fn read_fleet_overview(&self) -> Result<Vec<DatabaseOverview>, CatalogError> {
        let mut databases = BTreeMap::new();
        self.add_inventory(&mut databases).await?;
        self.add_last_runs(&mut databases).await?;
        self.add_last_backups(&mut databases).await?;
        Ok(databases.into_values().collect())
    }

    /// Finds, per instance, the newest run that shows whether bakfleet could connect: a
    /// run past its `connect` phase did, a run that failed in it did not. Runs still in
    /// `connect` show nothing yet. Only the newest run of each database is read, which
    /// the `latest_runs` table names, so the query stays small on a large catalogue.
    pub(super) async fn read_instance_reachability(
        &self,
    ) -> Result<Vec<Reachability>, CatalogError> {
        let rows = sqlx::query(
            "SELECT r.id, r.instance, r.status, r.phase, r.error, r.started_at, r.finished_at
             FROM latest_runs l JOIN runs r ON r.id = l.run_id
             WHERE r.phase <> 'connect' OR r.status = 'failed'
             ORDER BY r.instance",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(CatalogError::query(
            "find the last connection outcome of each instance",
        ))?;

        let mut newest: BTreeMap<String, Reachability> = BTreeMap::new();
        for row in &rows {
            let row = RowReader::new(row, "runs", "id")?;
            let phase: String = row.get("phase")?;
            let status: String = row.get("status")?;
            let reachable = !(phase == "connect" && status == "failed");
            let at = if reachable {
                row.utc("started_at")?
            } else {
                row.optional_utc("finished_at")?
                    .map_or_else(|| row.utc("started_at"), Ok)?
            };
            let instance: String = row.get("instance")?;
            let candidate = Reachability {
                instance: instance.clone(),
                reachable,
                at,
                run_id: row.id(),
                error: if reachable { None } else { row.get("error")? },
            };
            match newest.get(&instance) {
                Some(known) if known.at >= candidate.at => {}
                _ => {
                    newest.insert(instance, candidate);
                }
            }
        }
        Ok(newest.into_values().collect())
    }

    /// Lists the runs that failed and started at or after `since`, newest first, at most
    /// `limit` of them.
    pub async fn failed_runs_since(
        &self,
        since: OffsetDateTime,
        limit: i64,
    ) -> Result<Vec<RunRow>, CatalogError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RUN_COLUMNS} FROM runs r
             WHERE r.started_at >= ? AND r.status = 'failed'
             ORDER BY r.started_at DESC, r.id DESC LIMIT ?"
        )))
        .bind(format_utc(since))
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(CatalogError::query("list recently failed runs"))?;
        rows.iter().map(run_from_row).collect()
    }

    async fn add_inventory(
        &self,
        databases: &mut BTreeMap<DatabaseKey, DatabaseOverview>,
    ) -> Result<(), CatalogError> {
        let rows = sqlx::query(
            "SELECT d.id, i.name AS instance, d.name AS database, d.recovery_model, d.state
             FROM databases d JOIN instances i ON i.id = d.instance_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(CatalogError::query("list inventoried databases"))?;

        for row in &rows {
            let row = RowReader::new(row, "databases", "id")?;
            let entry = entry(databases, row.get("instance")?, row.get("database")?);
            entry.recovery_model = row.get("recovery_model")?;
            entry.state = row.get("state")?;
        }
        Ok(())
    }

    async fn add_last_runs(
        &self,
        databases: &mut BTreeMap<DatabaseKey, DatabaseOverview>,
    ) -> Result<(), CatalogError> {
        let rows = sqlx::query(
            // latest_runs names each database's newest run; triggers keep it current.
            "SELECT r.id, r.instance, r.database, r.backup_type,
                    COALESCE(r.requested_type, r.backup_type) AS requested_type, r.reason,
                    r.status, r.skip_kind, r.phase, r.error, r.started_at, r.finished_at
             FROM latest_runs l JOIN runs r ON r.id = l.run_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(CatalogError::query("find the last run of each database"))?;

        for row in &rows {
            let row = RowReader::new(row, "runs", "id")?;
            let status: String = row.get("status")?;
            let skip_kind = read_skip_kind(&row)?;
            let last_run = LastRun {
                id: row.id(),
                backup_type: row.backup_type("backup_type")?,
                requested_type: row.backup_type("requested_type")?,
                reason: row.get("reason")?,
                status: status
                    .parse()
                    .map_err(|()| row.invalid("status", status.clone(), "not a run status"))?,
                skip_kind,
                phase: row.get("phase")?,
                error: row.get("error")?,
                started_at: row.utc("started_at")?,
                finished_at: row.optional_utc("finished_at")?,
            };
            entry(databases, row.get("instance")?, row.get("database")?).last_run = Some(last_run);
        }
        Ok(())
    }

    async fn add_last_backups(
        &self,
        databases: &mut BTreeMap<DatabaseKey, DatabaseOverview>,
    ) -> Result<(), CatalogError> {
        let rows = sqlx::query(
            // latest_backups names the newest backup of each database and type that is
            // neither pruned nor marked as failed verification; triggers keep it current.
            "SELECT b.id, b.instance, b.database, b.backup_type, b.finished_at, b.size_bytes
             FROM latest_backups l JOIN backups b ON b.id = l.backup_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(CatalogError::query(
            "find the newest backups of each database",
        ))?;

        for row in &rows {
            let row = RowReader::new(row, "backups", "id")?;
            let last = LastBackup {
                id: row.id(),
                finished_at: row.utc("finished_at")?,
                size_bytes: row.unsigned("size_bytes")?,
            };
            let entry = entry(databases, row.get("instance")?, row.get("database")?);
            match row.backup_type("backup_type")? {
                BackupType::Full => entry.last_full = Some(last),
                BackupType::Diff => entry.last_diff = Some(last),
                BackupType::Log => entry.last_log = Some(last),
            }
        }
        Ok(())
    }
}

fn entry(
    databases: &mut BTreeMap<DatabaseKey, DatabaseOverview>,
    instance: String,
    database: String,
) -> &mut DatabaseOverview {
    databases
        .entry((instance.clone(), database.clone()))
        .or_insert_with(|| DatabaseOverview {
            instance,
            database,
            recovery_model: None,
            state: None,
            last_full: None,
            last_diff: None,
            last_log: None,
            last_run: None,
        })
}
