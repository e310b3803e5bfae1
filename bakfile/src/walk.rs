//! Walks the descriptor blocks of an MTF stream and their stream chains, checking header
//! checksums, block order and (on request) this crate's payload checksums, and collects
//! the values of each backup set. Shared by the verifier and the header reader.
//!
//! Observed on real files: every DBLK except SFMB has a stream chain that starts at its
//! first-event offset and ends with an SPAD stream whose end is the next DBLK; an SFMB
//! fills one physical block. Stream headers start on 4-byte boundaries.

use crate::blocks::{
    decode_raid, decode_sset, decode_tape_block_size, decode_volb_machine, SsetInfo, TapeInfo,
};
use crate::csum::{is_own_csum, PayloadChecksum};
use crate::input::MtfInput;
use crate::mtf::{align_up, DblkHeader, StreamHeader, DBLK_HEADER_LEN, STREAM_HEADER_LEN};
use crate::scin::{decode_scin, ScinInfo};
use crate::{BackupSet, ChecksumMode, VerifyError};

/// Largest MQCI, RAID or CSUM stream read into memory. Real MQCI streams are 3 KiB to a
/// few tens of KiB (one SFIN record per database file); 16 MiB leaves room for databases
/// with thousands of files while bounding memory on damaged input.
const MAX_METADATA_STREAM: u64 = 16 * 1024 * 1024;

/// Purpose of a walk, which sets the checks beyond structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WalkMode {
    /// Read headers only; data streams are skipped, truncation after a leading header
    /// copy gives provisional sets.
    Headers,
    /// Verify as RESTORE VERIFYONLY with the given checksum handling.
    Verify(ChecksumMode),
}

/// Result of a walk.
#[derive(Debug)]
pub(crate) struct WalkOutcome {
    pub sets: Vec<BackupSet>,
    pub checksums_checked: bool,
}

/// Values gathered for one backup set.
#[derive(Debug, Default)]
struct SetRecord {
    sset: Option<SsetInfo>,
    machine_name: String,
    leading: Option<ScinInfo>,
    trailing: Option<ScinInfo>,
}

/// Data stream whose CSUM stream is still expected.
struct PendingChecksum {
    offset: u64,
    checksum: PayloadChecksum,
}

struct Walker<'a, I: MtfInput> {
    input: &'a mut I,
    mode: WalkMode,
    compressed: bool,
    tape: Option<TapeInfo>,
    open_set: Option<SetRecord>,
    finished_sets: Vec<SetRecord>,
    pending_checksum: Option<PendingChecksum>,
    checksums_checked: bool,
    /// True after an SFMB. SQL Server ends every file with a soft filemark after the last
    /// ESET (observed), so a file that stops at the ESET lost at least that block.
    last_block_was_filemark: bool,
}

/// Walks the whole MTF stream in `input`.
pub(crate) fn walk<I: MtfInput>(
    input: &mut I,
    compressed: bool,
    mode: WalkMode,
) -> Result<WalkOutcome, VerifyError> {
    let mut walker = Walker {
        input,
        mode,
        compressed,
        tape: None,
        open_set: None,
        finished_sets: Vec::new(),
        pending_checksum: None,
        checksums_checked: false,
        last_block_was_filemark: false,
    };
    match walker.walk_blocks() {
        Ok(()) => walker.outcome(),
        Err(VerifyError::Truncated { offset }) if mode == WalkMode::Headers => {
            walker.truncated_outcome(offset)
        }
        Err(e) => Err(e),
    }
}

fn malformed(offset: u64, reason: impl Into<String>) -> VerifyError {
    VerifyError::MalformedMedia {
        offset,
        reason: reason.into(),
    }
}

