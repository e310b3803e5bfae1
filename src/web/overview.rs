//! The fleet overview: each database's protection against its RPO, filters, per-instance
//! facts and the failures of the last 24 hours.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::Html;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use tokio::sync::watch;

use super::error::WebError;
use super::freshness::format_age;
use super::Site;
use crate::backup::BackupType;
use crate::catalog::{DatabaseOverview, InstanceRow, LastRun, Reachability, RunRow};
use crate::fleet::{Fleet, Policy};
use crate::job::JobContext;
use crate::protection::{
    assess_overview, assess_with_policy, DatabaseProtection, ProtectionError, ProtectionState,
    RpoSource,
};

/// Maximum failed runs listed at the top of the overview; the runs page lists more.
const FAILURE_LIMIT: i64 = 50;

/// How far back the overview lists failed runs.
const FAILURE_WINDOW: Duration = Duration::DAY;

/// The fleet file in force, from which the overview reads instances, selections and
/// policies.
#[derive(Clone)]
pub enum FleetInForce {
    /// A fleet that never changes, as `demo` and tests serve it.
    Fixed(Arc<Fleet>),
    /// The fleet of the newest job context, which `serve` replaces on each reload.
    Reloading(watch::Receiver<JobContext>),
}

impl FleetInForce {
    /// Returns the fleet in force now.
    pub fn current(&self) -> Arc<Fleet> {
        match self {
            FleetInForce::Fixed(fleet) => fleet.clone(),
            FleetInForce::Reloading(contexts) => contexts.borrow().fleet.clone(),
        }
    }
}

impl std::fmt::Debug for FleetInForce {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            FleetInForce::Fixed(_) => "Fixed",
            FleetInForce::Reloading(_) => "Reloading",
        };
        write!(
            formatter,
            "FleetInForce::{kind}({})",
            self.current().source.display()
        )
    }
}

/// The query parameters of `/`; an empty value sets no filter.
#[derive(Debug, Default, Deserialize)]
pub(super) struct OverviewQuery {
    instance: Option<String>,
    state: Option<String>,
    policy: Option<String>,
}

/// The filters of the overview, checked.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
struct Filter {
    instance: Option<String>,
    state: Option<ProtectionState>,
    policy: Option<String>,
}

impl Filter {
    fn parse(query: OverviewQuery) -> Result<Filter, WebError> {
        let non_empty = |value: Option<String>| value.filter(|text| !text.trim().is_empty());
        let state = match non_empty(query.state) {
            None => None,
            Some(text) => Some(ProtectionState::parse(&text).ok_or_else(|| {
                WebError::BadRequest(format!(
                    "Invalid state filter {text:?}: use ok, late or missing."
                ))
            })?),
        };
        Ok(Filter {
            instance: non_empty(query.instance),
            state,
            policy: non_empty(query.policy),
        })
    }

    fn is_set(&self) -> bool {
        self.instance.is_some() || self.state.is_some() || self.policy.is_some()
    }

    /// Returns whether `database` passes. A state filter of `ok` keeps databases whose
    /// every type is ok; `late` or `missing` keeps databases with at least one such type.
    fn matches(&self, database: &DatabaseProtection) -> bool {
        let instance_matches = self
            .instance
            .as_ref()
            .is_none_or(|instance| *instance == database.instance);
        let policy_matches = self
            .policy
            .as_ref()
            .is_none_or(|policy| *policy == database.policy);
        let state_matches = match self.state {
            None => true,
            Some(ProtectionState::Ok) => database.state == ProtectionState::Ok,
            Some(state) => database.types.iter().any(|entry| entry.state == state),
        };
        instance_matches && policy_matches && state_matches
    }
}

/// Number of databases in each state, over the whole fleet.
#[derive(Debug, Default, Serialize)]
struct Counts {
    ok: usize,
    late: usize,
    missing: usize,
}

impl Counts {
    fn of(databases: &[DatabaseProtection]) -> Counts {
        let mut counts = Counts::default();
        for database in databases {
            match database.state {
                ProtectionState::Ok => counts.ok += 1,
                ProtectionState::Late => counts.late += 1,
                ProtectionState::Missing => counts.missing += 1,
            }
        }
        counts
    }
}

/// One instance on the overview.
#[derive(Debug, Serialize)]
struct InstanceView {
    name: String,
    /// Staging location from the fleet file; `None` without a fleet file.
    staging: Option<String>,
    /// Server facts of the last inventory; `None` before the first connection.
    facts: Option<InstanceRow>,
    reachability: Option<Reachability>,
    /// Databases assessed on this instance, before filters.
    database_count: usize,
    databases: Vec<DatabaseRow>,
    /// Databases left out of `databases` because they are ok and the overview is compact.
    unlisted_ok: usize,
}

