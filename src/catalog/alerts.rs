//! Alert state, the alert log and its deliveries: the alerts `serve` sent, to which
//! target, and the open problems, so that a restart neither re-sends an alert nor loses
//! a recovery.

use sqlx::sqlite::SqliteRow;
use sqlx::Row;
use time::OffsetDateTime;

use super::decode::RowReader;
use super::timestamp::format_utc;
use super::{Catalog, CatalogError};
use crate::backup::BackupType;
use crate::fleet::AlertEvent;

/// The problem an alert state tracks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertProblem {
    /// Runs of one backup type fail.
    Failure,
    /// The database is late or missing against its RPO.
    Rpo,
}

impl AlertProblem {
    fn as_str(self) -> &'static str {
        match self {
            AlertProblem::Failure => "failure",
            AlertProblem::Rpo => "rpo",
        }
    }
}

/// Key of the de-duplication and rate limit: one database, one problem, and for failures
/// one backup type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AlertKey {
    pub instance: String,
    pub database: String,
    pub problem: AlertProblem,
    /// The failing backup type; `None` for an RPO problem, which covers the database.
    pub backup_type: Option<BackupType>,
}

impl AlertKey {
    fn backup_type_text(&self) -> &'static str {
        self.backup_type.map_or("", BackupType::as_str)
    }
}

/// The stored state of one [`AlertKey`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertState {
    /// Whether the problem was alerted and has not recovered since.
    pub open: bool,
    /// Time of the newest alert of the problem; `None` before the first.
    pub last_sent_at: Option<OffsetDateTime>,
    /// Time of the first pass that saw the current problem, alerted or not.
    pub problem_since: Option<OffsetDateTime>,
    /// Repeats held back by the rate limit since that alert.
    pub suppressed: u32,
}

/// An alert to record and deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAlert {
    pub event: AlertEvent,
    pub instance: String,
    pub database: String,
    pub backup_type: Option<BackupType>,
    pub run_id: Option<i64>,
    pub message: String,
}

/// A recorded alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRow {
    pub id: i64,
    pub created_at: OffsetDateTime,
    pub event: AlertEvent,
    pub instance: String,
    pub database: String,
    pub backup_type: Option<BackupType>,
    pub run_id: Option<i64>,
    pub message: String,
}

/// A delivery of one alert to one target that has not succeeded yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingDelivery {
    pub alert: AlertRow,
    /// `webhook:N` (0-based, in file order) or `email`.
    pub target: String,
    /// Attempts made so far.
    pub attempts: u32,
}

/// A run that finished, as the alert evaluator reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedRun {
    pub id: i64,
    pub instance: String,
    pub database: String,
    pub backup_type: BackupType,
    /// `true` for `succeeded`, `false` for `failed`.
    pub succeeded: bool,
    pub error: Option<String>,
    pub finished_at: OffsetDateTime,
}

/// A change to the state of one key, written with the alert it causes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateChange {
    /// A pass saw the problem but does not alert yet; the first such pass starts
    /// `problem_since`.
    Observed { at: OffsetDateTime },
    /// An alert was sent at `at`, which opens the problem.
    Alerted { at: OffsetDateTime },
    /// A repeat was held back by the rate limit.
    Suppressed,
    /// The problem ended, alerted or not.
    Closed,
}

const ALERT_COLUMNS: &str =
    "a.id, a.created_at, a.event, a.instance, a.database, a.backup_type, a.run_id, a.message";

