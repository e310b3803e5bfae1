//! Alerts end to end: backups against the simulator, the alert evaluator, and delivery
//! to a webhook receiver and an SMTP server with STARTTLS, both on 127.0.0.1.
//!
//! A failing backup sends one webhook and one e-mail, a repeat within `min_interval`
//! sends nothing, a later good backup sends one recovery, and a database past its RPO
//! sends one RPO alert.

#[path = "support/smtp.rs"]
mod smtp;
#[path = "../tests/mssql-sim/tests/support/test_ca.rs"]
mod test_ca;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use bakfleet::alert::{self, Evaluator, RpoState};
use bakfleet::backup::BackupType;
use bakfleet::fleet::AlertEvent;
use bakfleet::job::{self, JobContext, JobOutcome, JobRequest, Trigger};
use bakfleet::service;
use mssql_sim::engine::Fault;
use mssql_sim::{SimConfig, Simulator};
use serde_json::Value;
use smtp::{Login, SmtpReceiver};
use tempfile::TempDir;
use test_ca::TestCa;
use time::OffsetDateTime;

const INSTANCE: &str = "sales";
const DATABASE: &str = "Sales";
const SQL_PASSWORD: &str = "Bakfleet-Test-1";
const SMTP_USER: &str = "bakfleet-alerts";
const SMTP_PASSWORD: &str = "smtp-Secret-42";
const HOOK_TOKEN: &str = "hook-Secret-7";

/// Requests the webhook receiver accepted, with their headers.
#[derive(Clone, Default)]
struct Hooks {
    received: Arc<Mutex<Vec<(HeaderMap, Value)>>>,
    /// Number of requests to reject with HTTP 503 before accepting again.
    failures_left: Arc<AtomicUsize>,
}

impl Hooks {
    fn bodies(&self) -> Vec<Value> {
        let received = self.received.lock().unwrap();
        received.iter().map(|(_, body)| body.clone()).collect()
    }
}

async fn receive_hook(
    State(hooks): State<Hooks>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> StatusCode {
    let failing = hooks
        .failures_left
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
            left.checked_sub(1)
        });
    if failing.is_ok() {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    hooks.received.lock().unwrap().push((headers, body));
    StatusCode::OK
}

