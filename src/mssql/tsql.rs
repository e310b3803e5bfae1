//! T-SQL text that bakfleet sends. Every identifier and string from fleet.toml or from a
//! server reaches T-SQL through [`quote_ident`] or [`quote_string`], or the `push_quoted`
//! that both of them call, and nowhere else.

use crate::backup::BackupType;
use crate::fleet::{Encryption, Encryptor, ENCRYPTION_ALGORITHMS};

/// Quotes an identifier as SQL Server delimits it: `[` + name with `]` doubled + `]`.
///
/// This is what `QUOTENAME(name, '[')` returns. It keeps every other character as it is,
/// so names with `'`, spaces and non-ASCII letters stay exact.
pub fn quote_ident(name: &str) -> String {
    let mut quoted = String::with_capacity(name.len() + 2);
    push_quoted(&mut quoted, "[", name, ']');
    quoted
}

/// Quotes a Unicode string literal: `N'` + text with `'` doubled + `'`.
///
/// The `N` prefix keeps non-ASCII characters intact whatever the server's code page is.
pub fn quote_string(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 3);
    push_quoted(&mut quoted, "N'", text, '\'');
    quoted
}

/// Appends `opening`, then `value` with each `closing` doubled, then `closing`: the
/// quoting of both [`quote_ident`] and [`quote_string`], written into `text` so that a
/// statement needs no string per quoted part.
fn push_quoted(text: &mut String, opening: &str, value: &str, closing: char) {
    text.push_str(opening);
    for part in value.split_inclusive(closing) {
        text.push_str(part);
        if part.ends_with(closing) {
            text.push(closing);
        }
    }
    text.push(closing);
}

/// Options of one BACKUP statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupOptions {
    /// `CHECKSUM`: SQL Server checks page checksums while reading and writes a backup
    /// checksum that RESTORE VERIFYONLY ... WITH CHECKSUM checks later.
    pub checksum: bool,
    /// `COMPRESSION`; left out on editions that reject it (Express, error 1844).
    pub compression: bool,
    /// `STATS = n`: progress messages every n percent.
    pub stats_percent: u8,
    /// `BUFFERCOUNT = n`: I/O buffers; SQL Server chooses when `None`.
    pub buffer_count: Option<u32>,
    /// `MAXTRANSFERSIZE = n` in bytes; fleet.toml checks the 64 KB steps up to 4 MB.
    pub max_transfer_size: Option<u32>,
    /// `ENCRYPTION (ALGORITHM = ..., SERVER CERTIFICATE = [...])`.
    pub encryption: Option<Encryption>,
}

