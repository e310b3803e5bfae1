//! Virtual tables: sys.databases, sys.dm_exec_requests and the msdb backup history, with
//! the column names and types of their Microsoft doc pages; `file_tables` adds the
//! file and log-chain views.

use time::PrimitiveDateTime;

use super::catalog::{recovery_code, state_code};
use super::file_tables;
use super::history::{recovery_text, type_letter};
use super::state::InstanceState;
use crate::reply::{Column, SqlType, Value};

/// The virtual tables a SELECT can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableId {
    Databases,
    ExecRequests,
    BackupSet,
    BackupMediaSet,
    BackupMediaFamily,
    MasterFiles,
    DatabaseRecoveryStatus,
    BackupFile,
}

/// A materialized table: columns and all rows.
#[derive(Debug, Clone)]
pub struct VirtualTable {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Value>>,
}

/// Resolves a table name of up to three parts. Catalog views (`sys.*`) resolve in every
/// database; msdb tables resolve as `msdb.dbo.x`, `msdb..x`, or `dbo.x`/`x` while the
/// session's database is msdb. The database part must name an existing database.
pub fn resolve(
    database: Option<&str>,
    schema: Option<&str>,
    name: &str,
    current_database: &str,
    state: &InstanceState,
) -> Option<TableId> {
    if let Some(database) = database {
        state.database(database)?;
    }
    let database = database.unwrap_or(current_database);
    let schema = schema.unwrap_or("dbo");
    let name = name.to_ascii_lowercase();
    if schema.eq_ignore_ascii_case("sys") {
        return match name.as_str() {
            "databases" => Some(TableId::Databases),
            "dm_exec_requests" => Some(TableId::ExecRequests),
            "master_files" => Some(TableId::MasterFiles),
            "database_recovery_status" => Some(TableId::DatabaseRecoveryStatus),
            _ => None,
        };
    }
    if !schema.eq_ignore_ascii_case("dbo") || !database.eq_ignore_ascii_case("msdb") {
        return None;
    }
    match name.as_str() {
        "backupset" => Some(TableId::BackupSet),
        "backupmediaset" => Some(TableId::BackupMediaSet),
        "backupmediafamily" => Some(TableId::BackupMediaFamily),
        "backupfile" => Some(TableId::BackupFile),
        _ => None,
    }
}

/// Builds the table's rows from the current state; `now` is server local time.
pub fn materialize(table: TableId, state: &InstanceState, now: PrimitiveDateTime) -> VirtualTable {
    match table {
        TableId::Databases => databases(state),
        TableId::ExecRequests => exec_requests(state, now),
        TableId::BackupSet => backup_sets(state),
        TableId::BackupMediaSet => media_sets(state),
        TableId::BackupMediaFamily => media_families(state),
        TableId::MasterFiles => file_tables::master_files(state),
        TableId::DatabaseRecoveryStatus => file_tables::recovery_status(state),
        TableId::BackupFile => file_tables::backup_files(state),
    }
}

/// Only the columns' names and types, for binding a statement before it runs.
pub fn columns(table: TableId) -> Vec<Column> {
    match table {
        TableId::Databases => database_columns(),
        TableId::ExecRequests => request_columns(),
        TableId::BackupSet => backup_set_columns(),
        TableId::BackupMediaSet => media_set_columns(),
        TableId::BackupMediaFamily => media_family_columns(),
        TableId::MasterFiles => file_tables::master_file_columns(),
        TableId::DatabaseRecoveryStatus => file_tables::recovery_status_columns(),
        TableId::BackupFile => file_tables::backup_file_columns(),
    }
}

pub(super) fn column(name: &str, ty: SqlType, nullable: bool) -> Column {
    Column {
        name: name.to_string(),
        ty,
        nullable,
    }
}

pub(super) const SYSNAME: SqlType = SqlType::NVarChar(Some(128));
pub(super) const LSN: SqlType = SqlType::Numeric {
    precision: 25,
    scale: 0,
};
pub(super) const SIZE: SqlType = SqlType::Numeric {
    precision: 20,
    scale: 0,
};

