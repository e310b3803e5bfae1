//! The admin site in headless Chromium, driven over WebDriver: an operator logs in, starts
//! a backup with "run now", downloads it and logs out. chromedriver, `bakfleet serve` and
//! the SQL Server simulator run as child processes on loopback, and one browser session
//! takes every step. Screenshots of the main pages go to `target/screenshots/`.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bakfleet::catalog::{BackupRow, Catalog};
use base64::Engine;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use support::{free_port, require_tool, start_simulated_instance, SimulatedInstance};

/// The operator account that logs in through the form.
const USER: &str = "dba";

/// Instance and database names as the simulator and the fleet file give them.
const INSTANCE: &str = "sales";
const DATABASE: &str = "Orders";

/// Maximum wait for a child process to accept connections.
const START_LIMIT: Duration = Duration::from_secs(30);

/// Maximum wait for the "run now" backup to reach a final state. A 4 MiB database backs
/// up in seconds on the simulator, and the rest leaves room for a loaded machine.
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// Maximum wait for a page element after a navigation or a form submit.
const ELEMENT_LIMIT: Duration = Duration::from_secs(15);

/// Maximum wait for a child process to exit after SIGTERM before it gets SIGKILL.
const STOP_LIMIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_site_in_headless_chromium() {
    let chromium = require_tool("chromium", "chromium");
    let chromedriver = require_tool("chromedriver", "chromium-driver");

    let fleet = Fleet::start();
    fleet.add_user();
    fleet.back_up_once();
    let site = fleet.start_serve();
    let catalog = fleet.catalog().await;

    let driver = Chromedriver::start(&chromedriver);
    let browser = driver.open_browser(&chromium).await;
    let screenshots = Screenshots::create();
    let base = format!("http://127.0.0.1:{}", site.port);

    log_in_with_wrong_password(&browser, &base, &screenshots).await;
    log_in(&browser, &fleet.user_password).await;
    check_overview(&browser, &screenshots).await;
    let run_id = run_now(&browser, &screenshots).await;
    let backup = wait_for_run(&browser, &base, &catalog, run_id, &screenshots).await;
    check_backup_page(&browser, &backup, &screenshots).await;
    let cookie = session_cookie(&browser).await;
    download_in_page(&browser, &backup).await;
    download_with_cookie(site.port, &cookie, &backup);
    check_storage_page(&browser, &base, &screenshots).await;
    log_out(&browser).await;
    check_refused_after_logout(&browser, &base, site.port, &cookie, run_id, &backup).await;

    browser.close().await.expect("end the WebDriver session");
    drop(driver);
    drop(site);
}

/// Submits the login form with a wrong password and checks the error and that no
/// session cookie was set.
async fn log_in_with_wrong_password(browser: &Client, base: &str, screenshots: &Screenshots) {
    browser
        .goto(&format!("{base}/"))
        .await
        .expect("open the site");
    let path = current_path(browser).await;
    assert_eq!(path, "/login", "the site sends a visitor to the login page");
    screenshots.take(browser, "login").await;

    fill_login_form(browser, "not the password").await;
    let error = wait_for(browser, "#login-error").await;
    let message = error.text().await.expect("read the login error");
    assert_eq!(message, "Invalid user name or password.");
    assert_eq!(current_path(browser).await, "/login");
    assert!(
        browser.get_named_cookie("bakfleet_session").await.is_err(),
        "a failed login sets no session cookie"
    );
}

async fn log_in(browser: &Client, password: &str) {
    fill_login_form(browser, password).await;
    let user = wait_for(browser, "#current-user").await;
    let shown = user.text().await.expect("read the user name");
    assert_eq!(shown, format!("{USER} (operator)"));
    assert_eq!(
        current_path(browser).await,
        "/",
        "login returns to the page first requested"
    );
}

async fn fill_login_form(browser: &Client, password: &str) {
    let user = wait_for(browser, "#login-user").await;
    user.clear().await.expect("clear the user field");
    user.send_keys(USER).await.expect("type the user name");
    let field = wait_for(browser, "#login-password").await;
    field.send_keys(password).await.expect("type the password");
    let submit = wait_for(browser, "#login-submit").await;
    submit.click().await.expect("submit the login form");
}

