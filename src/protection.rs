//! Protection of each database against its policy's recovery point objectives (RPO):
//! per scheduled backup type, the newest good backup and whether it is within the RPO.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use chrono_tz::Tz;
use serde::{Serialize, Serializer};
use time::{Duration, OffsetDateTime};

use crate::backup::BackupType;
use crate::catalog::{Catalog, CatalogError, DatabaseOverview, LastBackup};
use crate::fleet::{parse_cron, Fleet, Instance, Policy, SELECTION_KEYWORDS};

mod gap;

/// Smallest grace added to a schedule's longest gap: a backup finishes some time after
/// its slot starts, and a catch-up after a restart of the service takes a few minutes.
const MIN_GRACE: Duration = Duration::minutes(30);

/// Protection of one backup type of a database, or of a whole database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProtectionState {
    /// The newest good backup is no older than the RPO.
    Ok,
    /// The newest good backup is older than the RPO.
    Late,
    /// No good backup of this type is catalogued.
    Missing,
}

impl ProtectionState {
    /// Returns the lower-case name that pages, query parameters and JSON use.
    pub fn as_str(self) -> &'static str {
        match self {
            ProtectionState::Ok => "ok",
            ProtectionState::Late => "late",
            ProtectionState::Missing => "missing",
        }
    }

    /// Parses `ok`, `late` or `missing`, as [`ProtectionState::as_str`] writes them.
    pub fn parse(text: &str) -> Option<ProtectionState> {
        match text {
            "ok" => Some(ProtectionState::Ok),
            "late" => Some(ProtectionState::Late),
            "missing" => Some(ProtectionState::Missing),
            _ => None,
        }
    }
}

/// Source of the RPO of a backup type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RpoSource {
    /// The policy's `rpo.<type>` key.
    Policy,
    /// Derived from the type's cron schedule by [`derived_rpo`].
    Schedule,
}

/// Protection of one backup type that a database's policy schedules.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TypeProtection {
    pub backup_type: BackupType,
    /// Finish time (UTC) of the newest good backup that covers this type. For `diff` a
    /// newer full counts, because a full is a later recovery point and the scheduler
    /// takes one in place of a DIFF that has no base. For `log` a newer full or diff
    /// counts, because the RPO bounds the data lost since the newest recovery point, and
    /// a database whose first full was just taken has no log backup yet.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_good: Option<OffsetDateTime>,
    /// The type of that backup: `full` when a full covers a `diff` or a `log`.
    pub last_good_type: Option<BackupType>,
    /// Catalogue id of that backup, for links.
    pub last_good_id: Option<i64>,
    /// Maximum age of `last_good`; `None` only for a schedule without any slot in the
    /// last 400 days, which is then never late. Serialized as whole seconds.
    #[serde(serialize_with = "serialize_seconds")]
    pub rpo: Option<Duration>,
    pub rpo_source: RpoSource,
    pub state: ProtectionState,
}

/// Protection of one database of the fleet in force.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatabaseProtection {
    pub instance: String,
    pub database: String,
    /// Name of the database's policy (`defaults` for the `[defaults]` keys).
    pub policy: String,
    /// One entry per backup type that the policy schedules and that exists for the
    /// database, in the order full, diff, log.
    pub types: Vec<TypeProtection>,
    /// The worst state of `types`: missing before late before ok. `ok` when no type is
    /// scheduled.
    pub state: ProtectionState,
    /// `sys.databases.recovery_model_desc` from the last inventory, if any.
    pub recovery_model: Option<String>,
    /// `sys.databases.state_desc` from the last inventory, if any.
    pub database_state: Option<String>,
}

impl DatabaseProtection {
    /// Finds the entry of `backup_type`; `None` when the policy does not schedule it.
    pub fn type_protection(&self, backup_type: BackupType) -> Option<&TypeProtection> {
        self.types
            .iter()
            .find(|entry| entry.backup_type == backup_type)
    }
}

/// Error of an RPO assessment.
#[derive(Debug, thiserror::Error)]
pub enum ProtectionError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("instance {instance}, policy {policy:?}: {backup_type} schedule {expression:?} is invalid: {reason}; run `bakfleet check` on the fleet file")]
    Schedule {
        instance: String,
        policy: String,
        backup_type: BackupType,
        expression: String,
        reason: String,
    },
}