/// Builds `DISK = N'a', DISK = N'b', ...` for the devices of one media set, in family
/// order. BACKUP writes one media family per device, and RESTORE and RESTORE VERIFYONLY
/// need every family of the set ("Media Sets, Media Families, and Backup Sets (SQL
/// Server)").
pub fn disk_list<S: AsRef<str>>(disks: &[S]) -> String {
    disks
        .iter()
        .map(|disk| format!("DISK = {}", quote_string(disk.as_ref())))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Builds the BACKUP statement for one database and type, striped over every path of
/// `disks` (one path for a backup on one file).
///
/// `INIT, FORMAT` are always present, so every file contains exactly one backup set:
/// nothing is appended to another set's file, and RESTORE never needs a `FILE =`. FORMAT
/// also starts a new media set, so the files never join an older set's families.
pub fn backup_statement<S: AsRef<str>>(
    database: &str,
    backup_type: BackupType,
    disks: &[S],
    options: BackupOptions,
) -> String {
    let verb = match backup_type {
        BackupType::Full | BackupType::Diff => "BACKUP DATABASE",
        BackupType::Log => "BACKUP LOG",
    };
    let mut with = Vec::new();
    if backup_type == BackupType::Diff {
        with.push("DIFFERENTIAL".to_string());
    }
    with.push("INIT".to_string());
    with.push("FORMAT".to_string());
    with.push(
        if options.checksum {
            "CHECKSUM"
        } else {
            "NO_CHECKSUM"
        }
        .to_string(),
    );
    if options.compression {
        with.push("COMPRESSION".to_string());
    }
    if let Some(count) = options.buffer_count {
        with.push(format!("BUFFERCOUNT = {count}"));
    }
    if let Some(size) = options.max_transfer_size {
        with.push(format!("MAXTRANSFERSIZE = {size}"));
    }
    if let Some(encryption) = &options.encryption {
        with.push(encryption_option(encryption));
    }
    with.push(format!("STATS = {}", options.stats_percent));
    format!(
        "{verb} {} TO {} WITH {};",
        quote_ident(database),
        disk_list(disks),
        with.join(", ")
    )
}

/// Builds `ENCRYPTION (ALGORITHM = ..., SERVER CERTIFICATE = [name])`. The algorithm is a
/// keyword, so only a known one is written bare. Any other text is quoted as an
/// identifier, which SQL Server rejects instead of running.
fn encryption_option(encryption: &Encryption) -> String {
    let algorithm = ENCRYPTION_ALGORITHMS
        .iter()
        .find(|known| known.eq_ignore_ascii_case(&encryption.algorithm))
        .map_or_else(
            || quote_ident(&encryption.algorithm),
            |known| known.to_string(),
        );
    let encryptor = match &encryption.encryptor {
        Encryptor::ServerCertificate(name) => format!("SERVER CERTIFICATE = {}", quote_ident(name)),
        Encryptor::ServerAsymmetricKey(name) => {
            format!("SERVER ASYMMETRIC KEY = {}", quote_ident(name))
        }
    };
    format!("ENCRYPTION (ALGORITHM = {algorithm}, {encryptor})")
}

/// Builds `RESTORE VERIFYONLY` for the files of one media set. `WITH CHECKSUM` only for
/// backups taken with checksums: on a backup without them SQL Server rejects the option
/// (error 3187).
pub fn verify_statement<S: AsRef<str>>(disks: &[S], checksum: bool) -> String {
    let with = if checksum { " WITH CHECKSUM" } else { "" };
    format!("RESTORE VERIFYONLY FROM {}{with};", disk_list(disks))
}

/// The backup kind a RESTORE statement reads: database (full or differential) or log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreKind {
    Database,
    Log,
}

/// The WITH options of one RESTORE statement ("RESTORE Statements - Arguments").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoreOptions {
    /// `MOVE N'logical' TO N'path'` pairs: where each database file is created.
    pub moves: Vec<(String, String)>,
    /// `REPLACE`: overwrite an existing database and skip the tail-log check (error 3159).
    pub replace: bool,
    /// `CHECKSUM`: verify the backup checksums while restoring. Set it only for backups
    /// taken with checksums, because RESTORE rejects it on others, as VERIFYONLY does.
    pub checksum: bool,
    /// `RECOVERY` when true, else `NORECOVERY` so that later backups can be applied.
    pub recovery: bool,
    /// `STOPAT = N'...'`: a server-local time in the form `yyyy-mm-ddThh:mm:ss.fff`.
    pub stop_at: Option<String>,
}

/// Builds `RESTORE DATABASE|LOG [database] FROM DISK = N'path', ... WITH ...` with one
/// `DISK =` per media family of the backup.
pub fn restore_statement<S: AsRef<str>>(
    kind: RestoreKind,
    database: &str,
    disks: &[S],
    options: &RestoreOptions,
) -> String {
    let verb = match kind {
        RestoreKind::Database => "RESTORE DATABASE",
        RestoreKind::Log => "RESTORE LOG",
    };
    // Written into one buffer, because a restore plan writes one statement per log
    // backup, 10,000 and more, and a string per clause made allocation the larger part of its cost.
    let mut statement = String::with_capacity(160);
    statement.push_str(verb);
    statement.push(' ');
    push_quoted(&mut statement, "[", database, ']');
    statement.push_str(" FROM ");
    for (index, disk) in disks.iter().enumerate() {
        if index > 0 {
            statement.push_str(", ");
        }
        statement.push_str("DISK = ");
        push_quoted(&mut statement, "N'", disk.as_ref(), '\'');
    }
    statement.push_str(" WITH ");
    for (logical, path) in &options.moves {
        statement.push_str("MOVE ");
        push_quoted(&mut statement, "N'", logical, '\'');
        statement.push_str(" TO ");
        push_quoted(&mut statement, "N'", path, '\'');
        statement.push_str(", ");
    }
    if options.replace {
        statement.push_str("REPLACE, ");
    }
    if options.checksum {
        statement.push_str("CHECKSUM, ");
    }
    if let Some(stop_at) = &options.stop_at {
        statement.push_str("STOPAT = ");
        push_quoted(&mut statement, "N'", stop_at, '\'');
        statement.push_str(", ");
    }
    statement.push_str(if options.recovery {
        "RECOVERY;"
    } else {
        "NORECOVERY;"
    });
    statement
}

