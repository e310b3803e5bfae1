//! The SQL Server the end-to-end tests run against, behind one interface.
//!
//! By default the target is the simulator, started in this process. When
//! `BAKFLEET_TEST_MSSQL` is set, the same tests run against that server instead, and
//! `BAKFLEET_TEST_STAGING` says where it writes backups (see the fixture). Everything a test
//! does to the server goes through T-SQL, as it would on a real server. Methods marked
//! simulator-only do what only the simulator can (its statement log, fault injection).

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Once;

use mssql_sim::engine::Fault;
use tiberius::{AuthMethod, Client, Config, EncryptionLevel};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

/// The variable that points the tests at a real server.
pub const SERVER_VARIABLE: &str = "BAKFLEET_TEST_MSSQL";

/// The login the simulated target accepts.
const SIMULATOR_LOGIN: &str = "bakfleet";

/// The server certificate in the simulated master database, for encrypted backups.
pub const SIMULATOR_CERTIFICATE: &str = "BackupCert";

/// Parses `key=value;key=value`, the form of both test variables. Values may not contain
/// `;`.
pub fn parse_pairs(variable: &str, text: &str) -> BTreeMap<String, String> {
    let mut pairs = BTreeMap::new();
    for part in text
        .split(';')
        .map(str::trim)
        .filter(|part| !part.is_empty())
    {
        let Some((key, value)) = part.split_once('=') else {
            panic!("{variable}: {part:?} is not key=value; see docs/real-server-testing.md");
        };
        pairs.insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
    }
    pairs
}

/// How to reach and log in to the target.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    /// The fleet's `tls.encrypt` value: strict, mandatory, optional or not_supported.
    pub encrypt: String,
    pub trust_server_certificate: bool,
    pub ca_file: Option<String>,
}

impl ServerSettings {
    /// Reads `BAKFLEET_TEST_MSSQL`, e.g.
    /// `host=127.0.0.1;port=1433;user=sa;password=...;encrypt=mandatory;trust_server_certificate=true`.
    pub fn from_env() -> Option<ServerSettings> {
        let text = std::env::var(SERVER_VARIABLE).ok()?;
        let pairs = parse_pairs(SERVER_VARIABLE, &text);
        let required = |key: &str| {
            pairs.get(key).cloned().unwrap_or_else(|| {
                panic!("{SERVER_VARIABLE} has no {key}=; see docs/real-server-testing.md")
            })
        };
        Some(ServerSettings {
            host: required("host"),
            port: pairs
                .get("port")
                .map(|port| port.parse().expect("port= is a number"))
                .unwrap_or(1433),
            user: required("user"),
            password: required("password"),
            encrypt: pairs
                .get("encrypt")
                .cloned()
                .unwrap_or_else(|| "mandatory".to_string()),
            trust_server_certificate: pairs
                .get("trust_server_certificate")
                .is_some_and(|value| value == "true"),
            ca_file: pairs.get("ca_file").cloned(),
        })
    }

    fn tiberius_config(&self) -> Config {
        let mut config = Config::new();
        config.host(&self.host);
        config.port(self.port);
        config.authentication(AuthMethod::sql_server(&self.user, &self.password));
        config.encryption(match self.encrypt.as_str() {
            "strict" => EncryptionLevel::Strict,
            "optional" => EncryptionLevel::Off,
            "not_supported" => EncryptionLevel::NotSupported,
            _ => EncryptionLevel::Required,
        });
        if let Some(ca_file) = &self.ca_file {
            config.trust_cert_ca(ca_file);
        } else if self.trust_server_certificate {
            config.trust_cert();
        }
        config
    }
}

/// How a simulated target is played: platform, edition, and where its server paths land.
pub struct TargetSpec {
    pub platform: &'static str,
    pub edition: &'static str,
    /// The server-side path prefix (UNC for Windows, host path for Linux) ...
    pub server_prefix: String,
    /// ... and the local folder it maps to.
    pub local_dir: std::path::PathBuf,
}

/// A running SQL Server for one test.
pub struct Target {
    simulator: Option<mssql_sim::Simulator>,
    /// The simulator's instance name (also the fleet's instance name).
    instance: String,
    pub settings: ServerSettings,
}

static ANNOUNCE: Once = Once::new();

/// Writes one line per test binary saying which server the tests use. It goes to stderr
/// directly, past the test harness's output capture, so it is never silent.
fn announce(line: &str) {
    ANNOUNCE.call_once(|| {
        let _ = writeln!(std::io::stderr(), "{line}");
    });
}

impl Target {
    /// Returns the server of `BAKFLEET_TEST_MSSQL`, or starts a simulated instance.
    pub async fn start(instance: &str, spec: &TargetSpec) -> Target {
        if let Some(settings) = ServerSettings::from_env() {
            announce(&format!(
                "end-to-end tests: running against the server at {}:{} ({SERVER_VARIABLE})",
                settings.host, settings.port
            ));
            return Target {
                simulator: None,
                instance: instance.to_string(),
                settings,
            };
        }
        announce(&format!(
            "end-to-end tests: {SERVER_VARIABLE} is not set, so the real-server tests ran against the simulator"
        ));
        Self::simulator(instance, spec).await
    }

