//! Loading fleet.toml: a full commented example, defaults, and the error for each kind of
//! mistake with its file, line, column and key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bakfleet::backup::BackupType;
use bakfleet::fleet::{Auth, Encrypt, Fleet, FleetError, SecretRef, Staging};

/// A commented fleet file that uses every key, as a DBA team would keep it in git.
const FULL_EXAMPLE: &str = r#"
# Inventory of the SQL Server instances that bakfleet backs up.

[service]
store_dir = "bakfleet-data/store"        # relative to this file's directory
catalog = "/var/lib/bakfleet/catalog.db"
listen = "127.0.0.1:8081"
secrets_file = "/etc/bakfleet/secrets.toml"
lease_seconds = 90
max_parallel_jobs = 2
max_jobs_per_instance = 3
max_jobs_per_staging = 1

[defaults]
schedule.full = "0 0 1 * * Sun"
schedule.diff = "0 0 1 * * Mon-Sat"
schedule.log  = "0 */15 * * * *"
compression = true
checksum = true
retention = { full_days = 35, keep_full = 4 }
connect_timeout_secs = 15
transfer_timeout_secs = 120

[credentials.files01]
user = "backup"
domain = "CORP"
password_env = "BAKFLEET_FILES01_PASSWORD"

[credentials.files02]
user = "backup"
password_secret = "files02"

[[instance]]
name = "sales-prod"
host = "sql01.corp.example"
port = 1433
auth = { kind = "sql", user = "bakfleet", password_env = "BAKFLEET_SALES_PROD_PASSWORD" }
tls = { encrypt = "mandatory", ca_file = "/etc/bakfleet/corp-ca.pem" }
databases = { include = ["USER_DATABASES"], exclude = ["scratch_*"] }
staging = { smb = '\\files01\sqlbackup\sales-prod', port = 445, credential = "files01" }
schedule.log = "0 */5 * * * *"
compression = false

[[instance]]
name = "hr-linux"
host = "sql02.corp.example"
auth = { kind = "sql", user = "bakfleet", password_secret = "hr-linux" }
tls = { encrypt = "strict" }
databases = { include = ["ALL_DATABASES"] }
staging = { sftp = { host = "sql02", port = 2222, user = "bakfleet", key_file = "keys/id_ed25519", known_hosts = "keys/known_hosts", path = "/srv/backup", server_path = "/var/opt/mssql/backup" } }
schedule.diff = "off"
retention = { keep_full = 8 }
connect_timeout_secs = 30

[[instance]]
name = "legacy"
host = "10.0.0.5"
auth = { kind = "sql", user = "bakfleet", password_env = "BAKFLEET_LEGACY_PASSWORD" }
tls = { encrypt = "optional", trust_server_certificate = true }
staging = { local = { server_path = 'D:\Backup', dir = "/mnt/legacy-backup" } }
"#;

fn source() -> PathBuf {
    PathBuf::from("/etc/bakfleet/fleet.toml")
}

fn load_example() -> Fleet {
    match Fleet::parse(FULL_EXAMPLE, &source()) {
        Ok(fleet) => fleet,
        Err(error) => panic!("example failed to load:\n{error}"),
    }
}

/// The smallest valid instance, to which tests add one mistake.
const MINIMAL_INSTANCE: &str = r#"
[[instance]]
name = "sales-prod"
host = "sql01"
auth = { kind = "sql", user = "bakfleet", password_env = "PW" }
staging = { local = { server_path = "/var/opt/mssql/backup", dir = "/mnt/backup" } }
"#;

/// Parses `text` and returns the error text, failing when the text loads.
fn error_text(text: &str) -> String {
    match Fleet::parse(text, Path::new("fleet.toml")) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(error) => error.to_string(),
    }
}

/// 1-based line of the first line of `text` that contains `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    let index = text.lines().position(|line| line.contains(needle));
    index.expect("needle is in the text") + 1
}

