//! Operator actions: "run now" for a database or a whole instance, which the serve
//! process runs through the same job path and limits as the scheduler, and "verify now"
//! for a stored backup.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};

use super::audit;
use super::auth::CurrentUser;
use super::error::WebError;
use super::Site;
use crate::backup::BackupType;
use crate::catalog::AuditOutcome;
use crate::integrity::{self, Depth};
use crate::job::{self, JobContext, JobEvent, JobRequest, Trigger};

/// How long a "run now" POST waits for its run to start before it redirects to `/queue`
/// instead of the run's page: a job may wait for a slot far longer.
const START_WAIT: Duration = Duration::from_secs(10);

/// A backup that the site requests the serve process to run now.
#[derive(Debug)]
pub struct RunRequest {
    pub instance: String,
    /// One database, or `None` for every database the instance's selection lists.
    pub database: Option<String>,
    pub backup_type: BackupType,
    /// The user who asked, for the log.
    pub requested_by: String,
    /// Receives the run id once the job started its run, or why it did not start.
    pub started: oneshot::Sender<RunStart>,
}

/// Outcome of a [`RunRequest`] at handover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunStart {
    /// The job started run `0`.
    Started(i64),
    /// Jobs were queued for several databases; `/queue` and `/runs` show them.
    Queued,
    /// No job started, for the reason given.
    Rejected(String),
}

/// Sender half of the channel over which the site hands runs to the serve process.
pub type RunSender = mpsc::Sender<RunRequest>;

/// Runs the backups the site requests, each through [`job::run_batch`] with the
/// process's limits and stop handling, until every sender is dropped.
pub async fn run_requested_backups(
    contexts: tokio::sync::watch::Receiver<JobContext>,
    mut requests: mpsc::Receiver<RunRequest>,
) {
    while let Some(request) = requests.recv().await {
        // Each request runs under the fleet file in force when it arrives.
        let ctx = contexts.borrow().clone();
        tokio::spawn(run_requested(ctx, request));
    }
}