impl InstanceView {
    /// Returns whether a compact overview may show the instance as one line: every
    /// database known is ok, and the newest connection attempt did not fail.
    fn is_all_ok(&self) -> bool {
        let unreachable = self
            .reachability
            .as_ref()
            .is_some_and(|reachability| !reachability.reachable);
        self.databases.is_empty() && self.unlisted_ok > 0 && !unreachable
    }
}

/// Databases an unfiltered overview lists one row each. A larger fleet gets the compact
/// overview: rows only for databases that are late or missing, and one line per instance
/// whose databases are all ok. A page of 1,000 database rows is about 1 MB of HTML and
/// took as long to render as all its catalogue reads, and a DBA scans it no faster.
const FULL_LIST_LIMIT: usize = 300;

/// Turns `instances` into the compact overview: drops rows of databases that are ok,
/// counting them per instance, and moves instances whose databases are all ok to the
/// returned list.
fn compact(instances: &mut Vec<InstanceView>) -> Vec<InstanceView> {
    for instance in instances.iter_mut() {
        let before = instance.databases.len();
        instance
            .databases
            .retain(|row| row.state != ProtectionState::Ok);
        instance.unlisted_ok = before - instance.databases.len();
    }
    let (all_ok, listed): (Vec<_>, Vec<_>) = std::mem::take(instances)
        .into_iter()
        .partition(InstanceView::is_all_ok);
    *instances = listed;
    all_ok
}

/// One database row: its protection per backup type and its newest run.
#[derive(Debug, Serialize)]
pub(super) struct DatabaseRow {
    instance: String,
    database: String,
    policy: String,
    state: ProtectionState,
    recovery_model: Option<String>,
    database_state: Option<String>,
    cells: Vec<ProtectionCell>,
    last_run: Option<LastRun>,
}

/// Protection of one backup type, formatted for a table cell.
#[derive(Debug, Serialize)]
pub(super) struct ProtectionCell {
    backup_type: BackupType,
    /// `None` when the policy does not schedule this type or the database cannot take it.
    state: Option<ProtectionState>,
    #[serde(with = "time::serde::rfc3339::option")]
    last_good: Option<OffsetDateTime>,
    last_good_id: Option<i64>,
    last_good_type: Option<BackupType>,
    age: Option<String>,
    rpo: Option<String>,
    rpo_source: Option<RpoSource>,
}

/// Figures of the overview that were derived for one filter, kept so that requests in
/// the same second share them.
///
/// Assessing a fleet of 1,000 databases and building its rows took about 2.5 ms of CPU
/// per request (measured with `perf`), which 20 viewers on two cores turned into a
/// queue. A kept view is reused while the catalogue's overview generation, the fleet in
/// force and the second stay the same: any run or backup makes a new one, and ages are
/// at most a second old.
#[derive(Debug, Default)]
pub(super) struct OverviewViews {
    views: std::sync::Mutex<Vec<KeptView>>,
    /// Held while a missed view is built, so that requests that miss at the same moment,
    /// as all do when a second begins, wait for one build instead of each making one.
    building: tokio::sync::Mutex<()>,
}

/// Views of at most this many filters are kept: the unfiltered page and the few filters
/// that viewers use in the same second.
const KEPT_VIEWS: usize = 8;

#[derive(Debug)]
struct KeptView {
    generation: i64,
    /// Held so that a reloaded fleet, even at the same address, never matches.
    fleet: Option<Arc<Fleet>>,
    second: i64,
    filter: Filter,
    context: minijinja::Value,
}

impl KeptView {
    fn matches(
        &self,
        generation: i64,
        fleet: Option<&Arc<Fleet>>,
        second: i64,
        filter: &Filter,
    ) -> bool {
        let same_fleet = match (&self.fleet, fleet) {
            (Some(kept), Some(fleet)) => Arc::ptr_eq(kept, fleet),
            (None, None) => true,
            _ => false,
        };
        self.generation == generation
            && same_fleet
            && self.second == second
            && self.filter == *filter
    }
}

impl OverviewViews {
    fn get(
        &self,
        generation: i64,
        fleet: Option<&Arc<Fleet>>,
        second: i64,
        filter: &Filter,
    ) -> Option<minijinja::Value> {
        let views = self
            .views
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        views
            .iter()
            .find(|view| view.matches(generation, fleet, second, filter))
            .map(|view| view.context.clone())
    }