/// Checks that the overview lists the instance and its database, then opens the
/// database's page.
async fn check_overview(browser: &Client, screenshots: &Screenshots) {
    let heading = wait_for(browser, "main h1").await;
    assert_eq!(
        heading.text().await.expect("read heading"),
        "Fleet overview"
    );
    let instance = wait_for(browser, "section.instance h2").await;
    assert_eq!(instance.text().await.expect("read instance"), INSTANCE);
    let link = wait_for(
        browser,
        &format!("a[href=\"/instances/{INSTANCE}/databases/{DATABASE}\"]"),
    )
    .await;
    assert_eq!(link.text().await.expect("read database link"), DATABASE);
    screenshots.take(browser, "overview").await;

    link.click().await.expect("open the database page");
    let heading = wait_for(browser, "main h1").await;
    let text = heading.text().await.expect("read heading");
    assert_eq!(text, format!("{DATABASE} on {INSTANCE}"));
    screenshots.take(browser, "database").await;
}

/// Starts a differential backup with the database page's "run now" form and returns the
/// run id of the page it lands on.
async fn run_now(browser: &Client, screenshots: &Screenshots) -> i64 {
    let select = wait_for(browser, "#run-now-type").await;
    select
        .select_by_value("diff")
        .await
        .expect("choose the diff backup type");
    let submit = wait_for(browser, "#run-now-submit").await;
    submit.click().await.expect("submit run now");

    wait_for(browser, "#run-status").await;
    let path = current_path(browser).await;
    let run_id = path
        .strip_prefix("/runs/")
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("run now leads to the run's page, not {path}"));
    screenshots.take(browser, "run-started").await;
    run_id
}

