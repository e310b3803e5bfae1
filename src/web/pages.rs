//! Page handlers: each reads the catalogue and renders one template.

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use minijinja::Value;
use serde::Serialize;
use time::OffsetDateTime;

use super::charts::{self, Point};
use super::error::WebError;
use super::overview::{assess, database_row, FleetInForce};
use super::templates::STYLESHEET;
use super::Site;
use crate::protection::{DatabaseProtection, ProtectionState};

/// Rows per page of the run and backup listings. Links lead to older pages.
///
/// A database with 15-minute logs takes 96 backups a day, so a page shows half a day of
/// them. Reading and rendering 200 backups and 200 runs took more than half of each
/// page view on a catalogue of 1,000,000 backups.
const LIST_LIMIT: i64 = 50;

/// Rows of the fleet's recent runs page, which live updates keep current.
const RECENT_RUNS_LIMIT: i64 = 200;

/// How far back the charts of the database page reach.
const CHART_WINDOW: time::Duration = time::Duration::days(90);

/// SVG charts of the database page.
#[derive(Debug, Serialize)]
struct DatabaseCharts {
    size: String,
    duration: String,
    throughput: String,
}

/// Query parameters of a database page: the cursor of each listing, which starts at the
/// newest row or after the backup or run whose id is given.
#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct DatabaseQuery {
    backups_before: Option<String>,
    runs_before: Option<String>,
}

impl DatabaseQuery {
    /// Parses both cursors; an empty value means the newest page.
    fn cursors(&self) -> Result<(Option<i64>, Option<i64>), WebError> {
        let parse = |name: &str, value: &Option<String>| match value.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(text) => text.parse::<i64>().map(Some).map_err(|_| {
                WebError::BadRequest(format!(
                    "Invalid {name} {text:?}: give the id of a listed row, as the \
                     \"Older\" links do."
                ))
            }),
        };
        Ok((
            parse("backups_before", &self.backups_before)?,
            parse("runs_before", &self.runs_before)?,
        ))
    }
}

/// Cuts `rows` to one page and returns it with the cursor of the next, older page, if
/// any.
fn page_of<T>(mut rows: Vec<T>, id_of: impl Fn(&T) -> i64) -> (Vec<T>, Option<i64>) {
    let limit = LIST_LIMIT as usize;
    if rows.len() <= limit {
        return (rows, None);
    }
    rows.truncate(limit);
    let older = rows.last().map(id_of);
    (rows, older)
}

pub(super) async fn database(
    State(site): State<Site>,
    Path((instance, database)): Path<(String, String)>,
    Query(query): Query<DatabaseQuery>,
) -> Result<Html<String>, WebError> {
    let (backups_before, runs_before) = query.cursors()?;
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
    let fleet = site.state.fleet.as_ref().map(FleetInForce::current);
    let assessed = assess(fleet.as_deref(), std::slice::from_ref(&overview), now)?;
    let assessed = assessed
        .into_iter()
        .find(|entry| entry.instance == instance && entry.database == database);
    // No assessment means the fleet in force no longer selects this database.
    let in_fleet = assessed.is_some();
    let protection = assessed.unwrap_or_else(|| unassessed(&overview));
    // One row more than a page shows whether an older page exists.
    let (backups, older_backups) = page_of(
        catalog
            .backup_listing(&instance, &database, backups_before, LIST_LIMIT + 1)
            .await?,
        |backup| backup.id,
    );
    let (runs, older_runs) = page_of(
        catalog
            .runs_of_database(&instance, &database, runs_before, LIST_LIMIT + 1)
            .await?,
        |run| run.id,
    );
    let charts = database_charts(catalog, &instance, &database, now).await?;

    site.render(
        "database.html",
        minijinja::context! {
            database => database_row(protection, overview.last_run, now),
            in_fleet,
            charts,
            chart_days => CHART_WINDOW.whole_days(),
            backups,
            runs,
            backups_before,
            runs_before,
            older_backups,
            older_runs,
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
    let failure = site.state.catalog.verification_failure(backup_id).await?;

    site.render(
        "backup.html",
        minijinja::context! { backup, drills, pruned, verification, failure },
    )
}

pub(super) async fn runs(State(site): State<Site>) -> Result<Html<String>, WebError> {
    let runs = site.state.catalog.recent_runs(RECENT_RUNS_LIMIT).await?;
    site.render(
        "runs.html",
        minijinja::context! { runs, list_limit => RECENT_RUNS_LIMIT },
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
    let log = site
        .state
        .catalog
        .run_log(run_id, crate::run_log::MAX_LINES_PER_RUN + 1)
        .await?;

    site.render("run.html", minijinja::context! { run, log })
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

/// Renders the size, duration and throughput charts of one database over
/// [`CHART_WINDOW`], from the catalogue's sums per 12-hour interval: one point per
/// interval and type, about 3 pixels apart. A database with 15-minute log backups has
/// 8,640 of them in 90 days, and one point each made a page of megabytes.
async fn database_charts(
    catalog: &crate::catalog::Catalog,
    instance: &str,
    database: &str,
    now: OffsetDateTime,
) -> Result<DatabaseCharts, WebError> {
    let from = now - CHART_WINDOW;
    let backups = catalog.backup_buckets(instance, database, from).await?;
    let runs = catalog.run_buckets(instance, database, from).await?;

    let sizes: Vec<Point> = backups
        .iter()
        .map(|sum| Point {
            at: sum.newest,
            value: sum.largest_bytes as f64,
            backup_type: sum.backup_type,
            count: sum.count,
        })
        .collect();
    let durations: Vec<Point> = runs
        .iter()
        .filter_map(|sum| {
            Some(Point {
                at: sum.newest,
                value: sum.longest_ms? as f64 / 1000.0,
                backup_type: sum.backup_type,
                count: sum.count,
            })
        })
        .collect();
    let throughputs: Vec<Point> = runs
        .iter()
        .filter_map(|sum| {
            Some(Point {
                at: sum.newest,
                value: sum.mean_throughput_bps?,
                backup_type: sum.backup_type,
                count: sum.count,
            })
        })
        .collect();
    let per_second = |bytes: f64| format!("{}/s", charts::format_bytes(bytes));
    Ok(DatabaseCharts {
        size: charts::time_series(
            "Backup size",
            "largest",
            &sizes,
            from,
            now,
            charts::format_bytes,
        ),
        duration: charts::time_series(
            "Run duration",
            "longest",
            &durations,
            from,
            now,
            charts::format_seconds,
        ),
        throughput: charts::time_series(
            "Fetch throughput",
            "mean",
            &throughputs,
            from,
            now,
            per_second,
        ),
    })
}

/// Describes a catalogued database that the fleet in force does not select: no type is
/// scheduled for it, so no RPO applies.
fn unassessed(overview: &crate::catalog::DatabaseOverview) -> DatabaseProtection {
    DatabaseProtection {
        instance: overview.instance.clone(),
        database: overview.database.clone(),
        policy: String::new(),
        types: Vec::new(),
        state: ProtectionState::Ok,
        recovery_model: overview.recovery_model.clone(),
        database_state: overview.state.clone(),
    }
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.to_string())
}
