//! Backup policies in fleet.toml: named policies, assignment to instances and databases,
//! options and the errors for each invalid key.

use std::path::Path;
use std::time::Duration;

use bakfleet::backup::BackupType;
use bakfleet::fleet::{Encryptor, Fleet};

const POLICIES: &str = r#"
[defaults]
schedule.full = "0 0 1 * * Sun"
schedule.diff = "0 0 1 * * Mon-Sat"
schedule.log = "0 */15 * * * *"
compression = true
retention = { full_days = 35, keep_full = 4 }

[policy.critical]
schedule.full = "0 0 1 * * *"
schedule.diff = "0 0 */6 * * *"
schedule.log = "0 */5 * * * *"
time_zone = "Europe/Paris"
change_backup_type = false
buffer_count = 64
max_transfer_size = 4194304
encryption = { algorithm = "AES_256", server_certificate = "BackupCert" }
retention = { full_days = 90 }
rpo = { full = "8d", diff = "1d", log = "30m" }

[policy.bulk]
schedule.log = "off"
checksum = false

[[instance]]
name = "sales-prod"
host = "sql01"
auth = { kind = "sql", user = "bakfleet", password_env = "PW" }
staging = { local = { server_path = "/var/opt/mssql/backup", dir = "/mnt/backup" } }
database_policies = [
    { databases = ["Sales*", "ERP"], policy = "critical" },
    { databases = ["Sales_Archive", "staging_?"], policy = "bulk" },
]

[[instance]]
name = "hr"
host = "sql02"
auth = { kind = "sql", user = "bakfleet", password_env = "PW" }
staging = { local = { server_path = "/var/opt/mssql/backup", dir = "/mnt/backup" } }
policy = "bulk"
compression = false
"#;

const MINIMAL_INSTANCE: &str = r#"
[[instance]]
name = "sales-prod"
host = "sql01"
auth = { kind = "sql", user = "bakfleet", password_env = "PW" }
staging = { local = { server_path = "/var/opt/mssql/backup", dir = "/mnt/backup" } }
"#;

fn load(text: &str) -> Fleet {
    match Fleet::parse(text, Path::new("fleet.toml")) {
        Ok(fleet) => fleet,
        Err(error) => panic!("fleet failed to load:\n{error}"),
    }
}

fn error_text(text: &str) -> String {
    match Fleet::parse(text, Path::new("fleet.toml")) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(error) => error.to_string(),
    }
}

fn line_of(text: &str, needle: &str) -> usize {
    let index = text.lines().position(|line| line.contains(needle));
    index.expect("needle is in the text") + 1
}

#[test]
fn named_policy_reads_every_key() {
    let fleet = load(POLICIES);
    let critical = &fleet.policies["critical"];
    assert_eq!(critical.name, "critical");
    assert_eq!(
        critical.schedule.for_type(BackupType::Diff),
        Some("0 0 */6 * * *")
    );
    assert_eq!(critical.time_zone, chrono_tz::Europe::Paris);
    assert!(!critical.change_backup_type);
    assert!(critical.compression, "inherited from [defaults]");
    assert!(critical.checksum, "built-in default");
    assert_eq!(critical.buffer_count, Some(64));
    assert_eq!(critical.max_transfer_size, Some(4_194_304));
    let encryption = critical.encryption.as_ref().expect("encryption");
    assert_eq!(encryption.algorithm, "AES_256");
    assert_eq!(
        encryption.encryptor,
        Encryptor::ServerCertificate("BackupCert".to_string())
    );
    assert_eq!(critical.retention.full_days, 90);
    assert_eq!(critical.retention.keep_full, 4, "inherited from [defaults]");
    assert_eq!(critical.rpo.full, Some(Duration::from_secs(8 * 86_400)));
    assert_eq!(critical.rpo.diff, Some(Duration::from_secs(86_400)));
    assert_eq!(critical.rpo.log, Some(Duration::from_secs(1_800)));
}

#[test]
fn policy_for_takes_first_match() {
    let fleet = load(POLICIES);
    let sales = fleet.instance("sales-prod").unwrap();
    assert_eq!(sales.policy_for("Sales").name, "critical");
    assert_eq!(sales.policy_for("sales_archive").name, "critical");
    assert_eq!(sales.policy_for("ERP").name, "critical");
    assert_eq!(sales.policy_for("staging_1").name, "bulk");
    assert_eq!(sales.policy_for("Inventory").name, "defaults");
    assert_eq!(sales.policies().len(), 3);
}

#[test]
fn instance_policy_takes_overrides() {
    let fleet = load(POLICIES);
    let hr = fleet.instance("hr").unwrap();
    assert_eq!(hr.policy.name, "bulk");
    assert!(!hr.policy.compression, "instance key over the policy");
    assert!(!hr.policy.checksum, "from the bulk policy");
    assert_eq!(hr.policy.schedule.for_type(BackupType::Log), None);
    assert_eq!(hr.policy_for("Payroll"), &hr.policy);
    assert!(!hr.compression);
}

