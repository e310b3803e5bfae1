//! Injected faults, one test each, named `fault_*`. docs/faults.md lists every one with its
//! expected outcome. Each fault must leave a failed run that names instance, database,
//! phase and cause, no backup catalogued unless it is complete and verified, the staged
//! file in place until a durable copy exists, and no run left `running`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use bakfleet::backup::BackupType;
use bakfleet::job::{self, JobEvent, JobEventKind, JobFailure, JobOutcome, Phase};
use bakfleet::service;
use mssql_sim::engine::Fault;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;

use crate::failures::{check_failure, expect_failure};
use crate::fixture::{list_files, FleetOptions, TestFleet, Transport, INSTANCE};
use crate::smb::{succeeded, DATABASES};
use crate::support::require_tool;
use crate::target::skip_unless_simulator;

/// Data size in MiB of the database whose fetch a fault test interrupts.
const LARGE_DATABASE_MB: u64 = 32;

/// Rate at which the staging peer's bytes reach bakfleet in the interrupted-fetch tests.
/// The fetch then lasts about 4 s, so a kill on its first progress report lands while
/// the fetch is under way, however fast the machine copies over loopback.
const STAGING_BYTES_PER_SEC: u64 = 8 * 1024 * 1024;

/// Size of the store's filesystem in the store-full test, below any backup's size.
const SMALL_STORE_BYTES: u64 = 1024 * 1024;

/// Starts a full backup of `database` as a task, with its progress events on the
/// returned channel, which closes when the job ends.
fn spawn_watched(
    fleet: &TestFleet,
    database: &str,
) -> (
    JoinHandle<Result<JobOutcome, JobFailure>>,
    UnboundedReceiver<JobEvent>,
) {
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    let mut ctx = fleet.ctx.clone();
    ctx.events = Some(sender);
    let request = fleet.request(database, BackupType::Full);
    let job = tokio::spawn(async move { job::run(&ctx, &request).await });
    (job, receiver)
}

/// Unwraps a job that must have failed.
async fn failed(job: JoinHandle<Result<JobOutcome, JobFailure>>) -> JobFailure {
    match job.await.expect("job task") {
        Err(failure) => failure,
        Ok(outcome) => panic!("expected a failure, got {outcome:?}"),
    }
}

/// Lists the store's temp files, which a failed fetch must not leave behind.
fn temp_files(store_root: &Path) -> Vec<PathBuf> {
    list_files(store_root)
        .into_iter()
        .filter(|path| path.to_string_lossy().ends_with(".partial"))
        .collect()
}

/// Checks that a second run after a fault backs the database up, and that it deleted
/// only its own staged file: `staged_left` files of failed runs stay on the share.
async fn check_next_run_succeeds(fleet: &TestFleet, staged_left: usize) {
    let (backup_id, record) = succeeded(fleet.run("Sales", BackupType::Full).await);
    let row = fleet
        .ctx
        .catalog
        .backup(backup_id)
        .await
        .expect("read catalogue")
        .expect("backup row");
    assert_eq!(row.status, "verified");
    assert_eq!(row.sha256, record.sha256);
    let backups = fleet
        .ctx
        .catalog
        .backups_of_database(INSTANCE, fleet.db("Sales"), 10)
        .await
        .expect("read catalogue");
    assert_eq!(
        backups.len(),
        1,
        "one backup, from the good run: {backups:?}"
    );
    if fleet.target.is_simulator() {
        assert_eq!(
            fleet.staged_files().len(),
            staged_left,
            "staged files of failed runs stay; the good run deleted its own"
        );
    }
}

/// Reads the note of run `run_id`, where retries are recorded.
async fn run_note(fleet: &TestFleet, run_id: i64) -> String {
    let run = fleet
        .ctx
        .catalog
        .run(run_id)
        .await
        .expect("read catalogue")
        .expect("run row");
    run.note.unwrap_or_default()
}

