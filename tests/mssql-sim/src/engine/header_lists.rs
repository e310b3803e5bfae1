//! RESTORE HEADERONLY and RESTORE FILELISTONLY: result sets read from the backup file
//! itself, with the columns and types of their Microsoft doc pages.

use std::io::{Seek, SeekFrom};

use bakfile::{BackupSet, BackupType};

use super::batch::{Out, Outcome};
use super::catalog::FileKind;
use super::history::{recovery_text, BackupSetRecord};
use super::media::{self, BackupDevice};
use super::messages::{self, Msg};
use super::restore::backup_file_list;
use super::sql::ast::ListRequest;
use super::state::InstanceState;
use super::tables::{column, lsn, text, LSN, SIZE, SYSNAME};
use super::Instance;
use crate::reply::{Column, ReplyEvent, SqlType, Value};

/// Sends one row per backup set on the first device (RESTORE HEADERONLY (Transact-SQL)).
/// A single family of a striped media set is enough, as it is for SQL Server.
pub fn headers(instance: &Instance, request: &ListRequest, out: &mut Out) -> Outcome {
    const STATEMENT: &str = "RESTORE HEADERONLY";
    let device = media::resolve(instance, &request.devices[0]);
    let sets = match read_sets(&device, request.file) {
        Ok(sets) => sets,
        Err(error) => return fail(out, error, STATEMENT),
    };
    let file_length = file_length(&device);
    let state = instance.lock();
    let rows: Vec<Vec<Value>> = sets
        .iter()
        .map(|set| header_row(set, recorded_set(&state, set), file_length))
        .collect();
    drop(state);
    send_rows(out, header_columns(), rows)
}

/// Sends one row per data or log file of the backup set (RESTORE FILELISTONLY
/// (Transact-SQL)).
pub fn file_list(instance: &Instance, request: &ListRequest, out: &mut Out) -> Outcome {
    // 3013 names RESTORE FILELISTONLY "RESTORE FILELIST".
    const STATEMENT: &str = "RESTORE FILELIST";
    let device = media::resolve(instance, &request.devices[0]);
    let sets = match read_sets(&device, request.file.or(Some(1))) {
        Ok(sets) => sets,
        Err(error) => return fail(out, error, STATEMENT),
    };
    let set = &sets[0];
    let data_directory = instance.info.default_data_directory();
    let state = instance.lock();
    let rows = file_rows(&state, set, &data_directory);
    drop(state);
    send_rows(out, file_list_columns(), rows)
}

/// Reads the sets on the device, or only the one at `FILE = n` (4038 when it is
/// missing).
fn read_sets(device: &BackupDevice, file: Option<u32>) -> Result<Vec<BackupSet>, Msg> {
    let sets = media::read_headers(device)?;
    let Some(position) = file else {
        return Ok(sets);
    };
    let chosen: Vec<BackupSet> = sets
        .into_iter()
        .filter(|set| u32::from(set.position) == position)
        .collect();
    if chosen.is_empty() {
        return Err(messages::file_not_found_on_device(position, &device.name));
    }
    Ok(chosen)
}

fn fail(out: &mut Out, error: Msg, statement: &str) -> Outcome {
    out.error(error);
    out.error(messages::terminating(statement));
    Outcome::Failed
}

fn send_rows(out: &mut Out, columns: Vec<Column>, rows: Vec<Vec<Value>>) -> Outcome {
    let count = rows.len() as u64;
    out.send(ReplyEvent::Columns(columns));
    for row in rows {
        out.send(ReplyEvent::Row(row));
    }
    Outcome::Done {
        row_count: Some(count),
    }
}

fn file_length(device: &BackupDevice) -> Option<u64> {
    let mut file = media::open(device).ok()?;
    file.seek(SeekFrom::End(0)).ok()
}

/// Finds the msdb row of a set this instance wrote, which records what the header does
/// not: whether the set began a log chain and how it was encrypted.
fn recorded_set<'a>(state: &'a InstanceState, set: &BackupSet) -> Option<&'a BackupSetRecord> {
    state
        .history
        .sets
        .iter()
        .find(|record| record.backup_set_uuid == set.backup_set_guid)
}

// ---- HEADERONLY ----

