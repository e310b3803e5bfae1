//! Response bodies of the JSON API. They copy catalogue rows into types of their own, so
//! that field names stay stable when the catalogue changes. LSNs travel as decimal strings
//! because they need up to 25 digits, more than a JSON number represents exactly.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use crate::backup::{BackupFamily, Lsn};
use crate::catalog::{
    BackupRow, DatabaseOverview, InstanceRow, LastBackup, RunLogLine, RunRow, VerificationFailure,
};
use crate::chain::ChainBackup;
use crate::protection::{DatabaseProtection, TypeProtection};
use crate::restore_plan::{repair_advice, RestorePlan};

/// Error body of every 4xx and 5xx response under `/api/v1`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// HTTP status code, repeated for clients that only keep the body.
    pub status: u16,
    /// Message naming what failed and, where known, what to do next.
    pub error: String,
}

/// An instance of the fleet with the facts its server last reported.
#[derive(Debug, Serialize, ToSchema)]
pub struct Instance {
    pub name: String,
    pub host: String,
    pub port: u16,
    /// `SERVERPROPERTY('ProductVersion')`, such as `16.0.1000.6`.
    pub product_version: Option<String>,
    pub edition: Option<String>,
    pub server_name: Option<String>,
    /// When server facts were last stored; `null` until bakfleet has connected once.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_seen_at: Option<OffsetDateTime>,
    pub database_count: i64,
}

impl From<InstanceRow> for Instance {
    fn from(row: InstanceRow) -> Instance {
        Instance {
            name: row.name,
            host: row.host,
            port: row.port,
            product_version: row.product_version,
            edition: row.edition,
            server_name: row.server_name,
            last_seen_at: row.last_seen_at,
            database_count: row.database_count,
        }
    }
}

/// The newest backup of one type.
#[derive(Debug, Serialize, ToSchema)]
pub struct LatestBackup {
    pub id: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub finished_at: OffsetDateTime,
    pub size_bytes: u64,
}

impl From<LastBackup> for LatestBackup {
    fn from(backup: LastBackup) -> LatestBackup {
        LatestBackup {
            id: backup.id,
            finished_at: backup.finished_at,
            size_bytes: backup.size_bytes,
        }
    }
}

/// A database of an instance with its newest backups and its last run.
#[derive(Debug, Serialize, ToSchema)]
pub struct Database {
    pub instance: String,
    pub name: String,
    /// `FULL`, `BULK_LOGGED` or `SIMPLE` from the last inventory.
    pub recovery_model: Option<String>,
    /// `sys.databases.state_desc`, such as `ONLINE`.
    pub state: Option<String>,
    pub last_full: Option<LatestBackup>,
    pub last_diff: Option<LatestBackup>,
    pub last_log: Option<LatestBackup>,
    /// Id of the newest run of any type.
    pub last_run_id: Option<i64>,
    /// Status of that run: `running`, `succeeded`, `failed`, `skipped`, `interrupted`.
    pub last_run_status: Option<String>,
}

impl From<DatabaseOverview> for Database {
    fn from(row: DatabaseOverview) -> Database {
        Database {
            instance: row.instance,
            name: row.database,
            recovery_model: row.recovery_model,
            state: row.state,
            last_full: row.last_full.map(LatestBackup::from),
            last_diff: row.last_diff.map(LatestBackup::from),
            last_log: row.last_log.map(LatestBackup::from),
            last_run_id: row.last_run.as_ref().map(|run| run.id),
            last_run_status: row.last_run.map(|run| run.status.as_str().to_string()),
        }
    }
}

/// A backup in a listing.
#[derive(Debug, Serialize, ToSchema)]
pub struct BackupSummary {
    pub id: i64,
    pub run_id: i64,
    pub instance: String,
    pub database: String,
    /// `full`, `diff` or `log`.
    pub backup_type: String,
    #[serde(with = "time::serde::rfc3339")]
    pub finished_at: OffsetDateTime,
    pub size_bytes: u64,
    /// Lower-case hex SHA-256 of the stored file (of family 1 for a striped backup).
    pub sha256: String,
    /// Set when a check found the stored file missing, changed or damaged. Such a backup
    /// is no longer restored, downloaded or counted as the newest good backup.
    pub failed_verification: Option<FailedVerification>,
}