/// Assesses every database of `fleet` against its policy's RPO at `now`.
///
/// Databases are those the catalogue stores for each instance of the fleet (from the
/// inventory, runs or backups) that the instance's `databases` selection still selects,
/// plus the exact names in `databases.include` that the catalogue does not contain yet,
/// which are then missing. Instances no longer in the fleet are left out. The result is
/// ordered by instance (fleet order) and database name.
///
/// # Errors
/// [`ProtectionError::Catalog`] when the catalogue cannot be read;
/// [`ProtectionError::Schedule`] for a cron expression that the fleet check let through
/// but that cannot be parsed.
pub async fn assess(
    fleet: &Fleet,
    catalog: &Catalog,
    now: OffsetDateTime,
) -> Result<Vec<DatabaseProtection>, ProtectionError> {
    let overview = catalog.fleet_overview().await?;
    assess_overview(fleet, &overview, now)
}

/// Assesses the databases of `overview` (from [`Catalog::fleet_overview`]) as [`assess`]
/// does, without reading the catalogue.
pub fn assess_overview(
    fleet: &Fleet,
    overview: &[DatabaseOverview],
    now: OffsetDateTime,
) -> Result<Vec<DatabaseProtection>, ProtectionError> {
    let mut rpo_cache = RpoCache::default();
    let mut assessed = Vec::new();
    for instance in &fleet.instances {
        for database in instance_databases(instance, overview) {
            let policy = instance.policy_for(&database.database);
            let entry = assess_database(&instance.name, policy, &database, now, &mut rpo_cache)?;
            assessed.push(entry);
        }
    }
    Ok(assessed)
}

/// Assesses every database of `overview` against one `policy`, for a site that serves a
/// catalogue without a fleet file and so has no selection and no policies.
///
/// # Errors
/// [`ProtectionError::Schedule`] for a cron expression of `policy` that cannot be parsed.
pub fn assess_with_policy(
    policy: &Policy,
    overview: &[DatabaseOverview],
    now: OffsetDateTime,
) -> Result<Vec<DatabaseProtection>, ProtectionError> {
    let mut rpo_cache = RpoCache::default();
    overview
        .iter()
        .map(|database| assess_database(&database.instance, policy, database, now, &mut rpo_cache))
        .collect()
}

/// Lists the databases of `instance` that the catalogue contains and the selection
/// selects, with the configured exact names the catalogue lacks, in name order. A name
/// that appears only in runs counts only when the fleet file names it, so a
/// misspelled `bakfleet run` does not add a database that is always missing.
fn instance_databases(instance: &Instance, overview: &[DatabaseOverview]) -> Vec<DatabaseOverview> {
    let mut databases: Vec<DatabaseOverview> = overview
        .iter()
        .filter(|entry| entry.instance == instance.name)
        .filter(|entry| instance.databases.selects(&entry.database))
        .filter(|entry| {
            !entry.is_known_only_from_runs() || is_configured(instance, &entry.database)
        })
        .cloned()
        .collect();
    for name in configured_names(instance) {
        let known = databases
            .iter()
            .any(|entry| entry.database.eq_ignore_ascii_case(&name));
        if !known && instance.databases.selects(&name) {
            databases.push(unknown_database(&instance.name, name));
        }
    }
    databases.sort_by(|left, right| left.database.cmp(&right.database));
    databases
}

/// Returns the `databases.include` entries that name one database: no keyword and no
/// wildcard. The selection stores them in lower case, and SQL Server compares names
/// without regard to case under its default collation.
fn configured_names(instance: &Instance) -> Vec<String> {
    instance
        .databases
        .include_patterns()
        .into_iter()
        .filter(|pattern| !pattern.contains(['*', '?']))
        .filter(|pattern| !SELECTION_KEYWORDS.contains(pattern))
        .map(str::to_string)
        .collect()
}

/// Tells whether the fleet file names `database` exactly in `instance`'s selection.
pub fn is_configured(instance: &Instance, database: &str) -> bool {
    configured_names(instance)
        .iter()
        .any(|name| name.eq_ignore_ascii_case(database))
}

