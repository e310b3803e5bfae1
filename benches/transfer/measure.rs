//! Transfer figures: bakfleet's SMB and SFTP fetch into the store beside the raw tools a
//! DBA would script, plus SHA-256 alone, against a private smbd and sshd on loopback.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use bakfleet::store::{hash_file_at, Store};
use bakfleet::transfer::{SftpSettings, SmbSettings, Source};

use crate::support::{Smbd, Sshd};
use usage::{RunUsage, UsageReading};

// A path beside this file, so the test that includes this file by path finds it too.
#[path = "usage.rs"]
mod usage;

/// Cipher of every SSH connection measured. bakfleet prefers AES-256-GCM, and the raw
/// tools get the same one so the figures compare the copy and not the cipher.
const SSH_CIPHER: &str = "aes256-gcm@openssh.com";

/// Bytes per write while the test file is generated.
const GENERATE_BLOCK_BYTES: usize = 4 << 20;

/// Settings of one benchmark run.
#[derive(Debug, Clone)]
pub struct Options {
    /// File sizes to measure, in bytes.
    pub sizes: Vec<u64>,
    /// Runs per case; the report gives the best and the median.
    pub repeats: usize,
    /// Rounds of every case run before the counted ones at each size, and not counted.
    pub warmup_rounds: usize,
    /// Folder for the share, the store and the raw copies. It needs twice the largest size
    /// free.
    pub work_dir: PathBuf,
    /// Drops the page cache before every transfer run, so the source file is read from
    /// disk as a freshly written backup would mostly not be. Needs root.
    pub drop_caches: bool,
    /// Runs only the cases whose name contains one of these texts; all when empty.
    pub case_filter: Vec<String>,
}

/// What a case measures, which decides how its ratio is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// bakfleet's fetch, SHA-256 and durable store.
    Bakfleet,
    /// A raw copy by a standard tool, without hashing.
    RawCopy,
    /// A raw copy followed by `sha256sum` of the copy.
    RawCopyHashed,
    /// A raw copy followed by `fdatasync` of the copy, so it is as durable as bakfleet's.
    RawCopySynced,
    /// Hashing a cached file.
    Hash,
    /// Writing the file's size to a new local file and `fdatasync`: what any durable
    /// copy costs on the disk, whatever brings the bytes.
    DiskWrite,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Bakfleet => "fetch + SHA-256 + durable store",
            Kind::RawCopy => "raw copy",
            Kind::RawCopyHashed => "raw copy, then hash",
            Kind::RawCopySynced => "raw copy, then fdatasync",
            Kind::Hash => "hash a cached file",
            Kind::DiskWrite => "local write, then fdatasync",
        }
    }
}

/// The timings of one case at one size.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// Short name of the case, for example `bakfleet SMB`.
    pub case: &'static str,
    /// What the case measures.
    pub kind: Kind,
    /// Bytes moved or hashed per run.
    pub size: u64,
    /// Wall-clock seconds of each run.
    pub seconds: Vec<f64>,
    /// Peak resident set size of this process during each run, in KiB, for bakfleet's
    /// cases. The `smbclient` child of an SMB fetch is not counted.
    pub peak_rss_kib: Vec<u64>,
    /// Seconds of each bakfleet run spent in `commit` (the final `fdatasync`, rename and
    /// directory `fsync`).
    pub commit_seconds: Vec<f64>,
    /// The machine's CPU use during each run: how busy its cores were, and how much time
    /// the hypervisor stole, which slows a run without any change on this machine.
    pub cpu: Vec<CpuShare>,
    /// The CPU and disk cost of each run: the benchmark process, the tools it ran, the disk.
    pub usage: Vec<RunUsage>,
}

