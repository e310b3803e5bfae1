//! Microsoft Tape Format primitives: descriptor block (DBLK) and stream headers with their
//! checksums, MTF dates, tape-address strings and LSNs. Layouts are from the MTF 1.00a
//! specification; the checksum rules and SQL Server's values were observed on real files.

use time::{Date, Month, PrimitiveDateTime, Time};
use uuid::Uuid;

use crate::Lsn;

/// Length of the common DBLK header (MTF 1.00a).
pub(crate) const DBLK_HEADER_LEN: usize = 52;
/// Length of a stream header (MTF 1.00a).
pub(crate) const STREAM_HEADER_LEN: usize = 22;
/// MTF logical block size SQL Server records in TAPE+84; DBLK format logical addresses
/// count these units from the SSET.
pub(crate) const LOGICAL_BLOCK: u64 = 1024;
/// OS id and version SQL Server writes in every DBLK (observed: 0x0E, 1).
pub(crate) const OS_ID: u8 = 0x0E;
pub(crate) const OS_VERSION: u8 = 1;
/// String type 2: strings are UTF-16LE (MTF 1.00a).
pub(crate) const STRING_TYPE_UNICODE: u8 = 2;

/// The common header of a descriptor block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DblkHeader {
    pub kind: [u8; 4],
    pub attributes: u32,
    /// Offset of the first stream header from the start of the DBLK.
    pub first_event: u16,
    /// Position in 1 KiB logical blocks from the SSET of the set.
    pub format_logical_address: u64,
    pub control_block_id: u32,
    /// Tape address (size, offset) of the OS-specific data.
    pub os_data: (u16, u16),
    pub string_type: u8,
}

impl DblkHeader {
    pub fn new(kind: &[u8; 4]) -> Self {
        DblkHeader {
            kind: *kind,
            attributes: 0,
            first_event: 0,
            format_logical_address: 0,
            control_block_id: 0,
            os_data: (0, 0),
            string_type: 0,
        }
    }

    /// Encodes the header with its checksum into the first 52 bytes of `out`.
    pub fn encode_into(&self, out: &mut [u8]) {
        let h = &mut out[..DBLK_HEADER_LEN];
        h.fill(0);
        h[0..4].copy_from_slice(&self.kind);
        h[4..8].copy_from_slice(&self.attributes.to_le_bytes());
        h[8..10].copy_from_slice(&self.first_event.to_le_bytes());
        h[10] = OS_ID;
        h[11] = OS_VERSION;
        h[20..28].copy_from_slice(&self.format_logical_address.to_le_bytes());
        h[36..40].copy_from_slice(&self.control_block_id.to_le_bytes());
        h[44..46].copy_from_slice(&self.os_data.0.to_le_bytes());
        h[46..48].copy_from_slice(&self.os_data.1.to_le_bytes());
        h[48] = self.string_type;
        let checksum = xor_words(&h[..50]);
        h[50..52].copy_from_slice(&checksum.to_le_bytes());
    }

    /// Decodes a header, checking its checksum (the XOR of the 25 preceding 16-bit words).
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let h = &bytes[..DBLK_HEADER_LEN];
        let stored = u16_at(h, 50);
        let computed = xor_words(&h[..50]);
        if stored != computed {
            return Err(format!(
                "descriptor block header checksum is {stored:#06x}, expected {computed:#06x}"
            ));
        }
        Ok(DblkHeader {
            kind: [h[0], h[1], h[2], h[3]],
            attributes: u32_at(h, 4),
            first_event: u16_at(h, 8),
            format_logical_address: u64_at(h, 20),
            control_block_id: u32_at(h, 36),
            os_data: (u16_at(h, 44), u16_at(h, 46)),
            string_type: h[48],
        })
    }
}

/// A stream header: the 22 bytes in front of each stream's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StreamHeader {
    pub id: [u8; 4],
    pub tape_attributes: u16,
    pub length: u64,
}

impl StreamHeader {
    pub fn new(id: &[u8; 4], tape_attributes: u16, length: u64) -> Self {
        StreamHeader {
            id: *id,
            tape_attributes,
            length,
        }
    }