/// Reloads the run page until the run is no longer running, checks that it succeeded,
/// follows its backup link and returns the catalogued backup.
async fn wait_for_run(
    browser: &Client,
    base: &str,
    catalog: &Catalog,
    run_id: i64,
    screenshots: &Screenshots,
) -> BackupRow {
    let started = Instant::now();
    let status = loop {
        browser
            .goto(&format!("{base}/runs/{run_id}"))
            .await
            .expect("reload the run page");
        let status = wait_for(browser, "#run-status").await;
        let status = status.text().await.expect("read the run status");
        if status != "running" {
            break status;
        }
        assert!(
            started.elapsed() < RUN_LIMIT,
            "run {run_id} was still running after {RUN_LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    screenshots.take(browser, "run").await;
    let row = catalog
        .run(run_id)
        .await
        .expect("read the run")
        .expect("the run is catalogued");
    assert_eq!(
        status, "succeeded",
        "run {run_id} ended as {status}: {:?}",
        row.error
    );
    assert_eq!(row.backup_type.to_string(), "diff", "{row:?}");
    assert_eq!(row.trigger, "manual", "{row:?}");
    let backup_id = row.backup_id.expect("the succeeded run names its backup");
    see_run_log(browser, base, run_id).await;

    let link = wait_for(browser, "#run-backup-link").await;
    let href = link.attr("href").await.expect("read the backup link");
    assert_eq!(
        href.as_deref(),
        Some(format!("/backups/{backup_id}").as_str())
    );
    link.click().await.expect("open the backup page");
    wait_for(browser, "#download-link").await;
    catalog
        .backup(backup_id)
        .await
        .expect("read the backup")
        .expect("the backup is catalogued")
}

/// Checks the backup page against the catalogue.
async fn check_backup_page(browser: &Client, backup: &BackupRow, screenshots: &Screenshots) {
    let heading = wait_for(browser, "main h1").await;
    let text = heading.text().await.expect("read heading");
    assert!(
        text.starts_with(&format!("Backup {} diff", backup.id)),
        "{text}"
    );
    let hash = wait_for(browser, "#backup-sha256").await;
    assert_eq!(hash.text().await.expect("read SHA-256"), backup.sha256);
    screenshots.take(browser, "backup").await;
}

/// Opens the storage page and checks its heading and the stored bytes of the backup
/// just taken.
async fn check_storage_page(browser: &Client, base: &str, screenshots: &Screenshots) {
    browser
        .goto(&format!("{base}/storage"))
        .await
        .expect("open the storage page");
    let heading = wait_for(browser, "main h1").await;
    assert_eq!(heading.text().await.expect("read heading"), "Storage");
    let table = wait_for(browser, "#storage-table").await;
    let text = table.text().await.expect("read the storage table");
    assert!(text.contains(DATABASE), "{text}");
    screenshots.take(browser, "storage").await;
}

/// Returns the session cookie's value, which WebDriver reads although the page's
/// scripts cannot (HttpOnly).
async fn session_cookie(browser: &Client) -> String {
    let cookie = browser
        .get_named_cookie("bakfleet_session")
        .await
        .expect("a logged-in browser has the session cookie");
    assert_eq!(cookie.http_only(), Some(true), "{cookie:?}");
    cookie.value().to_string()
}

/// Fetches the download link's target with the page's own session and hashes the bytes
/// with the browser's Web Crypto, then compares both with the catalogue and the headers.
async fn download_in_page(browser: &Client, backup: &BackupRow) {
    let link = wait_for(browser, "#download-link").await;
    let href = link
        .attr("href")
        .await
        .expect("read the link")
        .expect("the download link has an href");
    assert_eq!(href, format!("/backups/{}/download", backup.id));

    let script = r#"
        const [href, done] = arguments;
        fetch(href, { credentials: "same-origin" })
            .then(async (response) => {
                const body = await response.arrayBuffer();
                const digest = await crypto.subtle.digest("SHA-256", body);
                const sha256 = Array.from(new Uint8Array(digest))
                    .map((byte) => byte.toString(16).padStart(2, "0"))
                    .join("");
                done({
                    status: response.status,
                    length: body.byteLength,
                    sha256,
                    digest: response.headers.get("digest"),
                    checksum: response.headers.get("x-checksum-sha256"),
                });
            })
            .catch((error) => done({ error: String(error) }));
    "#;
    let result = browser
        .execute_async(script, vec![json!(href)])
        .await
        .expect("run fetch() in the page");
    assert_eq!(result["error"], Value::Null, "{result}");
    assert_eq!(result["status"], json!(200), "{result}");
    assert_eq!(result["length"], json!(backup.size_bytes), "{result}");
    assert_eq!(result["sha256"], json!(backup.sha256), "{result}");
    assert_eq!(result["checksum"], json!(backup.sha256), "{result}");
    assert_eq!(result["digest"], json!(digest_header(backup)), "{result}");
}

/// Downloads the backup with a plain HTTP request that carries the browser's session
/// cookie, and hashes the bytes here.
fn download_with_cookie(port: u16, cookie: &str, backup: &BackupRow) {
    let path = format!("/backups/{}/download", backup.id);
    let response = http_get(port, &path, Some(cookie), None);
    assert_eq!(response.status, 200, "{path}: {:?}", response.head);
    assert_eq!(response.body.len() as u64, backup.size_bytes, "{path}");
    let sha256 = hex::encode(Sha256::digest(&response.body));
    assert_eq!(sha256, backup.sha256, "{path}");
    let digest = response.header("digest");
    assert_eq!(digest.as_deref(), Some(digest_header(backup).as_str()));
}

/// Returns the `Digest` header value for `backup`: its SHA-256 in base64 (RFC 3230).
fn digest_header(backup: &BackupRow) -> String {
    let bytes = hex::decode(&backup.sha256).expect("the catalogue's SHA-256 is hex");
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    format!("sha-256={encoded}")
}

async fn log_out(browser: &Client) {
    let submit = wait_for(browser, "#logout-submit").await;
    submit.click().await.expect("submit the logout form");
    wait_for(browser, "#login-form").await;
    assert_eq!(current_path(browser).await, "/login");
    assert!(
        browser.get_named_cookie("bakfleet_session").await.is_err(),
        "logout clears the session cookie"
    );
}

/// Opens every page of the session again and checks that each leads to the login form,
/// and that the old cookie, replayed, opens nothing either.
async fn check_refused_after_logout(
    browser: &Client,
    base: &str,
    port: u16,
    old_cookie: &str,
    run_id: i64,
    backup: &BackupRow,
) {
    let pages = [
        "/".to_string(),
        format!("/instances/{INSTANCE}/databases/{DATABASE}"),
        format!("/runs/{run_id}"),
        format!("/backups/{}", backup.id),
        format!("/backups/{}/download", backup.id),
        "/runs".to_string(),
        "/queue".to_string(),
    ];
    for page in &pages {
        browser
            .goto(&format!("{base}{page}"))
            .await
            .unwrap_or_else(|error| panic!("open {page}: {error}"));
        wait_for(browser, "#login-form").await;
        let url = browser.current_url().await.expect("read the URL");
        assert_eq!(url.path(), "/login", "{page} after logout");

        let response = http_get(port, page, Some(old_cookie), Some("text/html"));
        assert_eq!(response.status, 303, "{page} with the old cookie");
        let location = response.header("location").unwrap_or_default();
        assert!(
            location.starts_with("/login"),
            "{page} with the old cookie leads to {location:?}"
        );
    }
}

/// Waits for the first element that matches `selector` and returns it.
/// Reloads the run page until its log shows the verification and the stored file. The
/// run log is written a moment after the run's outcome, so the first load may lack them.
async fn see_run_log(browser: &Client, base: &str, run_id: i64) {
    let started = Instant::now();
    loop {
        let log = wait_for(browser, "#run-log, #run-log-empty").await;
        let text = log.text().await.expect("read the run log");
        if text.contains("backup verified") && text.contains("backup catalogued") {
            return;
        }
        assert!(
            started.elapsed() < ELEMENT_LIMIT,
            "run {run_id}'s log lacks its verification or its record:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        browser
            .goto(&format!("{base}/runs/{run_id}"))
            .await
            .expect("reload the run page");
    }
}

async fn wait_for(browser: &Client, selector: &str) -> fantoccini::elements::Element {
    match browser
        .wait()
        .at_most(ELEMENT_LIMIT)
        .for_element(Locator::Css(selector))
        .await
    {
        Ok(element) => element,
        Err(error) => {
            let url = browser.current_url().await.map(|url| url.to_string());
            let source = browser.source().await.unwrap_or_default();
            panic!("no element {selector} on {url:?} within {ELEMENT_LIMIT:?}: {error}\n{source}")
        }
    }
}

async fn current_path(browser: &Client) -> String {
    let url = browser.current_url().await.expect("read the URL");
    url.path().to_string()
}

/// PNG screenshots of the pages, written to `target/screenshots/` for review.
struct Screenshots {
    dir: PathBuf,
}

impl Screenshots {
    fn create() -> Screenshots {
        // bakfleet's binary is in the profile folder (`target/ci`) under the target folder.
        let bakfleet = Path::new(env!("CARGO_BIN_EXE_bakfleet"));
        let target = bakfleet
            .parent()
            .and_then(Path::parent)
            .expect("bakfleet's binary is under the target folder");
        let dir = target.join("screenshots");
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|error| panic!("create {}: {error}", dir.display()));
        Screenshots { dir }
    }

    async fn take(&self, browser: &Client, name: &str) {
        let png = browser.screenshot().await.expect("take a screenshot");
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n"),
            "the {name} screenshot is a PNG"
        );
        let path = self.dir.join(format!("{name}.png"));
        std::fs::write(&path, png)
            .unwrap_or_else(|error| panic!("write {}: {error}", path.display()));
    }
}

/// A simulated instance with one database, a fleet file that backs it up to a local
/// staging folder, and the operator's password.
struct Fleet {
    dir: tempfile::TempDir,
    simulator: Child,
    fleet: PathBuf,
    sql_password: String,
    user_password: String,
    listen_port: u16,
}

impl Fleet {
    fn start() -> Fleet {
        let dir = tempfile::tempdir().expect("temp dir");
        let staging = dir.path().join("staging");
        std::fs::create_dir_all(&staging).expect("staging dir");
        let sql_password = format!("B-{}", uuid::Uuid::new_v4().simple());
        let instance = SimulatedInstance {
            platform: "linux",
            edition: "developer",
            password: &sql_password,
            server_path: "/var/opt/mssql/backup",
            local_dir: &staging,
            databases: &[(DATABASE, 4, "FULL")],
            more_paths: &[],
        };
        let (simulator, sql_port) = start_simulated_instance(dir.path(), &instance);

        let listen_port = free_port();
        let fleet = dir.path().join("fleet.toml");
        std::fs::write(&fleet, fleet_config(sql_port, listen_port, &staging)).expect("fleet");
        Fleet {
            dir,
            simulator,
            fleet,
            sql_password,
            user_password: format!("pw-{}", uuid::Uuid::new_v4().simple()),
            listen_port,
        }
    }

    fn bakfleet(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_bakfleet"));
        command
            .arg("--fleet")
            .arg(&self.fleet)
            .env("BROWSER_SQL_PASSWORD", &self.sql_password)
            .env_remove("RUST_LOG");
        command
    }

    /// Adds the operator with `bakfleet user add`, the password on stdin.
    fn add_user(&self) {
        let mut child = self
            .bakfleet()
            .args(["user", "add", USER, "--role", "operator"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start bakfleet user add");
        let mut stdin = child.stdin.take().expect("piped stdin");
        writeln!(stdin, "{}", self.user_password).expect("write the password");
        drop(stdin);
        let output = child
            .wait_with_output()
            .expect("wait for bakfleet user add");
        assert!(
            output.status.success(),
            "bakfleet user add failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Takes the first full backup with `bakfleet run`, so that the overview lists the
    /// database and "run now" can take a differential.
    fn back_up_once(&self) {
        let output = self
            .bakfleet()
            .args(["run", INSTANCE, DATABASE])
            .output()
            .expect("run bakfleet run");
        assert!(
            output.status.success(),
            "bakfleet run failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Starts `bakfleet serve` and waits until the site accepts connections.
    fn start_serve(&self) -> ChildGuard {
        let log = self.dir.path().join("serve.log");
        let log_file = std::fs::File::create(&log).expect("create serve.log");
        let child = self
            .bakfleet()
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("start bakfleet serve");
        let guard = ChildGuard {
            name: "bakfleet serve",
            child,
            port: self.listen_port,
            log,
            group: false,
        };
        guard.wait_until_listening();
        guard
    }

    /// Opens the catalogue that `bakfleet user add` created.
    async fn catalog(&self) -> Catalog {
        Catalog::open(&self.dir.path().join("catalog.db"))
            .await
            .expect("open the catalogue")
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        // SAFETY: signalling our own child by its PID.
        unsafe { libc::kill(self.simulator.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.simulator.wait();
    }
}

/// Returns the fleet file's text. Every schedule is off, so the only backups are the
/// ones the test starts.
fn fleet_config(sql_port: u16, listen_port: u16, staging: &Path) -> String {
    format!(
        "[service]\nstore_dir = \"store\"\ncatalog = \"catalog.db\"\n\
         listen = \"127.0.0.1:{listen_port}\"\n\n\
         [defaults]\ncompression = false\nschedule.full = \"off\"\n\
         schedule.diff = \"off\"\nschedule.log = \"off\"\n\n\
         [[instance]]\nname = \"{INSTANCE}\"\n\
         host = \"127.0.0.1\"\nport = {sql_port}\n\
         auth = {{ kind = \"sql\", user = \"bakfleet\", password_env = \"BROWSER_SQL_PASSWORD\" }}\n\
         tls = {{ encrypt = \"not_supported\" }}\n\
         staging = {{ local = {{ server_path = \"/var/opt/mssql/backup\", dir = {:?} }} }}\n",
        staging.display().to_string()
    )
}

/// chromedriver on a free loopback port, in its own process group so that stopping it
/// also signals the Chromium processes it started in that group.
struct Chromedriver {
    process: ChildGuard,
    /// Throwaway Chromium profile, removed with the guard.
    profile: tempfile::TempDir,
}

impl Chromedriver {
    fn start(chromedriver: &Path) -> Chromedriver {
        let dir = tempfile::Builder::new()
            .prefix("bakfleet-chromedriver-")
            .tempdir()
            .expect("temp dir");
        let port = free_port();
        let log = dir.path().join("chromedriver.log");
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|error| panic!("start {}: {error}", chromedriver.display()));
        let process = ChildGuard {
            name: "chromedriver",
            child,
            port,
            log,
            group: true,
        };
        process.wait_until_listening();
        Chromedriver {
            process,
            profile: dir,
        }
    }

    /// Starts headless Chromium with a fresh profile and returns the WebDriver session.
    async fn open_browser(&self, chromium: &Path) -> Client {
        let profile = self.profile.path().join("profile");
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium.display().to_string(),
                "args": chromium_args(&profile),
            },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object literal")
        };
        let url = format!("http://127.0.0.1:{}", self.process.port);
        ClientBuilder::rustls()
            .expect("set up the WebDriver client")
            .capabilities(capabilities)
            .connect(&url)
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "chromedriver could not start Chromium: {error}\n{}",
                    self.process.log_tail()
                )
            })
    }
}

/// Chromium's command line: headless, with a throwaway profile and without the
/// background services that would reach hosts other than loopback.
fn chromium_args(profile: &Path) -> Vec<String> {
    let mut args: Vec<String> = [
        "--headless=new",
        // Chromium refuses to run as root with its sandbox on, and the tests run as root.
        "--no-sandbox",
        "--disable-gpu",
        // Containers often give /dev/shm only 64 MiB, which Chromium can outgrow.
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--disable-default-apps",
        "--disable-domain-reliability",
        "--disable-client-side-phishing-detection",
        "--no-pings",
        // Every host name except localhost and 127.0.0.1 fails to resolve, so nothing
        // the browser starts on its own leaves the machine.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
    ]
    .map(String::from)
    .to_vec();
    args.push(format!("--user-data-dir={}", profile.display()));
    args
}

/// A child process that is stopped by PID (SIGTERM, then SIGKILL) when dropped, so that
/// a failing test does not leave it running.
struct ChildGuard {
    name: &'static str,
    child: Child,
    /// The loopback port it listens on.
    port: u16,
    /// Its log file, shown when it fails to start.
    log: PathBuf,
    /// Whether the child leads its own process group, which is signalled as a whole.
    group: bool,
}

impl ChildGuard {
    fn wait_until_listening(&self) {
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                started.elapsed() < START_LIMIT,
                "{} did not listen on 127.0.0.1:{} within {START_LIMIT:?}\n{}",
                self.name,
                self.port,
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    fn signal(&self, signal: libc::c_int) {
        let pid = self.child.id() as libc::pid_t;
        let target = if self.group { -pid } else { pid };
        // SAFETY: signalling our own child, or the process group it leads, by its id.
        unsafe { libc::kill(target, signal) };
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.signal(libc::SIGTERM);
        let started = Instant::now();
        while started.elapsed() < STOP_LIMIT {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.signal(libc::SIGKILL);
        let _ = self.child.wait();
    }
}

/// The parts of an HTTP response the checks read.
struct HttpResponse {
    status: u16,
    /// Status line and headers.
    head: String,
    body: Vec<u8>,
}

impl HttpResponse {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_string())
        })
    }
}

/// Sends `GET path` to the site with an optional session cookie and `Accept` header, and
/// reads the whole response (the connection closes after it).
fn http_get(port: u16, path: &str, cookie: Option<&str>, accept: Option<&str>) -> HttpResponse {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the site");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("set the read timeout");
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n");
    if let Some(cookie) = cookie {
        request.push_str(&format!("Cookie: bakfleet_session={cookie}\r\n"));
    }
    if let Some(accept) = accept {
        request.push_str(&format!("Accept: {accept}\r\n"));
    }
    request.push_str("Connection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .expect("send the request");
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .expect("read the response");

    let split = response
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("GET {path}: the response has no end of headers"));
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let body = response[split + 4..].to_vec();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("GET {path}: invalid status line in {head:?}"));
    HttpResponse { status, head, body }
}
