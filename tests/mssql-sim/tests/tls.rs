//! The simulator's TLS against tiberius (TDS 7.4 with login-only and full encryption,
//! TDS 8 strict), FreeTDS `tsql` and python-tds, with a CA generated per test.

mod support;

use std::net::SocketAddr;

use mssql_sim::{SimConfig, Simulator};
use support::test_ca::{ServerFiles, TestCa};
use tiberius::EncryptionLevel;

const USER: &str = "bakfleet";
const PASSWORD: &str = "Bakfleet-Test-1";

/// A simulator with one instance, `secure`, that presents `files` as its certificate.
async fn start_secure(files: &ServerFiles, force_encryption: bool) -> Simulator {
    let config = format!(
        r#"
[[instance]]
name = "secure"
listen = "127.0.0.1:0"
machine_name = "SQL01"

[[instance.login]]
name = "{USER}"
password = "{PASSWORD}"
sysadmin = true

[[instance.database]]
name = "Sales"
size_mb = 1

{}"#,
        files.sim_table(force_encryption)
    );
    let config = SimConfig::from_toml_str(&config).unwrap();
    mssql_sim::start(config).await.unwrap()
}

/// tiberius settings that check the certificate against `ca`.
fn tiberius_config(addr: SocketAddr, encryption: EncryptionLevel, ca: &TestCa) -> tiberius::Config {
    let mut config = tiberius::Config::new();
    config.host(addr.ip().to_string());
    config.port(addr.port());
    config.authentication(tiberius::AuthMethod::sql_server(USER, PASSWORD));
    config.encryption(encryption);
    config.trust_cert_ca(ca.ca_file().display().to_string());
    config
}

/// Logs in and returns `@@SERVERNAME`, which proves the session works after login.
async fn server_name(config: tiberius::Config) -> Result<String, tiberius::error::Error> {
    let mut client = support::tiberius_connect_with(config).await?;
    let row = client
        .simple_query("SELECT @@SERVERNAME AS server")
        .await?
        .into_row()
        .await?
        .expect("one row");
    Ok(row.get::<&str, _>("server").unwrap_or_default().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiberius_required_encrypts_session() {
    let ca = TestCa::new("bakfleet test CA");
    let simulator = start_secure(&ca.server_certificate(&["127.0.0.1"]), false).await;
    let addr = simulator.addr("secure").unwrap();

    let name = server_name(tiberius_config(addr, EncryptionLevel::Required, &ca)).await;

    assert_eq!(name.unwrap(), "SQL01");
    simulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiberius_off_encrypts_login_only() {
    let ca = TestCa::new("bakfleet test CA");
    let simulator = start_secure(&ca.server_certificate(&["127.0.0.1"]), false).await;
    let addr = simulator.addr("secure").unwrap();

    let name = server_name(tiberius_config(addr, EncryptionLevel::Off, &ca)).await;

    assert_eq!(name.unwrap(), "SQL01");
    simulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiberius_strict_uses_tls_first() {
    let ca = TestCa::new("bakfleet test CA");
    let simulator = start_secure(&ca.server_certificate(&["127.0.0.1"]), false).await;
    let addr = simulator.addr("secure").unwrap();

    let name = server_name(tiberius_config(addr, EncryptionLevel::Strict, &ca)).await;

    assert_eq!(name.unwrap(), "SQL01");
    simulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forced_encryption_accepts_off_client() {
    let ca = TestCa::new("bakfleet test CA");
    let simulator = start_secure(&ca.server_certificate(&["127.0.0.1"]), true).await;
    let addr = simulator.addr("secure").unwrap();

    let name = server_name(tiberius_config(addr, EncryptionLevel::Off, &ca)).await;

    assert_eq!(name.unwrap(), "SQL01");
    simulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forced_encryption_rejects_plain_client() {
    let ca = TestCa::new("bakfleet test CA");
    let simulator = start_secure(&ca.server_certificate(&["127.0.0.1"]), true).await;
    let addr = simulator.addr("secure").unwrap();

    let result = server_name(tiberius_config(addr, EncryptionLevel::NotSupported, &ca)).await;

    assert!(
        result.is_err(),
        "a client without TLS must not log in to an instance that forces encryption"
    );
    simulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiberius_rejects_unknown_issuer() {
    let ca = TestCa::new("bakfleet test CA");
    let other = TestCa::new("another CA");
    let simulator = start_secure(&other.server_certificate(&["127.0.0.1"]), false).await;
    let addr = simulator.addr("secure").unwrap();

    let error = server_name(tiberius_config(addr, EncryptionLevel::Required, &ca))
        .await
        .unwrap_err()
        .to_string();

    assert!(error.contains("UnknownIssuer"), "{error}");
    simulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiberius_rejects_wrong_host_name() {
    let ca = TestCa::new("bakfleet test CA");
    let simulator = start_secure(&ca.server_certificate(&["sql01.test"]), false).await;
    let addr = simulator.addr("secure").unwrap();

    let error = server_name(tiberius_config(addr, EncryptionLevel::Required, &ca))
        .await
        .unwrap_err()
        .to_string();

    assert!(error.contains("not valid for name"), "{error}");
    simulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tsql_require_encryption_runs_query() {
    let ca = TestCa::new("bakfleet test CA");
    let simulator = start_secure(&ca.server_certificate(&["localhost", "127.0.0.1"]), false).await;
    let port = simulator.addr("secure").unwrap().port();
    let folder = tempfile::tempdir().unwrap();
    let config = folder.path().join("freetds.conf");
    std::fs::write(
        &config,
        format!(
            "[secure]\n\thost = localhost\n\tport = {port}\n\ttds version = 7.4\n\
             \tencryption = require\n\tca file = {}\n",
            ca.ca_file().display()
        ),
    )
    .unwrap();

    let output = support::run_tsql_configured(
        &config,
        "secure",
        USER,
        PASSWORD,
        "SELECT @@SERVERNAME AS server\ngo\n",
    )
    .await;

    support::assert_line(&output.stdout, "SQL01");
    simulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pytds_cafile_runs_query() {
    let ca = TestCa::new("bakfleet test CA");
    let simulator = start_secure(&ca.server_certificate(&["localhost", "127.0.0.1"]), false).await;
    let port = simulator.addr("secure").unwrap().port();
    // python-tds checks the certificate's common name against the dsn, so it connects
    // by the name the certificate carries.
    let script = format!(
        r#"
import sys, pytds
try:
    import OpenSSL
except ImportError:
    sys.exit("pyOpenSSL is missing: python-tds needs it for TLS; install it with "
             "`target/python-tds/bin/pip install pyOpenSSL==26.4.0`")
port = int(sys.argv[1])
conn = pytds.connect(dsn='localhost', port=port, user='{USER}', password='{PASSWORD}',
                     cafile=r'{ca_file}', autocommit=True)
cur = conn.cursor()
cur.execute("SELECT @@SERVERNAME AS server")
print("server", cur.fetchall()[0][0])
conn.close()
"#,
        ca_file = ca.ca_file().display()
    );

    let output = support::run_pytds(&script, port).await;

    support::assert_line(&output, "server SQL01");
    simulator.shutdown().await;
}