/// Starts the peers, measures every case at every size and returns the figures in
/// the order they were first taken.
///
/// # Panics
/// When a peer or tool is missing (naming the Debian package), or a copy fails or comes
/// back with a different SHA-256, because a figure from a broken run would mislead.
pub fn run(options: &Options) -> Vec<Measurement> {
    let share_dir = options.work_dir.join("share");
    let store_dir = options.work_dir.join("store");
    let copy_dir = options.work_dir.join("copies");
    for dir in [&share_dir, &store_dir, &copy_dir] {
        fs::create_dir_all(dir).expect("create benchmark folder");
    }
    let smbd = Smbd::start(&share_dir);
    let sshd = Sshd::start();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let peers = Peers {
        smbd: &smbd,
        sshd: &sshd,
        runtime: &runtime,
        store: Store::open(&store_dir).expect("open store"),
        copy_dir: &copy_dir,
        smb_credentials: write_smb_credentials(&options.work_dir, &smbd),
    };

    let mut measurements: Vec<Measurement> = Vec::new();
    for &size in &options.sizes {
        let file_name = format!("bench-{size}.bak");
        let source_path = share_dir.join(&file_name);
        let expected_sha256 = generate_file(&source_path, size);
        let file = BenchFile {
            name: &file_name,
            path: &source_path,
            size,
            sha256: &expected_sha256,
        };
        for round in 0..options.warmup_rounds + options.repeats {
            let warmup = round < options.warmup_rounds;
            for case in CASES.iter().filter(|case| options.selects(case.name)) {
                if case.kind != Kind::Hash && options.drop_caches {
                    drop_page_cache();
                }
                if case.kind == Kind::Hash {
                    warm_page_cache(&source_path);
                }
                let ticks_before = CpuTicks::read();
                let usage_before = UsageReading::take(&options.work_dir);
                let started = Instant::now();
                let sample = (case.run)(&peers, &file);
                let usage = usage_before.usage_until(
                    &UsageReading::take(&options.work_dir),
                    started.elapsed().as_secs_f64(),
                );
                let cpu = ticks_before.share_until(&CpuTicks::read());
                if warmup {
                    continue;
                }
                record(&mut measurements, case, size, sample, (cpu, usage));
            }
        }
        fs::remove_file(&source_path).expect("remove benchmark file");
    }
    measurements
}

impl Options {
    fn selects(&self, case: &str) -> bool {
        self.case_filter.is_empty() || self.case_filter.iter().any(|text| case.contains(text))
    }
}

/// One file on the share, with the hash every copy must have.
struct BenchFile<'a> {
    name: &'a str,
    path: &'a Path,
    size: u64,
    sha256: &'a str,
}

/// Everything a case needs to run.
struct Peers<'a> {
    smbd: &'a Smbd,
    sshd: &'a Sshd,
    runtime: &'a tokio::runtime::Runtime,
    store: Store,
    copy_dir: &'a Path,
    smb_credentials: PathBuf,
}

/// The result of one run.
struct Sample {
    seconds: f64,
    peak_rss_kib: Option<u64>,
    commit_seconds: Option<f64>,
}

struct Case {
    name: &'static str,
    kind: Kind,
    run: fn(&Peers, &BenchFile) -> Sample,
}

const CASES: &[Case] = &[
    Case {
        name: "bakfleet SMB",
        kind: Kind::Bakfleet,
        run: bakfleet_smb,
    },
    Case {
        name: "smbclient get",
        kind: Kind::RawCopy,
        run: smbclient_get,
    },
    Case {
        name: "smbclient get + sha256sum",
        kind: Kind::RawCopyHashed,
        run: smbclient_get_hashed,
    },
    Case {
        name: "smbclient get + fdatasync",
        kind: Kind::RawCopySynced,
        run: smbclient_get_synced,
    },
    Case {
        name: "bakfleet SFTP",
        kind: Kind::Bakfleet,
        run: bakfleet_sftp,
    },
    Case {
        name: "ssh cat",
        kind: Kind::RawCopy,
        run: ssh_cat,
    },
    Case {
        name: "ssh cat + sha256sum",
        kind: Kind::RawCopyHashed,
        run: ssh_cat_hashed,
    },
    Case {
        name: "ssh cat + fdatasync",
        kind: Kind::RawCopySynced,
        run: ssh_cat_synced,
    },
    Case {
        name: "sftp get",
        kind: Kind::RawCopy,
        run: sftp_get,
    },
    Case {
        name: "sftp get + sha256sum",
        kind: Kind::RawCopyHashed,
        run: sftp_get_hashed,
    },
    Case {
        name: "bakfleet SHA-256",
        kind: Kind::Hash,
        run: bakfleet_hash,
    },
    Case {
        name: "openssl dgst -sha256",
        kind: Kind::Hash,
        run: openssl_hash,
    },
    Case {
        name: "sha256sum",
        kind: Kind::Hash,
        run: sha256sum_hash,
    },
    Case {
        name: "disk write + fdatasync",
        kind: Kind::DiskWrite,
        run: disk_write,
    },
];

