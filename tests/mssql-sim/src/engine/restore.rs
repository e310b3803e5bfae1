//! RESTORE DATABASE and RESTORE LOG: the restore sequence of full, differential and log
//! backups with SQL Server's checks and errors, STOPAT, and recovery, which brings the
//! database ONLINE on a new recovery fork (RESTORE Statements (Transact-SQL)).

use std::time::Instant;

use bakfile::{BackupSet, BackupType, Lsn, RecoveryModel as FileRecoveryModel};
use time::PrimitiveDateTime;
use uuid::Uuid;

use super::batch::{Out, Outcome};
use super::catalog::{self, Database, DatabaseFile, FileKind, FullBase, RestoreSequence};
use super::media;
use super::messages::{self, Msg};
use super::restore_messages as msg;
use super::sql::ast::{Restore, RestoreKind, RestoreOptions};
use super::state::InstanceState;
use super::{Instance, Session};
use crate::config::{DatabaseState, Platform, RecoveryModel};

const PAGE: u64 = 8192;

/// What a successful RESTORE did, for its messages.
struct Applied {
    database: String,
    /// Pages per file, in file order, for the 4035 messages.
    files: Vec<(String, u64)>,
    position: u16,
    /// The database stays RESTORING although recovery was requested (4322).
    left_restoring: bool,
}

/// Runs one RESTORE DATABASE or RESTORE LOG statement.
pub fn run(instance: &Instance, session: &Session, request: &Restore, out: &mut Out) -> Outcome {
    let statement = match request.kind {
        RestoreKind::Database => "RESTORE DATABASE",
        RestoreKind::Log => "RESTORE LOG",
    };
    let started = Instant::now();
    match restore(instance, session, request, statement) {
        Ok(applied) => {
            report(request, statement, &applied, started, out);
            tracing::info!(instance = %instance.name(), database = %applied.database, statement, "restore applied");
            Outcome::Done { row_count: None }
        }
        Err(errors) => {
            tracing::info!(instance = %instance.name(), database = %request.database, error = ?errors.first().map(|msg| msg.number), "restore failed");
            for error in errors {
                out.error(error);
            }
            out.error(messages::terminating(statement));
            Outcome::Failed
        }
    }
}

fn restore(
    instance: &Instance,
    session: &Session,
    request: &Restore,
    statement: &str,
) -> Result<Applied, Vec<Msg>> {
    if session.transaction_depth > 0 {
        return Err(vec![messages::within_transaction()]);
    }
    // TODO: other sessions using the database (error 3101) are not tracked.
    if session.database.eq_ignore_ascii_case(&request.database) {
        return Err(vec![msg::database_in_use_by_session(
            statement,
            &request.database,
        )]);
    }
    let options = &request.options;
    let stop_at = match &options.stop_at {
        Some(text) => Some(parse_datetime(text).ok_or_else(|| vec![msg::invalid_date()])?),
        None => None,
    };
    if request.devices.is_empty() {
        return recover_only(instance, &request.database);
    }
    let mode = super::verify::checksum_mode(options.checksum);
    let media = media::read_media_set(instance, &request.devices, Some(mode))
        .map_err(|error| vec![error])?;
    let set = media
        .set_at(options.file)
        .map_err(|error| vec![error])?
        .clone();
    let is_log = set.backup_type == BackupType::Log;
    match (request.kind, is_log) {
        (RestoreKind::Database, false) if set.backup_type == BackupType::Differential => {
            restore_differential(instance, request, &set)
        }
        (RestoreKind::Database, false) => restore_full(instance, request, &set, stop_at),
        (RestoreKind::Log, true) => restore_log(instance, request, &set, stop_at),
        (_, log) => {
            let created_by = if log { "BACKUP LOG" } else { "BACKUP DATABASE" };
            Err(vec![msg::wrong_backup_kind(
                &media.devices[0].name,
                created_by,
            )])
        }
    }
}

// ---- full ----

