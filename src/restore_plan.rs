//! Restore plans: reads a database's backups from the catalogue, picks the chain for a
//! target time and writes its script. Used by `bakfleet restore-plan` and the admin site.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

use crate::backup::{BackupType, Lsn};
use crate::catalog::{Catalog, CatalogError, FailedBackup, FailureKind, ScriptMember};
use crate::chain::{self, format_time, Broken, ChainError, RestorableWindow, RestoreChain, Target};
use crate::restore_script::{
    self, RestoreScript, ScriptError, ScriptOptions, ScriptSource, SourceFamily,
};

/// A restore plan: the chain, its script and the database's restorable windows.
#[derive(Debug, Clone, Serialize)]
pub struct RestorePlan {
    pub instance: String,
    pub database: String,
    /// The requested UTC time; `None` for the latest restorable point.
    #[serde(with = "time::serde::rfc3339::option")]
    pub target: Option<OffsetDateTime>,
    pub chain: RestoreChain,
    pub script: RestoreScript,
    pub windows: Vec<RestorableWindow>,
    /// The database's backups that failed verification, oldest first, which neither the
    /// chain nor the windows use.
    pub failed_verification: Vec<FailedMember>,
    /// The log that failed verification where the chain stops, when `chain.broken` is
    /// that log's gap.
    pub stopped_by: Option<FailedMember>,
}

/// A backup that a plan leaves out because a check found its file missing, changed or
/// damaged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedMember {
    pub backup_id: i64,
    pub backup_type: BackupType,
    pub instance: String,
    pub database: String,
    #[serde(with = "time::serde::rfc3339")]
    pub finished_at: OffsetDateTime,
    pub store_path: String,
    pub finding: FailureKind,
    /// The finding as the check reported it.
    pub detail: String,
    /// When a check first found the problem.
    #[serde(with = "time::serde::rfc3339")]
    pub found_at: OffsetDateTime,
    #[serde(skip)]
    first_lsn: Lsn,
    #[serde(skip)]
    last_lsn: Lsn,
}

impl FailedMember {
    fn new(failed: FailedBackup) -> FailedMember {
        FailedMember {
            backup_id: failed.backup.id,
            backup_type: failed.backup.backup_type,
            instance: failed.backup.instance,
            database: failed.backup.database,
            finished_at: failed.backup.finished_at,
            store_path: failed.backup.store_path,
            finding: failed.failure.finding,
            detail: failed.failure.detail,
            found_at: failed.failure.found_at,
            first_lsn: failed.backup.first_lsn,
            last_lsn: failed.backup.last_lsn,
        }
    }

    /// Tells whether this is a log that contains LSNs of the gap `broken`.
    fn fills(&self, broken: &Broken) -> bool {
        self.backup_type == BackupType::Log
            && self.first_lsn < broken.missing_to
            && self.last_lsn > broken.missing_from
    }
}

impl fmt::Display for FailedMember {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "backup #{} ({} backup of database [{}] on instance {}, finished {}, file {}) \
             failed verification on {} ({})",
            self.backup_id,
            self.backup_type,
            self.database,
            self.instance,
            format_time(&self.finished_at),
            self.store_path,
            format_time(&self.found_at),
            self.finding
        )
    }
}

/// Returns what to do about backups that failed verification in `database`.
pub fn repair_advice(instance: &str, database: &str) -> String {
    format!(
        "put a good copy of the file back into the store and run `bakfleet verify --structure \
         {instance} {database}`, which clears the mark, or take a new full backup now with \
         `bakfleet run {instance} {database} --type full` so that later points restore"
    )
}

