//! Message numbers, severities and texts of RESTORE, DBCC CHECKDB and the BACKUP options
//! checks, as sys.messages and Microsoft's "Database engine events and errors" pages
//! give them. States are 1 unless a page gives another.

use bakfile::Lsn;

use super::messages::{error, info, Msg};

fn lsn_text(lsn: Lsn) -> String {
    lsn.to_numeric().to_string()
}

/// 3102: the session that sends the RESTORE uses the database; `statement` is e.g.
/// "RESTORE DATABASE".
pub fn database_in_use_by_session(statement: &str, database: &str) -> Msg {
    error(
        3102,
        1,
        16,
        format!(
            "{statement} cannot process database '{database}' because it is in use by this \
             session. It is recommended that the master database be used when performing this \
             operation."
        ),
    )
}

/// 3118: a differential or log restore names a database that does not exist.
pub fn restore_needs_database(database: &str) -> Msg {
    error(
        3118,
        1,
        16,
        format!(
            "The database \"{database}\" does not exist. RESTORE can only create a database when \
             restoring either a full backup or a file backup of the primary file."
        ),
    )
}

/// 3153: RESTORE ... WITH RECOVERY on a database that is already online.
pub fn already_recovered() -> Msg {
    error(
        3153,
        1,
        16,
        "The database is already fully recovered.".into(),
    )
}

pub fn log_or_differential_not_ready() -> Msg {
    error(
        3117,
        1,
        16,
        "The log or differential backup cannot be restored because no files are ready to \
         rollforward."
            .into(),
    )
}

pub fn planning_problems() -> Msg {
    error(
        3119,
        1,
        16,
        "Problems were identified while planning for the RESTORE statement. Previous messages \
         provide details."
            .into(),
    )
}

/// 3135: the set is of the wrong kind for this statement; `created_by` is "BACKUP
/// DATABASE" or "BACKUP LOG".
pub fn wrong_backup_kind(device: &str, created_by: &str) -> Msg {
    error(
        3135,
        2,
        16,
        format!(
            "The backup set in file '{device}' was created by {created_by} and cannot be used \
             for this restore operation."
        ),
    )
}

pub fn differential_wrong_base() -> Msg {
    error(
        3136,
        1,
        16,
        "This differential backup cannot be restored because the database has not been \
         restored to the correct earlier state."
            .into(),
    )
}

pub fn other_database(existing: &str) -> Msg {
    error(
        3154,
        4,
        16,
        format!(
            "The backup set holds a backup of a database other than the existing '{existing}' \
             database."
        ),
    )
}

pub fn cannot_restore_file(path: &str, logical: &str) -> Msg {
    error(
        3156,
        4,
        16,
        format!(
            "File '{logical}' cannot be restored to '{path}'. Use WITH MOVE to identify a valid \
             location for the file."
        ),
    )
}

pub fn tail_not_backed_up(database: &str) -> Msg {
    error(
        3159,
        1,
        16,
        format!(
            "The tail of the log for the database \"{database}\" has not been backed up. Use \
             BACKUP LOG WITH NORECOVERY to backup the log if it contains work you do not want to \
             lose. Use the WITH REPLACE or WITH STOPAT clause of the RESTORE statement to just \
             overwrite the contents of the log."
        ),
    )
}

pub fn logical_file_unknown(logical: &str, database: &str) -> Msg {
    error(
        3234,
        2,
        16,
        format!(
            "Logical file '{logical}' is not part of database '{database}'. Use RESTORE \
             FILELISTONLY to list the logical file names."
        ),
    )
}

pub fn file_in_use(path: &str, database: &str) -> Msg {
    error(
        1834,
        1,
        16,
        format!(
            "The file '{path}' cannot be overwritten.  It is being used by database '{database}'."
        ),
    )
}

pub fn log_too_recent(first: Lsn, needed: Lsn) -> Msg {
    error(
        4305,
        1,
        16,
        format!(
            "The log in this backup set begins at LSN {}, which is too recent to apply to the \
             database. An earlier log backup that includes LSN {} can be restored.",
            lsn_text(first),
            lsn_text(needed)
        ),
    )
}

pub fn log_too_early(last: Lsn, needed: Lsn) -> Msg {
    error(
        4326,
        1,
        16,
        format!(
            "The log in this backup set terminates at LSN {}, which is too early to apply to the \
             database. A more recent log backup that includes LSN {} can be restored.",
            lsn_text(last),
            lsn_text(needed)
        ),
    )
}

/// 4338: STOPAT lies before the start of the log in this backup set.
pub fn stop_at_too_early() -> Msg {
    error(
        4338,
        1,
        16,
        "The STOPAT clause specifies a point too early to allow this backup set to be restored. \
         Choose a different stop point or use RESTORE DATABASE WITH RECOVERY to recover at the \
         current point."
            .into(),
    )
}