fn record(
    measurements: &mut Vec<Measurement>,
    case: &Case,
    size: u64,
    sample: Sample,
    (cpu, usage): (CpuShare, RunUsage),
) {
    let position = measurements
        .iter()
        .position(|m| m.case == case.name && m.size == size);
    let index = position.unwrap_or_else(|| {
        measurements.push(Measurement {
            case: case.name,
            kind: case.kind,
            size,
            seconds: Vec::new(),
            peak_rss_kib: Vec::new(),
            commit_seconds: Vec::new(),
            cpu: Vec::new(),
            usage: Vec::new(),
        });
        measurements.len() - 1
    });
    let measurement = &mut measurements[index];
    measurement.seconds.push(sample.seconds);
    measurement.peak_rss_kib.extend(sample.peak_rss_kib);
    measurement.commit_seconds.extend(sample.commit_seconds);
    measurement.cpu.push(cpu);
    measurement.usage.push(usage);
}

/// The machine's CPU time so far, from the first line of /proc/stat, in ticks.
struct CpuTicks {
    total: u64,
    idle: u64,
    steal: u64,
}

/// Percent of the machine's CPU time, all cores together, over one run.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuShare {
    /// Time neither idle nor waiting for the disk.
    pub busy: f64,
    /// Time the hypervisor gave to other guests.
    pub steal: f64,
    /// CPU seconds the machine spent busy, all cores together.
    pub busy_seconds: f64,
}

impl CpuTicks {
    fn read() -> CpuTicks {
        let stat = fs::read_to_string("/proc/stat").unwrap_or_default();
        let ticks: Vec<u64> = stat
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .filter_map(|field| field.parse().ok())
            .collect();
        let field = |index: usize| ticks.get(index).copied().unwrap_or(0);
        // The fields are user, nice, system, idle, iowait, irq, softirq and steal. Guest
        // time is counted inside user, so it is left out.
        CpuTicks {
            total: ticks.iter().take(8).sum(),
            idle: field(3) + field(4),
            steal: field(7),
        }
    }

    /// Returns the shares of the time from this reading to `later`.
    fn share_until(&self, later: &CpuTicks) -> CpuShare {
        let total = later.total.saturating_sub(self.total);
        if total == 0 {
            return CpuShare::default();
        }
        let percent = |ticks: u64| ticks as f64 * 100.0 / total as f64;
        let idle = later.idle.saturating_sub(self.idle);
        let steal = later.steal.saturating_sub(self.steal);
        let busy = total.saturating_sub(idle).saturating_sub(steal);
        CpuShare {
            busy: percent(busy),
            steal: percent(steal),
            busy_seconds: busy as f64 / usage::ticks_per_second(),
        }
    }
}

fn bakfleet_smb(peers: &Peers, file: &BenchFile) -> Sample {
    let settings = SmbSettings {
        host: "127.0.0.1".to_string(),
        port: peers.smbd.port,
        share: peers.smbd.share.clone(),
        user: peers.smbd.user.clone(),
        password: peers.smbd.password.clone(),
        domain: None,
        timeout: std::time::Duration::from_secs(60),
    };
    bakfleet_fetch(peers, file, file.name, || Source::smb(settings))
}

