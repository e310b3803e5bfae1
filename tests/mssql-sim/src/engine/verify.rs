//! RESTORE VERIFYONLY: reads a backup file through bakfile's verifier and replies with
//! 3262, or with the error SQL Server raises for the damage found followed by 3013.

use std::fs::File;
use std::io::{self, BufReader, Read};

use bakfile::ChecksumMode;

use super::batch::{Out, Outcome};
use super::fault::Fault;
use super::media;
use super::messages::{self, Msg};
use super::progress::{Progress, Throttle};
use super::restore_messages;
use super::sql::ast::VerifyOnly;
use super::{Instance, Session};

/// 3013 names RESTORE VERIFYONLY this way.
const STATEMENT: &str = "VERIFY DATABASE";

enum Stop {
    Fail(Msg),
    Stopped,
}

pub fn run(
    instance: &Instance,
    session: &mut Session,
    request: &VerifyOnly,
    out: &mut Out,
) -> Outcome {
    match verify(instance, session, request, out) {
        Ok(position) => {
            out.info(messages::backup_set_valid(position));
            Outcome::Done { row_count: None }
        }
        Err(Stop::Stopped) => Outcome::Stopped,
        Err(Stop::Fail(msg)) => {
            tracing::info!(instance = %instance.name(), device = %request.devices[0], error = msg.number, "verification failed");
            out.error(msg);
            out.error(messages::terminating(STATEMENT));
            Outcome::Failed
        }
    }
}

/// Verifies the set at `FILE = n` (1 by default) and returns its position.
fn verify(
    instance: &Instance,
    session: &mut Session,
    request: &VerifyOnly,
    out: &mut Out,
) -> Result<u32, Stop> {
    if session.transaction_depth > 0 {
        return Err(Stop::Fail(messages::within_transaction()));
    }
    if request.devices.len() > 1 {
        verify_other_families(instance, request)?;
    }
    let backup_device = media::resolve(instance, &request.devices[0]);
    let device_name = backup_device.name.clone();
    let file = media::open(&backup_device).map_err(Stop::Fail)?;
    let total = file.metadata().map(|meta| meta.len()).unwrap_or(0);
    let mode = checksum_mode(request.checksum);
    let bytes_per_sec = match instance
        .lock()
        .take_fault(|fault| matches!(fault, Fault::SlowBackup { .. }))
    {
        Some(Fault::SlowBackup { bytes_per_sec }) => Some(bytes_per_sec),
        _ => None,
    };
    let drop_at = match instance
        .lock()
        .take_fault(|fault| matches!(fault, Fault::DropConnectionInVerify { .. }))
    {
        Some(Fault::DropConnectionInVerify { at_percent }) => {
            Some(total * u64::from(at_percent) / 100)
        }
        _ => None,
    };
    let stall_at = match instance
        .lock()
        .take_fault(|fault| matches!(fault, Fault::StallVerify { .. }))
    {
        Some(Fault::StallVerify { at_percent }) => Some(total * u64::from(at_percent) / 100),
        _ => None,
    };
    let progress = Progress::new(instance, session.spid, "running", request.stats, total);
    let mut reader = ProgressReader {
        file,
        done: 0,
        progress,
        throttle: Throttle::new(bytes_per_sec),
        drop_at,
        dropped: false,
        stall_at,
        out,
    };
    let result = bakfile::verify(BufReader::with_capacity(1 << 20, &mut reader), mode);
    if reader.dropped {
        session.drop_connection = true;
        reader.out.silence();
        return Err(Stop::Stopped);
    }
    if out.cancelled() {
        return Err(Stop::Stopped);
    }
    let report = result.map_err(|error| Stop::Fail(media::read_error(&error, &device_name)))?;
    // A family of a striped media set verifies only together with the others.
    if let Some(first) = report.sets.first() {
        let families = usize::from(first.family_count.max(1));
        if families > request.devices.len() {
            return Err(Stop::Fail(restore_messages::missing_media_families(
                first.family_count,
                request.devices.len(),
            )));
        }
    }
    let position = request.file.unwrap_or(1);
    let found = report
        .sets
        .iter()
        .any(|set| u32::from(set.position) == position);
    if !found {
        return Err(Stop::Fail(messages::file_not_found_on_device(
            position,
            &device_name,
        )));
    }
    super::backup::corrupt_after_verify(instance, &backup_device.device);
    Ok(position)
}

/// Checks that the devices form one media set and verifies every family but the first,
/// which the caller verifies with progress.
fn verify_other_families(instance: &Instance, request: &VerifyOnly) -> Result<(), Stop> {
    media::read_media_set(instance, &request.devices, None).map_err(Stop::Fail)?;
    let mode = checksum_mode(request.checksum);
    for path in &request.devices[1..] {
        let device = media::resolve(instance, path);
        let file = media::open(&device).map_err(Stop::Fail)?;
        bakfile::verify(BufReader::with_capacity(1 << 20, file), mode)
            .map_err(|error| Stop::Fail(media::read_error(&error, &device.name)))?;
    }
    Ok(())
}

/// Returns the checksum handling that CHECKSUM, NO_CHECKSUM or neither requests.
pub(super) fn checksum_mode(checksum: Option<bool>) -> ChecksumMode {
    match checksum {
        Some(true) => ChecksumMode::Require,
        Some(false) => ChecksumMode::Skip,
        None => ChecksumMode::IfPresent,
    }
}

/// Feeds the verifier while publishing progress; returns an error once the client
/// cancels, which ends the verification.
struct ProgressReader<'a, 'b> {
    file: File,
    done: u64,
    progress: Progress<'a>,
    throttle: Throttle,
    /// Bytes after which [`Fault::DropConnectionInVerify`] closes the connection.
    drop_at: Option<u64>,
    dropped: bool,
    /// Bytes after which [`Fault::StallVerify`] stops reading until the session is killed.
    stall_at: Option<u64>,
    out: &'a mut Out<'b>,
}

impl Read for ProgressReader<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.out.cancelled() {
            return Err(io::Error::other("verification cancelled by the client"));
        }
        if self.drop_at.is_some_and(|at| self.done >= at) {
            self.dropped = true;
            return Err(io::Error::other("connection closed by an injected fault"));
        }
        if self.stall_at.is_some_and(|at| self.done >= at) {
            super::stripes::stall_until_cancelled(self.out);
            return Err(io::Error::other("verification cancelled by the client"));
        }
        let read = self.file.read(buf)?;
        self.done += read as u64;
        self.progress.advance(self.done, self.out);
        self.throttle.wait(self.done, self.out);
        Ok(read)
    }
}
