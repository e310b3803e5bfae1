//! The SQL Server the end-to-end tests run against, behind one interface.
//!
//! Today the target is always the simulator, started in this process. Everything a test
//! does to the server goes through [`Target::execute`] as T-SQL, as it would on a real
//! server. Methods marked simulator-only do what only the simulator can (its statement
//! log, fault injection).

use std::net::SocketAddr;
use std::path::PathBuf;

use mssql_sim::engine::Fault;
use tiberius::{AuthMethod, Client, Config, EncryptionLevel};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

/// The login every test target accepts.
pub const LOGIN: &str = "bakfleet";

/// How a target instance is played: platform, edition, where its server paths land, and
/// the databases it starts with.
pub struct TargetSpec {
    pub platform: &'static str,
    pub edition: &'static str,
    /// The server-side path prefix (UNC for Windows, host path for Linux) ...
    pub server_prefix: String,
    /// ... and the local folder it maps to.
    pub local_dir: PathBuf,
    /// Name, size in MiB, recovery model.
    pub databases: Vec<(String, u64, &'static str)>,
}

/// A running SQL Server for one test.
pub struct Target {
    simulator: mssql_sim::Simulator,
    pub instance: String,
    pub addr: SocketAddr,
    pub password: String,
}

impl Target {
    /// Starts a simulated instance named `instance`.
    pub async fn simulator(instance: &str, spec: &TargetSpec) -> Target {
        let password = format!("T-{}", uuid::Uuid::new_v4().simple());
        let mut text = format!(
            "[[instance]]\nname = {instance:?}\nlisten = \"127.0.0.1:0\"\nplatform = {:?}\n\
             edition = {:?}\n\n[[instance.login]]\nname = {LOGIN:?}\npassword = {password:?}\n\
             sysadmin = true\n\n[[instance.path_map]]\nserver = {:?}\nlocal = {:?}\n",
            spec.platform,
            spec.edition,
            spec.server_prefix,
            spec.local_dir.display().to_string(),
        );
        for (name, size_mb, recovery_model) in &spec.databases {
            text.push_str(&format!(
                "\n[[instance.database]]\nname = {name:?}\nsize_mb = {size_mb}\n\
                 recovery_model = {recovery_model:?}\n"
            ));
        }
        let config = mssql_sim::SimConfig::from_toml_str(&text).expect("simulator config");
        let simulator = mssql_sim::start(config).await.expect("start the simulator");
        let addr = simulator.addr(instance).expect("simulator address");
        Target {
            simulator,
            instance: instance.to_string(),
            addr,
            password,
        }
    }

    /// Opens a tiberius session as the test login.
    pub async fn connect(&self) -> Client<Compat<TcpStream>> {
        let mut config = Config::new();
        config.host(self.addr.ip());
        config.port(self.addr.port());
        config.authentication(AuthMethod::sql_server(LOGIN, &self.password));
        config.encryption(EncryptionLevel::NotSupported);
        let tcp = TcpStream::connect(self.addr)
            .await
            .expect("connect to target");
        tcp.set_nodelay(true).expect("nodelay");
        Client::connect(config, tcp.compat_write())
            .await
            .expect("log in to target")
    }

    /// Runs a batch, reading its reply to the end.
    pub async fn execute(&self, sql: &str) -> Result<(), tiberius::error::Error> {
        let mut client = self.connect().await;
        client.simple_query(sql).await?.into_results().await?;
        Ok(())
    }

    /// Returns every batch the server received, in order. Simulator-only.
    pub fn statements(&self) -> Vec<String> {
        self.simulator.statements(&self.instance)
    }

    /// Injects a fault into the next operations. Simulator-only.
    pub fn set_fault(&self, fault: Fault) {
        self.simulator.set_fault(&self.instance, fault);
    }
}