    pub fn encode(&self) -> [u8; STREAM_HEADER_LEN] {
        let mut h = [0u8; STREAM_HEADER_LEN];
        h[0..4].copy_from_slice(&self.id);
        h[6..8].copy_from_slice(&self.tape_attributes.to_le_bytes());
        h[8..16].copy_from_slice(&self.length.to_le_bytes());
        let checksum = xor_words(&h[..20]);
        h[20..22].copy_from_slice(&checksum.to_le_bytes());
        h
    }

    /// Decodes a stream header, checking its checksum (the XOR of the 10 preceding words).
    pub fn decode(h: &[u8; STREAM_HEADER_LEN]) -> Result<Self, String> {
        let stored = u16_at(h, 20);
        let computed = xor_words(&h[..20]);
        if stored != computed {
            return Err(format!(
                "stream header checksum is {stored:#06x}, expected {computed:#06x}"
            ));
        }
        Ok(StreamHeader {
            id: [h[0], h[1], h[2], h[3]],
            tape_attributes: u16_at(h, 6),
            length: u64_at(h, 8),
        })
    }
}

/// XOR of the little-endian 16-bit words of `bytes` (even length).
pub(crate) fn xor_words(bytes: &[u8]) -> u16 {
    bytes
        .chunks_exact(2)
        .fold(0u16, |acc, w| acc ^ u16::from_le_bytes([w[0], w[1]]))
}

/// Rounds `value` up to a multiple of `unit` (a power of two).
pub(crate) fn align_up(value: u64, unit: u64) -> u64 {
    (value + unit - 1) & !(unit - 1)
}

pub(crate) fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

pub(crate) fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().expect("4 bytes"))
}

pub(crate) fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().expect("8 bytes"))
}

/// Encodes an MTF_DATE_TIME: 40 bits, most significant first, holding year (14 bits),
/// month (4), day (5), hour (5), minute (6) and second (6). `None` is all zeros.
pub(crate) fn encode_date(date: Option<PrimitiveDateTime>) -> [u8; 5] {
    let Some(d) = date else {
        return [0; 5];
    };
    let year = u64::try_from(d.year()).unwrap_or(0) & 0x3FFF;
    let value = (year << 26)
        | (u64::from(u8::from(d.month())) << 22)
        | (u64::from(d.day()) << 17)
        | (u64::from(d.hour()) << 12)
        | (u64::from(d.minute()) << 6)
        | u64::from(d.second());
    let bytes = value.to_be_bytes();
    [bytes[3], bytes[4], bytes[5], bytes[6], bytes[7]]
}

/// Decodes an MTF_DATE_TIME; `Ok(None)` for all zeros, `Err` for an impossible date.
pub(crate) fn decode_date(b: &[u8]) -> Result<Option<PrimitiveDateTime>, String> {
    let value = u64::from_be_bytes([0, 0, 0, b[0], b[1], b[2], b[3], b[4]]);
    if value == 0 {
        return Ok(None);
    }
    let year = (value >> 26) as i32;
    let month = ((value >> 22) & 0xF) as u8;
    let day = ((value >> 17) & 0x1F) as u8;
    let hour = ((value >> 12) & 0x1F) as u8;
    let minute = ((value >> 6) & 0x3F) as u8;
    let second = (value & 0x3F) as u8;
    let invalid = || format!("invalid MTF date {value:#012x}");
    let month = Month::try_from(month).map_err(|_| invalid())?;
    let date = Date::from_calendar_date(year, month, day).map_err(|_| invalid())?;
    let time = Time::from_hms(hour, minute, second).map_err(|_| invalid())?;
    Ok(Some(PrimitiveDateTime::new(date, time)))
}

/// Encodes an LSN as SQL Server stores it: u32 VLF sequence, u32 block offset, u16 slot.
pub(crate) fn encode_lsn(lsn: Lsn) -> [u8; 10] {
    let mut b = [0u8; 10];
    b[0..4].copy_from_slice(&lsn.vlf.to_le_bytes());
    b[4..8].copy_from_slice(&lsn.block.to_le_bytes());
    b[8..10].copy_from_slice(&lsn.slot.to_le_bytes());
    b
}

pub(crate) fn decode_lsn(b: &[u8]) -> Lsn {
    Lsn {
        vlf: u32_at(b, 0),
        block: u32_at(b, 4),
        slot: u16_at(b, 8),
    }
}

/// Decodes a GUID in Microsoft's mixed-endian layout (first three fields little-endian).
pub(crate) fn decode_guid(b: &[u8]) -> Uuid {
    Uuid::from_bytes_le(b[..16].try_into().expect("16 bytes"))
}

