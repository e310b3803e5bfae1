//! Reloading fleet.toml in `bakfleet serve`: a valid new file changes schedules and
//! instances without a restart, and an invalid one leaves the old file in force with the
//! error in the log, on the admin site and in `/healthz`. bakfleet and the simulator run
//! as child processes, as in production.

mod support;
mod web_session;

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bakfleet::account::Role;
use bakfleet::catalog::{Catalog, RunStatus};
use support::{
    free_port, simulator_binary, start_simulated_instance, start_simulator_process,
    SimulatedInstance,
};

/// Maximum wait for serve to start, for a reload to show, and for scheduled runs.
const WAIT_LIMIT: Duration = Duration::from_secs(60);

/// The backup folder as the simulated instance names it.
const SERVER_PATH: &str = "/var/opt/mssql/backup";

/// Throttle of the slow simulated BACKUP: an 8 MiB database takes about 4 s to back up,
/// so a reload during the backup finds the job running.
const SLOW_BYTES_PER_SEC: u64 = 2 * 1024 * 1024;

/// A simulated instance, a fleet file that names it, and a running `bakfleet serve`
/// whose log goes to a file.
struct Served {
    dir: tempfile::TempDir,
    simulator: Child,
    serve: Option<Child>,
    sql_port: u16,
    site_port: u16,
    /// The path serve was given.
    fleet: PathBuf,
    /// The file that `fleet` names, which differs when `fleet` is a symbolic link.
    target: PathBuf,
    password: String,
}

impl Served {
    /// Starts the simulator and serve on a fleet whose schedules are all off. With
    /// `symlink`, serve is given a link in another folder, which the file watch does not
    /// see change, so only SIGHUP reloads it.
    fn start(symlink: bool) -> Served {
        Served::start_with(symlink, "off", false)
    }

    /// Like [`Served::start`] with the first file's full backup schedule given, and with
    /// `slow`, one 8 MiB database whose BACKUP is throttled.
    fn start_with(symlink: bool, full: &str, slow: bool) -> Served {
        let dir = tempfile::tempdir().expect("temp dir");
        let staging = dir.path().join("staging");
        std::fs::create_dir_all(&staging).expect("staging dir");
        let password = format!("R-{}", uuid::Uuid::new_v4().simple());
        let (simulator, sql_port) = if slow {
            start_slow_simulator(dir.path(), &password, &staging)
        } else {
            start_simulated_instance(
                dir.path(),
                &SimulatedInstance {
                    platform: "linux",
                    edition: "developer",
                    password: &password,
                    server_path: SERVER_PATH,
                    local_dir: &staging,
                    databases: &[("Orders", 1, "FULL")],
                    more_paths: &[],
                },
            )
        };
        let target = dir.path().join("config").join("fleet.toml");
        std::fs::create_dir_all(target.parent().unwrap()).expect("config dir");
        let fleet = if symlink {
            let link = dir.path().join("etc").join("fleet.toml");
            std::fs::create_dir_all(link.parent().unwrap()).expect("etc dir");
            std::os::unix::fs::symlink(&target, &link).expect("symlink");
            link
        } else {
            target.clone()
        };
        let mut served = Served {
            dir,
            simulator,
            serve: None,
            sql_port,
            site_port: free_port(),
            fleet,
            target,
            password,
        };
        std::fs::write(&served.target, served.fleet_text(full, &["sales"])).expect("fleet");
        served.start_serve();
        served.wait_for_site();
        served
    }