/// The mark that a failed check left on a backup.
#[derive(Debug, Serialize, ToSchema)]
pub struct FailedVerification {
    /// `missing`, `size_mismatch`, `hash_mismatch` or `unreadable`.
    pub finding: String,
    /// The finding as the check reported it, with the file's path.
    pub detail: String,
    /// When a check first found the problem.
    #[serde(with = "time::serde::rfc3339")]
    pub found_at: OffsetDateTime,
    /// When the last check found it still there.
    #[serde(with = "time::serde::rfc3339")]
    pub checked_at: OffsetDateTime,
}

impl From<VerificationFailure> for FailedVerification {
    fn from(failure: VerificationFailure) -> FailedVerification {
        FailedVerification {
            finding: failure.finding.as_str().to_string(),
            detail: failure.detail,
            found_at: failure.found_at,
            checked_at: failure.checked_at,
        }
    }
}

impl BackupSummary {
    /// Builds a listing item from a catalogue row and its mark, if any.
    pub fn new(row: &BackupRow, failure: Option<VerificationFailure>) -> BackupSummary {
        BackupSummary {
            failed_verification: failure.map(FailedVerification::from),
            id: row.id,
            run_id: row.run_id,
            instance: row.instance.clone(),
            database: row.database.clone(),
            backup_type: row.backup_type.as_str().to_string(),
            finished_at: row.finished_at,
            size_bytes: row.size_bytes,
            sha256: row.sha256.clone(),
        }
    }
}

/// One page of a listing, newest first. `next_before` is the `before` value of the next
/// page, `null` on the last page.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_before: Option<i64>,
}

/// Paging parameters: at most `limit` items with an id below `before`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Maximum items, 1 to 500; 50 when left out.
    pub limit: Option<i64>,
    /// Return only items with an id below this one: the `next_before` of the last page.
    pub before: Option<i64>,
}

/// Paging parameters of the run listing, with a status filter.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunQuery {
    /// Maximum items, 1 to 500; 50 when left out.
    pub limit: Option<i64>,
    /// Return only runs with an id below this one: the `next_before` of the last page.
    pub before: Option<i64>,
    /// Only runs with this status: `running`, `succeeded`, `failed`, `skipped` or
    /// `interrupted`.
    pub status: Option<String>,
}

/// One file of a backup's media set.
#[derive(Debug, Serialize, ToSchema)]
pub struct Family {
    pub family_number: u32,
    pub store_path: String,
    pub size_bytes: u64,
    pub sha256: String,
}

impl From<BackupFamily> for Family {
    fn from(family: BackupFamily) -> Family {
        Family {
            family_number: family.family_number,
            store_path: family.store_path,
            size_bytes: family.size_bytes,
            sha256: family.sha256,
        }
    }
}

/// One backup with its header fields, LSNs and media families.
#[derive(Debug, Serialize, ToSchema)]
pub struct Backup {
    pub id: i64,
    pub run_id: i64,
    pub instance: String,
    pub database: String,
    /// `full`, `diff` or `log`.
    pub backup_type: String,
    pub store_path: String,
    pub size_bytes: u64,
    pub sha256: String,
    /// LSNs in SQL Server's decimal numeric(25,0) form.
    pub first_lsn: String,
    pub last_lsn: String,
    pub checkpoint_lsn: String,
    pub database_backup_lsn: String,
    pub differential_base_lsn: Option<String>,
    pub backup_set_guid: Option<String>,
    pub database_guid: Option<String>,
    /// `backup_finish` in UTC.
    #[serde(with = "time::serde::rfc3339")]
    pub finished_at: OffsetDateTime,
    pub server_version: Option<String>,
    pub recovery_model: Option<String>,
    pub has_checksums: bool,
    pub is_copy_only: bool,
    pub compressed: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub fetched_at: OffsetDateTime,
    /// Whether retention deleted the file; the row stays for the record.
    pub pruned: bool,
    /// Set when a check found the stored file missing, changed or damaged.
    pub failed_verification: Option<FailedVerification>,
    pub families: Vec<Family>,
}