fn restore_full(
    instance: &Instance,
    request: &Restore,
    set: &BackupSet,
    stop_at: Option<PrimitiveDateTime>,
) -> Result<Applied, Vec<Msg>> {
    let options = &request.options;
    let data_directory = instance.info.default_data_directory();
    let platform = instance.info.platform;
    let now = instance.now();
    let mut state = instance.lock();
    let backup_files = backup_file_list(&state, set, &data_directory);
    if let Some(existing) = state.database(&request.database) {
        check_overwrite(existing, set, options, stop_at.is_some())?;
    }
    let files = plan_files(&state, request, set, backup_files, platform)?;
    let id = state
        .database(&request.database)
        .map_or_else(|| state.next_database_id(), |existing| existing.id);
    let name = state.database(&request.database).map_or_else(
        || request.database.clone(),
        |existing| existing.name.clone(),
    );
    let finished = finish_time(&state, set);
    let mut database = restored_database(&name, id, set, files, now, &data_directory);
    if let Some(sequence) = database.restore.as_mut() {
        sequence.redo_time = finished;
    }
    let applied = Applied {
        database: name.clone(),
        files: page_split(&database.files, set),
        position: set.position,
        left_restoring: false,
    };
    if options.recovery != Some(false) {
        recover(&mut database);
    }
    match state.databases.iter_mut().find(|db| db.id == id) {
        Some(slot) => *slot = database,
        None => state.databases.push(database),
    }
    Ok(applied)
}

/// Checks an existing database before a full restore overwrites it: 3154 for a backup
/// of another database and 3159 when the tail of the log was not backed up. REPLACE
/// skips both, and STOPAT skips 3159 (RESTORE Arguments (Transact-SQL)).
fn check_overwrite(
    existing: &Database,
    set: &BackupSet,
    options: &RestoreOptions,
    has_stop_at: bool,
) -> Result<(), Vec<Msg>> {
    if options.replace {
        return Ok(());
    }
    if existing.family_guid != set.family_guid {
        return Err(vec![msg::other_database(&existing.name)]);
    }
    let tail_at_risk = existing.state == DatabaseState::Online
        && existing.recovery_model != RecoveryModel::Simple
        && existing.log.chain_start.is_some()
        && !existing.log.tail_backed_up;
    if tail_at_risk && !has_stop_at {
        return Err(vec![msg::tail_not_backed_up(&existing.name)]);
    }
    Ok(())
}

/// Applies MOVE to the backup's files and checks that no other database uses a target
/// path: 3234 for an unknown logical name, 1834 and 3156 per file in use, then 3119.
fn plan_files(
    state: &InstanceState,
    request: &Restore,
    set: &BackupSet,
    mut files: Vec<DatabaseFile>,
    platform: Platform,
) -> Result<Vec<DatabaseFile>, Vec<Msg>> {
    let mut problems = Vec::new();
    for (logical, path) in &request.options.moves {
        match files
            .iter_mut()
            .find(|file| file.logical_name.eq_ignore_ascii_case(logical))
        {
            Some(file) => file.physical_name = path.clone(),
            None => problems.push(msg::logical_file_unknown(logical, &set.database_name)),
        }
    }
    let same_path = |a: &str, b: &str| match platform {
        Platform::Windows => a.eq_ignore_ascii_case(b),
        Platform::Linux => a == b,
    };
    for file in &files {
        let owner = state.databases.iter().find(|database| {
            !database.name.eq_ignore_ascii_case(&request.database)
                && database
                    .files
                    .iter()
                    .any(|other| same_path(&other.physical_name, &file.physical_name))
        });
        if let Some(owner) = owner {
            problems.push(msg::file_in_use(&file.physical_name, &owner.name));
            problems.push(msg::cannot_restore_file(
                &file.physical_name,
                &file.logical_name,
            ));
        }
    }
    if problems.is_empty() {
        Ok(files)
    } else {
        problems.push(msg::planning_problems());
        Err(problems)
    }
}