async fn run_requested(mut ctx: JobContext, request: RunRequest) {
    let Some(instance) = ctx.fleet.instance(&request.instance).cloned() else {
        let reason = format!(
            "Instance {} is not in the fleet file this process serves.",
            request.instance
        );
        let _ = request.started.send(RunStart::Rejected(reason));
        return;
    };
    tracing::info!(
        instance = %instance.name,
        database = request.database.as_deref().unwrap_or("*"),
        backup_type = %request.backup_type,
        user = %request.requested_by,
        "backup requested on the admin site"
    );

    let Some(database) = request.database else {
        let databases = match job::select_and_record_databases(&ctx, &instance).await {
            Ok(databases) => databases,
            Err(error) => {
                tracing::error!(instance = %instance.name, %error, "requested backup could not list databases");
                let _ = request.started.send(RunStart::Rejected(error.to_string()));
                return;
            }
        };
        let requests = databases
            .into_iter()
            .map(|database| JobRequest {
                instance: instance.clone(),
                database: database.name,
                backup_type: request.backup_type,
                trigger: Trigger::Manual,
                slot: None,
            })
            .collect();
        let _ = request.started.send(RunStart::Queued);
        job::run_batch(&ctx, requests, ctx.fleet.service.max_parallel_jobs).await;
        return;
    };

    // The job sends its run id with its first event to this context's own channel, which
    // passes every event on to the process's channel, so `/runs/live` shows the run too.
    let (events, mut received) = mpsc::unbounded_channel::<JobEvent>();
    let process_events = ctx.events.replace(events);
    let forward = |event: JobEvent| {
        if let Some(process_events) = &process_events {
            // A closed receiver means the process stopped watching; the job goes on.
            let _ = process_events.send(event);
        }
    };
    let job = JobRequest {
        instance,
        database,
        backup_type: request.backup_type,
        trigger: Trigger::Manual,
        slot: None,
    };
    let batch = job::run_batch(&ctx, vec![job], 1);
    tokio::pin!(batch);
    let mut started = Some(request.started);
    let results = loop {
        tokio::select! {
            results = &mut batch => break results,
            Some(event) = received.recv() => {
                if let Some(started) = started.take() {
                    let _ = started.send(RunStart::Started(event.run_id));
                }
                forward(event);
            }
        }
    };
    // The last events may still wait in the channel when the batch ends first.
    while let Ok(event) = received.try_recv() {
        forward(event);
    }
    if let Some(started) = started.take() {
        let reason = match results.into_iter().next() {
            Some((_, Err(failure))) => failure.to_string(),
            _ => "The job ended before it started a run.".to_string(),
        };
        let _ = started.send(RunStart::Rejected(reason));
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct RunForm {
    backup_type: String,
}

/// Starts a backup of one database and redirects to its run.
pub(super) async fn run_database(
    State(site): State<Site>,
    Extension(user): Extension<CurrentUser>,
    Path((instance, database)): Path<(String, String)>,
    Form(form): Form<RunForm>,
) -> Result<Response, WebError> {
    check_database_known(&site, &instance, &database).await?;
    request_run(&site, &user, instance, Some(database), &form).await
}

/// Starts a backup of every selected database of an instance and redirects to `/queue`.
pub(super) async fn run_instance(
    State(site): State<Site>,
    Extension(user): Extension<CurrentUser>,
    Path(instance): Path<String>,
    Form(form): Form<RunForm>,
) -> Result<Response, WebError> {
    check_instance_known(&site, &instance).await?;
    request_run(&site, &user, instance, None, &form).await
}

async fn request_run(
    site: &Site,
    user: &CurrentUser,
    instance: String,
    database: Option<String>,
    form: &RunForm,
) -> Result<Response, WebError> {
    let backup_type = parse_backup_type(&form.backup_type)?;
    match start_run(site, user, instance, database, backup_type).await? {
        RunStart::Started(run_id) => Ok(Redirect::to(&format!("/runs/{run_id}")).into_response()),
        RunStart::Queued => Ok(Redirect::to("/queue").into_response()),
        RunStart::Rejected(reason) => Err(WebError::Conflict(reason)),
    }
}

/// Parses the backup type of a "run now" request.
pub(super) fn parse_backup_type(text: &str) -> Result<BackupType, WebError> {
    text.parse().map_err(|_| {
        WebError::BadRequest(format!(
            "Invalid backup type {text:?}; use full, diff or log."
        ))
    })
}

/// Hands a backup of one database, or of every selected database of `instance`, to the
/// job runner, waits up to [`START_WAIT`] for its run to start, and audits the request.
/// Returns [`RunStart::Rejected`] when the job did not start.
pub(super) async fn start_run(
    site: &Site,
    user: &CurrentUser,
    instance: String,
    database: Option<String>,
    backup_type: BackupType,
) -> Result<RunStart, WebError> {
    let Some(sender) = &site.state.run_requests else {
        return Err(WebError::Unavailable(
            "This process runs no jobs; start backups from `bakfleet serve`.".to_string(),
        ));
    };
    let target = match &database {
        Some(database) => format!("{instance}/{database}"),
        None => instance.clone(),
    };

    let (started, start) = oneshot::channel();
    let request = RunRequest {
        instance,
        database,
        backup_type,
        requested_by: user.name.clone(),
        started,
    };
    sender
        .send(request)
        .await
        .map_err(|_| WebError::Unavailable("The job runner has stopped.".to_string()))?;
    let outcome = match tokio::time::timeout(START_WAIT, start).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(_)) => RunStart::Rejected("The job runner dropped the request.".to_string()),
        // Still waiting for a slot: the queue shows it.
        Err(_) => RunStart::Queued,
    };

    let (outcome_code, detail) = match &outcome {
        RunStart::Started(run_id) => (AuditOutcome::Ok, format!("{backup_type}, run {run_id}")),
        RunStart::Queued => (AuditOutcome::Ok, format!("{backup_type}, queued")),
        RunStart::Rejected(reason) => (AuditOutcome::Failed, format!("{backup_type}: {reason}")),
    };
    audit::record(site, &user.name, "run", Some(target), outcome_code)
        .client(&user.client)
        .detail(detail)
        .save()
        .await;
    Ok(outcome)
}

