//! BACKUP DATABASE [WITH DIFFERENTIAL] and BACKUP LOG: the checks SQL Server makes, the
//! backup file written with bakfile's writer, progress, faults, and the msdb rows.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use bakfile::{BackupSet, BackupType, Collation, Lsn, RecoveryModel as FileRecoveryModel};
use uuid::Uuid;

use super::batch::{Out, Outcome};
use super::catalog::FileKind;
use super::catalog::{BackupLsns, Database};
use super::fault::Fault;
use super::history::{
    BackupEncryptionRecord, BackupFileRecord, BackupSetRecord, MediaFamilyRecord, MediaSetRecord,
};
use super::media::{self, BackupDevice};
use super::messages::{self, Msg};
use super::paths::Device;
use super::sql::ast::{Backup, BackupKind};
use super::{backup_options, ddl, stripes, Instance, Session};
use crate::config::{DatabaseState, Edition, RecoveryModel};

const PAGE: usize = 8192;
/// Devices one BACKUP may stripe over (BACKUP (Transact-SQL): up to 64 devices).
const MAX_FAMILIES: usize = 64;

/// Why a backup did not complete.
pub(super) enum Stop {
    /// Errors to send before 3013.
    Fail(Vec<Msg>),
    /// Cancelled by the client or the connection is being dropped: send nothing more.
    Stopped,
}

impl From<Msg> for Stop {
    fn from(msg: Msg) -> Stop {
        Stop::Fail(vec![msg])
    }
}

/// Runs one BACKUP statement.
pub fn run(instance: &Instance, session: &mut Session, request: &Backup, out: &mut Out) -> Outcome {
    let statement = match request.kind {
        BackupKind::Database => "BACKUP DATABASE",
        BackupKind::Log => "BACKUP LOG",
    };
    match backup(instance, session, request, out) {
        Ok(()) => Outcome::Done { row_count: None },
        Err(Stop::Stopped) => Outcome::Stopped,
        Err(Stop::Fail(errors)) => {
            tracing::info!(instance = %instance.name(), database = %request.database, error = ?errors.first().map(|msg| msg.number), "backup failed");
            for error in errors {
                out.error(error);
            }
            out.error(messages::terminating(statement));
            Outcome::Failed
        }
    }
}

/// Everything decided before writing starts.
pub(super) struct Plan {
    pub(super) set: BackupSet,
    /// WITH ENCRYPTION: recorded in msdb, but the file is written unencrypted.
    encryption: Option<BackupEncryptionRecord>,
    lsns: BackupLsns,
    /// One device per media family, in family sequence order.
    pub(super) devices: Vec<BackupDevice>,
    pub(super) data_pages: u64,
    pub(super) log_pages: u64,
    data_file: String,
    log_file: String,
}

fn backup(
    instance: &Instance,
    session: &mut Session,
    request: &Backup,
    out: &mut Out,
) -> Result<(), Stop> {
    let encryption = check_request(instance, session, request)?;
    let devices: Vec<BackupDevice> = request
        .devices
        .iter()
        .map(|path| media::resolve(instance, path))
        .collect();
    if let Some(first) = devices.first() {
        deny_access_if_armed(instance, &first.name)?;
    }
    let mut files = Vec::new();
    for device in &devices {
        match open_device(&device.device, &device.name) {
            Ok(file) => files.push(file),
            Err(stop) => {
                devices.iter().take(files.len()).for_each(remove_partial);
                return Err(stop);
            }
        }
    }
    let mut plan = plan(instance, session, request, devices)?;
    plan.encryption = encryption;
    let started = Instant::now();
    let written = stripes::write(instance, session, request, &plan, files, out);
    let (set, file_len) = match written {
        Ok(result) => result,
        Err(stop) => {
            plan.devices.iter().for_each(remove_partial);
            return Err(stop);
        }
    };
    corrupt_if_armed(instance, &plan);
    record(instance, request, &plan, &set, file_len);
    report(request, &plan, started, out);
    tracing::info!(
        instance = %instance.name(),
        database = %set.database_name,
        backup_type = ?set.backup_type,
        bytes = file_len,
        first_lsn = %set.first_lsn.to_numeric(),
        last_lsn = %set.last_lsn.to_numeric(),
        "backup written"
    );
    Ok(())
}