pub(super) fn text(value: &str) -> Value {
    Value::Str(value.to_string())
}

fn optional_text(value: &Option<String>) -> Value {
    value.as_deref().map_or(Value::Null, text)
}

pub(super) fn lsn(value: bakfile::Lsn) -> Value {
    Value::Numeric(value.to_numeric() as i128)
}

// ---- sys.databases (sys.databases (Transact-SQL)) ----

fn database_columns() -> Vec<Column> {
    vec![
        column("name", SYSNAME, false),
        column("database_id", SqlType::Int, false),
        column("source_database_id", SqlType::Int, true),
        column("create_date", SqlType::DateTime, false),
        column("compatibility_level", SqlType::TinyInt, false),
        column("collation_name", SYSNAME, true),
        column("user_access", SqlType::TinyInt, true),
        column("user_access_desc", SqlType::NVarChar(Some(60)), true),
        column("is_read_only", SqlType::Bit, true),
        column("state", SqlType::TinyInt, true),
        column("state_desc", SqlType::NVarChar(Some(60)), true),
        column("is_in_standby", SqlType::Bit, true),
        column("recovery_model", SqlType::TinyInt, true),
        column("recovery_model_desc", SqlType::NVarChar(Some(60)), true),
        column("log_reuse_wait_desc", SqlType::NVarChar(Some(60)), true),
        column("is_encrypted", SqlType::Bit, true),
        column("replica_id", SqlType::UniqueIdentifier, true),
        column("group_database_id", SqlType::UniqueIdentifier, true),
    ]
}

fn databases(state: &InstanceState) -> VirtualTable {
    let mut rows = Vec::new();
    for database in &state.databases {
        let (state_number, state_desc) = state_code(database.state);
        let (recovery, recovery_desc) = recovery_code(database.recovery_model);
        let online = state_number == 0;
        // Many columns are NULL while a database is not ONLINE (sys.databases).
        let when_online = |value: Value| if online { value } else { Value::Null };
        let collation = if online {
            text("SQL_Latin1_General_CP1_CI_AS")
        } else {
            Value::Null
        };
        rows.push(vec![
            text(&database.name),
            Value::Int(database.id.into()),
            database
                .source_database_id
                .map_or(Value::Null, |id| Value::Int(id.into())),
            Value::DateTime(database.create_date),
            Value::Int(database.compatibility_level.into()),
            collation,
            Value::Int(0),
            text("MULTI_USER"),
            Value::Bool(database.read_only),
            Value::Int(state_number.into()),
            text(state_desc),
            Value::Bool(false),
            Value::Int(recovery.into()),
            text(recovery_desc),
            when_online(text(log_reuse_wait(database))),
            Value::Bool(false),
            Value::Null,
            Value::Null,
        ]);
    }
    VirtualTable {
        columns: database_columns(),
        rows,
    }
}

/// `log_reuse_wait_desc`: a FULL database with a log chain waits for a log backup.
fn log_reuse_wait(database: &super::catalog::Database) -> &'static str {
    if database.log.chain_start.is_some() && database.log.pending_bytes > 0 {
        "LOG_BACKUP"
    } else {
        "NOTHING"
    }
}

// ---- sys.dm_exec_requests (sys.dm_exec_requests (Transact-SQL)) ----

fn request_columns() -> Vec<Column> {
    vec![
        column("session_id", SqlType::SmallInt, false),
        column("request_id", SqlType::Int, false),
        column("start_time", SqlType::DateTime, false),
        column("status", SqlType::NVarChar(Some(30)), false),
        column("command", SqlType::NVarChar(Some(32)), false),
        column("database_id", SqlType::SmallInt, false),
        column("blocking_session_id", SqlType::SmallInt, true),
        column("wait_type", SqlType::NVarChar(Some(60)), true),
        column("wait_time", SqlType::Int, false),
        column("percent_complete", SqlType::Real, false),
        column("estimated_completion_time", SqlType::BigInt, false),
        column("cpu_time", SqlType::Int, false),
        column("total_elapsed_time", SqlType::Int, false),
    ]
}

