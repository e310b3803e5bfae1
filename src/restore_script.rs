//! Restore scripts: the T-SQL that applies a restore chain, with the files it reads.
//! Pure: the caller supplies the paths and file lists.

use std::collections::BTreeMap;

use serde::Serialize;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

pub use crate::backup::BackupFile;
use crate::backup::BackupType;
use crate::chain::{ChainBackup, RestoreChain};
use crate::mssql::tsql::{self, RestoreKind};

/// Store facts of one backup of the chain, beside its LSNs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScriptSource {
    /// The backup's files in family order: one, or every media family of a striped
    /// backup, all of which `FROM DISK = ..., DISK = ...` must name.
    pub families: Vec<SourceFamily>,
    pub has_checksums: bool,
    /// msdb `time_zone`: server offset from UTC in 15-minute steps; 127 means unknown.
    pub time_zone: Option<i16>,
    /// Database files in the backup; `None` for backups imported without a file list.
    pub files: Option<Vec<BackupFile>>,
}

/// One file of a backup, as `FROM DISK` names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceFamily {
    /// The file in the store, absolute.
    pub path: String,
    pub size_bytes: u64,
    pub sha256: String,
}

impl ScriptSource {
    /// Returns the paths of the backup's files in family order.
    pub fn paths(&self) -> Vec<&str> {
        self.families
            .iter()
            .map(|family| family.path.as_str())
            .collect()
    }

    /// Returns the path of the first file, which names the backup in messages.
    fn first_path(&self) -> String {
        self.families
            .first()
            .map(|family| family.path.clone())
            .unwrap_or_default()
    }

    /// Lists one [`ScriptFile`] per family of the backup.
    fn script_files(&self, backup: &ChainBackup) -> Vec<ScriptFile> {
        let count = self.families.len() as u32;
        self.families
            .iter()
            .enumerate()
            .map(|(index, family)| ScriptFile {
                backup_id: backup.id,
                backup_type: backup.backup_type,
                path: family.path.clone(),
                size_bytes: family.size_bytes,
                sha256: family.sha256.clone(),
                family_number: index as u32 + 1,
                family_count: count,
            })
            .collect()
    }
}

/// Choices of the person restoring.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScriptOptions {
    /// Restore under this name instead of the source database's name.
    pub restore_as: Option<String>,
    /// Server folder where every database file is created.
    pub move_to: Option<String>,
    /// Write `REPLACE`, which overwrites an existing database of that name.
    pub replace: bool,
}

/// One file the script reads, in restore order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScriptFile {
    pub backup_id: i64,
    pub backup_type: BackupType,
    pub path: String,
    pub size_bytes: u64,
    pub sha256: String,
    /// The media family this file holds, from 1; a backup on one file has family 1 of 1.
    pub family_number: u32,
    pub family_count: u32,
}

/// A restore script and the files it reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RestoreScript {
    /// The database the script creates or overwrites.
    pub database: String,
    /// The statements in the order they must run.
    pub statements: Vec<String>,
    pub files: Vec<ScriptFile>,
    /// `STOPAT` as written into the script, in the server's local time.
    pub stop_at_local: Option<String>,
    /// Steps the DBA must take around the statements, printed as comments first.
    pub notes: Vec<String>,
}

impl RestoreScript {
    /// Formats the script as T-SQL text, one statement per line after a comment header.
    pub fn to_sql(&self) -> String {
        // Debug formatting escapes line breaks, so a database name cannot end the comment.
        let mut text = format!(
            "-- Restore of database {:?} from {} backup file(s), in this order.\n",
            self.database,
            self.files.len()
        );
        if let Some(stop_at) = &self.stop_at_local {
            text.push_str(&format!("-- STOPAT is server local time: {stop_at}\n"));
        }
        for note in &self.notes {
            text.push_str(&format!("-- {note}\n"));
        }
        for statement in &self.statements {
            text.push_str(statement);
            text.push('\n');
        }
        text
    }
}

