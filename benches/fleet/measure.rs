//! Fleet figures: one simulator process hosts every instance, `bakfleet serve` backs them
//! up on a log schedule, and the catalogue's runs give lateness and missed runs, while
//! /proc gives bakfleet's CPU time and peak RSS.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::ConnectOptions;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Password of the `bakfleet` login on every simulated instance.
const SQL_PASSWORD: &str = "Bench-Fleet-Password-1";

/// The environment variable the generated fleet.toml reads the password from.
const PASSWORD_ENV: &str = "BAKFLEET_BENCH_SQL_PASSWORD";

/// The backup folder as every simulated instance names it.
const SERVER_PATH: &str = "/var/opt/mssql/backup";

/// Data size of each simulated database in MiB: the start-up catch-up takes one full
/// of each, so this times the database count is the store's size.
const DATABASE_SIZE_MB: u32 = 1;

/// How long the start-up catch-up may take before the benchmark gives up.
const WARM_UP_LIMIT: Duration = Duration::from_secs(3_600);

/// Settings of one fleet benchmark.
#[derive(Debug, Clone)]
pub struct Options {
    /// Instances, all in one simulator process.
    pub instances: u32,
    /// User databases per instance.
    pub databases_per_instance: u32,
    /// Seconds between log slots; a divisor of 3600, so slots fall on fixed clock times.
    pub interval_seconds: u32,
    /// Slots measured after the catch-up.
    pub slots: u32,
    /// `max_parallel_jobs` and `max_jobs_per_staging` of the generated fleet.toml.
    pub parallel_jobs: usize,
    /// The log schedule's `spread` in seconds, below `interval_seconds`; 0 starts every
    /// instance at the slot.
    pub spread_seconds: u32,
}

impl Options {
    /// Builds the `--small` settings: 20 instances with 2 databases each, a slot every 10 s.
    pub fn small() -> Options {
        Options {
            instances: 20,
            databases_per_instance: 2,
            interval_seconds: 10,
            slots: 1,
            parallel_jobs: 8,
            spread_seconds: 5,
        }
    }

    /// Returns the number of databases in the fleet.
    pub fn databases(&self) -> u64 {
        u64::from(self.instances) * u64::from(self.databases_per_instance)
    }

    /// Returns the six-field cron expression with a slot every `interval_seconds`.
    fn log_schedule(&self) -> String {
        let seconds = self.interval_seconds;
        assert!(
            seconds > 0 && 3600 % seconds == 0,
            "the interval must divide 3600 seconds, got {seconds}"
        );
        if seconds < 60 {
            assert!(
                60 % seconds == 0,
                "an interval under a minute must divide 60, got {seconds}"
            );
            format!("*/{seconds} * * * * *")
        } else {
            assert!(
                seconds % 60 == 0,
                "an interval of a minute or more must be whole minutes, got {seconds}"
            );
            format!("0 */{} * * * *", seconds / 60)
        }
    }
}

/// Figures of one benchmark run.
#[derive(Debug, Clone)]
pub struct FleetFigures {
    pub databases: u64,
    /// Seconds the start-up catch-up took (one full per database).
    pub warm_up_seconds: f64,
    /// Runs of the catch-up and of any slot that fell into it.
    pub warm_up_runs: u64,
    /// The measured slots, oldest first.
    pub slots: Vec<OffsetDateTime>,
    /// Runs expected in the measured slots: one per database and slot.
    pub expected_runs: u64,
    pub succeeded_runs: u64,
    pub failed_runs: u64,
    /// Expected runs with no run row for their slot.
    pub missed_runs: u64,
    /// Start time minus due time (the slot plus the instance's offset) of each measured
    /// run, sorted.
    pub lateness: Vec<Duration>,
    /// The latest finish of a measured run, after its slot.
    pub last_finish_after_slot: Duration,
    /// Measured runs divided by the time from the first slot to the last finish.
    pub runs_per_second: f64,
    /// bakfleet's user and system CPU seconds during the measured slots.
    pub cpu_seconds_measured: f64,
    /// bakfleet's user and system CPU seconds over its whole life.
    pub cpu_seconds_total: f64,
    /// bakfleet's peak resident set (`VmHWM`), in bytes.
    pub peak_rss_bytes: u64,
    /// The simulator's CPU seconds during the measured slots: the backups the simulated
    /// servers write share the two cores with bakfleet.
    pub simulator_cpu_seconds_measured: f64,
    /// The simulator's CPU seconds over its whole life, for scale.
    pub simulator_cpu_seconds: f64,
    /// Catalogue file plus write-ahead log, in bytes.
    pub catalogue_bytes: u64,
    /// Load averages over 1, 5 and 15 minutes at the start and at the end.
    pub load_before: String,
    pub load_after: String,
}

