//! SQL Server's message numbers, states, severities and texts for what the engine
//! reports. Texts and severities follow sys.messages as Microsoft's "Database engine
//! events and errors" pages list them. States are SQL Server's where known; no doc page
//! lists them, so a state may be off.

/// A message before the server name and line are filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct Msg {
    pub number: i32,
    pub state: u8,
    pub class: u8,
    pub text: String,
}

pub(super) fn error(number: i32, state: u8, class: u8, text: String) -> Msg {
    Msg {
        number,
        state,
        class,
        text,
    }
}

/// Severity 10 messages reach the client with class 0: "Database Engine Error
/// Severities" says the engine converts severity 10 to 0 before returning it.
pub(super) fn info(number: i32, text: String) -> Msg {
    Msg {
        number,
        state: 1,
        class: 0,
        text,
    }
}

pub fn syntax(near: &str) -> Msg {
    error(102, 1, 15, format!("Incorrect syntax near '{near}'."))
}

pub fn syntax_keyword(keyword: &str) -> Msg {
    error(
        156,
        1,
        15,
        format!("Incorrect syntax near the keyword '{keyword}'."),
    )
}

pub fn unclosed_quote(text: &str) -> Msg {
    error(
        105,
        1,
        15,
        format!("Unclosed quotation mark after the character string '{text}'."),
    )
}

pub fn missing_end_comment() -> Msg {
    error(113, 1, 15, "Missing end comment mark '*/'.".into())
}

pub fn unknown_set_option(name: &str) -> Msg {
    error(
        195,
        1,
        15,
        format!("'{name}' is not a recognized SET option."),
    )
}

pub fn unknown_option(name: &str, statement: &str) -> Msg {
    error(
        155,
        1,
        15,
        format!("'{name}' is not a recognized {statement} option."),
    )
}

pub fn undeclared_variable(name: &str) -> Msg {
    error(
        137,
        2,
        15,
        format!("Must declare the scalar variable \"{name}\"."),
    )
}

pub fn unknown_function(name: &str) -> Msg {
    error(
        195,
        10,
        15,
        format!("'{name}' is not a recognized built-in function name."),
    )
}

pub fn invalid_column(name: &str) -> Msg {
    error(207, 1, 16, format!("Invalid column name '{name}'."))
}

pub fn ambiguous_column(name: &str) -> Msg {
    error(209, 1, 16, format!("Ambiguous column name '{name}'."))
}

pub fn invalid_object(name: &str) -> Msg {
    error(208, 1, 16, format!("Invalid object name '{name}'."))
}

pub fn unbound_identifier(name: &str) -> Msg {
    error(
        4104,
        1,
        16,
        format!("The multi-part identifier \"{name}\" could not be bound."),
    )
}

pub fn unknown_type(name: &str) -> Msg {
    error(
        243,
        2,
        16,
        format!("Type {name} is not a defined system type."),
    )
}

pub fn conversion_failed(value: &str, from: &str, to: &str) -> Msg {
    error(
        245,
        1,
        16,
        format!("Conversion failed when converting the {from} value '{value}' to data type {to}."),
    )
}

pub fn unknown_procedure(name: &str) -> Msg {
    error(
        2812,
        62,
        16,
        format!("Could not find stored procedure '{name}'."),
    )
}

/// 911 with the state SQL Server uses for USE (1) or for BACKUP (11).
pub fn database_not_found(name: &str, state: u8) -> Msg {
    error(
        911,
        state,
        16,
        format!("Database '{name}' does not exist. Make sure that the name is entered correctly."),
    )
}

pub fn database_offline(name: &str) -> Msg {
    error(
        942,
        4,
        14,
        format!("Database '{name}' cannot be opened because it is offline."),
    )
}

pub fn database_restoring(name: &str) -> Msg {
    error(
        927,
        2,
        14,
        format!("Database '{name}' cannot be opened. It is in the middle of a restore."),
    )
}

pub fn database_recovering(name: &str) -> Msg {
    error(
        922,
        1,
        14,
        format!("Database '{name}' is being recovered. Waiting until recovery is finished."),
    )
}

pub fn database_suspect(name: &str) -> Msg {
    error(
        926,
        1,
        14,
        format!(
            "Database '{name}' cannot be opened. It has been marked SUSPECT by recovery. See the \
             SQL Server errorlog for more information."
        ),
    )
}

pub fn changed_database(name: &str) -> Msg {
    info(5701, format!("Changed database context to '{name}'."))
}

pub fn database_exists(name: &str) -> Msg {
    error(
        1801,
        3,
        16,
        format!("Database '{name}' already exists. Choose a different database name."),
    )
}

pub fn cannot_drop_missing(name: &str) -> Msg {
    error(
        3701,
        1,
        11,
        format!("Cannot drop the database '{name}', because it does not exist or you do not have permission."),
    )
}

