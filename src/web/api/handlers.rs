//! Handlers of `/api/v1`: each reads the catalogue or runs an action through the same
//! code as the admin site's pages and forms, and returns a JSON body.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use time::OffsetDateTime;

use super::super::actions::{
    check_database_known, check_instance_known, parse_backup_type, start_run, verify_now,
};
use super::super::auth::CurrentUser;
use super::super::error::WebError;
use super::super::Site;
use super::model::{
    Backup, BackupSummary, Database, DatabaseHealth, ErrorBody, FleetHealth, Instance, LogLine,
    Page, PageQuery, Plan, PlanQuery, Run, RunAccepted, RunNow, RunQuery, Verification,
};
use crate::catalog::RunStatus;
use crate::chain::Target;
use crate::protection::ProtectionState;
use crate::restore_plan::{build_plan, parse_target_time, PlanError};
use crate::restore_script::ScriptOptions;
use crate::web::RunStart;

/// Items per page when the request gives no `limit`.
const DEFAULT_LIMIT: i64 = 50;
/// Maximum `limit` of a page.
const MAX_LIMIT: i64 = 500;

type ApiResult<T> = Result<Json<T>, WebError>;

/// Assesses every database of the fleet in force against its policy's RPO.
#[utoipa::path(get, path = "/api/v1/health", tag = "fleet",
    responses((status = 200, body = FleetHealth), (status = 401, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub(in crate::web) async fn health(State(site): State<Site>) -> ApiResult<FleetHealth> {
    let now = OffsetDateTime::now_utc();
    let databases = super::assess_fleet(&site, now).await?;
    let count = |state: ProtectionState| {
        databases
            .iter()
            .filter(|database| database.state == state)
            .count()
    };
    Ok(Json(FleetHealth {
        assessed_at: now,
        ok: count(ProtectionState::Ok),
        late: count(ProtectionState::Late),
        missing: count(ProtectionState::Missing),
        databases: databases.iter().map(DatabaseHealth::from).collect(),
    }))
}

/// Lists the instances of the catalogue.
#[utoipa::path(get, path = "/api/v1/instances", tag = "fleet",
    responses((status = 200, body = [Instance]), (status = 401, body = ErrorBody)))]
pub(in crate::web) async fn instances(State(site): State<Site>) -> ApiResult<Vec<Instance>> {
    let rows = site.state.catalog.instances().await?;
    Ok(Json(rows.into_iter().map(Instance::from).collect()))
}

/// Lists the databases of an instance with their newest backups and last run.
#[utoipa::path(get, path = "/api/v1/instances/{instance}/databases", tag = "fleet",
    params(("instance" = String, Path, description = "Instance name from fleet.toml")),
    responses((status = 200, body = [Database]), (status = 404, body = ErrorBody)))]
pub(in crate::web) async fn databases(
    State(site): State<Site>,
    Path(instance): Path<String>,
) -> ApiResult<Vec<Database>> {
    let catalog = &site.state.catalog;
    let databases: Vec<Database> = catalog
        .fleet_overview()
        .await?
        .into_iter()
        .filter(|row| row.instance == instance)
        .map(Database::from)
        .collect();
    if databases.is_empty() {
        let known = catalog
            .instances()
            .await?
            .iter()
            .any(|row| row.name == instance);
        if !known {
            return Err(WebError::NotFound(format!(
                "No instance {instance:?} is in the catalogue."
            )));
        }
    }
    Ok(Json(databases))
}

/// Lists a database's backups that retention has not deleted, newest catalogued first.
#[utoipa::path(get, path = "/api/v1/instances/{instance}/databases/{database}/backups",
    tag = "backups",
    params(("instance" = String, Path), ("database" = String, Path), PageQuery),
    responses((status = 200, body = Page<BackupSummary>), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub(in crate::web) async fn backups(
    State(site): State<Site>,
    Path((instance, database)): Path<(String, String)>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult<Page<BackupSummary>> {
    let query = read_query(query)?;
    let limit = page_limit(query.limit)?;
    check_database_known(&site, &instance, &database).await?;
    let rows = site
        .state
        .catalog
        .backups_page(&instance, &database, query.before, limit)
        .await?;
    let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
    let mut failures = site
        .state
        .catalog
        .verification_failures_with_ids(&ids)
        .await?;
    let items: Vec<BackupSummary> = rows
        .iter()
        .map(|row| BackupSummary::new(row, failures.remove(&row.id)))
        .collect();
    let next_before = next_cursor(&items, limit, |item| item.id);
    Ok(Json(Page { items, next_before }))
}

/// Returns one backup with its header fields, LSNs and media families.
#[utoipa::path(get, path = "/api/v1/backups/{id}", tag = "backups",
    params(("id" = i64, Path, description = "Backup id")),
    responses((status = 200, body = Backup), (status = 404, body = ErrorBody)))]
