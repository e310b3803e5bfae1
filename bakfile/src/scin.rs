//! SQL Server's own header in the MQCI stream of the MSCI (leading copy) and MSLS
//! (trailing copy) blocks: an `SCIN` record with the backup set's values, an `SFGI`
//! filegroup record and one `SFIN` record per database file. No public description of
//! SCIN exists; the offsets below were worked out from real backups (SQL Server 2005 to
//! 2025). Fields marked "inferred" fit every sample but their meaning is a guess.

use time::PrimitiveDateTime;
use uuid::Uuid;

use crate::mtf::{
    decode_date, decode_guid, decode_lsn, encode_date, encode_guid, encode_lsn, read_tape_string,
    u16_at, u32_at, u64_at, TapeArea,
};
use crate::{BackupSet, BackupType, Collation, Lsn, RecoveryModel};

/// Fixed part of SCIN on SQL Server 11.0 to 17.0 (observed; 9.0 uses 0x158 and
/// 10.0/10.50 use 0x16C). Readers use the tape addresses, never this length.
const SCIN_FIXED_LEN: usize = 0x190;
/// Shortest fixed part seen (SQL Server 9.0); a shorter SCIN is rejected.
const SCIN_MIN_LEN: usize = 0x158;
/// SCIN flag bits (observed): always 0x200, 0x800 on differentials, 0x10 when the backup
/// has checksums (the same bit as RESTORE HEADERONLY Flags "HasBackupChecksums").
const FLAG_ALWAYS: u32 = 0x200;
const FLAG_DIFFERENTIAL: u32 = 0x800;
const FLAG_CHECKSUMS: u32 = 0x10;
/// Database status bits at SCIN+0xF4 (inferred from one SIMPLE-recovery database):
/// 8 is SIMPLE, 4 is taken to be BULK_LOGGED.
const STATUS_SIMPLE: u16 = 0x8;
const STATUS_BULK_LOGGED: u16 = 0x4;

/// The SCIN values that go into a [`BackupSet`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ScinInfo {
    pub backup_type: BackupType,
    pub database_name: String,
    pub server_name: String,
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
    pub backup_finish_date: Option<PrimitiveDateTime>,
    pub backup_size: u64,
    pub has_checksums: bool,
    pub differential_base_guid: Option<Uuid>,
    pub family_guid: Uuid,
    pub binding_id: Uuid,
    pub recovery_fork_id: Uuid,
    pub recovery_model: RecoveryModel,
    pub collation: Collation,
}

/// msdb `backupset.type` letter of a backup type (SCIN+0x57).
pub(crate) fn type_letter(backup_type: BackupType) -> u8 {
    match backup_type {
        BackupType::Database => b'D',
        BackupType::Differential => b'I',
        BackupType::Log => b'L',
        BackupType::File => b'F',
        BackupType::FileDifferential => b'G',
        BackupType::Partial => b'P',
        BackupType::PartialDifferential => b'Q',
    }
}

fn type_from_letter(letter: u8) -> Option<BackupType> {
    Some(match letter {
        b'D' => BackupType::Database,
        b'I' => BackupType::Differential,
        b'L' => BackupType::Log,
        b'F' => BackupType::File,
        b'G' => BackupType::FileDifferential,
        b'P' => BackupType::Partial,
        b'Q' => BackupType::PartialDifferential,
        _ => return None,
    })
}

fn is_differential(backup_type: BackupType) -> bool {
    matches!(
        backup_type,
        BackupType::Differential | BackupType::FileDifferential | BackupType::PartialDifferential
    )
}

/// Builds the MQCI stream data: SCIN, SFGI and one SFIN each for a data file and a log
/// file. `finish_date` is `None` in the leading copy, as SQL Server writes it.
pub(crate) fn encode_mqci(set: &BackupSet, finish_date: Option<PrimitiveDateTime>) -> Vec<u8> {
    let mut data = encode_scin(set, finish_date);
    data.extend_from_slice(&encode_sfgi());
    let data_file = format!("{}.mdf", set.database_name);
    let log_file = format!("{}_log.ldf", set.database_name);
    data.extend_from_slice(&encode_sfin(1, &set.database_name, &data_file));
    data.extend_from_slice(&encode_sfin(
        2,
        &format!("{}_log", set.database_name),
        &log_file,
    ));
    data
}