/// Runs the whole benchmark in `work_dir`: simulator, fleet.toml, `bakfleet serve`,
/// warm-up, the measured slots, and the figures from the catalogue and /proc.
pub fn run(bakfleet: &Path, work_dir: &Path, options: &Options) -> FleetFigures {
    raise_open_file_limit();
    let load_before = load_average();
    let simulator_binary = bakfleet.with_file_name("mssql-sim");
    assert!(
        simulator_binary.is_file(),
        "{} is missing: build it with `cargo build -p mssql-sim` in the same profile",
        simulator_binary.display()
    );

    let staging_root = work_dir.join("staging");
    let names: Vec<String> = (0..options.instances)
        .map(|index| format!("sim-{index:04}"))
        .collect();
    for name in &names {
        fs::create_dir_all(staging_root.join(name)).expect("create staging folder");
    }
    let simulator_config = work_dir.join("sim.toml");
    fs::write(
        &simulator_config,
        simulator_toml(&names, &staging_root, options),
    )
    .expect("write sim.toml");
    let (mut simulator, ports) =
        start_simulator(&simulator_binary, &simulator_config, work_dir, names.len());

    let fleet = work_dir.join("fleet.toml");
    fs::write(&fleet, fleet_toml(&ports, &staging_root, options)).expect("write fleet.toml");
    let catalogue = work_dir.join("catalog.db");
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");

    let mut serve = start_serve(bakfleet, &fleet, work_dir);
    let started = Instant::now();
    let warm_up_runs = runtime.block_on(wait_for_warm_up(&catalogue, options, &mut serve));
    let warm_up_seconds = started.elapsed().as_secs_f64();

    let slots = next_slots(OffsetDateTime::now_utc(), options);
    let first_slot = slots[0];
    sleep_until(first_slot);
    let cpu_at_first_slot = cpu_seconds(serve.id());
    let simulator_cpu_at_first_slot = cpu_seconds(simulator.id());
    let measured_end = *slots.last().expect("at least one slot")
        + time::Duration::seconds(i64::from(options.interval_seconds));
    runtime.block_on(wait_for_measured_runs(
        &catalogue,
        &slots,
        options,
        measured_end,
    ));
    let cpu_after = cpu_seconds(serve.id());
    let simulator_cpu_after = cpu_seconds(simulator.id());
    let peak_rss_bytes = peak_rss(serve.id());
    stop_child(&mut serve, "bakfleet serve");
    let simulator_cpu_seconds = cpu_seconds(simulator.id());
    stop_child(&mut simulator, "mssql-sim");

    let runs = runtime.block_on(read_measured_runs(
        &catalogue,
        &slots,
        options.interval_seconds,
    ));
    let mut figures = summarise(options, &slots, &runs);
    figures.warm_up_seconds = warm_up_seconds;
    figures.warm_up_runs = warm_up_runs;
    figures.cpu_seconds_measured = cpu_after - cpu_at_first_slot;
    figures.cpu_seconds_total = cpu_after;
    figures.peak_rss_bytes = peak_rss_bytes;
    figures.simulator_cpu_seconds_measured = simulator_cpu_after - simulator_cpu_at_first_slot;
    figures.simulator_cpu_seconds = simulator_cpu_seconds;
    figures.catalogue_bytes =
        file_size(&catalogue) + file_size(&PathBuf::from(format!("{}-wal", catalogue.display())));
    figures.load_before = load_before;
    figures.load_after = load_average();
    figures
}

fn simulator_toml(names: &[String], staging_root: &Path, options: &Options) -> String {
    let mut text = String::new();
    for name in names {
        text.push_str(&format!(
            "[[instance]]\nname = \"{name}\"\nlisten = \"127.0.0.1:0\"\nplatform = \"linux\"\n\
             edition = \"developer\"\n\n[[instance.login]]\nname = \"bakfleet\"\n\
             password = \"{SQL_PASSWORD}\"\nsysadmin = true\n\n[[instance.path_map]]\n\
             server = \"{SERVER_PATH}\"\nlocal = {:?}\n",
            staging_root.join(name).display().to_string()
        ));
        for database in 0..options.databases_per_instance {
            text.push_str(&format!(
                "\n[[instance.database]]\nname = \"db_{database:03}\"\n\
                 size_mb = {DATABASE_SIZE_MB}\nrecovery_model = \"FULL\"\n"
            ));
        }
        text.push('\n');
    }
    text
}

