//! Secrets stay secret: a full `bakfleet run` at trace level, a failed login and a failed
//! share logon print neither the SQL password nor the share password, and neither lands
//! in the catalogue, the store or the statement transcript.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::{files_under, start_simulated_instance, SimulatedInstance, Smbd};

/// The UNC prefix the simulated Windows instance writes to; smbd serves it.
const SHARE_PREFIX: &str = r"\\127.0.0.1\backup";

struct Setup {
    dir: tempfile::TempDir,
    fleet: PathBuf,
    sql_password: String,
    smb_password: String,
}

/// Writes the secrets file and the fleet file. The SQL password comes from an environment
/// variable and the share password from the secrets file, so both ways of passing a secret
/// are covered.
fn write_files(dir: &Path, port_line: &str, smbd: &Smbd) -> PathBuf {
    let secrets = dir.join("secrets.toml");
    std::fs::write(&secrets, format!("smb = {:?}\n", smbd.password)).unwrap();
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600)).unwrap();
    let fleet = dir.join("fleet.toml");
    std::fs::write(
        &fleet,
        format!(
            "[service]\nstore_dir = \"store\"\ncatalog = \"catalog.db\"\n\
             secrets_file = \"secrets.toml\"\n\n\
             [credentials.share]\nuser = {:?}\npassword_secret = \"smb\"\n\n\
             [[instance]]\nname = \"sales\"\nhost = \"127.0.0.1\"\n{port_line}\n\
             auth = {{ kind = \"sql\", user = \"bakfleet\", password_env = \"BAKFLEET_TEST_SQL_PASSWORD\" }}\n\
             tls = {{ encrypt = \"not_supported\" }}\n\
             databases = {{ include = [\"Sales\"] }}\n\
             staging = {{ smb = '{SHARE_PREFIX}\\sales', port = {}, credential = \"share\" }}\n",
            smbd.user, smbd.port
        ),
    )
    .unwrap();
    fleet
}

fn start(share: &Path) -> (Setup, Smbd, std::process::Child) {
    let dir = tempfile::tempdir().unwrap();
    let smbd = Smbd::start(share);
    std::fs::create_dir_all(share.join("sales")).unwrap();
    let sql_password = format!("Sql-{}", uuid::Uuid::new_v4().simple());

    let (simulator, port) = start_simulated_instance(
        dir.path(),
        &SimulatedInstance {
            platform: "windows",
            edition: "enterprise",
            password: &sql_password,
            server_path: SHARE_PREFIX,
            local_dir: share,
            databases: &[("Sales", 2, "FULL")],
            more_paths: &[],
        },
    );
    let fleet = write_files(dir.path(), &format!("port = {port}"), &smbd);
    let smb_password = smbd.password.clone();
    let setup = Setup {
        dir,
        fleet,
        sql_password,
        smb_password,
    };
    (setup, smbd, simulator)
}

/// Runs bakfleet at trace level with the SQL password in the environment and a
/// transcript of every statement.
fn bakfleet(setup: &Setup, sql_password: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bakfleet"))
        .arg("--fleet")
        .arg(&setup.fleet)
        .args(["--log-level", "trace"])
        .args(args)
        .env_remove("RUST_LOG")
        .env("BAKFLEET_TEST_SQL_PASSWORD", sql_password)
        .env(
            "BAKFLEET_TRANSCRIPT",
            setup.dir.path().join("transcript.jsonl"),
        )
        .output()
        .expect("run bakfleet")
}

/// Asserts that `secret` does not appear in `bytes`; the failure names the place.
fn assert_absent(secret: &str, bytes: &[u8], place: &str) {
    let found = bytes
        .windows(secret.len())
        .any(|window| window == secret.as_bytes());
    assert!(!found, "a password appears in {place}");
}

fn assert_output_clean(setup: &Setup, output: &Output, command: &str) {
    for secret in [&setup.sql_password, &setup.smb_password] {
        assert_absent(secret, &output.stdout, &format!("stdout of {command}"));
        assert_absent(secret, &output.stderr, &format!("stderr of {command}"));
    }
}

#[test]
fn secrets_absent_from_every_output() {
    let share = tempfile::tempdir().unwrap();
    let (setup, mut smbd, mut simulator) = start(share.path());

    let good = bakfleet(&setup, &setup.sql_password, &["run", "sales", "Sales"]);
    assert!(good.status.success(), "run failed: {good:?}");
    assert!(
        !good.stderr.is_empty(),
        "trace logging produced output to search"
    );
    assert_output_clean(&setup, &good, "a good run");

    let wrong_password = format!("Wrong-{}", uuid::Uuid::new_v4().simple());
    let failed_login = bakfleet(&setup, &wrong_password, &["run", "sales", "Sales"]);
    assert!(!failed_login.status.success(), "login must fail");
    let login_text = String::from_utf8_lossy(&failed_login.stdout).into_owned()
        + &String::from_utf8_lossy(&failed_login.stderr);
    assert!(login_text.contains("18456"), "{login_text}");
    assert_output_clean(&setup, &failed_login, "a failed login");
    assert_absent(
        &wrong_password,
        &failed_login.stdout,
        "stdout of a failed login",
    );
    assert_absent(
        &wrong_password,
        &failed_login.stderr,
        "stderr of a failed login",
    );

    for args in [&["check"][..], &["list"], &["verify"]] {
        let output = bakfleet(&setup, &setup.sql_password, args);
        assert_output_clean(&setup, &output, args[0]);
    }

    // A wrong share password: the fetch fails after BACKUP and VERIFYONLY.
    let secrets = setup.dir.path().join("secrets.toml");
    let wrong_share_password = format!("Share-{}", uuid::Uuid::new_v4().simple());
    std::fs::write(&secrets, format!("smb = {wrong_share_password:?}\n")).unwrap();
    let failed_fetch = bakfleet(&setup, &setup.sql_password, &["run", "sales", "Sales"]);
    assert!(!failed_fetch.status.success(), "share logon must fail");
    let fetch_text = String::from_utf8_lossy(&failed_fetch.stdout).into_owned()
        + &String::from_utf8_lossy(&failed_fetch.stderr);
    assert!(fetch_text.contains("fetch"), "{fetch_text}");
    assert_output_clean(&setup, &failed_fetch, "a failed share logon");
    assert_absent(
        &wrong_share_password,
        &failed_fetch.stdout,
        "stdout of a failed share logon",
    );
    assert_absent(
        &wrong_share_password,
        &failed_fetch.stderr,
        "stderr of a failed share logon",
    );

    // Every file bakfleet wrote, apart from the secrets file and the simulator config.
    let mut written: Vec<PathBuf> = files_under(setup.dir.path())
        .into_iter()
        .filter(|path| path.file_name().is_some_and(|name| name != "secrets.toml"))
        .filter(|path| path.file_name().is_some_and(|name| name != "sim.toml"))
        .collect();
    written.extend(files_under(share.path()));
    assert!(
        written.iter().any(|path| path.ends_with("catalog.db")),
        "{written:?}"
    );
    assert!(
        written
            .iter()
            .any(|path| path.ends_with("transcript.jsonl")),
        "{written:?}"
    );
    for path in &written {
        let bytes = std::fs::read(path).unwrap();
        for secret in [&setup.sql_password, &setup.smb_password] {
            assert_absent(secret, &bytes, &path.display().to_string());
        }
    }

    smbd.stop();
    // SAFETY: signalling our own child by its PID.
    unsafe { libc::kill(simulator.id() as libc::pid_t, libc::SIGTERM) };
    simulator.wait().unwrap();
}