fn bakfleet_sftp(peers: &Peers, file: &BenchFile) -> Sample {
    let settings = SftpSettings {
        host: "127.0.0.1".to_string(),
        port: peers.sshd.port,
        user: peers.sshd.user.clone(),
        key_file: peers.sshd.key_path.clone(),
        known_hosts: peers.sshd.known_hosts_path.clone(),
        timeout: std::time::Duration::from_secs(60),
    };
    let remote = file.path.to_str().expect("UTF-8 benchmark path");
    bakfleet_fetch(peers, file, remote, || Source::sftp(settings))
}

/// Times opening the source, the fetch into the store and the commit, as one job does,
/// and checks the stored hash.
fn bakfleet_fetch<F, Fut>(peers: &Peers, file: &BenchFile, remote: &str, open: F) -> Sample
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<Source, bakfleet::transfer::TransferError>>,
{
    let rel_path = format!(
        "bench/db/full/{}-{}",
        uuid::Uuid::new_v4().simple(),
        file.name
    );
    reset_peak_rss();
    let started = Instant::now();
    let (stored, commit_seconds) = peers.runtime.block_on(async {
        let source = open().await.expect("open bakfleet source");
        let mut sink = peers
            .store
            .begin(&rel_path)
            .await
            .expect("begin store file");
        source
            .fetch(remote, &mut sink, &mut |_| {})
            .await
            .expect("bakfleet fetch");
        let committing = Instant::now();
        let stored = sink.commit().await.expect("commit store file");
        (stored, committing.elapsed().as_secs_f64())
    });
    let seconds = started.elapsed().as_secs_f64();
    let peak_rss_kib = read_peak_rss_kib();
    assert_eq!(stored.size, file.size, "bakfleet stored a different size");
    assert_eq!(
        stored.sha256, file.sha256,
        "bakfleet stored a different hash"
    );
    fs::remove_file(peers.store.absolute(&rel_path)).expect("remove stored copy");
    Sample {
        seconds,
        peak_rss_kib,
        commit_seconds: Some(commit_seconds),
    }
}

fn smbclient_get(peers: &Peers, file: &BenchFile) -> Sample {
    raw_copy(peers, file, Finish::Nothing, smbclient_command)
}

fn smbclient_get_hashed(peers: &Peers, file: &BenchFile) -> Sample {
    raw_copy(peers, file, Finish::Hash, smbclient_command)
}

fn smbclient_get_synced(peers: &Peers, file: &BenchFile) -> Sample {
    raw_copy(peers, file, Finish::Sync, smbclient_command)
}

fn ssh_cat(peers: &Peers, file: &BenchFile) -> Sample {
    raw_copy(peers, file, Finish::Nothing, ssh_cat_command)
}

fn ssh_cat_hashed(peers: &Peers, file: &BenchFile) -> Sample {
    raw_copy(peers, file, Finish::Hash, ssh_cat_command)
}

fn ssh_cat_synced(peers: &Peers, file: &BenchFile) -> Sample {
    raw_copy(peers, file, Finish::Sync, ssh_cat_command)
}

fn sftp_get(peers: &Peers, file: &BenchFile) -> Sample {
    raw_copy(peers, file, Finish::Nothing, sftp_get_command)
}

fn sftp_get_hashed(peers: &Peers, file: &BenchFile) -> Sample {
    raw_copy(peers, file, Finish::Hash, sftp_get_command)
}

/// The step a raw copy takes after the tool exits, inside the timed span.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Finish {
    /// Nothing, as a script would: the page cache writes the copy back later.
    Nothing,
    /// `sha256sum` of the copy.
    Hash,
    /// `fdatasync` of the copy, the durability bakfleet's commit gives.
    Sync,
}