/// Writes fleet.toml: log backups only (the first of each database becomes a full),
/// local staging, and job limits from `options`.
fn fleet_toml(ports: &[(String, u16)], staging_root: &Path, options: &Options) -> String {
    let listen_port = free_port();
    let mut text = format!(
        "[service]\nstore_dir = \"store\"\ncatalog = \"catalog.db\"\n\
         listen = \"127.0.0.1:{listen_port}\"\nmax_parallel_jobs = {jobs}\n\
         max_jobs_per_instance = 2\nmax_jobs_per_staging = {jobs}\n\
         min_store_free_bytes = 0\n\n\
         [defaults]\nschedule.full = \"off\"\nschedule.diff = \"off\"\n\
         schedule.log = \"{schedule}\"\nschedule.spread = \"{spread}\"\n\
         change_backup_type = true\ncompression = true\n\n",
        jobs = options.parallel_jobs,
        schedule = options.log_schedule(),
        spread = if options.spread_seconds == 0 {
            "off".to_string()
        } else {
            format!("{}s", options.spread_seconds)
        },
    );
    for (name, port) in ports {
        text.push_str(&format!(
            "[[instance]]\nname = \"{name}\"\nhost = \"127.0.0.1\"\nport = {port}\n\
             auth = {{ kind = \"sql\", user = \"bakfleet\", password_env = \"{PASSWORD_ENV}\" }}\n\
             tls = {{ encrypt = \"not_supported\" }}\n\
             staging = {{ local = {{ server_path = \"{SERVER_PATH}\", dir = {:?} }} }}\n\n",
            staging_root.join(name).display().to_string()
        ));
    }
    text
}

/// Starts the simulator and reads one `listening NAME ADDR` line per instance; it keeps
/// its standard output open, so exactly `instances` lines are read.
fn start_simulator(
    binary: &Path,
    config: &Path,
    work_dir: &Path,
    instances: usize,
) -> (Child, Vec<(String, u16)>) {
    let log = fs::File::create(work_dir.join("mssql-sim.log")).expect("create simulator log");
    let mut child = Command::new(binary)
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("start mssql-sim");
    let stdout = child.stdout.take().expect("simulator stdout");
    let mut ports = Vec::new();
    let mut lines = BufReader::new(stdout).lines();
    while ports.len() < instances {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("mssql-sim exited early; see mssql-sim.log"))
            .expect("read the simulator's output");
        let mut words = line.split_whitespace();
        let (Some("listening"), Some(name), Some(address)) =
            (words.next(), words.next(), words.next())
        else {
            panic!("unexpected simulator output {line:?}");
        };
        let port = address
            .rsplit(':')
            .next()
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("no port in simulator output {line:?}"));
        ports.push((name.to_string(), port));
    }
    (child, ports)
}

fn start_serve(bakfleet: &Path, fleet: &Path, work_dir: &Path) -> Child {
    let log = fs::File::create(work_dir.join("bakfleet.log")).expect("create bakfleet log");
    Command::new(bakfleet)
        .arg("serve")
        .arg("--fleet")
        .arg(fleet)
        .env(PASSWORD_ENV, SQL_PASSWORD)
        .env_remove("RUST_LOG")
        .stdout(log.try_clone().expect("clone bakfleet log"))
        .stderr(log)
        .spawn()
        .expect("start bakfleet serve")
}

/// Waits until every database has a finished run and no run has been running for two
/// polls in a row, and returns the number of runs by then.
async fn wait_for_warm_up(catalogue: &Path, options: &Options, serve: &mut Child) -> u64 {
    let started = Instant::now();
    let mut quiet_polls = 0;
    loop {
        if let Some(status) = serve.try_wait().expect("poll bakfleet serve") {
            panic!("bakfleet serve exited during the warm-up with {status}; see bakfleet.log");
        }
        assert!(
            started.elapsed() < WARM_UP_LIMIT,
            "the start-up catch-up did not finish within {WARM_UP_LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        let Some((finished, running)) = run_counts(catalogue).await else {
            continue;
        };
        if finished >= options.databases() && running == 0 {
            quiet_polls += 1;
            if quiet_polls >= 2 {
                return finished;
            }
        } else {
            quiet_polls = 0;
        }
    }
}

