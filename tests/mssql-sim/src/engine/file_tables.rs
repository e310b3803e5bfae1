//! Virtual tables about database files and log chains: sys.master_files,
//! sys.database_recovery_status and msdb.dbo.backupfile, with the columns of their
//! Microsoft doc pages.

use super::catalog::{state_code, Database, FileKind};
use super::history::BackupFileRecord;
use super::state::InstanceState;
use super::tables::{column, lsn, text, VirtualTable, LSN, SIZE, SYSNAME};
use crate::config::DatabaseState;
use crate::reply::{Column, SqlType, Value};

const PATH: SqlType = SqlType::NVarChar(Some(260));
/// `numeric(10,0)`, which backupfile uses for file numbers and page counts.
const COUNT: SqlType = SqlType::Numeric {
    precision: 10,
    scale: 0,
};

// ---- sys.master_files (sys.master_files (Transact-SQL)) ----

pub fn master_file_columns() -> Vec<Column> {
    vec![
        column("database_id", SqlType::Int, false),
        column("file_id", SqlType::Int, false),
        column("file_guid", SqlType::UniqueIdentifier, true),
        column("type", SqlType::TinyInt, false),
        column("type_desc", SqlType::NVarChar(Some(60)), true),
        column("data_space_id", SqlType::Int, false),
        column("name", SYSNAME, false),
        column("physical_name", PATH, false),
        column("state", SqlType::TinyInt, true),
        column("state_desc", SqlType::NVarChar(Some(60)), true),
        column("size", SqlType::Int, false),
        column("max_size", SqlType::Int, false),
        column("growth", SqlType::Int, false),
        column("is_media_read_only", SqlType::Bit, false),
        column("is_read_only", SqlType::Bit, false),
        column("is_sparse", SqlType::Bit, false),
        column("is_percent_growth", SqlType::Bit, false),
        column("is_name_reserved", SqlType::Bit, false),
        column("is_persistent_log_buffer", SqlType::Bit, false),
        column("create_lsn", LSN, true),
        column("drop_lsn", LSN, true),
        column("read_only_lsn", LSN, true),
        column("read_write_lsn", LSN, true),
        column("differential_base_lsn", LSN, true),
        column("differential_base_guid", SqlType::UniqueIdentifier, true),
        column("differential_base_time", SqlType::DateTime, true),
        column("redo_start_lsn", LSN, true),
        column("redo_start_fork_guid", SqlType::UniqueIdentifier, true),
        column("redo_target_lsn", LSN, true),
        column("redo_target_fork_guid", SqlType::UniqueIdentifier, true),
        column("backup_lsn", LSN, true),
        column("credential_id", SqlType::Int, true),
    ]
}

/// Builds one row per file of every database. The differential base columns are set on
/// data files once a full backup that is not COPY_ONLY exists, and they stay through a
/// switch to SIMPLE, which breaks only the log chain.
pub fn master_files(state: &InstanceState) -> VirtualTable {
    let mut rows = Vec::new();
    for database in &state.databases {
        let (file_state, file_state_desc) = file_state(database.state);
        for file in &database.files {
            let (kind, kind_desc) = file.kind.code();
            let base = database.base.filter(|_| file.kind == FileKind::Rows);
            let (max_size, growth, percent) = match file.kind {
                // NOTE: growth and limits as recent versions give new files (64 MiB steps,
                // data unlimited, log up to 2 TiB); no doc page was checked for them.
                FileKind::Rows => (-1, 8192, false),
                FileKind::Log => (268_435_456, 8192, false),
            };
            rows.push(vec![
                Value::Int(database.id.into()),
                Value::Int(file.file_id.into()),
                Value::Guid(file.file_guid),
                Value::Int(kind.into()),
                text(kind_desc),
                Value::Int(if file.kind == FileKind::Rows { 1 } else { 0 }),
                text(&file.logical_name),
                text(&file.physical_name),
                Value::Int(file_state.into()),
                text(file_state_desc),
                Value::Int(i64::try_from(file.size_pages).unwrap_or(i64::MAX)),
                Value::Int(max_size),
                Value::Int(growth),
                Value::Bool(false),
                Value::Bool(database.read_only && file.kind == FileKind::Rows),
                Value::Bool(false),
                Value::Bool(percent),
                Value::Bool(false),
                Value::Bool(false),
                lsn_or_null(file.create_lsn, database.id),
                Value::Null,
                Value::Null,
                Value::Null,
                base.map_or(Value::Null, |base| lsn(base.checkpoint_lsn)),
                base.map_or(Value::Null, |base| Value::Guid(base.backup_set_uuid)),
                base.map_or(Value::Null, |base| Value::DateTime(base.backup_start)),
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
            ]);
        }
    }
    VirtualTable {
        columns: master_file_columns(),
        rows,
    }
}

/// Returns `create_lsn`: NULL for the files of the system databases, the database's
/// first LSN otherwise.
fn lsn_or_null(create_lsn: bakfile::Lsn, database_id: i32) -> Value {
    // NOTE: real instances show 0 or NULL for files made by CREATE DATABASE; the
    // simulator sends NULL for system databases and the start LSN otherwise.
    if database_id <= 4 {
        Value::Null
    } else {
        lsn(create_lsn)
    }
}

/// File `state` and `state_desc` for a database state; file states skip 5 so they
/// match the database states (sys.master_files), and EMERGENCY files stay ONLINE.
fn file_state(state: DatabaseState) -> (u8, &'static str) {
    match state {
        DatabaseState::Emergency => (0, "ONLINE"),
        other => state_code(other),
    }
}

