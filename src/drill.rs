//! Restore drills, in the manner of dbatools' Test-DbaLastBackup but scheduled: the latest
//! chain of a database restored under a new name on a sandbox instance, checked with
//! `DBCC CHECKDB`, then dropped, with the outcome recorded on every backup it restored.
//!
//! The sandbox reads the files straight from the central store, which the DBA shares to it
//! (a read-only SMB share of the store root, or the same folder mounted on a Linux
//! sandbox). `store_path` is the store root as the sandbox names it.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Instant;

use time::OffsetDateTime;

use crate::catalog::{BackupRow, Catalog, CatalogError, DrillEnd, NewDrill};
use crate::chain::{self, ChainBackup, ChainError, Target};
use crate::fleet::{Drills, Fleet, Instance, Secrets};
use crate::job::connect_settings;
use crate::mssql::tsql::{quote_ident, quote_string};
use crate::mssql::{Connection, MssqlError};
use crate::restore_script::{self, ScriptError, ScriptOptions, ScriptSource, SourceFamily};

/// Maximum length of the part of the source database's name kept in the restored copy's name, so the
/// whole name stays far below SQL Server's 128-character limit.
const NAME_PART_CHARS: usize = 40;

/// The phase a drill reached; a failed drill records the phase that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrillPhase {
    Plan,
    Connect,
    Restore,
    CheckDb,
    Drop,
    Done,
}

impl DrillPhase {
    /// Returns the name stored in the catalogue.
    pub fn as_str(self) -> &'static str {
        match self {
            DrillPhase::Plan => "plan",
            DrillPhase::Connect => "connect",
            DrillPhase::Restore => "restore",
            DrillPhase::CheckDb => "checkdb",
            DrillPhase::Drop => "drop",
            DrillPhase::Done => "done",
        }
    }
}

impl fmt::Display for DrillPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of one drill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrillReport {
    pub drill_id: i64,
    pub restored_as: String,
    pub passed: bool,
    pub phase: DrillPhase,
    pub error: Option<String>,
    pub drop_error: Option<String>,
    pub backup_ids: Vec<i64>,
    pub duration_ms: u64,
}

/// A drill that could not start: nothing was restored and nothing recorded.
#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    #[error("drill sandbox {sandbox:?} is not an instance of the fleet; name one of: {known}")]
    UnknownSandbox { sandbox: String, known: String },
    #[error("no restore chain for database [{database}] on instance {instance}: {source}")]
    NoChain {
        instance: String,
        database: String,
        #[source]
        source: Box<ChainError>,
    },
    #[error("backup {backup_id} of [{database}] on instance {instance} was catalogued in place at {path} by `bakfleet import`, outside the store the sandbox reads; import it with --copy to drill it")]
    OutsideStore {
        instance: String,
        database: String,
        backup_id: i64,
        path: String,
    },
    #[error(
        "cannot write the drill's restore script for [{database}] on instance {instance}: {source}"
    )]
    Script {
        instance: String,
        database: String,
        #[source]
        source: Box<ScriptError>,
    },
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

/// Everything a drill needs from the process.
pub struct DrillContext<'a> {
    pub fleet: &'a Fleet,
    pub secrets: &'a Secrets,
    pub catalog: &'a Catalog,
    pub settings: &'a Drills,
}

