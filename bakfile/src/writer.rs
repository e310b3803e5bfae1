//! Streams one backup set as SQL Server lays it out: TAPE (RAID stream), SFMB, SSET,
//! VOLB, MSCI (leading header copy), MSDA or MSTL with the payload, MSLS (trailing header
//! copy), SFMB, ESET, SFMB. The order and padding follow SQL Server 2008 R2 to 2016 files.
//! Left out: the on-tape catalogue SQL Server adds to its ESET and the second ESET after it.
//! In compressed files every block, SFMB included, is inside the records, whereas SQL
//! Server stores its SFMBs uncompressed between records.

use std::io::{self, Write};

use time::PrimitiveDateTime;

use crate::blocks::{
    encode_eset, encode_raid, encode_sfmb, encode_sset, encode_tape, encode_volb, sset_attributes,
    sset_os_data, SsetFields,
};
use crate::compressed::ContainerWriter;
use crate::csum::PayloadChecksum;
use crate::mtf::{
    align_up, DblkHeader, StreamHeader, TapeArea, DBLK_HEADER_LEN, LOGICAL_BLOCK,
    STREAM_HEADER_LEN, STRING_TYPE_UNICODE,
};
use crate::scin::encode_mqci;
use crate::{BackupSet, BackupType, WriteOptions};

/// DBLK attributes SQL Server writes on TAPE (observed).
const TAPE_ATTRIBUTES: u32 = 0x0003_0000;
/// DBLK attributes SQL Server writes on a soft filemark (observed).
const SFMB_ATTRIBUTES: u32 = 0x8000_0000;
/// First-event offsets and the value at +56 SQL Server writes in its own blocks
/// (observed; the meaning of the +56 word is unknown).
const MSCI_FIRST_EVENT: usize = 0x38;
const MSDA_FIRST_EVENT: usize = 0x3C;
const MSTL_FIRST_EVENT: usize = 0x254;
const DATA_BLOCK_WORD_56: u32 = 0x0001_0000;
/// Tape-format attributes of the streams around the payload (observed): APAD 0x80, the
/// data stream 0x2 (MQDA) or 0 (MQTL) plus 0x100 when CSUM streams follow, and 0x6 on
/// the empty MQDA that ends the database data.
const APAD_ATTRIBUTES: u16 = 0x80;
const MQDA_ATTRIBUTES: u16 = 0x2;
const CHECKSUMMED_ATTRIBUTE: u16 = 0x100;
const MQDA_END_ATTRIBUTES: u16 = 0x6;
/// Bytes in front of the pages or log blocks in MQDA/MQTL data (observed as zero).
const DATA_PREFIX: [u8; 2] = [0, 0];

/// Destination of the MTF stream: a plain file or the compressed container.
enum Output<W: Write> {
    Plain(W),
    Compressed(ContainerWriter<W>),
}

/// Output that counts the bytes of the MTF stream written to it.
struct MtfSink<W: Write> {
    output: Output<W>,
    position: u64,
}

impl<W: Write> MtfSink<W> {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut self.output {
            Output::Plain(w) => w.write_all(bytes)?,
            Output::Compressed(w) => w.write_all(bytes)?,
        }
        self.position += bytes.len() as u64;
        Ok(())
    }

    fn write_zeros(&mut self, mut count: u64) -> io::Result<()> {
        const ZEROS: [u8; 4096] = [0; 4096];
        while count > 0 {
            let n = count.min(ZEROS.len() as u64) as usize;
            self.write_all(&ZEROS[..n])?;
            count -= n as u64;
        }
        Ok(())
    }

    fn into_inner(self) -> io::Result<W> {
        match self.output {
            Output::Plain(mut w) => {
                w.flush()?;
                Ok(w)
            }
            Output::Compressed(w) => w.finish(),
        }
    }
}

/// Extent of the SPAD stream that ends a DBLK, as observed on 512-byte and 4 KiB layouts.
/// Blocks inside a set are multiples of the 1 KiB logical block. TAPE and ESET are
/// multiples of the physical block (at least 1 KiB). MSLS ends on a physical block
/// boundary so that the soft filemark after it is block-aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Padding {
    Logical,
    Physical,
    EndOnPhysical,
}

/// Kind of data block that carries the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DataBlock {
    /// MSDA/MQDA: database pages of a full or differential backup.
    Pages,
    /// MSTL/MQTL: log blocks of a log backup.
    Log,
}

