//! Reads and writes SQL Server native backup files: Microsoft Tape Format (MTF) files as
//! SQL Server writes them, and the `MSSQLBAK` container it uses for compressed backups.
//!
//! The public API below is the contract between this crate, the simulator and bakfleet.

mod blocks;
mod collation;
mod compressed;
mod csum;
mod input;
mod mtf;
mod scin;
mod walk;
mod writer;
mod xpress;

use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

pub use collation::Collation;
pub use writer::BackupWriter;

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

impl BackupType {
    /// Returns the msdb `backupset.type` letter, which the SCIN record also stores.
    pub fn msdb_letter(self) -> char {
        char::from(scin::type_letter(self))
    }
}

/// Recovery model of the database when the backup was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecoveryModel {
    Full,
    BulkLogged,
    Simple,
}

/// What one backup set says about itself; the writer takes it, the reader returns it.
///
/// Each field says where its value comes from: "documented" fields sit in MTF blocks
/// described by the Microsoft Tape Format 1.00a specification, "observed" ones in SQL
/// Server's undocumented SCIN record at offsets that match RESTORE HEADERONLY output on
/// every sample, and "inferred" ones fit every sample but their meaning is a guess.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupSet {
    /// SCIN type letter (observed); the same letters as msdb `backupset.type`.
    pub backup_type: BackupType,
    /// Set number within the media family, from SSET (documented).
    pub position: u16,
    /// SCIN string (observed).
    pub database_name: String,
    /// SCIN string, `machine\instance` for named instances (observed).
    pub server_name: String,
    /// VOLB machine name (documented).
    pub machine_name: String,
    /// SSET user name (documented).
    pub user_name: String,
    /// SSET data set name, the BACKUP `NAME` option (documented).
    pub backup_name: String,
    /// SSET description, the BACKUP `DESCRIPTION` option (documented).
    pub backup_description: String,
    /// SCIN software version (observed).
    pub software_major: u8,
    pub software_minor: u8,
    pub software_build: u16,
    /// SCIN internal database version, for example 661 for SQL Server 2008 R2 (observed).
    pub database_version: u16,
    /// SCIN compatibility level (observed).
    pub compatibility_level: u8,
    /// SCIN LSNs (observed); StopAt_23.trn's FirstLSN matches a SQL Server error text.
    pub first_lsn: Lsn,
    pub last_lsn: Lsn,
    pub checkpoint_lsn: Lsn,
    pub database_backup_lsn: Lsn,
    /// SCIN dates in MTF_DATE_TIME form (layout documented, position observed), server
    /// local time without offset.
    pub database_creation_date: PrimitiveDateTime,
    pub backup_start_date: PrimitiveDateTime,
    /// `None` in a leading header copy, which SQL Server writes before the backup ends.
    pub backup_finish_date: Option<PrimitiveDateTime>,
    /// SSET time zone: offset of the server's local time from UTC, in 15-minute units
    /// (documented field, unit observed).
    pub time_zone: i8,
    /// SCIN size in bytes of the whole set, all stripes together (observed).
    pub backup_size: u64,
    /// SCIN flag 0x10 (observed, the same bit as RESTORE HEADERONLY `Flags`).
    pub has_checksums: bool,
    /// SSET COPY attribute bit (bit documented; that SQL Server uses it for COPY_ONLY is
    /// inferred, because no copy-only sample was available).
    pub is_copy_only: bool,
    /// True for the `MSSQLBAK` container (observed).
    pub compressed: bool,
    /// SSET backup set GUID (observed in an MTF field the specification leaves to the OS).
    pub backup_set_guid: Uuid,
    /// SCIN GUID of the base full backup, on differentials only (observed).
    pub differential_base_guid: Option<Uuid>,
    /// SCIN family GUID (observed).
    pub family_guid: Uuid,
    /// SCIN binding id (inferred).
    pub binding_id: Uuid,
    /// SCIN recovery fork GUID (observed).
    pub recovery_fork_id: Uuid,
    /// SCIN status bits (inferred from one SIMPLE-recovery sample).
    pub recovery_model: RecoveryModel,
    /// SCIN collation (TDS layout documented, position observed).
    pub collation: Collation,
    /// Media set GUID from the RAID stream (observed).
    pub media_set_guid: Uuid,
    /// Number of stripes and this file's place among them, from the RAID stream
    /// (observed: Northwind.bak reads as family 1 of 2).
    pub family_count: u16,
    pub family_sequence: u16,
    /// True when the values come from the leading header copy because the trailing copy
    /// was missing.
    pub provisional: bool,
}