impl<I: MtfInput> Walker<'_, I> {
    fn checks_payload(&self) -> bool {
        matches!(
            self.mode,
            WalkMode::Verify(ChecksumMode::IfPresent | ChecksumMode::Require)
        )
    }

    fn walk_blocks(&mut self) -> Result<(), VerifyError> {
        loop {
            let start = self.input.position();
            let mut header_bytes = [0u8; DBLK_HEADER_LEN];
            if !self.input.fill(&mut header_bytes)? {
                return Ok(());
            }
            let header = DblkHeader::decode(&header_bytes).map_err(|e| malformed(start, e))?;
            self.check_block_order(start, &header)?;
            self.last_block_was_filemark = &header.kind == b"SFMB";
            if &header.kind == b"SFMB" {
                self.skip_soft_filemark()?;
                continue;
            }
            let area = self.read_block_area(start, &header, &header_bytes)?;
            self.take_block_fields(start, &header, &area)?;
            self.walk_streams(start, &header)?;
        }
    }

    /// Checks that the block kind is plausible and allowed at this point of the stream.
    fn check_block_order(&mut self, start: u64, header: &DblkHeader) -> Result<(), VerifyError> {
        let kind = header.kind;
        if !kind.iter().all(u8::is_ascii_uppercase) {
            return Err(malformed(
                start,
                format!("descriptor block type {kind:02x?} is not an MTF block type"),
            ));
        }
        let name = String::from_utf8_lossy(&kind).into_owned();
        if self.tape.is_none() && &kind != b"TAPE" {
            return Err(malformed(
                start,
                format!("first descriptor block is {name}, expected TAPE"),
            ));
        }
        match &kind {
            b"TAPE" if self.tape.is_some() => {
                Err(malformed(start, "second TAPE block in one file"))
            }
            b"SSET" if self.open_set.is_some() => Err(malformed(
                start,
                "SSET block before the previous set's ESET",
            )),
            b"VOLB" | b"MSCI" | b"MSDA" | b"MSTL" | b"MSLS" if self.open_set.is_none() => {
                Err(malformed(
                    start,
                    format!("{name} block outside a backup set (no SSET before it)"),
                ))
            }
            _ => Ok(()),
        }
    }

    /// Skips the rest of a soft filemark, which has no stream chain and fills one physical
    /// block.
    fn skip_soft_filemark(&mut self) -> Result<(), VerifyError> {
        let block_size = self.tape.as_ref().map_or(512, |t| t.block_size);
        self.input
            .skip(u64::from(block_size) - DBLK_HEADER_LEN as u64, None)
    }

    /// Reads the DBLK from its start to its first event: fixed fields and strings.
    fn read_block_area(
        &mut self,
        start: u64,
        header: &DblkHeader,
        header_bytes: &[u8; DBLK_HEADER_LEN],
    ) -> Result<Vec<u8>, VerifyError> {
        let first_event = usize::from(header.first_event);
        if first_event < DBLK_HEADER_LEN {
            return Err(malformed(
                start,
                format!("first event offset {first_event} lies inside the 52-byte block header"),
            ));
        }
        let mut area = vec![0u8; first_event];
        area[..DBLK_HEADER_LEN].copy_from_slice(header_bytes);
        self.input.read_exact(&mut area[DBLK_HEADER_LEN..])?;
        Ok(area)
    }

    fn take_block_fields(
        &mut self,
        start: u64,
        header: &DblkHeader,
        area: &[u8],
    ) -> Result<(), VerifyError> {
        match &header.kind {
            b"TAPE" => {
                let block_size = decode_tape_block_size(area).map_err(|e| malformed(start, e))?;
                self.tape = Some(TapeInfo {
                    block_size,
                    media_set_guid: uuid::Uuid::nil(),
                    family_count: 1,
                    family_sequence: 1,
                });
            }
            b"SSET" => {
                let sset = decode_sset(area, header.os_data).map_err(|e| malformed(start, e))?;
                self.open_set = Some(SetRecord {
                    sset: Some(sset),
                    ..SetRecord::default()
                });
            }
            b"VOLB" => {
                if let Some(set) = self.open_set.as_mut() {
                    set.machine_name = decode_volb_machine(area);
                }
            }
            b"ESET" => {
                if let Some(set) = self.open_set.take() {
                    self.finished_sets.push(set);
                } else if self.finished_sets.is_empty() {
                    return Err(malformed(
                        start,
                        "ESET block without a backup set before it",
                    ));
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Walks the stream chain of the DBLK at `start` up to and including its SPAD.
    fn walk_streams(&mut self, start: u64, header: &DblkHeader) -> Result<(), VerifyError> {
        loop {
            let position = self.input.position();
            let aligned = start + align_up(position - start, 4);
            self.input.skip(aligned - position, None)?;
            let stream_start = self.input.position();
            let mut bytes = [0u8; STREAM_HEADER_LEN];
            self.input.read_exact(&mut bytes)?;
            let stream = StreamHeader::decode(&bytes).map_err(|e| malformed(stream_start, e))?;
            if &stream.id != b"CSUM" {
                self.require_no_pending_checksum()?;
            }
            match &stream.id {
                b"SPAD" => {
                    self.input.skip(stream.length, None)?;
                    return Ok(());
                }
                b"MQCI" => self.read_scin(stream_start, header, stream.length)?,
                b"RAID" => self.read_raid(stream_start, stream.length)?,
                b"MQDA" | b"MQTL" => self.read_data(stream_start, stream.length)?,
                b"CSUM" => self.read_csum(stream_start, stream.length)?,
                _ => self.input.skip(stream.length, None)?,
            }
        }
    }

    fn read_metadata(
        &mut self,
        stream_start: u64,
        length: u64,
        name: &str,
    ) -> Result<Vec<u8>, VerifyError> {
        if length > MAX_METADATA_STREAM {
            return Err(malformed(
                stream_start,
                format!(
                    "{name} stream of {length} bytes exceeds the {MAX_METADATA_STREAM}-byte limit"
                ),
            ));
        }
        let mut data = vec![0u8; length as usize];
        self.input.read_exact(&mut data)?;
        Ok(data)
    }

    fn read_scin(
        &mut self,
        stream_start: u64,
        header: &DblkHeader,
        length: u64,
    ) -> Result<(), VerifyError> {
        let data = self.read_metadata(stream_start, length, "MQCI")?;
        let scin = decode_scin(&data).map_err(|e| malformed(stream_start, e))?;
        if let Some(set) = self.open_set.as_mut() {
            if &header.kind == b"MSLS" {
                set.trailing = Some(scin);
            } else {
                set.leading.get_or_insert(scin);
            }
        }
        Ok(())
    }

    fn read_raid(&mut self, stream_start: u64, length: u64) -> Result<(), VerifyError> {
        let data = self.read_metadata(stream_start, length, "RAID")?;
        let (guid, family_count, family_sequence) = decode_raid(&data);
        if let Some(tape) = self.tape.as_mut() {
            tape.media_set_guid = guid;
            tape.family_count = family_count;
            tape.family_sequence = family_sequence;
        }
        Ok(())
    }

    /// Reads a data stream (pages or log blocks), summing it when checksums are checked
    /// and the set declares them.
    fn read_data(&mut self, stream_start: u64, length: u64) -> Result<(), VerifyError> {
        let set_has_checksums = self
            .open_set
            .as_ref()
            .and_then(|s| s.leading.as_ref())
            .is_some_and(|scin| scin.has_checksums);
        if !(self.checks_payload() && set_has_checksums && length > 0) {
            return self.input.skip(length, None);
        }
        let mut checksum = PayloadChecksum::new();
        self.input.skip(length, Some(&mut checksum))?;
        self.pending_checksum = Some(PendingChecksum {
            offset: stream_start,
            checksum,
        });
        Ok(())
    }

    /// In a set with checksums, SQL Server follows every non-empty data stream with a CSUM
    /// stream (observed); a missing one means the backup was altered.
    fn require_no_pending_checksum(&mut self) -> Result<(), VerifyError> {
        match self.pending_checksum.take() {
            Some(pending) => Err(VerifyError::DamagedBackupSet {
                offset: pending.offset,
                reason: "data stream of a backup with checksums has no CSUM stream after it".into(),
            }),
            None => Ok(()),
        }
    }

    fn read_csum(&mut self, stream_start: u64, length: u64) -> Result<(), VerifyError> {
        let data = self.read_metadata(stream_start, length, "CSUM")?;
        let Some(pending) = self.pending_checksum.take() else {
            return Ok(());
        };
        if !is_own_csum(&data) {
            // Written by SQL Server with an algorithm that is not public: not checkable.
            return Ok(());
        }
        if pending.checksum.finish()[..] != data[..] {
            return Err(VerifyError::DamagedBackupSet {
                offset: pending.offset,
                reason: "data stream does not match its CSUM checksum".into(),
            });
        }
        self.checksums_checked = true;
        Ok(())
    }

    fn outcome(self) -> Result<WalkOutcome, VerifyError> {
        let end = self.input.position();
        let ends_with_filemark =
            self.last_block_was_filemark || self.input.ends_with_raw_filemark();
        if self.open_set.is_some() || self.finished_sets.is_empty() || !ends_with_filemark {
            return Err(VerifyError::Truncated { offset: end });
        }
        let Some(tape) = self.tape.clone() else {
            return Err(VerifyError::Truncated { offset: end });
        };
        let mut sets = Vec::with_capacity(self.finished_sets.len());
        for record in &self.finished_sets {
            sets.push(assemble(&tape, record, self.compressed).map_err(|e| malformed(end, e))?);
        }
        if self.mode == WalkMode::Verify(ChecksumMode::Require)
            && sets.iter().any(|s| !s.has_checksums)
        {
            return Err(VerifyError::NoChecksums);
        }
        Ok(WalkOutcome {
            sets,
            checksums_checked: self.checksums_checked,
        })
    }

    /// Header reading on a file that ends early: the sets read so far, the last one from
    /// its leading header copy when that was reached.
    fn truncated_outcome(mut self, offset: u64) -> Result<WalkOutcome, VerifyError> {
        let Some(tape) = self.tape.clone() else {
            return Err(VerifyError::Truncated { offset });
        };
        if let Some(open) = self.open_set.take() {
            if open.leading.is_some() || open.trailing.is_some() {
                self.finished_sets.push(open);
            }
        }
        if self.finished_sets.is_empty() {
            return Err(VerifyError::Truncated { offset });
        }
        let mut sets = Vec::with_capacity(self.finished_sets.len());
        for record in &self.finished_sets {
            sets.push(assemble(&tape, record, self.compressed).map_err(|e| malformed(offset, e))?);
        }
        Ok(WalkOutcome {
            sets,
            checksums_checked: false,
        })
    }
}

/// Combines TAPE, SSET, VOLB and SCIN values into a [`BackupSet`]. It prefers the trailing
/// header copy because that copy contains the final values.
fn assemble(tape: &TapeInfo, record: &SetRecord, compressed: bool) -> Result<BackupSet, String> {
    let sset = record.sset.as_ref().ok_or("backup set has no SSET block")?;
    let (scin, provisional) = match (&record.trailing, &record.leading) {
        (Some(trailing), _) => (trailing, false),
        (None, Some(leading)) => (leading, true),
        (None, None) => return Err("backup set has no MSCI or MSLS header copy".to_string()),
    };
    Ok(BackupSet {
        backup_type: scin.backup_type,
        position: sset.position,
        database_name: scin.database_name.clone(),
        server_name: scin.server_name.clone(),
        machine_name: record.machine_name.clone(),
        user_name: sset.user_name.clone(),
        backup_name: sset.backup_name.clone(),
        backup_description: sset.backup_description.clone(),
        software_major: scin.software_major,
        software_minor: scin.software_minor,
        software_build: scin.software_build,
        database_version: scin.database_version,
        compatibility_level: scin.compatibility_level,
        first_lsn: scin.first_lsn,
        last_lsn: scin.last_lsn,
        checkpoint_lsn: scin.checkpoint_lsn,
        database_backup_lsn: scin.database_backup_lsn,
        database_creation_date: scin.database_creation_date,
        backup_start_date: scin.backup_start_date,
        backup_finish_date: scin.backup_finish_date,
        time_zone: sset.time_zone,
        backup_size: scin.backup_size,
        has_checksums: scin.has_checksums,
        is_copy_only: sset.is_copy_only,
        compressed,
        backup_set_guid: sset.backup_set_guid,
        differential_base_guid: scin.differential_base_guid,
        family_guid: scin.family_guid,
        binding_id: scin.binding_id,
        recovery_fork_id: scin.recovery_fork_id,
        recovery_model: scin.recovery_model,
        collation: scin.collation,
        media_set_guid: tape.media_set_guid,
        family_count: tape.family_count,
        family_sequence: tape.family_sequence,
        provisional,
    })
}