/// Lists `failed` for a message, one after the other.
fn list_failed(failed: &[FailedMember]) -> String {
    failed
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Error of building a restore plan.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(
        "instance {instance:?} has no catalogued backups; instances with backups: {}",
        list(known)
    )]
    UnknownInstance {
        instance: String,
        known: Vec<String>,
    },
    #[error("database {database:?} on instance {instance} has no catalogued backups; databases with backups there: {}", list(known))]
    UnknownDatabase {
        instance: String,
        database: String,
        known: Vec<String>,
    },
    #[error("database {database:?} on instance {instance}: {reason}")]
    Chain {
        instance: String,
        database: String,
        reason: ChainError,
    },
    #[error("database {database:?} on instance {instance}: {reason}; the plan leaves out backups that failed verification: {}; {}", list_failed(failed), repair_advice(instance, database))]
    ChainWithoutFailed {
        instance: String,
        database: String,
        reason: ChainError,
        failed: Vec<FailedMember>,
    },
    #[error("database {database:?} on instance {instance}: cannot restore to {}, because {failed}, and the log chain needs it; the latest point before it is {}; {}", format_time(target), format_time(restorable_until), repair_advice(instance, database))]
    FailedLog {
        instance: String,
        database: String,
        target: OffsetDateTime,
        failed: FailedMember,
        restorable_until: OffsetDateTime,
    },
    #[error("database {database:?} on instance {instance}: nothing can be restored, because every catalogued backup that retention kept failed verification: {}; {}", list_failed(failed), repair_advice(instance, database))]
    AllFailed {
        instance: String,
        database: String,
        failed: Vec<FailedMember>,
    },
    #[error("database {database:?} on instance {instance}: cannot restore to {}, because the log chain is broken between backup #{} ({before}) and backup #{} ({after}); LSNs {} to {} are in no catalogued log backup; the latest point before the gap is {}", format_time(target), broken.after, broken.next, broken.missing_from, broken.missing_to, format_time(&broken.restorable_until))]
    Gap {
        instance: String,
        database: String,
        target: OffsetDateTime,
        broken: Broken,
        /// Store path and finish time of the backup before the gap.
        before: String,
        /// Store path and finish time of the first log after the gap.
        after: String,
    },
    #[error("database {database:?} on instance {instance}: {reason}")]
    Script {
        instance: String,
        database: String,
        reason: ScriptError,
    },
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// Builds the restore plan of one database for `target`.
///
/// `store_root` turns the catalogue's relative store paths into the absolute paths that
/// `FROM DISK` names. Pruned backups and backups that failed verification are left out.
/// A log that failed verification is a gap in the log chain, so a target past it needs
/// a later full or differential.
///
/// # Errors
/// [`PlanError`]: an unknown instance or database (with the names that exist), a target
/// before the first full, after the last log or behind a gap (naming a backup that failed
/// verification where one causes it), or a script that cannot be written (no file list
/// for MOVE, unknown time zone for STOPAT).
pub async fn build_plan(
    catalog: &Catalog,
    store_root: &Path,
    instance: &str,
    database: &str,
    target: Target,
    options: &ScriptOptions,
) -> Result<RestorePlan, PlanError> {
    let (backups, early_members, failed) = tokio::join!(
        catalog.restorable_chain_backups(instance, database),
        members_since_latest_full(catalog, instance, database, target),
        catalog.failed_backups(Some(instance), Some(database)),
    );
    let backups = backups?;
    let failed: Vec<FailedMember> = failed?.into_iter().map(FailedMember::new).collect();
    if backups.is_empty() {
        if !failed.is_empty() {
            return Err(PlanError::AllFailed {
                instance: instance.to_string(),
                database: database.to_string(),
                failed,
            });
        }
        return Err(unknown_name_error(catalog, instance, database).await?);
    }
    let windows = chain::restorable_windows(&backups);

    let chain = match chain::plan(&backups, target) {
        Ok(chain) => chain,
        Err(source) => return Err(chain_error(catalog, instance, database, source, failed).await?),
    };
    // NOTE: a marked log after the chain's last member leaves no gap inside the chain, so
    // a latest plan that ends before it names no failed log here.
    let stopped_by = chain
        .broken
        .as_ref()
        .and_then(|broken| failed.iter().find(|member| member.fills(broken)))
        .cloned();

    // The script's facts only for the members, because a chain can hold thousands of
    // logs.
    let member_ids: Vec<i64> = chain.members().map(|backup| backup.id).collect();
    let finished = chain.members().map(|backup| backup.finished_at).fold(
        chain.full.finished_at..=chain.full.finished_at,
        |range, at| (*range.start()).min(at)..=(*range.end()).max(at),
    );
    let early_members =
        early_members?.filter(|found| member_ids.iter().all(|id| found.contains_key(id)));
    let mut members = match early_members {
        Some(found) => found,
        None => catalog.script_members(instance, database, finished).await?,
    };
    let mut full_files = catalog.backup_files(chain.full.id).await?;
    let root = store_root.to_string_lossy();
    let mut sources = BTreeMap::new();
    for id in member_ids {
        let Some(member) = members.remove(&id) else {
            continue;
        };
        let files = if id == chain.full.id {
            full_files.take()
        } else {
            None
        };
        sources.insert(id, script_source(&root, member, files));
    }
    let script =
        restore_script::write_script(database, &chain, &sources, options).map_err(|reason| {
            PlanError::Script {
                instance: instance.to_string(),
                database: database.to_string(),
                reason,
            }
        })?;

    Ok(RestorePlan {
        instance: instance.to_string(),
        database: database.to_string(),
        target: match target {
            Target::Latest => None,
            Target::At(at) => Some(at),
        },
        chain,
        script,
        windows,
        failed_verification: failed,
        stopped_by,
    })
}

