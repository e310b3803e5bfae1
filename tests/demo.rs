//! The README's commands, as a new user runs them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Sends a GET request and returns the status line and the body.
fn http_get(port: u16, path: &str) -> (String, String) {
    let (status, _, body) = http_request(port, "GET", path, "", "");
    (status, body)
}

/// Sends a request with `cookie` (may be empty) and a form `body`, and returns the status
/// line, the header block and the body.
fn http_request(
    port: u16,
    method: &str,
    path: &str,
    cookie: &str,
    body: &str,
) -> (String, String, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the site");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    if !cookie.is_empty() {
        head.push_str(&format!("Cookie: {cookie}\r\n"));
    }
    if method == "POST" {
        head.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    write!(stream, "{head}\r\n{body}").expect("send request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    let (headers, body) = response
        .split_once("\r\n\r\n")
        .map(|(headers, body)| (headers.to_string(), body.to_string()))
        .unwrap_or_default();
    let status = headers.lines().next().unwrap_or_default().to_string();
    (status, headers, body)
}

/// Returns the `name=value` part of the `Set-Cookie` header for cookie `name`.
fn set_cookie(headers: &str, name: &str) -> String {
    headers
        .lines()
        .filter_map(|line| line.strip_prefix("set-cookie: "))
        .find(|cookie| cookie.starts_with(&format!("{name}=")))
        .and_then(|cookie| cookie.split(';').next())
        .unwrap_or_else(|| panic!("no cookie {name} in:\n{headers}"))
        .to_string()
}

/// Logs in through the form and returns the session cookie.
fn log_in(port: u16, user: &str, password: &str) -> String {
    let (_, headers, page) = http_request(port, "GET", "/login", "", "");
    let login_cookie = set_cookie(&headers, "bakfleet_login");
    let marker = "name=\"login_token\" value=\"";
    let start = page.find(marker).expect("login form token") + marker.len();
    let token = &page[start..start + 64];
    let form = format!("user={user}&password={password}&login_token={token}");
    let (status, headers, _) = http_request(port, "POST", "/login", &login_cookie, &form);
    assert!(status.contains("303"), "login: {status}");
    set_cookie(&headers, "bakfleet_session")
}

/// Runs `bakfleet demo` without `--once` until it prints the site's address, checks two
/// pages, and stops it with SIGTERM.
fn check_demo_site(data_dir: &Path) {
    let started = std::time::SystemTime::now();
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_bakfleet"))
        .args([
            "demo",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start bakfleet demo");
    let mut child = StopOnDrop(child);
    let stdout = child.0.stdout.take().expect("demo stdout");
    let mut lines = BufReader::new(stdout).lines();
    let announced = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|line| line.starts_with("admin site: http://127.0.0.1:"));
    assert!(announced, "the demo prints the site's address");
    let login_line = lines
        .next()
        .and_then(Result::ok)
        .expect("the demo prints its login");
    let password = login_line
        .rsplit(": ")
        .next()
        .expect("the login line ends with the password")
        .to_string();

    let (status, _) = http_get(port, "/");
    assert!(status.contains("401"), "the site needs a login: {status}");
    let session = log_in(port, "demo", &password);
    let (status, _, body) = http_request(port, "GET", "/", &session, "");
    assert!(status.contains("200"), "{status}");
    assert!(body.contains("sales-prod"), "overview lists the instance");
    assert!(body.contains("Sales"), "overview lists the database");
    // The demo leaves Payroll out and catches no slot up, so it stays missing until a
    // user backs it up or the next log slot (every 5 minutes) comes.
    if !crosses_log_slot(started, std::time::SystemTime::now()) {
        assert!(
            body.contains(r#"<strong id="count-missing">1</strong>"#),
            "Payroll is the one database missing on a fresh demo's overview"
        );
        assert!(body.contains("Payroll"), "the overview lists Payroll");
    }
    let (status, _) = http_get(port, "/healthz");
    assert!(status.contains("200"), "{status}");

    // SAFETY: signalling our own child by its PID.
    unsafe { libc::kill(child.0.id() as libc::pid_t, libc::SIGTERM) };
    let exit = child.0.wait().expect("demo exit");
    assert!(exit.success(), "the demo stops cleanly on SIGTERM: {exit}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(
        rest.iter().any(|line| line.starts_with("demo stopped")),
        "the demo says that it stopped: {rest:?}"
    );
    assert!(
        !data_dir.join("catalog.db-wal").exists(),
        "a clean stop folds the write-ahead log into catalog.db"
    );
}

/// Returns whether a slot of the demo fleet's log schedule, every 5 minutes, falls between
/// `from` and `to`.
fn crosses_log_slot(from: std::time::SystemTime, to: std::time::SystemTime) -> bool {
    let slot = |time: std::time::SystemTime| {
        let seconds = time
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs();
        seconds / 300
    };
    slot(from) != slot(to)
}

/// A child process that is killed when the test fails before stopping it, so that it
/// does not keep the demo's ports bound for the next test.
struct StopOnDrop(std::process::Child);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// The demo binds fixed ports (14331, 14332), so its runs happen one after another in
/// this one test.
#[test]
fn demo_once_list_and_site() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = Command::new(env!("CARGO_BIN_EXE_bakfleet"))
        .args(["demo", "--once", "--data-dir"])
        .arg(dir.path().join("demo-data"))
        .current_dir(dir.path())
        .output()
        .expect("run bakfleet demo");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "demo failed:\n{stdout}\n{stderr}");

    let catalogued = stdout
        .split("catalogued backups:")
        .nth(1)
        .unwrap_or_else(|| panic!("no catalogued backups listed:\n{stdout}"));
    for database in [
        "Sales",
        "Inventory",
        "Ventes d'été",
        "HR",
        "Payroll",
        "master",
    ] {
        let line = catalogued
            .lines()
            .find(|line| line.contains(database))
            .unwrap_or_else(|| panic!("{database} missing from:\n{catalogued}"));
        assert!(line.contains("full"), "{line}");
        assert!(
            line.split_whitespace()
                .any(|word| word.len() == 64 && word.bytes().all(|b| b.is_ascii_hexdigit())),
            "a SHA-256 is printed: {line}"
        );
    }
    assert!(
        stdout.contains("compression left out"),
        "Express drops compression and says so:\n{stdout}"
    );

    // The repository's fleet file points `list` at the same catalogue.
    let fleet = dir.path().join("fleet.toml");
    std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/fleet.toml"), &fleet).expect("copy");
    let output = Command::new(env!("CARGO_BIN_EXE_bakfleet"))
        .args(["list", "--fleet"])
        .arg(&fleet)
        .output()
        .expect("run bakfleet list");
    let listed = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "list failed: {listed}");
    assert!(listed.contains("[Sales]"), "{listed}");
    assert!(listed.contains("[HR]"), "{listed}");

    // The copy the demo writes into its data folder works from any folder.
    let output = Command::new(env!("CARGO_BIN_EXE_bakfleet"))
        .args(["list", "--fleet"])
        .arg(dir.path().join("demo-data").join("fleet.toml"))
        .current_dir("/")
        .output()
        .expect("run bakfleet list");
    let listed = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "list failed: {listed}");
    assert!(listed.contains("[Sales]"), "{listed}");

    // A new data folder, so that the serving demo starts from an empty catalogue.
    check_demo_site(&dir.path().join("serve-data"));
}

