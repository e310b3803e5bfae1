//! Reads and writes SQL Server native backup files: Microsoft Tape Format (MTF) files as
//! SQL Server writes them, and the `MSSQLBAK` container it uses for compressed backups.
//!
//! The public API below is the contract between this crate, the simulator and bakfleet.

mod blocks;
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