/// Restores the latest chain of `database` on the sandbox, runs CHECKDB and drops the
/// copy. A failure inside the drill is an outcome, recorded and returned as a report;
/// only a drill that cannot start returns an error.
///
/// # Errors
/// [`DrillError`] when the sandbox is unknown, the database has no complete chain, a
/// member lies outside the store, or the catalogue cannot be read or written.
pub async fn run(
    ctx: &DrillContext<'_>,
    instance: &str,
    database: &str,
    trigger: &str,
) -> Result<DrillReport, DrillError> {
    let sandbox = sandbox_instance(ctx)?;
    // Backups that retention already deleted cannot be restored.
    let backups = ctx.catalog.restorable_backups(instance, database).await?;
    let members: Vec<ChainBackup> = backups.iter().map(ChainBackup::from).collect();
    let chain = chain::plan(&members, Target::Latest).map_err(|source| DrillError::NoChain {
        instance: instance.to_string(),
        database: database.to_string(),
        source: Box::new(source),
    })?;
    let backup_ids: Vec<i64> = chain.members().map(|member| member.id).collect();

    let started_at = OffsetDateTime::now_utc();
    let placeholder = restored_name(database, 0);
    let drill_id = ctx
        .catalog
        .start_drill(&NewDrill {
            instance: instance.to_string(),
            database: database.to_string(),
            sandbox: sandbox.name.clone(),
            restored_as: placeholder,
            trigger: trigger.to_string(),
            backup_ids: backup_ids.clone(),
            stop_at: None,
            started_at,
            host: gethostname::gethostname().to_string_lossy().into_owned(),
            pid: std::process::id(),
        })
        .await?;
    let restored_as = restored_name(database, drill_id);
    ctx.catalog
        .set_drill_restored_as(drill_id, &restored_as)
        .await?;

    let sources = script_sources(ctx, instance, database, &backups, &backup_ids).await?;
    let options = ScriptOptions {
        restore_as: Some(restored_as.clone()),
        move_to: ctx.settings.data_dir.clone(),
        replace: false,
    };
    let script =
        restore_script::write_script(database, &chain, &sources, &options).map_err(|source| {
            DrillError::Script {
                instance: instance.to_string(),
                database: database.to_string(),
                source: Box::new(source),
            }
        })?;

    let span = tracing::error_span!("drill", drill_id, %instance, %database, sandbox = %sandbox.name, %restored_as);
    let clock = Instant::now();
    let outcome = tracing::Instrument::instrument(
        restore_and_check(ctx, sandbox, drill_id, &restored_as, &script.statements),
        span,
    )
    .await;
    let duration_ms = u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX);

    let (passed, phase, error) = match outcome.failure {
        None => (true, DrillPhase::Done, None),
        Some((phase, error)) => (false, phase, Some(error)),
    };
    ctx.catalog
        .finish_drill(
            drill_id,
            &DrillEnd {
                passed,
                phase: phase.as_str().to_string(),
                error: error.clone(),
                drop_error: outcome.drop_error.clone(),
                finished_at: OffsetDateTime::now_utc(),
                duration_ms,
            },
        )
        .await?;
    tracing::info!(drill_id, %instance, %database, passed, %phase, duration_ms, "drill finished");
    Ok(DrillReport {
        drill_id,
        restored_as,
        passed,
        phase,
        error,
        drop_error: outcome.drop_error,
        backup_ids,
        duration_ms,
    })
}

/// Runs scheduled drills until the task is aborted.
///
/// Each database is drilled on the schedule of its policy's `drill` key, or of the
/// `[drill]` table when its policy has no such key. A policy with `enabled = false` keeps
/// its databases out. At each slot of a schedule, the catalogued databases on it that
/// `[drill]` covers are drilled one after the other, so the sandbox restores one copy at
/// a time per schedule. Without any schedule it returns at once.
pub async fn run_scheduled(
    fleet: std::sync::Arc<Fleet>,
    secrets: std::sync::Arc<Secrets>,
    catalog: Catalog,
    clock: std::sync::Arc<dyn crate::schedule::Clock>,
) {
    let Some(settings) = &fleet.drills else {
        return;
    };
    let expressions = drill_schedules(&fleet, settings);
    if expressions.is_empty() {
        return;
    }
    let ctx = DrillContext {
        fleet: &fleet,
        secrets: &secrets,
        catalog: &catalog,
        settings,
    };
    let loops = expressions
        .iter()
        .map(|expression| run_schedule(&ctx, expression, clock.as_ref()));
    futures_util::future::join_all(loops).await;
}

/// Lists the distinct drill schedules in use: the `[drill]` table's and those of the
/// policies that instances and their databases use.
pub(crate) fn drill_schedules(fleet: &Fleet, settings: &Drills) -> Vec<String> {
    let global = settings.schedule.as_deref();
    let policies = fleet.instances.iter().flat_map(|instance| {
        std::iter::once(&instance.policy)
            .chain(instance.database_policies.iter().map(|entry| &entry.policy))
    });
    let mut expressions: Vec<String> = policies
        .filter_map(|policy| policy.drill_schedule(global))
        .chain(global)
        .map(str::to_string)
        .collect();
    expressions.sort();
    expressions.dedup();
    expressions
}

/// Returns the schedule on which `database` of `instance` is drilled. It is `None` when
/// the policy turns drills off, no schedule applies, or the instance left the fleet.
fn schedule_of<'a>(ctx: &'a DrillContext<'_>, instance: &str, database: &str) -> Option<&'a str> {
    let global = ctx.settings.schedule.as_deref();
    let instance = ctx.fleet.instance(instance)?;
    instance.policy_for(database).drill_schedule(global)
}

