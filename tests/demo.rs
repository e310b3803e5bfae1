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
    for database in ["Sales", "Inventory", "Ventes d'été", "HR", "Payroll", "master"] {
        let line = catalogued
            .lines()
            .find(|line| line.contains(database))
            .unwrap_or_else(|| panic!("{database} missing from:\n{catalogued}"));
        assert!(line.contains("full"), "{line}");
        assert!(
            line.split_whitespace().any(|word| word.len() == 64
                && word.bytes().all(|b| b.is_ascii_hexdigit())),
            "a SHA-256 is printed: {line}"
        );
    }
    assert!(
        stdout.contains("compression left out"),
        "Express drops compression and says so:\n{stdout}"
    );
}
