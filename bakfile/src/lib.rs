//! Reads and writes SQL Server native backup files: Microsoft Tape Format (MTF) files as
//! SQL Server writes them, and the `MSSQLBAK` container it uses for compressed backups.
//!
//! The public API below is the contract between this crate, the simulator and bakfleet.
//! TODO: the bodies are stubs until the reader and writer land.

use std::io::{self, Read, Seek, Write};
use std::path::Path;

use time::PrimitiveDateTime;
use uuid::Uuid;

/// A log sequence number as SQL Server stores it in a backup header: virtual log file
/// sequence, log block offset, slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Lsn {
    pub vlf: u32,
    pub block: u32,
    pub slot: u16,
}

impl Lsn {
    /// The numeric(25,0) form msdb and RESTORE HEADERONLY show:
    /// `vlf * 10^15 + block * 10^5 + slot`.
    pub fn to_numeric(self) -> u128 {
        u128::from(self.vlf) * 1_000_000_000_000_000
            + u128::from(self.block) * 100_000
            + u128::from(self.slot)
    }

    /// The inverse of [`Lsn::to_numeric`]; `None` when a part does not fit its field.
    pub fn from_numeric(value: u128) -> Option<Lsn> {
        let vlf = u32::try_from(value / 1_000_000_000_000_000).ok()?;
        let block = u32::try_from((value / 100_000) % 10_000_000_000).ok()?;
        let slot = u16::try_from(value % 100_000).ok()?;
        Some(Lsn { vlf, block, slot })
    }
}

/// Backup type as the header records it (msdb `backupset.type` letters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackupType {
    /// `D`, RESTORE HEADERONLY BackupType 1.
    Database,
    /// `I`, BackupType 5.
    Differential,
    /// `L`, BackupType 2.
    Log,
    /// `F`, BackupType 4.
    File,
    /// `G`, BackupType 6.
    FileDifferential,
    /// `P`, BackupType 7.
    Partial,
    /// `Q`, BackupType 8.
    PartialDifferential,
}

/// Recovery model of the database when the backup was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecoveryModel {
    Full,
    BulkLogged,
    Simple,
}

/// What one backup set says about itself; the writer takes it, the reader returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupSet {
    pub backup_type: BackupType,
    pub position: u16,
    pub database_name: String,
    pub server_name: String,
    pub machine_name: String,
    pub user_name: String,
    pub backup_name: String,
    pub backup_description: String,
    pub software_major: u8,
    pub software_minor: u8,
    pub software_build: u16,
    pub database_version: u16,
    pub compatibility_level: u8,
    pub first_lsn: Lsn,
    pub last_lsn: Lsn,
    pub checkpoint_lsn: Lsn,
    pub database_backup_lsn: Lsn,
    pub database_creation_date: PrimitiveDateTime,
    pub backup_start_date: PrimitiveDateTime,
    /// `None` in a leading header copy, which SQL Server writes before the backup ends.
    pub backup_finish_date: Option<PrimitiveDateTime>,
    /// Offset of the server's local time from UTC, in 15-minute units.
    pub time_zone: i8,
    pub backup_size: u64,
    pub has_checksums: bool,
    pub is_copy_only: bool,
    pub compressed: bool,
    pub backup_set_guid: Uuid,
    pub differential_base_guid: Option<Uuid>,
    pub family_guid: Uuid,
    pub binding_id: Uuid,
    pub recovery_fork_id: Uuid,
    pub recovery_model: RecoveryModel,
    pub media_set_guid: Uuid,
    pub family_count: u16,
    pub family_sequence: u16,
    /// True when the values come from the leading header copy because the trailing copy
    /// was missing.
    pub provisional: bool,
}

/// How the writer lays a file out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOptions {
    /// Write the `MSSQLBAK` compressed container instead of plain MTF.
    pub compressed: bool,
    /// Physical block size: 512 (SQL Server on 512-byte-sector disks) or 4096.
    pub block_size: u32,
}

/// Streams one backup set into `W`.
pub struct BackupWriter<W: Write> {
    out: W,
}

impl<W: Write> BackupWriter<W> {
    /// Writes everything before the data stream. `payload_len` is the number of bytes that
    /// [`BackupWriter::write_payload`] will receive: database pages for full and
    /// differential backups, log blocks for log backups.
    pub fn new(out: W, set: &BackupSet, payload_len: u64, options: WriteOptions) -> io::Result<Self> {
        let _ = (set, payload_len, options);
        Ok(BackupWriter { out })
    }

    /// Appends payload bytes; calls may have any length.
    pub fn write_payload(&mut self, bytes: &[u8]) -> io::Result<()> {
        let _ = bytes;
        Ok(())
    }

    /// Writes the checksum (when `set.has_checksums`), the trailing header copy with the
    /// final values of `set`, and the end-of-set blocks; returns the inner writer.
    pub fn finish(self, set: &BackupSet) -> io::Result<W> {
        let _ = set;
        Ok(self.out)
    }
}

/// Checksum handling of a verification, as `RESTORE VERIFYONLY` options set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChecksumMode {
    /// No option: check backup checksums when present, skip them when absent.
    #[default]
    IfPresent,
    /// `WITH CHECKSUM`: the backup must have checksums.
    Require,
    /// `WITH NO_CHECKSUM`.
    Skip,
}

/// Result of a successful verification.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifyReport {
    pub sets: Vec<BackupSet>,
    /// True when backup checksums were present and checked.
    pub checksums_checked: bool,
}

/// Why a file failed verification. Each kind maps to one SQL Server error.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Not a Microsoft Tape Format file at all (SQL Server error 3242).
    #[error("not a Microsoft Tape Format backup set: {reason}")]
    NotABackup { reason: String },
    /// A descriptor block or stream header is damaged or out of place (error 3241).
    #[error("media family incorrectly formed at offset {offset}: {reason}")]
    MalformedMedia { offset: u64, reason: String },
    /// The backup data does not match its checksum (error 3189).
    #[error("damage to the backup set at offset {offset}: {reason}")]
    DamagedBackupSet { offset: u64, reason: String },
    /// `WITH CHECKSUM` on a backup taken without checksums (error 3187).
    #[error("the backup set does not contain checksum information")]
    NoChecksums,
    /// The file ends before the backup set does (error 3256 in SQL Server's terms).
    #[error("backup set incomplete: file ends at offset {offset}")]
    Truncated { offset: u64 },
    #[error("read failed: {0}")]
    Io(#[from] io::Error),
}

/// Verifies a whole backup file as RESTORE VERIFYONLY does.
///
/// # Errors
/// See [`VerifyError`].
pub fn verify<R: Read>(input: R, mode: ChecksumMode) -> Result<VerifyReport, VerifyError> {
    let _ = (input, mode);
    Err(VerifyError::NotABackup { reason: "not implemented".into() })
}

/// Verifies the file at `path`; see [`verify`].
///
/// # Errors
/// See [`VerifyError`]; a file that cannot be opened is [`VerifyError::Io`].
pub fn verify_file(path: &Path, mode: ChecksumMode) -> Result<VerifyReport, VerifyError> {
    let file = std::fs::File::open(path)?;
    verify(io::BufReader::with_capacity(1 << 20, file), mode)
}

/// Reads the header of every backup set in a file without reading its data.
///
/// # Errors
/// The same kinds as [`verify`], except checksum errors.
pub fn read_headers<R: Read + Seek>(input: R) -> Result<Vec<BackupSet>, VerifyError> {
    let _ = input;
    Err(VerifyError::NotABackup { reason: "not implemented".into() })
}