/// Drills the databases on one schedule at each of its slots, forever.
async fn run_schedule(
    ctx: &DrillContext<'_>,
    expression: &str,
    clock: &dyn crate::schedule::Clock,
) {
    let cron = match crate::fleet::parse_cron(expression) {
        Ok(cron) => cron,
        Err(reason) => {
            tracing::error!(%expression, %reason, "invalid drill schedule; no drills run on it");
            return;
        }
    };
    tracing::info!(%expression, sandbox = %ctx.settings.sandbox, "restore drills scheduled");
    loop {
        let now = clock.now();
        let Some(slot) = crate::schedule::next_slot(&cron, chrono_tz::UTC, now) else {
            tracing::warn!(%expression, "the drill schedule has no future slot");
            return;
        };
        clock.sleep_until(slot).await;
        tracing::info!(%slot, %expression, "running scheduled restore drills");
        drill_covered_databases(ctx, expression).await;
    }
}

/// Drills every catalogued database on `expression` that `[drill]` covers, and logs each
/// outcome.
async fn drill_covered_databases(ctx: &DrillContext<'_>, expression: &str) {
    let databases = match ctx.catalog.catalogued_databases().await {
        Ok(databases) => databases,
        Err(error) => {
            tracing::error!(%error, "scheduled drills: cannot list the catalogued databases");
            return;
        }
    };
    let covered: Vec<_> = databases
        .into_iter()
        .filter(|database| ctx.settings.covers(&database.instance, &database.database))
        .filter(|database| {
            schedule_of(ctx, &database.instance, &database.database) == Some(expression)
        })
        .collect();
    if covered.is_empty() {
        tracing::warn!(
            sandbox = %ctx.settings.sandbox,
            %expression,
            "scheduled drills: no catalogued database is on this schedule and covered by \
             [drill] (the sandbox's own databases are left out unless drill.instances names it)"
        );
    }
    for database in covered {
        match run(ctx, &database.instance, &database.database, "schedule").await {
            Ok(report) if report.passed => {}
            Ok(report) => tracing::warn!(
                instance = %database.instance,
                database = %database.database,
                drill_id = report.drill_id,
                phase = %report.phase,
                error = report.error.as_deref().unwrap_or(""),
                "scheduled drill failed"
            ),
            Err(error) => tracing::error!(
                instance = %database.instance,
                database = %database.database,
                %error,
                "scheduled drill could not start"
            ),
        }
    }
}

