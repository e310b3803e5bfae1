//! One pass of the alert evaluator: turns finished runs and RPO states into alerts, with
//! de-duplication and a rate limit per database, problem and backup type.

use time::OffsetDateTime;

use super::message::short_error;
use super::AlertError;
use crate::catalog::{AlertKey, AlertProblem, Catalog, FinishedRun, NewAlert, StateChange};
use crate::fleet::{AlertEvent, Alerts};

/// Time a finished run waits before the evaluator reads it. A job stamps `finished_at`
/// just before its commit, so a run that commits after a pass with a slightly older
/// stamp is still read by a later pass.
pub const SETTLE_TIME: time::Duration = time::Duration::seconds(5);

/// Protection of one database against its RPO, as the evaluator needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpoStatus {
    pub instance: String,
    pub database: String,
    pub state: RpoState,
    /// The late or missing backup types, such as "log backup 3h 10m old, RPO 30m"; empty
    /// when ok.
    pub detail: String,
    /// Time a `Missing` state must last before it alerts: the smallest RPO of the missing
    /// types. A database added to the fleet has no backup until its first slot, and
    /// alerting it at once would flood a new fleet.
    pub missing_grace: Option<time::Duration>,
}

/// The worst state of a database's backup types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RpoState {
    Ok,
    Late,
    Missing,
}

/// Counts of one pass, for the log and for tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassSummary {
    /// Alerts recorded, recoveries included.
    pub alerts: usize,
    /// Repeats held back by `min_interval`.
    pub suppressed: usize,
}

/// Evaluates runs and RPO states against the stored alert state.
pub struct Evaluator<'a> {
    pub catalog: &'a Catalog,
    pub alerts: &'a Alerts,
    /// Delivery targets that each new alert gets a pending delivery for.
    pub targets: Vec<String>,
    /// Age a finished run needs before this evaluator reads it; [`SETTLE_TIME`] in
    /// `serve`.
    pub settle: time::Duration,
}