/// Checks that a BACKUP that failed with a server error was tried once: the same
/// statement would fail the same way.
async fn check_backup_not_retried(fleet: &TestFleet, failure: &JobFailure) {
    let note = run_note(fleet, failure.run_id.expect("run id")).await;
    assert!(!note.contains("BACKUP attempt"), "retried: {note}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_backup_connection_dropped_is_retried() {
    let fleet = TestFleet::start(Transport::Smb, DATABASES).await;
    if skip_unless_simulator(&fleet.target, "fault_backup_connection_dropped_is_retried") {
        return;
    }
    fleet
        .target
        .set_fault(Fault::DropConnection { at_percent: 50 });
    // The simulator removes the file of a BACKUP that did not finish; this file stands
    // for one that a server left behind. Its time stamp is later than the run's start,
    // so it counts as the cut-off attempt's.
    let later = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    let partial_name =
        bakfleet::store::backup_file_name(fleet.db("Sales"), BackupType::Full, later);
    let partial = fleet.staging_root().join(&partial_name);
    std::fs::write(&partial, b"half a backup").expect("write partial file");

    // A dropped session is transient: a new BACKUP on a new session, to a new file,
    // and the same run succeeds, with both attempts in its notes.
    check_next_run_succeeds(&fleet, 0).await;
    assert!(
        !partial.exists(),
        "the partial file {partial_name} was removed"
    );
    let runs = fleet
        .ctx
        .catalog
        .runs_of_database(INSTANCE, fleet.db("Sales"), None, 10)
        .await
        .expect("read catalogue");
    assert_eq!(runs.len(), 1, "one run: {runs:?}");
    let note = runs[0].note.clone().unwrap_or_default();
    assert!(note.contains("BACKUP attempt 1 failed"), "{note}");
    assert!(note.contains("BACKUP took 2 attempts"), "{note}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_backup_dropped_every_attempt_fails() {
    let fleet = TestFleet::start(Transport::Smb, DATABASES).await;
    if skip_unless_simulator(&fleet.target, "fault_backup_dropped_every_attempt_fails") {
        return;
    }
    let attempts = fleet.ctx.fleet.service.retry.attempts;
    for _ in 0..attempts {
        fleet
            .target
            .set_fault(Fault::DropConnection { at_percent: 50 });
    }
    let failure = expect_failure(&fleet, "Sales", Phase::Backup).await;
    let note = run_note(&fleet, failure.run_id.expect("run id")).await;
    assert!(
        note.contains(&format!("BACKUP attempt {attempts} failed")),
        "every attempt noted: {note}"
    );
    assert!(fleet.staged_files().is_empty(), "no staged file: {failure}");
    assert!(list_files(fleet.store_root()).is_empty(), "nothing stored");
    check_next_run_succeeds(&fleet, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_verify_connection_dropped_is_retried() {
    let fleet = TestFleet::start(Transport::Smb, DATABASES).await;
    if skip_unless_simulator(&fleet.target, "fault_verify_connection_dropped_is_retried") {
        return;
    }
    fleet
        .target
        .set_fault(Fault::DropConnectionInVerify { at_percent: 50 });
    // A dropped session is transient: VERIFYONLY runs again on a new session and the
    // same run succeeds, with the retry in its notes.
    check_next_run_succeeds(&fleet, 0).await;
    let runs = fleet
        .ctx
        .catalog
        .runs_of_database(INSTANCE, fleet.db("Sales"), None, 10)
        .await
        .expect("read catalogue");
    let note = runs[0].note.clone().unwrap_or_default();
    assert!(
        note.contains("RESTORE VERIFYONLY took 2 attempts"),
        "{runs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_disk_full_fails_backup_3202() {
    let fleet = TestFleet::start(Transport::Smb, DATABASES).await;
    if skip_unless_simulator(&fleet.target, "fault_disk_full_fails_backup_3202") {
        return;
    }
    fleet.target.set_fault(Fault::DiskFull { at_percent: 50 });
    let failure = expect_failure(&fleet, "Sales", Phase::Backup).await;
    assert!(failure.cause.contains("3202"), "{}", failure.cause);
    assert!(
        failure
            .cause
            .contains("112(There is not enough space on the disk.)"),
        "{}",
        failure.cause
    );
    assert!(failure.cause.contains("free space"), "{}", failure.cause);
    assert!(fleet.staged_files().is_empty(), "no partial staged file");
    check_next_run_succeeds(&fleet, 0).await;
    check_backup_not_retried(&fleet, &failure).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_share_full_fails_backup_3271() {
    let fleet = TestFleet::start(Transport::Smb, DATABASES).await;
    if skip_unless_simulator(&fleet.target, "fault_share_full_fails_backup_3271") {
        return;
    }
    fleet
        .target
        .set_fault(Fault::DiskFullNonrecoverable { at_percent: 50 });
    let failure = expect_failure(&fleet, "Sales", Phase::Backup).await;
    assert!(failure.cause.contains("3271"), "{}", failure.cause);
    assert!(
        failure.cause.contains("nonrecoverable I/O error"),
        "{}",
        failure.cause
    );
    assert!(failure.cause.contains("112("), "{}", failure.cause);
    assert!(failure.cause.contains("free space"), "{}", failure.cause);
    assert!(fleet.staged_files().is_empty(), "no partial staged file");
    check_backup_not_retried(&fleet, &failure).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_access_denied_fails_backup_3201() {
    let fleet = TestFleet::start(Transport::Smb, DATABASES).await;
    if skip_unless_simulator(&fleet.target, "fault_access_denied_fails_backup_3201") {
        return;
    }
    fleet.target.set_fault(Fault::DenyAccess);
    let failure = expect_failure(&fleet, "Sales", Phase::Backup).await;
    assert!(failure.cause.contains("3201"), "{}", failure.cause);
    assert!(
        failure
            .cause
            .contains("Operating system error 5(Access is denied.)"),
        "{}",
        failure.cause
    );
    assert!(failure.cause.contains("write access"), "{}", failure.cause);
    assert!(fleet.staged_files().is_empty(), "no staged file");
    check_backup_not_retried(&fleet, &failure).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_wrong_password_fails_connect_18456() {
    let fleet = TestFleet::start(Transport::Smb, DATABASES).await;
    let secrets = fleet.fleet_path.with_file_name("secrets.toml");
    let text = std::fs::read_to_string(&secrets).expect("read secrets");
    let wrong: Vec<String> = text
        .lines()
        .map(|line| match line.starts_with("sql = ") {
            true => "sql = \"not-the-password\"".to_string(),
            false => line.to_string(),
        })
        .collect();
    std::fs::write(&secrets, wrong.join("\n") + "\n").expect("write secrets");
    let ctx = service::open(&fleet.fleet_path, None)
        .await
        .expect("open the service");

    let result = job::run(&ctx, &fleet.request("Sales", BackupType::Full)).await;
    let failure = match result {
        Err(failure) => failure,
        Ok(outcome) => panic!("expected a login failure, got {outcome:?}"),
    };
    let failure = check_failure(&fleet, "Sales", Phase::Connect, failure).await;
    assert!(failure.cause.contains("18456"), "{}", failure.cause);
    let user = &fleet.target.settings.user;
    assert!(
        failure
            .cause
            .contains(&format!("Login failed for user '{user}'")),
        "{}",
        failure.cause
    );
    assert!(
        failure.cause.contains("password"),
        "hint: {}",
        failure.cause
    );
}

/// The staging peer a test kills.
#[derive(Clone, Copy)]
enum Peer {
    Smbd,
    Sshd,
}

impl Peer {
    fn kill(self, fleet: &mut TestFleet) {
        match self {
            Peer::Smbd => fleet.smbd.as_mut().expect("smbd").kill(),
            Peer::Sshd => fleet.sshd.as_mut().expect("sshd").kill(),
        }
    }

    fn restart(self, fleet: &mut TestFleet) {
        match self {
            Peer::Smbd => fleet.smbd.as_mut().expect("smbd").restart(),
            Peer::Sshd => fleet.sshd.as_mut().expect("sshd").restart(),
        }
    }
}

/// Starts a fleet without compression whose Sales database's fetch is slow enough to be
/// interrupted, with `service` added to `[service]`. Returns `None` when the target
/// is not the simulator.
async fn large_fetch_fleet(transport: Transport, service: &str, test: &str) -> Option<TestFleet> {
    let options = FleetOptions {
        compression: false,
        service,
        staging_rate: Some(STAGING_BYTES_PER_SEC),
        ..FleetOptions::default()
    };
    let fleet = TestFleet::start_with(transport, DATABASES, options).await;
    if skip_unless_simulator(&fleet.target, test) {
        return None;
    }
    let name = fleet.db("Sales").to_string();
    fleet.target.resize_database(&name, LARGE_DATABASE_MB);
    Some(fleet)
}

/// Returns the bytes fetched and the file's size when `event` reports part of a file.
fn partial_fetch(event: &JobEvent) -> Option<(u64, u64)> {
    match event.kind {
        JobEventKind::Fetched {
            bytes,
            total: Some(total),
        } if bytes > 0 && bytes < total => Some((bytes, total)),
        _ => None,
    }
}

/// Kills the staging peer with SIGKILL once the fetch has read part of the file, checks
/// the failure, restarts the peer and checks that the next run succeeds.
async fn kill_peer_mid_fetch(transport: Transport, peer: Peer, test: &str) {
    let Some(mut fleet) = large_fetch_fleet(transport, "", test).await else {
        return;
    };

    let (job, mut events) = spawn_watched(&fleet, "Sales");
    let mut killed_at = None;
    while let Some(event) = events.recv().await {
        if let (None, Some(part)) = (killed_at, partial_fetch(&event)) {
            peer.kill(&mut fleet);
            killed_at = Some(part);
        }
    }
    let failure = failed(job).await;
    let (bytes, total) = killed_at.unwrap_or_else(|| {
        panic!("the fetch never reported a part of the file, so no kill landed: {failure}")
    });
    let failure = check_failure(&fleet, "Sales", Phase::Fetch, failure).await;
    assert!(bytes < total, "killed after {bytes} of {total} bytes");
    assert_eq!(fleet.staged_files().len(), 1, "staged file kept: {failure}");
    assert!(
        list_files(fleet.store_root()).is_empty(),
        "no temp or partial file in the store"
    );

    peer.restart(&mut fleet);
    check_next_run_succeeds(&fleet, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_smbd_killed_mid_fetch() {
    kill_peer_mid_fetch(Transport::Smb, Peer::Smbd, "fault_smbd_killed_mid_fetch").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_sshd_killed_mid_fetch() {
    kill_peer_mid_fetch(Transport::Sftp, Peer::Sshd, "fault_sshd_killed_mid_fetch").await;
}

/// Retries for the resume tests: enough attempts, close enough together, to outlast a
/// peer's restart.
const RESUME_RETRY: &str = "retry = { attempts = 10, base_delay_ms = 200, max_delay_ms = 1000 }";

/// Kills the staging peer with SIGKILL once part of the file arrived and starts it again at
/// once. The retry resumes the fetch after the bytes already stored, and the same run
/// catalogues a copy identical to the staged file.
async fn restart_peer_mid_fetch(transport: Transport, peer: Peer, test: &str) {
    let Some(mut fleet) = large_fetch_fleet(transport, RESUME_RETRY, test).await else {
        return;
    };

    let (job, mut events) = spawn_watched(&fleet, "Sales");
    let mut staged_sha256 = None;
    while let Some(event) = events.recv().await {
        if staged_sha256.is_none() && partial_fetch(&event).is_some() {
            // The staged file is complete on the share while it is fetched.
            let staged = fleet.staged_files();
            assert_eq!(staged.len(), 1, "one staged file: {staged:?}");
            staged_sha256 = Some(sha256_of(&staged[0]));
            peer.kill(&mut fleet);
            peer.restart(&mut fleet);
        }
    }
    let outcome = job.await.expect("job task");
    let staged_sha256 = staged_sha256.expect("the fetch reported part of the file");
    let (backup_id, record) = succeeded(outcome);

    assert_eq!(
        record.sha256, staged_sha256,
        "stored copy equals the staged file"
    );
    let run_id = fleet
        .ctx
        .catalog
        .backup(backup_id)
        .await
        .expect("read catalogue")
        .expect("backup row")
        .run_id;
    let note = run_note(&fleet, run_id).await;
    let offset: u64 = note
        .split_once("resumed at byte ")
        .and_then(|(_, rest)| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|digits| digits.parse().ok())
        .unwrap_or_else(|| panic!("no resume in the run's note: {note}"));
    assert!(offset > 0, "resumed after stored bytes: {note}");
    assert!(
        temp_files(fleet.store_root()).is_empty(),
        "no temp file left"
    );
    assert!(
        fleet.staged_files().is_empty(),
        "staged file deleted after the copy"
    );
}

fn sha256_of(path: &Path) -> String {
    use sha2::{Digest, Sha256};

    let mut file = std::fs::File::open(path).expect("open staged file");
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).expect("hash staged file");
    hex::encode(hasher.finalize())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_smbd_restarted_mid_fetch_resumes() {
    restart_peer_mid_fetch(
        Transport::Smb,
        Peer::Smbd,
        "fault_smbd_restarted_mid_fetch_resumes",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_sshd_restarted_mid_fetch_resumes() {
    restart_peer_mid_fetch(
        Transport::Sftp,
        Peer::Sshd,
        "fault_sshd_restarted_mid_fetch_resumes",
    )
    .await;
}

/// A tmpfs mounted over a folder for the life of the guard.
struct SmallFilesystem {
    path: PathBuf,
}

impl SmallFilesystem {
    /// Mounts a tmpfs of `bytes` over `path`, hiding what the folder held until unmount.
    fn mount(path: &Path, bytes: u64) -> SmallFilesystem {
        let mount = require_tool("mount", "mount");
        let output = std::process::Command::new(mount)
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={bytes},mode=0700"))
            .arg("tmpfs")
            .arg(path)
            .output()
            .expect("run mount");
        assert!(
            output.status.success(),
            "mounting a tmpfs on {} failed; the store-full test runs as root with the right \
             to mount (CAP_SYS_ADMIN): {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        SmallFilesystem {
            path: path.to_path_buf(),
        }
    }
}

impl Drop for SmallFilesystem {
    fn drop(&mut self) {
        let status = std::process::Command::new(require_tool("umount", "mount"))
            .arg(&self.path)
            .status();
        if !status.is_ok_and(|status| status.success()) {
            eprintln!("unmounting {} failed", self.path.display());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_store_disk_full_keeps_staged_file() {
    let options = FleetOptions {
        compression: false,
        ..FleetOptions::default()
    };
    let fleet = TestFleet::start_with(Transport::Smb, DATABASES, options).await;
    if skip_unless_simulator(&fleet.target, "fault_store_disk_full_keeps_staged_file") {
        return;
    }
    let store_root = fleet.store_root().to_path_buf();
    let small = SmallFilesystem::mount(&store_root, SMALL_STORE_BYTES);

    let failure = match fleet.run("Sales", BackupType::Full).await {
        Err(failure) => failure,
        Ok(outcome) => panic!("expected the store to be full, got {outcome:?}"),
    };
    // The write into the store's temp file fails while the file streams in.
    let failure = check_failure(&fleet, "Sales", Phase::Fetch, failure).await;
    assert!(
        failure.cause.contains(&store_root.display().to_string()),
        "names the store path: {}",
        failure.cause
    );
    assert!(
        failure.cause.contains("No space left on device"),
        "{}",
        failure.cause
    );
    assert!(temp_files(&store_root).is_empty(), "temp file removed");
    assert_eq!(fleet.staged_files().len(), 1, "staged file kept");

    drop(small);
    check_next_run_succeeds(&fleet, 1).await;
}

/// An `sqlite3` shell that holds an exclusive lock on the catalogue, as another process
/// inspecting or repairing it might.
struct CatalogueLock {
    shell: tokio::process::Child,
}

impl CatalogueLock {
    /// Starts the shell, takes the lock with `BEGIN EXCLUSIVE`, and returns once it holds.
    async fn take(catalog: &Path) -> CatalogueLock {
        let mut shell = tokio::process::Command::new(require_tool("sqlite3", "sqlite3"))
            .arg(catalog)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start sqlite3");
        let stdin = shell.stdin.as_mut().expect("piped stdin");
        stdin
            .write_all(b".timeout 10000\nBEGIN EXCLUSIVE;\nSELECT 'locked';\n")
            .await
            .expect("write to sqlite3");
        let stdout = shell.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .await
            .expect("read from sqlite3");
        assert_eq!(line.trim(), "locked", "sqlite3 did not take the lock");
        CatalogueLock { shell }
    }

    /// Commits the empty transaction, which releases the lock, and waits for the shell.
    async fn release(mut self) {
        let stdin = self.shell.stdin.as_mut().expect("piped stdin");
        stdin
            .write_all(b"COMMIT;\n.quit\n")
            .await
            .expect("write to sqlite3");
        let status = self.shell.wait().await.expect("wait for sqlite3");
        assert!(status.success(), "sqlite3 exited with {status}");
    }
}

/// Runs a backup while another process holds the catalogue's lock from the start of the
/// fetch until `hold` after the run entered its catalogue phase, and returns the job.
async fn run_with_catalogue_locked(
    fleet: &TestFleet,
    hold: Duration,
) -> Result<JobOutcome, JobFailure> {
    let (job, mut events) = spawn_watched(fleet, "Sales");
    let mut lock = None;
    while let Some(event) = events.recv().await {
        match event.kind {
            JobEventKind::Phase(Phase::Fetch) if lock.is_none() => {
                lock = Some(CatalogueLock::take(&fleet.catalog_path()).await);
            }
            JobEventKind::Phase(Phase::Catalog) => {
                let held = lock.take().expect("the lock was taken during the fetch");
                tokio::time::sleep(hold).await;
                assert!(
                    !job.is_finished(),
                    "the run finished although the catalogue was locked"
                );
                held.release().await;
            }
            _ => {}
        }
    }
    job.await.expect("job task")
}

/// Counts the rows of `table` with the sqlite3 shell, outside bakfleet's own pool.
fn count_rows(catalog: &Path, table: &str) -> u64 {
    let output = std::process::Command::new(require_tool("sqlite3", "sqlite3"))
        .arg(catalog)
        .arg(format!("SELECT count(*) FROM {table}"))
        .output()
        .expect("run sqlite3");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .expect("a count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_catalogue_locked_briefly_waits() {
    let fleet = TestFleet::start(Transport::Smb, DATABASES).await;
    if skip_unless_simulator(&fleet.target, "fault_catalogue_locked_briefly_waits") {
        return;
    }
    // Released two seconds into the final write, within the catalogue's busy timeout.
    let result = run_with_catalogue_locked(&fleet, Duration::from_secs(2)).await;
    let (backup_id, _) = succeeded(result);
    let row = fleet
        .ctx
        .catalog
        .backup(backup_id)
        .await
        .expect("read catalogue")
        .expect("backup row");
    assert_eq!(row.status, "verified");
    let run = fleet
        .ctx
        .catalog
        .run(row.run_id)
        .await
        .expect("read run")
        .expect("run row");
    assert_eq!(run.status.as_str(), "succeeded");
    assert!(
        fleet.staged_files().is_empty(),
        "staged file deleted after the backup row was committed"
    );
    assert_eq!(count_rows(&fleet.catalog_path(), "backups"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_catalogue_locked_too_long_fails() {
    let fleet = TestFleet::start(Transport::Smb, DATABASES).await;
    if skip_unless_simulator(&fleet.target, "fault_catalogue_locked_too_long_fails") {
        return;
    }
    // Released 25 seconds into the final write: past the busy timeout of the backup row's
    // transaction and of several attempts to mark the run failed.
    let result = run_with_catalogue_locked(&fleet, Duration::from_secs(25)).await;
    let failure = match result {
        Err(failure) => failure,
        Ok(outcome) => panic!("expected the catalogue write to time out, got {outcome:?}"),
    };
    let failure = check_failure(&fleet, "Sales", Phase::Catalog, failure).await;
    assert!(
        failure.cause.contains("database is locked"),
        "{}",
        failure.cause
    );
    assert_eq!(fleet.staged_files().len(), 1, "staged file kept");
    assert!(
        list_files(fleet.store_root()).is_empty(),
        "the uncatalogued copy is removed from the store"
    );
    let catalog = fleet.catalog_path();
    assert_eq!(count_rows(&catalog, "backups"), 0, "no backup row");
    assert_eq!(count_rows(&catalog, "backup_files"), 0, "no file list rows");
    assert_eq!(
        count_rows(&catalog, "runs WHERE status = 'running'"),
        0,
        "no run left running"
    );
}