/// Returns the number of finished and of running runs, or `None` while bakfleet has not
/// created the catalogue yet.
async fn run_counts(catalogue: &Path) -> Option<(u64, u64)> {
    if !catalogue.exists() {
        return None;
    }
    let mut connection = open_read_only(catalogue).await.ok()?;
    let counts: (i64, i64) = sqlx::query_as(
        "SELECT COALESCE(SUM(status <> 'running'), 0), COALESCE(SUM(status = 'running'), 0)
         FROM runs",
    )
    .fetch_one(&mut connection)
    .await
    .ok()?;
    Some((counts.0 as u64, counts.1 as u64))
}

/// Waits until every run of the measured slots has finished, or until one interval
/// after the last measured slot ends, so a slow run counts as late rather than missing.
async fn wait_for_measured_runs(
    catalogue: &Path,
    slots: &[OffsetDateTime],
    options: &Options,
    measured_end: OffsetDateTime,
) {
    let deadline = measured_end + time::Duration::seconds(i64::from(options.interval_seconds));
    let expected = options.databases() * slots.len() as u64;
    while OffsetDateTime::now_utc() < deadline {
        let runs = read_measured_runs(catalogue, slots, options.interval_seconds).await;
        let done = runs.iter().filter(|run| run.finished_at.is_some()).count() as u64;
        if done >= expected {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// One run of a measured slot.
#[derive(Debug, Clone)]
pub struct MeasuredRun {
    /// The measured slot the run serves.
    pub slot: OffsetDateTime,
    /// The slot the run recorded: the measured slot plus its instance's offset.
    pub due: OffsetDateTime,
    pub status: String,
    pub started_at: OffsetDateTime,
    pub finished_at: Option<OffsetDateTime>,
}

/// Reads the runs whose slot lies within the measured slots. A slot is matched by range,
/// not equality, because each instance records the slot plus its spread offset.
async fn read_measured_runs(
    catalogue: &Path,
    slots: &[OffsetDateTime],
    interval_seconds: u32,
) -> Vec<MeasuredRun> {
    let mut connection = open_read_only(catalogue).await.expect("open the catalogue");
    let rows: Vec<(String, String, String, Option<String>)> = sqlx::query_as(
        "SELECT slot, status, started_at, finished_at FROM runs
         WHERE slot IS NOT NULL AND slot >= ?",
    )
    .bind(format_utc(slots[0]))
    .fetch_all(&mut connection)
    .await
    .expect("read the runs of the measured slots");
    let parse = |text: &str| {
        OffsetDateTime::parse(text, &Rfc3339)
            .unwrap_or_else(|error| panic!("invalid time {text:?} in the catalogue: {error}"))
    };
    rows.into_iter()
        .map(|(slot, status, started_at, finished_at)| MeasuredRun {
            slot: parse(&slot),
            due: parse(&slot),
            status,
            started_at: parse(&started_at),
            finished_at: finished_at.as_deref().map(parse),
        })
        .filter_map(|mut run| {
            let slot = slots.iter().rev().find(|slot| **slot <= run.slot)?;
            if run.slot - *slot >= time::Duration::seconds(i64::from(interval_seconds)) {
                return None;
            }
            run.slot = *slot;
            Some(run)
        })
        .collect()
}

async fn open_read_only(catalogue: &Path) -> Result<sqlx::SqliteConnection, sqlx::Error> {
    SqliteConnectOptions::new()
        .filename(catalogue)
        .read_only(true)
        .connect()
        .await
}

/// Computes the figures that come from the catalogue's runs.
pub fn summarise(
    options: &Options,
    slots: &[OffsetDateTime],
    runs: &[MeasuredRun],
) -> FleetFigures {
    let expected_runs = options.databases() * slots.len() as u64;
    let count = |status: &str| runs.iter().filter(|run| run.status == status).count() as u64;
    let mut lateness: Vec<Duration> = runs
        .iter()
        .map(|run| positive(run.started_at - run.due))
        .collect();
    lateness.sort();
    let last_finish_after_slot = runs
        .iter()
        .filter_map(|run| {
            run.finished_at
                .map(|finished| positive(finished - run.slot))
        })
        .max()
        .unwrap_or_default();
    let busy = runs
        .iter()
        .filter_map(|run| run.finished_at)
        .max()
        .map(|last| positive(last - slots[0]).as_secs_f64())
        .unwrap_or(0.0);
    FleetFigures {
        databases: options.databases(),
        warm_up_seconds: 0.0,
        warm_up_runs: 0,
        slots: slots.to_vec(),
        expected_runs,
        succeeded_runs: count("succeeded"),
        failed_runs: count("failed"),
        missed_runs: expected_runs.saturating_sub(runs.len() as u64),
        lateness,
        last_finish_after_slot,
        runs_per_second: if busy > 0.0 {
            runs.len() as f64 / busy
        } else {
            0.0
        },
        cpu_seconds_measured: 0.0,
        cpu_seconds_total: 0.0,
        peak_rss_bytes: 0,
        simulator_cpu_seconds_measured: 0.0,
        simulator_cpu_seconds: 0.0,
        catalogue_bytes: 0,
        load_before: String::new(),
        load_after: String::new(),
    }
}

fn positive(duration: time::Duration) -> Duration {
    Duration::try_from(duration).unwrap_or_default()
}

/// Returns the latency below which `percent` of the sorted `samples` lie.
pub fn percentile(samples: &[Duration], percent: f64) -> Option<Duration> {
    if samples.is_empty() {
        return None;
    }
    let rank = ((percent / 100.0) * samples.len() as f64).ceil() as usize;
    Some(samples[rank.clamp(1, samples.len()) - 1])
}

/// Returns `options.slots` slot times, the first at least two seconds after `now`.
fn next_slots(now: OffsetDateTime, options: &Options) -> Vec<OffsetDateTime> {
    let interval = i64::from(options.interval_seconds);
    let earliest = now.unix_timestamp() + 2;
    let first = (earliest + interval - 1) / interval * interval;
    (0..i64::from(options.slots))
        .map(|index| {
            OffsetDateTime::from_unix_timestamp(first + index * interval)
                .expect("slot times are in range")
        })
        .collect()
}

fn sleep_until(at: OffsetDateTime) {
    let wait = at - OffsetDateTime::now_utc();
    if let Ok(wait) = Duration::try_from(wait) {
        std::thread::sleep(wait);
    }
}

/// Reads the user and system CPU seconds of a process from /proc/PID/stat.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_else(|error| panic!("cannot read /proc/{pid}/stat: {error}"));
    // Fields after the command name, which is in parentheses and may contain spaces:
    // state is field 3, utime field 14 and stime field 15.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |index: usize| -> f64 {
        fields
            .get(index)
            .and_then(|field| field.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("unexpected /proc/{pid}/stat: {stat}")) as f64
    };
    // SAFETY: sysconf only reads a configuration value.
    let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(11) + ticks(12)) / ticks_per_second
}

