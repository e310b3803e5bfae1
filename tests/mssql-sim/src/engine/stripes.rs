//! Writes a backup set's pages over one or more media families with bakfile's writer,
//! while publishing progress and firing the write faults a test armed.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bakfile::{BackupSet, BackupWriter, WriteOptions};

use super::backup::{Plan, Stop};
use super::batch::Out;
use super::fault::Fault;
use super::messages;
use super::progress::{Progress, Throttle};
use super::sql::ast::Backup;
use super::{Instance, Session};

const PAGE: usize = 8192;
/// Pages handed to the writer per call; progress and cancellation are checked between.
const PAGES_PER_CHUNK: u64 = 8;

/// Counts bytes on their way to the file; the count is shared so it can be read while
/// the writer owns the stream.
struct Counting<W> {
    inner: W,
    count: Arc<AtomicU64>,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.count.fetch_add(written as u64, Ordering::Relaxed);
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// One media family being written: its device, writer and share of the pages.
struct Stripe {
    name: String,
    writer: BackupWriter<Counting<Box<dyn Write>>>,
    count: Arc<AtomicU64>,
    /// Pages this family carries; the families split the data in consecutive runs.
    pages: u64,
}

/// Writes the whole set over every device; returns the final header values and the
/// bytes written to all files.
pub(super) fn write(
    instance: &Instance,
    session: &mut Session,
    request: &Backup,
    plan: &Plan,
    files: Vec<Option<File>>,
    out: &mut Out,
) -> Result<(BackupSet, u64), Stop> {
    let total_pages = plan.data_pages + plan.log_pages;
    let mut stripes = open_stripes(instance, plan, files, total_pages)?;
    let faults = take_write_faults(instance);
    let mut progress = Progress::new(
        instance,
        session.spid,
        "suspended",
        request.options.stats,
        total_pages * PAGE as u64,
    );
    let mut throttle = Throttle::new(faults.bytes_per_sec);
    let mut buffer = vec![0u8; PAGE * PAGES_PER_CHUNK as usize];
    let mut page = 0;
    for stripe in &mut stripes {
        let stripe_end = page + stripe.pages;
        let write_error = |error: io::Error| {
            Stop::from(messages::write_failed(&stripe.name, os_error_text(&error)))
        };
        while page < stripe_end {
            if out.cancelled() {
                return Err(Stop::Stopped);
            }
            let percent = page * 100 / total_pages.max(1);
            faults.check(percent, &stripe.name, session, out)?;
            let pages = PAGES_PER_CHUNK.min(stripe_end - page);
            let chunk = &mut buffer[..pages as usize * PAGE];
            fill_pages(chunk, page, plan.set.database_name.len() as u64);
            stripe.writer.write_payload(chunk).map_err(write_error)?;
            page += pages;
            progress.advance(page * PAGE as u64, out);
            throttle.wait(page * PAGE as u64, out);
        }
    }
    finish_stripes(instance, plan, stripes)
}

/// Starts one writer per device. Every family carries the same media set GUID and
/// family count, and its own family sequence number.
fn open_stripes(
    instance: &Instance,
    plan: &Plan,
    files: Vec<Option<File>>,
    total_pages: u64,
) -> Result<Vec<Stripe>, Stop> {
    let families = files.len().max(1) as u64;
    let options = WriteOptions {
        compressed: plan.set.compressed,
        block_size: instance.config.block_size.bytes(),
    };
    let mut stripes = Vec::new();
    for (index, (file, device)) in files.into_iter().zip(&plan.devices).enumerate() {
        let sink: Box<dyn Write> = match file {
            Some(file) => Box::new(BufWriter::with_capacity(1 << 20, file)),
            None => Box::new(io::sink()),
        };
        let count = Arc::new(AtomicU64::new(0));
        let counting = Counting {
            inner: sink,
            count: Arc::clone(&count),
        };
        let pages = total_pages / families + u64::from((index as u64) < total_pages % families);
        let mut set = plan.set.clone();
        set.family_sequence = u16::try_from(index + 1).unwrap_or(u16::MAX);
        let writer = BackupWriter::new(counting, &set, pages * PAGE as u64, options)
            .map_err(|error| messages::write_failed(&device.name, os_error_text(&error)))?;
        stripes.push(Stripe {
            name: device.name.clone(),
            writer,
            count,
            pages,
        });
    }
    Ok(stripes)
}

/// Writes every family's trailing headers. For an uncompressed set, BackupSize counts
/// the bytes before the trailer of all families together.
fn finish_stripes(
    instance: &Instance,
    plan: &Plan,
    stripes: Vec<Stripe>,
) -> Result<(BackupSet, u64), Stop> {
    let mut set = plan.set.clone();
    set.backup_finish_date = Some(instance.now());
    if !set.compressed {
        set.backup_size = stripes
            .iter()
            .map(|stripe| stripe.count.load(Ordering::Relaxed))
            .sum();
    }
    let mut total = 0;
    for (index, stripe) in stripes.into_iter().enumerate() {
        let write_error = |error: io::Error| {
            Stop::from(messages::write_failed(&stripe.name, os_error_text(&error)))
        };
        let mut family_set = set.clone();
        family_set.family_sequence = u16::try_from(index + 1).unwrap_or(u16::MAX);
        let mut counting = stripe.writer.finish(&family_set).map_err(write_error)?;
        counting.flush().map_err(write_error)?;
        total += stripe.count.load(Ordering::Relaxed);
    }
    Ok((set, total))
}

/// The faults armed for this backup: one-shot failures are taken now.
struct WriteFaults {
    disk_full_at: Option<u64>,
    nonrecoverable_at: Option<u64>,
    drop_at: Option<u64>,
    stall_at: Option<u64>,
    bytes_per_sec: Option<u64>,
}

fn take_write_faults(instance: &Instance) -> WriteFaults {
    let mut state = instance.lock();
    let disk_full_at = match state.take_fault(|fault| matches!(fault, Fault::DiskFull { .. })) {
        Some(Fault::DiskFull { at_percent }) => Some(u64::from(at_percent)),
        _ => None,
    };
    let nonrecoverable_at =
        match state.take_fault(|fault| matches!(fault, Fault::DiskFullNonrecoverable { .. })) {
            Some(Fault::DiskFullNonrecoverable { at_percent }) => Some(u64::from(at_percent)),
            _ => None,
        };
    let drop_at = match state.take_fault(|fault| matches!(fault, Fault::DropConnection { .. })) {
        Some(Fault::DropConnection { at_percent }) => Some(u64::from(at_percent)),
        _ => None,
    };
    let stall_at = match state.take_fault(|fault| matches!(fault, Fault::StallBackup { .. })) {
        Some(Fault::StallBackup { at_percent }) => Some(u64::from(at_percent)),
        _ => None,
    };
    let bytes_per_sec = match state.take_fault(|fault| matches!(fault, Fault::SlowBackup { .. })) {
        Some(Fault::SlowBackup { bytes_per_sec }) => Some(bytes_per_sec),
        _ => None,
    };
    WriteFaults {
        disk_full_at,
        nonrecoverable_at,
        drop_at,
        stall_at,
        bytes_per_sec,
    }
}

impl WriteFaults {
    fn check(
        &self,
        percent: u64,
        device_name: &str,
        session: &mut Session,
        out: &mut Out,
    ) -> Result<(), Stop> {
        if self.disk_full_at.is_some_and(|at| percent >= at) {
            return Err(messages::write_failed(device_name, messages::OS_DISK_FULL).into());
        }
        if self.nonrecoverable_at.is_some_and(|at| percent >= at) {
            return Err(messages::nonrecoverable_io(device_name, messages::OS_DISK_FULL).into());
        }
        if self.drop_at.is_some_and(|at| percent >= at) {
            session.drop_connection = true;
            out.silence();
            return Err(Stop::Stopped);
        }
        if self.stall_at.is_some_and(|at| percent >= at) {
            stall_until_cancelled(out);
            return Err(Stop::Stopped);
        }
        Ok(())
    }
}

/// Blocks a BACKUP or VERIFYONLY without progress until the client cancels, leaves, or
/// the session is killed; checks every 50 ms.
pub(super) fn stall_until_cancelled(out: &Out) {
    tracing::info!("fault: statement stalled; waiting for a cancel or KILL");
    while !out.cancelled() {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Operating system error text for a failed write, as SQL Server words it.
fn os_error_text(error: &io::Error) -> &'static str {
    // ENOSPC on Linux hosts; SQL Server reports Windows error 112 for it.
    if error.raw_os_error() == Some(28) {
        messages::OS_DISK_FULL
    } else {
        messages::OS_ACCESS_DENIED
    }
}

/// Fills whole pages with a deterministic pattern: a 96-byte header with the page
/// number, a few bytes that vary per page, and repeated row text that compresses well.
fn fill_pages(chunk: &mut [u8], first_page: u64, seed: u64) {
    for (offset, page) in chunk.chunks_mut(PAGE).enumerate() {
        let number = first_page + offset as u64;
        page.fill(0);
        page[0] = 1;
        page[32..40].copy_from_slice(&number.to_le_bytes());
        let mut state = number
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(seed | 1);
        for byte in &mut page[96..352] {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            *byte = (state >> 56) as u8;
        }
        let row = format!("row {:08} of page {number}; ", number % 97);
        for (index, byte) in page[352..].iter_mut().enumerate() {
            *byte = row.as_bytes()[index % row.len()];
        }
    }
}