/// Builds `RESTORE DATABASE [database] WITH RECOVERY`, which ends a restore sequence
/// left in NORECOVERY and brings the database online.
pub fn recovery_statement(database: &str) -> String {
    format!("RESTORE DATABASE {} WITH RECOVERY;", quote_ident(database))
}

/// The server facts bakfleet records. `SERVERPROPERTY` returns sql_variant, which TDS
/// clients decode poorly, so every property is CAST to a plain type.
pub const SERVER_FACTS_QUERY: &str = "SELECT @@VERSION AS version, \
CAST(SERVERPROPERTY('ProductVersion') AS nvarchar(128)) AS product_version, \
CAST(SERVERPROPERTY('Edition') AS nvarchar(128)) AS edition, \
CAST(SERVERPROPERTY('EngineEdition') AS int) AS engine_edition, \
CAST(SERVERPROPERTY('MachineName') AS nvarchar(128)) AS machine_name, \
CAST(SERVERPROPERTY('ServerName') AS nvarchar(128)) AS server_name, \
CAST(SERVERPROPERTY('InstanceName') AS nvarchar(128)) AS instance_name, \
@@SPID AS spid;";

const DATABASE_COLUMNS: &str =
    "name, database_id, state_desc, recovery_model_desc, is_read_only, source_database_id";

/// Builds the query that lists every database of the instance.
pub fn databases_query() -> String {
    format!("SELECT {DATABASE_COLUMNS} FROM sys.databases ORDER BY name;")
}

/// Builds the query that reads one database by exact name.
pub fn database_query(database: &str) -> String {
    format!(
        "SELECT {DATABASE_COLUMNS} FROM sys.databases WHERE name = {};",
        quote_string(database)
    )
}

/// Builds the query for the differential base of a database: the columns of its primary
/// data file (file_id 1) in `sys.master_files` ("sys.master_files (Transact-SQL)").
pub fn differential_base_query(database_id: i32) -> String {
    format!(
        "SELECT differential_base_lsn, differential_base_guid FROM sys.master_files \
WHERE database_id = {database_id} AND file_id = 1;"
    )
}

/// Builds the query for the log chain and identity of a database
/// ("sys.database_recovery_status (Transact-SQL)").
pub fn recovery_status_query(database_id: i32) -> String {
    format!(
        "SELECT last_log_backup_lsn, database_guid FROM sys.database_recovery_status \
WHERE database_id = {database_id};"
    )
}

/// Builds the query for the msdb history row of the set just written to `server_path`.
///
/// The newest set for that database and device wins: `INIT, FORMAT` make the file hold
/// one set, and file names carry a millisecond timestamp, so older rows for the same path
/// cannot exist unless a clock went backwards.
pub fn backup_set_query(database: &str, server_path: &str) -> String {
    format!(
        "SELECT TOP (1) bs.backup_set_id, bs.backup_set_uuid, bs.type, bs.first_lsn, \
bs.last_lsn, bs.checkpoint_lsn, bs.database_backup_lsn, bs.differential_base_lsn, \
bs.database_guid, bs.backup_start_date, bs.backup_finish_date, bs.time_zone, \
bs.backup_size, bs.compressed_backup_size, bs.has_backup_checksums, bs.is_copy_only, \
bs.recovery_model, bs.software_major_version, bs.software_minor_version, \
bs.software_build_version, mf.physical_device_name, mf.family_sequence_number \
FROM msdb.dbo.backupset AS bs \
JOIN msdb.dbo.backupmediafamily AS mf ON mf.media_set_id = bs.media_set_id \
WHERE bs.database_name = {} AND mf.physical_device_name = {} \
ORDER BY bs.backup_set_id DESC;",
        quote_string(database),
        quote_string(server_path)
    )
}