#[test]
fn defaults_policy_names_default() {
    let text = format!(
        "[defaults]\npolicy = \"nightly\"\n\n[policy.nightly]\nschedule.log = \"off\"\n\
         {MINIMAL_INSTANCE}"
    );
    let fleet = load(&text);
    let instance = &fleet.instances[0];
    assert_eq!(instance.policy.name, "nightly");
    assert_eq!(instance.schedule.for_type(BackupType::Log), None);
    assert_eq!(fleet.defaults.policy_name.as_deref(), Some("nightly"));
}

#[test]
fn defaults_keys_form_implicit_policy() {
    let text = format!("[defaults]\ntime_zone = \"America/New_York\"\n{MINIMAL_INSTANCE}");
    let fleet = load(&text);
    let policy = &fleet.instances[0].policy;
    assert_eq!(policy.name, "defaults");
    assert_eq!(policy.time_zone, chrono_tz::America::New_York);
    assert!(policy.change_backup_type);
    assert_eq!(policy.max_transfer_size, None);
}

#[test]
fn unknown_policy_lists_defined_ones() {
    let text = format!("[policy.gold]\n[policy.silver]\n{MINIMAL_INSTANCE}policy = \"bronze\"\n");
    let error = error_text(&text);
    let line = line_of(&text, "bronze");
    assert!(
        error.starts_with(&format!(
            "fleet.toml:{line}:10: instance \"sales-prod\": key `policy`"
        )),
        "{error}"
    );
    assert!(error.contains("unknown policy \"bronze\""), "{error}");
    assert!(error.contains("\"gold\", \"silver\""), "{error}");
}

#[test]
fn unknown_database_policy_is_reported() {
    let text = format!(
        "{MINIMAL_INSTANCE}database_policies = [{{ databases = [\"a\"], policy = \"x\" }}]\n"
    );
    let error = error_text(&text);
    assert!(error.contains("key `database_policies.policy`"), "{error}");
    assert!(error.contains("defines no [policy.NAME] table"), "{error}");
}

#[test]
fn max_transfer_size_must_be_64k_step() {
    for size in ["1000", "0", "4259840", "100000"] {
        let text = format!("[policy.p]\nmax_transfer_size = {size}\n{MINIMAL_INSTANCE}");
        let error = error_text(&text);
        assert!(
            error.starts_with("fleet.toml:2:21: key `policy.p.max_transfer_size`"),
            "{error}"
        );
        assert!(error.contains("multiple of 65536"), "{error}");
    }
    let text = format!("[policy.p]\nmax_transfer_size = 65536\n{MINIMAL_INSTANCE}");
    assert_eq!(load(&text).policies["p"].max_transfer_size, Some(65_536));
}

#[test]
fn invalid_time_zone_is_reported() {
    let text = format!("[defaults]\ntime_zone = \"Europe/Atlantis\"\n{MINIMAL_INSTANCE}");
    let error = error_text(&text);
    assert!(
        error.starts_with("fleet.toml:2:13: key `defaults.time_zone`"),
        "{error}"
    );
    assert!(error.contains("IANA"), "{error}");
}

#[test]
fn encryption_needs_one_key() {
    let text = format!(
        "{MINIMAL_INSTANCE}encryption = {{ algorithm = \"AES_256\" }}\n\
         [policy.p]\nencryption = {{ algorithm = \"DES\", server_certificate = \"c\" }}\n"
    );
    let error = error_text(&text);
    assert!(error.contains("key `encryption`"), "{error}");
    assert!(
        error.contains("exactly one of server_certificate"),
        "{error}"
    );
    assert!(
        error.contains("key `policy.p.encryption.algorithm`"),
        "{error}"
    );
    assert!(error.contains("AES_128, AES_192, AES_256"), "{error}");
}

#[test]
fn invalid_rpo_is_reported() {
    let text = format!("[policy.p]\nrpo = {{ log = \"30\" }}\n{MINIMAL_INSTANCE}");
    let error = error_text(&text);
    assert!(error.contains("key `policy.p.rpo.log`"), "{error}");
    assert!(error.contains("has no unit"), "{error}");
}

#[test]
fn policy_named_defaults_is_rejected() {
    let text = format!("[policy.defaults]\nchecksum = false\n{MINIMAL_INSTANCE}");
    let error = error_text(&text);
    assert!(
        error.contains("invalid policy name \"defaults\""),
        "{error}"
    );
}

#[test]
fn repository_fleet_file_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fleet.toml");
    let fleet = Fleet::load(&path).expect("fleet.toml loads");
    for instance in &fleet.instances {
        assert_eq!(instance.policy.name, "defaults");
    }
}