#[test]
fn example_loads_service_settings() {
    let fleet = load_example();
    assert_eq!(fleet.source, source());
    let service = &fleet.service;
    assert_eq!(
        service.store_dir,
        PathBuf::from("/etc/bakfleet/bakfleet-data/store")
    );
    assert_eq!(
        service.catalog,
        PathBuf::from("/var/lib/bakfleet/catalog.db")
    );
    assert_eq!(
        service.listen,
        "127.0.0.1:8081".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(
        service.secrets_file.as_deref(),
        Some(Path::new("/etc/bakfleet/secrets.toml"))
    );
    assert_eq!(service.lease, Duration::from_secs(90));
    assert_eq!(service.max_parallel_jobs, 2);
    assert_eq!(service.max_jobs_per_instance, 3);
    assert_eq!(service.max_jobs_per_staging, 1);
}

#[test]
fn example_loads_credentials() {
    let fleet = load_example();
    let files01 = &fleet.credentials["files01"];
    assert_eq!(files01.user, "backup");
    assert_eq!(files01.domain.as_deref(), Some("CORP"));
    assert_eq!(
        files01.password,
        SecretRef::Env("BAKFLEET_FILES01_PASSWORD".to_string())
    );
    let files02 = &fleet.credentials["files02"];
    assert_eq!(files02.domain, None);
    assert_eq!(files02.password, SecretRef::File("files02".to_string()));
}

#[test]
fn example_smb_instance_overrides_defaults() {
    let fleet = load_example();
    let sales = fleet.instance("sales-prod").expect("sales-prod is defined");
    assert_eq!(sales.host, "sql01.corp.example");
    assert_eq!(sales.port, 1433);

    let expected_auth = Auth::Sql {
        user: "bakfleet".to_string(),
        password: SecretRef::Env("BAKFLEET_SALES_PROD_PASSWORD".to_string()),
    };
    assert_eq!(sales.auth, expected_auth);

    assert_eq!(sales.tls.encrypt, Encrypt::Mandatory);
    assert_eq!(
        sales.tls.ca_file.as_deref(),
        Some(Path::new("/etc/bakfleet/corp-ca.pem"))
    );
    assert!(!sales.tls.trust_server_certificate);

    assert!(sales.databases.selects("Orders"));
    assert!(!sales.databases.selects("scratch_orders"));
    assert!(!sales.databases.selects("msdb"));

    assert_eq!(
        sales.schedule.for_type(BackupType::Full),
        Some("0 0 1 * * Sun")
    );
    assert_eq!(
        sales.schedule.for_type(BackupType::Diff),
        Some("0 0 1 * * Mon-Sat")
    );
    assert_eq!(
        sales.schedule.for_type(BackupType::Log),
        Some("0 */5 * * * *")
    );

    assert!(!sales.compression);
    assert!(sales.checksum);
    assert_eq!(sales.connect_timeout, Duration::from_secs(15));
    assert_eq!(sales.transfer_timeout, Duration::from_secs(120));
    assert_eq!(sales.retention.full_days, 35);
    assert_eq!(sales.retention.keep_full, 4);
}

#[test]
fn example_smb_staging_paths() {
    let fleet = load_example();
    let staging = &fleet.instance("sales-prod").unwrap().staging;
    let Staging::Smb {
        unc,
        host,
        share,
        dir,
        port,
        credential,
    } = staging
    else {
        panic!("expected smb staging, got {staging:?}");
    };
    assert_eq!(unc, r"\\files01\sqlbackup\sales-prod");
    assert_eq!(host, "files01");
    assert_eq!(share, "sqlbackup");
    assert_eq!(dir, "sales-prod");
    assert_eq!(*port, 445);
    assert_eq!(credential, "files01");

    let file = "Orders_FULL_20250101_010000.bak";
    assert_eq!(
        staging.server_path(file),
        r"\\files01\sqlbackup\sales-prod\Orders_FULL_20250101_010000.bak"
    );
    assert_eq!(
        staging.fetch_path(file),
        r"sales-prod\Orders_FULL_20250101_010000.bak"
    );
    assert!(staging
        .describe()
        .contains(r"\\files01\sqlbackup\sales-prod"));
}

#[test]
fn example_sftp_instance_and_paths() {
    let fleet = load_example();
    let hr = fleet.instance("hr-linux").unwrap();
    assert_eq!(hr.port, 1433);
    assert_eq!(hr.tls.encrypt, Encrypt::Strict);
    assert!(hr.databases.selects("master"));
    assert!(!hr.databases.selects("tempdb"));
    assert_eq!(hr.schedule.for_type(BackupType::Diff), None);
    assert_eq!(hr.retention.keep_full, 8);
    assert_eq!(hr.retention.full_days, 35);
    assert_eq!(hr.connect_timeout, Duration::from_secs(30));
    assert!(hr.compression);
    let expected = Staging::Sftp {
        host: "sql02".to_string(),
        port: 2222,
        user: "bakfleet".to_string(),
        key_file: PathBuf::from("/etc/bakfleet/keys/id_ed25519"),
        known_hosts: PathBuf::from("/etc/bakfleet/keys/known_hosts"),
        path: "/srv/backup".to_string(),
        server_path: "/var/opt/mssql/backup".to_string(),
    };
    assert_eq!(hr.staging, expected);
    let file = "hr_LOG_1.trn";
    assert_eq!(
        hr.staging.server_path(file),
        "/var/opt/mssql/backup/hr_LOG_1.trn"
    );
    assert_eq!(hr.staging.fetch_path(file), "/srv/backup/hr_LOG_1.trn");
}

#[test]
fn example_local_instance_and_paths() {
    let fleet = load_example();
    let legacy = fleet.instance("legacy").unwrap();
    let expected = Staging::Local {
        server_path: r"D:\Backup".to_string(),
        dir: PathBuf::from("/mnt/legacy-backup"),
    };
    assert_eq!(legacy.staging, expected);
    let file = "Payroll_FULL_1.bak";
    assert_eq!(
        legacy.staging.server_path(file),
        r"D:\Backup\Payroll_FULL_1.bak"
    );
    assert_eq!(
        legacy.staging.fetch_path(file),
        "/mnt/legacy-backup/Payroll_FULL_1.bak"
    );
}

#[test]
fn example_warnings_name_instance_and_key() {
    let warnings = load_example().warnings();
    let joined = warnings.join("\n");
    assert!(
        joined.contains("instance \"legacy\": tls.trust_server_certificate = true"),
        "{joined}"
    );
    assert!(
        joined.contains("instance \"legacy\": tls.encrypt = \"optional\""),
        "{joined}"
    );
    assert!(
        joined.contains("credential \"files02\" is not used"),
        "{joined}"
    );
    assert_eq!(warnings.len(), 3, "{joined}");
}

#[test]
fn minimal_file_gets_built_in_defaults() {
    let fleet = Fleet::parse(MINIMAL_INSTANCE, Path::new("/srv/fleet/fleet.toml")).unwrap();
    let service = &fleet.service;
    assert_eq!(
        service.store_dir,
        PathBuf::from("/srv/fleet/bakfleet-data/store")
    );
    assert_eq!(
        service.catalog,
        PathBuf::from("/srv/fleet/bakfleet-data/catalog.db")
    );
    assert_eq!(
        service.listen,
        "127.0.0.1:8080".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(service.secrets_file, None);
    assert_eq!(service.lease, Duration::from_secs(60));
    assert_eq!(service.max_parallel_jobs, 4);
    assert_eq!(service.max_jobs_per_instance, 2);
    assert_eq!(service.max_jobs_per_staging, 2);

    let instance = &fleet.instances[0];
    assert_eq!(instance.port, 1433);

    assert_eq!(instance.tls.encrypt, Encrypt::Mandatory);
    assert_eq!(instance.tls.ca_file, None);
    assert!(!instance.tls.trust_server_certificate);

    assert_eq!(
        instance.schedule.for_type(BackupType::Full),
        Some("0 0 1 * * Sun")
    );
    assert_eq!(
        instance.schedule.for_type(BackupType::Diff),
        Some("0 0 1 * * Mon-Sat")
    );
    assert_eq!(
        instance.schedule.for_type(BackupType::Log),
        Some("0 */15 * * * *")
    );

    assert!(instance.compression);
    assert!(instance.checksum);
    assert_eq!(instance.retention.full_days, 35);
    assert_eq!(instance.retention.keep_full, 4);
    assert_eq!(instance.connect_timeout, Duration::from_secs(15));
    assert_eq!(instance.transfer_timeout, Duration::from_secs(120));

    assert!(instance.databases.selects("Sales"));
    assert!(!instance.databases.selects("model"));
    assert!(fleet.warnings().is_empty());
}

#[test]
fn load_reads_file_and_resolves_relative_paths() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("fleet.toml");
    let text = MINIMAL_INSTANCE.replace("/mnt/backup", "staged");
    std::fs::write(&path, text).unwrap();
    let fleet = Fleet::load(&path).unwrap();
    assert_eq!(fleet.source, path);
    let Staging::Local { dir, .. } = &fleet.instances[0].staging else {
        panic!("expected local staging");
    };
    assert_eq!(*dir, directory.path().join("staged"));
}

#[test]
fn load_missing_file_names_path() {
    let error = Fleet::load(Path::new("/nonexistent/fleet.toml")).unwrap_err();
    assert!(matches!(error, FleetError::Read { .. }));
    let text = error.to_string();
    assert!(text.contains("/nonexistent/fleet.toml"), "{text}");
}

#[test]
fn unknown_key_names_line_and_key() {
    let text = format!("{MINIMAL_INSTANCE}compresion = false\n");
    let error = error_text(&text);
    let line = line_of(&text, "compresion");
    assert!(
        error.starts_with(&format!(
            "fleet.toml:{line}:1: instance \"sales-prod\": key `compresion`"
        )),
        "{error}"
    );
    assert!(error.contains("unknown field `compresion`"), "{error}");
}

#[test]
fn unknown_service_key_is_rejected() {
    let text = format!("[service]\nlisten_port = 8080\n{MINIMAL_INSTANCE}");
    let error = error_text(&text);
    assert!(
        error.starts_with("fleet.toml:2:1: key `service.listen_port`"),
        "{error}"
    );
}

#[test]
fn unknown_nested_key_is_rejected() {
    let text = MINIMAL_INSTANCE.replace("dir = \"/mnt/backup\"", "dir = \"/mnt/backup\", mode = 1");
    let error = error_text(&text);
    let line = line_of(&text, "mode = 1");
    assert!(error.contains(&format!("fleet.toml:{line}:")), "{error}");
    assert!(error.contains("key `staging.local.mode`"), "{error}");
    assert!(error.contains("unknown field `mode`"), "{error}");
}

#[test]
fn toml_syntax_error_names_line() {
    let text = format!("{MINIMAL_INSTANCE}port = \n");
    let error = error_text(&text);
    let line = line_of(&text, "port = ");
    assert!(error.starts_with(&format!("fleet.toml:{line}:")), "{error}");
}

#[test]
fn missing_staging_names_instance() {
    let text = MINIMAL_INSTANCE.replace(
        "staging = { local = { server_path = \"/var/opt/mssql/backup\", dir = \"/mnt/backup\" } }\n",
        "",
    );
    let error = error_text(&text);
    assert!(error.contains("instance \"sales-prod\""), "{error}");
    assert!(error.contains("missing field `staging`"), "{error}");
    assert!(error.contains("staging = { smb ="), "{error}");
}

#[test]
fn duplicate_instance_name_names_both_lines() {
    let text = format!(
        "{MINIMAL_INSTANCE}{}",
        MINIMAL_INSTANCE.replace("sales-prod", "Sales-Prod")
    );
    let error = error_text(&text);
    let first = line_of(&text, "name = \"sales-prod\"");
    let second = line_of(&text, "name = \"Sales-Prod\"");
    let expected = format!(
        "fleet.toml:{second}:8: instance \"Sales-Prod\": key `name`: instance name \
         \"Sales-Prod\" is already used by the instance at line {first}"
    );
    assert!(error.contains(&expected), "{error}");
}

#[test]
fn invalid_instance_name_is_rejected() {
    let text = MINIMAL_INSTANCE.replace("sales-prod", "sales/prod");
    let error = error_text(&text);
    let line = line_of(&text, "sales/prod");
    let expected =
        format!("fleet.toml:{line}:8: instance \"sales/prod\": key `name`: invalid instance name");
    assert!(error.starts_with(&expected), "{error}");
}

#[test]
fn undefined_credential_is_rejected() {
    let text = MINIMAL_INSTANCE.replace(
        "staging = { local = { server_path = \"/var/opt/mssql/backup\", dir = \"/mnt/backup\" } }",
        r#"staging = { smb = '\\files01\sql', credential = "files09" }"#,
    );
    let error = error_text(&text);
    let line = line_of(&text, "files09");
    assert!(error.contains(&format!("fleet.toml:{line}:")), "{error}");
    assert!(error.contains("key `staging.credential`"), "{error}");
    assert!(
        error.contains("credential \"files09\" is not defined"),
        "{error}"
    );
    assert!(
        error.contains("add a [credentials.files09] table"),
        "{error}"
    );
}

#[test]
fn invalid_cron_lists_six_fields() {
    let text = format!("[defaults]\nschedule.log = \"*/15 * * * *\"\n{MINIMAL_INSTANCE}");
    let error = error_text(&text);
    assert!(
        error.starts_with("fleet.toml:2:16: key `defaults.schedule.log`"),
        "{error}"
    );
    assert!(
        error.contains("invalid cron expression \"*/15 * * * *\""),
        "{error}"
    );
    assert!(
        error.contains("second minute hour day-of-month month day-of-week"),
        "{error}"
    );
}

#[test]
fn invalid_instance_cron_names_instance() {
    let text = format!("{MINIMAL_INSTANCE}schedule.full = \"0 0 25 * * *\"\n");
    let error = error_text(&text);
    let line = line_of(&text, "schedule.full");
    let expected = format!("fleet.toml:{line}:17: instance \"sales-prod\": key `schedule.full`");
    assert!(error.starts_with(&expected), "{error}");
}

#[test]
fn malformed_unc_path_is_rejected() {
    let text = format!(
        "[credentials.files01]\nuser = \"u\"\npassword_env = \"P\"\n{}",
        MINIMAL_INSTANCE.replace(
            "staging = { local = { server_path = \"/var/opt/mssql/backup\", dir = \"/mnt/backup\" } }",
            r#"staging = { smb = "//files01/sql", credential = "files01" }"#,
        )
    );
    let error = error_text(&text);
    let line = line_of(&text, "//files01");
    assert!(error.contains(&format!("fleet.toml:{line}:19:")), "{error}");
    assert!(error.contains("key `staging.smb`"), "{error}");
    assert!(
        error.contains("invalid UNC path \"//files01/sql\""),
        "{error}"
    );
    assert!(error.contains(r"\\host\share"), "{error}");
}

#[test]
fn relative_sftp_path_is_rejected() {
    let text = MINIMAL_INSTANCE.replace(
        "staging = { local = { server_path = \"/var/opt/mssql/backup\", dir = \"/mnt/backup\" } }",
        r#"staging = { sftp = { host = "h", user = "u", key_file = "k", known_hosts = "kh", path = "backup" } }"#,
    );
    let error = error_text(&text);
    assert!(error.contains("key `staging.sftp.path`"), "{error}");
    assert!(error.contains("path \"backup\" is not absolute"), "{error}");
}

#[test]
fn port_out_of_range_is_rejected() {
    let text = MINIMAL_INSTANCE.replace("host = \"sql01\"", "host = \"sql01\"\nport = 70000");
    let error = error_text(&text);
    let line = line_of(&text, "port = 70000");
    let expected = format!(
        "fleet.toml:{line}:8: instance \"sales-prod\": key `port`: port 70000 is out of range; \
         use a port from 1 to 65535"
    );
    assert_eq!(error, expected);
}

#[test]
fn zero_retention_is_rejected() {
    let text =
        format!("[defaults]\nretention = {{ full_days = 0, keep_full = 4 }}\n{MINIMAL_INSTANCE}");
    let error = error_text(&text);
    assert!(
        error.starts_with("fleet.toml:2:27: key `defaults.retention.full_days`"),
        "{error}"
    );
}

#[test]
fn non_loopback_listen_is_accepted() {
    // `serve` checks that an admin user exists before it binds such an address.
    let text = format!("[service]\nlisten = \"0.0.0.0:8080\"\n{MINIMAL_INSTANCE}");
    let fleet = match Fleet::parse(&text, Path::new("fleet.toml")) {
        Ok(fleet) => fleet,
        Err(error) => panic!("expected {text} to load:\n{error}"),
    };
    assert_eq!(fleet.service.listen.to_string(), "0.0.0.0:8080");
}

#[test]
fn session_keys_have_defaults_and_overrides() {
    let defaults = Fleet::parse(MINIMAL_INSTANCE, Path::new("fleet.toml")).unwrap();
    assert!(!defaults.service.trusted_proxy);
    assert_eq!(defaults.service.session_idle.as_secs(), 30 * 60);
    assert_eq!(defaults.service.session_max.as_secs(), 12 * 3600);

    let text = format!(
        "[service]\ntrusted_proxy = true\nsession_idle_minutes = 5\nsession_max_hours = 2\n{MINIMAL_INSTANCE}"
    );
    let fleet = Fleet::parse(&text, Path::new("fleet.toml")).unwrap();
    assert!(fleet.service.trusted_proxy);
    assert_eq!(fleet.service.session_idle.as_secs(), 5 * 60);
    assert_eq!(fleet.service.session_max.as_secs(), 2 * 3600);
}

#[test]
fn run_log_days_default_override_and_minimum() {
    let defaults = Fleet::parse(MINIMAL_INSTANCE, Path::new("fleet.toml")).unwrap();
    assert_eq!(defaults.service.run_log_days, 7);

    let text = format!("[service]\nrun_log_days = 30\n{MINIMAL_INSTANCE}");
    let fleet = Fleet::parse(&text, Path::new("fleet.toml")).unwrap();
    assert_eq!(fleet.service.run_log_days, 30);

    let error = error_text(&format!("[service]\nrun_log_days = 0\n{MINIMAL_INSTANCE}"));
    assert!(error.contains("service.run_log_days"), "{error}");
    assert!(error.contains("0 is below the minimum of 1"), "{error}");
}

#[test]
fn unparsable_listen_is_rejected() {
    let text = format!("[service]\nlisten = \"localhost:8080\"\n{MINIMAL_INSTANCE}");
    let error = error_text(&text);
    assert!(
        error.contains("invalid listen address \"localhost:8080\""),
        "{error}"
    );
}

#[test]
fn missing_instances_is_rejected() {
    let error = error_text("[service]\nlisten = \"127.0.0.1:8080\"\n");
    assert!(error.contains("the file defines no instance"), "{error}");
}

#[test]
fn both_password_sources_are_rejected() {
    let text = MINIMAL_INSTANCE.replace(
        "password_env = \"PW\"",
        "password_env = \"PW\", password_secret = \"pw\"",
    );
    let error = error_text(&text);
    assert!(error.contains("key `auth.password_secret`"), "{error}");
    assert!(
        error.contains("both password_env and password_secret"),
        "{error}"
    );
}

#[test]
fn password_secret_needs_secrets_file() {
    let text = MINIMAL_INSTANCE.replace("password_env = \"PW\"", "password_secret = \"pw\"");
    let error = error_text(&text);
    assert!(error.contains("key `auth.password_secret`"), "{error}");
    assert!(error.contains("set service.secrets_file"), "{error}");
}

#[test]
fn every_problem_is_reported() {
    let text = format!(
        "[service]\nlisten = \"0.0.0.0\"\nlease_seconds = 0\n{}",
        MINIMAL_INSTANCE.replace("host = \"sql01\"", "host = \"sql01\"\nport = 0")
    );
    let Err(error) = Fleet::parse(&text, Path::new("fleet.toml")) else {
        panic!("expected errors");
    };
    let keys: Vec<Option<&str>> = error
        .diagnostics()
        .iter()
        .map(|diagnostic| diagnostic.key.as_deref())
        .collect();
    assert_eq!(
        keys,
        vec![
            Some("service.listen"),
            Some("service.lease_seconds"),
            Some("port")
        ]
    );
}

#[test]
fn wrong_type_names_toml_type() {
    let text = MINIMAL_INSTANCE.replace("host = \"sql01\"", "host = \"sql01\"\nport = \"1433\"");
    let error = error_text(&text);
    let line = line_of(&text, "port = \"1433\"");
    let expected = format!("fleet.toml:{line}:8: instance \"sales-prod\": key `port`");
    assert!(error.starts_with(&expected), "{error}");
    assert!(error.contains("expected an integer"), "{error}");
}

#[test]
fn nameless_instance_is_numbered() {
    let second = MINIMAL_INSTANCE.replace("name = \"sales-prod\"\n", "");
    let text = format!("{MINIMAL_INSTANCE}{second}");
    let error = error_text(&text);
    assert!(error.contains("instance \"#2\""), "{error}");
    assert!(error.contains("missing field `name`"), "{error}");
}

#[test]
fn credential_without_password_is_rejected() {
    let text = format!("[credentials.files01]\nuser = \"backup\"\n{MINIMAL_INSTANCE}");
    let error = error_text(&text);
    assert!(
        error.contains("key `credentials.files01.password_env`"),
        "{error}"
    );
    assert!(error.contains("no password source is set"), "{error}");
    assert!(error.contains("set exactly one of password_env"), "{error}");
}

#[test]
fn two_staging_kinds_are_rejected() {
    let text = MINIMAL_INSTANCE.replace(
        "staging = { local",
        r#"staging = { smb = '\\f\s', credential = "c", local"#,
    );
    let error = error_text(&text);
    assert!(error.contains("key `staging`"), "{error}");
    assert!(
        error.contains("more than one staging kind is set"),
        "{error}"
    );
}

#[test]
fn smb_port_on_local_staging_is_rejected() {
    let text = MINIMAL_INSTANCE.replace("staging = { local", "staging = { port = 445, local");
    let error = error_text(&text);
    assert!(error.contains("key `staging.port`"), "{error}");
    assert!(error.contains("port is only valid with smb"), "{error}");
}

#[test]
fn relative_server_path_is_rejected() {
    let text = MINIMAL_INSTANCE.replace(
        "server_path = \"/var/opt/mssql/backup\"",
        "server_path = \"Backup\"",
    );
    let error = error_text(&text);
    assert!(error.contains("key `staging.local.server_path`"), "{error}");
    assert!(
        error.contains("server path \"Backup\" is not absolute"),
        "{error}"
    );
}

#[test]
fn unsupported_auth_kind_is_rejected() {
    let text = MINIMAL_INSTANCE.replace("kind = \"sql\"", "kind = \"windows\"");
    let error = error_text(&text);
    assert!(error.contains("key `auth.kind`"), "{error}");
    assert!(
        error.contains("unsupported auth kind \"windows\""),
        "{error}"
    );
}

#[test]
fn invalid_encrypt_mode_is_rejected() {
    let text = format!("{MINIMAL_INSTANCE}tls = {{ encrypt = \"yes\" }}\n");
    let error = error_text(&text);
    assert!(error.contains("key `tls.encrypt`"), "{error}");
    assert!(
        error.contains("use strict, mandatory, optional or not_supported"),
        "{error}"
    );
}

#[test]
fn ca_file_with_trust_all_is_rejected() {
    let text = format!(
        "{MINIMAL_INSTANCE}tls = {{ ca_file = \"ca.pem\", trust_server_certificate = true }}\n"
    );
    let error = error_text(&text);
    assert!(
        error.contains("key `tls.trust_server_certificate`"),
        "{error}"
    );
    assert!(error.contains("conflicts with ca_file"), "{error}");
}

#[test]
fn named_instance_host_is_rejected() {
    let text = MINIMAL_INSTANCE.replace("host = \"sql01\"", r#"host = 'sql01\SALES'"#);
    let error = error_text(&text);
    assert!(error.contains("key `host`"), "{error}");
    assert!(error.contains("contains a named instance"), "{error}");
}

#[test]
fn ipv6_host_is_accepted() {
    let text = MINIMAL_INSTANCE.replace("host = \"sql01\"", "host = \"fd00::5\"");
    let fleet = Fleet::parse(&text, Path::new("fleet.toml")).unwrap();
    assert_eq!(fleet.instances[0].host, "fd00::5");
}

#[test]
fn empty_include_is_rejected() {
    let text = format!("{MINIMAL_INSTANCE}databases = {{ include = [] }}\n");
    let error = error_text(&text);
    assert!(error.contains("key `databases.include`"), "{error}");
    assert!(error.contains("no database would be backed up"), "{error}");
}

#[test]
fn schedule_off_disables_type() {
    let text = format!("{MINIMAL_INSTANCE}schedule = {{ full = \"off\", diff = \"\" }}\n");
    let fleet = Fleet::parse(&text, Path::new("fleet.toml")).unwrap();
    let schedule = &fleet.instances[0].schedule;
    assert_eq!(schedule.for_type(BackupType::Full), None);
    assert_eq!(schedule.for_type(BackupType::Diff), None);
    assert_eq!(schedule.for_type(BackupType::Log), Some("0 */15 * * * *"));
}

#[test]
fn all_schedules_off_warns() {
    let text = format!(
        "{MINIMAL_INSTANCE}schedule = {{ full = \"off\", diff = \"off\", log = \"off\" }}\n"
    );
    let fleet = Fleet::parse(&text, Path::new("fleet.toml")).unwrap();
    let warnings = fleet.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("every schedule is off"),
        "{warnings:?}"
    );
}

#[test]
fn keyword_typo_in_selection_warns() {
    let text = format!(
        "{MINIMAL_INSTANCE}databases = {{ include = [\"USER_DATABASE\", \"Sales\"], \
         exclude = [\"system_databses\"] }}\n"
    );
    let fleet = Fleet::parse(&text, Path::new("fleet.toml")).unwrap();
    let warnings = fleet.warnings();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings[0].contains(
            "databases.include entry \"user_database\" is not the keyword USER_DATABASES"
        ),
        "{warnings:?}"
    );
    assert!(
        warnings[1].contains(
            "databases.exclude entry \"system_databses\" is not the keyword SYSTEM_DATABASES"
        ),
        "{warnings:?}"
    );
}

#[test]
fn instance_lookup_is_exact() {
    let fleet = Fleet::parse(MINIMAL_INSTANCE, Path::new("fleet.toml")).unwrap();
    assert!(fleet.instance("sales-prod").is_some());
    assert!(fleet.instance("Sales-Prod").is_none());
    assert!(fleet.instance("other").is_none());
}

#[test]
fn unknown_credential_key_after_instance() {
    let text =
        format!("{MINIMAL_INSTANCE}\n[credentials.files01]\nuser = \"u\"\npasword_env = \"P\"\n");
    let error = error_text(&text);
    let line = line_of(&text, "pasword_env");
    let expected = format!("fleet.toml:{line}:1: key `credentials.files01.pasword_env`");
    assert!(error.starts_with(&expected), "{error}");
}