pub fn cannot_drop_system(name: &str) -> Msg {
    error(
        3708,
        1,
        16,
        format!("Cannot drop the database '{name}' because it is a system database."),
    )
}

pub fn cannot_drop_in_use(name: &str) -> Msg {
    error(
        3702,
        3,
        16,
        format!("Cannot drop database \"{name}\" because it is currently in use."),
    )
}

pub fn cannot_alter(name: &str) -> Msg {
    error(
        5011,
        5,
        14,
        format!(
            "User does not have permission to alter database '{name}', the database does not \
             exist, or the database is not in a state that allows access checks."
        ),
    )
}

pub fn option_not_allowed(option: &str, database: &str) -> Msg {
    error(
        5058,
        1,
        16,
        format!("Option '{option}' cannot be set in database '{database}'."),
    )
}

pub fn alter_failed() -> Msg {
    error(5069, 1, 16, "ALTER DATABASE statement failed.".into())
}

pub fn commit_without_begin() -> Msg {
    error(
        3902,
        1,
        16,
        "The COMMIT TRANSACTION request has no corresponding BEGIN TRANSACTION.".into(),
    )
}

pub fn rollback_without_begin() -> Msg {
    error(
        3903,
        1,
        16,
        "The ROLLBACK TRANSACTION request has no corresponding BEGIN TRANSACTION.".into(),
    )
}

/// 18456 with state 1, which a client gets for every login failure: the page
/// "MSSQLSERVER_18456" says the true reason, such as state 8 for a wrong password, goes to
/// the server's error log only.
pub fn login_failed(user: &str) -> Msg {
    error(18456, 1, 14, format!("Login failed for user '{user}'."))
}

pub fn login_database_unavailable(name: &str) -> Msg {
    error(
        4060,
        1,
        11,
        format!("Cannot open database \"{name}\" requested by the login. The login failed."),
    )
}

// ---- KILL ----
// Numbers and texts as KILL (Transact-SQL) and sys.messages give them.

/// 6102: the login lacks ALTER ANY CONNECTION, which sysadmin and processadmin hold.
/// NOTE: state 1 and severity 14 are assumed; no doc page lists them.
pub fn kill_permission_denied() -> Msg {
    error(
        6102,
        1,
        14,
        "User does not have permission to use the KILL statement.".into(),
    )
}

pub fn kill_own_session() -> Msg {
    error(
        6104,
        1,
        16,
        "Cannot use KILL to kill your own process.".into(),
    )
}

pub fn kill_inactive_session(session_id: u64) -> Msg {
    error(
        6106,
        2,
        16,
        format!("Process ID {session_id} is not an active process ID."),
    )
}

/// 6107: session ids up to 50 belong to SQL Server's own background tasks.
pub fn kill_system_session() -> Msg {
    error(6107, 1, 14, "Only user processes can be killed.".into())
}

// ---- BACKUP and RESTORE ----

/// 3013: the statement names are "BACKUP DATABASE", "BACKUP LOG" and, for RESTORE
/// VERIFYONLY, "VERIFY DATABASE".
pub fn terminating(statement: &str) -> Msg {
    error(
        3013,
        1,
        16,
        format!("{statement} is terminating abnormally."),
    )
}

pub fn within_transaction() -> Msg {
    error(
        3021,
        1,
        16,
        "Cannot perform a backup or restore operation within a transaction.".into(),
    )
}

pub fn snapshot_backup() -> Msg {
    error(
        3002,
        1,
        16,
        "Cannot BACKUP or RESTORE a database snapshot.".into(),
    )
}

pub fn tempdb_backup() -> Msg {
    error(
        3147,
        3,
        16,
        "Backup and restore operations are not allowed on database tempdb.".into(),
    )
}

pub fn master_full_only() -> Msg {
    error(
        3024,
        1,
        16,
        "You can only perform a full backup of the master database. Use BACKUP DATABASE to \
         back up the entire master database."
            .into(),
    )
}

pub fn emergency_backup() -> Msg {
    error(
        3033,
        1,
        16,
        "BACKUP DATABASE cannot be used on a database opened in emergency mode.".into(),
    )
}

pub fn no_differential_base(database: &str) -> Msg {
    error(
        3035,
        1,
        16,
        format!(
            "Cannot perform a differential backup for database \"{database}\", because a current \
             database backup does not exist. Perform a full database backup by reissuing BACKUP \
             DATABASE, omitting the WITH DIFFERENTIAL option."
        ),
    )
}

pub fn log_under_simple() -> Msg {
    error(
        4208,
        1,
        16,
        "The statement BACKUP LOG is not allowed while the recovery model is SIMPLE. Use BACKUP \
         DATABASE or change the recovery model using ALTER DATABASE."
            .into(),
    )
}

