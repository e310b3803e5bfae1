//! The TOML description of the instances the simulator plays: identity, logins, databases,
//! where server paths land on this machine, and faults armed at start.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::engine::Fault;

/// The whole simulator configuration: one entry per `[[instance]]` table.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SimConfig {
    #[serde(default, rename = "instance")]
    pub instances: Vec<InstanceConfig>,
}

/// One SQL Server instance.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceConfig {
    /// Simulator-level name; also the default host part of `@@SERVERNAME`.
    pub name: String,
    /// Listening address; port 0 picks any free port.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    #[serde(default)]
    pub platform: Platform,
    #[serde(default)]
    pub edition: Edition,
    /// `SERVERPROPERTY('ProductVersion')`, four dot-separated numbers.
    #[serde(default)]
    pub version: ProductVersion,
    /// `SERVERPROPERTY('MachineName')`; derived from `name` when absent.
    #[serde(default)]
    pub machine_name: Option<String>,
    /// Named instance: `@@SERVERNAME` becomes `MACHINE\INSTANCE`. `None` is the default
    /// instance, for which `SERVERPROPERTY('InstanceName')` is NULL.
    #[serde(default)]
    pub instance_name: Option<String>,
    /// Offset of the server's local time from UTC, in minutes; backup dates use it.
    #[serde(default)]
    pub time_zone_minutes: i32,
    /// Physical block size of the backup files this instance writes.
    #[serde(default)]
    pub block_size: BlockSize,
    #[serde(default, rename = "login")]
    pub logins: Vec<LoginConfig>,
    /// User databases; master, tempdb, model and msdb always exist besides these.
    #[serde(default, rename = "database")]
    pub databases: Vec<DatabaseConfig>,
    #[serde(default, rename = "path_map")]
    pub path_maps: Vec<PathMap>,
    /// Faults armed when the instance starts, as `[[instance.fault]]` with a `kind` key.
    #[serde(default, rename = "fault")]
    pub faults: Vec<Fault>,
    /// Certificates in master that BACKUP ... WITH ENCRYPTION (SERVER CERTIFICATE = name)
    /// may name.
    #[serde(default)]
    pub certificates: Vec<String>,
    /// Asymmetric keys in master for ENCRYPTION (SERVER ASYMMETRIC KEY = name).
    #[serde(default)]
    pub asymmetric_keys: Vec<String>,
    /// The instance's TLS certificate; without it the instance offers no encryption and
    /// closes connections whose client requires it.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
}

/// `[instance.tls]`: the certificate an instance presents and whether it forces
/// encryption, as SQL Server Configuration Manager sets them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file with the server certificate first, then any intermediate certificates.
    pub certificate: PathBuf,
    /// PEM file with the certificate's private key.
    pub private_key: PathBuf,
    /// "Force Encryption": answer every TDS 7.x PRELOGIN with ENCRYPT_REQ, so the whole
    /// session is encrypted whatever the client asked for.
    #[serde(default)]
    pub force_encryption: bool,
}

impl InstanceConfig {
    /// An instance with defaults for everything but its name, for tests built in code.
    pub fn new(name: &str) -> InstanceConfig {
        InstanceConfig {
            name: name.to_string(),
            listen: default_listen(),
            platform: Platform::default(),
            edition: Edition::default(),
            version: ProductVersion::default(),
            machine_name: None,
            instance_name: None,
            time_zone_minutes: 0,
            block_size: BlockSize::default(),
            logins: Vec::new(),
            databases: Vec::new(),
            path_maps: Vec::new(),
            faults: Vec::new(),
            certificates: Vec::new(),
            asymmetric_keys: Vec::new(),
            tls: None,
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Operating system the instance pretends to run on; it decides `@@VERSION` and how
/// backup paths look (UNC or drive paths on Windows, host paths on Linux).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    #[default]
    Windows,
    Linux,
}

/// SQL Server edition; Express rejects backup compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Edition {
    #[default]
    Enterprise,
    Standard,
    Developer,
    Express,
}

/// A SQL login with its password, checked at LOGIN7.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginConfig {
    pub name: String,
    pub password: String,
    #[serde(default)]
    pub sysadmin: bool,
}