pub(in crate::web) async fn backup(
    State(site): State<Site>,
    Path(id): Path<String>,
) -> ApiResult<Backup> {
    let catalog = &site.state.catalog;
    let not_found = || WebError::NotFound(format!("No backup with id {id:?} is in the catalogue."));
    let backup_id: i64 = id.parse().map_err(|_| not_found())?;
    let row = catalog.backup(backup_id).await?.ok_or_else(not_found)?;
    let families = catalog.backup_families(&row).await?;
    let pruned = catalog
        .pruned_backup_ids(&row.instance, &row.database)
        .await?
        .contains(&backup_id);
    let failure = catalog.verification_failure(backup_id).await?;
    Ok(Json(Backup::new(row, families, pruned, failure)))
}

/// Lists runs of every database, newest first, optionally with one status.
#[utoipa::path(get, path = "/api/v1/runs", tag = "runs", params(RunQuery),
    responses((status = 200, body = Page<Run>), (status = 400, body = ErrorBody)))]
pub(in crate::web) async fn runs(
    State(site): State<Site>,
    query: Result<Query<RunQuery>, QueryRejection>,
) -> ApiResult<Page<Run>> {
    let query = read_query(query)?;
    let limit = page_limit(query.limit)?;
    let status = match query.status.as_deref() {
        None => None,
        Some(text) => Some(text.parse::<RunStatus>().map_err(|()| {
            WebError::BadRequest(format!(
                "Invalid status {text:?}; use running, succeeded, failed, skipped or interrupted."
            ))
        })?),
    };
    let rows = site
        .state
        .catalog
        .runs_page(status, query.before, limit)
        .await?;
    let items: Vec<Run> = rows.into_iter().map(Run::from).collect();
    let next_before = next_cursor(&items, limit, |item| item.id);
    Ok(Json(Page { items, next_before }))
}

/// Returns one run with its error and notes.
#[utoipa::path(get, path = "/api/v1/runs/{id}", tag = "runs",
    params(("id" = i64, Path, description = "Run id")),
    responses((status = 200, body = Run), (status = 404, body = ErrorBody)))]
pub(in crate::web) async fn run(
    State(site): State<Site>,
    Path(id): Path<String>,
) -> ApiResult<Run> {
    let not_found = || WebError::NotFound(format!("No run with id {id:?} is in the catalogue."));
    let run_id: i64 = id.parse().map_err(|_| not_found())?;
    let row = site
        .state
        .catalog
        .run(run_id)
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(Run::from(row)))
}

/// Returns the log of one run, oldest line first: its phases, the T-SQL it sent, retries,
/// warnings and the error it ended with. A running run's log grows until it ends.
#[utoipa::path(get, path = "/api/v1/runs/{id}/log", tag = "runs",
    params(("id" = i64, Path, description = "Run id")),
    responses((status = 200, body = Vec<LogLine>), (status = 404, body = ErrorBody)))]
pub(in crate::web) async fn run_log(
    State(site): State<Site>,
    Path(id): Path<String>,
) -> ApiResult<Vec<LogLine>> {
    let not_found = || WebError::NotFound(format!("No run with id {id:?} is in the catalogue."));
    let run_id: i64 = id.parse().map_err(|_| not_found())?;
    site.state
        .catalog
        .run(run_id)
        .await?
        .ok_or_else(not_found)?;
    let lines = site
        .state
        .catalog
        .run_log(run_id, crate::run_log::MAX_LINES_PER_RUN + 1)
        .await?;
    Ok(Json(lines.into_iter().map(LogLine::from).collect()))
}

