//! Page handlers: each reads the catalogue and renders one template.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use minijinja::Value;
use serde::Serialize;
use time::OffsetDateTime;

use super::error::WebError;
use super::freshness::{classify, format_age, fresh_limits, Freshness};
use super::templates::STYLESHEET;
use super::Site;
use crate::backup::BackupType;
use crate::catalog::{DatabaseOverview, InstanceRow, LastBackup};

/// Maximum rows on the run and backup listings. Older rows stay in the catalogue.
// TODO: add paging so that older runs and backups can be browsed.
const LIST_LIMIT: i64 = 200;

/// One instance on the overview, with its databases.
#[derive(Debug, Serialize)]
struct InstanceView {
    name: String,
    /// Inventory facts; `None` for an instance known only from runs.
    facts: Option<InstanceRow>,
    databases: Vec<DatabaseView>,
}

/// One database on the overview or its own page, with a cell per backup type.
#[derive(Debug, Serialize)]
struct DatabaseView {
    #[serde(flatten)]
    overview: DatabaseOverview,
    cells: Vec<BackupCell>,
}

/// The newest backup of one type, with its age and colour.
#[derive(Debug, Serialize)]
struct BackupCell {
    backup_type: BackupType,
    backup: Option<LastBackup>,
    age: Option<String>,
    freshness: Freshness,
}

pub(super) async fn overview(State(site): State<Site>) -> Result<Html<String>, WebError> {
    let now = OffsetDateTime::now_utc();
    let instances = site.state.catalog.instances().await?;
    let databases = site.state.catalog.fleet_overview().await?;

    let instances = group_by_instance(instances, databases, now);
    site.render(
        "overview.html",
        minijinja::context! { instances, fresh_limits => fresh_limits() },
    )
}

pub(super) async fn database(
    State(site): State<Site>,
    Path((instance, database)): Path<(String, String)>,
) -> Result<Html<String>, WebError> {
    let now = OffsetDateTime::now_utc();
    let catalog = &site.state.catalog;
    let overview = catalog
        .database_overview(&instance, &database)
        .await?
        .ok_or_else(|| {
            WebError::NotFound(format!(
                "No database {database:?} on instance {instance:?} is in the catalogue."
            ))
        })?;
    let backups = catalog
        .backups_of_database(&instance, &database, LIST_LIMIT)
        .await?;
    let runs = catalog
        .runs_of_database(&instance, &database, LIST_LIMIT)
        .await?;

    site.render(
        "database.html",
        minijinja::context! {
            database => database_view(overview, now),
            backups,
            runs,
            list_limit => LIST_LIMIT,
        },
    )
}

pub(super) async fn backup(
    State(site): State<Site>,
    Path(id): Path<String>,
) -> Result<Html<String>, WebError> {
    let not_found = || WebError::NotFound(format!("No backup with id {id:?} is in the catalogue."));
    let backup_id: i64 = id.parse().map_err(|_| not_found())?;
    let backup = site
        .state
        .catalog
        .backup(backup_id)
        .await?
        .ok_or_else(not_found)?;
    let drills = site.state.catalog.drills_of_backup(backup_id).await?;
    let pruned = site
        .state
        .catalog
        .pruned_backup_ids(&backup.instance, &backup.database)
        .await?
        .contains(&backup_id);

    let verification = site
        .state
        .catalog
        .latest_audit("verify", &super::actions::backup_target(backup_id))
        .await?;

    site.render(
        "backup.html",
        minijinja::context! { backup, drills, pruned, verification },
    )
}

pub(super) async fn runs(State(site): State<Site>) -> Result<Html<String>, WebError> {
    let runs = site.state.catalog.recent_runs(LIST_LIMIT).await?;
    site.render(
        "runs.html",
        minijinja::context! { runs, list_limit => LIST_LIMIT },
    )
}

pub(super) async fn run(
    State(site): State<Site>,
    Path(id): Path<String>,
) -> Result<Html<String>, WebError> {
    let not_found = || WebError::NotFound(format!("No run with id {id:?} is in the catalogue."));
    let run_id: i64 = id.parse().map_err(|_| not_found())?;
    let run = site
        .state
        .catalog
        .run(run_id)
        .await?
        .ok_or_else(not_found)?;

    site.render("run.html", minijinja::context! { run })
}

/// Lists the jobs running and waiting for a slot in this process.
pub(super) async fn queue(State(site): State<Site>) -> Result<Html<String>, WebError> {
    let limits = site.state.limits.as_ref();
    let queue = limits.map(|limits| limits.snapshot());
    let slot_counts = limits.map(|limits| limits.slot_counts());
    site.render(
        "queue.html",
        minijinja::context! { queue, limits => slot_counts },
    )
}

pub(super) async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        STYLESHEET,
    )
        .into_response()
}

pub(super) async fn not_found() -> WebError {
    WebError::NotFound("No page exists at this address.".to_string())
}

impl Site {
    /// Renders template `name` with `context` and the values every page shows.
    pub(super) fn render(&self, name: &str, context: Value) -> Result<Html<String>, WebError> {
        let template = self.templates.get_template(name)?;
        let user = super::auth::CURRENT_USER
            .try_with(|user| {
                minijinja::context! {
                    name => user.name,
                    role => user.role,
                    csrf_token => user.csrf_token,
                    can_operate => user.role >= crate::account::Role::Operator,
                    is_admin => user.role >= crate::account::Role::Admin,
                }
            })
            .ok();
        let page = template.render(minijinja::context! {
            fleet_name => self.state.fleet_name,
            fleet_status => self.state.fleet_status.as_ref().map(|status| status.borrow().clone()),
            started_at => rfc3339(self.state.started_at),
            user,
            ..context
        })?;
        Ok(Html(page))
    }
}

/// Puts each database under its instance, keeping instances without databases.
fn group_by_instance(
    instances: Vec<InstanceRow>,
    databases: Vec<DatabaseOverview>,
    now: OffsetDateTime,
) -> Vec<InstanceView> {
    let mut views: Vec<InstanceView> = instances
        .into_iter()
        .map(|facts| InstanceView {
            name: facts.name.clone(),
            facts: Some(facts),
            databases: Vec::new(),
        })
        .collect();

    for database in databases {
        let position = views.iter().position(|view| view.name == database.instance);
        let index = position.unwrap_or_else(|| {
            views.push(InstanceView {
                name: database.instance.clone(),
                facts: None,
                databases: Vec::new(),
            });
            views.len() - 1
        });
        views[index].databases.push(database_view(database, now));
    }

    views.sort_by(|left, right| left.name.cmp(&right.name));
    views
}

fn database_view(overview: DatabaseOverview, now: OffsetDateTime) -> DatabaseView {
    let cells = BackupType::ALL
        .into_iter()
        .map(|backup_type| {
            let backup = match backup_type {
                BackupType::Full => overview.last_full.clone(),
                BackupType::Diff => overview.last_diff.clone(),
                BackupType::Log => overview.last_log.clone(),
            };
            let finished_at = backup.as_ref().map(|backup| backup.finished_at);
            BackupCell {
                backup_type,
                age: finished_at.map(|at| format_age(now - at)),
                freshness: classify(backup_type, finished_at, now),
                backup,
            }
        })
        .collect();

    DatabaseView { overview, cells }
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.to_string())
}