/// A user database as the instance starts with it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    pub name: String,
    #[serde(default)]
    pub recovery_model: RecoveryModel,
    #[serde(default)]
    pub state: DatabaseState,
    /// Data size in MiB; a full backup carries about this much.
    #[serde(default = "default_size_mb")]
    pub size_mb: u64,
    /// Defaults to the instance version's highest level (160 for SQL Server 2022).
    #[serde(default)]
    pub compatibility_level: Option<u8>,
    #[serde(default)]
    pub read_only: bool,
    /// Makes this database a database snapshot of the named database, which cannot be
    /// backed up (error 3002).
    #[serde(default)]
    pub snapshot_of: Option<String>,
}

impl DatabaseConfig {
    /// An online FULL-recovery database of 8 MiB, for tests built in code.
    pub fn new(name: &str) -> DatabaseConfig {
        DatabaseConfig {
            name: name.to_string(),
            recovery_model: RecoveryModel::default(),
            state: DatabaseState::default(),
            size_mb: default_size_mb(),
            compatibility_level: None,
            read_only: false,
            snapshot_of: None,
        }
    }
}

/// The size of model's data file in SQL Server 2016 and later, which new databases copy.
fn default_size_mb() -> u64 {
    8
}

/// Recovery model as `sys.databases.recovery_model_desc` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RecoveryModel {
    #[default]
    Full,
    BulkLogged,
    Simple,
}

/// Database state as `sys.databases.state_desc` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DatabaseState {
    #[default]
    Online,
    Restoring,
    Recovering,
    RecoveryPending,
    Suspect,
    Emergency,
    Offline,
}

/// Maps a server-side path prefix to a local directory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathMap {
    /// UNC or drive prefix on Windows (`\\127.0.0.1\backup`, `D:\Backup`), host path
    /// prefix on Linux (`/var/opt/mssql/backup`).
    pub server: String,
    pub local: PathBuf,
}

/// `SERVERPROPERTY('ProductVersion')`: major.minor.build.revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct ProductVersion {
    pub major: u8,
    pub minor: u8,
    pub build: u16,
    pub revision: u16,
}

impl Default for ProductVersion {
    /// SQL Server 2022 CU 16.
    fn default() -> Self {
        ProductVersion {
            major: 16,
            minor: 0,
            build: 4165,
            revision: 4,
        }
    }
}

impl TryFrom<String> for ProductVersion {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        let invalid = || {
            format!(
                "invalid version '{text}': expected four dot-separated numbers such as \
                 16.0.4135.4"
            )
        };
        let parts: Vec<&str> = text.split('.').collect();
        if parts.len() != 4 {
            return Err(invalid());
        }
        Ok(ProductVersion {
            major: parts[0].parse().map_err(|_| invalid())?,
            minor: parts[1].parse().map_err(|_| invalid())?,
            build: parts[2].parse().map_err(|_| invalid())?,
            revision: parts[3].parse().map_err(|_| invalid())?,
        })
    }
}

impl fmt::Display for ProductVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}.{}.{}",
            self.major, self.minor, self.build, self.revision
        )
    }
}

/// Physical block size of backup files: 512 (512-byte-sector disks) or 4096.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "u32")]
pub struct BlockSize(u32);

impl BlockSize {
    pub fn bytes(self) -> u32 {
        self.0
    }
}

impl Default for BlockSize {
    fn default() -> Self {
        BlockSize(512)
    }
}

impl TryFrom<u32> for BlockSize {
    type Error = String;

