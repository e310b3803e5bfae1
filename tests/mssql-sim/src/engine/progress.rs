//! Progress of a running BACKUP or RESTORE VERIFYONLY: the `sys.dm_exec_requests` row
//! other sessions read, STATS messages, and the throttle of [`super::Fault::SlowBackup`].

use std::time::{Duration, Instant};

use super::batch::Out;
use super::messages;
use super::Instance;

/// Tracks how much of `total` bytes is done and publishes it.
pub struct Progress<'a> {
    instance: &'a Instance,
    spid: u16,
    /// STATS step in percent; `None` sends no 3211 messages.
    stats: Option<u32>,
    next_stats: u32,
    total: u64,
    started: Instant,
}

impl<'a> Progress<'a> {
    /// Starts tracking; `status` is what `sys.dm_exec_requests.status` shows meanwhile.
    pub fn new(
        instance: &'a Instance,
        spid: u16,
        status: &'static str,
        stats: Option<u32>,
        total: u64,
    ) -> Self {
        if let Some(request) = instance.lock().requests.get_mut(&spid) {
            request.status = status;
            request.wait_type = (status == "suspended").then_some("BACKUPIO");
        }
        let stats = stats.filter(|step| *step > 0);
        Progress {
            instance,
            spid,
            stats,
            next_stats: stats.unwrap_or(0),
            total,
            started: Instant::now(),
        }
    }

    /// Records `done` bytes; sends a 3211 message for every STATS step passed.
    pub fn advance(&mut self, done: u64, out: &mut Out) {
        let fraction = if self.total == 0 {
            1.0
        } else {
            done as f64 / self.total as f64
        };
        let elapsed_ms = self.started.elapsed().as_millis() as f64;
        let remaining_ms = if fraction > 0.0 {
            elapsed_ms * (1.0 - fraction) / fraction
        } else {
            0.0
        };
        if let Some(request) = self.instance.lock().requests.get_mut(&self.spid) {
            request.percent_complete = (fraction * 100.0) as f32;
            request.estimated_completion_ms = remaining_ms as i64;
        }
        let Some(step) = self.stats else { return };
        let percent = (fraction * 100.0).floor() as u32;
        while self.next_stats <= percent.min(100) {
            out.info(messages::percent_processed(self.next_stats));
            self.next_stats += step;
        }
    }
}

/// Holds a transfer to `bytes_per_sec`; checks for cancellation at least every 50 ms.
pub struct Throttle {
    bytes_per_sec: Option<u64>,
    started: Instant,
}

impl Throttle {
    pub fn new(bytes_per_sec: Option<u64>) -> Throttle {
        Throttle {
            bytes_per_sec: bytes_per_sec.filter(|rate| *rate > 0),
            started: Instant::now(),
        }
    }

    /// Sleeps until `done` bytes are due at the configured rate.
    pub fn wait(&mut self, done: u64, out: &Out) {
        let Some(rate) = self.bytes_per_sec else {
            return;
        };
        let due = Duration::from_secs_f64(done as f64 / rate as f64);
        loop {
            let elapsed = self.started.elapsed();
            if elapsed >= due || out.cancelled() {
                return;
            }
            std::thread::sleep((due - elapsed).min(Duration::from_millis(50)));
        }
    }
}