/// System sessions that SQL Server always shows as background requests.
const BACKGROUND: &[(u16, &str)] = &[
    (1, "XE TIMER"),
    (2, "XE DISPATCHER"),
    (3, "LAZY WRITER"),
    (4, "LOG WRITER"),
    (5, "LOCK MONITOR"),
    (6, "SIGNAL HANDLER"),
    (7, "TASK MANAGER"),
    (8, "CHECKPOINT"),
];

fn exec_requests(state: &InstanceState, now: PrimitiveDateTime) -> VirtualTable {
    let mut rows = Vec::new();
    for (session_id, command) in BACKGROUND {
        rows.push(vec![
            Value::Int((*session_id).into()),
            Value::Int(0),
            Value::DateTime(now),
            text("background"),
            text(command),
            Value::Int(1),
            Value::Int(0),
            Value::Null,
            Value::Int(0),
            Value::Float(0.0),
            Value::Int(0),
            Value::Int(0),
            Value::Int(0),
        ]);
    }
    for (session_id, request) in &state.requests {
        let elapsed = i64::try_from(request.started.elapsed().as_millis()).unwrap_or(i64::MAX);
        rows.push(vec![
            Value::Int((*session_id).into()),
            Value::Int(0),
            Value::DateTime(request.start_time),
            text(request.status),
            text(&request.command),
            Value::Int(request.database_id.into()),
            Value::Int(0),
            request.wait_type.map_or(Value::Null, text),
            Value::Int(0),
            Value::Float(request.percent_complete.into()),
            Value::Int(request.estimated_completion_ms),
            Value::Int(elapsed / 4),
            Value::Int(elapsed.min(i64::from(i32::MAX))),
        ]);
    }
    VirtualTable {
        columns: request_columns(),
        rows,
    }
}

// ---- msdb.dbo.backupset (backupset (Transact-SQL)) ----

fn backup_set_columns() -> Vec<Column> {
    vec![
        column("backup_set_id", SqlType::Int, false),
        column("backup_set_uuid", SqlType::UniqueIdentifier, false),
        column("media_set_id", SqlType::Int, false),
        column("first_family_number", SqlType::TinyInt, true),
        column("first_media_number", SqlType::SmallInt, true),
        column("last_family_number", SqlType::TinyInt, true),
        column("last_media_number", SqlType::SmallInt, true),
        column("catalog_family_number", SqlType::TinyInt, true),
        column("catalog_media_number", SqlType::SmallInt, true),
        column("position", SqlType::Int, true),
        column("expiration_date", SqlType::DateTime, true),
        column("software_vendor_id", SqlType::Int, true),
        column("name", SYSNAME, true),
        column("description", SqlType::NVarChar(Some(255)), true),
        column("user_name", SYSNAME, true),
        column("software_major_version", SqlType::TinyInt, true),
        column("software_minor_version", SqlType::TinyInt, true),
        column("software_build_version", SqlType::SmallInt, true),
        column("time_zone", SqlType::SmallInt, true),
        column("mtf_minor_version", SqlType::TinyInt, true),
        column("first_lsn", LSN, true),
        column("last_lsn", LSN, true),
        column("checkpoint_lsn", LSN, true),
        column("database_backup_lsn", LSN, true),
        column("database_creation_date", SqlType::DateTime, true),
        column("backup_start_date", SqlType::DateTime, true),
        column("backup_finish_date", SqlType::DateTime, true),
        column("type", SqlType::Char(1), true),
        column("sort_order", SqlType::SmallInt, true),
        column("code_page", SqlType::SmallInt, true),
        column("compatibility_level", SqlType::TinyInt, true),
        column("database_version", SqlType::Int, true),
        column("backup_size", SIZE, true),
        column("database_name", SYSNAME, true),
        column("server_name", SYSNAME, true),
        column("machine_name", SYSNAME, true),
        column("flags", SqlType::Int, true),
        column("unicode_locale", SqlType::Int, true),
        column("unicode_compare_style", SqlType::Int, true),
        column("collation_name", SYSNAME, true),
        column("is_password_protected", SqlType::Bit, true),
        column("recovery_model", SqlType::NVarChar(Some(60)), true),
        column("has_bulk_logged_data", SqlType::Bit, true),
        column("is_snapshot", SqlType::Bit, true),
        column("is_readonly", SqlType::Bit, true),
        column("is_single_user", SqlType::Bit, true),
        column("has_backup_checksums", SqlType::Bit, true),
        column("is_damaged", SqlType::Bit, true),
        column("begins_log_chain", SqlType::Bit, true),
        column("has_incomplete_metadata", SqlType::Bit, true),
        column("is_force_offline", SqlType::Bit, true),
        column("is_copy_only", SqlType::Bit, true),
        column("first_recovery_fork_guid", SqlType::UniqueIdentifier, true),
        column("last_recovery_fork_guid", SqlType::UniqueIdentifier, true),
        column("fork_point_lsn", LSN, true),
        column("database_guid", SqlType::UniqueIdentifier, true),
        column("family_guid", SqlType::UniqueIdentifier, true),
        column("differential_base_lsn", LSN, true),
        column("differential_base_guid", SqlType::UniqueIdentifier, true),
        column("compressed_backup_size", SIZE, true),
        column("key_algorithm", SqlType::NVarChar(Some(32)), true),
        column("encryptor_thumbprint", SqlType::VarBinary(20), true),
        column("encryptor_type", SqlType::NVarChar(Some(32)), true),
    ]
}

