//! bakfleet's TLS settings against a simulated instance with a certificate from a CA
//! made for the test: each `tls.encrypt` mode, a wrong CA, a wrong host name,
//! `trust_server_certificate`, and an instance that forces encryption.

#[path = "../tests/mssql-sim/tests/support/test_ca.rs"]
mod test_ca;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use bakfleet::fleet::{Fleet, Secrets};
use bakfleet::mssql::{Connection, MssqlError};
use mssql_sim::{SimConfig, Simulator};
use tempfile::TempDir;
use test_ca::{ServerFiles, TestCa};

const USER: &str = "bakfleet";
const PASSWORD: &str = "Bakfleet-Test-1";

/// A simulator instance named `secure` presenting `files`, and a folder for fleet.toml.
struct Fixture {
    simulator: Simulator,
    dir: TempDir,
}

impl Fixture {
    async fn start(files: &ServerFiles, force_encryption: bool) -> Fixture {
        let config = format!(
            "[[instance]]\nname = \"secure\"\nlisten = \"127.0.0.1:0\"\nmachine_name = \"SQL01\"\n\n\
             [[instance.login]]\nname = \"{USER}\"\npassword = \"{PASSWORD}\"\nsysadmin = true\n\n{}",
            files.sim_table(force_encryption)
        );
        let simulator = mssql_sim::start(SimConfig::from_toml_str(&config).unwrap())
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let secrets = dir.path().join("secrets.toml");
        std::fs::write(&secrets, format!("sql = {PASSWORD:?}\n")).unwrap();
        std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600)).unwrap();
        Fixture { simulator, dir }
    }

    /// Reads a fleet whose one instance points at the simulator with `host` and the
    /// `tls` table `tls`.
    fn fleet(&self, host: &str, tls: &str) -> Fleet {
        self.fleet_with_defaults("", host, tls)
    }

    /// As [`Fixture::fleet`], with `defaults` (a `[defaults]` table) before the instance.
    fn fleet_with_defaults(&self, defaults: &str, host: &str, tls: &str) -> Fleet {
        let port = self.simulator.addr("secure").unwrap().port();
        let staging = self.dir.path().join("staging");
        let text = format!(
            "[service]\nsecrets_file = \"secrets.toml\"\n\n{defaults}\
             [[instance]]\nname = \"secure\"\nhost = {host:?}\nport = {port}\n\
             auth = {{ kind = \"sql\", user = \"{USER}\", password_secret = \"sql\" }}\n\
             tls = {tls}\nconnect_timeout_secs = 5\n\
             staging = {{ local = {{ server_path = 'D:\\Backup', dir = {:?} }} }}\n",
            staging.display().to_string()
        );
        Fleet::parse(&text, &self.dir.path().join("fleet.toml")).unwrap()
    }

    /// Logs in as the fleet's instance and returns the session or the error.
    async fn connect(&self, fleet: &Fleet) -> Result<Connection, MssqlError> {
        let secrets = Secrets::load(&fleet.service).unwrap();
        let instance = fleet.instance("secure").unwrap();
        let settings =
            bakfleet::job::connect_settings(instance, &secrets, Some(Duration::from_secs(5)))
                .unwrap();
        Connection::open(&settings).await
    }
}

fn ca_table(encrypt: &str, ca: &Path) -> String {
    format!(
        "{{ encrypt = {encrypt:?}, ca_file = {:?} }}",
        ca.display().to_string()
    )
}