/// Reads the script facts of every backup since the newest full when `target` is the
/// latest point, or returns `None`. Such a plan restores that full and what follows it,
/// so this read covers every member unless a backup was added or pruned in between. It
/// runs on a second connection while the chain is read, instead of after the chain is
/// known, and `build_plan` reads the members again when one is missing.
async fn members_since_latest_full(
    catalog: &Catalog,
    instance: &str,
    database: &str,
    target: Target,
) -> Result<Option<HashMap<i64, ScriptMember>>, CatalogError> {
    if target != Target::Latest {
        return Ok(None);
    }
    let Some(from) = catalog.latest_full_finished_at(instance, database).await? else {
        return Ok(None);
    };
    let members = catalog
        .script_members(instance, database, from..=LAST_INSTANT)
        .await?;
    Ok(Some(members))
}

/// Upper bound of a finish-time range that has no end.
const LAST_INSTANT: OffsetDateTime = time::macros::datetime!(9999-12-31 23:59:59.999 UTC);

/// Parses a target time: RFC 3339 (`2026-03-01T10:15:00+01:00`), or
/// `YYYY-MM-DD HH:MM[:SS[.fff]]` taken as UTC. Seconds may be left out, as a browser's
/// `datetime-local` field leaves them out.
///
/// # Errors
/// A message naming the text and the accepted forms.
pub fn parse_target_time(text: &str) -> Result<OffsetDateTime, String> {
    let text = text.trim();
    if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(at);
    }
    let plain = format_description!(
        version = 2,
        "[year]-[month]-[day][first [T][ ]][hour]:[minute]\
         [optional [:[second][optional [.[subsecond]]]]]"
    );
    PrimitiveDateTime::parse(text, plain)
        .map(PrimitiveDateTime::assume_utc)
        .map_err(|_| {
            format!(
                "invalid time {text:?}: expected RFC 3339 such as 2026-03-01T10:15:00Z, or \
                 YYYY-MM-DD HH:MM[:SS] taken as UTC"
            )
        })
}

/// Returns the path that `FROM DISK` names for a catalogued backup: the store path under
/// `store_root`, or the path itself for a file imported in place.
pub fn disk_path(store_root: &Path, store_path: &str) -> PathBuf {
    let path = Path::new(store_path);
    if path.is_absolute() {
        return path.to_path_buf();
    }
    let mut absolute = store_root.to_path_buf();
    absolute.extend(store_path.split('/').filter(|part| !part.is_empty()));
    absolute
}

fn script_source(
    store_root: &str,
    member: ScriptMember,
    files: Option<Vec<crate::backup::BackupFile>>,
) -> ScriptSource {
    ScriptSource {
        families: member
            .families
            .into_iter()
            .map(|family| SourceFamily {
                path: disk_path_text(store_root, &family.store_path),
                size_bytes: family.size_bytes,
                sha256: family.sha256,
            })
            .collect(),
        has_checksums: member.has_checksums,
        time_zone: member.time_zone,
        files,
    }
}

/// Returns the text of [`disk_path`], written into one buffer. A latest plan names
/// thousands of files, so each skips the `PathBuf` and the display text made from it.
fn disk_path_text(store_root: &str, store_path: &str) -> String {
    if Path::new(store_path).is_absolute() {
        return store_path.to_string();
    }
    let mut text = String::with_capacity(store_root.len() + store_path.len() + 1);
    text.push_str(store_root);
    for part in store_path.split('/').filter(|part| !part.is_empty()) {
        if !text.is_empty() && !text.ends_with(std::path::is_separator) {
            text.push(std::path::MAIN_SEPARATOR);
        }
        text.push_str(part);
    }
    text
}

