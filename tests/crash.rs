//! `kill -9` of `bakfleet run` in each phase of a backup, then a new run. The killed run
//! is marked interrupted with its phase, and no temp file stays in the store. The staged
//! file of the killed run stays where SQL Server wrote it, nothing half-done is
//! catalogued, and the next run backs the database up at once.

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use support::{files_under, start_simulated_instance, SimulatedInstance};

/// The phases a job records, in order, each a place to kill it.
const PHASES: [&str; 8] = [
    "connect",
    "preflight",
    "backup",
    "verify",
    "history",
    "fetch",
    "header",
    "catalog",
];

/// The phases after which BACKUP has written the staged file.
const STAGED_FROM: usize = 3;

struct Fleet {
    dir: tempfile::TempDir,
    fleet: PathBuf,
    staging: PathBuf,
    password: String,
}

fn write_fleet(port: u16, dir: tempfile::TempDir, staging: PathBuf, password: String) -> Fleet {
    let fleet = dir.path().join("fleet.toml");
    std::fs::write(
        &fleet,
        format!(
            "[service]\nstore_dir = \"store\"\ncatalog = \"catalog.db\"\n\n\
             [[instance]]\nname = \"sales\"\nhost = \"127.0.0.1\"\nport = {port}\n\
             auth = {{ kind = \"sql\", user = \"bakfleet\", password_env = \"BAKFLEET_TEST_SQL_PASSWORD\" }}\n\
             tls = {{ encrypt = \"not_supported\" }}\ndatabases = {{ include = [\"Sales\"] }}\n\
             staging = {{ local = {{ server_path = '/var/opt/mssql/backup', dir = {:?} }} }}\n",
            staging.display().to_string()
        ),
    )
    .unwrap();
    Fleet {
        dir,
        fleet,
        staging,
        password,
    }
}

fn start_simulator() -> (Child, Fleet) {
    let dir = tempfile::tempdir().unwrap();
    let staging = dir.path().join("staging");
    std::fs::create_dir_all(&staging).unwrap();
    let password = format!("Sql-{}", uuid::Uuid::new_v4().simple());
    let (simulator, port) = start_simulated_instance(
        dir.path(),
        &SimulatedInstance {
            platform: "linux",
            edition: "developer",
            password: &password,
            server_path: "/var/opt/mssql/backup",
            local_dir: &staging,
            databases: &[("Sales", 4, "FULL")],
            more_paths: &[],
        },
    );
    (simulator, write_fleet(port, dir, staging, password))
}

fn bakfleet_run(fleet: &Fleet, halt_at: Option<&str>) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bakfleet"));
    command
        .arg("--fleet")
        .arg(&fleet.fleet)
        .args(["run", "sales", "Sales", "--type", "full"])
        .env_remove("RUST_LOG")
        .env("BAKFLEET_TEST_SQL_PASSWORD", &fleet.password);
    match halt_at {
        Some(phase) => command.env(bakfleet::job::HALT_AT_PHASE_VARIABLE, phase),
        None => command.env_remove(bakfleet::job::HALT_AT_PHASE_VARIABLE),
    };
    command
}

/// Starts a run that halts at `phase`, waits for its halt warning, and kills it with SIGKILL.
fn run_and_kill_at(fleet: &Fleet, phase: &str) {
    let mut child = bakfleet_run(fleet, Some(phase))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start bakfleet run");
    let stderr = child.stderr.take().unwrap();
    let mut seen = Vec::new();
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap();
        let halted = line.contains("halted until killed");
        seen.push(line);
        if halted {
            break;
        }
    }
    assert!(
        seen.last().is_some_and(|line| line.contains("halted")),
        "the run never reached phase {phase}: {seen:?}"
    );
    child.kill().expect("SIGKILL bakfleet");
    child.wait().unwrap();
}

/// Reads `(status, phase)` of every run and the run id of every backup, in id order,
/// with the sqlite3 shell as a DBA inspecting the catalogue would.
fn catalogue(fleet: &Fleet) -> (Vec<(String, String)>, Vec<i64>) {
    let path = fleet.dir.path().join("catalog.db");
    let query = |sql: &str| {
        let output = Command::new(support::require_tool("sqlite3", "sqlite3"))
            .arg(&path)
            .arg(sql)
            .output()
            .expect("run sqlite3");
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    let runs = query("SELECT status || '|' || phase FROM runs ORDER BY id")
        .lines()
        .map(|line| {
            let (status, phase) = line.split_once('|').unwrap();
            (status.to_string(), phase.to_string())
        })
        .collect();
    let backups = query("SELECT run_id FROM backups ORDER BY id")
        .lines()
        .map(|line| line.parse().unwrap())
        .collect();
    (runs, backups)
}

fn temp_files(dir: &Path) -> Vec<PathBuf> {
    files_under(dir)
        .into_iter()
        .filter(|path| path.to_string_lossy().ends_with(".partial"))
        .collect()
}

#[test]
fn kill_in_each_phase_loses_nothing() {
    let (mut simulator, fleet) = start_simulator();
    let store = fleet.dir.path().join("store");

    for (index, phase) in PHASES.iter().enumerate() {
        let staged_before = files_under(&fleet.staging).len();
        run_and_kill_at(&fleet, phase);
        let staged_after_kill = files_under(&fleet.staging).len();
        if index >= STAGED_FROM {
            assert_eq!(
                staged_after_kill,
                staged_before + 1,
                "killed in {phase}: the staged file stays for a later fetch"
            );
        }

        let output = bakfleet_run(&fleet, None).output().unwrap();
        assert!(
            output.status.success(),
            "the run after a kill in {phase} succeeds at once: {output:?}"
        );

        let (runs, backups) = catalogue(&fleet);
        let killed = &runs[runs.len() - 2];
        assert_eq!(
            killed,
            &("interrupted".to_string(), phase.to_string()),
            "killed in {phase}"
        );
        assert_eq!(
            runs.last().unwrap().0,
            "succeeded",
            "after a kill in {phase}"
        );
        assert_eq!(
            backups.len(),
            index + 1,
            "after a kill in {phase}: one backup per good run, none for killed ones"
        );
        assert!(
            temp_files(&store).is_empty(),
            "after a kill in {phase}: temp files left: {:?}",
            temp_files(&store)
        );
        assert_eq!(
            files_under(&fleet.staging).len(),
            staged_after_kill,
            "after a kill in {phase}: the good run deleted only its own staged file"
        );
    }

    let verify = Command::new(env!("CARGO_BIN_EXE_bakfleet"))
        .arg("--fleet")
        .arg(&fleet.fleet)
        .arg("verify")
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&verify.stdout);
    // A kill after the stored copy was committed (header, catalog) leaves that copy
    // uncatalogued: verify lists it, and the staged file it came from is still there.
    assert!(
        report
            .lines()
            .last()
            .unwrap()
            .contains("0 damaged or missing, 2 not catalogued"),
        "{report}"
    );

    // SAFETY: signalling our own child by its PID.
    unsafe { libc::kill(simulator.id() as libc::pid_t, libc::SIGTERM) };
    simulator.wait().unwrap();
}