#[test]
fn readme_policy_example_loads() {
    let readme = include_str!("../README.md");
    let block = readme
        .split("```toml\n")
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap_or_default())
        .find(|block| block.contains("[policy."))
        .expect("a README block with a policy");
    let credentials = "[credentials.files01]\nuser = \"u\"\npassword_env = \"P\"\n";
    let fleet = load(&format!("{credentials}{block}"));
    let erp = fleet.instance("erp-prod").unwrap();
    assert_eq!(erp.policy.name, "critical");
    assert_eq!(erp.policy_for("Sales_archive").name, "archive");
    assert_eq!(erp.policy_for("Sales").name, "critical");
}

#[test]
fn files_must_be_one_to_64() {
    for files in ["0", "65", "-1"] {
        let text = format!("[policy.p]\nfiles = {files}\n{MINIMAL_INSTANCE}");
        let error = error_text(&text);
        assert!(
            error.starts_with("fleet.toml:2:9: key `policy.p.files`"),
            "{error}"
        );
        assert!(error.contains("use 1 to 64"), "{error}");
    }
    let text = format!("[defaults]\nfiles = 4\n[policy.p]\nfiles = 64\n{MINIMAL_INSTANCE}");
    let fleet = load(&text);
    assert_eq!(fleet.policies["p"].files, 64);
    assert_eq!(fleet.instances[0].policy.files, 4, "[defaults] sets files");
    assert_eq!(load(MINIMAL_INSTANCE).instances[0].policy.files, 1);
}

const DRILL_TABLE: &str = "\n[drill]\nsandbox = \"sales-prod\"\nstore_path = \"/mnt/store\"\n";

#[test]
fn policy_drill_schedule_overrides_table() {
    let text = format!(
        "[policy.drilled]\ndrill = {{ schedule = \"0 0 3 * * Sat\" }}\n\
         [policy.quiet]\ndrill = {{ enabled = false }}\n[policy.plain]\n\
         {MINIMAL_INSTANCE}{DRILL_TABLE}schedule = \"0 0 4 * * Sun\"\n"
    );
    let fleet = load(&text);
    let global = fleet.drills.as_ref().unwrap().schedule.as_deref();
    let schedule_of = |name: &str| fleet.policies[name].drill_schedule(global);
    assert_eq!(schedule_of("drilled"), Some("0 0 3 * * Sat"));
    assert_eq!(schedule_of("quiet"), None);
    assert_eq!(
        schedule_of("plain"),
        Some("0 0 4 * * Sun"),
        "[drill] applies"
    );
}

#[test]
fn policy_drill_needs_drill_table() {
    let text = format!("[policy.p]\ndrill = {{ schedule = \"0 0 3 * * *\" }}\n{MINIMAL_INSTANCE}");
    let error = error_text(&text);
    assert!(
        error.starts_with("fleet.toml:2:9: key `policy.p.drill`"),
        "{error}"
    );
    assert!(error.contains("[drill] table"), "{error}");
    let off = format!("[policy.p]\ndrill = {{ enabled = false }}\n{MINIMAL_INSTANCE}");
    assert_eq!(load(&off).policies["p"].drill_schedule(None), None);
}

#[test]
fn policy_drill_rejects_bad_cron() {
    let text = format!(
        "[policy.p]\ndrill = {{ schedule = \"0 3 * * *\" }}\n{MINIMAL_INSTANCE}{DRILL_TABLE}"
    );
    let error = error_text(&text);
    assert!(error.contains("key `policy.p.drill.schedule`"), "{error}");
    assert!(error.contains("6 fields"), "{error}");
}

#[test]
fn invalid_spread_is_reported() {
    let text = format!("[policy.p]\nschedule = {{ spread = \"2d\" }}\n{MINIMAL_INSTANCE}");
    let error = error_text(&text);
    assert!(error.contains("key `policy.p.schedule.spread`"), "{error}");
    assert!(error.contains("a day or longer"), "{error}");
    let text = format!("[defaults]\nschedule.spread = \"ten\"\n{MINIMAL_INSTANCE}");
    let error = error_text(&text);
    assert!(
        error.starts_with("fleet.toml:2:19: key `defaults.schedule.spread`"),
        "{error}"
    );
}

#[test]
fn spread_reaches_the_policy() {
    let text = format!("[defaults]\nschedule.spread = \"10m\"\n[policy.p]\nschedule.spread = \"off\"\n{MINIMAL_INSTANCE}");
    let fleet = Fleet::parse(&text, Path::new("fleet.toml")).expect("fleet");
    let instance = &fleet.instances[0];
    assert_eq!(instance.policy.schedule.spread, Duration::from_secs(600));
    let named = fleet.policies.get("p").expect("policy p");
    assert_eq!(named.schedule.spread, Duration::ZERO);
}