impl Backup {
    /// Builds the body from a catalogue row, its families and its mark, if any.
    pub fn new(
        row: BackupRow,
        families: Vec<BackupFamily>,
        pruned: bool,
        failure: Option<VerificationFailure>,
    ) -> Backup {
        Backup {
            failed_verification: failure.map(FailedVerification::from),
            id: row.id,
            run_id: row.run_id,
            backup_type: row.backup_type.as_str().to_string(),
            first_lsn: lsn_text(row.first_lsn),
            last_lsn: lsn_text(row.last_lsn),
            checkpoint_lsn: lsn_text(row.checkpoint_lsn),
            database_backup_lsn: lsn_text(row.database_backup_lsn),
            differential_base_lsn: row.differential_base_lsn.map(lsn_text),
            instance: row.instance,
            database: row.database,
            store_path: row.store_path,
            size_bytes: row.size_bytes,
            sha256: row.sha256,
            backup_set_guid: row.backup_set_guid,
            database_guid: row.database_guid,
            finished_at: row.finished_at,
            server_version: row.server_version,
            recovery_model: row.recovery_model,
            has_checksums: row.has_checksums,
            is_copy_only: row.is_copy_only,
            compressed: row.compressed,
            fetched_at: row.fetched_at,
            pruned,
            families: families.into_iter().map(Family::from).collect(),
        }
    }
}

fn lsn_text(lsn: Lsn) -> String {
    lsn.0.to_string()
}

/// One run: an attempt to back up one database with one backup type.
#[derive(Debug, Serialize, ToSchema)]
pub struct Run {
    pub id: i64,
    pub instance: String,
    pub database: String,
    /// The type taken: the requested one, or `full` after a promotion.
    pub backup_type: String,
    pub requested_type: String,
    /// `schedule`, `manual` or `demo`.
    pub trigger: String,
    /// `running`, `succeeded`, `failed`, `skipped` or `interrupted`.
    pub status: String,
    /// The last phase reached.
    pub phase: String,
    pub error: Option<String>,
    /// The cause of a type change or a skip.
    pub reason: Option<String>,
    /// Changes of course, one per line.
    pub note: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    pub duration_ms: Option<u64>,
    pub bytes: Option<u64>,
    pub backup_id: Option<i64>,
}

/// One line of a run's log: an event bakfleet logged while the run's job ran.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogLine {
    /// The line's place in the run's log, from 0.
    pub seq: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// `ERROR`, `WARN`, `INFO` or `DEBUG`.
    pub level: String,
    /// The bakfleet module that logged the line.
    pub target: String,
    /// The message followed by the event's fields as `key=value`.
    pub message: String,
}

impl From<RunLogLine> for LogLine {
    fn from(line: RunLogLine) -> LogLine {
        LogLine {
            seq: line.seq,
            at: line.at,
            level: line.level,
            target: line.target,
            message: line.message,
        }
    }
}

impl From<RunRow> for Run {
    fn from(row: RunRow) -> Run {
        Run {
            id: row.id,
            instance: row.instance,
            database: row.database,
            backup_type: row.backup_type.as_str().to_string(),
            requested_type: row.requested_type.as_str().to_string(),
            trigger: row.trigger,
            status: row.status.as_str().to_string(),
            phase: row.phase,
            error: row.error,
            reason: row.reason,
            note: row.note,
            started_at: row.started_at,
            finished_at: row.finished_at,
            duration_ms: row.duration_ms,
            bytes: row.bytes,
            backup_id: row.backup_id,
        }
    }
}

/// Body of a "run now" request.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RunNow {
    /// `full`, `diff` or `log`.
    #[serde(rename = "type")]
    pub backup_type: String,
}

/// Response to "run now": `started` with the run id, or `queued` when the job waits for
/// a slot or covers several databases.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunAccepted {
    /// `started` or `queued`.
    pub status: String,
    pub run_id: Option<i64>,
}

/// Response to "verify now".
#[derive(Debug, Serialize, ToSchema)]
pub struct Verification {
    pub backup_id: i64,
    /// Whether every file's size and SHA-256 match the catalogue.
    pub ok: bool,
    /// Result of the comparison: what matched, or what did not.
    pub detail: String,
}

/// Parameters of the restore plan.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PlanQuery {
    /// Target time: RFC 3339, or `YYYY-MM-DD HH:MM:SS` taken as UTC; the latest
    /// restorable point when left out.
    pub at: Option<String>,
}

/// A backup in a restore plan, in restore order.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanStep {
    pub backup_id: i64,
    pub backup_type: String,
    pub first_lsn: String,
    pub last_lsn: String,
}

impl From<&ChainBackup> for PlanStep {
    fn from(backup: &ChainBackup) -> PlanStep {
        PlanStep {
            backup_id: backup.id,
            backup_type: backup.backup_type.as_str().to_string(),
            first_lsn: lsn_text(backup.first_lsn),
            last_lsn: lsn_text(backup.last_lsn),
        }
    }
}