/// Times a raw copy to a new file and its `finish` step.
fn raw_copy(
    peers: &Peers,
    file: &BenchFile,
    finish: Finish,
    command: fn(&Peers, &BenchFile, &Path) -> Command,
) -> Sample {
    let target = peers.copy_dir.join(file.name);
    let started = Instant::now();
    run_tool(command(peers, file, &target));
    let digest = (finish == Finish::Hash).then(|| sha256sum(&target));
    if finish == Finish::Sync {
        let copy = fs::File::open(&target).expect("open raw copy");
        copy.sync_data().expect("fdatasync raw copy");
    }
    let seconds = started.elapsed().as_secs_f64();
    if let Some(digest) = digest {
        assert_eq!(digest, file.sha256, "raw copy has a different hash");
    }
    let copied = fs::metadata(&target).expect("raw copy exists").len();
    assert_eq!(copied, file.size, "raw copy has a different size");
    fs::remove_file(&target).expect("remove raw copy");
    Sample {
        seconds,
        peak_rss_kib: None,
        commit_seconds: None,
    }
}

/// `smbclient get` with the signing bakfleet requires and an empty configuration.
fn smbclient_command(peers: &Peers, file: &BenchFile, target: &Path) -> Command {
    let mut command = Command::new("smbclient");
    command
        .args(["--configfile", "/dev/null", "--port"])
        .arg(peers.smbd.port.to_string())
        .arg("--authentication-file")
        .arg(&peers.smb_credentials)
        .arg("--client-protection=sign")
        .arg(format!("//127.0.0.1/{}", peers.smbd.share))
        .arg("--command")
        .arg(format!("get \"{}\" \"{}\"", file.name, target.display()));
    command
}

fn ssh_cat_command(peers: &Peers, file: &BenchFile, target: &Path) -> Command {
    let output = fs::File::create(target).expect("create raw copy");
    let mut command = Command::new("ssh");
    command
        .args(ssh_options(peers.sshd))
        .arg("-p")
        .arg(peers.sshd.port.to_string())
        .arg(format!("{}@127.0.0.1", peers.sshd.user))
        .arg("cat")
        .arg(file.path)
        .stdout(output);
    command
}

/// `sftp` in batch mode, whose `get` keeps 64 requests of 32 KiB in flight by default.
fn sftp_get_command(peers: &Peers, file: &BenchFile, target: &Path) -> Command {
    let batch = target.with_extension("sftp-batch");
    fs::write(
        &batch,
        format!("get \"{}\" \"{}\"\n", file.path.display(), target.display()),
    )
    .expect("write sftp batch file");
    let mut command = Command::new("sftp");
    command
        .args(ssh_options(peers.sshd))
        .arg("-q")
        .arg("-b")
        .arg(&batch)
        .arg("-P")
        .arg(peers.sshd.port.to_string())
        .arg(format!("{}@127.0.0.1", peers.sshd.user));
    command
}

fn ssh_options(sshd: &Sshd) -> Vec<String> {
    vec![
        "-i".to_string(),
        sshd.key_path.display().to_string(),
        "-o".to_string(),
        format!("UserKnownHostsFile={}", sshd.known_hosts_path.display()),
        "-o".to_string(),
        "StrictHostKeyChecking=yes".to_string(),
        "-o".to_string(),
        "BatchMode=yes".to_string(),
        "-c".to_string(),
        SSH_CIPHER.to_string(),
    ]
}

fn bakfleet_hash(_peers: &Peers, file: &BenchFile) -> Sample {
    let started = Instant::now();
    let (size, digest) = hash_file_at(file.path).expect("hash benchmark file");
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(size, file.size);
    assert_eq!(digest, file.sha256);
    Sample {
        seconds,
        peak_rss_kib: None,
        commit_seconds: None,
    }
}

fn openssl_hash(_peers: &Peers, file: &BenchFile) -> Sample {
    let started = Instant::now();
    let mut command = Command::new("openssl");
    command.args(["dgst", "-sha256", "-r"]).arg(file.path);
    let output = run_tool(command);
    let seconds = started.elapsed().as_secs_f64();
    assert!(output.starts_with(file.sha256), "openssl printed {output}");
    Sample {
        seconds,
        peak_rss_kib: None,
        commit_seconds: None,
    }
}