pub(crate) fn encode_guid(guid: Uuid) -> [u8; 16] {
    guid.to_bytes_le()
}

/// Growable byte area of a descriptor block or an SCIN record whose strings are stored
/// after the fixed fields and found through tape addresses (u16 size, u16 offset from the
/// start of the area).
pub(crate) struct TapeArea {
    pub bytes: Vec<u8>,
}

impl TapeArea {
    pub fn with_fixed_len(fixed_len: usize) -> Self {
        TapeArea {
            bytes: vec![0; fixed_len],
        }
    }

    pub fn put_u8(&mut self, off: usize, v: u8) {
        self.bytes[off] = v;
    }

    pub fn put_u16(&mut self, off: usize, v: u16) {
        self.bytes[off..off + 2].copy_from_slice(&v.to_le_bytes());
    }

    pub fn put_u32(&mut self, off: usize, v: u32) {
        self.bytes[off..off + 4].copy_from_slice(&v.to_le_bytes());
    }

    pub fn put_u64(&mut self, off: usize, v: u64) {
        self.bytes[off..off + 8].copy_from_slice(&v.to_le_bytes());
    }

    pub fn put_bytes(&mut self, off: usize, v: &[u8]) {
        self.bytes[off..off + v.len()].copy_from_slice(v);
    }

    /// Appends `text` as UTF-16LE (2-byte aligned) and stores its tape address at `field`.
    /// An empty string gets the address (0, 0), as SQL Server writes it.
    pub fn put_string(&mut self, field: usize, text: &str) {
        if text.is_empty() {
            self.put_u32(field, 0);
            return;
        }
        if self.bytes.len() % 2 == 1 {
            self.bytes.push(0);
        }
        let offset = self.bytes.len();
        for unit in text.encode_utf16() {
            self.bytes.extend_from_slice(&unit.to_le_bytes());
        }
        let size = self.bytes.len() - offset;
        // Strings longer than a u16 size cannot be addressed, so they are cut.
        let size = u16::try_from(size).unwrap_or(u16::MAX - 1);
        self.bytes.truncate(offset + usize::from(size));
        let offset = u16::try_from(offset).unwrap_or(0);
        self.put_u16(field, size);
        self.put_u16(field + 2, offset);
    }
}

/// Reads the UTF-16LE string whose tape address is at `field` in `area`. Out-of-range
/// addresses give an empty string and bad code units are replaced, because real files
/// carry uninitialised memory in some string fields.
pub(crate) fn read_tape_string(area: &[u8], field: usize) -> String {
    if field + 4 > area.len() {
        return String::new();
    }
    let size = usize::from(u16_at(area, field));
    let offset = usize::from(u16_at(area, field + 2));
    let Some(bytes) = area.get(offset..offset + size) else {
        return String::new();
    };
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|w| u16::from_le_bytes([w[0], w[1]]))
        .collect();
    let text = String::from_utf16_lossy(&units);
    text.trim_end_matches('\0').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn date_decodes_observed_value() {
        let date = decode_date(&[0x1f, 0x85, 0x64, 0x44, 0x68]).unwrap();
        assert_eq!(date, Some(datetime!(2017-05-18 04:17:40)));
    }

    #[test]
    fn date_round_trips() {
        let date = Some(datetime!(2024-12-31 23:59:58));
        assert_eq!(decode_date(&encode_date(date)).unwrap(), date);
        assert_eq!(decode_date(&encode_date(None)).unwrap(), None);
    }

    #[test]
    fn dblk_header_rejects_flipped_byte() {
        let mut header = DblkHeader::new(b"SSET");
        header.first_event = 0x98;
        let mut bytes = [0u8; DBLK_HEADER_LEN];
        header.encode_into(&mut bytes);
        assert_eq!(DblkHeader::decode(&bytes).unwrap(), header);
        bytes[21] ^= 0x40;
        assert!(DblkHeader::decode(&bytes).is_err());
    }

    #[test]
    fn tape_string_round_trips() {
        let mut area = TapeArea::with_fixed_len(8);
        area.put_string(0, "SQL2008\\Ümlaut");
        area.put_string(4, "");
        assert_eq!(read_tape_string(&area.bytes, 0), "SQL2008\\Ümlaut");
        assert_eq!(read_tape_string(&area.bytes, 4), "");
    }
}