/// Builds the database a full backup restores: the backup's identity and recovery
/// model, a new database_guid, and the restore sequence that later backups continue.
fn restored_database(
    name: &str,
    id: i32,
    set: &BackupSet,
    files: Vec<DatabaseFile>,
    now: PrimitiveDateTime,
    data_directory: &str,
) -> Database {
    let mut database = Database::new(name, id, now, data_directory);
    let pages = (set.backup_size / PAGE).max(128);
    database.files = files;
    database.set_size_mb(pages.div_ceil(128));
    database.recovery_model = match set.recovery_model {
        FileRecoveryModel::Full => RecoveryModel::Full,
        FileRecoveryModel::BulkLogged => RecoveryModel::BulkLogged,
        FileRecoveryModel::Simple => RecoveryModel::Simple,
    };
    database.compatibility_level = set.compatibility_level;
    database.family_guid = set.family_guid;
    database.binding_id = set.binding_id;
    database.state = DatabaseState::Restoring;
    database.log.next = set.last_lsn;
    database.log.last_checkpoint = set.checkpoint_lsn;
    let full = FullBase {
        checkpoint_lsn: set.checkpoint_lsn,
        backup_set_uuid: set.backup_set_guid,
        backup_start: set.backup_start_date,
    };
    database.base = Some(full);
    database.restore = Some(RestoreSequence {
        full,
        first_fork: set.recovery_fork_id,
        redo_lsn: set.last_lsn,
        redo_time: set.backup_finish_date.unwrap_or(set.backup_start_date),
        stopped: false,
    });
    database
}

// ---- differential ----

fn restore_differential(
    instance: &Instance,
    request: &Restore,
    set: &BackupSet,
) -> Result<Applied, Vec<Msg>> {
    let mut state = instance.lock();
    let finished = finish_time(&state, set);
    let database = state
        .database_mut(&request.database)
        .ok_or_else(|| vec![msg::restore_needs_database(&request.database)])?;
    let sequence = restoring_sequence(database)?;
    if set.differential_base_guid != Some(sequence.full.backup_set_uuid) {
        return Err(vec![msg::differential_wrong_base()]);
    }
    if sequence.redo_lsn >= set.last_lsn {
        return Err(vec![Msg {
            number: 3120,
            state: 1,
            class: 16,
            text: "This backup set will not be restored because all data has already been \
                   restored to a point beyond the time covered by this backup set."
                .into(),
        }]);
    }
    let sequence = database.restore.as_mut().expect("checked above");
    sequence.redo_lsn = set.last_lsn;
    sequence.redo_time = finished;
    database.log.next = set.last_lsn;
    let applied = Applied {
        database: database.name.clone(),
        files: page_split(&database.files, set),
        position: set.position,
        left_restoring: false,
    };
    if request.options.recovery != Some(false) {
        recover(database);
    }
    Ok(applied)
}

/// Returns the restore sequence of a RESTORING database, or 3117 when no restore is
/// under way.
fn restoring_sequence(database: &Database) -> Result<RestoreSequence, Vec<Msg>> {
    match (&database.restore, database.state) {
        (Some(sequence), DatabaseState::Restoring) => Ok(sequence.clone()),
        _ => Err(vec![msg::log_or_differential_not_ready()]),
    }
}

// ---- log ----

fn restore_log(
    instance: &Instance,
    request: &Restore,
    set: &BackupSet,
    stop_at: Option<PrimitiveDateTime>,
) -> Result<Applied, Vec<Msg>> {
    let mut state = instance.lock();
    let log_end = finish_time(&state, set);
    let database = state
        .database_mut(&request.database)
        .ok_or_else(|| vec![msg::restore_needs_database(&request.database)])?;
    let sequence = restoring_sequence(database)?;
    if set.family_guid != database.family_guid {
        return Err(vec![msg::other_database(&database.name)]);
    }
    let redo = sequence.redo_lsn;
    // A log applies when it contains the LSN the data is rolled forward to.
    if set.first_lsn > redo {
        return Err(vec![msg::log_too_recent(set.first_lsn, redo)]);
    }
    if set.last_lsn < redo {
        return Err(vec![msg::log_too_early(set.last_lsn, redo)]);
    }
    let (redo_lsn, redo_time, stopped) = match stop_at {
        Some(point) if point < sequence.redo_time => return Err(vec![msg::stop_at_too_early()]),
        Some(point) if point < log_end => {
            let lsn = lsn_at(redo, set.last_lsn, sequence.redo_time, log_end, point);
            (lsn, point, true)
        }
        _ => (set.last_lsn, log_end, false),
    };
    // The whole log lies before STOPAT: SQL Server leaves the database RESTORING so
    // that a later log can reach the point (4322).
    let left_restoring = stop_at.is_some() && !stopped;
    let sequence = database.restore.as_mut().expect("checked above");
    sequence.redo_lsn = redo_lsn;
    sequence.redo_time = redo_time;
    sequence.stopped = stopped;
    database.log.next = redo_lsn;
    let applied = Applied {
        database: database.name.clone(),
        files: page_split(&database.files, set),
        position: set.position,
        left_restoring,
    };
    if request.options.recovery != Some(false) && !left_restoring {
        recover(database);
    }
    Ok(applied)
}

