//! SQL Server's compressed backup container: the `MSSQLBAK` file header, then records of
//! XPRESS Huffman data ([MS-XCA] section 2.2.4) that decode to a plain MTF stream. The
//! layout was worked out from one SQL Server 2016 backup (13.0.1708). Not handled: the
//! record layout of SQL Server 2012 and older, QAT_DEFLATE and ZSTD (2022+), encryption.
//!
//! Record header (28 bytes, observed): u32 tag whose low byte is 0x21, byte 1 the decoded
//! size in 512-byte sectors and high half the compressed size; 16 bytes of unknown
//! content; u32 zero; u32 check value over the compressed bytes; then the compressed bytes.
//! Between records SQL Server also writes filler records (tag low byte 0x24: 24-byte header
//! plus the tag's high half in bytes), a record with tag 0x2C that looks like an index,
//! zero padding, and raw `SFMB` blocks on 512-byte boundaries that are not part of the
//! decoded stream.

use std::io::{self, Read, Write};

use crate::csum::PayloadChecksum;
use crate::input::{read_full, MtfInput};
use crate::xpress;
use crate::VerifyError;

pub(crate) const MAGIC: &[u8; 8] = b"MSSQLBAK";
/// The container header ends where the first record starts (observed at 0x1E0).
const HEADER_LEN: usize = 0x1E0;
const SECTOR: usize = 512;
/// Largest decoded size of a record written here, in sectors. With at most 9 bits per
/// byte, most inputs of this size compress to less than the 16-bit size field allows.
/// `ContainerWriter::write_record` splits the rest.
const MAX_RECORD_SECTORS: usize = 127;
const RECORD_HEADER_LEN: usize = 28;
const TAG_RECORD: u8 = 0x21;
const TAG_FILLER: u8 = 0x24;
const TAG_INDEX: u8 = 0x2C;
/// Header of a filler record, before its filler bytes.
const FILLER_HEADER_LEN: usize = 24;

/// Builds the 0x1E0-byte container header: magic, u32 2, u32 3, and four 8-byte runs of
/// 0xFF at 0x30, 0x50, 0x70 and 0x90. These values were observed, but their meaning is
/// unknown.
fn encode_header() -> Vec<u8> {
    let mut header = vec![0u8; HEADER_LEN];
    header[0..8].copy_from_slice(MAGIC);
    header[8..12].copy_from_slice(&2u32.to_le_bytes());
    header[12..16].copy_from_slice(&3u32.to_le_bytes());
    for at in [0x30, 0x50, 0x70, 0x90] {
        header[at..at + 8].fill(0xFF);
    }
    header
}

/// Check value at record +24: for each little-endian u32 of the compressed bytes (the
/// last one zero-padded), rotate left by one and XOR the word in. Observed to match every
/// record of the sample.
pub(crate) fn record_check_value(payload: &[u8]) -> u32 {
    let mut value = 0u32;
    let mut words = payload.chunks_exact(4);
    for word in &mut words {
        value = value.rotate_left(1) ^ u32::from_le_bytes(word.try_into().expect("4 bytes"));
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut last = [0u8; 4];
        last[..rest.len()].copy_from_slice(rest);
        value = value.rotate_left(1) ^ u32::from_le_bytes(last);
    }
    value
}

/// Compresses an MTF stream into the container as it is written.
pub(crate) struct ContainerWriter<W: Write> {
    out: W,
    pending: Vec<u8>,
    compressed: Vec<u8>,
}

impl<W: Write> ContainerWriter<W> {
    pub fn new(mut out: W) -> io::Result<Self> {
        out.write_all(&encode_header())?;
        Ok(ContainerWriter {
            out,
            pending: Vec::with_capacity(MAX_RECORD_SECTORS * SECTOR),
            compressed: Vec::with_capacity(xpress::MAX_INPUT + xpress::MAX_INPUT / 8 + 1024),
        })
    }

    pub fn write_all(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        let record_len = MAX_RECORD_SECTORS * SECTOR;
        while !bytes.is_empty() {
            if self.pending.is_empty() && bytes.len() >= record_len {
                let (record, rest) = bytes.split_at(record_len);
                self.write_record(record)?;
                bytes = rest;
                continue;
            }
            let take = (record_len - self.pending.len()).min(bytes.len());
            self.pending.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.pending.len() == record_len {
                let record = std::mem::take(&mut self.pending);
                self.write_record(&record)?;
                self.pending = record;
                self.pending.clear();
            }
        }
        Ok(())
    }