// ---- checks ----

/// Runs the checks SQL Server makes before it opens the device, in its order, and
/// returns the encryptor of WITH ENCRYPTION.
fn check_request(
    instance: &Instance,
    session: &Session,
    request: &Backup,
) -> Result<Option<BackupEncryptionRecord>, Stop> {
    if session.transaction_depth > 0 {
        return Err(messages::within_transaction().into());
    }
    let encryption = backup_options::check(&instance.config, &request.options)?;
    if request.devices.len() > MAX_FAMILIES {
        return Err(Msg {
            number: 3205,
            state: 1,
            class: 16,
            text: format!(
                "Too many backup devices specified for backup or restore; only {MAX_FAMILIES} are allowed."
            ),
        }
        .into());
    }
    let state = instance.lock();
    // NOTE: state 11 for an unknown database in BACKUP is a guess; no doc page gives it.
    let database = state
        .database(&request.database)
        .ok_or_else(|| messages::database_not_found(&request.database, 11))?;
    check_database(database, request)?;
    let compress = request.options.compression == Some(true);
    if compress && instance.info.edition == Edition::Express {
        return Err(messages::compression_unsupported(instance.info.edition_text()).into());
    }
    // TODO: Express edition is not checked for WITH ENCRYPTION; no error for it is known.
    Ok(encryption)
}

fn check_database(database: &Database, request: &Backup) -> Result<(), Msg> {
    let name = &database.name;
    if name.eq_ignore_ascii_case("tempdb") {
        return Err(messages::tempdb_backup());
    }
    if database.source_database_id.is_some() {
        return Err(messages::snapshot_backup());
    }
    if database.state == DatabaseState::Emergency {
        return Err(messages::emergency_backup());
    }
    if let Some(error) = ddl::open_error(name, database.state) {
        return Err(error);
    }
    let differential = request.kind == BackupKind::Database && request.options.differential;
    let log = request.kind == BackupKind::Log;
    if name.eq_ignore_ascii_case("master") && (differential || log) {
        return Err(messages::master_full_only());
    }
    if log && database.recovery_model == RecoveryModel::Simple {
        return Err(messages::log_under_simple());
    }
    if differential && database.base.is_none() {
        return Err(messages::no_differential_base(name));
    }
    if log && database.log.chain_start.is_none() {
        return Err(messages::log_without_full());
    }
    Ok(())
}

/// Creates the backup file. SQL Server reports a missing directory as operating system
/// error 3 and a path it may not write (or a directory) as error 5 (error 3201).
fn open_device(device: &Device, name: &str) -> Result<Option<File>, Stop> {
    let path = match device {
        Device::Null => return Ok(None),
        Device::Unreachable => {
            return Err(messages::cannot_open_device(name, messages::OS_PATH_NOT_FOUND).into())
        }
        Device::File(path) => path,
    };
    if !path.parent().is_some_and(Path::is_dir) {
        return Err(messages::cannot_open_device(name, messages::OS_PATH_NOT_FOUND).into());
    }
    if path.is_dir() {
        return Err(messages::cannot_open_device(name, messages::OS_ACCESS_DENIED).into());
    }
    // TODO: SQL Server appends to an existing file under NOINIT. bakfile's writer
    // always starts a new media, so every backup here overwrites the file as INIT does.
    File::create(path).map(Some).map_err(|error| {
        let os_error = match error.kind() {
            io::ErrorKind::NotFound => messages::OS_PATH_NOT_FOUND,
            _ => messages::OS_ACCESS_DENIED,
        };
        messages::cannot_open_device(name, os_error).into()
    })
}

/// Fails with 3201 and operating system error 5 when [`Fault::DenyAccess`] is armed,
/// before any file is created.
fn deny_access_if_armed(instance: &Instance, name: &str) -> Result<(), Stop> {
    let denied = instance
        .lock()
        .take_fault(|fault| matches!(fault, Fault::DenyAccess));
    match denied {
        Some(_) => Err(messages::cannot_open_device(name, messages::OS_ACCESS_DENIED).into()),
        None => Ok(()),
    }
}