/// Estimates the LSN a STOPAT inside a log reaches by spreading the log's LSN range
/// evenly over its time range, because the simulator keeps no per-transaction times.
fn lsn_at(
    start: Lsn,
    end: Lsn,
    start_time: PrimitiveDateTime,
    end_time: PrimitiveDateTime,
    point: PrimitiveDateTime,
) -> Lsn {
    let span = (end_time - start_time).whole_milliseconds().max(1);
    let done = (point - start_time).whole_milliseconds().clamp(0, span);
    let start_block = u64::from(start.vlf) * 0x1_0000_0000 + u64::from(start.block);
    let end_block = u64::from(end.vlf) * 0x1_0000_0000 + u64::from(end.block);
    let blocks = end_block.saturating_sub(start_block);
    let offset = u64::try_from(i128::from(blocks) * done / span).unwrap_or(0);
    let block = start_block + offset;
    let lsn = Lsn {
        vlf: u32::try_from(block >> 32).unwrap_or(u32::MAX),
        block: (block & 0xFFFF_FFFF) as u32,
        slot: 1,
    };
    lsn.max(start).min(end)
}

// ---- recovery ----

/// `RESTORE DATABASE name WITH RECOVERY` without a backup: recovers a database left
/// RESTORING, or fails with 3153 when it is already online.
fn recover_only(instance: &Instance, name: &str) -> Result<Applied, Vec<Msg>> {
    let mut state = instance.lock();
    // NOTE: 911 for a missing database is a guess; no doc page names the error.
    let database = state
        .database_mut(name)
        .ok_or_else(|| vec![messages::database_not_found(name, 1)])?;
    if database.state != DatabaseState::Restoring {
        return Err(vec![msg::already_recovered()]);
    }
    recover(database);
    Ok(Applied {
        database: database.name.clone(),
        files: Vec::new(),
        position: 1,
        left_restoring: false,
    })
}

/// Brings a restored database ONLINE: a new database_guid and a new recovery fork that
/// starts at the LSN the data was rolled forward to. The restored full backup stays the
/// differential base and the log chain continues from the recovery point.
fn recover(database: &mut Database) {
    let (redo_lsn, first_fork, base) = match database.restore.take() {
        Some(sequence) => (sequence.redo_lsn, sequence.first_fork, Some(sequence.full)),
        None => (
            database.log.next,
            database.recovery_fork_guid,
            database.base,
        ),
    };
    database.state = DatabaseState::Online;
    database.guid = Uuid::new_v4();
    database.first_recovery_fork_guid = first_fork;
    database.recovery_fork_guid = Uuid::new_v4();
    database.fork_point_lsn = Some(redo_lsn);
    database.base = base;
    database.changed_pages = 0;
    database.log.next = redo_lsn;
    database.log.last_checkpoint = database.checkpoint();
    // NOTE: the log chain continuing after a restore follows log shipping role reversal,
    // which takes log backups of a recovered database without a new full backup.
    database.log.chain_start =
        (database.recovery_model != RecoveryModel::Simple).then_some(redo_lsn);
    database.log.chain_has_log_backup = true;
    database.log.pending_bytes = 0;
}

// ---- files and messages ----

/// Returns when a backup set finished. The file's header keeps whole seconds, so a set
/// this instance wrote takes the exact time from msdb, as STOPAT needs finer times.
fn finish_time(state: &InstanceState, set: &BackupSet) -> PrimitiveDateTime {
    state
        .history
        .sets
        .iter()
        .find(|record| record.backup_set_uuid == set.backup_set_guid)
        .map(|record| record.backup_finish_date)
        .or(set.backup_finish_date)
        .unwrap_or(set.backup_start_date)
}