    fn start_serve(&mut self) {
        let log = File::create(self.log_path()).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_bakfleet"))
            .args(["serve", "--grace", "5"])
            .arg("--fleet")
            .arg(&self.fleet)
            .env("RELOAD_SQL_PASSWORD", &self.password)
            .env_remove("RUST_LOG")
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start bakfleet serve");
        self.serve = Some(child);
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("serve.log")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Builds a fleet file in which every name of `instances` is the simulated instance
    /// under another name, and `full` is the full backup schedule.
    fn fleet_text(&self, full: &str, instances: &[&str]) -> String {
        let staging = self.dir.path().join("staging");
        let mut text = format!(
            "[service]\nstore_dir = {:?}\ncatalog = {:?}\nlisten = \"127.0.0.1:{}\"\n\
             min_store_free_bytes = 0\n\n\
             [defaults]\ncompression = false\nschedule.full = {full:?}\n\
             schedule.diff = \"off\"\nschedule.log = \"off\"\n",
            self.dir.path().join("store").display().to_string(),
            self.dir.path().join("catalog.db").display().to_string(),
            self.site_port
        );
        for name in instances {
            text.push_str(&format!(
                "\n[[instance]]\nname = {name:?}\nhost = \"127.0.0.1\"\nport = {}\n\
                 auth = {{ kind = \"sql\", user = \"bakfleet\", password_env = \"RELOAD_SQL_PASSWORD\" }}\n\
                 tls = {{ encrypt = \"not_supported\" }}\n\
                 staging = {{ local = {{ server_path = {SERVER_PATH:?}, dir = {:?} }} }}\n",
                self.sql_port,
                staging.display().to_string()
            ));
        }
        text
    }

    /// Replaces the fleet file as git and editors do: a new file renamed over the old one.
    fn replace_fleet(&self, text: &str) {
        let temporary = self.target.with_extension("toml.new");
        let mut file = File::create(&temporary).expect("new fleet file");
        file.write_all(text.as_bytes())
            .expect("write new fleet file");
        file.sync_all().expect("sync new fleet file");
        std::fs::rename(&temporary, &self.target).expect("rename over fleet.toml");
    }

    fn get(&self, path: &str) -> (String, String) {
        http_get(self.site_port, path, None)
    }

    /// Fetches a page with a viewer's session, as every page but `/healthz` needs one.
    async fn get_signed_in(&self, catalog: &Catalog, path: &str) -> (String, String) {
        let session = web_session::session_for(catalog, Role::Viewer).await;
        http_get(self.site_port, path, Some(&session.cookie))
    }

    fn wait_for_site(&self) {
        let started = Instant::now();
        loop {
            if TcpStream::connect(("127.0.0.1", self.site_port)).is_ok() {
                return;
            }
            assert!(
                started.elapsed() < WAIT_LIMIT,
                "serve did not start listening within {WAIT_LIMIT:?}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Polls `/healthz` until its body contains `text`, and returns the body.
    fn wait_for_health(&self, text: &str) -> String {
        let started = Instant::now();
        loop {
            let (_, body) = self.get("/healthz");
            if body.contains(text) {
                return body;
            }
            assert!(
                started.elapsed() < WAIT_LIMIT,
                "/healthz did not show {text:?} within {WAIT_LIMIT:?}: {body}\nlog:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn hangup(&self) {
        let serve = self.serve.as_ref().expect("serve runs");
        // SAFETY: signalling our own child by its PID.
        unsafe { libc::kill(serve.id() as libc::pid_t, libc::SIGHUP) };
    }

    async fn catalog(&self) -> Catalog {
        Catalog::open(&self.dir.path().join("catalog.db"))
            .await
            .expect("open the catalogue")
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        for child in [self.serve.as_mut(), Some(&mut self.simulator)]
            .into_iter()
            .flatten()
        {
            // SAFETY: signalling our own child by its PID.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            let _ = child.wait();
        }
    }
}

/// Starts a simulator with one instance and one 8 MiB database whose BACKUP runs at
/// [`SLOW_BYTES_PER_SEC`].
fn start_slow_simulator(
    dir: &std::path::Path,
    password: &str,
    staging: &std::path::Path,
) -> (Child, u16) {
    let config = format!(
        "[[instance]]\nname = \"sales\"\nlisten = \"127.0.0.1:0\"\nplatform = \"linux\"\n\
         edition = \"developer\"\n\n[[instance.login]]\nname = \"bakfleet\"\n\
         password = {password:?}\nsysadmin = true\n\n[[instance.path_map]]\n\
         server = {SERVER_PATH:?}\nlocal = {:?}\n\n[[instance.database]]\n\
         name = \"Orders\"\nsize_mb = 8\nrecovery_model = \"FULL\"\n\n\
         [[instance.fault]]\nkind = \"slow_backup\"\nbytes_per_sec = {SLOW_BYTES_PER_SEC}\n",
        staging.display().to_string()
    );
    let path = dir.join("sim.toml");
    std::fs::write(&path, config).expect("write sim.toml");
    let simulator = simulator_binary(std::path::Path::new(env!("CARGO_BIN_EXE_bakfleet")));
    start_simulator_process(&simulator, &path)
}

fn http_get(port: u16, path: &str, cookie: Option<&str>) -> (String, String) {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return (String::new(), String::new());
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    let cookie = cookie.map_or(String::new(), |cookie| format!("Cookie: {cookie}\r\n"));
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{cookie}\r\n"
    )
    .expect("send request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    let status = response.lines().next().unwrap_or_default().to_string();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Polls the catalogue until `instance` has a succeeded scheduled run.
async fn wait_for_scheduled_run(served: &Served, catalog: &Catalog, instance: &str) {
    let started = Instant::now();
    loop {
        let runs = catalog.recent_runs(200).await.expect("read runs");
        let done = runs.iter().any(|run| {
            run.instance == instance
                && run.trigger == "schedule"
                && run.status == RunStatus::Succeeded
        });
        if done {
            return;
        }
        assert!(
            started.elapsed() < WAIT_LIMIT,
            "no scheduled run of {instance} succeeded within {WAIT_LIMIT:?}: {runs:?}\nlog:\n{}",
            served.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn scheduled_runs(catalog: &Catalog) -> usize {
    let runs = catalog.recent_runs(1000).await.expect("read runs");
    runs.iter().filter(|run| run.trigger == "schedule").count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_applies_valid_rejects_invalid() {
    let served = Served::start(false);
    let catalog = served.catalog().await;
    let first = served.wait_for_health("the newest file on disk");
    assert!(first.starts_with("ok\n"), "{first}");
    assert_eq!(scheduled_runs(&catalog).await, 0, "every schedule is off");

    // A schedule every 2 seconds and a second instance, by renaming a new file in place.
    served.replace_fleet(&served.fleet_text("*/2 * * * * *", &["sales", "sales-copy"]));
    wait_for_scheduled_run(&served, &catalog, "sales").await;
    wait_for_scheduled_run(&served, &catalog, "sales-copy").await;
    let log = served.log();
    assert!(log.contains("fleet file reloaded"), "{log}");
    assert!(
        log.contains("sales-copy"),
        "the log names the added instance: {log}"
    );
    let (_, health) = served.get("/healthz");
    assert!(health.contains("the newest file on disk"), "{health}");

    // An invalid file: the previous one stays in force and its schedule keeps running.
    let invalid = served
        .fleet_text("*/2 * * * * *", &["sales"])
        .replace("compression = false", "compression = false\nbogus_key = 1");
    served.replace_fleet(&invalid);
    let health = served.wait_for_health("reload rejected");
    assert!(health.starts_with("ok\n"), "still ready: {health}");
    assert!(
        health.contains("bogus_key"),
        "the error names the key: {health}"
    );
    assert!(
        health.contains("fleet.toml:"),
        "the error names the file: {health}"
    );
    assert!(
        health.contains("the file on disk differs from it"),
        "{health}"
    );
    let log = served.log();
    assert!(log.contains("fleet file rejected"), "{log}");
    assert!(log.contains("bogus_key"), "{log}");
    let (status, page) = served.get_signed_in(&catalog, "/").await;
    assert!(status.contains("200"), "{status}");
    assert!(page.contains("The fleet file was rejected"), "{page}");
    assert!(page.contains("bogus_key"), "{page}");
    let before = scheduled_runs(&catalog).await;
    let started = Instant::now();
    while scheduled_runs(&catalog).await < before + 2 {
        assert!(
            started.elapsed() < WAIT_LIMIT,
            "the schedule in force stopped running after the rejected file\nlog:\n{}",
            served.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let runs = catalog.recent_runs(1000).await.expect("read runs");
    assert!(
        runs.iter()
            .filter(|run| run.instance == "sales-copy")
            .count()
            >= 1,
        "the instance of the file in force is still served: {runs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_linked_fleet_file() {
    let served = Served::start(true);
    let catalog = served.catalog().await;
    served.wait_for_health("the newest file on disk");

    // The link's folder does not change, so the file watch reports no event.
    std::fs::write(
        &served.target,
        served.fleet_text("*/2 * * * * *", &["sales"]),
    )
    .expect("rewrite fleet file");
    served.wait_for_health("the file on disk differs from it");
    assert_eq!(
        scheduled_runs(&catalog).await,
        0,
        "no reload without SIGHUP"
    );

    served.hangup();
    wait_for_scheduled_run(&served, &catalog, "sales").await;
    let log = served.log();
    assert!(log.contains("SIGHUP received"), "{log}");
    assert!(log.contains("fleet file reloaded"), "{log}");
    served.wait_for_health("the newest file on disk");
}

/// The revision is `git COMMIT` for a committed file, and names the hash as well once the
/// file has uncommitted changes.
#[tokio::test]
async fn revision_names_git_commit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let git = |args: &[&str]| {
        let status = Command::new("git")
            .arg("-C")
            .arg(dir.path())
            .args(args)
            .stdout(Stdio::null())
            .status()
            .expect("git runs: install it with `apt-get install git`");
        assert!(status.success(), "git {args:?}");
    };
    let fleet = dir.path().join("fleet.toml");
    std::fs::write(&fleet, "# fleet\n").unwrap();
    let hash = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    let outside = bakfleet::reload::revision(&fleet, hash).await;
    assert_eq!(outside, "sha256 001122334455", "outside git");

    git(&["init", "--quiet"]);
    git(&["add", "fleet.toml"]);
    git(&[
        "-c",
        "user.name=test",
        "-c",
        "user.email=test@example.invalid",
        "commit",
        "--quiet",
        "-m",
        "fleet",
    ]);
    let committed = bakfleet::reload::revision(&fleet, hash).await;
    assert!(committed.starts_with("git "), "{committed}");
    assert_eq!(committed.len(), "git ".len() + 12, "{committed}");

    std::fs::write(&fleet, "# fleet, edited\n").unwrap();
    let edited = bakfleet::reload::revision(&fleet, hash).await;
    assert_eq!(edited, format!("{committed} + sha256 001122334455"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_keeps_running_job() {
    let served = Served::start_with(false, "* * * * * *", true);
    let catalog = served.catalog().await;
    let running = wait_for_backup_phase(&served, &catalog).await;

    // The new file turns the schedule off while the job is in its BACKUP.
    served.replace_fleet(&served.fleet_text("off", &["sales"]));
    let started = Instant::now();
    while !served.log().contains("fleet file reloaded") {
        assert!(
            started.elapsed() < WAIT_LIMIT,
            "no reload within {WAIT_LIMIT:?}\nlog:\n{}",
            served.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let run = loop {
        let run = catalog
            .run(running)
            .await
            .expect("read run")
            .expect("run exists");
        if run.status != RunStatus::Running {
            break run;
        }
        assert!(
            started.elapsed() < WAIT_LIMIT,
            "the run did not finish within {WAIT_LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        run.status,
        RunStatus::Succeeded,
        "the reload let the running job finish: {run:?}\nlog:\n{}",
        served.log()
    );
    let after_job = scheduled_runs(&catalog).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        scheduled_runs(&catalog).await,
        after_job,
        "no scheduled run starts once the new file turned the schedule off\nlog:\n{}",
        served.log()
    );
}

/// Polls the catalogue until a run is in its backup phase, and returns its id.
async fn wait_for_backup_phase(served: &Served, catalog: &Catalog) -> i64 {
    let started = Instant::now();
    loop {
        let runs = catalog.recent_runs(10).await.expect("read runs");
        if let Some(run) = runs.iter().find(|run| run.phase == "backup") {
            return run.id;
        }
        assert!(
            started.elapsed() < WAIT_LIMIT,
            "no run reached the backup phase within {WAIT_LIMIT:?}: {runs:?}\nlog:\n{}",
            served.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