impl Evaluator<'_> {
    /// Reads the runs that finished since the last pass and the RPO states, and records
    /// the alerts they cause.
    ///
    /// The first pass on a catalogue only sets the cursor to `now`, so that starting
    /// `serve` on an old catalogue does not alert its whole history.
    pub async fn evaluate(
        &self,
        now: OffsetDateTime,
        rpo: Option<&[RpoStatus]>,
    ) -> Result<PassSummary, AlertError> {
        let mut summary = PassSummary::default();
        let until = now - self.settle;
        match self.catalog.alert_cursor().await? {
            None => self.catalog.set_alert_cursor(until).await?,
            Some(after) if after < until => {
                let runs = self.catalog.runs_finished_between(after, until).await?;
                for run in &runs {
                    self.evaluate_run(run, now, &mut summary).await?;
                }
                self.catalog.set_alert_cursor(until).await?;
            }
            Some(_) => {}
        }
        for status in rpo.unwrap_or_default() {
            self.evaluate_rpo(status, now, &mut summary).await?;
        }
        Ok(summary)
    }

    async fn evaluate_run(
        &self,
        run: &FinishedRun,
        now: OffsetDateTime,
        summary: &mut PassSummary,
    ) -> Result<(), AlertError> {
        let key = AlertKey {
            instance: run.instance.clone(),
            database: run.database.clone(),
            problem: AlertProblem::Failure,
            backup_type: Some(run.backup_type),
        };
        if run.succeeded {
            let message = format!(
                "{} backup of database {} on instance {} succeeded again (run {}) after a \
                 failure alert",
                run.backup_type, run.database, run.instance, run.id
            );
            return self
                .recover(&key, Some(run.id), message, now, summary)
                .await;
        }
        let error = run
            .error
            .as_deref()
            .map_or_else(|| "no error was recorded".to_string(), short_error);
        let message = format!(
            "{} backup of database {} on instance {} failed (run {}): {error}",
            run.backup_type, run.database, run.instance, run.id
        );
        let alert = new_alert(AlertEvent::Failure, &key, Some(run.id), message);
        self.raise(&key, alert, now, summary).await
    }

    async fn evaluate_rpo(
        &self,
        status: &RpoStatus,
        now: OffsetDateTime,
        summary: &mut PassSummary,
    ) -> Result<(), AlertError> {
        let key = AlertKey {
            instance: status.instance.clone(),
            database: status.database.clone(),
            problem: AlertProblem::Rpo,
            backup_type: None,
        };
        let problem = match status.state {
            RpoState::Ok => {
                let message = format!(
                    "database {} on instance {} is back within its RPO",
                    status.database, status.instance
                );
                return self.recover(&key, None, message, now, summary).await;
            }
            RpoState::Late => "is late against its RPO",
            RpoState::Missing => "has no backup within its RPO",
        };
        if status.state == RpoState::Missing && !self.missing_long_enough(&key, status, now).await?
        {
            return Ok(());
        }
        let mut message = format!(
            "database {} on instance {} {problem}",
            status.database, status.instance
        );
        if !status.detail.is_empty() {
            message.push_str(": ");
            message.push_str(&status.detail);
        }
        let alert = new_alert(AlertEvent::Rpo, &key, None, message);
        self.raise(&key, alert, now, summary).await
    }

    /// Returns whether a missing database has been missing for its grace, and records
    /// the first pass that saw it missing.
    async fn missing_long_enough(
        &self,
        key: &AlertKey,
        status: &RpoStatus,
        now: OffsetDateTime,
    ) -> Result<bool, AlertError> {
        let state = self.catalog.alert_state(key).await?;
        if state.is_some_and(|state| state.open) {
            return Ok(true);
        }
        let Some(grace) = status.missing_grace else {
            return Ok(true);
        };
        match state.and_then(|state| state.problem_since) {
            Some(since) => Ok(now - since >= grace),
            None => {
                let change = StateChange::Observed { at: now };
                self.catalog
                    .record_alert(key, change, None, &[], now)
                    .await?;
                Ok(false)
            }
        }
    }

    /// Records `alert` unless its event is turned off or the problem was alerted less than
    /// `min_interval` ago.
    async fn raise(
        &self,
        key: &AlertKey,
        alert: NewAlert,
        now: OffsetDateTime,
        summary: &mut PassSummary,
    ) -> Result<(), AlertError> {
        if !self.alerts.sends(alert.event) {
            return Ok(());
        }
        let state = self.catalog.alert_state(key).await?;
        let min_interval =
            time::Duration::try_from(self.alerts.min_interval).unwrap_or(time::Duration::MAX);
        let recent = state.is_some_and(|state| {
            let last_sent = state.last_sent_at.unwrap_or(OffsetDateTime::UNIX_EPOCH);
            state.open && now - last_sent < min_interval
        });
        if recent {
            self.catalog
                .record_alert(key, StateChange::Suppressed, None, &[], now)
                .await?;
            summary.suppressed += 1;
            return Ok(());
        }
        let change = StateChange::Alerted { at: now };
        let id = self
            .catalog
            .record_alert(key, change, Some(&alert), &self.targets, now)
            .await?;
        tracing::warn!(
            instance = %key.instance,
            database = %key.database,
            event = %alert.event,
            run_id = ?alert.run_id,
            alert_id = ?id,
            "alert raised: {}",
            alert.message
        );
        summary.alerts += 1;
        Ok(())
    }

    /// Closes an open problem of `key` and records a recovery alert for it. Nothing
    /// happens when the problem is not open.
    async fn recover(
        &self,
        key: &AlertKey,
        run_id: Option<i64>,
        message: String,
        now: OffsetDateTime,
        summary: &mut PassSummary,
    ) -> Result<(), AlertError> {
        let state = self.catalog.alert_state(key).await?;
        let Some(state) = state else {
            return Ok(());
        };
        if !state.open {
            // A problem seen but never alerted ends without a recovery alert.
            if state.problem_since.is_some() {
                self.catalog
                    .record_alert(key, StateChange::Closed, None, &[], now)
                    .await?;
            }
            return Ok(());
        }
        let alert = new_alert(AlertEvent::Recovery, key, run_id, message);
        let alert = self.alerts.sends(AlertEvent::Recovery).then_some(alert);
        let targets = if alert.is_some() {
            self.targets.as_slice()
        } else {
            &[]
        };
        let id = self
            .catalog
            .record_alert(key, StateChange::Closed, alert.as_ref(), targets, now)
            .await?;
        if let Some(alert) = alert {
            tracing::info!(
                instance = %key.instance,
                database = %key.database,
                run_id = ?run_id,
                alert_id = ?id,
                "recovery alert raised: {}",
                alert.message
            );
            summary.alerts += 1;
        }
        Ok(())
    }
}

fn new_alert(event: AlertEvent, key: &AlertKey, run_id: Option<i64>, message: String) -> NewAlert {
    NewAlert {
        event,
        instance: key.instance.clone(),
        database: key.database.clone(),
        backup_type: key.backup_type,
        run_id,
        message,
    }
}