/// 4322 (severity 10): the whole log lies before STOPAT, so the database stays
/// RESTORING.
pub fn stop_at_after_log() -> Msg {
    info(
        4322,
        "This backup set contains records that were logged before the designated point in \
         time. The database is being left in the restoring state so that more roll forward can \
         be performed."
            .into(),
    )
}

/// 241 for a STOPAT text that is no date and time.
pub fn invalid_date() -> Msg {
    error(
        241,
        1,
        16,
        "Conversion failed when converting date and/or time from character string.".into(),
    )
}

/// 3132: a striped media set read from fewer devices than it has families.
pub fn missing_media_families(families: u16, provided: usize) -> Msg {
    error(
        3132,
        1,
        16,
        format!(
            "The media set has {families} media families but only {provided} are provided. All \
             members must be provided."
        ),
    )
}

/// 3231: more devices are named than the media set has families.
pub fn media_family_count(device: &str, families: u16, expected: usize) -> Msg {
    error(
        3231,
        1,
        16,
        format!(
            "The media loaded on \"{device}\" is formatted to support {families} media families, \
             but {expected} media families are expected according to the backup device \
             specification."
        ),
    )
}

/// 3258: a device contains a family of another media set.
pub fn not_in_media_set(device: &str) -> Msg {
    error(
        3258,
        1,
        16,
        format!(
            "The volume on the device \"{device}\" is not part of the media set that is \
             currently being processed. Ensure that the backup devices are loaded with the \
             correct media."
        ),
    )
}

// ---- DBCC CHECKDB ----

/// 8928 for one page CHECKDB could not process.
pub fn page_not_processed(object_id: i64, page: (u16, u32)) -> Msg {
    error(
        8928,
        1,
        16,
        format!(
            "Object ID {object_id}, index ID 1, partition ID {}, alloc unit ID {} (type In-row \
             data): Page ({}:{}) could not be processed.  See other errors for details.",
            object_id << 16,
            object_id << 16,
            page.0,
            page.1
        ),
    )
}

/// 8939 for the page's failed test, reported beside 8928.
pub fn page_test_failed(object_id: i64, page: (u16, u32)) -> Msg {
    error(
        8939,
        98,
        16,
        format!(
            "Table error: Object ID {object_id}, index ID 1, partition ID {}, alloc unit ID {} \
             (type In-row data), page ({}:{}). Test (IS_OFF (BUF_IOERR, pBUF->bstat)) failed. \
             Values are 133129 and -4.",
            object_id << 16,
            object_id << 16,
            page.0,
            page.1
        ),
    )
}

/// 8989: the CHECKDB summary.
pub fn checkdb_summary(allocation: u32, consistency: u32, database: &str) -> Msg {
    error(
        8989,
        1,
        16,
        format!(
            "CHECKDB found {allocation} allocation errors and {consistency} consistency errors \
             in database '{database}'."
        ),
    )
}

/// 8989 without errors is informational.
pub fn checkdb_clean(database: &str) -> Msg {
    info(
        8989,
        format!(
            "CHECKDB found 0 allocation errors and 0 consistency errors in database '{database}'."
        ),
    )
}

/// 8958: the repair level CHECKDB recommends after finding errors.
pub fn repair_level(database: &str) -> Msg {
    info(
        8958,
        format!(
            "repair_allow_data_loss is the minimum repair level for the errors found by DBCC \
             CHECKDB ({database})."
        ),
    )
}

/// 2520: DBCC names a database that does not exist.
pub fn dbcc_database_missing(database: &str) -> Msg {
    error(
        2520,
        1,
        16,
        format!(
            "Could not find database '{database}'. The database either does not exist, or was \
             dropped before a statement tried to use it. Verify if the database exists by \
             querying the sys.databases catalog view."
        ),
    )
}

/// 2528: the line DBCC ends with unless NO_INFOMSGS is given.
pub fn dbcc_done() -> Msg {
    info(
        2528,
        "DBCC execution completed. If DBCC printed error messages, contact your system \
         administrator."
            .into(),
    )
}

// ---- BACKUP options ----

/// 3250: an option value outside its range, e.g. MAXTRANSFERSIZE or BUFFERCOUNT.
pub fn option_out_of_range(value: u64, option: &str) -> Msg {
    error(
        3250,
        1,
        16,
        format!("The value '{value}' is not within range for the {option} parameter."),
    )
}

/// 3253: BLOCKSIZE is not a power of 2.
pub fn block_size_not_power_of_two() -> Msg {
    error(
        3253,
        1,
        16,
        "The block size parameter must supply a value that is a power of 2.".into(),
    )
}

/// 15151 for a certificate or asymmetric key that does not exist.
pub fn encryptor_not_found(kind: &str, name: &str) -> Msg {
    error(
        15151,
        1,
        16,
        format!(
            "Cannot find the {kind} '{name}', because it does not exist or you do not have \
             permission."
        ),
    )
}
