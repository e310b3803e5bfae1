//! The `mssql-sim` binary: its `listening` lines, the statement log, a second
//! connection served while the first is open, and a clean exit on SIGTERM.

mod support;

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_listens_logs_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sim.toml");
    let log = dir.path().join("statements.sql");
    std::fs::write(
        &config,
        r#"
[[instance]]
name = "alpha"
listen = "127.0.0.1:0"

[[instance.login]]
name = "bakfleet"
password = "Bakfleet-Test-1"
sysadmin = true

[[instance]]
name = "beta"
listen = "127.0.0.1:0"
"#,
    )
    .unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_mssql-sim"))
        .arg("--config")
        .arg(&config)
        .arg("--statement-log")
        .arg(&log)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut listening = Vec::new();
    for _ in 0..2 {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("mssql-sim printed no listening line within 30 s")
            .unwrap()
            .expect("mssql-sim closed stdout early");
        listening.push(line);
    }

    let fields: Vec<&str> = listening[0].split(' ').collect();
    assert_eq!(fields[0], "listening");
    assert_eq!(fields[1], "alpha");
    assert!(
        listening[1].starts_with("listening beta 127.0.0.1:"),
        "{listening:?}"
    );
    let addr = fields[2].parse().unwrap();

    let mut first = support::tiberius_connect(addr, "bakfleet", "Bakfleet-Test-1")
        .await
        .unwrap();
    let mut second = support::tiberius_connect(addr, "bakfleet", "Bakfleet-Test-1")
        .await
        .unwrap();
    second.simple_query("SELECT @@SPID AS spid").await.unwrap();
    first
        .simple_query("SELECT @@SERVERNAME AS server")
        .await
        .unwrap();

    let pid = child.id().unwrap().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("mssql-sim did not exit within 30 s of SIGTERM")
        .unwrap();

    assert!(status.success(), "mssql-sim exited with {status}");
    let logged = std::fs::read_to_string(&log).unwrap();
    support::assert_contains(&logged, "SELECT @@SPID AS spid\nGO\n");
    support::assert_contains(&logged, "SELECT @@SERVERNAME AS server\nGO\n");
    support::assert_contains(&logged, "-- instance alpha spid ");
}
