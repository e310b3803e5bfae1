//! Verification and header reading of real SQL Server backups.

mod common;

use bakfile::{read_headers, verify_file, BackupSet, BackupType, ChecksumMode, VerifyError};
use serde_json::Value;

#[test]
fn verify_accepts_every_real_backup() {
    let Some(dir) = common::fixtures_dir() else {
        return;
    };
    for name in common::REAL_BACKUPS {
        for mode in [ChecksumMode::IfPresent, ChecksumMode::Skip] {
            let report = verify_file(&dir.join(name), mode)
                .unwrap_or_else(|e| panic!("{name} in {mode:?} mode: {e}"));
            assert_eq!(report.sets.len(), 1, "{name}");
            assert!(
                !report.checksums_checked,
                "{name}: real CSUM values cannot be checked"
            );
        }
    }
}

#[test]
fn verify_rejects_postgres_dump() {
    let Some(dir) = common::fixtures_dir() else {
        return;
    };
    let result = verify_file(
        &dir.join("not-a-sql-server-backup.bak"),
        ChecksumMode::IfPresent,
    );
    assert!(
        matches!(result, Err(VerifyError::NotABackup { .. })),
        "{result:?}"
    );
}

fn backup_type_letter(backup_type: BackupType) -> &'static str {
    match backup_type {
        BackupType::Database => "D",
        BackupType::Differential => "I",
        BackupType::Log => "L",
        BackupType::File => "F",
        BackupType::FileDifferential => "G",
        BackupType::Partial => "P",
        BackupType::PartialDifferential => "Q",
    }
}

fn format_date(date: time::PrimitiveDateTime) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    date.format(&format).unwrap()
}

/// Compares one set read from a fixture with its entry in expected.json.
fn check_set(name: &str, set: &BackupSet, want: &Value) {
    let text = |key: &str| {
        want[key]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: {key} missing"))
            .to_string()
    };
    let number = |key: &str| {
        want[key]
            .as_u64()
            .unwrap_or_else(|| panic!("{name}: {key} missing"))
    };
    let lsn = |key: &str| u128::from(number(key));

    assert_eq!(
        set.database_name,
        text("database_name"),
        "{name}: database_name"
    );
    assert_eq!(set.server_name, text("server_name"), "{name}: server_name");
    assert_eq!(
        set.machine_name,
        text("machine_name"),
        "{name}: machine_name"
    );
    assert_eq!(set.user_name, text("user_name"), "{name}: user_name");

    assert_eq!(
        backup_type_letter(set.backup_type),
        text("type_char"),
        "{name}: type"
    );

    let version = format!(
        "{}.{}.{}",
        set.software_major, set.software_minor, set.software_build
    );
    assert_eq!(version, text("sw_version"), "{name}: sw_version");
    assert_eq!(
        u64::from(set.database_version),
        number("database_version"),
        "{name}: database_version"
    );
    assert_eq!(
        u64::from(set.compatibility_level),
        number("compatibility_level"),
        "{name}: compatibility_level"
    );

    assert_eq!(
        set.first_lsn.to_numeric(),
        lsn("first_lsn"),
        "{name}: first_lsn"
    );
    assert_eq!(
        set.last_lsn.to_numeric(),
        lsn("last_lsn"),
        "{name}: last_lsn"
    );
    assert_eq!(
        set.checkpoint_lsn.to_numeric(),
        lsn("checkpoint_lsn"),
        "{name}: checkpoint_lsn"
    );
    assert_eq!(
        set.database_backup_lsn.to_numeric(),
        lsn("database_backup_lsn"),
        "{name}: database_backup_lsn"
    );

    assert_eq!(
        format_date(set.database_creation_date),
        text("database_creation_date"),
        "{name}: creation date"
    );
    assert_eq!(
        format_date(set.backup_start_date),
        text("backup_start_date"),
        "{name}: start date"
    );
    let finish = set.backup_finish_date.map(format_date);
    assert_eq!(
        finish,
        Some(text("backup_finish_date")),
        "{name}: finish date"
    );

    assert_eq!(
        set.has_checksums,
        want["has_backup_checksums"].as_bool().unwrap(),
        "{name}: checksums"
    );
    assert_eq!(
        set.backup_set_guid.to_string(),
        text("backup_set_guid"),
        "{name}: backup_set_guid"
    );
    assert_eq!(
        u64::from(set.position),
        number("position"),
        "{name}: position"
    );
    assert_eq!(
        i64::from(set.time_zone),
        want["time_zone_quarter_hours"].as_i64().unwrap(),
        "{name}: time zone"
    );
    assert_eq!(
        set.backup_size,
        number("backup_size"),
        "{name}: backup_size"
    );
    assert!(!set.provisional, "{name}: provisional");
}

#[test]
fn read_headers_matches_expected_json() {
    let Some(dir) = common::fixtures_dir() else {
        return;
    };
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    for name in common::REAL_BACKUPS {
        let want = &expected[*name];
        let file = std::fs::File::open(dir.join(name)).unwrap();
        let sets = read_headers(file).unwrap_or_else(|e| panic!("{name}: {e}"));
        let want_sets = want["backup_sets"].as_array().unwrap();
        assert_eq!(sets.len(), want_sets.len(), "{name}: number of sets");
        for (set, want_set) in sets.iter().zip(want_sets) {
            check_set(name, set, want_set);
            assert_eq!(
                set.compressed,
                want["compressed"].as_bool().unwrap(),
                "{name}: compressed"
            );
            assert_eq!(
                u64::from(set.family_count),
                want["family_count"].as_u64().unwrap(),
                "{name}: family_count"
            );
            assert_eq!(
                u64::from(set.family_sequence),
                want["family_sequence"].as_u64().unwrap(),
                "{name}: family_sequence"
            );
        }
        let verified = verify_file(&dir.join(name), ChecksumMode::Skip).unwrap();
        assert_eq!(
            verified.sets, sets,
            "{name}: verify and read_headers disagree"
        );
    }
}