fn header_columns() -> Vec<Column> {
    let guid = SqlType::UniqueIdentifier;
    vec![
        column("BackupName", SYSNAME, true),
        column("BackupDescription", SqlType::NVarChar(Some(255)), true),
        column("BackupType", SqlType::SmallInt, true),
        column("ExpirationDate", SqlType::DateTime, true),
        column("Compressed", SqlType::Bit, true),
        column("Position", SqlType::SmallInt, true),
        column("DeviceType", SqlType::TinyInt, true),
        column("UserName", SYSNAME, true),
        column("ServerName", SYSNAME, true),
        column("DatabaseName", SYSNAME, true),
        column("DatabaseVersion", SqlType::Int, true),
        column("DatabaseCreationDate", SqlType::DateTime, true),
        column("BackupSize", SIZE, true),
        column("FirstLSN", LSN, true),
        column("LastLSN", LSN, true),
        column("CheckpointLSN", LSN, true),
        column("DatabaseBackupLSN", LSN, true),
        column("BackupStartDate", SqlType::DateTime, true),
        column("BackupFinishDate", SqlType::DateTime, true),
        column("SortOrder", SqlType::SmallInt, true),
        column("CodePage", SqlType::SmallInt, true),
        column("UnicodeLocaleId", SqlType::Int, true),
        column("UnicodeComparisonStyle", SqlType::Int, true),
        column("CompatibilityLevel", SqlType::TinyInt, true),
        column("SoftwareVendorId", SqlType::Int, true),
        column("SoftwareVersionMajor", SqlType::Int, true),
        column("SoftwareVersionMinor", SqlType::Int, true),
        column("SoftwareVersionBuild", SqlType::Int, true),
        column("MachineName", SYSNAME, true),
        column("Flags", SqlType::Int, true),
        column("BindingID", guid, true),
        column("RecoveryForkID", guid, true),
        column("Collation", SYSNAME, true),
        column("FamilyGUID", guid, true),
        column("HasBulkLoggedData", SqlType::Bit, true),
        column("IsSnapshot", SqlType::Bit, true),
        column("IsReadOnly", SqlType::Bit, true),
        column("IsSingleUser", SqlType::Bit, true),
        column("HasBackupChecksums", SqlType::Bit, true),
        column("IsDamaged", SqlType::Bit, true),
        column("BeginsLogChain", SqlType::Bit, true),
        column("HasIncompleteMetaData", SqlType::Bit, true),
        column("IsForceOffline", SqlType::Bit, true),
        column("IsCopyOnly", SqlType::Bit, true),
        column("FirstRecoveryForkID", guid, true),
        column("ForkPointLSN", LSN, true),
        column("RecoveryModel", SqlType::NVarChar(Some(60)), true),
        column("DifferentialBaseLSN", LSN, true),
        column("DifferentialBaseGUID", guid, true),
        column("BackupTypeDescription", SqlType::NVarChar(Some(60)), true),
        column("BackupSetGUID", guid, true),
        column("CompressedBackupSize", SqlType::BigInt, true),
        column("containment", SqlType::TinyInt, false),
        column("KeyAlgorithm", SqlType::NVarChar(Some(32)), true),
        column("EncryptorThumbprint", SqlType::VarBinary(20), true),
        column("EncryptorType", SqlType::NVarChar(Some(32)), true),
    ]
}

/// `BackupType` number and `BackupTypeDescription` text.
fn backup_type_code(backup_type: BackupType) -> (i64, &'static str) {
    match backup_type {
        BackupType::Database => (1, "Database"),
        BackupType::Log => (2, "Transaction Log"),
        BackupType::File => (4, "File or Filegroup"),
        BackupType::Differential => (5, "Database Differential"),
        BackupType::FileDifferential => (6, "File Differential"),
        BackupType::Partial => (7, "Partial"),
        BackupType::PartialDifferential => (8, "Partial Differential"),
    }
}

fn header_row(
    set: &BackupSet,
    record: Option<&BackupSetRecord>,
    file_length: Option<u64>,
) -> Vec<Value> {
    let (type_number, type_text) = backup_type_code(set.backup_type);
    let differential = matches!(
        set.backup_type,
        BackupType::Differential | BackupType::FileDifferential | BackupType::PartialDifferential
    );
    let begins_log_chain = record.is_some_and(|record| record.begins_log_chain);
    // Flags bits as RESTORE HEADERONLY documents them: 16 backup checksums. The
    // simulator also sets 1024 for COPY_ONLY, as msdb.dbo.backupset.flags does here.
    let mut flags = 0;
    if set.has_checksums {
        flags |= 16;
    }
    if set.is_copy_only {
        flags |= 1024;
    }
    let compressed_size = match (set.compressed, file_length) {
        (true, Some(length)) => length,
        _ => set.backup_size,
    };
    let optional_text = |value: &str| {
        if value.is_empty() {
            Value::Null
        } else {
            text(value)
        }
    };
    let encryption = record.and_then(|record| record.encryption.as_ref());
    vec![
        optional_text(&set.backup_name),
        optional_text(&set.backup_description),
        Value::Int(type_number),
        Value::Null,
        Value::Bool(set.compressed),
        Value::Int(set.position.into()),
        // NOTE: disk files named with DISK = show device type 2 in SQL Server's output;
        // the doc page lists 2 as a logical and 102 as a physical disk device.
        Value::Int(2),
        text(&set.user_name),
        text(&set.server_name),
        text(&set.database_name),
        Value::Int(set.database_version.into()),
        Value::DateTime(set.database_creation_date),
        Value::Numeric(set.backup_size.into()),
        lsn(set.first_lsn),
        lsn(set.last_lsn),
        lsn(set.checkpoint_lsn),
        lsn(set.database_backup_lsn),
        Value::DateTime(set.backup_start_date),
        set.backup_finish_date.map_or(Value::Null, Value::DateTime),
        Value::Int(52),
        Value::Int(0),
        Value::Int(1033),
        Value::Int(196_609),
        Value::Int(set.compatibility_level.into()),
        Value::Int(4608),
        Value::Int(set.software_major.into()),
        Value::Int(set.software_minor.into()),
        Value::Int(set.software_build.into()),
        text(&set.machine_name),
        Value::Int(flags),
        Value::Guid(set.binding_id),
        Value::Guid(set.recovery_fork_id),
        text(
            &set.collation
                .name()
                .unwrap_or_else(|| "SQL_Latin1_General_CP1_CI_AS".into()),
        ),
        Value::Guid(set.family_guid),
        Value::Bool(false),
        Value::Bool(false),
        Value::Bool(false),
        Value::Bool(false),
        Value::Bool(set.has_checksums),
        Value::Bool(false),
        Value::Bool(begins_log_chain),
        Value::Bool(false),
        Value::Bool(false),
        Value::Bool(set.is_copy_only),
        Value::Guid(set.recovery_fork_id),
        Value::Null,
        text(recovery_text(set.recovery_model)),
        if differential {
            lsn(set.database_backup_lsn)
        } else {
            Value::Null
        },
        if differential {
            set.differential_base_guid.map_or(Value::Null, Value::Guid)
        } else {
            Value::Null
        },
        text(type_text),
        Value::Guid(set.backup_set_guid),
        Value::Int(i64::try_from(compressed_size).unwrap_or(i64::MAX)),
        Value::Int(0),
        encryption.map_or(Value::Null, |encryption| text(&encryption.algorithm)),
        encryption.map_or(Value::Null, |encryption| {
            Value::Bytes(encryption.thumbprint.to_vec())
        }),
        encryption.map_or(Value::Null, |encryption| text(encryption.encryptor_type)),
    ]
}

