//! Mistakes on the command line get an error that names the fix, before anything
//! is read or created.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn write_fleet(dir: &Path) -> PathBuf {
    let fleet = dir.join("fleet.toml");
    std::fs::write(
        &fleet,
        "[service]\nstore_dir = \"store\"\ncatalog = \"data/catalog.db\"\n\n\
         [[instance]]\nname = \"sales\"\nhost = \"127.0.0.1\"\n\
         auth = { kind = \"sql\", user = \"bakfleet\", password_env = \"UNUSED_PASSWORD\" }\n\
         staging = { local = { server_path = \"/b\", dir = \"/b\" } }\n",
    )
    .unwrap();
    fleet
}

fn bakfleet(fleet: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bakfleet"))
        .arg("--fleet")
        .arg(fleet)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run bakfleet")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn read_commands_need_existing_catalogue() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = write_fleet(dir.path());
    for args in [&["list"][..], &["restore-plan", "sales", "Sales"]] {
        let output = bakfleet(&fleet, args);
        assert!(!output.status.success(), "{args:?}: {output:?}");
        let text = stderr(&output);
        assert!(text.contains("catalog.db not found"), "{args:?}: {text}");
        assert!(text.contains("service.catalog"), "{args:?}: {text}");
    }
    let verify = bakfleet(&fleet, &["verify"]);
    assert_eq!(verify.status.code(), Some(3), "{verify:?}");
    assert!(
        !dir.path().join("data").exists(),
        "no catalogue was created by a command that only reads"
    );
}

#[test]
fn restore_plan_rejects_bad_options() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = write_fleet(dir.path());
    let cases: [(&[&str], &str); 3] = [
        (&["--as", " "], "--as names no database"),
        (&["--move-to", "relative/dir"], "is not an absolute folder"),
        (&["--as", &"x".repeat(129)], "128 characters"),
    ];
    for (options, expected) in cases {
        let mut args = vec!["restore-plan", "sales", "Sales"];
        args.extend_from_slice(options);
        let output = bakfleet(&fleet, &args);
        assert!(!output.status.success(), "{options:?}");
        let text = stderr(&output);
        assert!(text.contains(expected), "{options:?}: {text}");
    }
}

#[test]
fn usage_errors_exit_with_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = write_fleet(dir.path());
    // 2 is the exit code of a failed check; a typo in the command must not look like one.
    for args in [
        &["verify", "--quick", "--structure"][..],
        &["no-such-command"],
    ] {
        let output = bakfleet(&fleet, args);
        assert_eq!(output.status.code(), Some(3), "{args:?}: {output:?}");
        assert!(stderr(&output).contains("Usage:"), "{args:?}: {output:?}");
    }
    let help = bakfleet(&fleet, &["--help"]);
    assert_eq!(help.status.code(), Some(0), "{help:?}");
}

#[test]
fn closed_output_pipe_ends_without_panic() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = write_fleet(dir.path());
    // The reader end closes right after the spawn, well before the child has loaded and
    // starts writing its reference.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_bakfleet"))
        .arg("--fleet")
        .arg(&fleet)
        .args(["config", "reference"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let text = stderr(&output);
    assert!(!text.contains("panicked"), "{text}");
}