/// Reads `VmHWM`, the peak resident set, of a process in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|error| panic!("cannot read /proc/{pid}/status: {error}"));
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| {
            value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map(|kib| kib * 1024)
        .unwrap_or_else(|| panic!("no VmHWM in /proc/{pid}/status"))
}

/// Sends SIGTERM to a child this benchmark started and waits for it.
fn stop_child(child: &mut Child, name: &str) {
    // SAFETY: signalling our own child by its PID.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let started = Instant::now();
    while child.try_wait().expect("poll child").is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            eprintln!("{name} did not stop within 60 s of SIGTERM; killing it");
            let _ = child.kill();
            let _ = child.wait();
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Raises the soft open-file limit to the hard one (at most 65536), which the children
/// inherit: each instance is a listening socket in the simulator and a connection in
/// bakfleet, and the usual soft limit of 1024 is below a 1,000-instance fleet's need.
fn raise_open_file_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write the struct passed by reference.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return;
        }
        limit.rlim_cur = limit.rlim_max.min(65_536);
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("find a free port on 127.0.0.1")
}

fn file_size(path: &Path) -> u64 {
    fs::metadata(path).map_or(0, |metadata| metadata.len())
}

fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

fn format_utc(at: OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    at.format(format).expect("benchmark times format")
}

