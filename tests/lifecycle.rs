//! SIGTERM during `bakfleet run`: running jobs get the grace time, then stop at their next
//! stage boundary. Also a run whose selection matches no database. bakfleet and the
//! simulator run as child processes, as in production.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use bakfleet::catalog::{Catalog, RunRow, RunStatus};
use support::{files_under, free_port, simulator_binary, start_simulator_process};

/// Throttle of the simulated BACKUP and VERIFYONLY: an 8 MiB database takes about 4 s
/// to back up and as long to verify, so a signal sent in the backup phase finds it running.
const SLOW_BYTES_PER_SEC: u64 = 2 * 1024 * 1024;

/// Maximum wait for the run to reach a phase, and for bakfleet to exit after the signal.
const WAIT_LIMIT: Duration = Duration::from_secs(60);

/// Exit code of `serve` and `run` when a stop interrupted a job.
const EXIT_INTERRUPTED: i32 = 75;

/// A simulated instance with one slow database, a fleet file that backs it up to a local
/// staging folder, and the folders a test inspects.
struct SlowFleet {
    dir: tempfile::TempDir,
    simulator: Child,
    fleet: PathBuf,
    password: String,
}

impl SlowFleet {
    fn start() -> SlowFleet {
        let dir = tempfile::tempdir().expect("temp dir");
        let staging = dir.path().join("staging");
        std::fs::create_dir_all(&staging).expect("staging dir");
        let password = format!("L-{}", uuid::Uuid::new_v4().simple());

        let sim_config = dir.path().join("sim.toml");
        std::fs::write(&sim_config, simulator_config(&password, &staging)).expect("sim.toml");
        let simulator_path = simulator_binary(Path::new(env!("CARGO_BIN_EXE_bakfleet")));
        let (simulator, port) = start_simulator_process(&simulator_path, &sim_config);

        let fleet = dir.path().join("fleet.toml");
        std::fs::write(&fleet, fleet_config(port, free_port(), &staging)).expect("fleet.toml");
        SlowFleet {
            dir,
            simulator,
            fleet,
            password,
        }
    }

    fn staging(&self) -> PathBuf {
        self.dir.path().join("staging")
    }

    fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// Starts `bakfleet run slow Orders` with `--grace grace_secs`.
    fn start_run(&self, grace_secs: u64) -> Child {
        Command::new(env!("CARGO_BIN_EXE_bakfleet"))
            .args(["run", "slow", "Orders", "--grace", &grace_secs.to_string()])
            .arg("--fleet")
            .arg(&self.fleet)
            .env("LIFECYCLE_SQL_PASSWORD", &self.password)
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start bakfleet run")
    }

    /// Opens the catalogue, creating it; a test opens it before bakfleet starts so that
    /// the two processes do not both create its tables.
    /// Starts `bakfleet serve` with `--grace grace_secs`; its schedule starts a full
    /// backup every second.
    fn start_serve(&self, grace_secs: u64) -> Child {
        Command::new(env!("CARGO_BIN_EXE_bakfleet"))
            .args(["serve", "--grace", &grace_secs.to_string()])
            .arg("--fleet")
            .arg(&self.fleet)
            .env("LIFECYCLE_SQL_PASSWORD", &self.password)
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start bakfleet serve")
    }

    async fn catalog(&self) -> Catalog {
        Catalog::open(&self.dir.path().join("catalog.db"))
            .await
            .expect("open the catalogue")
    }
}