    /// Keeps `view`, dropping views of other generations, fleets or seconds first.
    fn keep(&self, view: KeptView) {
        let mut views = self
            .views
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        views.retain(|kept| {
            kept.matches(
                view.generation,
                view.fleet.as_ref(),
                view.second,
                &kept.filter,
            ) && kept.filter != view.filter
        });
        if views.len() >= KEPT_VIEWS {
            views.remove(0);
        }
        views.push(view);
    }
}

pub(super) async fn overview(
    State(site): State<Site>,
    Query(query): Query<OverviewQuery>,
) -> Result<Html<String>, WebError> {
    let filter = Filter::parse(query)?;
    let now = OffsetDateTime::now_utc();
    // Read before the data, so that a kept view is never older than its generation.
    let generation = site.state.catalog.overview_generation().await?;
    let fleet = site.state.fleet.as_ref().map(FleetInForce::current);
    let second = now.unix_timestamp();
    let views = &site.overview_views;
    if let Some(context) = views.get(generation, fleet.as_ref(), second, &filter) {
        return site.render("overview.html", context);
    }
    let _building = views.building.lock().await;
    if let Some(context) = views.get(generation, fleet.as_ref(), second, &filter) {
        return site.render("overview.html", context);
    }
    let context = overview_context(&site, fleet.as_deref(), &filter, now).await?;
    views.keep(KeptView {
        generation,
        fleet,
        second,
        filter,
        context: context.clone(),
    });
    site.render("overview.html", context)
}

/// Reads and assesses the catalogue and builds what `overview.html` shows, apart from
/// the values every page shows.
async fn overview_context(
    site: &Site,
    fleet: Option<&Fleet>,
    filter: &Filter,
    now: OffsetDateTime,
) -> Result<minijinja::Value, WebError> {
    let catalog = &site.state.catalog;
    let overview = catalog.fleet_overview().await?;
    let facts = catalog.instances().await?;
    let reachability = catalog.instance_reachability().await?;
    let failures = catalog
        .failed_runs_since(now - FAILURE_WINDOW, FAILURE_LIMIT)
        .await?;
    let failures: Vec<RunRow> = failures
        .into_iter()
        .filter(|run| {
            filter
                .instance
                .as_ref()
                .is_none_or(|name| *name == run.instance)
        })
        .collect();

    let protections = assess(fleet, &overview, now)?;
    let counts = Counts::of(&protections);
    let instance_names = instance_names(fleet, &facts, &protections);
    let policy_names = policy_names(&protections);
    let mut database_counts: HashMap<String, usize> = HashMap::new();
    for protection in &protections {
        *database_counts
            .entry(protection.instance.clone())
            .or_default() += 1;
    }
    let mut instances = instance_views(
        &instance_names,
        fleet,
        facts,
        reachability,
        rows(protections, overview, now, filter),
    );
    for instance in &mut instances {
        instance.database_count = database_counts.get(&instance.name).copied().unwrap_or(0);
    }
    if filter.is_set() {
        instances.retain(|instance| !instance.databases.is_empty());
    }
    let database_total = database_counts.values().sum::<usize>();
    let is_compact = !filter.is_set() && database_total > FULL_LIST_LIMIT;
    let all_ok_instances = if is_compact {
        compact(&mut instances)
    } else {
        Vec::new()
    };
    let filter_set = filter.is_set();
    Ok(minijinja::context! {
        instances,
        all_ok_instances,
        is_compact,
        database_total,
        full_list_limit => FULL_LIST_LIMIT,
        counts,
        failures,
        filter,
        filter_set,
        instance_names,
        policy_names,
        states => ["ok", "late", "missing"],
    })
}

/// Assesses the catalogue against `fleet`, or against the built-in policy for a site
/// that serves a catalogue without a fleet file.
pub(super) fn assess(
    fleet: Option<&Fleet>,
    overview: &[DatabaseOverview],
    now: OffsetDateTime,
) -> Result<Vec<DatabaseProtection>, WebError> {
    let assessed = match fleet {
        Some(fleet) => assess_overview(fleet, overview, now),
        None => assess_with_policy(&Policy::built_in(), overview, now),
    };
    assessed.map_err(|error| match error {
        ProtectionError::Catalog(error) => WebError::Catalog(error),
        other => WebError::Internal(other.to_string()),
    })
}