/// A span of time the catalogued backups can restore to.
#[derive(Debug, Serialize, ToSchema)]
pub struct Window {
    #[serde(with = "time::serde::rfc3339")]
    pub from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub to: OffsetDateTime,
    pub full_id: i64,
}

/// The backups that restore a database to a point in time, and the T-SQL that does it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Plan {
    pub instance: String,
    pub database: String,
    /// The requested time; `null` for the latest restorable point.
    #[serde(with = "time::serde::rfc3339::option")]
    pub target: Option<OffsetDateTime>,
    /// The `STOPAT` time on the last log, if any.
    #[serde(with = "time::serde::rfc3339::option")]
    pub stop_at: Option<OffsetDateTime>,
    pub steps: Vec<PlanStep>,
    pub windows: Vec<Window>,
    /// The RESTORE statements, with paths under the store root of the serving process.
    pub sql: String,
    /// Ids of the database's backups that failed verification, which the plan leaves out.
    pub failed_verification: Vec<i64>,
    /// The id of the log that failed verification where the log chain stops, if any.
    pub stopped_by: Option<i64>,
    /// The reason the plan stops before the latest backup, with what to do; `null` when
    /// it does not stop early.
    pub warning: Option<String>,
}

impl From<RestorePlan> for Plan {
    fn from(plan: RestorePlan) -> Plan {
        let warning = plan
            .chain
            .broken
            .as_ref()
            .map(|broken| match &plan.stopped_by {
                Some(failed) => format!(
                    "the log chain stops because {failed}; the plan restores to {}, the latest \
                 point before it; {}",
                    crate::chain::format_time(&broken.restorable_until),
                    repair_advice(&plan.instance, &plan.database)
                ),
                None => format!(
                    "{broken}; the plan restores to {}, the latest point before the gap",
                    crate::chain::format_time(&broken.restorable_until)
                ),
            });
        Plan {
            failed_verification: plan
                .failed_verification
                .iter()
                .map(|failed| failed.backup_id)
                .collect(),
            stopped_by: plan.stopped_by.as_ref().map(|failed| failed.backup_id),
            warning,
            sql: plan.script.to_sql(),
            steps: plan.chain.members().map(PlanStep::from).collect(),
            stop_at: plan.chain.stop_at,
            windows: plan
                .windows
                .iter()
                .map(|window| Window {
                    from: window.from,
                    to: window.to,
                    full_id: window.full_id,
                })
                .collect(),
            instance: plan.instance,
            database: plan.database,
            target: plan.target,
        }
    }
}

/// Protection of one backup type of a database against its policy's RPO.
#[derive(Debug, Serialize, ToSchema)]
pub struct TypeHealth {
    /// `full`, `diff` or `log`.
    pub backup_type: String,
    /// Finish time of the newest good backup that covers this type.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_good: Option<OffsetDateTime>,
    /// Maximum age of `last_good` in seconds; `null` for a schedule that is never late.
    pub rpo_seconds: Option<i64>,
    /// `ok`, `late` or `missing`.
    pub state: String,
}

impl From<&TypeProtection> for TypeHealth {
    fn from(entry: &TypeProtection) -> TypeHealth {
        TypeHealth {
            backup_type: entry.backup_type.as_str().to_string(),
            last_good: entry.last_good,
            rpo_seconds: entry.rpo.map(|rpo| rpo.whole_seconds()),
            state: entry.state.as_str().to_string(),
        }
    }
}

/// Protection of one database of the fleet in force.
#[derive(Debug, Serialize, ToSchema)]
pub struct DatabaseHealth {
    pub instance: String,
    pub database: String,
    pub policy: String,
    /// The worst state of `types`: `missing`, then `late`, then `ok`.
    pub state: String,
    pub types: Vec<TypeHealth>,
}

impl From<&DatabaseProtection> for DatabaseHealth {
    fn from(entry: &DatabaseProtection) -> DatabaseHealth {
        DatabaseHealth {
            instance: entry.instance.clone(),
            database: entry.database.clone(),
            policy: entry.policy.clone(),
            state: entry.state.as_str().to_string(),
            types: entry.types.iter().map(TypeHealth::from).collect(),
        }
    }
}

/// Fleet health: how many databases are in each state, and each database.
#[derive(Debug, Serialize, ToSchema)]
pub struct FleetHealth {
    /// When the assessment ran.
    #[serde(with = "time::serde::rfc3339")]
    pub assessed_at: OffsetDateTime,
    pub ok: usize,
    pub late: usize,
    pub missing: usize,
    pub databases: Vec<DatabaseHealth>,
}