    /// Writes the last record and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        if !self.pending.is_empty() {
            // The MTF writer pads every block to at least 512 bytes, so this only pads
            // streams that do not end on a sector.
            let padded = self.pending.len().next_multiple_of(SECTOR);
            let mut record = std::mem::take(&mut self.pending);
            record.resize(padded, 0);
            self.write_record(&record)?;
        }
        self.out.flush()?;
        Ok(self.out)
    }

    /// Writes `input` (whole sectors) as one record, or as two halves when its compressed
    /// form does not fit the 16-bit size field.
    fn write_record(&mut self, input: &[u8]) -> io::Result<()> {
        xpress::compress(input, &mut self.compressed);
        if self.compressed.len() > usize::from(u16::MAX) {
            let half = (input.len() / SECTOR / 2).max(1) * SECTOR;
            let (first, second) = input.split_at(half);
            self.write_record(first)?;
            return self.write_record(second);
        }
        let sectors = (input.len() / SECTOR) as u32;
        let tag = u32::from(TAG_RECORD) | (sectors << 8) | ((self.compressed.len() as u32) << 16);
        let mut header = [0u8; RECORD_HEADER_LEN];
        header[0..4].copy_from_slice(&tag.to_le_bytes());
        header[24..28].copy_from_slice(&record_check_value(&self.compressed).to_le_bytes());
        self.out.write_all(&header)?;
        self.out.write_all(&self.compressed)
    }
}

/// Decodes the container's records into the MTF stream they carry. Errors about the
/// container itself carry file offsets; the MTF walker's errors carry offsets in the
/// decoded stream.
pub(crate) struct ContainerInput<R: Read> {
    raw: R,
    raw_position: u64,
    decoded: Vec<u8>,
    decoded_at: usize,
    position: u64,
    payload: Vec<u8>,
    decode_table: Vec<(u16, u8)>,
    /// True when the last item other than zero padding was a raw SFMB.
    last_item_raw_filemark: bool,
    ended: bool,
}

impl<R: Read> ContainerInput<R> {
    /// Reads the container header from `raw`, which must be at the start of the file.
    pub fn new(mut raw: R) -> Result<Self, VerifyError> {
        let mut header = vec![0u8; HEADER_LEN];
        let n = read_full(&mut raw, &mut header)?;
        if n < HEADER_LEN {
            return Err(VerifyError::Truncated { offset: n as u64 });
        }
        if &header[0..8] != MAGIC {
            return Err(VerifyError::NotABackup {
                reason: "file does not start with MSSQLBAK".to_string(),
            });
        }
        Ok(ContainerInput {
            raw,
            raw_position: HEADER_LEN as u64,
            decoded: Vec::new(),
            decoded_at: 0,
            position: 0,
            payload: Vec::new(),
            decode_table: Vec::new(),
            last_item_raw_filemark: false,
            ended: false,
        })
    }

    fn read_raw(&mut self, buf: &mut [u8]) -> Result<(), VerifyError> {
        let n = read_full(&mut self.raw, buf)?;
        self.raw_position += n as u64;
        if n < buf.len() {
            return Err(VerifyError::Truncated {
                offset: self.raw_position,
            });
        }
        Ok(())
    }

    fn skip_raw(&mut self, len: u64) -> Result<(), VerifyError> {
        let copied = io::copy(&mut (&mut self.raw).take(len), &mut io::sink())?;
        self.raw_position += copied;
        if copied < len {
            return Err(VerifyError::Truncated {
                offset: self.raw_position,
            });
        }
        Ok(())
    }

    fn skip_to_sector(&mut self) -> Result<(), VerifyError> {
        let target = self.raw_position.next_multiple_of(SECTOR as u64);
        let len = target - self.raw_position;
        let copied = io::copy(&mut (&mut self.raw).take(len), &mut io::sink())?;
        self.raw_position += copied;
        Ok(())
    }