/// Builds the query for the database files of one backup set, which RESTORE's MOVE
/// clauses name by logical name ("backupfile (Transact-SQL)").
pub fn backup_files_query(backup_set_id: i32) -> String {
    format!(
        "SELECT file_number, file_type, logical_name, physical_name, file_size \
FROM msdb.dbo.backupfile WHERE backup_set_id = {backup_set_id} ORDER BY file_number;"
    )
}

/// Progress of the request running on session `spid`, as `sys.dm_exec_requests` shows it
/// for BACKUP and RESTORE.
pub fn progress_query(spid: i16) -> String {
    format!(
        "SELECT session_id, command, percent_complete, estimated_completion_time \
FROM sys.dm_exec_requests WHERE session_id = {spid};"
    )
}

/// Ends session `spid` and the statement it runs (KILL (Transact-SQL)). The caller needs
/// ALTER ANY CONNECTION, which sysadmin and processadmin hold; SQL Server rejects a KILL
/// of the caller's own session with error 6104 and of an unknown one with 6106.
pub fn kill_statement(spid: i16) -> String {
    format!("KILL {spid};")
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_ON: BackupOptions = BackupOptions {
        checksum: true,
        compression: true,
        stats_percent: 10,
        buffer_count: None,
        max_transfer_size: None,
        encryption: None,
    };

    #[test]
    fn kill_statement_names_session() {
        assert_eq!(kill_statement(57), "KILL 57;");
    }

    #[test]
    fn quote_ident_doubles_closing_bracket() {
        assert_eq!(quote_ident("a]b"), "[a]]b]");
        assert_eq!(quote_ident("[x]"), "[[x]]]");
        assert_eq!(quote_ident("Ventes d'été 2"), "[Ventes d'été 2]");
        assert_eq!(quote_ident(""), "[]");
        assert_eq!(quote_ident("]]"), "[]]]]]");
    }

    #[test]
    fn quote_string_doubles_single_quote() {
        assert_eq!(quote_string("it's"), "N'it''s'");
        assert_eq!(quote_string(""), "N''");
        assert_eq!(quote_string("''"), "N''''''");
        assert_eq!(
            quote_string("'; DROP DATABASE x; --"),
            "N'''; DROP DATABASE x; --'"
        );
    }

    #[test]
    fn backup_statement_full_has_init_format() {
        let sql = backup_statement("Sales", BackupType::Full, &[r"\\h\s\f.bak"], ALL_ON);
        assert_eq!(
            sql,
            r"BACKUP DATABASE [Sales] TO DISK = N'\\h\s\f.bak' WITH INIT, FORMAT, CHECKSUM, COMPRESSION, STATS = 10;"
        );
    }

    #[test]
    fn backup_statement_quotes_bracket_in_name() {
        let options = BackupOptions {
            compression: false,
            ..ALL_ON
        };
        let sql = backup_statement("a]'b", BackupType::Diff, &["/b/it's.bak"], options);
        assert_eq!(
            sql,
            "BACKUP DATABASE [a]]'b] TO DISK = N'/b/it''s.bak' WITH DIFFERENTIAL, INIT, FORMAT, CHECKSUM, STATS = 10;"
        );
    }

    #[test]
    fn backup_statement_log_without_checksum() {
        let options = BackupOptions {
            checksum: false,
            compression: false,
            stats_percent: 5,
            ..ALL_ON
        };
        let sql = backup_statement("db", BackupType::Log, &["/x.trn"], options);
        assert_eq!(
            sql,
            "BACKUP LOG [db] TO DISK = N'/x.trn' WITH INIT, FORMAT, NO_CHECKSUM, STATS = 5;"
        );
    }

    #[test]
    fn backup_statement_writes_transfer_options() {
        let options = BackupOptions {
            buffer_count: Some(64),
            max_transfer_size: Some(4_194_304),
            encryption: Some(Encryption {
                algorithm: "AES_256".to_string(),
                encryptor: Encryptor::ServerCertificate("Backup]Cert".to_string()),
            }),
            ..ALL_ON
        };
        let sql = backup_statement("db", BackupType::Full, &["/x.bak"], options);
        assert_eq!(
            sql,
            "BACKUP DATABASE [db] TO DISK = N'/x.bak' WITH INIT, FORMAT, CHECKSUM, COMPRESSION, \
             BUFFERCOUNT = 64, MAXTRANSFERSIZE = 4194304, \
             ENCRYPTION (ALGORITHM = AES_256, SERVER CERTIFICATE = [Backup]]Cert]), STATS = 10;"
        );
    }

    #[test]
    fn encryption_quotes_unknown_algorithm() {
        let encryption = Encryption {
            algorithm: "AES_256) --".to_string(),
            encryptor: Encryptor::ServerAsymmetricKey("k".to_string()),
        };
        assert_eq!(
            encryption_option(&encryption),
            "ENCRYPTION (ALGORITHM = [AES_256) --], SERVER ASYMMETRIC KEY = [k])"
        );
    }

    #[test]
    fn verify_statement_adds_checksum_only_when_asked() {
        assert_eq!(
            verify_statement(&["/x.bak"], true),
            "RESTORE VERIFYONLY FROM DISK = N'/x.bak' WITH CHECKSUM;"
        );
        assert_eq!(
            verify_statement(&["/x.bak"], false),
            "RESTORE VERIFYONLY FROM DISK = N'/x.bak';"
        );
    }

    #[test]
    fn statements_match_snapshots() {
        let options = BackupOptions {
            compression: false,
            ..ALL_ON
        };
        let restore = RestoreOptions {
            moves: vec![
                ("Sales".to_string(), r"D:\data\Sales_copy.mdf".to_string()),
                ("Sales_log".to_string(), r"L:\log\it's.ldf".to_string()),
            ],
            replace: true,
            checksum: true,
            recovery: false,
            stop_at: Some("2026-03-01T10:15:00.000".to_string()),
        };
        let statements = [
            backup_statement("Sales", BackupType::Full, &[r"\\h\s\full.bak"], ALL_ON),
            backup_statement("a]b", BackupType::Diff, &["/s/diff.bak"], options.clone()),
            backup_statement("Sales", BackupType::Log, &["/s/log.trn"], options),
            verify_statement(&[r"\\h\s\full.bak"], true),
            verify_statement(&["/s/log.trn"], false),
            restore_statement(
                RestoreKind::Database,
                "Sales]x",
                &["/store/full.bak"],
                &restore,
            ),
            restore_statement(
                RestoreKind::Log,
                "Sales",
                &["/store/log.trn"],
                &RestoreOptions::default(),
            ),
            recovery_statement("Sales]x"),
        ];
        insta::assert_snapshot!(statements.join("\n"));
    }

    #[test]
    fn striped_statements_match_snapshots() {
        let disks: Vec<String> = (1..=4)
            .map(|family| format!(r"\\h\s\Sales_full_{family}of4.bak"))
            .collect();
        let store: Vec<String> = (1..=4)
            .map(|family| format!("/store/it's_{family}of4.bak"))
            .collect();
        let restore = RestoreOptions {
            checksum: true,
            ..RestoreOptions::default()
        };
        let statements = [
            backup_statement("Sales", BackupType::Full, &disks, ALL_ON),
            verify_statement(&disks, true),
            restore_statement(RestoreKind::Database, "Sales]x", &store, &restore),
        ];
        insta::assert_snapshot!(statements.join("\n"));
    }
}