// ---- FILELISTONLY ----

fn file_list_columns() -> Vec<Column> {
    vec![
        column("LogicalName", SYSNAME, true),
        column("PhysicalName", SqlType::NVarChar(Some(260)), true),
        column("Type", SqlType::Char(1), true),
        column("FileGroupName", SYSNAME, true),
        column("Size", SIZE, true),
        column("MaxSize", SIZE, true),
        column("FileID", SqlType::BigInt, true),
        column("CreateLSN", LSN, true),
        column("DropLSN", LSN, true),
        column("UniqueID", SqlType::UniqueIdentifier, true),
        column("ReadOnlyLSN", LSN, true),
        column("ReadWriteLSN", LSN, true),
        column("BackupSizeInBytes", SqlType::BigInt, true),
        column("SourceBlockSize", SqlType::Int, true),
        column("FileGroupID", SqlType::Int, true),
        column("LogGroupGUID", SqlType::UniqueIdentifier, true),
        column("DifferentialBaseLSN", LSN, true),
        column("DifferentialBaseGUID", SqlType::UniqueIdentifier, true),
        column("IsReadOnly", SqlType::Bit, true),
        column("IsPresent", SqlType::Bit, true),
        column("TDEThumbprint", SqlType::VarBinary(32), true),
        column("SnapshotURL", SqlType::NVarChar(Some(360)), true),
    ]
}

fn file_rows(state: &InstanceState, set: &BackupSet, data_directory: &str) -> Vec<Vec<Value>> {
    let files = backup_file_list(state, set, data_directory);
    let recorded = recorded_set(state, set).map(|record| record.backup_set_id);
    let log_backup = set.backup_type == BackupType::Log;
    let differential = set.backup_type == BackupType::Differential;
    files
        .iter()
        .map(|file| {
            let row = recorded.and_then(|id| {
                state
                    .history
                    .files
                    .iter()
                    .find(|row| row.backup_set_id == id && row.file.file_id == file.file_id)
            });
            let data = file.kind == FileKind::Rows;
            let present = row.map_or(!(log_backup && data), |row| row.is_present);
            let backed_up_pages = row.map_or(0, |row| row.backed_up_pages);
            let base = differential && data;
            // Unlimited data files show their largest possible size; logs 2 TiB.
            let max_size: u64 = if data {
                35_184_372_080_640
            } else {
                2_199_023_255_552
            };
            vec![
                text(&file.logical_name),
                text(&file.physical_name),
                text(file.kind.backup_letter()),
                if data { text("PRIMARY") } else { Value::Null },
                Value::Numeric((file.size_pages * 8192).into()),
                Value::Numeric(max_size.into()),
                Value::Int(file.file_id.into()),
                lsn(file.create_lsn),
                Value::Null,
                Value::Guid(file.file_guid),
                Value::Null,
                Value::Null,
                Value::Int(i64::try_from(backed_up_pages * 8192).unwrap_or(i64::MAX)),
                Value::Int(512),
                Value::Int(if data { 1 } else { 0 }),
                Value::Null,
                if base {
                    lsn(set.database_backup_lsn)
                } else {
                    Value::Null
                },
                if base {
                    set.differential_base_guid.map_or(Value::Null, Value::Guid)
                } else {
                    Value::Null
                },
                Value::Bool(false),
                Value::Bool(present),
                Value::Null,
                Value::Null,
            ]
        })
        .collect()
}