/// Starts a backup of one database now, through the job runner and its limits.
#[utoipa::path(post, path = "/api/v1/instances/{instance}/databases/{database}/run",
    tag = "actions", request_body = RunNow,
    params(("instance" = String, Path), ("database" = String, Path)),
    responses((status = 202, body = RunAccepted), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(in crate::web) async fn run_database(
    State(site): State<Site>,
    Extension(user): Extension<CurrentUser>,
    Path((instance, database)): Path<(String, String)>,
    body: Result<Json<RunNow>, JsonRejection>,
) -> Result<(StatusCode, Json<RunAccepted>), WebError> {
    let body = read_json(body)?;
    let backup_type = parse_backup_type(&body.backup_type)?;
    check_database_known(&site, &instance, &database).await?;
    let outcome = start_run(&site, &user, instance, Some(database), backup_type).await?;
    accepted(outcome)
}

/// Starts a backup of every database the instance's selection lists.
#[utoipa::path(post, path = "/api/v1/instances/{instance}/run", tag = "actions",
    request_body = RunNow, params(("instance" = String, Path)),
    responses((status = 202, body = RunAccepted), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(in crate::web) async fn run_instance(
    State(site): State<Site>,
    Extension(user): Extension<CurrentUser>,
    Path(instance): Path<String>,
    body: Result<Json<RunNow>, JsonRejection>,
) -> Result<(StatusCode, Json<RunAccepted>), WebError> {
    let body = read_json(body)?;
    check_instance_known(&site, &instance).await?;
    let backup_type = parse_backup_type(&body.backup_type)?;
    let outcome = start_run(&site, &user, instance, None, backup_type).await?;
    accepted(outcome)
}

/// Re-hashes a stored backup's files against the catalogue now. A mismatch marks the
/// backup as failed verification, and a match clears such a mark.
#[utoipa::path(post, path = "/api/v1/backups/{id}/verify", tag = "actions",
    params(("id" = i64, Path, description = "Backup id")),
    responses((status = 200, body = Verification), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(in crate::web) async fn verify(
    State(site): State<Site>,
    Extension(user): Extension<CurrentUser>,
    Path(id): Path<String>,
) -> ApiResult<Verification> {
    let (backup_id, finding) = verify_now(&site, &user, &id).await?;
    Ok(Json(Verification {
        backup_id,
        ok: finding.is_none(),
        detail: finding.unwrap_or_else(|| "size and SHA-256 match the catalogue".to_string()),
    }))
}

/// Plans a restore of a database to a point in time and writes its T-SQL.
#[utoipa::path(get, path = "/api/v1/instances/{instance}/databases/{database}/restore-plan",
    tag = "backups", params(("instance" = String, Path), ("database" = String, Path), PlanQuery),
    responses((status = 200, body = Plan), (status = 400, body = ErrorBody)))]
pub(in crate::web) async fn restore_plan(
    State(site): State<Site>,
    Path((instance, database)): Path<(String, String)>,
    query: Result<Query<PlanQuery>, QueryRejection>,
) -> ApiResult<Plan> {
    let query = read_query(query)?;
    let at = query
        .at
        .as_deref()
        .map(str::trim)
        .filter(|at| !at.is_empty());
    let target = match at {
        None => Target::Latest,
        Some(at) => Target::At(parse_target_time(at).map_err(WebError::BadRequest)?),
    };
    // Without the store, FROM DISK names paths relative to its root.
    let store_root = match &site.state.store {
        Some(store) => store.root(),
        None => std::path::Path::new(""),
    };
    let options = ScriptOptions::default();
    let catalog = &site.state.catalog;
    match build_plan(catalog, store_root, &instance, &database, target, &options).await {
        Ok(plan) => Ok(Json(Plan::from(plan))),
        Err(PlanError::Catalog(error)) => Err(WebError::Catalog(error)),
        Err(error) => Err(WebError::BadRequest(error.to_string())),
    }
}

fn page_limit(limit: Option<i64>) -> Result<i64, WebError> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(WebError::BadRequest(format!(
            "Invalid limit {limit}; use 1 to {MAX_LIMIT}."
        )));
    }
    Ok(limit)
}

/// Returns the `before` of the next page: the last id of a full page, else `None`.
fn next_cursor<T>(items: &[T], limit: i64, id: impl Fn(&T) -> i64) -> Option<i64> {
    let full = i64::try_from(items.len()).is_ok_and(|len| len == limit);
    if full {
        items.last().map(id)
    } else {
        None
    }
}

fn read_json<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, WebError> {
    body.map(|Json(body)| body).map_err(|rejection| {
        WebError::BadRequest(format!(
            "Invalid JSON body: {}; send Content-Type: application/json and {{\"type\": \"full\"}}.",
            rejection.body_text()
        ))
    })
}

fn read_query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, WebError> {
    query.map(|Query(query)| query).map_err(|rejection| {
        WebError::BadRequest(format!("Invalid query: {}", rejection.body_text()))
    })
}

fn accepted(outcome: RunStart) -> Result<(StatusCode, Json<RunAccepted>), WebError> {
    let body = match outcome {
        RunStart::Started(run_id) => RunAccepted {
            status: "started".to_string(),
            run_id: Some(run_id),
        },
        RunStart::Queued => RunAccepted {
            status: "queued".to_string(),
            run_id: None,
        },
        RunStart::Rejected(reason) => return Err(WebError::Conflict(reason)),
    };
    Ok((StatusCode::ACCEPTED, Json(body)))
}