pub fn log_without_full() -> Msg {
    error(
        4214,
        1,
        16,
        "BACKUP LOG cannot be performed because there is no current database backup.".into(),
    )
}

/// 1844 names the feature and the edition, e.g. "Express Edition (64-bit)".
pub fn compression_unsupported(edition: &str) -> Msg {
    error(
        1844,
        1,
        16,
        format!("BACKUP DATABASE WITH COMPRESSION is not supported on {edition}."),
    )
}

/// 3201 with an operating system error such as [`OS_PATH_NOT_FOUND`].
pub fn cannot_open_device(device: &str, os_error: &str) -> Msg {
    error(
        3201,
        1,
        16,
        format!("Cannot open backup device '{device}'. Operating system error {os_error}."),
    )
}

/// 3202, worded as SQL Server 2017 on Windows sent it for a full local disk in error
/// output quoted in the issue tracker of Ola Hallengren's SQL Server Maintenance Solution.
pub fn write_failed(device: &str, os_error: &str) -> Msg {
    error(
        3202,
        1,
        16,
        format!("Write on \"{device}\" failed: {os_error}"),
    )
}

/// 3271 for a write that failed on a full UNC share, worded as in error output quoted in
/// the issue tracker of Ola Hallengren's SQL Server Maintenance Solution (the device name
/// ends with a colon inside the quotes). The SQL Server version was not given there.
pub fn nonrecoverable_io(device: &str, os_error: &str) -> Msg {
    error(
        3271,
        1,
        16,
        format!("A nonrecoverable I/O error occurred on file \"{device}:\" {os_error}."),
    )
}

pub fn read_failed(device: &str, os_error: &str) -> Msg {
    error(
        3203,
        1,
        16,
        format!("Read on \"{device}\" failed: {os_error}"),
    )
}

pub fn not_a_backup(device: &str) -> Msg {
    error(
        3242,
        1,
        16,
        format!("The file on device '{device}' is not a valid Microsoft Tape Format backup set."),
    )
}

pub fn malformed_media(device: &str) -> Msg {
    error(
        3241,
        1,
        16,
        format!("The media family on device '{device}' is incorrectly formed. SQL Server cannot process this media family."),
    )
}

pub fn damaged_backup() -> Msg {
    error(3189, 1, 16, "Damage to the backup set was detected.".into())
}

pub fn no_checksums() -> Msg {
    error(
        3187,
        1,
        16,
        "RESTORE WITH CHECKSUM cannot be specified because the backup set does not contain \
         checksum information."
            .into(),
    )
}

pub fn incomplete_backup(device: &str) -> Msg {
    error(
        3256,
        1,
        16,
        format!(
            "The backup set on device '{device}' was terminated while it was being created and \
             is incomplete. RESTORE sequence is terminated abnormally."
        ),
    )
}

pub fn file_not_found_on_device(file: u32, device: &str) -> Msg {
    error(
        4038,
        1,
        16,
        format!("Cannot find file ID {file} on device '{device}'."),
    )
}

pub fn percent_processed(percent: u32) -> Msg {
    info(3211, format!("{percent} percent processed."))
}

pub fn pages_processed(pages: u64, database: &str, file: &str, position: u32) -> Msg {
    info(
        4035,
        format!(
            "Processed {pages} pages for database '{database}', file '{file}' on file {position}."
        ),
    )
}

/// 3014; `statement` is "BACKUP DATABASE", "BACKUP DATABASE WITH DIFFERENTIAL" or
/// "BACKUP LOG".
pub fn backup_succeeded(statement: &str, pages: u64, millis: u64) -> Msg {
    let millis = millis.max(1);
    let mb_per_sec_thousandths = pages * 8192 * 1000 * 1000 / 1_048_576 / millis;
    info(
        3014,
        format!(
            "{statement} successfully processed {pages} pages in {}.{:03} seconds ({}.{:03} MB/sec).",
            millis / 1000,
            millis % 1000,
            mb_per_sec_thousandths / 1000,
            mb_per_sec_thousandths % 1000
        ),
    )
}

pub fn backup_set_valid(position: u32) -> Msg {
    info(3262, format!("The backup set on file {position} is valid."))
}

/// Operating system error texts as SQL Server formats them inside 3201/3202/3203. SQL
/// Server on Linux reports the same Windows error numbers and texts, because its
/// platform layer maps host errors to them.
pub const OS_FILE_NOT_FOUND: &str = "2(The system cannot find the file specified.)";
pub const OS_PATH_NOT_FOUND: &str = "3(The system cannot find the path specified.)";
pub const OS_ACCESS_DENIED: &str = "5(Access is denied.)";
pub const OS_DISK_FULL: &str = "112(There is not enough space on the disk.)";
pub const OS_HANDLE_EOF: &str = "38(Reached the end of the file.)";