fn encode_scin(set: &BackupSet, finish_date: Option<PrimitiveDateTime>) -> Vec<u8> {
    let mut scin = TapeArea::with_fixed_len(SCIN_FIXED_LEN);
    scin.put_bytes(0, b"SCIN");
    let mut flags = FLAG_ALWAYS;
    if is_differential(set.backup_type) {
        flags |= FLAG_DIFFERENTIAL;
    }
    if set.has_checksums {
        flags |= FLAG_CHECKSUMS;
    }

    scin.put_u32(0x08, flags);
    scin.put_u32(0x0C, 1);
    scin.put_u32(0x10, 1);
    scin.put_u16(0x18, set.software_build);
    scin.put_u8(0x1A, set.software_minor);
    scin.put_u8(0x1B, set.software_major);
    scin.put_u32(0x1C, 9);

    scin.put_bytes(0x20, &encode_lsn(set.first_lsn));
    scin.put_bytes(0x2A, &encode_lsn(set.last_lsn));
    scin.put_bytes(0x34, &encode_lsn(set.checkpoint_lsn));
    scin.put_bytes(0x3E, &encode_lsn(set.database_backup_lsn));
    scin.put_bytes(0x48, &encode_date(Some(set.database_creation_date)));
    scin.put_bytes(0x4D, &encode_date(Some(set.backup_start_date)));
    scin.put_bytes(0x52, &encode_date(finish_date));
    scin.put_u8(0x57, type_letter(set.backup_type));

    // The sort id appears here and at +0xDC (observed).
    scin.put_u8(0x58, set.collation.sort_id);
    scin.put_u8(0x59, 1);
    scin.put_u8(0x5B, set.compatibility_level);
    // Probably the database id (inferred); 5 is the id of the first user database.
    scin.put_u16(0x5C, 5);
    scin.put_u16(0x5E, set.database_version);
    scin.put_u64(0x60, set.backup_size);
    // The locale repeats the collation's; comparison style 196609 is what every sample
    // holds, whatever its collation (observed).
    scin.put_u32(0x74, set.collation.lcid);
    scin.put_u32(0x78, 196_609);

    scin.put_bytes(0x7C, &encode_guid(set.binding_id));
    scin.put_bytes(0x90, &encode_lsn(set.last_lsn));
    scin.put_bytes(0x9C, &encode_guid(set.recovery_fork_id));
    let base = set.differential_base_guid.unwrap_or(Uuid::nil());
    scin.put_bytes(0xC8, &encode_guid(base));
    scin.put_u32(0xD8, set.collation.info());
    scin.put_u8(0xDC, set.collation.sort_id);
    scin.put_bytes(0xE0, &encode_guid(set.family_guid));
    let status = match set.recovery_model {
        RecoveryModel::Full => 0,
        RecoveryModel::BulkLogged => STATUS_BULK_LOGGED,
        RecoveryModel::Simple => STATUS_SIMPLE,
    };
    scin.put_u16(0xF4, status);

    scin.put_u64(0x158, set.backup_size);
    scin.put_string(0x68, &set.database_name);
    scin.put_string(0x6C, &set.server_name);
    finish_record(scin)
}

/// Pads a record to 4 bytes and stores its length at +4, which is also the offset of the
/// next record (observed).
fn finish_record(mut area: TapeArea) -> Vec<u8> {
    while area.bytes.len() % 4 != 0 {
        area.bytes.push(0);
    }
    let len = area.bytes.len() as u32;
    area.put_u32(4, len);
    area.bytes
}

