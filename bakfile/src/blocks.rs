//! Fields of the TAPE, SSET, VOLB, SFMB and ESET descriptor blocks. Offsets are from the
//! MTF 1.00a layout. The values SQL Server puts in them were observed on backups written by
//! SQL Server 2008 R2 to 2016, and meanings marked "inferred" are guesses that fit them.

use time::PrimitiveDateTime;
use uuid::Uuid;

use crate::mtf::{
    decode_guid, encode_date, encode_guid, read_tape_string, u16_at, u32_at, TapeArea,
};
use crate::BackupType;

/// Fixed part of the TAPE block (MTF 1.00a) before its strings.
const TAPE_FIXED_LEN: usize = 94;
/// Software vendor id SQL Server writes in TAPE+86 and SSET+60 (RESTORE LABELONLY
/// SoftwareVendorId 4608).
const SOFTWARE_VENDOR_ID: u16 = 0x1200;
/// Length of the RAID stream in the TAPE block (observed).
pub(crate) const RAID_STREAM_LEN: usize = 32;
/// Constant SQL Server writes at RAID+16 (observed on every sample).
const RAID_MARKER: u32 = 0xF000_00AD;

/// Fixed part of the SSET block: MTF fields up to +98, then SQL Server's 21 bytes of
/// OS-specific data at +100.
const SSET_FIXED_LEN: usize = 121;
const SSET_OS_DATA_OFFSET: u16 = 100;
const SSET_OS_DATA_LEN: u16 = 21;
/// SSET attribute bits (MTF 1.00a): SSET_COPY_BIT, SSET_NORMAL_BIT, SSET_DIFFERENTIAL_BIT.
/// SQL Server sets NORMAL for full and log backups and DIFFERENTIAL for differentials
/// (observed). Using the COPY bit for COPY_ONLY is inferred; no copy-only sample was seen.
const SSET_COPY: u32 = 0x2;
const SSET_NORMAL: u32 = 0x4;
const SSET_DIFFERENTIAL: u32 = 0x8;

/// Fixed part of the VOLB block before its strings (MTF 1.00a).
const VOLB_FIXED_LEN: usize = 73;

/// Values of the TAPE block and its RAID stream that a reader needs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TapeInfo {
    /// Physical block size in bytes (TAPE+64 is in 512-byte units).
    pub block_size: u32,
    pub media_set_guid: Uuid,
    pub family_count: u16,
    pub family_sequence: u16,
}

/// Values of the SSET block that go into a [`crate::BackupSet`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SsetInfo {
    pub position: u16,
    pub backup_name: String,
    pub backup_description: String,
    pub user_name: String,
    pub time_zone: i8,
    pub backup_set_guid: Uuid,
    pub is_copy_only: bool,
}

/// Builds the area (header placeholder, fixed fields and strings) of a TAPE block.
pub(crate) fn encode_tape(
    block_size: u32,
    media_family_id: u32,
    media_date: PrimitiveDateTime,
) -> TapeArea {
    let mut area = TapeArea::with_fixed_len(TAPE_FIXED_LEN);
    area.put_u32(52, media_family_id);
    area.put_u32(56, 5);
    area.put_u16(60, 1);
    area.put_u16(64, u16::try_from(block_size / 512).unwrap_or(1));
    area.put_u16(66, 3);
    area.put_u16(84, 1024);
    area.put_u16(86, SOFTWARE_VENDOR_ID);
    area.put_bytes(88, &encode_date(Some(media_date)));
    area.put_u8(93, 1);
    // SQL Server stores the software name with two trailing NUL characters (observed).
    area.put_string(80, "Microsoft SQL Server\0\0");
    area
}

/// Builds the RAID stream data of the TAPE block.
pub(crate) fn encode_raid(
    media_set_guid: Uuid,
    family_count: u16,
    family_sequence: u16,
) -> Vec<u8> {
    let mut raid = vec![0u8; RAID_STREAM_LEN];
    raid[0..16].copy_from_slice(&encode_guid(media_set_guid));
    raid[16..20].copy_from_slice(&RAID_MARKER.to_le_bytes());
    raid[20..22].copy_from_slice(&family_count.to_le_bytes());
    raid[22..24].copy_from_slice(&1u16.to_le_bytes());
    raid[24..26].copy_from_slice(&family_sequence.to_le_bytes());
    raid[30..32].copy_from_slice(&1u16.to_le_bytes());
    raid
}

/// Reads the TAPE block's physical block size; `area` is the DBLK up to its first stream.
pub(crate) fn decode_tape_block_size(area: &[u8]) -> Result<u32, String> {
    if area.len() < TAPE_FIXED_LEN {
        return Err(format!(
            "TAPE block is {} bytes, expected at least {TAPE_FIXED_LEN}",
            area.len()
        ));
    }
    let units = u16_at(area, 64);
    // 1 (512-byte sectors) and 8 (4 KiB sectors) were observed; MTF allows other values,
    // and 128 units (64 KiB) is taken as the largest plausible block.
    if units == 0 || units > 128 {
        return Err(format!(
            "TAPE soft-filemark block size is {units} sectors, expected 1 to 128"
        ));
    }
    Ok(u32::from(units) * 512)
}

/// Reads the RAID stream data: media set GUID, family count and sequence.
pub(crate) fn decode_raid(data: &[u8]) -> (Uuid, u16, u16) {
    if data.len() < 26 {
        return (Uuid::nil(), 1, 1);
    }
    (
        decode_guid(&data[0..16]),
        u16_at(data, 20),
        u16_at(data, 24),
    )
}