fn sandbox_instance<'a>(ctx: &DrillContext<'a>) -> Result<&'a Instance, DrillError> {
    let name = &ctx.settings.sandbox;
    ctx.fleet
        .instance(name)
        .ok_or_else(|| DrillError::UnknownSandbox {
            sandbox: name.clone(),
            known: ctx
                .fleet
                .instances
                .iter()
                .map(|instance| instance.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Names the restored copy `bakfleet_drill_{id}_{database}`, keeping letters, digits and
/// `_` of the source name, so that the name is unique, readable in the sandbox's database
/// list, and needs no quoting in a DBA's own queries.
fn restored_name(database: &str, drill_id: i64) -> String {
    let part: String = database
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(NAME_PART_CHARS)
        .collect();
    format!("bakfleet_drill_{drill_id}_{part}")
}

/// Builds the script source of each chain member: its path as the sandbox names it and
/// its recorded file list.
async fn script_sources(
    ctx: &DrillContext<'_>,
    instance: &str,
    database: &str,
    backups: &[BackupRow],
    backup_ids: &[i64],
) -> Result<BTreeMap<i64, ScriptSource>, DrillError> {
    let mut sources = BTreeMap::new();
    for backup in backups.iter().filter(|b| backup_ids.contains(&b.id)) {
        if std::path::Path::new(&backup.store_path).is_absolute() {
            return Err(DrillError::OutsideStore {
                instance: instance.to_string(),
                database: database.to_string(),
                backup_id: backup.id,
                path: backup.store_path.clone(),
            });
        }
        let files = ctx.catalog.backup_files(backup.id).await?;
        let families = ctx.catalog.backup_families(backup).await?;
        sources.insert(
            backup.id,
            ScriptSource {
                families: families
                    .iter()
                    .map(|family| SourceFamily {
                        path: sandbox_path(&ctx.settings.store_path, &family.store_path),
                        size_bytes: family.size_bytes,
                        sha256: family.sha256.clone(),
                    })
                    .collect(),
                has_checksums: backup.has_checksums,
                time_zone: backup.time_zone,
                files,
            },
        );
    }
    Ok(sources)
}

/// Joins a store path (relative, `/`-separated) to the store root as the sandbox names
/// it, with `\` when that root is a UNC or Windows path.
fn sandbox_path(store_path: &str, rel_path: &str) -> String {
    let windows = store_path.starts_with("\\\\") || store_path.get(1..2) == Some(":");
    let separator = if windows { '\\' } else { '/' };
    let root = store_path.trim_end_matches(['\\', '/']);
    let rel = if windows {
        rel_path.replace('/', "\\")
    } else {
        rel_path.to_string()
    };
    format!("{root}{separator}{rel}")
}

/// The outcome on the sandbox: the failed phase and error, if any, and whether the copy
/// could be dropped.
struct Outcome {
    failure: Option<(DrillPhase, String)>,
    drop_error: Option<String>,
}

async fn restore_and_check(
    ctx: &DrillContext<'_>,
    sandbox: &Instance,
    drill_id: i64,
    restored_as: &str,
    statements: &[String],
) -> Outcome {
    let phase = |phase: DrillPhase| async move {
        if let Err(error) = ctx.catalog.set_drill_phase(drill_id, phase.as_str()).await {
            tracing::warn!(%error, drill_id, %phase, "could not record the drill phase");
        }
    };

    phase(DrillPhase::Connect).await;
    let mut connection = match open_sandbox(ctx, sandbox).await {
        Ok(connection) => connection,
        Err(error) => {
            return Outcome {
                failure: Some((DrillPhase::Connect, error.to_string())),
                drop_error: None,
            };
        }
    };

    phase(DrillPhase::Restore).await;
    let mut failure = None;
    for statement in statements {
        if let Err(error) = connection.execute("drill restore", statement).await {
            failure = Some((DrillPhase::Restore, error.to_string()));
            break;
        }
    }
    if failure.is_none() {
        phase(DrillPhase::CheckDb).await;
        let checkdb = format!(
            "DBCC CHECKDB ({}) WITH NO_INFOMSGS;",
            quote_string(restored_as)
        );
        if let Err(error) = connection.execute("drill checkdb", &checkdb).await {
            failure = Some((DrillPhase::CheckDb, error.to_string()));
        }
    }

    phase(DrillPhase::Drop).await;
    let drop = format!("DROP DATABASE {};", quote_ident(restored_as));
    let drop_error = drop_copy(ctx, sandbox, &mut connection, &drop).await;
    Outcome {
        failure,
        drop_error,
    }
}

async fn open_sandbox(ctx: &DrillContext<'_>, sandbox: &Instance) -> Result<Connection, String> {
    // No command timeout: a restore takes as long as the data needs.
    let settings = connect_settings(sandbox, ctx.secrets, None).map_err(|e| e.to_string())?;
    Connection::open(&settings)
        .await
        .map_err(|error: MssqlError| error.to_string())
}

/// Drops the restored copy, on a new connection when the drill's one broke. A copy that
/// was never created is not an error.
async fn drop_copy(
    ctx: &DrillContext<'_>,
    sandbox: &Instance,
    connection: &mut Connection,
    drop: &str,
) -> Option<String> {
    let first = connection.execute("drill drop", drop).await;
    let error = match first {
        Ok(()) => return None,
        Err(error) if is_missing_database(&error) => return None,
        Err(error) => error,
    };
    tracing::warn!(%error, "drill copy not dropped; retrying on a new connection");
    let retried = match open_sandbox(ctx, sandbox).await {
        Ok(mut fresh) => fresh.execute("drill drop", drop).await,
        Err(reason) => return Some(format!("{error}; reconnecting failed: {reason}")),
    };
    match retried {
        Ok(()) => None,
        Err(error) if is_missing_database(&error) => None,
        Err(error) => Some(format!(
            "{error}; drop the copy on the sandbox by hand: {drop}"
        )),
    }
}

/// Error 3701: "Cannot drop the database '%.*ls', because it does not exist or you do not
/// have permission." A restore that failed before creating the database leaves nothing.
fn is_missing_database(error: &MssqlError) -> bool {
    matches!(error, MssqlError::Server { number: 3701, .. })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restored_name_keeps_safe_characters() {
        assert_eq!(
            restored_name("Ventes d'été", 7),
            "bakfleet_drill_7_Ventes_d__t_"
        );
        assert_eq!(restored_name(&"x".repeat(200), 1).len(), 17 + 40);
    }

    #[test]
    fn sandbox_path_follows_root_form() {
        assert_eq!(
            sandbox_path(r"\\backup01\store\", "sales/Sales/full/a.bak"),
            r"\\backup01\store\sales\Sales\full\a.bak"
        );
        assert_eq!(
            sandbox_path(r"E:\store", "sales/Sales/log/b.trn"),
            r"E:\store\sales\Sales\log\b.trn"
        );
        assert_eq!(
            sandbox_path("/mnt/store/", "sales/Sales/full/a.bak"),
            "/mnt/store/sales/Sales/full/a.bak"
        );
    }
}