fn backup_sets(state: &InstanceState) -> VirtualTable {
    let mut rows = Vec::new();
    for set in &state.history.sets {
        let flags = backup_flags(set);
        rows.push(vec![
            Value::Int(set.backup_set_id.into()),
            Value::Guid(set.backup_set_uuid),
            Value::Int(set.media_set_id.into()),
            Value::Int(1),
            Value::Int(1),
            Value::Int(1),
            Value::Int(1),
            Value::Int(1),
            Value::Int(1),
            Value::Int(set.position.into()),
            Value::Null,
            Value::Int(4608),
            optional_text(&set.name),
            optional_text(&set.description),
            text(&set.user_name),
            Value::Int(set.software_major.into()),
            Value::Int(set.software_minor.into()),
            Value::Int(set.software_build.into()),
            Value::Int(set.time_zone.into()),
            Value::Int(0),
            lsn(set.first_lsn),
            lsn(set.last_lsn),
            lsn(set.checkpoint_lsn),
            lsn(set.database_backup_lsn),
            Value::DateTime(set.database_creation_date),
            Value::DateTime(set.backup_start_date),
            Value::DateTime(set.backup_finish_date),
            text(type_letter(set.backup_type)),
            Value::Int(52),
            Value::Int(0),
            Value::Int(set.compatibility_level.into()),
            Value::Int(set.database_version.into()),
            Value::Numeric(set.backup_size.into()),
            text(&set.database_name),
            text(&set.server_name),
            text(&set.machine_name),
            Value::Int(flags),
            Value::Int(1033),
            Value::Int(196_609),
            text("SQL_Latin1_General_CP1_CI_AS"),
            Value::Bool(false),
            text(recovery_text(set.recovery_model)),
            Value::Bool(false),
            Value::Bool(false),
            Value::Bool(set.is_readonly),
            Value::Bool(false),
            Value::Bool(set.has_backup_checksums),
            Value::Bool(false),
            Value::Bool(set.begins_log_chain),
            Value::Bool(false),
            Value::Bool(false),
            Value::Bool(set.is_copy_only),
            Value::Guid(set.recovery_fork_guid),
            Value::Guid(set.recovery_fork_guid),
            Value::Null,
            Value::Guid(set.database_guid),
            Value::Guid(set.family_guid),
            set.differential_base_lsn.map_or(Value::Null, lsn),
            set.differential_base_guid.map_or(Value::Null, Value::Guid),
            Value::Numeric(set.compressed_backup_size.into()),
            set.encryption
                .as_ref()
                .map_or(Value::Null, |encryption| text(&encryption.algorithm)),
            set.encryption.as_ref().map_or(Value::Null, |encryption| {
                Value::Bytes(encryption.thumbprint.to_vec())
            }),
            set.encryption
                .as_ref()
                .map_or(Value::Null, |encryption| text(encryption.encryptor_type)),
        ]);
    }
    VirtualTable {
        columns: backup_set_columns(),
        rows,
    }
}

