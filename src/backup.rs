//! Backup types and the record the pipeline hands to the catalogue.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The kind of backup a job takes, as a DBA names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackupType {
    /// `BACKUP DATABASE`: msdb type `D`.
    Full,
    /// `BACKUP DATABASE ... WITH DIFFERENTIAL`: msdb type `I`.
    Diff,
    /// `BACKUP LOG`: msdb type `L`.
    Log,
}

impl BackupType {
    /// All types, in the order pages and listings show them.
    pub const ALL: [BackupType; 3] = [BackupType::Full, BackupType::Diff, BackupType::Log];

    /// Returns the lower-case name used in the catalogue, in store paths and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            BackupType::Full => "full",
            BackupType::Diff => "diff",
            BackupType::Log => "log",
        }
    }

    /// Returns the `msdb.dbo.backupset.type` letter SQL Server records for this type.
    pub fn msdb_letter(self) -> char {
        match self {
            BackupType::Full => 'D',
            BackupType::Diff => 'I',
            BackupType::Log => 'L',
        }
    }

    /// Returns the file extension SQL Server tooling uses: `.trn` for logs, `.bak` otherwise.
    pub fn file_extension(self) -> &'static str {
        match self {
            BackupType::Log => "trn",
            BackupType::Full | BackupType::Diff => "bak",
        }
    }
}

impl fmt::Display for BackupType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for a backup type name that is not `full`, `diff` or `log`.
#[derive(Debug, thiserror::Error)]
#[error("invalid backup type {0:?}: expected full, diff or log")]
pub struct InvalidBackupType(pub String);

impl FromStr for BackupType {
    type Err = InvalidBackupType;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.to_ascii_lowercase().as_str() {
            "full" => Ok(BackupType::Full),
            "diff" | "differential" => Ok(BackupType::Diff),
            "log" => Ok(BackupType::Log),
            _ => Err(InvalidBackupType(text.to_string())),
        }
    }
}

/// A backup that passed every stage: verified on the server, fetched, hashed, durable in
/// the store. The catalogue stores exactly these fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackupRecord {
    pub instance: String,
    pub database: String,
    pub backup_type: BackupType,
    /// Path of the file relative to the store root, with `/` separators; absolute for a
    /// file catalogued in place by `bakfleet import`.
    pub store_path: String,
    /// The path the instance wrote, as the instance names it (UNC or host path).
    pub staged_path: String,
    pub size_bytes: u64,
    /// Lower-case hex SHA-256 of the file's bytes.
    pub sha256: String,
    pub first_lsn: Lsn,
    pub last_lsn: Lsn,
    pub checkpoint_lsn: Lsn,
    pub database_backup_lsn: Lsn,
    pub differential_base_lsn: Option<Lsn>,
    /// For a differential: the `backup_set_guid` of its base full; `None` otherwise or
    /// when unknown.
    pub differential_base_guid: Option<String>,
    pub backup_set_guid: Option<String>,
    pub database_guid: Option<String>,
    /// `backup_start_date` as msdb stores it: server local time, without offset.
    pub backup_start: time::PrimitiveDateTime,
    pub backup_finish: time::PrimitiveDateTime,
    /// msdb `time_zone`: offset from UTC in 15-minute steps; 127 means unknown.
    pub time_zone: Option<i16>,
    pub server_version: Option<String>,
    pub recovery_model: Option<String>,
    pub has_checksums: bool,
    pub is_copy_only: bool,
    pub compressed: bool,
    pub backup_size: Option<u64>,
    pub compressed_size: Option<u64>,
    pub fetched_at: time::OffsetDateTime,
    pub fetch_ms: u64,
    /// The database files in the backup, from msdb `backupfile`; `None` when unknown
    /// (imported files, or a server whose msdb did not return them).
    pub files: Option<Vec<BackupFile>>,
    /// The media families of a striped backup in family order, family 1 first. It is
    /// empty for a backup written to one file, which `store_path` and `sha256` describe.
    /// Family 1 repeats `store_path` and `sha256`, and `size_bytes` is the sum over all
    /// families.
    pub families: Vec<BackupFamily>,
}

/// One file of a striped backup. SQL Server needs every family of a media set to verify
/// or restore it ("Media Sets, Media Families, and Backup Sets (SQL Server)").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackupFamily {
    /// msdb `family_sequence_number`, from 1: the position in `FROM DISK = ...` lists.
    pub family_number: u32,
    /// Path relative to the store root, with `/` separators.
    pub store_path: String,
    /// The path the instance wrote, as the instance names it.
    pub staged_path: String,
    pub size_bytes: u64,
    /// Lower-case hex SHA-256 of the family's bytes.
    pub sha256: String,
}

/// A database file recorded in a backup (`msdb.dbo.backupfile`). RESTORE needs the
/// logical names to write `MOVE` clauses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackupFile {
    /// Position of the file in the backup, from `file_number`.
    pub file_number: i64,
    pub logical_name: String,
    /// Path of the file on the server that took the backup.
    pub physical_name: String,
    /// msdb `file_type`: `D` data, `L` log, `F` full-text catalog.
    pub file_type: String,
    /// msdb `file_size`: bytes of the file when the backup was taken.
    pub size_bytes: Option<u64>,
}

/// A log sequence number in SQL Server's numeric(25,0) form.
///
/// msdb and RESTORE HEADERONLY show an LSN as `vlf * 10^15 + block * 10^5 + slot`; the
/// value needs up to 25 decimal digits, so it is kept as `u128`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
pub struct Lsn(pub u128);

impl Lsn {
    /// Width of the zero-padded text form used in the catalogue, so that text order is
    /// numeric order.
    pub const TEXT_WIDTH: usize = 25;

    /// Formats the zero-padded 25-digit text the catalogue stores.
    pub fn to_catalog_text(self) -> String {
        format!("{:0width$}", self.0, width = Self::TEXT_WIDTH)
    }

    /// Parses decimal digits, with or without padding.
    pub fn parse(text: &str) -> Option<Lsn> {
        let digits = text.trim();
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse::<u128>().ok().map(Lsn)
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsn_text_sorts_numerically() {
        let small = Lsn(9_000_000_001_000_001).to_catalog_text();
        let large = Lsn(20_000_000_024_300_001).to_catalog_text();
        assert!(small < large);
        assert_eq!(Lsn::parse(&large), Some(Lsn(20_000_000_024_300_001)));
    }

    #[test]
    fn backup_type_parses_names() {
        assert_eq!("FULL".parse::<BackupType>().unwrap(), BackupType::Full);
        assert_eq!(
            "differential".parse::<BackupType>().unwrap(),
            BackupType::Diff
        );
        assert!("incremental".parse::<BackupType>().is_err());
    }
}