/// Streams one backup set into `W`.
///
/// Memory use does not depend on the payload size: payload bytes go straight to `W`, or
/// through one record buffer of under 64 KiB when the file is compressed.
pub struct BackupWriter<W: Write> {
    sink: MtfSink<W>,
    block_size: u64,
    sset_offset: u64,
    /// Offset of the DBLK being written, from which APAD and SPAD are sized.
    current_block_start: u64,
    next_control_block_id: u32,
    sfmb_offsets: Vec<u64>,
    sset_attributes: u32,
    position_in_media: u16,
    data_block: DataBlock,
    has_checksums: bool,
    payload_len: u64,
    payload_written: u64,
    checksum: PayloadChecksum,
}

impl<W: Write> BackupWriter<W> {
    /// Writes everything before the data stream. `payload_len` is the number of bytes that
    /// [`BackupWriter::write_payload`] will receive: database pages for full and
    /// differential backups, log blocks for log backups.
    ///
    /// # Errors
    /// `InvalidInput` when `options.block_size` is not 512 or 4096, or the backup type has
    /// no writer layout (file and partial backups); otherwise errors of `out`.
    pub fn new(
        out: W,
        set: &BackupSet,
        payload_len: u64,
        options: WriteOptions,
    ) -> io::Result<Self> {
        if options.block_size != 512 && options.block_size != 4096 {
            return Err(invalid_input(format!(
                "block size {} is not supported; use 512 or 4096",
                options.block_size
            )));
        }
        let data_block = match set.backup_type {
            BackupType::Database | BackupType::Differential => DataBlock::Pages,
            BackupType::Log => DataBlock::Log,
            other => {
                return Err(invalid_input(format!(
                    "backup type {other:?} cannot be written; use Database, Differential or Log"
                )))
            }
        };

        let output = if options.compressed {
            Output::Compressed(ContainerWriter::new(out)?)
        } else {
            Output::Plain(out)
        };
        let block_size = u64::from(options.block_size);
        let mut writer = BackupWriter {
            sink: MtfSink {
                output,
                position: 0,
            },
            block_size,
            sset_offset: 0,
            current_block_start: 0,
            next_control_block_id: 0,
            sfmb_offsets: Vec::new(),
            sset_attributes: 0,
            position_in_media: set.position,
            data_block,
            has_checksums: set.has_checksums,
            payload_len,
            payload_written: 0,
            checksum: PayloadChecksum::new(),
        };

        writer.write_tape(set)?;
        writer.write_sfmb()?;
        writer.write_sset(set)?;
        writer.write_volb(set)?;
        writer.write_header_copy(b"MSCI", set, None)?;
        writer.start_data_block()?;
        Ok(writer)
    }

    /// Appends payload bytes; calls may have any length.
    ///
    /// # Errors
    /// `InvalidInput` when the payload would exceed the `payload_len` given to
    /// [`BackupWriter::new`]; otherwise errors of the inner writer.
    pub fn write_payload(&mut self, bytes: &[u8]) -> io::Result<()> {
        let total = self.payload_written + bytes.len() as u64;
        if total > self.payload_len {
            return Err(invalid_input(format!(
                "payload of {total} bytes exceeds the declared {} bytes",
                self.payload_len
            )));
        }
        if self.has_checksums {
            self.checksum.update(bytes);
        }
        self.sink.write_all(bytes)?;
        self.payload_written = total;
        Ok(())
    }

    /// Bytes of the uncompressed MTF stream written so far. Before [`BackupWriter::finish`]
    /// this is close to what SQL Server reports as BackupSize (the bytes before the
    /// trailing header copy), so callers can use it for `set.backup_size`.
    pub fn bytes_written(&self) -> u64 {
        self.sink.position
    }

    /// Writes the checksum (when `set.has_checksums`), the trailing header copy with the
    /// final values of `set`, and the end-of-set blocks; returns the inner writer.
    ///
    /// The trailing copy takes every value from `set`, including `backup_size` and
    /// `backup_finish_date` (zero in the file when `None`).
    ///
    /// # Errors
    /// `InvalidInput` when fewer payload bytes arrived than declared; otherwise errors of
    /// the inner writer.
    pub fn finish(mut self, set: &BackupSet) -> io::Result<W> {
        if self.payload_written != self.payload_len {
            return Err(invalid_input(format!(
                "payload has {} bytes, but {} were declared",
                self.payload_written, self.payload_len
            )));
        }
        self.end_data_block()?;
        if self.data_block == DataBlock::Pages {
            // Full and differential backups also carry a log portion. This writer has no
            // log to add, so it writes one empty MSTL block like those SQL Server writes
            // after the log blocks it copies.
            self.write_empty_mstl()?;
        }
        self.write_header_copy(b"MSLS", set, set.backup_finish_date)?;
        self.write_sfmb()?;
        self.write_eset(set.backup_finish_date.unwrap_or(set.backup_start_date))?;
        self.write_sfmb()?;
        self.sink.into_inner()
    }