impl Catalog {
    /// Returns the time up to which finished runs were evaluated, or `None` before the
    /// first pass.
    pub async fn alert_cursor(&self) -> Result<Option<OffsetDateTime>, CatalogError> {
        let row = sqlx::query("SELECT id, finished_at FROM alert_cursor WHERE id = 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(CatalogError::query("read the alert cursor"))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let row = RowReader::new(&row, "alert_cursor", "id")?;
        row.utc("finished_at").map(Some)
    }

    /// Stores the time up to which finished runs were evaluated.
    pub async fn set_alert_cursor(&self, at: OffsetDateTime) -> Result<(), CatalogError> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "INSERT INTO alert_cursor (id, finished_at) VALUES (1, ?)
             ON CONFLICT (id) DO UPDATE SET finished_at = excluded.finished_at",
        )
        .bind(format_utc(at))
        .execute(&self.pool)
        .await
        .map_err(CatalogError::query("store the alert cursor"))?;
        Ok(())
    }

    /// Lists runs that succeeded or failed with `after < finished_at <= until`, oldest
    /// first. Skipped and interrupted runs are left out: neither is a backup failure.
    pub async fn runs_finished_between(
        &self,
        after: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Vec<FinishedRun>, CatalogError> {
        let rows = sqlx::query(
            "SELECT id, instance, database, backup_type, status, error, finished_at FROM runs
             WHERE status IN ('succeeded', 'failed') AND finished_at > ? AND finished_at <= ?
             ORDER BY finished_at, id",
        )
        .bind(format_utc(after))
        .bind(format_utc(until))
        .fetch_all(&self.pool)
        .await
        .map_err(CatalogError::query(
            "list runs finished since the last alert pass",
        ))?;
        rows.iter().map(finished_run_from_row).collect()
    }

    /// Returns the stored state of `key`, or `None` when it was never alerted.
    pub async fn alert_state(&self, key: &AlertKey) -> Result<Option<AlertState>, CatalogError> {
        let row = sqlx::query(
            "SELECT rowid AS id, open, last_sent_at, suppressed, problem_since FROM alert_states
             WHERE instance = ? AND database = ? AND kind = ? AND backup_type = ?",
        )
        .bind(&key.instance)
        .bind(&key.database)
        .bind(key.problem.as_str())
        .bind(key.backup_type_text())
        .fetch_optional(&self.pool)
        .await
        .map_err(CatalogError::query(format!(
            "read the alert state of database {:?} on instance {}",
            key.database, key.instance
        )))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let row = RowReader::new(&row, "alert_states", "id")?;
        let open: i64 = row.get("open")?;
        Ok(Some(AlertState {
            open: open != 0,
            last_sent_at: row.optional_utc("last_sent_at")?,
            problem_since: row.optional_utc("problem_since")?,
            suppressed: u32::try_from(row.unsigned("suppressed")?).unwrap_or(u32::MAX),
        }))
    }

    /// Applies `change` to the state of `key` and records `alert` with a pending delivery
    /// to each of `targets`, in one transaction, so that a crash between the two neither
    /// loses the alert nor sends it twice. Returns the alert's id.
    pub async fn record_alert(
        &self,
        key: &AlertKey,
        change: StateChange,
        alert: Option<&NewAlert>,
        targets: &[String],
        now: OffsetDateTime,
    ) -> Result<Option<i64>, CatalogError> {
        let _turn = self.write_turn().await;
        let action = || {
            format!(
                "record an alert of database {:?} on instance {}",
                key.database, key.instance
            )
        };
        let mut transaction = self
            .pool
            .begin()
            .await
            .map_err(CatalogError::query(action()))?;
        let statement = match change {
            StateChange::Observed { .. } => {
                "INSERT INTO alert_states
                     (instance, database, kind, backup_type, open, problem_since)
                 VALUES (?1, ?2, ?3, ?4, 0, ?5)
                 ON CONFLICT DO UPDATE SET problem_since = COALESCE(problem_since, ?5)"
            }
            StateChange::Alerted { .. } => {
                "INSERT INTO alert_states (instance, database, kind, backup_type, open,
                                           last_sent_at, suppressed, problem_since)
                 VALUES (?1, ?2, ?3, ?4, 1, ?5, 0, ?5)
                 ON CONFLICT DO UPDATE SET open = 1, last_sent_at = ?5, suppressed = 0,
                     problem_since = COALESCE(problem_since, ?5)"
            }
            StateChange::Suppressed => {
                "UPDATE alert_states SET suppressed = suppressed + 1
                 WHERE instance = ?1 AND database = ?2 AND kind = ?3 AND backup_type = ?4"
            }
            StateChange::Closed => {
                "UPDATE alert_states SET open = 0, suppressed = 0, problem_since = NULL
                 WHERE instance = ?1 AND database = ?2 AND kind = ?3 AND backup_type = ?4"
            }
        };
        let mut query = sqlx::query(statement)
            .bind(&key.instance)
            .bind(&key.database)
            .bind(key.problem.as_str())
            .bind(key.backup_type_text());
        if let StateChange::Observed { at } | StateChange::Alerted { at } = change {
            query = query.bind(format_utc(at));
        }
        query
            .execute(&mut *transaction)
            .await
            .map_err(CatalogError::query(action()))?;
        let mut alert_id = None;
        if let Some(alert) = alert {
            let id = insert_alert(&mut transaction, alert, targets, now)
                .await
                .map_err(CatalogError::query(action()))?;
            alert_id = Some(id);
        }
        transaction
            .commit()
            .await
            .map_err(CatalogError::query(action()))?;
        Ok(alert_id)
    }

    /// Lists deliveries that have not succeeded and were not given up, oldest alert first.
    pub async fn pending_deliveries(&self) -> Result<Vec<PendingDelivery>, CatalogError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ALERT_COLUMNS}, d.target, d.attempts FROM alert_deliveries d
             JOIN alert_log a ON a.id = d.alert_id
             WHERE d.status = 'pending' ORDER BY a.id, d.target"
        )))
        .fetch_all(&self.pool)
        .await
        .map_err(CatalogError::query("list pending alert deliveries"))?;
        let mut deliveries = Vec::new();
        for row in &rows {
            let alert = alert_from_row(row)?;
            let reader = RowReader::new(row, "alert_deliveries", "id")?;
            deliveries.push(PendingDelivery {
                alert,
                target: reader.get("target")?,
                attempts: u32::try_from(reader.unsigned("attempts")?).unwrap_or(u32::MAX),
            });
        }
        Ok(deliveries)
    }

    /// Marks one delivery sent.
    pub async fn mark_delivery_sent(
        &self,
        alert_id: i64,
        target: &str,
        at: OffsetDateTime,
    ) -> Result<(), CatalogError> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "UPDATE alert_deliveries SET status = 'sent', attempts = attempts + 1, sent_at = ?
             WHERE alert_id = ? AND target = ?",
        )
        .bind(format_utc(at))
        .bind(alert_id)
        .bind(target)
        .execute(&self.pool)
        .await
        .map_err(CatalogError::query(format!(
            "mark alert {alert_id} sent to {target}"
        )))?;
        Ok(())
    }

    /// Records a failed attempt of one delivery; with `give_up` the delivery is not tried
    /// again. `error` must not contain a secret.
    pub async fn mark_delivery_failed(
        &self,
        alert_id: i64,
        target: &str,
        error: &str,
        give_up: bool,
    ) -> Result<(), CatalogError> {
        let _turn = self.write_turn().await;
        let status = if give_up { "failed" } else { "pending" };
        sqlx::query(
            "UPDATE alert_deliveries SET status = ?, attempts = attempts + 1, last_error = ?
             WHERE alert_id = ? AND target = ?",
        )
        .bind(status)
        .bind(error)
        .bind(alert_id)
        .bind(target)
        .execute(&self.pool)
        .await
        .map_err(CatalogError::query(format!(
            "record a failed send of alert {alert_id} to {target}"
        )))?;
        Ok(())
    }

    /// Lists the newest alerts, newest first, for the site and for tests.
    pub async fn recent_alerts(&self, limit: i64) -> Result<Vec<AlertRow>, CatalogError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ALERT_COLUMNS} FROM alert_log a ORDER BY a.id DESC LIMIT ?"
        )))
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(CatalogError::query("list recent alerts"))?;
        rows.iter().map(alert_from_row).collect()
    }
}