// ---- plan ----

fn plan(
    instance: &Instance,
    session: &Session,
    request: &Backup,
    devices: Vec<BackupDevice>,
) -> Result<Plan, Stop> {
    let info = &instance.info;
    let now = instance.now();
    let mut state = instance.lock();
    let database = state
        .database_mut(&request.database)
        .ok_or_else(|| messages::database_not_found(&request.database, 11))?;
    database.simulate_activity();
    let differential = request.kind == BackupKind::Database && request.options.differential;
    let (backup_type, lsns, data_pages, log_pages) = match request.kind {
        BackupKind::Log => {
            let lsns = database
                .log_backup_lsns()
                .ok_or_else(messages::log_without_full)?;
            let pages = database.log.pending_bytes.div_ceil(PAGE as u64).max(1);
            (BackupType::Log, lsns, 0, pages)
        }
        BackupKind::Database if differential => {
            let lsns = database.data_backup_lsns();
            (
                BackupType::Differential,
                lsns,
                database.changed_pages + 8,
                2,
            )
        }
        BackupKind::Database => (
            BackupType::Database,
            database.data_backup_lsns(),
            database.pages(),
            2,
        ),
    };
    let compressed = request.options.compression == Some(true);
    // NOTE: unverified assumption that COMPRESSION implies CHECKSUM unless NO_CHECKSUM
    // is given. NO_CHECKSUM is the documented default without compression.
    let has_checksums = request.options.checksum.unwrap_or(compressed);
    let (data_file, log_file) = database.logical_file_names();
    let set = BackupSet {
        backup_type,
        position: 1,
        database_name: database.name.clone(),
        server_name: info.server_name(),
        machine_name: info.machine_name.clone(),
        user_name: session.login.clone(),
        backup_name: request.options.name.clone().unwrap_or_default(),
        backup_description: request.options.description.clone().unwrap_or_default(),
        software_major: info.version.major,
        software_minor: info.version.minor,
        software_build: info.version.build,
        database_version: info.database_version(),
        compatibility_level: database.compatibility_level,
        first_lsn: lsns.first,
        last_lsn: lsns.last,
        checkpoint_lsn: lsns.checkpoint,
        database_backup_lsn: lsns.database_backup,
        database_creation_date: database.create_date,
        backup_start_date: now,
        backup_finish_date: None,
        time_zone: i8::try_from(info.time_zone_minutes / 15).unwrap_or(i8::MAX),
        backup_size: (data_pages + log_pages) * PAGE as u64,
        has_checksums,
        is_copy_only: request.options.copy_only && !differential,
        compressed,
        backup_set_guid: Uuid::new_v4(),
        differential_base_guid: database.base.map(|base| base.backup_set_uuid),
        family_guid: database.family_guid,
        binding_id: database.binding_id,
        recovery_fork_id: database.recovery_fork_guid,
        recovery_model: file_recovery_model(database.recovery_model),
        collation: Collation::default(),
        media_set_guid: Uuid::new_v4(),
        family_count: u16::try_from(devices.len()).unwrap_or(1),
        family_sequence: 1,
        provisional: false,
    };
    Ok(Plan {
        set,
        encryption: None,
        lsns,
        devices,
        data_pages,
        log_pages,
        data_file,
        log_file,
    })
}

fn file_recovery_model(model: RecoveryModel) -> FileRecoveryModel {
    match model {
        RecoveryModel::Full => FileRecoveryModel::Full,
        RecoveryModel::BulkLogged => FileRecoveryModel::BulkLogged,
        RecoveryModel::Simple => FileRecoveryModel::Simple,
    }
}

fn remove_partial(device: &BackupDevice) {
    if let Device::File(path) = &device.device {
        let _ = std::fs::remove_file(path);
    }
}

// ---- after writing ----

