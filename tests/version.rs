//! `bakfleet --version`: the crate version and the git revision of the build.

use std::path::Path;
use std::process::Command;

/// Returns the short commit id of the checkout this test is built from, or `None` when
/// the sources are not a git checkout.
fn checkout_revision(dir: &Path) -> Option<String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

#[test]
fn version_names_crate_and_revision() {
    let output = Command::new(env!("CARGO_BIN_EXE_bakfleet"))
        .arg("--version")
        .output()
        .expect("run bakfleet --version");
    assert!(output.status.success());
    let printed = String::from_utf8_lossy(&output.stdout).trim().to_string();

    let prefix = format!("bakfleet {} (", env!("CARGO_PKG_VERSION"));
    let revision = printed
        .strip_prefix(&prefix)
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("expected `{prefix}REVISION)`, got {printed:?}"));
    match checkout_revision(Path::new(env!("CARGO_MANIFEST_DIR"))) {
        Some(head) => assert!(
            revision == head || revision == format!("{head}-dirty"),
            "revision {revision:?} is not HEAD {head:?}"
        ),
        None => assert_eq!(revision, "unknown"),
    }
}

#[test]
fn version_flag_on_subcommand_rejected() {
    // `--version` belongs to the top-level command; subcommands do not take it.
    let output = Command::new(env!("CARGO_BIN_EXE_bakfleet"))
        .args(["check", "--version"])
        .output()
        .expect("run bakfleet check --version");
    assert!(!output.status.success());
}