/// Runs a query on the session, which proves that it works after the login.
async fn assert_session_works(connection: &mut Connection) {
    let rows = connection
        .query("SELECT", "SELECT @@SERVERNAME AS server")
        .await
        .unwrap();
    let server: Option<&str> = rows[0][0].get("server");
    assert_eq!(server, Some("SQL01"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_mode_connects() {
    let ca = TestCa::new("bakfleet test CA");
    let fixture = Fixture::start(&ca.server_certificate(&["127.0.0.1"]), false).await;
    let fleet = fixture.fleet("127.0.0.1", &ca_table("strict", ca.ca_file()));

    let mut connection = fixture.connect(&fleet).await.unwrap();

    assert_session_works(&mut connection).await;
    assert!(fleet.instance("secure").unwrap().tls_warnings().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mandatory_mode_connects() {
    let ca = TestCa::new("bakfleet test CA");
    let fixture = Fixture::start(&ca.server_certificate(&["127.0.0.1"]), false).await;
    let fleet = fixture.fleet("127.0.0.1", &ca_table("mandatory", ca.ca_file()));

    let mut connection = fixture.connect(&fleet).await.unwrap();

    assert_session_works(&mut connection).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_ca_is_rejected() {
    let ca = TestCa::new("bakfleet test CA");
    let other = TestCa::new("another CA");
    let fixture = Fixture::start(&other.server_certificate(&["127.0.0.1"]), false).await;
    let fleet = fixture.fleet("127.0.0.1", &ca_table("mandatory", ca.ca_file()));

    let error = fixture
        .connect(&fleet)
        .await
        .err()
        .expect("login must fail");

    assert!(matches!(error, MssqlError::Certificate { .. }), "{error}");
    let text = error.to_string();
    let expected = format!(
        "certificate of instance secure is not signed by the CA in ca_file {}; check \
         ca_file or the server's certificate",
        ca.ca_file().display()
    );
    assert!(text.starts_with(&expected), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_host_name_is_rejected() {
    let ca = TestCa::new("bakfleet test CA");
    let fixture = Fixture::start(&ca.server_certificate(&["sql01.test"]), false).await;
    let fleet = fixture.fleet("127.0.0.1", &ca_table("mandatory", ca.ca_file()));

    let error = fixture
        .connect(&fleet)
        .await
        .err()
        .expect("login must fail");

    let text = error.to_string();
    assert!(
        text.contains("certificate of instance secure is not valid for the name 127.0.0.1"),
        "{text}"
    );
    assert!(text.contains("host_name_in_certificate"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_name_in_certificate_is_used() {
    let ca = TestCa::new("bakfleet test CA");
    let fixture = Fixture::start(&ca.server_certificate(&["sql01.test"]), false).await;
    let tls = format!(
        "{{ encrypt = \"mandatory\", ca_file = {:?}, host_name_in_certificate = \"sql01.test\" }}",
        ca.ca_file().display().to_string()
    );
    let fleet = fixture.fleet("127.0.0.1", &tls);

    let mut connection = fixture.connect(&fleet).await.unwrap();

    assert_session_works(&mut connection).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trust_server_certificate_warns() {
    let other = TestCa::new("unknown CA");
    let fixture = Fixture::start(&other.server_certificate(&["sql01.test"]), false).await;
    let fleet = fixture.fleet(
        "127.0.0.1",
        "{ encrypt = \"mandatory\", trust_server_certificate = true }",
    );

    let mut connection = fixture.connect(&fleet).await.unwrap();

    assert_session_works(&mut connection).await;
    let warnings = fleet.instance("secure").unwrap().tls_warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("trust_server_certificate = true"),
        "{warnings:?}"
    );
    let warnings = fleet.warnings().join("\n");
    assert!(
        warnings.contains("instance \"secure\": tls.trust_server_certificate = true"),
        "{warnings}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forced_encryption_upgrades_optional() {
    let ca = TestCa::new("bakfleet test CA");
    let fixture = Fixture::start(&ca.server_certificate(&["127.0.0.1"]), true).await;
    let fleet = fixture.fleet("127.0.0.1", &ca_table("optional", ca.ca_file()));

    let mut connection = fixture.connect(&fleet).await.unwrap();

    assert_session_works(&mut connection).await;
    let warnings = fleet.instance("secure").unwrap().tls_warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("\"optional\""), "{warnings:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defaults_ca_file_is_inherited() {
    let ca = TestCa::new("bakfleet test CA");
    let fixture = Fixture::start(&ca.server_certificate(&["127.0.0.1"]), false).await;
    let defaults = format!(
        "[defaults]\ntls = {{ ca_file = {:?} }}\n\n",
        ca.ca_file().display().to_string()
    );
    let fleet = fixture.fleet_with_defaults(&defaults, "127.0.0.1", "{ encrypt = \"strict\" }");

    let mut connection = fixture.connect(&fleet).await.unwrap();

    assert_session_works(&mut connection).await;
    let instance = fleet.instance("secure").unwrap();
    assert_eq!(instance.tls.ca_file.as_deref(), Some(ca.ca_file()));
}
