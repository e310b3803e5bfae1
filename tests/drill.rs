//! Restore drills against a simulator process. A drill restores the latest chain under a
//! new name on the sandbox, checks it with CHECKDB, drops it and records the outcome on
//! every backup. A drill whose files the sandbox cannot read is recorded as failed, and
//! `serve` runs drills from the `[drill]` schedule.

mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::{start_simulated_instance, SimulatedInstance};

/// How the simulated sandbox names the store root.
const SANDBOX_STORE: &str = "/mnt/bakfleet-store";

struct Drilled {
    dir: tempfile::TempDir,
    /// Port of the admin site when `serve` runs.
    site_port: u16,
    fleet: PathBuf,
    password: String,
    simulator: Child,
}

impl Drop for Drilled {
    fn drop(&mut self) {
        // SAFETY: signalling our own child by its PID.
        unsafe { libc::kill(self.simulator.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.simulator.wait();
    }
}

/// Starts one simulated instance that is both the backed-up server and the sandbox, and
/// writes a fleet file whose `[drill]` table uses `store_path` and `extra` lines.
fn start(store_path: &str, extra: &str) -> Drilled {
    start_with(store_path, &["Sales"], &Policies::default(), extra)
}

/// Fleet lines that assign policies: `[policy.NAME]` tables, and lines of the instance.
#[derive(Default)]
struct Policies<'a> {
    tables: &'a str,
    instance_lines: &'a str,
}

/// Starts the instance with the FULL-recovery `databases`, and writes a fleet file with
/// `policies` and a `[drill]` table with `store_path` and `extra` lines.
fn start_with(
    store_path: &str,
    databases: &[&str],
    policies: &Policies<'_>,
    extra: &str,
) -> Drilled {
    let dir = tempfile::tempdir().unwrap();
    let staging = dir.path().join("staging");
    let store = dir.path().join("store");
    std::fs::create_dir_all(&staging).unwrap();
    std::fs::create_dir_all(&store).unwrap();
    let password = format!("Sql-{}", uuid::Uuid::new_v4().simple());
    let (simulator, port) = start_simulated_instance(
        dir.path(),
        &SimulatedInstance {
            platform: "linux",
            edition: "developer",
            password: &password,
            server_path: "/var/opt/mssql/backup",
            local_dir: &staging,
            databases: &databases
                .iter()
                .map(|name| (*name, 4, "FULL"))
                .collect::<Vec<_>>(),
            more_paths: &[(SANDBOX_STORE, &store)],
        },
    );
    let site_port = support::free_port();
    let fleet = dir.path().join("fleet.toml");
    std::fs::write(
        &fleet,
        format!(
            "[service]\nstore_dir = \"store\"\ncatalog = \"catalog.db\"\nlisten = \"127.0.0.1:{}\"\n\n\
             [defaults]\nschedule.full = \"off\"\nschedule.diff = \"off\"\nschedule.log = \"off\"\n\n\
             {tables}\n\
             [[instance]]\nname = \"sales\"\nhost = \"127.0.0.1\"\nport = {port}\n\
             auth = {{ kind = \"sql\", user = \"bakfleet\", password_env = \"BAKFLEET_TEST_SQL_PASSWORD\" }}\n\
             tls = {{ encrypt = \"not_supported\" }}\ndatabases = {{ include = {databases:?} }}\n\
             staging = {{ local = {{ server_path = '/var/opt/mssql/backup', dir = {:?} }} }}\n\
             {instance_lines}\n\n\
             [drill]\nsandbox = \"sales\"\nstore_path = {store_path:?}\n{extra}",
            site_port,
            staging.display().to_string(),
            tables = policies.tables,
            instance_lines = policies.instance_lines,
        ),
    )
    .unwrap();
    Drilled {
        dir,
        site_port,
        fleet,
        password,
        simulator,
    }
}

fn bakfleet(drilled: &Drilled, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bakfleet"))
        .arg("--fleet")
        .arg(&drilled.fleet)
        .args(args)
        .env_remove("RUST_LOG")
        .env("BAKFLEET_TEST_SQL_PASSWORD", &drilled.password)
        .output()
        .expect("run bakfleet")
}

fn back_up_chain(drilled: &Drilled) {
    back_up_database(drilled, "Sales");
}

fn back_up_database(drilled: &Drilled, database: &str) {
    for backup_type in ["full", "log", "log"] {
        let output = bakfleet(drilled, &["run", "sales", database, "--type", backup_type]);
        assert!(output.status.success(), "{backup_type} backup: {output:?}");
    }
}

/// Runs one query on the catalogue with the sqlite3 shell and returns its output lines.
/// The shell waits up to 5 s for a lock, because `bakfleet serve` may be writing.
fn catalogue(drilled: &Drilled, sql: &str) -> Vec<String> {
    let output = Command::new(support::require_tool("sqlite3", "sqlite3"))
        .args(["-cmd", ".timeout 5000"])
        .arg(drilled.dir.path().join("catalog.db"))
        .arg(sql)
        .output()
        .expect("run sqlite3");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn drill_restores_checks_and_drops() {
    let drilled = start(SANDBOX_STORE, "");
    back_up_chain(&drilled);

    let output = bakfleet(&drilled, &["drill", "sales", "Sales"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(stdout.contains("3 backup(s) restored"), "{stdout}");
    assert!(stdout.contains("CHECKDB passed"), "{stdout}");
    assert!(stdout.contains("was dropped"), "{stdout}");

    let drills = catalogue(
        &drilled,
        "SELECT status || '|' || phase || '|' || trigger FROM drills",
    );
    assert_eq!(drills, ["passed|done|manual"]);
    let members = catalogue(
        &drilled,
        "SELECT count(*) FROM drill_backups WHERE drill_id = 1",
    );
    assert_eq!(members, ["3"], "the drill names the full and both logs");

    // The copy is gone: a second drill gets a new name and passes again.
    let again = bakfleet(&drilled, &["drill", "sales", "Sales"]);
    assert!(again.status.success(), "{again:?}");
}

#[test]
fn drill_failure_recorded_on_backups() {
    let drilled = start("/mnt/not-shared", "");
    back_up_chain(&drilled);

    let output = bakfleet(&drilled, &["drill", "sales", "Sales"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(stdout.contains("FAILED in restore"), "{stdout}");
    assert!(
        stdout.contains("3201"),
        "the sandbox cannot open the file: {stdout}"
    );

    let drills = catalogue(&drilled, "SELECT status || '|' || phase FROM drills");
    assert_eq!(drills, ["failed|restore"]);
    let errors = catalogue(&drilled, "SELECT drop_error IS NULL FROM drills");
    assert_eq!(
        errors,
        ["1"],
        "nothing was created, so nothing is left to drop"
    );
}

#[test]
fn serve_runs_scheduled_drill() {
    // The sandbox is the backed-up instance here, so drill.instances must name it.
    let drilled = start(
        SANDBOX_STORE,
        "schedule = \"*/2 * * * * *\"\ninstances = [\"sales\"]\n",
    );
    back_up_chain(&drilled);

    let serve: Child = Command::new(env!("CARGO_BIN_EXE_bakfleet"))
        .arg("--fleet")
        .arg(&drilled.fleet)
        .args(["serve", "--grace", "5"])
        .env_remove("RUST_LOG")
        .env("BAKFLEET_TEST_SQL_PASSWORD", &drilled.password)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start bakfleet serve");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut drills = Vec::new();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        drills = catalogue(
            &drilled,
            "SELECT status || '|' || trigger FROM drills WHERE status != 'running'",
        );
        if !drills.is_empty() {
            break;
        }
    }
    let cookie = viewer_session(&drilled);
    let page = http_get(drilled.site_port, "/backups/1", &cookie);

    // SAFETY: signalling our own child by its PID.
    unsafe { libc::kill(serve.id() as libc::pid_t, libc::SIGTERM) };
    let output = serve.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert_eq!(
        drills.first().map(String::as_str),
        Some("passed|schedule"),
        "{drills:?}\n{stderr}"
    );
    assert!(page.contains("Restore drills"), "{page}");
    assert!(
        page.contains("passed"),
        "the backup page shows the drill: {page}"
    );
}

/// Runs `bakfleet serve` until `done` returns true for the catalogue or 60 s pass, then
/// stops it and returns its standard error.
fn serve_until(drilled: &Drilled, done: impl Fn(&Drilled) -> bool) -> String {
    let serve: Child = Command::new(env!("CARGO_BIN_EXE_bakfleet"))
        .arg("--fleet")
        .arg(&drilled.fleet)
        .args(["serve", "--grace", "5"])
        .env_remove("RUST_LOG")
        .env("BAKFLEET_TEST_SQL_PASSWORD", &drilled.password)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start bakfleet serve");
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline && !done(drilled) {
        std::thread::sleep(Duration::from_millis(500));
    }
    // SAFETY: signalling our own child by its PID.
    unsafe { libc::kill(serve.id() as libc::pid_t, libc::SIGTERM) };
    let output = serve.wait_with_output().unwrap();
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn serve_drills_only_policy_databases() {
    // Sales is under a policy with drills every 2 seconds, Orders under one without, and
    // [drill] has no schedule of its own.
    let policies = Policies {
        tables: "[policy.drilled]\ndrill = { schedule = \"*/2 * * * * *\" }\n\n[policy.plain]\n",
        instance_lines: "database_policies = [\n\
                         { databases = [\"Sales\"], policy = \"drilled\" },\n\
                         { databases = [\"Orders\"], policy = \"plain\" },\n]",
    };
    let drilled = start_with(
        SANDBOX_STORE,
        &["Sales", "Orders"],
        &policies,
        "instances = [\"sales\"]\n",
    );
    back_up_database(&drilled, "Sales");
    back_up_database(&drilled, "Orders");

    let finished = "SELECT database || '|' || status || '|' || trigger FROM drills \
                    WHERE status != 'running' ORDER BY id";
    // Two slots of Sales's schedule pass, so Orders would have had its turn if it had one.
    let stderr = serve_until(&drilled, |drilled| catalogue(drilled, finished).len() >= 2);
    let drills = catalogue(&drilled, finished);
    assert!(drills.len() >= 2, "{drills:?}\n{stderr}");
    for drill in &drills {
        assert_eq!(drill, "Sales|passed|schedule", "{drills:?}\n{stderr}");
    }
    let orders = catalogue(
        &drilled,
        "SELECT count(*) FROM drills WHERE database = 'Orders'",
    );
    assert_eq!(orders, ["0"], "a policy without drills keeps Orders out");

    let drilled_backups = catalogue(
        &drilled,
        "SELECT DISTINCT b.database FROM drill_backups AS d \
         JOIN backups AS b ON b.id = d.backup_id ORDER BY b.database",
    );
    assert_eq!(
        drilled_backups,
        ["Sales"],
        "the outcome is on Sales's backups"
    );
}

/// Stores a viewer and a session straight in the catalogue, as the site stores them
/// (the SHA-256 of the cookie value), and returns the session's cookie.
fn viewer_session(drilled: &Drilled) -> String {
    use sha2::{Digest, Sha256};

    let token = "drill-test-session-token";
    let id_hash = hex::encode(Sha256::digest(token.as_bytes()));
    let now = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";
    catalogue(
        drilled,
        &format!(
            "INSERT INTO users (name, role, password_hash, created_at, password_changed_at) \
             VALUES ('tester', 'viewer', 'not-a-hash', {now}, {now}); \
             INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, last_seen_at, client) \
             SELECT '{id_hash}', id, 'unused', {now}, {now}, '127.0.0.1' FROM users \
             WHERE name = 'tester';"
        ),
    );
    format!("bakfleet_session={token}")
}

/// Fetches a page of the admin site with a plain HTTP/1.1 request and a session cookie.
fn http_get(port: u16, path: &str, cookie: &str) -> String {
    use std::io::{Read, Write};

    let mut stream =
        std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to the site");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut page = String::new();
    stream.read_to_string(&mut page).unwrap();
    page
}

/// Two instances for the README's `[drill]` example to name.
const INSTANCES: &str = "[[instance]]\nname = \"sales-prod\"\nhost = \"h1\"\n\
    auth = { kind = \"sql\", user = \"u\", password_env = \"P\" }\n\
    staging = { local = { server_path = \"/b\", dir = \"/b\" } }\n\n\
    [[instance]]\nname = \"sandbox01\"\nhost = \"h2\"\n\
    auth = { kind = \"sql\", user = \"u\", password_env = \"P\" }\n\
    staging = { local = { server_path = \"/b\", dir = \"/b\" } }\n\n";

fn readme_drill_block() -> String {
    let readme = include_str!("../README.md");
    readme
        .split("```toml\n")
        .skip(1)
        .filter_map(|block| block.split("```").next())
        .find(|block| block.contains("[drill]"))
        .expect("a README block with [drill]")
        .to_string()
}

#[test]
fn readme_drill_example_loads() {
    let text = format!("{INSTANCES}{}", readme_drill_block());
    let fleet = bakfleet::fleet::Fleet::parse(&text, std::path::Path::new("/etc/fleet.toml"))
        .unwrap_or_else(|error| panic!("{error}"));
    let drills = fleet.drills.expect("[drill] read");
    assert_eq!(drills.sandbox, "sandbox01");
    assert_eq!(drills.store_path, r"\\backup01\bakfleet-store");
    assert_eq!(drills.schedule.as_deref(), Some("0 0 3 * * Sat"));
    assert!(drills.covers("sales-prod", "Sales"));
    assert!(!drills.covers("sandbox01", "Sales"), "not listed");
    assert!(
        !drills.covers("sales-prod", "master"),
        "user databases only"
    );
}

#[test]
fn drill_unknown_sandbox_names_key() {
    let text = format!(
        "{INSTANCES}{}",
        readme_drill_block().replace("\"sandbox01\"", "\"sandbox02\"")
    );
    let error = bakfleet::fleet::Fleet::parse(&text, std::path::Path::new("/etc/fleet.toml"))
        .expect_err("an unknown sandbox is an error")
        .to_string();
    assert!(error.contains("drill.sandbox"), "{error}");
    assert!(error.contains("sandbox02"), "{error}");
    assert!(
        error.contains("sales-prod, sandbox01"),
        "the error lists the instances: {error}"
    );
}