/// Error of script generation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    #[error("backup #{backup_id} of the chain has no path and checksum in the request; this is a bug in the caller")]
    MissingSource { backup_id: i64 },
    #[error("cannot write MOVE clauses: full backup #{backup_id} ({path}) has no recorded file list, as for backups catalogued by `bakfleet import`; restore under the same name into the same folders, or run RESTORE FILELISTONLY on the file and write the MOVE clauses by hand")]
    MissingFileList { backup_id: i64, path: String },
    #[error("cannot write STOPAT: log backup #{backup_id} ({path}) has no known server time zone, so the UTC target cannot be converted to the server's local time")]
    UnknownTimeZone { backup_id: i64, path: String },
}

/// Writes the restore script for `chain`.
///
/// The sequence follows "Restore a SQL Server Database to a Point in Time (Full Recovery
/// Model)": the full, the differential and every log `WITH NORECOVERY`, the last log
/// with `STOPAT`, then `RESTORE DATABASE ... WITH RECOVERY`.
///
/// - `MOVE` clauses are written for every file of the full when `move_to` is set, or
///   when `restore_as` names another database, since the new database would otherwise
///   try to create the source's files (errors 1834, 1802).
/// - `REPLACE` is written only when `options.replace` is set. Without it SQL Server keeps
///   its own checks: it rejects overwriting a database whose log tail was not backed up
///   (3159) or that is another database (3154).
/// - `STOPAT` is the UTC target converted to server local time with the `time_zone` of
///   the last log: msdb and the log records use the server's local clock.
///
/// # Errors
/// [`ScriptError::MissingFileList`] when MOVE is needed and the full has no file list;
/// [`ScriptError::UnknownTimeZone`] when STOPAT is needed and the log's offset is unknown.
pub fn write_script(
    database: &str,
    chain: &RestoreChain,
    sources: &BTreeMap<i64, ScriptSource>,
    options: &ScriptOptions,
) -> Result<RestoreScript, ScriptError> {
    let target_name = options.restore_as.as_deref().unwrap_or(database);
    let source_of = |backup: &ChainBackup| {
        sources.get(&backup.id).ok_or(ScriptError::MissingSource {
            backup_id: backup.id,
        })
    };

    let full_source = source_of(&chain.full)?;
    if target_name.eq_ignore_ascii_case("master") {
        return Ok(master_script(target_name, chain, full_source));
    }
    let moves = moves_for(&chain.full, full_source, target_name != database, options)?;
    let stop_at_local = match (chain.stop_at, chain.logs.last()) {
        (Some(stop_at), Some(last_log)) => {
            Some(local_stop_at(stop_at, last_log, source_of(last_log)?)?)
        }
        _ => None,
    };

    let mut statements = Vec::new();
    let mut files = Vec::new();
    let last_index = chain.members().count() - 1;
    for (index, backup) in chain.members().enumerate() {
        let source = source_of(backup)?;
        let is_full = index == 0;
        let options = tsql::RestoreOptions {
            moves: if is_full { moves.clone() } else { Vec::new() },
            replace: is_full && options.replace,
            checksum: source.has_checksums,
            recovery: false,
            stop_at: if index == last_index && backup.backup_type == BackupType::Log {
                stop_at_local.clone()
            } else {
                None
            },
        };
        let kind = match backup.backup_type {
            BackupType::Log => RestoreKind::Log,
            BackupType::Full | BackupType::Diff => RestoreKind::Database,
        };
        statements.push(tsql::restore_statement(
            kind,
            target_name,
            &source.paths(),
            &options,
        ));
        files.extend(source.script_files(backup));
    }
    statements.push(tsql::recovery_statement(target_name));

    Ok(RestoreScript {
        database: target_name.to_string(),
        statements,
        files,
        stop_at_local,
        notes: Vec::new(),
    })
}

