//! Client helpers shared by the simulator's tests: tiberius connections, python-tds and
//! FreeTDS `tsql` runs, and line assertions on their output.
#![allow(dead_code)] // Each test file uses a different subset.

pub mod test_ca;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tiberius::{AuthMethod, Client, Config, EncryptionLevel};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::process::Command;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

/// Maximum run time of a client process, so a protocol hang fails the test instead of
/// blocking it.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

pub type TiberiusClient = Client<Compat<TcpStream>>;

/// Builds a tiberius configuration for SQL authentication without TLS.
pub fn tiberius_config(addr: SocketAddr, user: &str, password: &str) -> Config {
    let mut config = Config::new();
    config.host(addr.ip().to_string());
    config.port(addr.port());
    config.authentication(AuthMethod::sql_server(user, password));
    config.encryption(EncryptionLevel::NotSupported);
    config.trust_cert();
    config
}

pub async fn tiberius_connect(
    addr: SocketAddr,
    user: &str,
    password: &str,
) -> Result<TiberiusClient, tiberius::error::Error> {
    tiberius_connect_with(tiberius_config(addr, user, password)).await
}

pub async fn tiberius_connect_with(
    config: Config,
) -> Result<TiberiusClient, tiberius::error::Error> {
    let tcp = TcpStream::connect(config.get_addr()).await?;
    tcp.set_nodelay(true)?;
    Client::connect(config, tcp.compat_write()).await
}

/// Returns the python interpreter of the python-tds virtual environment: `$BAKFLEET_PYTDS_VENV`
/// or `target/python-tds` under the workspace root. Panics with the install command
/// when it is missing.
pub fn pytds_python() -> PathBuf {
    let venv = match std::env::var_os("BAKFLEET_PYTDS_VENV") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/python-tds"),
    };
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "python-tds is missing: {} not found. Install it with `python3 -m venv target/python-tds && target/python-tds/bin/pip install python-tds==1.17.1` in the workspace root, or point BAKFLEET_PYTDS_VENV at such a virtual environment",
        python.display()
    );
    python
}

/// Runs `script` with python-tds, the port as its first argument, and returns its
/// standard output. Panics when it fails or times out.
pub async fn run_pytds(script: &str, port: u16) -> String {
    let python = pytds_python();
    let child = Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(port.to_string())
        .env("PYTHONIOENCODING", "utf-8")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|error| panic!("starting {} failed: {error}", python.display()));
    let output = tokio::time::timeout(CLIENT_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("python-tds script timed out after {CLIENT_TIMEOUT:?}"))
        .expect("waiting for python failed");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "python-tds script failed ({}).\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    stdout
}

/// Output of one `tsql` run.
pub struct TsqlOutput {
    pub stdout: String,
    pub stderr: String,
}

/// Runs FreeTDS `tsql` with `input` on standard input at TDS version `version`. Panics
/// with the install command when tsql is missing. tsql exits 0 even after a failed
/// batch, so callers check the messages it prints on standard error.
pub async fn run_tsql(
    port: u16,
    user: &str,
    password: &str,
    version: &str,
    input: &str,
) -> TsqlOutput {
    let mut command = Command::new("tsql");
    command
        .args([
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            user,
            "-P",
            password,
        ])
        .env("TDSVER", version);
    run_tsql_command(command, input).await
}

/// Runs `tsql -S server` with the FreeTDS configuration file `config`, whose section
/// `server` holds the host, port and encryption settings. Panics as [`run_tsql`] does.
pub async fn run_tsql_configured(
    config: &std::path::Path,
    server: &str,
    user: &str,
    password: &str,
    input: &str,
) -> TsqlOutput {
    let mut command = Command::new("tsql");
    command
        .args(["-S", server, "-U", user, "-P", password])
        .env("FREETDSCONF", config);
    run_tsql_command(command, input).await
}

async fn run_tsql_command(mut command: Command, input: &str) -> TsqlOutput {
    let spawned = command
        .args(["-o", "q"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            panic!("tsql is missing: install FreeTDS with `apt-get install freetds-bin`")
        }
        Err(error) => panic!("starting tsql failed: {error}"),
    };
    let mut stdin = child.stdin.take().expect("stdin is piped");
    stdin.write_all(input.as_bytes()).await.unwrap();
    stdin.write_all(b"exit\n").await.unwrap();
    drop(stdin);

    let output = tokio::time::timeout(CLIENT_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("tsql timed out after {CLIENT_TIMEOUT:?}"))
        .expect("waiting for tsql failed");
    TsqlOutput {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Asserts that some line of `text`, trimmed, equals `expected`.
pub fn assert_line(text: &str, expected: &str) {
    assert!(
        text.lines().any(|line| line.trim() == expected),
        "no line {expected:?} in output:\n{text}"
    );
}

pub fn assert_contains(text: &str, expected: &str) {
    assert!(
        text.contains(expected),
        "{expected:?} not found in output:\n{text}"
    );
}

/// Folder of real backups from `BAKFLEET_FIXTURES_BAK`. Without it the test prints that it
/// did not run, except under `CI=true`, where it fails so CI cannot pass without it.
pub fn fixtures_dir() -> Option<PathBuf> {
    match std::env::var_os("BAKFLEET_FIXTURES_BAK") {
        Some(dir) => Some(PathBuf::from(dir)),
        None if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("BAKFLEET_FIXTURES_BAK is not set; point it at the folder of real .bak files")
        }
        None => {
            eprintln!("fixture test did not run: BAKFLEET_FIXTURES_BAK is not set");
            None
        }
    }
}