/// A one-filegroup SFGI record (PRIMARY). Only the tag, length and name are meaningful;
/// the other fields of real SFGI records are not understood and left zero.
fn encode_sfgi() -> Vec<u8> {
    let mut area = TapeArea::with_fixed_len(0x30);
    area.put_bytes(0, b"SFGI");
    area.put_u32(0x08, 1);
    area.put_string(0x0C, "PRIMARY");
    finish_record(area)
}

/// Builds an SFIN record naming one database file: tag, length, a file id and the
/// logical and physical names as tape addresses.
/// NOTE: the layout of real SFIN records is not understood, so RESTORE FILELISTONLY data
/// cannot be read from these records or from SQL Server's.
fn encode_sfin(file_id: u32, logical_name: &str, physical_name: &str) -> Vec<u8> {
    let mut area = TapeArea::with_fixed_len(0x20);
    area.put_bytes(0, b"SFIN");
    area.put_u32(0x08, file_id);
    area.put_string(0x0C, logical_name);
    area.put_string(0x10, physical_name);
    finish_record(area)
}

/// Parses the SCIN record at the start of MQCI stream data.
pub(crate) fn decode_scin(data: &[u8]) -> Result<ScinInfo, String> {
    if data.len() < SCIN_MIN_LEN || &data[0..4] != b"SCIN" {
        return Err("MQCI stream does not start with an SCIN record".to_string());
    }
    let declared = u32_at(data, 4) as usize;
    if declared < SCIN_MIN_LEN || declared > data.len() {
        return Err(format!(
            "SCIN record length {declared} is outside {SCIN_MIN_LEN}..={}",
            data.len()
        ));
    }

    let scin = &data[..declared];
    let letter = scin[0x57];
    let backup_type = type_from_letter(letter)
        .ok_or_else(|| format!("SCIN backup type {:?} is unknown", char::from(letter)))?;
    let flags = u32_at(scin, 0x08);
    let date = |off: usize, name: &str| {
        decode_date(&scin[off..off + 5]).map_err(|e| format!("SCIN {name}: {e}"))
    };
    let required = |value: Option<PrimitiveDateTime>, name: &str| {
        value.ok_or_else(|| format!("SCIN {name} is missing"))
    };

    let base = decode_guid(&scin[0xC8..0xD8]);
    let differential_base_guid = (is_differential(backup_type) && !base.is_nil()).then_some(base);
    let status = u16_at(scin, 0xF4);
    let recovery_model = if status & STATUS_SIMPLE != 0 {
        RecoveryModel::Simple
    } else if status & STATUS_BULK_LOGGED != 0 {
        RecoveryModel::BulkLogged
    } else {
        RecoveryModel::Full
    };

    Ok(ScinInfo {
        backup_type,
        database_name: read_tape_string(scin, 0x68),
        server_name: read_tape_string(scin, 0x6C),
        software_major: scin[0x1B],
        software_minor: scin[0x1A],
        software_build: u16_at(scin, 0x18),
        database_version: u16_at(scin, 0x5E),
        compatibility_level: scin[0x5B],
        first_lsn: decode_lsn(&scin[0x20..]),
        last_lsn: decode_lsn(&scin[0x2A..]),
        checkpoint_lsn: decode_lsn(&scin[0x34..]),
        database_backup_lsn: decode_lsn(&scin[0x3E..]),
        database_creation_date: required(
            date(0x48, "DatabaseCreationDate")?,
            "DatabaseCreationDate",
        )?,
        backup_start_date: required(date(0x4D, "BackupStartDate")?, "BackupStartDate")?,
        backup_finish_date: date(0x52, "BackupFinishDate")?,
        backup_size: u64_at(scin, 0x60),
        has_checksums: flags & FLAG_CHECKSUMS != 0,
        differential_base_guid,
        family_guid: decode_guid(&scin[0xE0..0xF0]),
        binding_id: decode_guid(&scin[0x7C..0x8C]),
        recovery_fork_id: decode_guid(&scin[0x9C..0xAC]),
        recovery_model,
        collation: Collation::from_parts(u32_at(scin, 0xD8), scin[0xDC]),
    })
}