fn unknown_database(instance: &str, database: String) -> DatabaseOverview {
    DatabaseOverview {
        instance: instance.to_string(),
        database,
        recovery_model: None,
        state: None,
        last_full: None,
        last_diff: None,
        last_log: None,
        last_run: None,
    }
}

fn assess_database(
    instance: &str,
    policy: &Policy,
    database: &DatabaseOverview,
    now: OffsetDateTime,
    rpo_cache: &mut RpoCache,
) -> Result<DatabaseProtection, ProtectionError> {
    let mut types = Vec::new();
    for backup_type in BackupType::ALL {
        let Some(expression) = policy.schedule.for_type(backup_type) else {
            continue;
        };
        if !type_exists(backup_type, database) {
            continue;
        }
        let (rpo, rpo_source) = match policy_rpo(policy, backup_type) {
            Some(rpo) => (Some(rpo), RpoSource::Policy),
            None => {
                let derived = rpo_cache
                    .derived(expression, policy.time_zone, now)
                    .map_err(|reason| ProtectionError::Schedule {
                        instance: instance.to_string(),
                        policy: policy.name.clone(),
                        backup_type,
                        expression: expression.to_string(),
                        reason,
                    })?;
                (derived, RpoSource::Schedule)
            }
        };
        let newest = newest_good(backup_type, database);
        let last_good = newest.map(|backup| backup.finished_at);
        types.push(TypeProtection {
            backup_type,
            last_good,
            last_good_type: newest.map(|backup| backup.backup_type),
            last_good_id: newest.map(|backup| backup.id),
            rpo,
            rpo_source,
            state: classify(last_good, rpo, now),
        });
    }
    let state = types
        .iter()
        .map(|entry| entry.state)
        .max()
        .unwrap_or(ProtectionState::Ok);
    Ok(DatabaseProtection {
        instance: instance.to_string(),
        database: database.database.clone(),
        policy: policy.name.clone(),
        types,
        state,
        recovery_model: database.recovery_model.clone(),
        database_state: database.state.clone(),
    })
}

/// Returns whether SQL Server can take `backup_type` of the database, as far as the last
/// inventory shows: master has only full backups, and a database in the SIMPLE recovery
/// model has no log backups ("Recovery Models (SQL Server)"). A database without
/// inventory is assumed to take every type.
fn type_exists(backup_type: BackupType, database: &DatabaseOverview) -> bool {
    match backup_type {
        BackupType::Full => true,
        BackupType::Diff => !database.database.eq_ignore_ascii_case("master"),
        BackupType::Log => {
            let simple = database
                .recovery_model
                .as_deref()
                .is_some_and(|model| model.eq_ignore_ascii_case("SIMPLE"));
            !simple && !database.database.eq_ignore_ascii_case("master")
        }
    }
}

fn policy_rpo(policy: &Policy, backup_type: BackupType) -> Option<Duration> {
    let rpo = match backup_type {
        BackupType::Full => policy.rpo.full,
        BackupType::Diff => policy.rpo.diff,
        BackupType::Log => policy.rpo.log,
    }?;
    Some(Duration::try_from(rpo).unwrap_or(Duration::MAX))
}

/// The newest good backup that covers a type.
#[derive(Clone, Copy)]
struct GoodBackup {
    id: i64,
    finished_at: OffsetDateTime,
    backup_type: BackupType,
}

/// Finds the newest good backup that covers `backup_type`. Catalogue rows exist only for
/// verified backups, so every catalogued backup is good.
fn newest_good(backup_type: BackupType, database: &DatabaseOverview) -> Option<GoodBackup> {
    let good = |backup: &Option<LastBackup>, backup_type| {
        backup.as_ref().map(|backup| GoodBackup {
            id: backup.id,
            finished_at: backup.finished_at,
            backup_type,
        })
    };
    let full = good(&database.last_full, BackupType::Full);
    match backup_type {
        BackupType::Full => full,
        BackupType::Diff => {
            let diff = good(&database.last_diff, BackupType::Diff);
            diff.into_iter()
                .chain(full)
                .max_by_key(|backup| backup.finished_at)
        }
        BackupType::Log => {
            let log = good(&database.last_log, BackupType::Log);
            let diff = good(&database.last_diff, BackupType::Diff);
            log.into_iter()
                .chain(diff)
                .chain(full)
                .max_by_key(|backup| backup.finished_at)
        }
    }
}

