//! The README's demo command, as a new user runs it.

use std::process::Command;

#[test]
fn demo_once_backs_up_every_database() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = Command::new(env!("CARGO_BIN_EXE_bakfleet"))
        .args(["demo", "--once", "--data-dir"])
        .arg(dir.path().join("demo-data"))
        .current_dir(dir.path())
        .output()
        .expect("run bakfleet demo");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "demo failed:\n{stdout}\n{stderr}");

    let catalogued = stdout
        .split("catalogued backups:")
        .nth(1)
        .unwrap_or_else(|| panic!("no catalogued backups listed:\n{stdout}"));
    for database in [
        "Sales",
        "Inventory",
        "Ventes d'été",
        "HR",
        "Payroll",
        "master",
    ] {
        let line = catalogued
            .lines()
            .find(|line| line.contains(database))
            .unwrap_or_else(|| panic!("{database} missing from:\n{catalogued}"));
        assert!(line.contains("full"), "{line}");
        assert!(
            line.split_whitespace()
                .any(|word| word.len() == 64 && word.bytes().all(|b| b.is_ascii_hexdigit())),
            "a SHA-256 is printed: {line}"
        );
    }
    assert!(
        stdout.contains("compression left out"),
        "Express drops compression and says so:\n{stdout}"
    );
}

#[test]
fn check_accepts_repository_fleet() {
    let fleet = concat!(env!("CARGO_MANIFEST_DIR"), "/fleet.toml");
    let output = Command::new(env!("CARGO_BIN_EXE_bakfleet"))
        .args(["check", "--fleet", fleet])
        .env("BAKFLEET_DEMO_PASSWORD", "not-a-real-password")
        .output()
        .expect("run bakfleet check");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "check failed:\n{stdout}");
    assert!(stdout.contains("sales-prod"), "{stdout}");
    assert!(stdout.contains("hr-linux"), "{stdout}");
    assert!(!stdout.contains("not-a-real-password"), "no secret printed");
}

#[test]
fn check_names_line_of_unknown_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fleet = dir.path().join("fleet.toml");
    std::fs::write(
        &fleet,
        "[[instance]]\nname = \"a\"\nhost = \"h\"\nauth = { kind = \"sql\", user = \"u\", \
         password_env = \"P\" }\nstaging = { local = { server_path = \"/b\", dir = \"/b\" } }\n\
         colour = \"blue\"\n",
    )
    .expect("write fleet");
    let output = Command::new(env!("CARGO_BIN_EXE_bakfleet"))
        .args(["check", "--fleet"])
        .arg(&fleet)
        .output()
        .expect("run bakfleet check");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("fleet.toml:6"),
        "names file and line: {stderr}"
    );
    assert!(stderr.contains("colour"), "names the key: {stderr}");
}