/// Checks that the catalogue contains `database` on `instance`.
pub(super) async fn check_database_known(
    site: &Site,
    instance: &str,
    database: &str,
) -> Result<(), WebError> {
    let known = site
        .state
        .catalog
        .fleet_overview()
        .await?
        .iter()
        .any(|row| row.instance == instance && row.database == database);
    if !known {
        return Err(WebError::NotFound(format!(
            "No database {database:?} on instance {instance:?} is in the catalogue."
        )));
    }
    Ok(())
}

/// Checks that `instance` is in the fleet file in force, or in the catalogue when the
/// site serves no fleet file, so that an unknown name gets 404 before any run is requested.
pub(super) async fn check_instance_known(site: &Site, instance: &str) -> Result<(), WebError> {
    let known = match &site.state.fleet {
        Some(fleet) => fleet.current().instance(instance).is_some(),
        None => site
            .state
            .catalog
            .fleet_overview()
            .await?
            .iter()
            .any(|row| row.instance == instance),
    };
    if !known {
        return Err(WebError::NotFound(format!(
            "No instance {instance:?} is in the fleet file; check the name on the overview."
        )));
    }
    Ok(())
}

/// Re-hashes a stored backup file against the catalogue, records the result in the
/// audit log, and redirects to the backup's page, which shows it.
pub(super) async fn verify_backup(
    State(site): State<Site>,
    Extension(user): Extension<CurrentUser>,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let (backup_id, _) = verify_now(&site, &user, &id).await?;
    Ok(Redirect::to(&format!("/backups/{backup_id}")).into_response())
}

/// Re-hashes the files of backup `id` against the catalogue, marks the backup as failed
/// verification or clears its mark (see [`integrity::check_one`]), and audits the
/// result. Returns the backup id and `None` when everything matched, else the finding.
pub(super) async fn verify_now(
    site: &Site,
    user: &CurrentUser,
    id: &str,
) -> Result<(i64, Option<String>), WebError> {
    let not_found = || WebError::NotFound(format!("No backup with id {id:?} is in the catalogue."));
    let backup_id: i64 = id.parse().map_err(|_| not_found())?;
    let backup = site
        .state
        .catalog
        .backup(backup_id)
        .await?
        .ok_or_else(not_found)?;
    let Some(store) = &site.state.store else {
        return Err(WebError::Unavailable(
            "This process was started without the store; verify with `bakfleet verify`."
                .to_string(),
        ));
    };
    // Retention deleted a pruned backup's file on purpose, so a check would only mark it
    // missing.
    let pruned = site
        .state
        .catalog
        .pruned_backup_ids(&backup.instance, &backup.database)
        .await?;
    if pruned.contains(&backup_id) {
        return Err(WebError::Conflict(format!(
            "Backup {backup_id} was deleted by retention, so its file is no longer in the \
             store and there is nothing to verify."
        )));
    }

    let finding = integrity::check_one(&site.state.catalog, store, &backup, Depth::Hash)
        .await
        .map_err(|error| WebError::Internal(error.to_string()))?
        .map(|finding| finding.to_string());
    let (outcome, detail) = match &finding {
        None => (
            AuditOutcome::Ok,
            format!("size and SHA-256 match the catalogue ({})", backup.sha256),
        ),
        Some(finding) => (AuditOutcome::Failed, finding.clone()),
    };
    audit::record(
        site,
        &user.name,
        "verify",
        Some(backup_target(backup_id)),
        outcome,
    )
    .client(&user.client)
    .detail(detail)
    .save()
    .await;
    Ok((backup_id, finding))
}

/// Returns the audit log target of a backup.
pub(super) fn backup_target(backup_id: i64) -> String {
    format!("backup {backup_id}")
}