/// Classifies a newest good backup against its RPO.
pub fn classify(
    last_good: Option<OffsetDateTime>,
    rpo: Option<Duration>,
    now: OffsetDateTime,
) -> ProtectionState {
    let Some(last_good) = last_good else {
        return ProtectionState::Missing;
    };
    match rpo {
        Some(rpo) if now - last_good > rpo => ProtectionState::Late,
        _ => ProtectionState::Ok,
    }
}

/// Derives an RPO from a cron schedule: the longest gap between two consecutive slots in
/// the 400 days before `now`, plus a grace. The grace is a quarter of that gap and at
/// least 30 minutes, so that the backup's own duration and a catch-up fit. For example,
/// a log backup every 15 minutes gets 45 minutes, a daily differential 30 hours, a
/// differential Monday to Saturday 60 hours, and a weekly full 8 days 18 hours.
///
/// Returns `Ok(None)` when the schedule has fewer than two slots in that window.
///
/// # Errors
/// The parser's reason when `expression` is not a valid six-field cron expression.
pub fn derived_rpo(
    expression: &str,
    zone: Tz,
    now: OffsetDateTime,
) -> Result<Option<Duration>, String> {
    let cron = parse_cron(expression)?;
    let Some(gap) = gap::longest_gap(&cron, expression, zone, now) else {
        return Ok(None);
    };
    Ok(Some(gap + grace(gap)))
}

fn grace(gap: Duration) -> Duration {
    (gap / 4_i32).max(MIN_GRACE)
}

/// Derived RPOs by cron expression and time zone, so that one assessment parses and walks
/// each distinct schedule once.
#[derive(Default)]
struct RpoCache {
    derived: HashMap<(String, Tz), Option<Duration>>,
}

impl RpoCache {
    fn derived(
        &mut self,
        expression: &str,
        zone: Tz,
        now: OffsetDateTime,
    ) -> Result<Option<Duration>, String> {
        let key = (expression.to_string(), zone);
        if let Some(rpo) = self.derived.get(&key) {
            return Ok(*rpo);
        }
        let rpo = shared_derived_rpo(&key, now)?;
        self.derived.insert(key, rpo);
        Ok(rpo)
    }
}

/// How long a derived RPO is reused by later assessments. Deriving takes about a
/// millisecond for a schedule that repeats daily or weekly, and about two for one that
/// follows the calendar (the 1st of each month), whose 400 days are walked in full. A
/// longest gap over 400 days changes only when a new gap enters or an old one leaves the
/// window, so an hour-old value is as good as a fresh one.
const SHARED_RPO_LIFETIME: Duration = Duration::HOUR;

/// A derived RPO and the `now` it was derived at.
type SharedRpo = (OffsetDateTime, Option<Duration>);

/// Derived RPOs shared by every assessment of this process, by cron expression and zone.
static SHARED_RPOS: Mutex<Option<HashMap<(String, Tz), SharedRpo>>> = Mutex::new(None);

/// Returns the derived RPO of `key` from the process-wide cache when it was derived
/// within [`SHARED_RPO_LIFETIME`] of `now`, else derives and caches it.
fn shared_derived_rpo(key: &(String, Tz), now: OffsetDateTime) -> Result<Option<Duration>, String> {
    let lock = || SHARED_RPOS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((at, rpo)) = lock().get_or_insert_with(HashMap::new).get(key) {
        if (now - *at).abs() <= SHARED_RPO_LIFETIME {
            return Ok(*rpo);
        }
    }
    // Derived without the lock, so one slow walk does not hold up other pages.
    let rpo = derived_rpo(&key.0, key.1, now)?;
    lock()
        .get_or_insert_with(HashMap::new)
        .insert(key.clone(), (now, rpo));
    Ok(rpo)
}

fn serialize_seconds<S: Serializer>(
    value: &Option<Duration>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(duration) => serializer.serialize_some(&duration.whole_seconds()),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests;