impl Drop for SlowFleet {
    fn drop(&mut self) {
        // SAFETY: signalling our own child by its PID.
        unsafe { libc::kill(self.simulator.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.simulator.wait();
    }
}

fn simulator_config(password: &str, staging: &Path) -> String {
    format!(
        "[[instance]]\nname = \"slow\"\nlisten = \"127.0.0.1:0\"\nplatform = \"linux\"\n\
         edition = \"developer\"\n\n[[instance.login]]\nname = \"bakfleet\"\n\
         password = {password:?}\nsysadmin = true\n\n[[instance.path_map]]\n\
         server = \"/var/opt/mssql/backup\"\nlocal = {:?}\n\n[[instance.database]]\n\
         name = \"Orders\"\nsize_mb = 8\nrecovery_model = \"FULL\"\n\n\
         [[instance.fault]]\nkind = \"slow_backup\"\nbytes_per_sec = {SLOW_BYTES_PER_SEC}\n",
        staging.display().to_string()
    )
}

fn fleet_config(port: u16, listen_port: u16, staging: &Path) -> String {
    format!(
        "[service]\nstore_dir = \"store\"\ncatalog = \"catalog.db\"\n\
         listen = \"127.0.0.1:{listen_port}\"\n\n\
         [defaults]\ncompression = false\nschedule.full = \"* * * * * *\"\n\
         schedule.diff = \"off\"\nschedule.log = \"off\"\n\n\
         [[instance]]\nname = \"slow\"\n\
         host = \"127.0.0.1\"\nport = {port}\n\
         auth = {{ kind = \"sql\", user = \"bakfleet\", password_env = \"LIFECYCLE_SQL_PASSWORD\" }}\n\
         tls = {{ encrypt = \"not_supported\" }}\n\
         staging = {{ local = {{ server_path = \"/var/opt/mssql/backup\", dir = {:?} }} }}\n",
        staging.display().to_string()
    )
}

#[test]
fn run_selecting_nothing_says_so() {
    let fleet = SlowFleet::start();
    // A typo in the keyword USER_DATABASES names a database the server does not have.
    let mut text = std::fs::read_to_string(&fleet.fleet).expect("read fleet.toml");
    text.push_str("databases = { include = [\"USER_DATABASE\"] }\n");
    std::fs::write(&fleet.fleet, text).expect("write fleet.toml");

    let output = Command::new(env!("CARGO_BIN_EXE_bakfleet"))
        .args(["run", "slow", "--fleet"])
        .arg(&fleet.fleet)
        .env("LIFECYCLE_SQL_PASSWORD", &fleet.password)
        .env_remove("RUST_LOG")
        .output()
        .expect("run bakfleet run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("nothing backed up: the databases selection of instance \"slow\""),
        "{stderr}"
    );
    assert!(stderr.contains("check --connect"), "{stderr}");
}

/// Polls the catalogue until the only run is in `phase`, and returns it.
async fn wait_for_phase(catalog: &Catalog, phase: &str) -> RunRow {
    let started = Instant::now();
    loop {
        let runs = catalog.recent_runs(10).await.expect("read runs");
        if let Some(run) = runs.into_iter().find(|run| run.phase == phase) {
            return run;
        }
        assert!(
            started.elapsed() < WAIT_LIMIT,
            "the run did not reach the {phase} phase within {WAIT_LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sends SIGTERM to `child` and waits for it to exit, within [`WAIT_LIMIT`].
async fn terminate_and_wait(child: Child) -> (ExitStatus, String, String) {
    // SAFETY: signalling our own child by its PID.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let waited = tokio::task::spawn_blocking(move || child.wait_with_output());
    let output = tokio::time::timeout(WAIT_LIMIT, waited)
        .await
        .expect("bakfleet exits after SIGTERM")
        .expect("wait task")
        .expect("bakfleet output");
    (
        output.status,
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

async fn backup_rows(catalog: &Catalog, run_id: i64) -> Option<i64> {
    catalog
        .run(run_id)
        .await
        .expect("read run")
        .expect("run exists")
        .backup_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_long_grace_run_finishes() {
    let fleet = SlowFleet::start();
    let catalog = fleet.catalog().await;
    let child = fleet.start_run(60);
    let running = wait_for_phase(&catalog, "backup").await;

    let (status, stdout, stderr) = terminate_and_wait(child).await;

    assert_eq!(
        status.code(),
        Some(0),
        "the job finished within the grace time\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let run = catalog
        .run(running.id)
        .await
        .expect("read run")
        .expect("run");
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    assert!(
        backup_rows(&catalog, run.id).await.is_some(),
        "the backup is catalogued"
    );
    let stored = files_under(&fleet.store());
    assert_eq!(stored.len(), 1, "one file in the store: {stored:?}");
    assert!(
        files_under(&fleet.staging()).is_empty(),
        "the staged file is deleted after cataloguing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_short_grace_interrupts_run() {
    let fleet = SlowFleet::start();
    let catalog = fleet.catalog().await;
    let child = fleet.start_run(1);
    let running = wait_for_phase(&catalog, "backup").await;

    let (status, stdout, stderr) = terminate_and_wait(child).await;

    assert_eq!(
        status.code(),
        Some(EXIT_INTERRUPTED),
        "interrupted jobs give exit code 75\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let run = catalog
        .run(running.id)
        .await
        .expect("read run")
        .expect("run");
    assert_eq!(run.status, RunStatus::Interrupted, "{run:?}");
    // The BACKUP statement is let finish, so the job stops before verification.
    assert_eq!(run.phase, "verify", "{run:?}");
    let reason = run.error.clone().unwrap_or_default();
    assert!(
        reason.contains("stopped by SIGTERM after 1 s grace"),
        "the run records the reason: {reason:?}"
    );
    assert!(run.finished_at.is_some(), "the run is finished: {run:?}");
    assert!(
        backup_rows(&catalog, run.id).await.is_none(),
        "no backup is catalogued"
    );
    let stored = files_under(&fleet.store());
    assert!(
        stored.is_empty(),
        "no file, temp or final, in the store: {stored:?}"
    );
    let staged = files_under(&fleet.staging());
    assert_eq!(staged.len(), 1, "the staged file stays: {staged:?}");
    assert!(
        stdout.contains("stopped by SIGTERM"),
        "the report names the stop: {stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_run_leaves_lease_free() {
    let fleet = SlowFleet::start();
    let catalog = fleet.catalog().await;
    let child = fleet.start_run(0);
    wait_for_phase(&catalog, "backup").await;
    let (status, _, stderr) = terminate_and_wait(child).await;
    assert_eq!(status.code(), Some(EXIT_INTERRUPTED), "{stderr}");

    // A second run takes the database's lease at once and finishes the backup.
    let second = fleet.start_run(60);
    let output = tokio::task::spawn_blocking(move || second.wait_with_output())
        .await
        .expect("wait task")
        .expect("second run output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(0),
        "the second run succeeds\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_sigterm_short_grace_interrupts() {
    let fleet = SlowFleet::start();
    let catalog = fleet.catalog().await;
    let child = fleet.start_serve(1);
    let running = wait_for_phase(&catalog, "backup").await;

    let (status, stdout, stderr) = terminate_and_wait(child).await;

    assert_eq!(
        status.code(),
        Some(EXIT_INTERRUPTED),
        "serve gives exit code 75 after interrupting a job\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let run = catalog
        .run(running.id)
        .await
        .expect("read run")
        .expect("run");
    assert_eq!(run.status, RunStatus::Interrupted, "{run:?}");
    assert_eq!(run.trigger, "schedule", "{run:?}");
    let runs = catalog.recent_runs(10).await.expect("read runs");
    assert!(
        runs.iter().all(|run| run.status != RunStatus::Running),
        "no run is left running: {runs:?}"
    );
    assert!(
        files_under(&fleet.store()).is_empty(),
        "nothing in the store"
    );
}
