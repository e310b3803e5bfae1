use std::path::Path;

use time::macros::datetime;

use super::*;

/// A Wednesday, so the built-in schedule's last full was Sunday 01:00 and its last diff
/// today at 01:00.
const NOW: OffsetDateTime = datetime!(2026-06-03 12:00 UTC);

const FLEET: &str = r#"
[policy.critical]
rpo = { full = "2d", log = "10m" }

[policy.nodiff]
schedule.diff = "off"

[[instance]]
name = "sql01"
host = "h1"
auth = { kind = "sql", user = "u", password_env = "P" }
staging = { local = { server_path = "/b", dir = "/b" } }
databases = { include = ["USER_DATABASES", "master", "Planned"], exclude = ["scratch_*"] }
database_policies = [
    { databases = ["Sales"], policy = "critical" },
    { databases = ["Reports"], policy = "nodiff" },
]

[[instance]]
name = "sql02"
host = "h2"
auth = { kind = "sql", user = "u", password_env = "P" }
staging = { local = { server_path = "/b", dir = "/b" } }
"#;

fn fleet() -> Fleet {
    Fleet::parse(FLEET, Path::new("fleet.toml")).expect("test fleet is valid")
}

fn database(instance: &str, name: &str, recovery_model: &str) -> DatabaseOverview {
    DatabaseOverview {
        recovery_model: Some(recovery_model.to_string()),
        state: Some("ONLINE".to_string()),
        ..unknown_database(instance, name.to_string())
    }
}

fn backup(age: Duration) -> Option<LastBackup> {
    Some(LastBackup {
        id: 1,
        finished_at: NOW - age,
        size_bytes: 1024,
    })
}

fn find<'a>(assessed: &'a [DatabaseProtection], name: &str) -> &'a DatabaseProtection {
    assessed
        .iter()
        .find(|entry| entry.database == name)
        .unwrap_or_else(|| panic!("{name} is not in the assessment"))
}

fn state(entry: &DatabaseProtection, backup_type: BackupType) -> Option<ProtectionState> {
    entry.type_protection(backup_type).map(|found| found.state)
}

#[test]
fn derived_rpo_adds_quarter_grace() {
    let cases = [
        ("0 */15 * * * *", Duration::minutes(45)),
        ("0 0 1 * * Mon-Sat", Duration::hours(60)),
        ("0 0 1 * * *", Duration::hours(30)),
        ("0 0 1 * * Sun", Duration::days(7) + Duration::hours(42)),
        ("0 */5 * * * *", Duration::minutes(35)),
    ];
    for (expression, expected) in cases {
        let rpo = derived_rpo(expression, Tz::UTC, NOW).expect("valid expression");
        assert_eq!(rpo, Some(expected), "schedule {expression:?}");
    }
}

#[test]
fn derived_rpo_spans_month_gap() {
    // The 1st of each month: the longest gap is 31 days.
    let rpo = derived_rpo("0 0 2 1 * *", Tz::UTC, NOW).expect("valid expression");
    let gap = Duration::days(31);
    assert_eq!(rpo, Some(gap + gap / 4_i32));
}

#[test]
fn derived_rpo_rejects_invalid_expression() {
    let error = derived_rpo("0 0 1 * *", Tz::UTC, NOW).expect_err("five fields");
    assert!(error.contains("5 fields"), "{error}");
}

#[test]
fn classify_compares_age_with_rpo() {
    let rpo = Some(Duration::hours(1));
    assert_eq!(classify(None, rpo, NOW), ProtectionState::Missing);
    let recent = Some(NOW - Duration::minutes(59));
    assert_eq!(classify(recent, rpo, NOW), ProtectionState::Ok);
    let old = Some(NOW - Duration::minutes(61));
    assert_eq!(classify(old, rpo, NOW), ProtectionState::Late);
    assert_eq!(classify(old, None, NOW), ProtectionState::Ok);
}

#[test]
fn assess_marks_ok_late_missing() {
    let fresh = DatabaseOverview {
        last_full: backup(Duration::days(3)),
        last_diff: backup(Duration::hours(11)),
        last_log: backup(Duration::minutes(10)),
        ..database("sql01", "Billing", "FULL")
    };
    let stale = DatabaseOverview {
        last_full: backup(Duration::days(10)),
        last_diff: backup(Duration::days(3)),
        ..database("sql01", "Orders", "FULL")
    };
    let assessed = assess_overview(&fleet(), &[fresh, stale], NOW).expect("assessment");

    let billing = find(&assessed, "Billing");
    assert_eq!(billing.policy, "defaults");
    assert_eq!(billing.state, ProtectionState::Ok);
    assert_eq!(billing.types.len(), 3);

    let orders = find(&assessed, "Orders");
    assert_eq!(state(orders, BackupType::Full), Some(ProtectionState::Late));
    assert_eq!(state(orders, BackupType::Diff), Some(ProtectionState::Late));
    // No log backup, and the newest recovery point, the diff, is past the log RPO.
    assert_eq!(state(orders, BackupType::Log), Some(ProtectionState::Late));
    assert_eq!(orders.state, ProtectionState::Late);

    let never = database("sql01", "Reports", "FULL");
    let assessed = assess_overview(&fleet(), &[never], NOW).expect("assessment");
    let reports = find(&assessed, "Reports");
    assert_eq!(reports.state, ProtectionState::Missing, "worst state wins");
}