    fn try_from(value: u32) -> Result<Self, String> {
        match value {
            512 | 4096 => Ok(BlockSize(value)),
            _ => Err(format!("invalid block_size {value}: expected 512 or 4096")),
        }
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read simulator config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin}:{line}: {message}")]
    Parse {
        origin: String,
        line: usize,
        message: String,
    },
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
}

impl SimConfig {
    /// Reads and checks the configuration file at `path`.
    ///
    /// # Errors
    /// The file cannot be read, is not valid TOML, has an unknown key or a bad value
    /// (the message names the file and line), or names an instance or database twice.
    pub fn load(path: &Path) -> Result<SimConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses configuration text; errors name the line as `<string>:LINE`.
    ///
    /// # Errors
    /// As [`SimConfig::load`], except reading.
    pub fn from_toml_str(text: &str) -> Result<SimConfig, ConfigError> {
        Self::parse(text, "<string>")
    }

    fn parse(text: &str, origin: &str) -> Result<SimConfig, ConfigError> {
        let config: SimConfig = toml::from_str(text).map_err(|error| {
            let line = error.span().map_or(1, |span| line_of(text, span.start));
            ConfigError::Parse {
                origin: origin.to_string(),
                line,
                message: error.message().to_string(),
            }
        })?;
        config.check().map_err(|message| ConfigError::Invalid {
            origin: origin.to_string(),
            message,
        })?;
        Ok(config)
    }

    /// Checks rules that span entries: unique names and path mappings that fit the
    /// platform.
    fn check(&self) -> Result<(), String> {
        let mut names: Vec<&str> = Vec::new();
        for instance in &self.instances {
            if names
                .iter()
                .any(|name| name.eq_ignore_ascii_case(&instance.name))
            {
                return Err(format!("instance '{}' is defined twice", instance.name));
            }
            names.push(&instance.name);
            check_instance(instance)?;
        }
        Ok(())
    }
}

fn check_instance(instance: &InstanceConfig) -> Result<(), String> {
    let mut databases: Vec<&str> = vec!["master", "tempdb", "model", "msdb"];
    for database in &instance.databases {
        if databases
            .iter()
            .any(|name| name.eq_ignore_ascii_case(&database.name))
        {
            return Err(format!(
                "instance '{}': database '{}' is defined twice or is a system database",
                instance.name, database.name
            ));
        }
        databases.push(&database.name);
    }
    for database in &instance.databases {
        let Some(source) = &database.snapshot_of else {
            continue;
        };
        if !databases
            .iter()
            .any(|name| name.eq_ignore_ascii_case(source))
        {
            return Err(format!(
                "instance '{}': database '{}' is a snapshot of '{}', which is not defined",
                instance.name, database.name, source
            ));
        }
    }
    for map in &instance.path_maps {
        let unc_or_drive = map.server.starts_with("\\\\") || map.server.get(1..2) == Some(":");
        let fits = match instance.platform {
            Platform::Windows => unc_or_drive,
            Platform::Linux => map.server.starts_with('/'),
        };
        if !fits {
            return Err(format!(
                "instance '{}': path_map server '{}' does not fit platform {:?}; use a UNC or \
                 drive path on windows and an absolute host path on linux",
                instance.name, map.server, instance.platform
            ));
        }
    }
    Ok(())
}

/// The 1-based line of byte offset `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&byte| byte == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
[[instance]]
name = "sales-prod"
listen = "127.0.0.1:0"
platform = "windows"
edition = "enterprise"
version = "16.0.4135.4"
machine_name = "SQL01"
instance_name = "SALES"
time_zone_minutes = 60
block_size = 4096

[[instance.login]]
name = "bakfleet"
password = "secret"
sysadmin = true

[[instance.database]]
name = "Sales"
recovery_model = "SIMPLE"
state = "OFFLINE"
size_mb = 256
compatibility_level = 150

[[instance.path_map]]
server = '\\127.0.0.1\backup'
local = "/tmp/x/share"

[[instance.fault]]
kind = "slow_backup"
bytes_per_sec = 1000