/// Builds the area of an SSET block.
pub(crate) struct SsetFields<'a> {
    pub backup_type: BackupType,
    pub is_copy_only: bool,
    pub position: u16,
    pub backup_name: &'a str,
    pub backup_description: &'a str,
    pub user_name: &'a str,
    pub physical_address: u64,
    pub write_date: PrimitiveDateTime,
    pub software_major: u8,
    pub software_minor: u8,
    pub time_zone: i8,
    pub backup_set_guid: Uuid,
}

pub(crate) fn encode_sset(f: &SsetFields<'_>) -> TapeArea {
    let mut area = TapeArea::with_fixed_len(SSET_FIXED_LEN);
    let kind_bit = match f.backup_type {
        BackupType::Differential
        | BackupType::FileDifferential
        | BackupType::PartialDifferential => SSET_DIFFERENTIAL,
        _ => SSET_NORMAL,
    };
    let copy_bit = if f.is_copy_only { SSET_COPY } else { 0 };
    area.put_u32(52, kind_bit | copy_bit);
    area.put_u16(60, SOFTWARE_VENDOR_ID);
    area.put_u16(62, f.position);
    area.put_u64(80, f.physical_address);
    area.put_bytes(88, &encode_date(Some(f.write_date)));
    area.put_u8(93, f.software_major);
    area.put_u8(94, f.software_minor);
    area.put_u8(95, f.time_zone as u8);
    area.put_u8(97, 2);
    // The first 16 bytes of the OS-specific data are taken to be the BackupSetGUID, because
    // the differential base links in SCIN point at them (inferred). The other 5 are unknown.
    area.put_bytes(
        usize::from(SSET_OS_DATA_OFFSET),
        &encode_guid(f.backup_set_guid),
    );
    area.put_string(64, f.backup_name);
    area.put_string(68, f.backup_description);
    area.put_string(76, f.user_name);
    area
}

/// Tape address of the SSET's OS-specific data, for its DBLK header.
pub(crate) fn sset_os_data() -> (u16, u16) {
    (SSET_OS_DATA_LEN, SSET_OS_DATA_OFFSET)
}

pub(crate) fn decode_sset(area: &[u8], os_data: (u16, u16)) -> Result<SsetInfo, String> {
    if area.len() < 98 {
        return Err(format!(
            "SSET block is {} bytes, expected at least 98",
            area.len()
        ));
    }
    let guid_at = usize::from(os_data.1);
    let backup_set_guid = if os_data.0 >= 16 && guid_at + 16 <= area.len() {
        decode_guid(&area[guid_at..guid_at + 16])
    } else {
        Uuid::nil()
    };
    Ok(SsetInfo {
        position: u16_at(area, 62),
        backup_name: read_tape_string(area, 64),
        backup_description: read_tape_string(area, 68),
        user_name: read_tape_string(area, 76),
        time_zone: area[95] as i8,
        backup_set_guid,
        is_copy_only: u32_at(area, 52) & SSET_COPY != 0,
    })
}

/// Builds the area of a VOLB block. The device and volume names are left empty because
/// a backup to a file has no meaningful value for them.
pub(crate) fn encode_volb(machine_name: &str, write_date: PrimitiveDateTime) -> TapeArea {
    let mut area = TapeArea::with_fixed_len(VOLB_FIXED_LEN);
    area.put_u32(52, 2);
    area.put_bytes(68, &encode_date(Some(write_date)));
    area.put_string(64, machine_name);
    area
}

/// Reads the machine name (RESTORE HEADERONLY MachineName) from a VOLB area.
pub(crate) fn decode_volb_machine(area: &[u8]) -> String {
    read_tape_string(area, 64)
}

/// Builds a soft filemark block of `block_size` bytes listing the byte offsets of the
/// earlier filemarks, newest first. Observed layout: +52 capacity, +56 count, +60 offset
/// of the list (72), then u64 entries.
pub(crate) fn encode_sfmb(block_size: u32, earlier: &[u64]) -> Vec<u8> {
    let mut block = vec![0u8; block_size as usize];
    let capacity = (block_size as usize - 72) / 8;
    block[52..56].copy_from_slice(&(capacity as u32).to_le_bytes());
    block[56..60].copy_from_slice(&(earlier.len().min(capacity) as u32).to_le_bytes());
    block[60..64].copy_from_slice(&72u32.to_le_bytes());
    for (i, offset) in earlier.iter().rev().take(capacity).enumerate() {
        let at = 72 + i * 8;
        block[at..at + 8].copy_from_slice(&offset.to_le_bytes());
    }
    block
}

/// Builds the fixed area of an ESET block (MTF 1.00a): attributes copied from the SSET,
/// data-set number and write date.
pub(crate) fn encode_eset(
    position: u16,
    write_date: PrimitiveDateTime,
    sset_attributes: u32,
) -> TapeArea {
    let mut area = TapeArea::with_fixed_len(88);
    area.put_u32(52, sset_attributes);
    area.put_u16(78, position);
    area.put_bytes(80, &encode_date(Some(write_date)));
    area
}

/// SSET attribute word of an encoded SSET area.
pub(crate) fn sset_attributes(area: &TapeArea) -> u32 {
    u32_at(&area.bytes, 52)
}