#[test]
fn assess_prefers_policy_rpo() {
    let sales = DatabaseOverview {
        // Within the derived 8 d 18 h of a weekly full, but past the policy's 2 days.
        last_full: backup(Duration::days(3)),
        last_log: backup(Duration::minutes(12)),
        ..database("sql01", "Sales", "FULL")
    };
    let assessed = assess_overview(&fleet(), &[sales], NOW).expect("assessment");
    let sales = find(&assessed, "Sales");
    assert_eq!(sales.policy, "critical");

    let full = sales.type_protection(BackupType::Full).expect("full");
    assert_eq!(full.rpo, Some(Duration::days(2)));
    assert_eq!(full.rpo_source, RpoSource::Policy);
    assert_eq!(full.state, ProtectionState::Late);

    let log = sales.type_protection(BackupType::Log).expect("log");
    assert_eq!(log.rpo, Some(Duration::minutes(10)));
    assert_eq!(log.state, ProtectionState::Late);

    let diff = sales.type_protection(BackupType::Diff).expect("diff");
    assert_eq!(diff.rpo_source, RpoSource::Schedule);
    assert_eq!(diff.rpo, Some(Duration::hours(60)));
}

#[test]
fn assess_omits_unscheduled_types() {
    let reports = database("sql01", "Reports", "FULL");
    let simple = database("sql01", "Inventory", "SIMPLE");
    let master = database("sql01", "master", "SIMPLE");
    let assessed = assess_overview(&fleet(), &[reports, simple, master], NOW).expect("assessment");

    let reports = find(&assessed, "Reports");
    assert_eq!(state(reports, BackupType::Diff), None, "diff is off");
    assert_eq!(
        state(reports, BackupType::Full),
        Some(ProtectionState::Missing)
    );
    assert_eq!(
        state(reports, BackupType::Log),
        Some(ProtectionState::Missing)
    );

    let simple = find(&assessed, "Inventory");
    assert_eq!(state(simple, BackupType::Log), None, "no log under SIMPLE");
    assert_eq!(
        state(simple, BackupType::Diff),
        Some(ProtectionState::Missing)
    );

    let master = find(&assessed, "master");
    assert_eq!(master.types.len(), 1, "master takes only full backups");
}

#[test]
fn assess_counts_newer_full_for_log() {
    let first = DatabaseOverview {
        last_full: backup(Duration::minutes(5)),
        ..database("sql01", "Billing", "FULL")
    };
    let assessed = assess_overview(&fleet(), &[first], NOW).expect("assessment");
    let log = find(&assessed, "Billing")
        .type_protection(BackupType::Log)
        .expect("log");
    assert_eq!(log.state, ProtectionState::Ok);
    assert_eq!(log.last_good, Some(NOW - Duration::minutes(5)));
    assert_eq!(log.last_good_type, Some(BackupType::Full));
}

#[test]
fn assess_counts_newer_full_for_diff() {
    let promoted = DatabaseOverview {
        last_full: backup(Duration::hours(2)),
        last_diff: backup(Duration::days(4)),
        ..database("sql01", "Billing", "FULL")
    };
    let assessed = assess_overview(&fleet(), &[promoted], NOW).expect("assessment");
    let diff = find(&assessed, "Billing")
        .type_protection(BackupType::Diff)
        .expect("diff");
    assert_eq!(diff.state, ProtectionState::Ok);
    assert_eq!(diff.last_good, Some(NOW - Duration::hours(2)));
    assert_eq!(diff.last_good_type, Some(BackupType::Full));
}

#[test]
fn assess_follows_fleet_selection() {
    let listed = [
        database("sql01", "Billing", "FULL"),
        database("sql01", "scratch_1", "FULL"),
        database("sql01", "model", "FULL"),
        database("gone", "Old", "FULL"),
        database("sql02", "Crm", "FULL"),
    ];
    let assessed = assess_overview(&fleet(), &listed, NOW).expect("assessment");
    let names: Vec<(&str, &str)> = assessed
        .iter()
        .map(|entry| (entry.instance.as_str(), entry.database.as_str()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("sql01", "Billing"),
            ("sql01", "master"),
            ("sql01", "planned"),
            ("sql02", "Crm"),
        ],
        "excluded, unselected and removed databases are left out; configured names are added"
    );
    let planned = find(&assessed, "planned");
    assert_eq!(planned.state, ProtectionState::Missing);
    assert_eq!(planned.recovery_model, None);
}

#[test]
fn state_serializes_lowercase() {
    let json = serde_json::to_string(&ProtectionState::Missing).expect("serialize");
    assert_eq!(json, "\"missing\"");
    assert_eq!(ProtectionState::parse("late"), Some(ProtectionState::Late));
    assert_eq!(ProtectionState::parse("LATE"), None);
}

#[test]
fn rpo_serializes_as_seconds() {
    let entry = TypeProtection {
        backup_type: BackupType::Log,
        last_good: None,
        last_good_type: None,
        last_good_id: None,
        rpo: Some(Duration::minutes(45)),
        rpo_source: RpoSource::Schedule,
        state: ProtectionState::Missing,
    };
    let json = serde_json::to_value(&entry).expect("serialize");
    assert_eq!(json["rpo"], 2700);
    assert_eq!(json["last_good"], serde_json::Value::Null);
    assert_eq!(json["state"], "missing");
}

#[test]
fn assess_skips_names_known_only_from_runs() {
    // A misspelled `bakfleet run` leaves a run but no inventory row and no backup.
    let misspelled = unknown_database("sql01", "Slaes".to_string());
    let planned = unknown_database("sql01", "planned".to_string());
    let sales = database("sql01", "Sales", "FULL");

    let assessed =
        assess_overview(&fleet(), &[misspelled, planned, sales], NOW).expect("assessment");

    let names: Vec<&str> = assessed
        .iter()
        .map(|entry| entry.database.as_str())
        .collect();
    assert!(!names.contains(&"Slaes"), "{names:?}");
    assert!(
        names.contains(&"planned"),
        "a configured name stays: {names:?}"
    );
    assert!(names.contains(&"Sales"), "{names:?}");
}