    fn write_tape(&mut self, set: &BackupSet) -> io::Result<()> {
        let guid = set.media_set_guid.as_bytes();
        let media_family_id = u32::from_le_bytes([guid[0], guid[1], guid[2], guid[3]]);
        let area = encode_tape(
            self.block_size as u32,
            media_family_id,
            set.backup_start_date,
        );
        let mut header = DblkHeader::new(b"TAPE");
        header.attributes = TAPE_ATTRIBUTES;
        header.string_type = STRING_TYPE_UNICODE;
        let raid = encode_raid(set.media_set_guid, set.family_count, set.family_sequence);
        self.write_chained_block(header, area, &[(b"RAID", 0, &raid)], Padding::Physical)
    }

    fn write_sfmb(&mut self) -> io::Result<()> {
        let offset = self.sink.position;
        let mut block = encode_sfmb(self.block_size as u32, &self.sfmb_offsets);
        let mut header = DblkHeader::new(b"SFMB");
        header.attributes = SFMB_ATTRIBUTES;
        header.first_event = self.block_size as u16;
        header.encode_into(&mut block);
        self.sink.write_all(&block)?;
        self.sfmb_offsets.push(offset);
        Ok(())
    }

    fn write_sset(&mut self, set: &BackupSet) -> io::Result<()> {
        self.sset_offset = self.sink.position;
        let area = encode_sset(&SsetFields {
            backup_type: set.backup_type,
            is_copy_only: set.is_copy_only,
            position: set.position,
            backup_name: &set.backup_name,
            backup_description: &set.backup_description,
            user_name: &set.user_name,
            physical_address: self.sset_offset,
            write_date: set.backup_start_date,
            software_major: set.software_major,
            software_minor: set.software_minor,
            time_zone: set.time_zone,
            backup_set_guid: set.backup_set_guid,
        });
        self.sset_attributes = sset_attributes(&area);
        let mut header = self.set_block_header(b"SSET");
        header.os_data = sset_os_data();
        header.string_type = STRING_TYPE_UNICODE;
        self.write_chained_block(header, area, &[], Padding::Logical)
    }

    fn write_volb(&mut self, set: &BackupSet) -> io::Result<()> {
        let area = encode_volb(&set.machine_name, set.backup_start_date);
        let mut header = self.set_block_header(b"VOLB");
        header.string_type = STRING_TYPE_UNICODE;
        self.write_chained_block(header, area, &[], Padding::Logical)
    }

    fn write_header_copy(
        &mut self,
        kind: &[u8; 4],
        set: &BackupSet,
        finish_date: Option<PrimitiveDateTime>,
    ) -> io::Result<()> {
        let mqci = encode_mqci(set, finish_date);
        let mut header = self.set_block_header(kind);
        header.string_type = STRING_TYPE_UNICODE;
        let area = TapeArea::with_fixed_len(MSCI_FIRST_EVENT);
        let padding = if kind == b"MSLS" {
            Padding::EndOnPhysical
        } else {
            Padding::Logical
        };
        self.write_chained_block(header, area, &[(b"MQCI", 0, &mqci)], padding)
    }

    fn start_data_block(&mut self) -> io::Result<()> {
        let (kind, first_event, stream_id, attributes) = match self.data_block {
            DataBlock::Pages => (b"MSDA", MSDA_FIRST_EVENT, b"MQDA", MQDA_ATTRIBUTES),
            DataBlock::Log => (b"MSTL", MSTL_FIRST_EVENT, b"MQTL", 0),
        };
        let attributes = if self.has_checksums {
            attributes | CHECKSUMMED_ATTRIBUTE
        } else {
            attributes
        };

        let mut area = TapeArea::with_fixed_len(first_event);
        area.put_u32(56, DATA_BLOCK_WORD_56);
        let header = self.set_block_header(kind);
        self.write_block_start(header, area)?;

        // APAD places the first page at the same offset in the block as SQL Server does:
        // 1 KiB into a 512-byte layout block, 2 KiB or 3 KiB into a 4 KiB one (observed).
        let page_offset: u64 = match (self.data_block, self.block_size) {
            (DataBlock::Pages, 512) | (DataBlock::Log, 512) => 1024,
            (DataBlock::Pages, _) => 2048,
            (DataBlock::Log, _) => 3072,
        };
        let block_start = self.current_block_start;
        let apad_start = self.sink.position;
        let data_start = block_start + page_offset - DATA_PREFIX.len() as u64;
        let apad_len =
            data_start - STREAM_HEADER_LEN as u64 - apad_start - STREAM_HEADER_LEN as u64;
        self.write_stream_header(b"APAD", APAD_ATTRIBUTES, apad_len)?;
        self.sink.write_zeros(apad_len)?;

        let data_len = DATA_PREFIX.len() as u64 + self.payload_len;
        self.write_stream_header(stream_id, attributes, data_len)?;
        if self.has_checksums {
            self.checksum.update(&DATA_PREFIX);
        }
        self.sink.write_all(&DATA_PREFIX)
    }