    /// Decodes records until one yields bytes; sets `ended` at the end of the file.
    fn next_record(&mut self) -> Result<(), VerifyError> {
        while !self.ended {
            let record_start = self.raw_position;
            let mut tag_bytes = [0u8; 4];
            let n = read_full(&mut self.raw, &mut tag_bytes)?;
            self.raw_position += n as u64;
            if n == 0 {
                self.ended = true;
                return Ok(());
            }
            if n < 4 {
                // Only zero padding may end part way through a word.
                if tag_bytes[..n].iter().all(|&b| b == 0) {
                    self.ended = true;
                    return Ok(());
                }
                return Err(VerifyError::Truncated {
                    offset: self.raw_position,
                });
            }
            let tag = u32::from_le_bytes(tag_bytes);
            if &tag_bytes == b"SFMB" && record_start % SECTOR as u64 == 0 {
                self.skip_raw_sfmb()?;
                self.last_item_raw_filemark = true;
                continue;
            }
            if tag != 0 {
                self.last_item_raw_filemark = false;
            }
            match tag_bytes[0] {
                TAG_RECORD => return self.decode_record(record_start, tag),
                TAG_FILLER => {
                    let len = (FILLER_HEADER_LEN - 4) as u64 + u64::from(tag >> 16);
                    self.skip_raw(len)?;
                }
                // The index record and zero padding run to the next sector boundary
                // (inferred from the sample, where the next item starts there).
                TAG_INDEX => self.skip_to_sector()?,
                0 if tag == 0 => self.skip_to_sector()?,
                _ => {
                    return Err(VerifyError::MalformedMedia {
                        offset: record_start,
                        reason: format!("unknown compressed record tag {tag:#010x}"),
                    })
                }
            }
        }
        Ok(())
    }

    /// Skips a raw soft filemark: its first-event offset is its length (one physical block).
    fn skip_raw_sfmb(&mut self) -> Result<(), VerifyError> {
        let mut rest = [0u8; 6];
        self.read_raw(&mut rest)?;
        let length = u64::from(u16::from_le_bytes([rest[4], rest[5]]));
        let length = if length >= 512 && length % 512 == 0 {
            length
        } else {
            512
        };
        self.skip_raw(length - 10)
    }

    fn decode_record(&mut self, record_start: u64, tag: u32) -> Result<(), VerifyError> {
        let sectors = ((tag >> 8) & 0xFF) as usize;
        let compressed_len = (tag >> 16) as usize;
        let mut rest = [0u8; RECORD_HEADER_LEN - 4];
        self.read_raw(&mut rest)?;
        let stored_check = u32::from_le_bytes([rest[20], rest[21], rest[22], rest[23]]);
        self.payload.resize(compressed_len, 0);
        let mut payload = std::mem::take(&mut self.payload);
        let read = self.read_raw(&mut payload);
        self.payload = payload;
        read?;
        let damaged = |reason: String| VerifyError::DamagedBackupSet {
            offset: record_start,
            reason,
        };
        if sectors == 0 {
            return Err(damaged(
                "compressed record has a decoded size of 0 sectors".into(),
            ));
        }

        let computed = record_check_value(&self.payload);
        if computed != stored_check {
            return Err(damaged(format!(
                "compressed record check value is {stored_check:#010x}, computed {computed:#010x}"
            )));
        }

        let size = sectors * SECTOR;
        let mut decoded = std::mem::take(&mut self.decoded);
        let result = xpress::decompress(&self.payload, size, &mut decoded, &mut self.decode_table);
        self.decoded = decoded;
        result.map_err(|e| damaged(format!("compressed record does not decode: {e}")))?;
        self.decoded_at = 0;
        Ok(())
    }

    /// Makes decoded bytes available; returns false at the end of the container.
    fn ensure_decoded(&mut self) -> Result<bool, VerifyError> {
        if self.decoded_at < self.decoded.len() {
            return Ok(true);
        }
        self.decoded.clear();
        self.decoded_at = 0;
        self.next_record()?;
        Ok(self.decoded_at < self.decoded.len())
    }
}

impl<R: Read> MtfInput for ContainerInput<R> {
    fn position(&self) -> u64 {
        self.position
    }

    fn ends_with_raw_filemark(&self) -> bool {
        self.ended && self.last_item_raw_filemark
    }

    fn fill(&mut self, buf: &mut [u8]) -> Result<bool, VerifyError> {
        let mut filled = 0;
        while filled < buf.len() {
            if !self.ensure_decoded()? {
                if filled == 0 {
                    return Ok(false);
                }
                return Err(VerifyError::Truncated {
                    offset: self.position,
                });
            }
            let available = &self.decoded[self.decoded_at..];
            let n = available.len().min(buf.len() - filled);
            buf[filled..filled + n].copy_from_slice(&available[..n]);
            self.decoded_at += n;
            self.position += n as u64;
            filled += n;
        }
        Ok(true)
    }