#[test]
fn verify_require_follows_checksum_flag() {
    let Some(dir) = common::fixtures_dir() else {
        return;
    };
    let with_checksums = dir.join("SQL2008_dbOrphanUsers_FULL_20170518_041740.bak");
    let report = verify_file(&with_checksums, ChecksumMode::Require).unwrap();
    assert!(report.sets[0].has_checksums);
    assert!(
        !report.checksums_checked,
        "SQL Server's CSUM values are not checkable"
    );
    let without = verify_file(&dir.join("Northwind.bak"), ChecksumMode::Require);
    assert!(
        matches!(without, Err(VerifyError::NoChecksums)),
        "{without:?}"
    );
}

#[test]
fn collation_reads_from_real_backups() {
    let Some(dir) = common::fixtures_dir() else {
        return;
    };
    // Raw values read from each file's SCIN record; the names follow from Microsoft's
    // collation naming. Northwind comes from a Spanish-language repository and carries
    // LCID 3082 (Spanish, modern sort).
    let cases = [
        ("Northwind.bak", "Modern_Spanish_CI_AS"),
        ("StopAt_21.trn", "Latin1_General_CI_AS"),
        ("StopAt_23.trn", "Latin1_General_CI_AS"),
        ("pubs.bak", "SQL_Latin1_General_CP1_CI_AS"),
        ("RestoreTimeClean2.bak", "SQL_Latin1_General_CP1_CI_AS"),
        (
            "SQL2008_dbOrphanUsers_FULL_20170518_041740.bak",
            "SQL_Latin1_General_CP1_CI_AS",
        ),
    ];
    for (name, collation) in cases {
        let file = std::fs::File::open(dir.join(name)).unwrap();
        let sets = read_headers(file).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(sets[0].collation.to_string(), collation, "{name}");
    }
}

#[test]
fn northwind_is_first_of_two_stripes() {
    let Some(dir) = common::fixtures_dir() else {
        return;
    };
    let path = dir.join("Northwind.bak");
    let file_len = std::fs::metadata(&path).unwrap().len();
    let sets = read_headers(std::fs::File::open(&path).unwrap()).unwrap();
    assert_eq!(sets.len(), 1);
    let set = &sets[0];
    assert_eq!(set.family_count, 2, "family count");
    assert_eq!(set.family_sequence, 1, "family sequence");
    // BackupSize counts both stripes, so it exceeds this one file.
    assert!(
        set.backup_size > file_len,
        "backup size {} of a striped set should exceed the file's {file_len} bytes",
        set.backup_size
    );
    assert!(!set.provisional);
}

/// Reads the only backup set of a fixture.
fn only_set(dir: &std::path::Path, name: &str) -> BackupSet {
    let file = std::fs::File::open(dir.join(name)).unwrap();
    let mut sets = read_headers(file).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(sets.len(), 1, "{name}");
    sets.remove(0)
}

#[test]
fn fixture_chains_link_their_lsns() {
    let Some(dir) = common::fixtures_dir() else {
        return;
    };
    let full = only_set(&dir, "SQL2008_dbOrphanUsers_FULL_20170518_041740.bak");
    let diff = only_set(&dir, "SQL2008_dbOrphanUsers_DIFF_20170518_041819.bak");
    let log1 = only_set(&dir, "SQL2008_dbOrphanUsers_LOG_20170518_041831.trn");
    let log2 = only_set(&dir, "SQL2008_dbOrphanUsers_LOG_20170518_041837.trn");
    assert_eq!(
        diff.database_backup_lsn, full.checkpoint_lsn,
        "differential based on the full"
    );
    assert_eq!(log1.last_lsn, log2.first_lsn, "logs chain");
    assert_eq!(log2.first_lsn, log2.last_lsn, "empty log backup");

    // SQL Server itself printed StopAt_23.trn's FirstLSN in an error message.
    let stop21 = only_set(&dir, "StopAt_21.trn");
    let stop23 = only_set(&dir, "StopAt_23.trn");
    assert_eq!(stop23.first_lsn.to_numeric(), 19_000_000_021_500_001);
    assert_eq!(stop21.last_lsn, stop23.first_lsn, "StopAt logs chain");

    // The published RestoreTimeClean logs leave a gap, so log backups between them are
    // missing from the set; the differential falls inside the second log.
    let clean1 = only_set(&dir, "RestoreTimeClean_1.trn");
    let clean2 = only_set(&dir, "RestoreTimeClean2_1.trn");
    let clean_diff = only_set(&dir, "RestoreTimeClean2.bak");
    assert!(clean1.last_lsn < clean2.first_lsn, "gap between the logs");
    assert!(clean2.first_lsn <= clean_diff.checkpoint_lsn);
    assert!(clean_diff.checkpoint_lsn <= clean2.last_lsn);
}
