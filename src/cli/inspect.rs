//! `bakfleet inspect FILE...`: prints the backup set headers of SQL Server backup files,
//! about what RESTORE HEADERONLY reports, as a table or as JSON.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use bakfile::{BackupSet, VerifyError};
use serde::Serialize;

/// One file's result in `--json` output: its sets, or the kind and text of its error.
#[derive(Debug, Serialize)]
struct FileReport {
    file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    sets: Option<Vec<SetView>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorView>,
}

#[derive(Debug, Serialize)]
struct ErrorView {
    kind: &'static str,
    message: String,
}

/// The header fields of one backup set with RESTORE HEADERONLY's column names, in the
/// forms a DBA compares with msdb: LSNs as numeric(25,0), dates as server local time
/// followed by its offset from UTC when the header gives one.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct SetView {
    pub position: u16,
    pub backup_type: char,
    pub database_name: String,
    pub server_name: String,
    pub machine_name: String,
    pub user_name: String,
    pub backup_name: String,
    pub backup_description: String,
    pub software_version: String,
    pub database_version: u16,
    pub compatibility_level: u8,
    #[serde(rename = "FirstLSN")]
    pub first_lsn: String,
    #[serde(rename = "LastLSN")]
    pub last_lsn: String,
    #[serde(rename = "CheckpointLSN")]
    pub checkpoint_lsn: String,
    #[serde(rename = "DatabaseBackupLSN")]
    pub database_backup_lsn: String,
    pub database_creation_date: String,
    pub backup_start_date: String,
    pub backup_finish_date: Option<String>,
    /// Offset of the server's local time from UTC, in 15-minute units.
    pub time_zone: i8,
    pub backup_size: u64,
    pub has_backup_checksums: bool,
    pub is_copy_only: bool,
    pub compressed: bool,
    #[serde(rename = "BackupSetGUID")]
    pub backup_set_guid: String,
    #[serde(rename = "DifferentialBaseGUID")]
    pub differential_base_guid: Option<String>,
    #[serde(rename = "FamilyGUID")]
    pub family_guid: String,
    #[serde(rename = "RecoveryForkID")]
    pub recovery_fork_id: String,
    pub recovery_model: &'static str,
    pub collation: String,
    #[serde(rename = "MediaSetGUID")]
    pub media_set_guid: String,
    pub family_count: u16,
    pub family_sequence_number: u16,
    /// True when the file lacks the trailing header copy, so these are the values SQL
    /// Server wrote before the backup ended.
    pub provisional: bool,
}

impl SetView {
    pub(crate) fn new(set: &BackupSet) -> SetView {
        let offset = set.utc_offset();
        SetView {
            position: set.position,
            backup_type: set.backup_type.msdb_letter(),
            database_name: set.database_name.clone(),
            server_name: set.server_name.clone(),
            machine_name: set.machine_name.clone(),
            user_name: set.user_name.clone(),
            backup_name: set.backup_name.clone(),
            backup_description: set.backup_description.clone(),
            software_version: format!(
                "{}.{}.{}",
                set.software_major, set.software_minor, set.software_build
            ),
            database_version: set.database_version,
            compatibility_level: set.compatibility_level,
            first_lsn: set.first_lsn.to_numeric().to_string(),
            last_lsn: set.last_lsn.to_numeric().to_string(),
            checkpoint_lsn: set.checkpoint_lsn.to_numeric().to_string(),
            database_backup_lsn: set.database_backup_lsn.to_numeric().to_string(),
            database_creation_date: format_date(set.database_creation_date, offset),
            backup_start_date: format_date(set.backup_start_date, offset),
            backup_finish_date: set.backup_finish_date.map(|date| format_date(date, offset)),
            time_zone: set.time_zone,
            backup_size: set.backup_size,
            has_backup_checksums: set.has_checksums,
            is_copy_only: set.is_copy_only,
            compressed: set.compressed,
            backup_set_guid: set.backup_set_guid.to_string(),
            differential_base_guid: set.differential_base_guid.map(|guid| guid.to_string()),
            family_guid: set.family_guid.to_string(),
            recovery_fork_id: set.recovery_fork_id.to_string(),
            // RESTORE HEADERONLY's spelling, which differs from sys.databases' BULK_LOGGED.
            recovery_model: match set.recovery_model {
                bakfile::RecoveryModel::Full => "FULL",
                bakfile::RecoveryModel::BulkLogged => "BULK-LOGGED",
                bakfile::RecoveryModel::Simple => "SIMPLE",
            },
            collation: set.collation.to_string(),
            media_set_guid: set.media_set_guid.to_string(),
            family_count: set.family_count,
            family_sequence_number: set.family_sequence,
            provisional: set.provisional,
        }
    }