/// Lists the data and log files a backup set contains: the msdb.dbo.backupfile rows when
/// this instance wrote the set, otherwise the default file names of its database.
// TODO: bakfile reads no file list from a backup, so the names of files in backups from
// elsewhere are the defaults `name` and `name_log` in this instance's data directory.
pub fn backup_file_list(
    state: &InstanceState,
    set: &BackupSet,
    data_directory: &str,
) -> Vec<DatabaseFile> {
    let recorded = state
        .history
        .sets
        .iter()
        .find(|record| record.backup_set_uuid == set.backup_set_guid)
        .map(|record| record.backup_set_id);
    if let Some(backup_set_id) = recorded {
        let files: Vec<DatabaseFile> = state
            .history
            .files
            .iter()
            .filter(|row| row.backup_set_id == backup_set_id)
            .map(|row| row.file.clone())
            .collect();
        if !files.is_empty() {
            return files;
        }
    }
    let mut files = catalog::default_files(&set.database_name, data_directory, set.first_lsn);
    let pages = (set.backup_size / PAGE).max(128);
    for file in &mut files {
        file.size_pages = match file.kind {
            FileKind::Rows => pages,
            FileKind::Log => 1024,
        };
    }
    files
}

/// Splits the set's pages over the files for the 4035 messages: a log backup carries
/// only log pages, a data backup two log pages and the rest data.
fn page_split(files: &[DatabaseFile], set: &BackupSet) -> Vec<(String, u64)> {
    let total = (set.backup_size / PAGE).max(1);
    let log_pages = if set.backup_type == BackupType::Log {
        total
    } else {
        total.min(2)
    };
    files
        .iter()
        .map(|file| {
            let pages = match file.kind {
                FileKind::Rows => total - log_pages,
                FileKind::Log => log_pages,
            };
            (file.logical_name.clone(), pages)
        })
        .collect()
}

fn report(request: &Restore, statement: &str, applied: &Applied, started: Instant, out: &mut Out) {
    if let Some(step) = request.options.stats.filter(|step| *step > 0) {
        let mut percent = step;
        while percent <= 100 {
            out.info(messages::percent_processed(percent));
            percent += step;
        }
    }
    for (file, pages) in &applied.files {
        out.info(messages::pages_processed(
            *pages,
            &applied.database,
            file,
            u32::from(applied.position),
        ));
    }
    if applied.left_restoring {
        out.info(msg::stop_at_after_log());
    }
    let pages = applied.files.iter().map(|(_, pages)| pages).sum();
    let millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    out.info(messages::backup_succeeded(statement, pages, millis));
}

/// Parses a STOPAT value: `yyyy-mm-dd hh:mm[:ss[.fff]]`, with `T` or a space between
/// date and time, or a date alone.
pub fn parse_datetime(text: &str) -> Option<PrimitiveDateTime> {
    let text = text.trim();
    let (date_text, time_text) = match text.split_once(['T', ' ']) {
        Some((date, time)) => (date, time.trim()),
        None => (text, "00:00:00"),
    };
    let mut date_parts = date_text.split('-');
    let year: i32 = date_parts.next()?.parse().ok()?;
    let month: u8 = date_parts.next()?.parse().ok()?;
    let day: u8 = date_parts.next()?.parse().ok()?;
    let date =
        time::Date::from_calendar_date(year, time::Month::try_from(month).ok()?, day).ok()?;
    let (clock, fraction) = time_text.split_once('.').unwrap_or((time_text, "0"));
    let mut clock_parts = clock.split(':');
    let hour: u8 = clock_parts.next()?.parse().ok()?;
    let minute: u8 = clock_parts.next()?.parse().ok()?;
    let second: u8 = clock_parts.next().unwrap_or("0").parse().ok()?;
    let millis: u16 = format!("{fraction:0<3}").get(..3)?.parse().ok()?;
    let time = time::Time::from_hms_milli(hour, minute, second, millis).ok()?;
    Some(PrimitiveDateTime::new(date, time))
}