/// Flips one byte of the finished file when [`Fault::CorruptNextBackup`] is armed.
fn corrupt_if_armed(instance: &Instance, plan: &Plan) {
    let Device::File(path) = &plan.devices[0].device else {
        return;
    };
    let fault = instance
        .lock()
        .take_fault(|fault| matches!(fault, Fault::CorruptNextBackup { .. }));
    let Some(Fault::CorruptNextBackup { what }) = fault else {
        return;
    };
    let length = std::fs::metadata(path).map(|meta| meta.len()).unwrap_or(0);
    let offset = corruption_offset(what, length, plan.set.compressed);
    if let Err(error) = flip_byte(path, offset) {
        tracing::warn!(instance = %instance.name(), path = %path.display(), %error, "cannot corrupt backup file");
    } else {
        tracing::info!(instance = %instance.name(), path = %path.display(), offset, ?what, "backup file corrupted");
    }
}

/// Flips one byte of a file that was just verified when [`Fault::CorruptAfterVerify`] is
/// armed.
pub(super) fn corrupt_after_verify(instance: &Instance, device: &Device) {
    let Device::File(path) = device else {
        return;
    };
    let fault = instance
        .lock()
        .take_fault(|fault| matches!(fault, Fault::CorruptAfterVerify { .. }));
    let Some(Fault::CorruptAfterVerify { what }) = fault else {
        return;
    };
    let length = std::fs::metadata(path).map(|meta| meta.len()).unwrap_or(0);
    let offset = corruption_offset(what, length, false);
    match flip_byte(path, offset) {
        Ok(()) => {
            tracing::info!(instance = %instance.name(), path = %path.display(), offset, ?what, "verified file corrupted")
        }
        Err(error) => {
            tracing::warn!(instance = %instance.name(), path = %path.display(), %error, "cannot corrupt verified file")
        }
    }
}

/// Picks the byte to flip: for a header, one inside the first descriptor block's
/// checksummed words (or the compressed container's first record); for the payload, the
/// middle of the file.
fn corruption_offset(what: super::fault::Corruption, length: u64, compressed: bool) -> u64 {
    match what {
        super::fault::Corruption::HeaderByte if compressed => 0x1E0 + 40,
        super::fault::Corruption::HeaderByte => 20,
        super::fault::Corruption::PayloadByte => length / 2,
    }
}

fn flip_byte(path: &PathBuf, offset: u64) -> io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)?;
    let mut byte = [0u8];
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(&mut byte)?;
    byte[0] ^= 0xFF;
    file.seek(SeekFrom::Start(offset))?;
    file.write_all(&byte)?;
    file.sync_all()
}