/// Writes `file.size` bytes in 4 MiB writes to a new file beside the raw copies and
/// `fdatasync`s it. The bytes are not zeros, in case the storage below compresses them.
fn disk_write(peers: &Peers, file: &BenchFile) -> Sample {
    const CHUNK: usize = 4 << 20;
    let chunk: Vec<u8> = (0..CHUNK as u64)
        .map(|index| (index.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let target = peers.copy_dir.join(file.name);
    let started = Instant::now();
    let mut copy = fs::File::create(&target).expect("create disk write file");
    let mut left = file.size;
    while left > 0 {
        let length = left.min(CHUNK as u64) as usize;
        copy.write_all(&chunk[..length])
            .expect("write disk write file");
        left -= length as u64;
    }
    copy.sync_data().expect("fdatasync disk write file");
    let seconds = started.elapsed().as_secs_f64();
    fs::remove_file(&target).expect("remove disk write file");
    Sample {
        seconds,
        peak_rss_kib: None,
        commit_seconds: None,
    }
}

fn sha256sum_hash(_peers: &Peers, file: &BenchFile) -> Sample {
    let started = Instant::now();
    let digest = sha256sum(file.path);
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(digest, file.sha256);
    Sample {
        seconds,
        peak_rss_kib: None,
        commit_seconds: None,
    }
}

fn sha256sum(path: &Path) -> String {
    let mut command = Command::new("sha256sum");
    command.arg(path);
    let output = run_tool(command);
    output
        .split_whitespace()
        .next()
        .expect("sha256sum prints a digest")
        .to_string()
}

/// Runs a tool to its end and returns its standard output, or panics with its messages
/// and, when it is missing, the Debian package to install.
fn run_tool(mut command: Command) -> String {
    let program = command.get_program().to_string_lossy().into_owned();
    // `output` captures standard output unless the command already sends it elsewhere,
    // as `ssh cat` does to its copy.
    let output = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| {
            panic!(
                "cannot start {program}: {error}; install it with `apt-get install {}`",
                debian_package(&program)
            )
        });
    assert!(
        output.status.success(),
        "{program} failed with {}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn debian_package(program: &str) -> &'static str {
    match program {
        "smbclient" => "smbclient",
        "ssh" | "sftp" => "openssh-client",
        "openssl" => "openssl",
        _ => "coreutils",
    }
}

/// Writes an smbclient credentials file for the benchmark's share account.
fn write_smb_credentials(dir: &Path, smbd: &Smbd) -> PathBuf {
    use std::os::unix::fs::OpenOptionsExt;

    let path = dir.join("smb-credentials");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .expect("create credentials file");
    write!(
        file,
        "username = {}\npassword = {}\n",
        smbd.user, smbd.password
    )
    .expect("write credentials file");
    path
}

/// Writes `size` pseudo-random bytes (xorshift64, so compression on the wire gains
/// nothing) to `path` in blocks, makes them durable and returns their SHA-256 in hex.
pub fn generate_file(path: &Path, size: u64) -> String {
    use sha2::{Digest, Sha256};

    let mut file = fs::File::create(path).expect("create benchmark file");
    let mut hasher = Sha256::new();
    let mut state = 0x2545_f491_4f6c_dd1du64 ^ size;
    let mut block = vec![0u8; GENERATE_BLOCK_BYTES];
    let mut left = size;
    while left > 0 {
        for word in block.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        let count = left.min(block.len() as u64) as usize;
        file.write_all(&block[..count])
            .expect("write benchmark file");
        hasher.update(&block[..count]);
        left -= count as u64;
    }
    file.sync_all().expect("sync benchmark file");
    hex::encode(hasher.finalize())
}

/// Writes dirty pages back and drops the clean ones, so the next read comes from disk.
/// A failure (not root, or a container that forbids it) is printed, and the run goes on
/// with cached reads.
fn drop_page_cache() {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    if let Err(error) = fs::write("/proc/sys/vm/drop_caches", "3\n") {
        eprintln!("cannot drop the page cache: {error}");
    }
}

/// Reads the file once so a hashing run measures the hash and not the disk.
fn warm_page_cache(path: &Path) {
    let mut file = fs::File::open(path).expect("open benchmark file");
    let mut buffer = vec![0u8; 1 << 20];
    while file.read(&mut buffer).expect("read benchmark file") > 0 {}
}

/// Resets this process's peak RSS (`VmHWM`) to its current RSS. Linux supports it
/// since 4.0; where it fails, the peak covers the whole process life so far.
fn reset_peak_rss() {
    let _ = fs::write("/proc/self/clear_refs", "5");
}

/// Returns `VmHWM` of this process in KiB.
fn read_peak_rss_kib() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| {
        line.strip_prefix("VmHWM:")?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse()
            .ok()
    })
}

