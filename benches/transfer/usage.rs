//! The cost of one transfer run beside its time: the CPU of the benchmark process and of
//! the tools it ran, its busiest thread, and the disk's busy time and traffic. These show
//! whether the CPU, one thread or the disk set a run's pace.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Readings taken before a run, to subtract from those after it.
pub struct UsageReading {
    threads: HashMap<u32, u64>,
    process_seconds: f64,
    children_seconds: f64,
    disk: Option<DiskCounters>,
}

/// The cost of one run.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunUsage {
    /// CPU seconds of the benchmark process, inside which bakfleet's code runs.
    pub process_cpu: f64,
    /// CPU seconds of the tools the benchmark ran and waited for (`smbclient`, also for
    /// bakfleet's SMB fetch, `ssh`, `sftp`, `sha256sum`). The servers, smbd and sshd, and
    /// the kernel's writeback threads are not counted.
    pub tools_cpu: f64,
    /// CPU seconds of the benchmark process's busiest thread. Near the run's length, one
    /// thread set the pace.
    pub busiest_thread_cpu: f64,
    /// Share of the run's time the disk had a request in flight, in percent; `None` when
    /// the disk's counters cannot be read.
    pub disk_busy: Option<f64>,
    /// MiB read from and written to the disk during the run.
    pub disk_read_mib: Option<f64>,
    pub disk_written_mib: Option<f64>,
}

impl UsageReading {
    /// Reads the counters now. `work_dir` names the disk to watch: the one holding it.
    pub fn take(work_dir: &Path) -> UsageReading {
        UsageReading {
            threads: thread_ticks(),
            process_seconds: cpu_seconds(libc::RUSAGE_SELF),
            children_seconds: cpu_seconds(libc::RUSAGE_CHILDREN),
            disk: DiskCounters::read(work_dir),
        }
    }

    /// Returns the cost from this reading to `later`, over `seconds` of wall-clock time.
    pub fn usage_until(&self, later: &UsageReading, seconds: f64) -> RunUsage {
        let ticks_per_second = ticks_per_second();
        let deltas: Vec<u64> = later
            .threads
            .iter()
            .map(|(thread, ticks)| {
                ticks.saturating_sub(self.threads.get(thread).copied().unwrap_or(0))
            })
            .collect();
        let process = (later.process_seconds - self.process_seconds).max(0.0);
        let busiest = deltas.iter().copied().max().unwrap_or(0) as f64 / ticks_per_second;
        let children = (later.children_seconds - self.children_seconds).max(0.0);
        let disk = match (&self.disk, &later.disk) {
            (Some(before), Some(after)) => Some(before.delta_until(after)),
            _ => None,
        };
        RunUsage {
            process_cpu: process,
            tools_cpu: children,
            busiest_thread_cpu: busiest,
            disk_busy: disk.map(|d| (d.busy_ms as f64 / 10.0 / seconds.max(1e-9)).min(100.0)),
            disk_read_mib: disk.map(|d| d.sectors_read as f64 * 512.0 / (1 << 20) as f64),
            disk_written_mib: disk.map(|d| d.sectors_written as f64 * 512.0 / (1 << 20) as f64),
        }
    }
}

/// Clock ticks per second of the CPU times in /proc.
pub fn ticks_per_second() -> f64 {
    // SAFETY: sysconf reads a constant of the system and touches no memory of ours.
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64
}

/// Reads the user and system CPU ticks of each live thread of this process, by thread
/// id. A thread that ended before the second reading is missing from it, so only the
/// busiest thread comes from here.
fn thread_ticks() -> HashMap<u32, u64> {
    let mut ticks = HashMap::new();
    let Ok(threads) = fs::read_dir("/proc/self/task") else {
        return ticks;
    };
    for thread in threads.flatten() {
        let Ok(id) = thread.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(thread.path().join("stat")) else {
            continue;
        };
        // The thread's name, in parentheses, may contain spaces. The fields after it
        // start with the state, and utime and stime are the 12th and 13th of them.
        let Some((_, after_name)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let field = |index: usize| {
            fields
                .get(index)
                .and_then(|value| value.parse::<u64>().ok())
                .unwrap_or(0)
        };
        ticks.insert(id, field(11) + field(12));
    }
    ticks
}

/// CPU seconds of this process, ended threads included (`RUSAGE_SELF`), or of every child
/// process it has waited for, their own waited-for children included (`RUSAGE_CHILDREN`).
fn cpu_seconds(who: libc::c_int) -> f64 {
    // SAFETY: getrusage writes only into the struct it is given, which outlives the call.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(who, &mut usage) != 0 {
            return 0.0;
        }
        usage
    };
    let seconds = |time: libc::timeval| time.tv_sec as f64 + time.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// The counters of one block device from /proc/diskstats.
#[derive(Debug, Clone, Copy)]
struct DiskCounters {
    sectors_read: u64,
    sectors_written: u64,
    /// Milliseconds during which the device had at least one request in flight.
    busy_ms: u64,
}

impl DiskCounters {
    /// Reads the counters of the device that stores `path`, found by its major and minor
    /// numbers.
    fn read(path: &Path) -> Option<DiskCounters> {
        let device = fs::metadata(path).ok()?.dev();
        let (major, minor) = (libc::major(device), libc::minor(device));
        let stats = fs::read_to_string("/proc/diskstats").ok()?;
        stats.lines().find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 13
                || fields[0].parse::<u32>().ok()? != major
                || fields[1].parse::<u32>().ok()? != minor
            {
                return None;
            }
            // After major, minor and name: reads, merged reads, sectors read, ms reading,
            // writes, merged writes, sectors written, ms writing, in flight, ms busy.
            let field = |index: usize| fields[index].parse::<u64>().ok();
            Some(DiskCounters {
                sectors_read: field(5)?,
                sectors_written: field(9)?,
                busy_ms: field(12)?,
            })
        })
    }

    fn delta_until(&self, later: &DiskCounters) -> DiskCounters {
        DiskCounters {
            sectors_read: later.sectors_read.saturating_sub(self.sectors_read),
            sectors_written: later.sectors_written.saturating_sub(self.sectors_written),
            busy_ms: later.busy_ms.saturating_sub(self.busy_ms),
        }
    }
}