    fn end_data_block(&mut self) -> io::Result<()> {
        self.pad_to_stream_boundary()?;
        if self.has_checksums {
            let value = self.checksum.finish();
            self.write_stream(b"CSUM", 0, &value)?;
        }
        if self.data_block == DataBlock::Pages {
            self.write_stream(b"MQDA", MQDA_END_ATTRIBUTES, &[])?;
        }
        self.write_spad(Padding::Logical)
    }

    fn write_empty_mstl(&mut self) -> io::Result<()> {
        let mut area = TapeArea::with_fixed_len(MSTL_FIRST_EVENT);
        area.put_u32(56, DATA_BLOCK_WORD_56);
        let header = self.set_block_header(b"MSTL");
        self.write_chained_block(header, area, &[], Padding::Logical)
    }

    fn write_eset(&mut self, write_date: PrimitiveDateTime) -> io::Result<()> {
        let area = encode_eset(self.position_in_media, write_date, self.sset_attributes);
        let header = DblkHeader::new(b"ESET");
        self.write_chained_block(header, area, &[], Padding::Physical)
    }

    /// Header of a DBLK inside the set: format logical address in 1 KiB units from the
    /// SSET, and the next control block id.
    fn set_block_header(&mut self, kind: &[u8; 4]) -> DblkHeader {
        let mut header = DblkHeader::new(kind);
        header.format_logical_address = (self.sink.position - self.sset_offset) / LOGICAL_BLOCK;
        header.control_block_id = self.next_control_block_id;
        self.next_control_block_id += 1;
        header
    }

    /// Writes a DBLK whose streams are all in memory, then SPAD to the padding unit.
    fn write_chained_block(
        &mut self,
        header: DblkHeader,
        area: TapeArea,
        streams: &[(&[u8; 4], u16, &[u8])],
        padding: Padding,
    ) -> io::Result<()> {
        self.write_block_start(header, area)?;
        for (id, attributes, data) in streams {
            self.write_stream(id, *attributes, data)?;
        }
        self.write_spad(padding)
    }

    /// Writes the DBLK header and its area (fixed fields and strings), padded to 4 bytes;
    /// the first event follows.
    fn write_block_start(&mut self, mut header: DblkHeader, mut area: TapeArea) -> io::Result<()> {
        self.current_block_start = self.sink.position;
        let first_event = align_up(area.bytes.len() as u64, 4) as usize;
        area.bytes.resize(first_event, 0);
        header.first_event = u16::try_from(first_event).map_err(|_| {
            invalid_input(format!(
                "descriptor block area of {first_event} bytes is too long"
            ))
        })?;
        header.encode_into(&mut area.bytes[..DBLK_HEADER_LEN]);
        self.sink.write_all(&area.bytes)
    }

    fn write_stream_header(&mut self, id: &[u8; 4], attributes: u16, len: u64) -> io::Result<()> {
        let header = StreamHeader::new(id, attributes, len);
        self.sink.write_all(&header.encode())
    }

    fn write_stream(&mut self, id: &[u8; 4], attributes: u16, data: &[u8]) -> io::Result<()> {
        self.write_stream_header(id, attributes, data.len() as u64)?;
        self.sink.write_all(data)?;
        self.pad_to_stream_boundary()
    }

    /// Stream headers start on 4-byte boundaries (MTF 1.00a).
    fn pad_to_stream_boundary(&mut self) -> io::Result<()> {
        let position = self.sink.position;
        self.sink.write_zeros(align_up(position, 4) - position)
    }

    /// Ends a DBLK's stream chain with an SPAD stream that pads the DBLK to the extent
    /// `padding` selects.
    fn write_spad(&mut self, padding: Padding) -> io::Result<()> {
        let start = self.sink.position;
        let block_start = self.current_block_start;
        let used = start + STREAM_HEADER_LEN as u64 - block_start;
        let physical = self.block_size.max(LOGICAL_BLOCK);
        let end = match padding {
            Padding::Logical => block_start + align_up(used, LOGICAL_BLOCK),
            Padding::Physical => block_start + align_up(used, physical),
            Padding::EndOnPhysical => {
                align_up(block_start + align_up(used, LOGICAL_BLOCK), self.block_size)
            }
        };
        let len = end - start - STREAM_HEADER_LEN as u64;
        self.write_stream_header(b"SPAD", 0, len)?;
        self.sink.write_zeros(len)
    }
}

fn invalid_input(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}