/// Turns a chain error into a plan error.
///
/// A gap where a log failed verification names that log. Another gap reads the two
/// backups around it, so the message names their store paths and finish times. Any
/// other error lists the backups that failed verification, because they may be why no
/// chain reaches the target.
async fn chain_error(
    catalog: &Catalog,
    instance: &str,
    database: &str,
    source: ChainError,
    failed: Vec<FailedMember>,
) -> Result<PlanError, CatalogError> {
    let ChainError::Broken { target, broken } = source else {
        if failed.is_empty() {
            return Ok(PlanError::Chain {
                instance: instance.to_string(),
                database: database.to_string(),
                reason: source,
            });
        }
        return Ok(PlanError::ChainWithoutFailed {
            instance: instance.to_string(),
            database: database.to_string(),
            reason: source,
            failed,
        });
    };
    if let Some(member) = failed.into_iter().find(|member| member.fills(&broken)) {
        return Ok(PlanError::FailedLog {
            instance: instance.to_string(),
            database: database.to_string(),
            target,
            failed: member,
            restorable_until: broken.restorable_until,
        });
    }
    let rows = catalog
        .backups_with_ids(&[broken.after, broken.next])
        .await?;
    let describe = |id: i64| {
        rows.iter()
            .find(|row| row.id == id)
            .map(|row| {
                format!(
                    "{} {}, finished {}",
                    row.backup_type, row.store_path, row.finished_at
                )
            })
            .unwrap_or_else(|| "not in the catalogue".to_string())
    };
    Ok(PlanError::Gap {
        instance: instance.to_string(),
        database: database.to_string(),
        target,
        before: describe(broken.after),
        after: describe(broken.next),
        broken,
    })
}

async fn unknown_name_error(
    catalog: &Catalog,
    instance: &str,
    database: &str,
) -> Result<PlanError, CatalogError> {
    let databases = catalog.catalogued_databases().await?;
    let on_instance: Vec<String> = databases
        .iter()
        .filter(|d| d.instance == instance)
        .map(|d| d.database.clone())
        .collect();
    if on_instance.is_empty() {
        let mut known: Vec<String> = databases.into_iter().map(|d| d.instance).collect();
        known.dedup();
        return Ok(PlanError::UnknownInstance {
            instance: instance.to_string(),
            known,
        });
    }
    Ok(PlanError::UnknownDatabase {
        instance: instance.to_string(),
        database: database.to_string(),
        known: on_instance,
    })
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn target_time_accepts_both_forms() {
        let cases = [
            ("2026-03-01T10:15:00Z", datetime!(2026-03-01 10:15 UTC)),
            ("2026-03-01T11:15:00+01:00", datetime!(2026-03-01 10:15 UTC)),
            ("2026-03-01 10:15:00", datetime!(2026-03-01 10:15 UTC)),
            ("2026-03-01T10:15:00", datetime!(2026-03-01 10:15 UTC)),
            ("2026-03-01 10:15", datetime!(2026-03-01 10:15 UTC)),
            ("2026-03-01T10:15", datetime!(2026-03-01 10:15 UTC)),
            (
                "2026-03-01 10:15:00.250",
                datetime!(2026-03-01 10:15:00.25 UTC),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_target_time(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn target_time_rejects_other_text() {
        let error = parse_target_time("yesterday").unwrap_err();
        assert!(error.contains("\"yesterday\""), "{error}");
        assert!(parse_target_time("2026-03-01").is_err());
        assert!(parse_target_time("2026-03-01 10").is_err());
        assert!(parse_target_time("2026-03-01 10:15:").is_err());
    }

    #[test]
    fn disk_path_joins_store_root() {
        let root = Path::new("/srv/store");
        assert_eq!(
            disk_path(root, "a/b/c.bak"),
            PathBuf::from("/srv/store/a/b/c.bak")
        );
        assert_eq!(
            disk_path(root, "/imports/x.bak"),
            PathBuf::from("/imports/x.bak")
        );
    }

    #[test]
    fn disk_path_text_matches_path() {
        let cases = [
            ("/srv/store", "a/b/c.bak"),
            ("/srv/store/", "a//b/c.bak"),
            ("/srv/store", "/imports/x.bak"),
            ("", "a/c.bak"),
            ("store", "a/"),
        ];
        for (root, store_path) in cases {
            let expected = disk_path(Path::new(root), store_path).display().to_string();
            assert_eq!(
                disk_path_text(root, store_path),
                expected,
                "{root:?} {store_path:?}"
            );
        }
    }
}