/// Builds a row per database that passes `filter`, with the newest run from `overview`.
fn rows(
    protections: Vec<DatabaseProtection>,
    overview: Vec<DatabaseOverview>,
    now: OffsetDateTime,
    filter: &Filter,
) -> Vec<DatabaseRow> {
    let mut last_runs: HashMap<(String, String), LastRun> = overview
        .into_iter()
        .filter_map(|entry| Some(((entry.instance, entry.database), entry.last_run?)))
        .collect();
    protections
        .into_iter()
        .filter(|protection| filter.matches(protection))
        .map(|protection| {
            let key = (protection.instance.clone(), protection.database.clone());
            database_row(protection, last_runs.remove(&key), now)
        })
        .collect()
}

pub(super) fn database_row(
    protection: DatabaseProtection,
    last_run: Option<LastRun>,
    now: OffsetDateTime,
) -> DatabaseRow {
    DatabaseRow {
        cells: protection_cells(&protection, now),
        instance: protection.instance,
        database: protection.database,
        policy: protection.policy,
        state: protection.state,
        recovery_model: protection.recovery_model,
        database_state: protection.database_state,
        last_run,
    }
}

/// Builds one cell per backup type, full, diff and log, whether scheduled or not.
fn protection_cells(protection: &DatabaseProtection, now: OffsetDateTime) -> Vec<ProtectionCell> {
    BackupType::ALL
        .into_iter()
        .map(
            |backup_type| match protection.type_protection(backup_type) {
                Some(entry) => ProtectionCell {
                    backup_type,
                    state: Some(entry.state),
                    last_good: entry.last_good,
                    last_good_id: entry.last_good_id,
                    last_good_type: entry.last_good_type,
                    age: entry.last_good.map(|at| format_age(now - at)),
                    rpo: entry.rpo.map(format_age),
                    rpo_source: Some(entry.rpo_source),
                },
                None => ProtectionCell {
                    backup_type,
                    state: None,
                    last_good: None,
                    last_good_id: None,
                    last_good_type: None,
                    age: None,
                    rpo: None,
                    rpo_source: None,
                },
            },
        )
        .collect()
}

/// Lists instance names: the fleet's in file order, else those of the catalogue and of
/// the assessed databases in name order.
fn instance_names(
    fleet: Option<&Fleet>,
    facts: &[InstanceRow],
    protections: &[DatabaseProtection],
) -> Vec<String> {
    if let Some(fleet) = fleet {
        return fleet
            .instances
            .iter()
            .map(|instance| instance.name.clone())
            .collect();
    }
    let mut names: Vec<String> = facts.iter().map(|row| row.name.clone()).collect();
    names.extend(protections.iter().map(|entry| entry.instance.clone()));
    names.sort();
    names.dedup();
    names
}

fn policy_names(protections: &[DatabaseProtection]) -> Vec<String> {
    let mut names: Vec<String> = protections
        .iter()
        .map(|entry| entry.policy.clone())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Groups rows under their instances, in the order of `names`.
fn instance_views(
    names: &[String],
    fleet: Option<&Fleet>,
    facts: Vec<InstanceRow>,
    reachability: Vec<Reachability>,
    rows: Vec<DatabaseRow>,
) -> Vec<InstanceView> {
    let mut facts: HashMap<String, InstanceRow> = facts
        .into_iter()
        .map(|row| (row.name.clone(), row))
        .collect();
    let mut reachability: HashMap<String, Reachability> = reachability
        .into_iter()
        .map(|entry| (entry.instance.clone(), entry))
        .collect();
    let mut views: Vec<InstanceView> = names
        .iter()
        .map(|name| InstanceView {
            name: name.clone(),
            staging: fleet
                .and_then(|fleet| fleet.instance(name))
                .map(|instance| instance.staging.describe()),
            facts: facts.remove(name),
            reachability: reachability.remove(name),
            database_count: 0,
            databases: Vec::new(),
            unlisted_ok: 0,
        })
        .collect();
    let positions: HashMap<String, usize> = views
        .iter()
        .enumerate()
        .map(|(position, view)| (view.name.clone(), position))
        .collect();
    for row in rows {
        if let Some(&position) = positions.get(&row.instance) {
            views[position].databases.push(row);
        }
    }
    // Missing, then late, then ok, so that what needs action is at the top of each
    // instance. The sort is stable, so rows of one state keep their name order.
    for view in &mut views {
        view.databases.sort_by_key(|row| attention_rank(row.state));
    }
    views
}

/// Orders states by how urgently they need the DBA: 0 first.
fn attention_rank(state: ProtectionState) -> u8 {
    match state {
        ProtectionState::Missing => 0,
        ProtectionState::Late => 1,
        ProtectionState::Ok => 2,
    }
}