/// `backupset.flags`, the bits RESTORE HEADERONLY documents for its Flags column:
/// 16 has checksums, 256 begins log chain, 1024 copy-only.
fn backup_flags(set: &super::history::BackupSetRecord) -> i64 {
    let mut flags = 0;
    if set.has_backup_checksums {
        flags |= 16;
    }
    if set.begins_log_chain {
        flags |= 256;
    }
    if set.is_copy_only {
        flags |= 1024;
    }
    flags
}

// ---- msdb.dbo.backupmediaset (backupmediaset (Transact-SQL)) ----

fn media_set_columns() -> Vec<Column> {
    vec![
        column("media_set_id", SqlType::Int, false),
        column("media_uuid", SqlType::UniqueIdentifier, true),
        column("media_family_count", SqlType::TinyInt, true),
        column("name", SYSNAME, true),
        column("description", SqlType::NVarChar(Some(255)), true),
        column("software_name", SYSNAME, true),
        column("software_vendor_id", SqlType::Int, true),
        column("MTF_major_version", SqlType::TinyInt, true),
        column("mirror_count", SqlType::TinyInt, true),
        column("is_password_protected", SqlType::Bit, true),
        column("is_compressed", SqlType::Bit, true),
        column("is_encrypted", SqlType::Bit, true),
    ]
}

fn media_sets(state: &InstanceState) -> VirtualTable {
    let rows = state
        .history
        .media_sets
        .iter()
        .map(|media| {
            vec![
                Value::Int(media.media_set_id.into()),
                Value::Guid(media.media_uuid),
                Value::Int(media.family_count.into()),
                Value::Null,
                Value::Null,
                text("Microsoft SQL Server"),
                Value::Int(4608),
                Value::Int(1),
                Value::Int(1),
                Value::Bool(false),
                Value::Bool(media.is_compressed),
                Value::Bool(media.is_encrypted),
            ]
        })
        .collect();
    VirtualTable {
        columns: media_set_columns(),
        rows,
    }
}

// ---- msdb.dbo.backupmediafamily (backupmediafamily (Transact-SQL)) ----

fn media_family_columns() -> Vec<Column> {
    vec![
        column("media_set_id", SqlType::Int, false),
        column("family_sequence_number", SqlType::TinyInt, false),
        column("media_family_id", SqlType::UniqueIdentifier, true),
        column("media_count", SqlType::Int, true),
        column("logical_device_name", SYSNAME, true),
        column("physical_device_name", SqlType::NVarChar(Some(260)), true),
        column("device_type", SqlType::TinyInt, true),
        column("physical_block_size", SqlType::Int, true),
        column("mirror", SqlType::TinyInt, false),
    ]
}

fn media_families(state: &InstanceState) -> VirtualTable {
    let rows = state
        .history
        .families
        .iter()
        .map(|family| {
            vec![
                Value::Int(family.media_set_id.into()),
                Value::Int(family.family_sequence_number.into()),
                Value::Guid(family.media_family_id),
                Value::Int(1),
                Value::Null,
                text(&family.physical_device_name),
                // 2 is a disk file (backupmediafamily device_type).
                Value::Int(2),
                Value::Int(family.physical_block_size.into()),
                Value::Int(0),
            ]
        })
        .collect();
    VirtualTable {
        columns: media_family_columns(),
        rows,
    }
}
