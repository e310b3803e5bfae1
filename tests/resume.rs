//! Retries that a stop signal ends: `bakfleet run` against an instance that refuses every
//! connection, with backoff delays of minutes, stops within seconds of SIGTERM and marks
//! the run interrupted in its phase.

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::free_port;

/// Ceiling of every backoff delay in the test fleet: far longer than the test may take.
const LONG_DELAY_MS: u64 = 300_000;

/// How soon after SIGTERM the run must have ended. The grace time is 1 s; the rest is
/// process start-up and catalogue writes.
const STOP_WITHIN: Duration = Duration::from_secs(15);

/// Writes a fleet file whose instance is at 127.0.0.1:`port`, where nothing listens, so
/// every connect fails with a refused connection, which is transient.
fn write_unreachable_fleet(dir: &Path, port: u16) -> PathBuf {
    let staging = dir.join("staging");
    std::fs::create_dir_all(&staging).unwrap();
    let fleet = dir.join("fleet.toml");
    std::fs::write(
        &fleet,
        format!(
            "[service]\nstore_dir = \"store\"\ncatalog = \"catalog.db\"\n\
             retry = {{ attempts = 5, base_delay_ms = {LONG_DELAY_MS}, max_delay_ms = {LONG_DELAY_MS} }}\n\n\
             [[instance]]\nname = \"sales\"\nhost = \"127.0.0.1\"\nport = {port}\n\
             auth = {{ kind = \"sql\", user = \"bakfleet\", password_env = \"BAKFLEET_TEST_SQL_PASSWORD\" }}\n\
             tls = {{ encrypt = \"not_supported\" }}\ndatabases = {{ include = [\"Sales\"] }}\n\
             staging = {{ local = {{ server_path = '/var/opt/mssql/backup', dir = {:?} }} }}\n",
            staging.display().to_string()
        ),
    )
    .unwrap();
    fleet
}

/// Reads `status|phase|error` of every run, in id order, with the sqlite3 shell.
fn runs(catalog: &Path) -> Vec<String> {
    let output = Command::new(support::require_tool("sqlite3", "sqlite3"))
        .arg(catalog)
        .arg("SELECT status || '|' || phase || '|' || coalesce(error, '') FROM runs ORDER BY id")
        .output()
        .expect("run sqlite3");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn sigterm_ends_connect_backoff() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = write_unreachable_fleet(dir.path(), free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_bakfleet"))
        .arg("--fleet")
        .arg(&fleet)
        .args(["--grace", "1", "run", "sales", "Sales", "--type", "full"])
        .env_remove("RUST_LOG")
        .env("BAKFLEET_TEST_SQL_PASSWORD", "unused-by-a-refused-connect")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start bakfleet run");

    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let retrying = line.contains("retrying");
        seen.push(line);
        if retrying {
            break;
        }
    }
    assert!(
        seen.last().is_some_and(|line| line.contains("retrying")),
        "the run never began a backoff: {seen:?}"
    );

    let signalled = Instant::now();
    // SAFETY: signalling our own child by its PID.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    let elapsed = signalled.elapsed();

    assert!(
        elapsed < STOP_WITHIN,
        "the run took {elapsed:?} to stop; log: {rest:?}"
    );
    assert_eq!(
        status.code(),
        Some(75),
        "exit code: {status:?}; log: {rest:?}"
    );
    let runs = runs(&dir.path().join("catalog.db"));
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert!(
        runs[0].starts_with("interrupted|connect|stopped by SIGTERM"),
        "{runs:?}"
    );
}