/// Inserts the msdb rows and moves the database's backup bases.
fn record(instance: &Instance, request: &Backup, plan: &Plan, set: &BackupSet, file_len: u64) {
    let mut state = instance.lock();
    let media_set_id = state.history.next_media_set_id();
    let backup_set_id = state.history.next_backup_set_id();
    let mut begins_log_chain = false;
    let mut database_guid = Uuid::nil();
    let mut file_rows = Vec::new();
    if let Some(database) = state.database_mut(&set.database_name) {
        database_guid = database.guid;
        file_rows = backup_files(database, backup_set_id, plan);
        match set.backup_type {
            BackupType::Log => {
                begins_log_chain = !database.log.chain_has_log_backup;
                database.log_backup_done(&plan.lsns, request.options.copy_only);
            }
            BackupType::Differential => database.differential_done(&plan.lsns),
            _ => database.full_backup_done(
                &plan.lsns,
                set.backup_set_guid,
                set.backup_start_date,
                set.is_copy_only,
            ),
        }
    }
    state.history.files.extend(file_rows);
    let differential = set.backup_type == BackupType::Differential;
    let misrecord = state
        .take_fault(|fault| matches!(fault, Fault::MisrecordNextHistory))
        .is_some();
    let (backup_set_uuid, last_lsn) = if misrecord {
        tracing::info!(instance = %instance.name(), database = %set.database_name, "msdb row misrecorded");
        let shifted = Lsn {
            slot: set.last_lsn.slot.wrapping_add(1),
            ..set.last_lsn
        };
        (Uuid::new_v4(), shifted)
    } else {
        (set.backup_set_guid, set.last_lsn)
    };
    state.history.media_sets.push(MediaSetRecord {
        media_set_id,
        media_uuid: set.media_set_guid,
        family_count: u8::try_from(plan.devices.len()).unwrap_or(u8::MAX),
        is_compressed: set.compressed,
        is_encrypted: plan.encryption.is_some(),
    });
    for (index, device) in plan.devices.iter().enumerate() {
        state.history.families.push(MediaFamilyRecord {
            media_set_id,
            family_sequence_number: u8::try_from(index + 1).unwrap_or(u8::MAX),
            media_family_id: Uuid::new_v4(),
            physical_device_name: device.name.clone(),
            physical_block_size: i32::try_from(instance.config.block_size.bytes()).unwrap_or(512),
        });
    }
    state.history.sets.push(BackupSetRecord {
        backup_set_id,
        backup_set_uuid,
        media_set_id,
        position: 1,
        name: request.options.name.clone(),
        description: request.options.description.clone(),
        user_name: set.user_name.clone(),
        software_major: set.software_major,
        software_minor: set.software_minor,
        software_build: set.software_build,
        time_zone: set.time_zone.into(),
        first_lsn: set.first_lsn,
        last_lsn,
        checkpoint_lsn: set.checkpoint_lsn,
        database_backup_lsn: set.database_backup_lsn,
        database_creation_date: set.database_creation_date,
        backup_start_date: set.backup_start_date,
        backup_finish_date: set.backup_finish_date.unwrap_or(set.backup_start_date),
        backup_type: set.backup_type,
        compatibility_level: set.compatibility_level,
        database_version: set.database_version.into(),
        backup_size: set.backup_size,
        compressed_backup_size: file_len,
        database_name: set.database_name.clone(),
        server_name: set.server_name.clone(),
        machine_name: set.machine_name.clone(),
        recovery_model: set.recovery_model,
        has_backup_checksums: set.has_checksums,
        is_copy_only: set.is_copy_only,
        begins_log_chain,
        is_readonly: false,
        database_guid,
        family_guid: set.family_guid,
        recovery_fork_guid: set.recovery_fork_id,
        differential_base_lsn: differential.then_some(set.database_backup_lsn),
        differential_base_guid: if differential {
            set.differential_base_guid
        } else {
            None
        },
        encryption: plan.encryption.clone(),
    });
}

/// Builds the msdb.dbo.backupfile rows: every file of the database, with the pages this
/// backup carries of it. A log backup carries only the log file (backupfile (Transact-SQL),
/// is_present).
fn backup_files(database: &Database, backup_set_id: i32, plan: &Plan) -> Vec<BackupFileRecord> {
    let log_backup = plan.set.backup_type == BackupType::Log;
    let differential = plan.set.backup_type == BackupType::Differential;
    database
        .files
        .iter()
        .map(|file| {
            let (pages, present) = match file.kind {
                FileKind::Rows => (if log_backup { 0 } else { plan.data_pages }, !log_backup),
                FileKind::Log => (plan.log_pages, true),
            };
            let base = database
                .base
                .filter(|_| differential && file.kind == FileKind::Rows);
            BackupFileRecord {
                backup_set_id,
                file: file.clone(),
                backed_up_pages: pages,
                is_present: present,
                differential_base_lsn: base.map(|base| base.checkpoint_lsn),
                differential_base_guid: base.map(|base| base.backup_set_uuid),
            }
        })
        .collect()
}

/// Sends 4035 per file and the closing 3014.
fn report(request: &Backup, plan: &Plan, started: Instant, out: &mut Out) {
    let database = &plan.set.database_name;
    if request.kind == BackupKind::Database {
        out.info(messages::pages_processed(
            plan.data_pages,
            database,
            &plan.data_file,
            1,
        ));
    }
    out.info(messages::pages_processed(
        plan.log_pages,
        database,
        &plan.log_file,
        1,
    ));
    let statement = match plan.set.backup_type {
        BackupType::Log => "BACKUP LOG",
        BackupType::Differential => "BACKUP DATABASE WITH DIFFERENTIAL",
        _ => "BACKUP DATABASE",
    };
    let millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    out.info(messages::backup_succeeded(
        statement,
        plan.data_pages + plan.log_pages,
        millis,
    ));
}