[instance.tls]
certificate = "/tmp/x/server.pem"
private_key = "/tmp/x/server.key"
force_encryption = true
"#;

    #[test]
    fn config_reads_full_sample() {
        let config = SimConfig::from_toml_str(SAMPLE).unwrap();
        let instance = &config.instances[0];
        assert_eq!(instance.name, "sales-prod");
        assert_eq!(instance.edition, Edition::Enterprise);
        assert_eq!(instance.version.to_string(), "16.0.4135.4");
        assert_eq!(instance.instance_name.as_deref(), Some("SALES"));
        assert_eq!(instance.block_size.bytes(), 4096);
        assert_eq!(instance.logins[0].name, "bakfleet");
        assert_eq!(instance.databases[0].recovery_model, RecoveryModel::Simple);
        assert_eq!(instance.databases[0].state, DatabaseState::Offline);
        assert_eq!(instance.databases[0].compatibility_level, Some(150));
        assert_eq!(instance.path_maps[0].server, r"\\127.0.0.1\backup");
        assert_eq!(
            instance.faults,
            vec![Fault::SlowBackup {
                bytes_per_sec: 1000
            }]
        );
        let tls = instance.tls.as_ref().expect("[instance.tls] is read");
        assert_eq!(tls.certificate, Path::new("/tmp/x/server.pem"));
        assert_eq!(tls.private_key, Path::new("/tmp/x/server.key"));
        assert!(tls.force_encryption);
    }

    #[test]
    fn config_defaults_fill_missing_keys() {
        let config = SimConfig::from_toml_str("[[instance]]\nname = \"a\"\n").unwrap();
        let instance = &config.instances[0];
        assert_eq!(instance.listen, default_listen());
        assert_eq!(instance.platform, Platform::Windows);
        assert_eq!(instance.version, ProductVersion::default());
        assert_eq!(instance.block_size.bytes(), 512);
    }

    #[test]
    fn config_rejects_unknown_key_with_line() {
        let text = "[[instance]]\nname = \"a\"\ncolour = \"red\"\n";
        let error = SimConfig::from_toml_str(text).unwrap_err().to_string();
        assert!(error.starts_with("<string>:3:"), "{error}");
        assert!(error.contains("colour"), "{error}");
    }

    #[test]
    fn config_rejects_bad_version_with_line() {
        let text = "[[instance]]\nname = \"a\"\nversion = \"16.0\"\n";
        let error = SimConfig::from_toml_str(text).unwrap_err().to_string();
        assert!(error.starts_with("<string>:3:"), "{error}");
        assert!(error.contains("invalid version '16.0'"), "{error}");
    }

    #[test]
    fn config_rejects_bad_block_size() {
        let text = "[[instance]]\nname = \"a\"\nblock_size = 1024\n";
        let error = SimConfig::from_toml_str(text).unwrap_err().to_string();
        assert!(error.contains("expected 512 or 4096"), "{error}");
    }

    #[test]
    fn config_rejects_duplicate_database() {
        let text = "[[instance]]\nname = \"a\"\n[[instance.database]]\nname = \"MSDB\"\n";
        let error = SimConfig::from_toml_str(text).unwrap_err().to_string();
        assert!(
            error.contains("database 'MSDB' is defined twice"),
            "{error}"
        );
    }

    #[test]
    fn config_rejects_linux_unc_mapping() {
        let text = "[[instance]]\nname = \"a\"\nplatform = \"linux\"\n\
                    [[instance.path_map]]\nserver = '\\\\h\\s'\nlocal = \"/tmp\"\n";
        let error = SimConfig::from_toml_str(text).unwrap_err().to_string();
        assert!(error.contains("does not fit platform Linux"), "{error}");
    }

    #[test]
    fn config_load_names_missing_file() {
        let error = SimConfig::load(Path::new("/nonexistent/sim.toml")).unwrap_err();
        assert!(error.to_string().contains("/nonexistent/sim.toml"));
    }
}