    async fn simulator(instance: &str, spec: &TargetSpec) -> Target {
        let password = format!("T-{}", uuid::Uuid::new_v4().simple());
        let text = format!(
            "[[instance]]\nname = {instance:?}\nlisten = \"127.0.0.1:0\"\nplatform = {:?}\n\
             edition = {:?}\ncertificates = [{SIMULATOR_CERTIFICATE:?}]\n\n[[instance.login]]\nname = {SIMULATOR_LOGIN:?}\npassword = {password:?}\n\
             sysadmin = true\n\n[[instance.path_map]]\nserver = {:?}\nlocal = {:?}\n",
            spec.platform,
            spec.edition,
            spec.server_prefix,
            spec.local_dir.display().to_string(),
        );
        let config = mssql_sim::SimConfig::from_toml_str(&text).expect("simulator config");
        let simulator = mssql_sim::start(config).await.expect("start the simulator");
        let addr = simulator.addr(instance).expect("simulator address");
        Target {
            simulator: Some(simulator),
            instance: instance.to_string(),
            settings: ServerSettings {
                host: addr.ip().to_string(),
                port: addr.port(),
                user: SIMULATOR_LOGIN.to_string(),
                password,
                encrypt: "not_supported".to_string(),
                trust_server_certificate: false,
                ca_file: None,
            },
        }
    }

    /// True when the target is the in-process simulator.
    pub fn is_simulator(&self) -> bool {
        self.simulator.is_some()
    }

    /// Opens a session as the test login.
    pub async fn connect(&self) -> Client<Compat<TcpStream>> {
        connect(&self.settings).await
    }

    /// Runs a batch, reading its reply to the end.
    pub async fn execute(&self, sql: &str) -> Result<(), tiberius::error::Error> {
        let mut client = self.connect().await;
        client.simple_query(sql).await?.into_results().await?;
        Ok(())
    }

    /// Creates a database with a name unique to this test, dropped again when the
    /// returned guard goes out of scope, also when the test fails.
    pub async fn create_database(&self, base_name: &str, recovery_model: &str) -> TestDatabase {
        let name = format!(
            "bkf{} {base_name}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        self.create_database_named(name, recovery_model).await
    }

    /// Creates a database under exactly `name`, without the unique prefix. Only a
    /// simulator target is fresh enough that no other database can have the name.
    pub async fn create_database_named(&self, name: String, recovery_model: &str) -> TestDatabase {
        let ident = bakfleet::mssql::tsql::quote_ident(&name);
        self.execute(&format!("CREATE DATABASE {ident};"))
            .await
            .unwrap_or_else(|error| panic!("CREATE DATABASE {ident}: {error}"));
        self.execute(&format!(
            "ALTER DATABASE {ident} SET RECOVERY {recovery_model};"
        ))
        .await
        .unwrap_or_else(|error| panic!("ALTER DATABASE {ident}: {error}"));
        TestDatabase {
            name,
            settings: self.settings.clone(),
        }
    }

    /// Returns every batch the server received, in order. Simulator-only.
    pub fn statements(&self) -> Vec<String> {
        let simulator = self
            .simulator
            .as_ref()
            .expect("statements() is simulator-only");
        simulator.statements(&self.instance)
    }

    /// Injects a fault into the next operations. Simulator-only.
    pub fn set_fault(&self, fault: Fault) {
        let simulator = self
            .simulator
            .as_ref()
            .expect("set_fault() is simulator-only");
        simulator.set_fault(&self.instance, fault);
    }

    /// Clears every armed fault, standing ones included. Simulator-only.
    pub fn clear_faults(&self) {
        let instance = self
            .simulator
            .as_ref()
            .and_then(|simulator| simulator.instance(&self.instance))
            .expect("clear_faults() is simulator-only");
        instance.clear_faults();
    }

    /// Sets the data size of a database in MiB. Simulator-only.
    pub fn resize_database(&self, name: &str, size_mb: u64) {
        let instance = self
            .simulator
            .as_ref()
            .and_then(|simulator| simulator.instance(&self.instance))
            .expect("resize_database() is simulator-only");
        assert!(
            instance.resize_database(name, size_mb),
            "no database {name} on the simulator"
        );
    }
}

/// Returns true, after saying so, when a simulator-only test meets a real server.
pub fn skip_unless_simulator(target: &Target, test: &str) -> bool {
    if target.is_simulator() {
        return false;
    }
    let _ = writeln!(
        std::io::stderr(),
        "{test}: simulator-only (it injects faults or reads the simulator's statement log), not run against {}:{}",
        target.settings.host,
        target.settings.port
    );
    true
}

async fn connect(settings: &ServerSettings) -> Client<Compat<TcpStream>> {
    let tcp = TcpStream::connect((settings.host.as_str(), settings.port))
        .await
        .expect("connect to the target");
    tcp.set_nodelay(true).expect("nodelay");
    Client::connect(settings.tiberius_config(), tcp.compat_write())
        .await
        .expect("log in to the target")
}

/// A database a test created; dropping the guard drops the database.
pub struct TestDatabase {
    pub name: String,
    settings: ServerSettings,
}

impl Drop for TestDatabase {
    /// Drops the database on a thread of its own, because `Drop` cannot await and may run
    /// inside the test's runtime.
    fn drop(&mut self) {
        let settings = self.settings.clone();
        let sql = format!(
            "DROP DATABASE {};",
            bakfleet::mssql::tsql::quote_ident(&self.name)
        );
        let dropper = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                let mut client = connect(&settings).await;
                let result = match client.simple_query(&sql).await {
                    Ok(stream) => stream.into_results().await.map(|_| ()),
                    Err(error) => Err(error),
                };
                if let Err(error) = result {
                    let _ = writeln!(std::io::stderr(), "{sql} failed: {error}");
                }
            });
        });
        let _ = dropper.join();
    }
}