    /// Returns (column name, value) pairs in RESTORE HEADERONLY's column order.
    fn rows(&self) -> Vec<(&'static str, String)> {
        let optional = |value: &Option<String>| value.clone().unwrap_or_else(|| "-".into());
        vec![
            ("Position", self.position.to_string()),
            ("BackupType", self.backup_type.to_string()),
            ("DatabaseName", self.database_name.clone()),
            ("ServerName", self.server_name.clone()),
            ("MachineName", self.machine_name.clone()),
            ("UserName", self.user_name.clone()),
            ("BackupName", self.backup_name.clone()),
            ("BackupDescription", self.backup_description.clone()),
            ("SoftwareVersion", self.software_version.clone()),
            ("DatabaseVersion", self.database_version.to_string()),
            ("CompatibilityLevel", self.compatibility_level.to_string()),
            ("FirstLSN", self.first_lsn.clone()),
            ("LastLSN", self.last_lsn.clone()),
            ("CheckpointLSN", self.checkpoint_lsn.clone()),
            ("DatabaseBackupLSN", self.database_backup_lsn.clone()),
            ("DatabaseCreationDate", self.database_creation_date.clone()),
            ("BackupStartDate", self.backup_start_date.clone()),
            ("BackupFinishDate", optional(&self.backup_finish_date)),
            ("TimeZone", self.time_zone.to_string()),
            ("BackupSize", self.backup_size.to_string()),
            ("HasBackupChecksums", self.has_backup_checksums.to_string()),
            ("IsCopyOnly", self.is_copy_only.to_string()),
            ("Compressed", self.compressed.to_string()),
            ("BackupSetGUID", self.backup_set_guid.clone()),
            (
                "DifferentialBaseGUID",
                optional(&self.differential_base_guid),
            ),
            ("FamilyGUID", self.family_guid.clone()),
            ("RecoveryForkID", self.recovery_fork_id.clone()),
            ("RecoveryModel", self.recovery_model.to_string()),
            ("Collation", self.collation.clone()),
            ("MediaSetGUID", self.media_set_guid.clone()),
            ("FamilyCount", self.family_count.to_string()),
            (
                "FamilySequenceNumber",
                self.family_sequence_number.to_string(),
            ),
            ("Provisional", self.provisional.to_string()),
        ]
    }
}

/// Formats a server local time with its offset from UTC when the header gives one.
fn format_date(date: time::PrimitiveDateTime, offset: Option<time::UtcOffset>) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    let local = date.format(&format).unwrap_or_else(|_| date.to_string());
    let Some(offset) = offset else {
        return local;
    };
    let (hours, minutes, _) = offset.as_hms();
    let sign = if offset.is_negative() { '-' } else { '+' };
    format!("{local} {sign}{:02}:{:02}", hours.abs(), minutes.abs())
}

/// Classifies a read error for the DBA: "not a backup", "damaged", "truncated" or
/// "unreadable" (the file could not be opened or read).
pub(crate) fn error_kind(error: &VerifyError) -> &'static str {
    match error {
        VerifyError::NotABackup { .. } => "not a backup",
        VerifyError::MalformedMedia { .. }
        | VerifyError::DamagedBackupSet { .. }
        | VerifyError::NoChecksums => "damaged",
        VerifyError::Truncated { .. } => "truncated",
        VerifyError::Io(_) => "unreadable",
    }
}

/// Reads every backup set header of the file at `path`.
pub(crate) fn read_file_headers(path: &Path) -> Result<Vec<BackupSet>, VerifyError> {
    let file = std::fs::File::open(path)?;
    bakfile::read_headers(file)
}

/// Prints the headers of each file; exits with failure when any file could not be read.
pub(crate) fn execute(files: &[PathBuf], json: bool) -> anyhow::Result<ExitCode> {
    let reports: Vec<FileReport> = files.iter().map(|path| inspect(path)).collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    } else {
        for report in &reports {
            print_table(report);
        }
    }
    let failed = reports.iter().any(|report| report.error.is_some());
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn inspect(path: &Path) -> FileReport {
    let file = path.display().to_string();
    match read_file_headers(path) {
        Ok(sets) => FileReport {
            file,
            sets: Some(sets.iter().map(SetView::new).collect()),
            error: None,
        },
        Err(error) => {
            let kind = error_kind(&error);
            FileReport {
                error: Some(ErrorView {
                    kind,
                    message: format!("{file}: {kind}: {error}"),
                }),
                file,
                sets: None,
            }
        }
    }
}

/// Prints one file as a two-column table per backup set; errors go to stderr.
fn print_table(report: &FileReport) {
    if let Some(error) = &report.error {
        eprintln!("{}", error.message);
        return;
    }
    let sets = report.sets.as_deref().unwrap_or_default();
    println!("{} ({} backup set(s))", report.file, sets.len());
    for set in sets {
        if set.provisional {
            eprintln!(
                "{}: truncated: set {} has no trailing header copy, so its values are the ones \
                 SQL Server wrote when the backup started",
                report.file, set.position
            );
        }
        println!("  {:<22} value", "field");
        for (name, value) in set.rows() {
            println!("  {name:<22} {value}");
        }
        println!();
    }
}