#[test]
fn check_accepts_repository_fleet() {
    let fleet = concat!(env!("CARGO_MANIFEST_DIR"), "/fleet.toml");
    let output = Command::new(env!("CARGO_BIN_EXE_bakfleet"))
        .args(["check", "--fleet", fleet])
        .env("BAKFLEET_DEMO_PASSWORD", "not-a-real-password")
        .output()
        .expect("run bakfleet check");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "check failed:\n{stdout}");
    assert!(stdout.contains("sales-prod"), "{stdout}");
    assert!(stdout.contains("hr-linux"), "{stdout}");
    assert!(!stdout.contains("not-a-real-password"), "no secret printed");
}

#[test]
fn check_names_line_of_unknown_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fleet = dir.path().join("fleet.toml");
    std::fs::write(
        &fleet,
        "[[instance]]\nname = \"a\"\nhost = \"h\"\nauth = { kind = \"sql\", user = \"u\", \
         password_env = \"P\" }\nstaging = { local = { server_path = \"/b\", dir = \"/b\" } }\n\
         colour = \"blue\"\n",
    )
    .expect("write fleet");
    let output = Command::new(env!("CARGO_BIN_EXE_bakfleet"))
        .args(["check", "--fleet"])
        .arg(&fleet)
        .output()
        .expect("run bakfleet check");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("fleet.toml:6"),
        "names file and line: {stderr}"
    );
    assert!(stderr.contains("colour"), "names the key: {stderr}");
}

#[test]
fn run_reports_unreachable_instance() {
    let dir = tempfile::tempdir().expect("temp dir");
    let closed_port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port();
    let fleet = dir.path().join("fleet.toml");
    std::fs::write(
        &fleet,
        format!(
            "[service]\nstore_dir = \"store\"\ncatalog = \"catalog.db\"\n\n[defaults]\n\
             connect_timeout_secs = 5\n\n[[instance]]\nname = \"gone\"\nhost = \"127.0.0.1\"\n\
             port = {closed_port}\nauth = {{ kind = \"sql\", user = \"u\", password_env = \"GONE_PW\" }}\n\
             tls = {{ encrypt = \"not_supported\" }}\n\
             staging = {{ local = {{ server_path = \"/b\", dir = \"/tmp\" }} }}\n"
        ),
    )
    .expect("write fleet");
    let output = Command::new(env!("CARGO_BIN_EXE_bakfleet"))
        .args(["run", "--fleet"])
        .arg(&fleet)
        .env("GONE_PW", "not-a-real-password")
        .output()
        .expect("run bakfleet run");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "an unreachable instance fails the run"
    );
    assert!(stdout.contains("FAILED"), "{stdout}");
    assert!(stdout.contains("gone"), "names the instance: {stdout}");
    assert!(
        stdout.contains(&format!("127.0.0.1:{closed_port}")),
        "names the address: {stdout}"
    );
    assert!(!stdout.contains("not-a-real-password"), "no secret printed");
    assert!(!stderr.contains("not-a-real-password"), "no secret logged");
}

#[test]
fn check_accepts_readme_fleet_example() {
    let readme = include_str!("../README.md");
    let start = readme
        .find("```toml\n")
        .expect("a TOML block in the README")
        + "```toml\n".len();
    let length = readme[start..].find("```").expect("the block's end");
    let dir = tempfile::tempdir().expect("temp dir");
    let fleet = dir.path().join("fleet.toml");
    std::fs::write(&fleet, &readme[start..start + length]).expect("write fleet");
    let output = Command::new(env!("CARGO_BIN_EXE_bakfleet"))
        .args(["check", "--fleet"])
        .arg(&fleet)
        .env("BAKFLEET_FILES01_PASSWORD", "x")
        .env("BAKFLEET_SALES_PROD_PASSWORD", "y")
        .output()
        .expect("run bakfleet check");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("sales-prod"), "{stdout}");
}
