//! The suite pointed at another TDS endpoint by configuration only: a second simulator, in
//! its own process, reached through `BAKFLEET_TEST_MSSQL` and `BAKFLEET_TEST_STAGING` as a
//! real server would be. Both runs record transcripts, and the transcript diff must find
//! no difference between them, then find one planted on purpose.

use std::path::Path;
use std::process::{Child, Command, Output};

use crate::fixture::STAGING_VARIABLE;
use crate::support::{simulator_binary, start_simulator_process, Smbd};
use crate::target::SERVER_VARIABLE;

/// The tests the child runs run in both modes, one at a time so transcripts line up.
const TESTS: &[&str] = &[
    "smb::smb_full_backup_end_to_end",
    "smb::smb_diff_and_log_follow_full",
    "names::hard_database_name_backed_up_exactly",
];

const LOGIN: &str = "tester";
const PASSWORD: &str = "Remote-Target-1";

/// Starts a simulated Windows instance in its own process and returns it with its port.
fn start_remote_simulator(dir: &Path, share: &Path) -> (Child, u16) {
    let config = dir.join("remote.toml");
    std::fs::write(
        &config,
        format!(
            "[[instance]]\nname = \"remote\"\nlisten = \"127.0.0.1:0\"\nplatform = \"windows\"\n\
             edition = \"enterprise\"\n\n[[instance.login]]\nname = \"{LOGIN}\"\n\
             password = \"{PASSWORD}\"\nsysadmin = true\n\n[[instance.path_map]]\n\
             server = '\\\\127.0.0.1\\backup'\nlocal = {:?}\n",
            share.display().to_string()
        ),
    )
    .expect("write remote.toml");
    let simulator = simulator_binary(Path::new(env!("CARGO_BIN_EXE_bakfleet")));
    start_simulator_process(&simulator, &config)
}

/// Runs [`TESTS`] in a child of this test binary with the given environment.
fn run_tests(environment: &[(&str, String)]) -> Output {
    let mut command = Command::new(std::env::current_exe().expect("test binary"));
    command
        .args(TESTS)
        .args(["--exact", "--test-threads=1"])
        .env_remove(SERVER_VARIABLE)
        .env_remove(STAGING_VARIABLE);
    for (name, value) in environment {
        command.env(name, value);
    }
    command.output().expect("run the test binary")
}

fn assert_passed(output: &Output, mode: &str) {
    assert!(
        output.status.success(),
        "{mode} run failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs `bakfleet transcript-diff` and returns its exit success and stdout.
fn transcript_diff(expected: &Path, actual: &Path) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_bakfleet"))
        .arg("transcript-diff")
        .arg(expected)
        .arg(actual)
        .output()
        .expect("run bakfleet transcript-diff");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

/// Changes the type of the first column of the first result set in a transcript.
fn plant_difference(path: &Path) {
    let text = std::fs::read_to_string(path).expect("read transcript");
    let planted = text.replacen("\"sql_type\":\"", "\"sql_type\":\"Planted", 1);
    assert_ne!(planted, text, "the transcript has a result set");
    std::fs::write(path, planted).expect("write transcript");
}

#[test]
fn suite_runs_against_configured_server() {
    if std::env::var_os(SERVER_VARIABLE).is_some() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let share = dir.path().join("share");
    std::fs::create_dir_all(&share).expect("share dir");
    let smbd = Smbd::start(&share);
    let (mut simulator, port) = start_remote_simulator(dir.path(), &share);

    let server_transcript = dir.path().join("server.jsonl");
    let remote = run_tests(&[
        (
            SERVER_VARIABLE,
            format!(
                "host=127.0.0.1;port={port};user={LOGIN};password={PASSWORD};encrypt=not_supported"
            ),
        ),
        (
            STAGING_VARIABLE,
            format!(
                "kind=smb;unc=\\\\127.0.0.1\\backup;port={};user={};password={}",
                smbd.port, smbd.user, smbd.password
            ),
        ),
        (
            "BAKFLEET_TRANSCRIPT",
            server_transcript.display().to_string(),
        ),
    ]);
    // SAFETY: signalling our own child by its PID.
    unsafe { libc::kill(simulator.id() as libc::pid_t, libc::SIGTERM) };
    simulator.wait().expect("simulator exit");
    assert_passed(&remote, "configured-server");
    let stderr = String::from_utf8_lossy(&remote.stderr);
    assert!(
        stderr.contains(&format!("running against the server at 127.0.0.1:{port}")),
        "the run says which server it used:\n{stderr}"
    );

    let simulator_transcript = dir.path().join("simulator.jsonl");
    let local = run_tests(&[(
        "BAKFLEET_TRANSCRIPT",
        simulator_transcript.display().to_string(),
    )]);
    assert_passed(&local, "in-process simulator");

    let (alike, report) = transcript_diff(&server_transcript, &simulator_transcript);
    assert!(alike, "the two simulators behave alike:\n{report}");

    plant_difference(&server_transcript);
    let (alike, report) = transcript_diff(&server_transcript, &simulator_transcript);
    assert!(!alike, "a planted difference is reported");
    assert!(report.contains("Planted"), "{report}");
    assert!(report.contains("1 difference(s)"), "{report}");
}