/// Formats the figures as Markdown.
pub fn render_markdown(options: &Options, figures: &FleetFigures) -> String {
    let ms = |duration: Option<Duration>| {
        duration.map_or("-".to_string(), |duration| {
            format!("{:.0}", duration.as_secs_f64() * 1000.0)
        })
    };
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    let lateness = &figures.lateness;
    let rss_met = if figures.peak_rss_bytes < 256 << 20 {
        "yes"
    } else {
        "no"
    };
    let p99 = percentile(lateness, 99.0);
    let lateness_met = if p99.is_some_and(|p99| p99 < Duration::from_secs(2)) {
        "yes"
    } else {
        "no"
    };
    let missed_met = if figures.missed_runs == 0 {
        "yes"
    } else {
        "no"
    };
    format!(
        "\n#### Fleet of {instances} instances, {databases} databases, a log slot every {interval} s\n\n\
         {spread_text}\
         One simulator process hosts every instance; `bakfleet serve` runs with \
         `max_parallel_jobs = {jobs}`, `max_jobs_per_staging = {jobs}` and \
         `max_jobs_per_instance = 2`. The start-up catch-up (one full per database) took \
         {warm_up:.0} s for {warm_up_runs} runs; then {slots} slot(s) from {first_slot} were \
         measured. Load average {load_before} before, {load_after} after.\n\n\
         | figure | value | target | met |\n\
         | --- | ---: | --- | --- |\n\
         | runs expected / succeeded / failed | {expected} / {succeeded} / {failed} | | |\n\
         | runs missed (no run for its slot) | {missed} | 0 | {missed_met} |\n\
         | run start lateness min ms (the scheduler's wake-up) | {min} | | |\n\
         | run start lateness p50 ms | {p50} | | |\n\
         | run start lateness p99 ms | {p99} | < 2000 | {lateness_met} |\n\
         | run start lateness max ms | {max} | | |\n\
         | last run finished after its slot, s | {last_finish:.1} | < {interval} | |\n\
         | runs per second, first slot to last finish | {rate:.1} | | |\n\
         | bakfleet CPU s, measured slots / whole run | {cpu_measured:.1} / {cpu_total:.1} | | |\n\
         | bakfleet CPU ms per measured run | {cpu_per_run:.1} | | |\n\
         | bakfleet peak RSS MiB | {rss:.0} | < 256 | {rss_met} |\n\
         | simulator CPU s, measured slots / whole run | {simulator_cpu_measured:.1} / {simulator_cpu:.1} | | |\n\
         | catalogue MiB | {catalogue:.1} | | |\n",
        instances = options.instances,
        spread_text = spread_text(options),
        cpu_per_run = if figures.lateness.is_empty() {
            0.0
        } else {
            figures.cpu_seconds_measured * 1000.0 / figures.lateness.len() as f64
        },
        databases = figures.databases,
        interval = options.interval_seconds,
        jobs = options.parallel_jobs,
        warm_up = figures.warm_up_seconds,
        warm_up_runs = figures.warm_up_runs,
        slots = figures.slots.len(),
        first_slot = figures
            .slots
            .first()
            .map(|slot| format_utc(*slot))
            .unwrap_or_default(),
        load_before = figures.load_before,
        load_after = figures.load_after,
        expected = figures.expected_runs,
        succeeded = figures.succeeded_runs,
        failed = figures.failed_runs,
        missed = figures.missed_runs,
        min = ms(lateness.first().copied()),
        p50 = ms(percentile(lateness, 50.0)),
        p99 = ms(p99),
        max = ms(lateness.last().copied()),
        last_finish = figures.last_finish_after_slot.as_secs_f64(),
        rate = figures.runs_per_second,
        cpu_measured = figures.cpu_seconds_measured,
        cpu_total = figures.cpu_seconds_total,
        rss = mib(figures.peak_rss_bytes),
        simulator_cpu_measured = figures.simulator_cpu_seconds_measured,
        simulator_cpu = figures.simulator_cpu_seconds,
        catalogue = mib(figures.catalogue_bytes),
    )
}

/// Describes the schedule's spread, for the text above the table.
fn spread_text(options: &Options) -> String {
    if options.spread_seconds == 0 {
        return "`schedule.spread` is off: every run of a slot is due at the slot. ".to_string();
    }
    format!(
        "`schedule.spread = \"{}s\"`: each instance's runs are due at the slot plus a fixed \
         offset below {} s, and lateness is a run's start minus that due time. ",
        options.spread_seconds, options.spread_seconds
    )
}