// ---- sys.database_recovery_status (sys.database_recovery_status (Transact-SQL)) ----

pub fn recovery_status_columns() -> Vec<Column> {
    vec![
        column("database_id", SqlType::Int, false),
        column("database_guid", SqlType::UniqueIdentifier, true),
        column("family_guid", SqlType::UniqueIdentifier, true),
        column("last_log_backup_lsn", LSN, true),
        column("recovery_fork_guid", SqlType::UniqueIdentifier, true),
        column("first_recovery_fork_guid", SqlType::UniqueIdentifier, true),
        column("fork_point_lsn", LSN, true),
    ]
}

/// Builds one row per database. `last_log_backup_lsn` is where the next log backup
/// starts. Until a log backup is taken, it is the first LSN of the full backup that
/// started the log chain, then the last LSN of the newest log backup. It is NULL without
/// a log chain: no full backup yet, SIMPLE recovery, or a switch through SIMPLE since.
pub fn recovery_status(state: &InstanceState) -> VirtualTable {
    let rows = state.databases.iter().map(recovery_row).collect();
    VirtualTable {
        columns: recovery_status_columns(),
        rows,
    }
}

fn recovery_row(database: &Database) -> Vec<Value> {
    // The doc page gives NULL for a database that is offline or will not start.
    // NOTE: which other states (RESTORING, SUSPECT) show NULL is a guess.
    let started = matches!(
        database.state,
        DatabaseState::Online | DatabaseState::Emergency
    );
    let when_started = |value: Value| if started { value } else { Value::Null };
    vec![
        Value::Int(database.id.into()),
        when_started(Value::Guid(database.guid)),
        when_started(Value::Guid(database.family_guid)),
        when_started(database.log.chain_start.map_or(Value::Null, lsn)),
        when_started(Value::Guid(database.recovery_fork_guid)),
        when_started(Value::Guid(database.first_recovery_fork_guid)),
        when_started(database.fork_point_lsn.map_or(Value::Null, lsn)),
    ]
}

// ---- msdb.dbo.backupfile (backupfile (Transact-SQL)) ----

pub fn backup_file_columns() -> Vec<Column> {
    vec![
        column("backup_set_id", SqlType::Int, false),
        column("first_family_number", SqlType::TinyInt, true),
        column("first_media_number", SqlType::SmallInt, true),
        column("filegroup_name", SYSNAME, true),
        column("page_size", SqlType::Int, true),
        column("file_number", COUNT, false),
        column("backed_up_page_count", COUNT, true),
        column("file_type", SqlType::Char(1), true),
        column("source_file_block_size", COUNT, true),
        column("file_size", SIZE, true),
        column("logical_name", SYSNAME, true),
        column("physical_drive", PATH, true),
        column("physical_name", PATH, true),
        column("state", SqlType::TinyInt, true),
        column("state_desc", SqlType::NVarChar(Some(64)), true),
        column("create_lsn", LSN, true),
        column("drop_lsn", LSN, true),
        column("file_guid", SqlType::UniqueIdentifier, true),
        column("read_only_lsn", LSN, true),
        column("read_write_lsn", LSN, true),
        column("differential_base_lsn", LSN, true),
        column("differential_base_guid", SqlType::UniqueIdentifier, true),
        column("backup_size", SIZE, true),
        column("filegroup_guid", SqlType::UniqueIdentifier, true),
        column("is_readonly", SqlType::Bit, true),
        column("is_present", SqlType::Bit, true),
    ]
}

pub fn backup_files(state: &InstanceState) -> VirtualTable {
    let rows = state.history.files.iter().map(backup_file_row).collect();
    VirtualTable {
        columns: backup_file_columns(),
        rows,
    }
}

fn backup_file_row(record: &BackupFileRecord) -> Vec<Value> {
    let file = &record.file;
    let rows = file.kind == FileKind::Rows;
    vec![
        Value::Int(record.backup_set_id.into()),
        Value::Int(1),
        Value::Int(1),
        // Log files belong to no filegroup.
        if rows { text("PRIMARY") } else { Value::Null },
        Value::Int(8192),
        Value::Numeric(file.file_id.into()),
        Value::Numeric(record.backed_up_pages.into()),
        text(file.kind.backup_letter()),
        Value::Numeric(512),
        Value::Numeric((file.size_pages * 8192).into()),
        text(&file.logical_name),
        text(physical_drive(&file.physical_name)),
        text(&file.physical_name),
        Value::Int(0),
        text("ONLINE"),
        lsn(file.create_lsn),
        Value::Null,
        Value::Guid(file.file_guid),
        Value::Null,
        Value::Null,
        record.differential_base_lsn.map_or(Value::Null, lsn),
        record
            .differential_base_guid
            .map_or(Value::Null, Value::Guid),
        Value::Numeric((record.backed_up_pages * 8192).into()),
        // NOTE: SQL Server fills filegroup_guid for PRIMARY too; the simulator has no
        // filegroup identity and sends NULL.
        Value::Null,
        Value::Bool(false),
        Value::Bool(record.is_present),
    ]
}

/// Returns the drive or root part of a server path, e.g. `C:\` or `/`.
fn physical_drive(path: &str) -> &str {
    if path.starts_with('/') {
        "/"
    } else {
        path.get(..3).unwrap_or(path)
    }
}