/// Tells whether the page cache can be dropped here.
pub fn can_drop_caches() -> bool {
    fs::OpenOptions::new()
        .write(true)
        .open("/proc/sys/vm/drop_caches")
        .is_ok()
}

/// Returns the best (minimum) and the median of `values`.
pub fn best_and_median(values: &[f64]) -> (f64, f64) {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    (sorted[0], sorted[sorted.len() / 2])
}

/// Formats the figures as Markdown tables: one per size, then the ratios against the
/// targets.
pub fn render_markdown(measurements: &[Measurement]) -> String {
    let mut text = String::new();
    let mut sizes: Vec<u64> = measurements.iter().map(|m| m.size).collect();
    sizes.dedup();
    for size in sizes {
        let at_size: Vec<&Measurement> = measurements.iter().filter(|m| m.size == size).collect();
        text.push_str(&render_size_table(size, &at_size));
        text.push_str(&render_ratios(&at_size));
    }
    text
}

fn render_size_table(size: u64, measurements: &[&Measurement]) -> String {
    let runs = measurements.first().map_or(0, |m| m.seconds.len());
    let mut text = format!(
        "\n#### {} ({runs} runs per case)\n\n\
         | case | kind | best s | median s | each run s | best MiB/s | median MiB/s | bakfleet peak RSS MiB | commit s (median) |\n\
         | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
        size_label(size)
    );
    for measurement in measurements {
        let (best, median) = best_and_median(&measurement.seconds);
        let rss = measurement
            .peak_rss_kib
            .iter()
            .max()
            .map_or("".to_string(), |kib| format!("{:.0}", *kib as f64 / 1024.0));
        let each_run: Vec<String> = measurement
            .seconds
            .iter()
            .map(|seconds| format!("{seconds:.2}"))
            .collect();
        text.push_str(&format!(
            "| {} | {} | {best:.2} | {median:.2} | {} | {:.0} | {:.0} | {rss} | {} |\n",
            measurement.case,
            measurement.kind.label(),
            each_run.join(" "),
            mib_per_s(size, best),
            mib_per_s(size, median),
            median_text(&measurement.commit_seconds, 2),
        ));
    }
    text.push_str(&render_usage_table(measurements));
    text
}