/// Writes the restore of `master`, which follows its own procedure ("Restore the master
/// Database (Transact-SQL)"): the instance runs in single-user mode, the full backup is
/// restored `WITH REPLACE` in one statement, and SQL Server stops once it finished. Only
/// full backups of master exist, so the chain is its full alone.
fn master_script(target_name: &str, chain: &RestoreChain, source: &ScriptSource) -> RestoreScript {
    let options = tsql::RestoreOptions {
        moves: Vec::new(),
        replace: true,
        checksum: source.has_checksums,
        recovery: true,
        stop_at: None,
    };
    let statement = tsql::restore_statement(
        RestoreKind::Database,
        target_name,
        &source.paths(),
        &options,
    );
    RestoreScript {
        database: target_name.to_string(),
        statements: vec![statement],
        files: source.script_files(&chain.full),
        stop_at_local: None,
        notes: vec![
            "master: start the instance in single-user mode first (sqlservr -m, or \
             -mSQLCMD to admit only sqlcmd), then run this one statement from sqlcmd; \
             SQL Server stops when the restore finishes, and starts normally after."
                .to_string(),
        ],
    }
}

/// Builds the MOVE pairs for the full's files, or none when the files stay where the
/// source database had them.
fn moves_for(
    full: &ChainBackup,
    source: &ScriptSource,
    renamed: bool,
    options: &ScriptOptions,
) -> Result<Vec<(String, String)>, ScriptError> {
    if options.move_to.is_none() && !renamed {
        return Ok(Vec::new());
    }
    let files = source
        .files
        .as_ref()
        .filter(|files| !files.is_empty())
        .ok_or_else(|| ScriptError::MissingFileList {
            backup_id: full.id,
            path: source.first_path(),
        })?;

    let moves = files
        .iter()
        .map(|file| {
            let (folder, file_name) = split_server_path(&file.physical_name);
            let folder = options.move_to.as_deref().unwrap_or(folder);
            let file_name = match &options.restore_as {
                Some(new_name) => {
                    format!("{new_name}_{}{}", file.logical_name, extension(file_name))
                }
                None => file_name.to_string(),
            };
            (
                file.logical_name.clone(),
                join_server_path(folder, &file_name),
            )
        })
        .collect();
    Ok(moves)
}

/// Splits a server path at its last `\` or `/` into folder and file name.
fn split_server_path(path: &str) -> (&str, &str) {
    match path.rfind(['\\', '/']) {
        Some(index) => (&path[..index], &path[index + 1..]),
        None => ("", path),
    }
}

/// Joins a folder and a file name with the folder's own separator (`\` for Windows
/// folders, `/` otherwise).
fn join_server_path(folder: &str, file_name: &str) -> String {
    let separator = if folder.contains('\\') { '\\' } else { '/' };
    let folder = folder.trim_end_matches(['\\', '/']);
    format!("{folder}{separator}{file_name}")
}

/// Returns the extension with its dot (`.mdf`), or an empty string.
fn extension(file_name: &str) -> &str {
    file_name.rfind('.').map_or("", |index| &file_name[index..])
}

/// Converts the UTC target to the server-local text that STOPAT takes.
///
/// The offset is the last log's msdb `time_zone`, the server's offset when that log was
/// taken, which is right after the target.
// NOTE: a daylight-saving change between the target and that log's finish shifts the
// stop point by the size of the change.
fn local_stop_at(
    stop_at: OffsetDateTime,
    log: &ChainBackup,
    source: &ScriptSource,
) -> Result<String, ScriptError> {
    let unknown = || ScriptError::UnknownTimeZone {
        backup_id: log.id,
        path: source.first_path(),
    };
    let steps = source
        .time_zone
        .filter(|steps| (-48..=48).contains(steps))
        .ok_or_else(unknown)?;
    let offset =
        UtcOffset::from_whole_seconds(i32::from(steps) * 15 * 60).map_err(|_| unknown())?;
    let format =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]");
    Ok(stop_at
        .to_offset(offset)
        .format(format)
        .expect("every time in years 0-9999 formats"))
}

#[cfg(test)]
mod tests;
