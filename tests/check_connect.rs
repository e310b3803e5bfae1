//! `bakfleet check --connect` against a simulator process, smbd and local folders: one line
//! per check, and the exit code of the worst outcome.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use support::{free_port, start_simulated_instance, SimulatedInstance, Smbd};

/// The UNC prefix the simulated Windows instance writes to; smbd serves it.
const SHARE_PREFIX: &str = r"\\127.0.0.1\backup";

/// Returns one `[[instance]]` table of the fleet file.
fn instance(name: &str, port: u16, password_env: &str, staging: &str) -> String {
    format!(
        "[[instance]]\nname = {name:?}\nhost = \"127.0.0.1\"\nport = {port}\n\
         auth = {{ kind = \"sql\", user = \"bakfleet\", password_env = {password_env:?} }}\n\
         tls = {{ encrypt = \"not_supported\" }}\nconnect_timeout_secs = 5\n{staging}\n\n"
    )
}

fn write_fleet(dir: &Path, smbd: &Smbd, instances: &[String]) -> std::path::PathBuf {
    let secrets = dir.join("secrets.toml");
    std::fs::write(&secrets, format!("smb = {:?}\n", smbd.password)).unwrap();
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600)).unwrap();
    let fleet = dir.join("fleet.toml");
    let text = format!(
        "[service]\nstore_dir = \"store\"\ncatalog = \"catalog.db\"\n\
         secrets_file = \"secrets.toml\"\n\n\
         [credentials.share]\nuser = {:?}\npassword_secret = \"smb\"\n\n\
         [policy.archive]\nschedule.log = \"off\"\n\n{}",
        smbd.user,
        instances.concat()
    );
    std::fs::write(&fleet, text).unwrap();
    fleet
}

fn check_connect(fleet: &Path, sql_password: &str) -> (Option<i32>, String) {
    let output: Output = Command::new(env!("CARGO_BIN_EXE_bakfleet"))
        .arg("--fleet")
        .arg(fleet)
        .args(["check", "--connect"])
        .env("BAKFLEET_TEST_SQL_PASSWORD", sql_password)
        .env("BAKFLEET_TEST_WRONG_PASSWORD", "not-the-password")
        .output()
        .expect("run bakfleet check --connect");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    (output.status.code(), text)
}

/// Returns the line that starts with `status` and names `subject`, failing when none does.
fn line<'t>(text: &'t str, status: &str, subject: &str) -> &'t str {
    text.lines()
        .find(|line| line.starts_with(status) && line.contains(subject))
        .unwrap_or_else(|| panic!("no {status} line for {subject} in:\n{text}"))
}

#[test]
fn check_connect_reports_each_failure() {
    let dir = tempfile::tempdir().unwrap();
    let share = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(share.path().join("sales")).unwrap();
    let local_staging = dir.path().join("local-staging");
    std::fs::create_dir_all(&local_staging).unwrap();
    let smbd = Smbd::start(share.path());
    let password = format!("Sql-{}", uuid::Uuid::new_v4().simple());
    let (mut simulator, port) = start_simulated_instance(
        dir.path(),
        &SimulatedInstance {
            platform: "windows",
            edition: "enterprise",
            password: &password,
            server_path: SHARE_PREFIX,
            local_dir: share.path(),
            databases: &[("Sales", 2, "FULL")],
            more_paths: &[],
        },
    );

    let smb = |folder: &str| {
        format!(
            "staging = {{ smb = '{SHARE_PREFIX}\\{folder}', port = {}, credential = \"share\" }}",
            smbd.port
        )
    };
    let local = format!(
        "staging = {{ local = {{ server_path = 'D:\\Backup', dir = {:?} }} }}",
        local_staging.display().to_string()
    );
    let good = [
        instance(
            "good-smb",
            port,
            "BAKFLEET_TEST_SQL_PASSWORD",
            &smb("sales"),
        ),
        instance("good-local", port, "BAKFLEET_TEST_SQL_PASSWORD", &local),
    ];
    let good_fleet = write_fleet(dir.path(), &smbd, &good);
    let (code, text) = check_connect(&good_fleet, &password);
    assert_eq!(code, Some(1), "unencrypted connections only warn:\n{text}");
    line(&text, "OK", "catalogue");
    line(&text, "OK", "store");
    line(&text, "OK", "instance good-smb (127.0.0.1");
    line(&text, "OK", "instance good-smb staging SMB share");
    line(&text, "OK", "instance good-local staging local");
    line(&text, "WARNING", "instance good-smb TLS");
    assert!(
        text.lines()
            .last()
            .unwrap()
            .starts_with("WARNING: 8 checks, 0 failed"),
        "{text}"
    );

    let closed_port = free_port();
    let mut all = good.to_vec();
    all.push(instance(
        "bad-login",
        port,
        "BAKFLEET_TEST_WRONG_PASSWORD",
        &smb("sales"),
    ));
    all.push(instance(
        "no-folder",
        port,
        "BAKFLEET_TEST_SQL_PASSWORD",
        &smb("missing"),
    ));
    all.push(instance(
        "no-server",
        closed_port,
        "BAKFLEET_TEST_SQL_PASSWORD",
        &local,
    ));
    let mistyped = instance("mistyped", port, "BAKFLEET_TEST_SQL_PASSWORD", &local);
    all.push(mistyped.replace(
        "connect_timeout_secs = 5\n",
        "connect_timeout_secs = 5\ndatabase_policies = [{ databases = [\"Sales.*\"], policy = \"archive\" }]\n",
    ));
    let fleet = write_fleet(dir.path(), &smbd, &all);
    let (code, text) = check_connect(&fleet, &password);
    assert_eq!(code, Some(2), "{text}");
    assert!(line(&text, "CRITICAL", "instance bad-login (").contains("18456"));
    line(&text, "CRITICAL", "instance no-folder staging");
    line(&text, "OK", "instance no-folder (127.0.0.1");
    line(&text, "CRITICAL", "instance no-server (");
    let pattern = line(&text, "WARNING", "instance mistyped database_policies[0]");
    assert!(pattern.contains("Sales.*"), "{pattern}");
    assert!(
        !text.contains("good-smb database_policies"),
        "an instance without entries gets no pattern warning"
    );
    assert!(!text.contains(&password), "no password printed");

    // SAFETY: signalling our own child by its PID.
    unsafe { libc::kill(simulator.id() as libc::pid_t, libc::SIGTERM) };
    simulator.wait().unwrap();
    drop(smbd);
}

#[test]
fn check_connect_unknown_for_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = dir.path().join("fleet.toml");
    std::fs::write(&fleet, "[service\n").unwrap();
    let (code, text) = check_connect(&fleet, "unused");
    assert_eq!(code, Some(3), "{text}");
    assert!(text.starts_with("UNKNOWN"), "{text}");
}