async fn start_webhook_receiver() -> (SocketAddr, Hooks) {
    let hooks = Hooks::default();
    let app = Router::new()
        .route("/hook", post(receive_hook))
        .with_state(hooks.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (addr, hooks)
}

/// A simulated instance with one database, a fleet file with alerts to the local
/// receivers, and the job context opened on it.
struct AlertFleet {
    simulator: Simulator,
    ctx: JobContext,
    hooks: Hooks,
    smtp: SmtpReceiver,
    _ca: TestCa,
    _dir: TempDir,
}

impl AlertFleet {
    async fn start(alerts_keys: &str) -> AlertFleet {
        let dir = tempfile::tempdir().unwrap();
        let staging = dir.path().join("staging");
        std::fs::create_dir_all(&staging).unwrap();
        let simulator = start_simulator(&staging).await;
        let (hook_addr, hooks) = start_webhook_receiver().await;
        let ca = TestCa::new("bakfleet alerts test CA");
        let server = ca.server_certificate(&["127.0.0.1"]);
        let login = Login {
            user: SMTP_USER.to_string(),
            password: SMTP_PASSWORD.to_string(),
        };
        let smtp = SmtpReceiver::start(&server.certificate, &server.private_key, login).await;

        let secrets = dir.path().join("secrets.toml");
        std::fs::write(
            &secrets,
            format!("sql = \"{SQL_PASSWORD}\"\nsmtp = \"{SMTP_PASSWORD}\"\n"),
        )
        .unwrap();
        set_owner_only(&secrets);
        // Each test process sets the same value, so parallel tests agree.
        std::env::set_var("BAKFLEET_TEST_HOOK_TOKEN", HOOK_TOKEN);
        let sim_addr = simulator.addr(INSTANCE).unwrap();
        let fleet_text = format!(
            r#"
[service]
store_dir = "store"
catalog = "catalog.db"
secrets_file = "secrets.toml"

[defaults]
schedule = {{ full = "0 0 1 * * *", diff = "off", log = "off" }}
rpo = {{ full = "1d" }}

[[instance]]
name = "{INSTANCE}"
host = "127.0.0.1"
port = {sim_port}
auth = {{ kind = "sql", user = "bakfleet", password_secret = "sql" }}
tls = {{ encrypt = "not_supported" }}
databases = {{ include = ["{DATABASE}"] }}
staging = {{ local = {{ server_path = "/var/opt/mssql/backup", dir = {staging:?} }} }}

[alerts]
site_url = "https://backup.example/"
{alerts_keys}

[[alerts.webhook]]
url = "http://{hook_addr}/hook"
format = "json"
headers_env = {{ X-Token = "BAKFLEET_TEST_HOOK_TOKEN" }}

[alerts.email]
host = "127.0.0.1"
port = {smtp_port}
tls = "starttls"
user = "{SMTP_USER}"
password_secret = "smtp"
from = "bakfleet <bakfleet@backup.example>"
to = ["dba@backup.example", "oncall@backup.example"]
ca_file = {ca_file:?}
"#,
            sim_port = sim_addr.port(),
            staging = staging.display().to_string(),
            smtp_port = smtp.addr.port(),
            ca_file = ca.ca_file().display().to_string(),
        );
        let fleet_path = dir.path().join("fleet.toml");
        std::fs::write(&fleet_path, fleet_text).unwrap();
        let ctx = service::open(&fleet_path, None)
            .await
            .unwrap_or_else(|error| panic!("open the service: {error:#}"));
        AlertFleet {
            simulator,
            ctx,
            hooks,
            smtp,
            _ca: ca,
            _dir: dir,
        }
    }

    /// Runs a full backup of the database; `fault` makes it fail.
    async fn backup(&self, fault: Option<Fault>) -> i64 {
        if let Some(fault) = fault {
            self.simulator.set_fault(INSTANCE, fault);
        }
        let request = JobRequest {
            instance: self.ctx.fleet.instance(INSTANCE).unwrap().clone(),
            database: DATABASE.to_string(),
            backup_type: BackupType::Full,
            trigger: Trigger::Manual,
            slot: None,
        };
        match job::run(&self.ctx, &request).await {
            Ok(JobOutcome::Succeeded { run_id, .. }) => run_id,
            Ok(other) => panic!("unexpected outcome {other:?}"),
            Err(failure) => failure.run_id.expect("a failed run is catalogued"),
        }
    }

    /// Runs one evaluator pass at `now` without RPO states, then delivers.
    async fn pass_runs(&self, now: OffsetDateTime) -> alert::PassSummary {
        let alerts = self
            .ctx
            .fleet
            .alerts
            .as_ref()
            .expect("the fleet has alerts");
        let evaluator = Evaluator {
            catalog: &self.ctx.catalog,
            alerts,
            targets: alert::target_names(alerts),
            settle: time::Duration::ZERO,
        };
        let summary = evaluator.evaluate(now, None).await.unwrap();
        self.deliver(now).await;
        summary
    }

    /// Runs one evaluator pass at `now` with the RPO states of that time, then delivers.
    async fn pass_rpo(&self, now: OffsetDateTime) -> alert::PassSummary {
        let fleet = &self.ctx.fleet;
        let alerts = fleet.alerts.as_ref().expect("the fleet has alerts");
        let rpo = alert::rpo_statuses(fleet, &self.ctx.catalog, now)
            .await
            .unwrap();
        let evaluator = Evaluator {
            catalog: &self.ctx.catalog,
            alerts,
            targets: alert::target_names(alerts),
            settle: time::Duration::ZERO,
        };
        let summary = evaluator.evaluate(now, Some(rpo.as_slice())).await.unwrap();
        self.deliver(now).await;
        summary
    }

    async fn deliver(&self, now: OffsetDateTime) -> alert::DeliverySummary {
        let alerts = self.ctx.fleet.alerts.as_ref().unwrap();
        alert::deliver_pending(&self.ctx.catalog, alerts, &self.ctx.secrets, now)
            .await
            .unwrap()
    }
}

fn set_owner_only(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

async fn start_simulator(staging: &Path) -> Simulator {
    let config = format!(
        "[[instance]]\nname = \"{INSTANCE}\"\nlisten = \"127.0.0.1:0\"\nplatform = \"linux\"\n\
         edition = \"developer\"\n\n\
         [[instance.login]]\nname = \"bakfleet\"\npassword = \"{SQL_PASSWORD}\"\nsysadmin = true\n\n\
         [[instance.path_map]]\nserver = \"/var/opt/mssql/backup\"\nlocal = {local:?}\n\n\
         [[instance.database]]\nname = \"{DATABASE}\"\nsize_mb = 4\nrecovery_model = \"FULL\"\n",
        local = staging.display().to_string(),
    );
    mssql_sim::start(SimConfig::from_toml_str(&config).unwrap())
        .await
        .unwrap()
}

/// Events of the received webhook bodies, in arrival order.
fn events(bodies: &[Value]) -> Vec<String> {
    bodies
        .iter()
        .map(|body| body["event"].as_str().unwrap_or("?").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_alerts_once_then_recovers() {
    let fleet =
        AlertFleet::start("events = [\"failure\", \"recovery\"]\nmin_interval = \"1h\"").await;
    // The first pass only sets the cursor, so older runs never alert.
    let first = fleet.pass_runs(OffsetDateTime::now_utc()).await;
    assert_eq!(first, alert::PassSummary::default());

    let failed_run = fleet.backup(Some(Fault::DenyAccess)).await;
    let summary = fleet.pass_runs(OffsetDateTime::now_utc()).await;
    assert_eq!(summary.alerts, 1, "one failure alert");

    let bodies = fleet.hooks.bodies();
    assert_eq!(events(&bodies), ["failure"]);
    let body = &bodies[0];
    assert_eq!(body["instance"], INSTANCE);
    assert_eq!(body["database"], DATABASE);
    assert_eq!(body["backup_type"], "full");
    assert_eq!(body["run_id"], failed_run);
    assert_eq!(
        body["link"],
        format!("https://backup.example/runs/{failed_run}")
    );
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("3201"), "{message}");
    // The guard ends with this statement: the receiver takes the lock for every webhook.
    let headers = fleet.hooks.received.lock().unwrap()[0].0.clone();
    assert_eq!(headers["x-token"], HOOK_TOKEN);

    let mails = fleet.smtp.messages();
    assert_eq!(mails.len(), 1, "one failure e-mail");
    let mail = &mails[0];
    assert!(mail.tls, "the e-mail arrived over TLS");
    assert_eq!(mail.user.as_deref(), Some(SMTP_USER));
    assert_eq!(mail.to.len(), 2, "{:?}", mail.to);
    assert!(
        mail.data
            .contains("Subject: [bakfleet] backup failed: Sales on sales"),
        "{}",
        mail.data
    );
    assert!(
        mail.data.contains(&format!("Run: {failed_run}")),
        "{}",
        mail.data
    );

    // A second failure within min_interval is held back.
    fleet.backup(Some(Fault::DenyAccess)).await;
    let summary = fleet.pass_runs(OffsetDateTime::now_utc()).await;
    assert_eq!(summary.alerts, 0);
    assert_eq!(summary.suppressed, 1);
    assert_eq!(fleet.hooks.bodies().len(), 1, "no second webhook");
    assert_eq!(fleet.smtp.messages().len(), 1, "no second e-mail");

    // A good backup closes the problem with one recovery alert.
    let good_run = fleet.backup(None).await;
    let summary = fleet.pass_runs(OffsetDateTime::now_utc()).await;
    assert_eq!(summary.alerts, 1, "one recovery alert");
    let bodies = fleet.hooks.bodies();
    assert_eq!(events(&bodies), ["failure", "recovery"]);
    assert_eq!(bodies[1]["run_id"], good_run);
    let mails = fleet.smtp.messages();
    assert_eq!(mails.len(), 2);
    assert!(
        mails[1].data.contains("Subject: [bakfleet] recovered"),
        "{}",
        mails[1].data
    );

    // Another good backup sends nothing: the problem is closed.
    fleet.backup(None).await;
    let summary = fleet.pass_runs(OffsetDateTime::now_utc()).await;
    assert_eq!(summary.alerts, 0);
    assert_eq!(fleet.hooks.bodies().len(), 2);

    let log = fleet.ctx.catalog.recent_alerts(10).await.unwrap();
    let logged: Vec<AlertEvent> = log.iter().rev().map(|alert| alert.event).collect();
    assert_eq!(logged, [AlertEvent::Failure, AlertEvent::Recovery]);
    fleet.simulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_realerts_after_min_interval() {
    let fleet = AlertFleet::start("events = [\"failure\"]\nmin_interval = \"10m\"").await;
    let start = OffsetDateTime::now_utc();
    fleet.pass_runs(start).await;

    fleet.backup(Some(Fault::DenyAccess)).await;
    assert_eq!(fleet.pass_runs(OffsetDateTime::now_utc()).await.alerts, 1);
    fleet.backup(Some(Fault::DenyAccess)).await;
    // The pass's clock is 11 minutes on, past min_interval.
    let later = OffsetDateTime::now_utc() + time::Duration::minutes(11);
    assert_eq!(fleet.pass_runs(later).await.alerts, 1, "a reminder");
    assert_eq!(events(&fleet.hooks.bodies()), ["failure", "failure"]);
    fleet.simulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_webhook_is_retried_next_pass() {
    let fleet = AlertFleet::start("events = [\"failure\"]").await;
    fleet.pass_runs(OffsetDateTime::now_utc()).await;
    fleet.hooks.failures_left.store(1, Ordering::SeqCst);

    fleet.backup(Some(Fault::DenyAccess)).await;
    fleet.pass_runs(OffsetDateTime::now_utc()).await;
    assert!(
        fleet.hooks.bodies().is_empty(),
        "the receiver rejected the first POST"
    );
    assert_eq!(
        fleet.smtp.messages().len(),
        1,
        "the e-mail went out regardless"
    );

    let delivered = fleet.deliver(OffsetDateTime::now_utc()).await;
    assert_eq!(delivered.sent, 1, "only the webhook was pending");
    assert_eq!(events(&fleet.hooks.bodies()), ["failure"]);
    assert_eq!(
        fleet.smtp.messages().len(),
        1,
        "the e-mail is not sent twice"
    );
    fleet.simulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpo_breach_alerts_once() {
    let fleet = AlertFleet::start("events = [\"rpo\", \"recovery\"]").await;
    fleet.backup(None).await;
    let now = OffsetDateTime::now_utc();

    let statuses = alert::rpo_statuses(&fleet.ctx.fleet, &fleet.ctx.catalog, now)
        .await
        .unwrap();
    let sales = statuses
        .iter()
        .find(|status| status.database == DATABASE)
        .expect("the database is assessed");
    assert_eq!(sales.state, RpoState::Ok, "{sales:?}");

    // Two days on, the full backup is older than its 1d RPO.
    let late = now + time::Duration::days(2);
    let summary = fleet.pass_rpo(late).await;
    assert_eq!(summary.alerts, 1, "one RPO alert");
    let bodies = fleet.hooks.bodies();
    assert_eq!(events(&bodies), ["rpo"]);
    let message = bodies[0]["message"].as_str().unwrap();
    assert!(message.contains("late against its RPO"), "{message}");
    assert!(message.contains("RPO 1d"), "{message}");
    assert_eq!(bodies[0]["run_id"], Value::Null);
    assert_eq!(fleet.smtp.messages().len(), 1);

    // The next pass, still late, sends nothing.
    let summary = fleet.pass_rpo(late + time::Duration::minutes(1)).await;
    assert_eq!(summary.alerts, 0);
    assert_eq!(fleet.hooks.bodies().len(), 1);

    // A pass at a time within the RPO again sends one recovery.
    let summary = fleet
        .pass_rpo(late + time::Duration::minutes(2) - time::Duration::days(2))
        .await;
    assert_eq!(summary.alerts, 1);
    assert_eq!(events(&fleet.hooks.bodies()), ["rpo", "recovery"]);
    fleet.simulator.shutdown().await;
}

/// Builds a fleet file with one instance and `alerts` appended.
fn fleet_with_alerts(alerts: &str) -> String {
    format!(
        r#"[[instance]]
name = "sales-prod"
host = "sql01"
auth = {{ kind = "sql", user = "bakfleet", password_env = "PW" }}
staging = {{ local = {{ server_path = "/var/opt/mssql/backup", dir = "/mnt/backup" }} }}
{alerts}"#
    )
}

fn parse_error(text: &str) -> String {
    match bakfleet::fleet::Fleet::parse(text, Path::new("fleet.toml")) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn alerts_config_applies_defaults() {
    let text = fleet_with_alerts(
        r#"
[alerts]
[[alerts.webhook]]
url = "https://chat.example/hooks/T000/SECRET"
"#,
    );
    let fleet = bakfleet::fleet::Fleet::parse(&text, Path::new("fleet.toml")).unwrap();
    let alerts = fleet.alerts.expect("alerts are set");

    assert_eq!(alerts.events.len(), 3);
    assert_eq!(alerts.min_interval, std::time::Duration::from_secs(3600));
    assert_eq!(alerts.check_interval, std::time::Duration::from_secs(30));
    assert_eq!(alerts.webhooks.len(), 1);
    assert_eq!(
        alerts.webhooks[0].format,
        bakfleet::fleet::WebhookFormat::Json
    );
    assert!(alerts.email.is_none());
    let debug = format!("{:?}", alerts.webhooks[0]);
    assert!(!debug.contains("SECRET"), "{debug}");
    assert_eq!(alerts.webhooks[0].describe(), "https://chat.example/...");
}

#[test]
fn alerts_config_reads_email() {
    let text = fleet_with_alerts(
        r#"
[alerts.email]
host = "smtp.example"
tls = "implicit"
user = "bakfleet"
password_env = "SMTP_PW"
from = "bakfleet@example.com"
to = ["dba@example.com"]
"#,
    );
    let fleet = bakfleet::fleet::Fleet::parse(&text, Path::new("fleet.toml")).unwrap();
    let email = fleet.alerts.unwrap().email.expect("e-mail is set");

    assert_eq!(email.port, 465, "implicit TLS defaults to port 465");
    assert_eq!(email.tls, bakfleet::fleet::SmtpTls::Implicit);
    assert_eq!(email.to, ["dba@example.com"]);
    let (user, _) = email.login.expect("a login is set");
    assert_eq!(user, "bakfleet");
}

#[test]
fn alerts_config_errors_name_line_and_key() {
    let text = fleet_with_alerts(
        r#"
[alerts]
events = ["failure", "disk"]
min_interval = "soon"

[[alerts.webhook]]
url = "ftp://chat.example/hook"
format = "discord"

[alerts.email]
host = "smtp.example"
tls = "none"
password_env = "SMTP_PW"
from = "not an address"
to = []
"#,
    );
    let error = parse_error(&text);
    let expected = [
        (
            "fleet.toml:8:",
            "key `alerts.events`: unknown alert event \"disk\"",
        ),
        (
            "fleet.toml:9:",
            "key `alerts.min_interval`: invalid duration \"soon\"",
        ),
        (
            "fleet.toml:12:",
            "key `alerts.webhook[0].url`: URL scheme \"ftp\"",
        ),
        (
            "fleet.toml:13:",
            "key `alerts.webhook[0].format`: unknown webhook format",
        ),
        (
            "fleet.toml:17:",
            "key `alerts.email.tls`: unknown SMTP TLS mode \"none\"",
        ),
        (
            "fleet.toml:18:",
            "key `alerts.email.user`: a password is set but no user",
        ),
        (
            "fleet.toml:19:",
            "key `alerts.email.from`: invalid e-mail address",
        ),
        (
            "fleet.toml:20:",
            "key `alerts.email.to`: no recipient is set",
        ),
    ];
    for (position, message) in expected {
        let found = error
            .lines()
            .any(|line| line.starts_with(position) && line.contains(message));
        assert!(found, "missing {position} {message} in:\n{error}");
    }
}

#[test]
fn alerts_config_needs_a_target() {
    let error = parse_error(&fleet_with_alerts("\n[alerts]\nevents = [\"failure\"]\n"));
    assert!(error.contains("names no webhook and no e-mail"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_database_waits_for_rpo() {
    let fleet = AlertFleet::start("events = [\"rpo\", \"recovery\"]").await;
    let now = OffsetDateTime::now_utc();

    // No backup yet: the first pass only notes the database as missing.
    let summary = fleet.pass_rpo(now).await;
    assert_eq!(summary.alerts, 0);
    let summary = fleet.pass_rpo(now + time::Duration::hours(23)).await;
    assert_eq!(summary.alerts, 0, "still within the 1d RPO");

    let summary = fleet.pass_rpo(now + time::Duration::hours(25)).await;
    assert_eq!(summary.alerts, 1, "missing for longer than the RPO");
    let bodies = fleet.hooks.bodies();
    assert_eq!(events(&bodies), ["rpo"]);
    let message = bodies[0]["message"].as_str().unwrap();
    assert!(message.contains("no good full backup"), "{message}");
    fleet.simulator.shutdown().await;
}