    fn skip(
        &mut self,
        len: u64,
        mut checksum: Option<&mut PayloadChecksum>,
    ) -> Result<(), VerifyError> {
        let mut remaining = len;
        while remaining > 0 {
            if !self.ensure_decoded()? {
                return Err(VerifyError::Truncated {
                    offset: self.position,
                });
            }
            let available = &self.decoded[self.decoded_at..];
            let n = (available.len() as u64).min(remaining) as usize;
            if let Some(sum) = checksum.as_deref_mut() {
                sum.update(&available[..n]);
            }
            self.decoded_at += n;
            self.position += n as u64;
            remaining -= n as u64;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_value_pads_last_word() {
        assert_eq!(record_check_value(&[]), 0);
        assert_eq!(record_check_value(&[1, 0, 0, 0]), 1);
        assert_eq!(record_check_value(&[1, 0, 0, 0, 2]), 2 ^ 2);
    }

    /// Decodes every record of the real compressed fixture with this crate's decoder and
    /// with compcol's, and compares the outputs.
    #[test]
    fn decoder_matches_compcol_on_real_file() {
        let Some(dir) = std::env::var_os("BAKFLEET_FIXTURES_BAK") else {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "BAKFLEET_FIXTURES_BAK is not set"
            );
            eprintln!("fixture test did not run: set BAKFLEET_FIXTURES_BAK to the folder of real .bak fixtures");
            return;
        };
        let file = std::fs::read(std::path::Path::new(&dir).join("TutorialDB.bak")).unwrap();
        let mut position = HEADER_LEN;
        let mut records = 0;
        let mut decoded_total = 0;
        while position + RECORD_HEADER_LEN <= file.len() {
            let tag = u32::from_le_bytes(file[position..position + 4].try_into().unwrap());
            if tag as u8 != TAG_RECORD {
                position += 1;
                continue;
            }
            let size = ((tag >> 8) & 0xFF) as usize * SECTOR;
            let payload = &file
                [position + RECORD_HEADER_LEN..position + RECORD_HEADER_LEN + (tag >> 16) as usize];
            let mut framed = (size as u32).to_le_bytes().to_vec();
            framed.extend_from_slice(payload);
            let reference =
                compcol::vec::decompress_to_vec::<compcol::xpress_huffman::XpressHuffman>(&framed)
                    .unwrap();
            let mut own = Vec::new();
            xpress::decompress(payload, size, &mut own, &mut Vec::new()).unwrap();
            assert_eq!(own, reference, "record at {position:#x}");
            records += 1;
            decoded_total += size;
            position += RECORD_HEADER_LEN + payload.len();
        }
        assert_eq!(records, 49);
        assert_eq!(decoded_total, 2_905_088);
    }

    #[test]
    fn container_round_trips_stream() {
        let stream: Vec<u8> = (0..300_000u32).map(|i| ((i / 700) % 5) as u8).collect();
        let stream = &stream[..stream.len() / 512 * 512];
        let mut writer = ContainerWriter::new(Vec::new()).unwrap();
        for chunk in stream.chunks(10_000) {
            writer.write_all(chunk).unwrap();
        }
        let file = writer.finish().unwrap();
        let mut input = ContainerInput::new(&file[..]).unwrap();
        let mut decoded = vec![0u8; stream.len()];
        assert!(input.fill(&mut decoded).unwrap());
        assert_eq!(decoded, stream);
        assert!(!input.fill(&mut [0u8; 1]).unwrap());
    }

    #[test]
    fn container_splits_incompressible_records() {
        let mut stream = Vec::new();
        for i in 0..(2 * MAX_RECORD_SECTORS * SECTOR) {
            stream.push(if i % 2 == 0 { 0xFB } else { 0xFC });
        }
        let mut writer = ContainerWriter::new(Vec::new()).unwrap();
        writer.write_all(&stream).unwrap();
        let file = writer.finish().unwrap();
        let mut input = ContainerInput::new(&file[..]).unwrap();
        let mut decoded = vec![0u8; stream.len()];
        assert!(input.fill(&mut decoded).unwrap());
        assert_eq!(decoded, stream);
    }
}