impl BackupSet {
    /// Returns the offset of the server's local time from UTC, which the dates of the
    /// set are in; `None` when `time_zone` is outside -48..=48 quarter hours, the range
    /// msdb documents ("backupset (Transact-SQL)"), where 127 means unknown.
    pub fn utc_offset(&self) -> Option<time::UtcOffset> {
        if !(-48..=48).contains(&self.time_zone) {
            return None;
        }
        time::UtcOffset::from_whole_seconds(i32::from(self.time_zone) * 15 * 60).ok()
    }
}

/// How the writer lays a file out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOptions {
    /// Write the `MSSQLBAK` compressed container instead of plain MTF.
    pub compressed: bool,
    /// Physical block size: 512 (SQL Server on 512-byte-sector disks) or 4096.
    pub block_size: u32,
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

/// Verifies a whole backup file as RESTORE VERIFYONLY does: container detection, every
/// descriptor block and stream header checksum, block order, truncation, compressed record
/// check values and decoding, and (unless `mode` is [`ChecksumMode::Skip`]) the CSUM
/// values this crate writes. CSUM values written by SQL Server use an algorithm that is
/// not public and are not compared, so `checksums_checked` stays false for real files.
///
/// Reads `input` once from start to end; memory use does not grow with the file size.
///
/// # Errors
/// See [`VerifyError`]. For compressed files, offsets of container errors count file
/// bytes and offsets of MTF errors count bytes of the decoded stream.
pub fn verify<R: Read>(mut input: R, mode: ChecksumMode) -> Result<VerifyReport, VerifyError> {
    let (container, prefix) = detect_container(&mut input)?;
    let source = io::Cursor::new(prefix).chain(input);
    let outcome = match container {
        Container::Plain => {
            let mut mtf = input::StreamInput::new(source);
            walk::walk(&mut mtf, false, walk::WalkMode::Verify(mode))?
        }
        Container::Compressed => {
            let mut mtf = compressed::ContainerInput::new(source)?;
            walk::walk(&mut mtf, true, walk::WalkMode::Verify(mode))?
        }
    };
    Ok(VerifyReport {
        sets: outcome.sets,
        checksums_checked: outcome.checksums_checked,
    })
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
/// For plain files only the descriptor blocks and stream headers are read; data streams
/// are skipped by seeking. Compressed files must be decoded from the start, so their
/// reading costs about as much as a verification. When the file ends before a set's
/// trailing header copy, that set comes from its leading copy with `provisional = true`.
///
/// # Errors
/// The same kinds as [`verify`], except checksum errors.
pub fn read_headers<R: Read + Seek>(mut input: R) -> Result<Vec<BackupSet>, VerifyError> {
    let (container, _) = detect_container(&mut input)?;
    input.seek(SeekFrom::Start(0))?;
    let outcome = match container {
        Container::Plain => {
            let mut mtf = input::SeekInput::new(input)?;
            walk::walk(&mut mtf, false, walk::WalkMode::Headers)?
        }
        Container::Compressed => {
            let reader = io::BufReader::with_capacity(256 * 1024, input);
            let mut mtf = compressed::ContainerInput::new(reader)?;
            walk::walk(&mut mtf, true, walk::WalkMode::Headers)?
        }
    };
    Ok(outcome.sets)
}

/// Kind of file, from its first bytes.
enum Container {
    /// Microsoft Tape Format: starts with the `TAPE` descriptor block.
    Plain,
    /// SQL Server's compressed container: starts with `MSSQLBAK`.
    Compressed,
}

/// Reads the first 8 bytes and returns the container kind with the bytes read.
fn detect_container<R: Read>(input: &mut R) -> Result<(Container, Vec<u8>), VerifyError> {
    let mut prefix = vec![0u8; 8];
    let n = input::read_full(input, &mut prefix)?;
    prefix.truncate(n);
    if prefix.starts_with(b"TAPE") {
        Ok((Container::Plain, prefix))
    } else if prefix.starts_with(compressed::MAGIC) {
        Ok((Container::Compressed, prefix))
    } else {
        Err(VerifyError::NotABackup {
            reason: format!(
                "file starts with {:?}, expected TAPE or MSSQLBAK",
                String::from_utf8_lossy(&prefix)
            ),
        })
    }
}