/// Renders the second table of a size: the CPU and disk cost of each case's runs, as
/// medians over the runs (steal as the maximum), which tell what set their pace.
fn render_usage_table(measurements: &[&Measurement]) -> String {
    let mut text = String::from(
        "\n| case | benchmark process CPU s | its busiest thread CPU s | tools' CPU s | servers' and kernel's CPU s | machine CPU s, each run | CPU busy % | CPU steal % (max) | disk busy % | disk read MiB | disk written MiB |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for measurement in measurements {
        let of_usage = |pick: fn(&RunUsage) -> Option<f64>| -> Vec<f64> {
            measurement.usage.iter().filter_map(pick).collect()
        };
        let process_cpu = of_usage(|usage| Some(usage.process_cpu));
        let tools_cpu = of_usage(|usage| Some(usage.tools_cpu));
        // Only bakfleet's cases run their work on the benchmark's own threads.
        let busiest = if measurement.kind == Kind::Bakfleet {
            of_usage(|usage| Some(usage.busiest_thread_cpu))
        } else {
            Vec::new()
        };
        let busy: Vec<f64> = measurement.cpu.iter().map(|share| share.busy).collect();
        // What the machine spent beyond this process and its tools: smbd, sshd and its
        // children, and the kernel's threads (writeback, network).
        let others: Vec<f64> = measurement
            .cpu
            .iter()
            .zip(&measurement.usage)
            .map(|(share, usage)| {
                (share.busy_seconds - usage.process_cpu - usage.tools_cpu).max(0.0)
            })
            .collect();
        let steal = measurement
            .cpu
            .iter()
            .map(|share| share.steal)
            .fold(0.0, f64::max);
        let each_run: Vec<String> = measurement
            .cpu
            .iter()
            .map(|share| format!("{:.2}", share.busy_seconds))
            .collect();
        text.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {steal:.1} | {} | {} | {} |\n",
            measurement.case,
            median_text(&process_cpu, 2),
            median_text(&busiest, 2),
            median_text(&tools_cpu, 2),
            median_text(&others, 2),
            each_run.join(" "),
            median_text(&busy, 0),
            median_text(&of_usage(|usage| usage.disk_busy), 0),
            median_text(&of_usage(|usage| usage.disk_read_mib), 0),
            median_text(&of_usage(|usage| usage.disk_written_mib), 0),
        ));
    }
    text
}

/// Formats the median of `values` with `decimals` digits, or nothing when there are none.
fn median_text(values: &[f64], decimals: usize) -> String {
    if values.is_empty() {
        String::new()
    } else {
        format!("{:.*}", decimals, best_and_median(values).1)
    }
}

/// Ratios of throughput (best runs): bakfleet over each raw copy (target >= 0.95),
/// bakfleet over each copy followed by `sha256sum` (target >= 1.3), and bakfleet's
/// hasher over `openssl dgst` (target >= 1.0). The ratios over a copy followed by
/// `fdatasync` have no target; they show what durability costs the raw copy.
fn render_ratios(measurements: &[&Measurement]) -> String {
    let best = |name: &str| {
        measurements
            .iter()
            .find(|m| m.case == name)
            .map(|m| best_and_median(&m.seconds).0)
    };
    let pairs = [
        ("bakfleet SMB", "smbclient get", 0.95),
        ("bakfleet SMB", "smbclient get + sha256sum", 1.3),
        ("bakfleet SMB", "smbclient get + fdatasync", 0.0),
        ("bakfleet SFTP", "ssh cat", 0.95),
        ("bakfleet SFTP", "ssh cat + sha256sum", 1.3),
        ("bakfleet SFTP", "ssh cat + fdatasync", 0.0),
        ("bakfleet SFTP", "sftp get", 0.95),
        ("bakfleet SFTP", "sftp get + sha256sum", 1.3),
        ("bakfleet SHA-256", "openssl dgst -sha256", 1.0),
    ];
    let mut text = String::from(
        "\n| throughput ratio (best runs) | ratio | target | met |\n| --- | ---: | ---: | --- |\n",
    );
    for (ours, theirs, target) in pairs {
        let (Some(ours_seconds), Some(theirs_seconds)) = (best(ours), best(theirs)) else {
            continue;
        };
        let ratio = theirs_seconds / ours_seconds;
        let row = if target > 0.0 {
            let met = if ratio >= target { "yes" } else { "no" };
            format!("| {ours} / {theirs} | {ratio:.2} | >= {target} | {met} |\n")
        } else {
            format!("| {ours} / {theirs} | {ratio:.2} | none | |\n")
        };
        text.push_str(&row);
    }
    text
}

fn mib_per_s(size: u64, seconds: f64) -> f64 {
    size as f64 / (1024.0 * 1024.0) / seconds.max(1e-9)
}

fn size_label(size: u64) -> String {
    const GIB: u64 = 1 << 30;
    const MIB: u64 = 1 << 20;
    if size >= GIB && size % GIB == 0 {
        format!("{} GiB", size / GIB)
    } else if size >= MIB && size % MIB == 0 {
        format!("{} MiB", size / MIB)
    } else {
        format!("{size} bytes")
    }
}
