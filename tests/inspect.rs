//! `bakfleet inspect` on real backups: the table, the JSON and the error per file.

mod fixtures_bak;

use std::process::{Command, Output};

use serde_json::Value;

fn inspect(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bakfleet"))
        .arg("inspect")
        .args(args)
        .output()
        .expect("run bakfleet inspect")
}

#[test]
fn inspect_json_matches_expected_values() {
    let Some(dir) = fixtures_bak::fixtures_dir() else {
        return;
    };
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let names = [
        "Northwind.bak",
        "TutorialDB.bak",
        fixtures_bak::ORPHAN_CHAIN[1],
    ];
    let paths: Vec<_> = names.iter().map(|name| dir.join(name)).collect();
    let mut args: Vec<&std::ffi::OsStr> = vec!["--json".as_ref()];
    args.extend(paths.iter().map(|path| path.as_os_str()));
    let output = inspect(&args);
    assert!(output.status.success(), "{output:?}");

    let reports: Value = serde_json::from_slice(&output.stdout).unwrap();
    let reports = reports.as_array().unwrap();
    assert_eq!(reports.len(), names.len());
    for (report, name) in reports.iter().zip(names) {
        let want = &expected[name]["backup_sets"][0];
        let set = &report["sets"][0];
        assert!(report["file"].as_str().unwrap().ends_with(name), "{report}");
        assert_eq!(set["DatabaseName"], want["database_name"], "{name}");
        assert_eq!(set["BackupType"], want["type_char"], "{name}");
        assert_eq!(
            set["FirstLSN"],
            want["first_lsn"].to_string().as_str(),
            "{name}"
        );
        assert_eq!(
            set["LastLSN"],
            want["last_lsn"].to_string().as_str(),
            "{name}"
        );
        assert_eq!(set["BackupSetGUID"], want["backup_set_guid"], "{name}");
        assert_eq!(set["FamilyCount"], expected[name]["family_count"], "{name}");
    }
    assert_eq!(reports[0]["sets"][0]["Collation"], "Modern_Spanish_CI_AS");
    assert_eq!(reports[1]["sets"][0]["Compressed"], true);
}

#[test]
fn inspect_table_names_fields() {
    let Some(dir) = fixtures_bak::fixtures_dir() else {
        return;
    };
    let path = dir.join(fixtures_bak::ORPHAN_CHAIN[0]);
    let output = inspect(&[path.as_os_str()]);
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("(1 backup set(s))"), "{text}");
    assert!(
        text.contains("DatabaseName           dbOrphanUsers"),
        "{text}"
    );
    assert!(
        text.contains("FirstLSN               24000000005600037"),
        "{text}"
    );
    assert!(text.contains("HasBackupChecksums     true"), "{text}");
}

#[test]
fn inspect_reports_error_kind_per_file() {
    let Some(dir) = fixtures_bak::fixtures_dir() else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let full = std::fs::read(dir.join(fixtures_bak::ORPHAN_CHAIN[0])).unwrap();
    let truncated = scratch.path().join("cut.bak");
    std::fs::write(&truncated, &full[..4096]).unwrap();
    let damaged = scratch.path().join("damaged.bak");
    let mut bytes = full.clone();
    bytes[20] ^= 0xFF;
    std::fs::write(&damaged, &bytes).unwrap();
    let not_backup = dir.join("not-a-sql-server-backup.bak");
    let good = dir.join("pubs.bak");

    let mut args: Vec<&std::ffi::OsStr> = vec!["--json".as_ref()];
    for path in [&not_backup, &damaged, &truncated, &good] {
        args.push(path.as_os_str());
    }
    let output = inspect(&args);
    assert!(
        !output.status.success(),
        "any failed file fails the command"
    );
    let reports: Value = serde_json::from_slice(&output.stdout).unwrap();
    let kinds: Vec<&str> = reports
        .as_array()
        .unwrap()
        .iter()
        .map(|report| report["error"]["kind"].as_str().unwrap_or("ok"))
        .collect();
    assert_eq!(kinds, ["not a backup", "damaged", "truncated", "ok"]);
    let message = reports[1]["error"]["message"].as_str().unwrap();
    assert!(message.contains("damaged.bak"), "names the file: {message}");
}

#[test]
fn inspect_dates_carry_utc_offset() {
    let Some(dir) = fixtures_bak::fixtures_dir() else {
        return;
    };
    let path = dir.join("TutorialDB.bak");
    let output = inspect(&["--json".as_ref(), path.as_os_str()]);
    assert!(output.status.success(), "{output:?}");
    let reports: Value = serde_json::from_slice(&output.stdout).unwrap();
    let set = &reports[0]["sets"][0];
    // TimeZone -32 quarter hours is UTC-08:00.
    assert_eq!(set["TimeZone"], -32);
    assert_eq!(set["BackupStartDate"], "2016-11-09 15:27:49 -08:00");
}

#[test]
fn inspect_flags_cut_file_as_provisional() {
    let Some(dir) = fixtures_bak::fixtures_dir() else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let full = std::fs::read(dir.join(fixtures_bak::ORPHAN_CHAIN[0])).unwrap();
    let cut = scratch.path().join("half.bak");
    std::fs::write(&cut, &full[..full.len() / 2]).unwrap();

    let output = inspect(&[cut.as_os_str()]);
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("half.bak: truncated"), "{stderr}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("Provisional            true"), "{stdout}");
    assert!(stdout.contains("BackupFinishDate       -"), "{stdout}");
}