async fn insert_alert(
    connection: &mut sqlx::SqliteConnection,
    alert: &NewAlert,
    targets: &[String],
    now: OffsetDateTime,
) -> Result<i64, sqlx::Error> {
    let result = sqlx::query(
        "INSERT INTO alert_log
             (created_at, event, instance, database, backup_type, run_id, message)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(format_utc(now))
    .bind(alert.event.as_str())
    .bind(&alert.instance)
    .bind(&alert.database)
    .bind(alert.backup_type.map_or("", BackupType::as_str))
    .bind(alert.run_id)
    .bind(&alert.message)
    .execute(&mut *connection)
    .await?;
    let alert_id = result.last_insert_rowid();
    for target in targets {
        sqlx::query(
            "INSERT INTO alert_deliveries (alert_id, target, status) VALUES (?, ?, 'pending')",
        )
        .bind(alert_id)
        .bind(target)
        .execute(&mut *connection)
        .await?;
    }
    Ok(alert_id)
}

fn finished_run_from_row(row: &SqliteRow) -> Result<FinishedRun, CatalogError> {
    let row = RowReader::new(row, "runs", "id")?;
    let status: String = row.get("status")?;
    Ok(FinishedRun {
        id: row.id(),
        instance: row.get("instance")?,
        database: row.get("database")?,
        backup_type: row.backup_type("backup_type")?,
        succeeded: status == "succeeded",
        error: row.get("error")?,
        finished_at: row.utc("finished_at")?,
    })
}

fn alert_from_row(row: &SqliteRow) -> Result<AlertRow, CatalogError> {
    let reader = RowReader::new(row, "alert_log", "id")?;
    let event: String = reader.get("event")?;
    let event = event
        .parse()
        .map_err(|()| reader.invalid("event", event.clone(), "not an alert event"))?;
    let backup_type: String = reader.get("backup_type")?;
    let backup_type = if backup_type.is_empty() {
        None
    } else {
        Some(reader.backup_type("backup_type")?)
    };
    Ok(AlertRow {
        id: reader.id(),
        created_at: reader.utc("created_at")?,
        event,
        instance: reader.get("instance")?,
        database: reader.get("database")?,
        backup_type,
        run_id: row
            .try_get("run_id")
            .map_err(CatalogError::query("read column run_id of alert_log"))?,
        message: reader.get("message")?,
    })
}
