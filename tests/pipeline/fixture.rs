//! A fleet of one instance for an end-to-end test: the target server with the test's own
//! databases, the staging location it writes to, and bakfleet's store, catalogue and
//! secrets in a temp dir.
//!
//! Against the simulator, the fixture starts smbd or sshd over a temp folder. Against a
//! real server, `BAKFLEET_TEST_STAGING` describes the staging location, as `key=value;...`:
//! - `kind=smb;unc=\\host\share\dir;port=445;user=...;password=...[;domain=...]`
//! - `kind=sftp;host=...;port=22;user=...;key_file=...;known_hosts=...;path=/srv/x[;server_path=/var/opt/mssql/backup]`
//! - `kind=local;server_path=...;dir=...`

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use bakfleet::backup::BackupType;
use bakfleet::job::{self, JobContext, JobFailure, JobOutcome, JobRequest, Trigger};
use bakfleet::service;
use bakfleet::transfer::TransferError;
use tempfile::TempDir;

use crate::relay::SlowRelay;
pub use crate::support::files_under as list_files;
use crate::support::{Smbd, Sshd};
use crate::target::{parse_pairs, Target, TargetSpec, TestDatabase};

/// Name of the instance in every test fleet.
pub const INSTANCE: &str = "sales";

/// The variable that describes a real server's staging location.
pub const STAGING_VARIABLE: &str = "BAKFLEET_TEST_STAGING";

/// Where the simulated Windows instance writes: the share smbd serves, as a UNC path.
const SMB_PREFIX: &str = r"\\127.0.0.1\backup";

/// Where the simulated Linux instance writes.
const LINUX_BACKUP_DIR: &str = "/var/opt/mssql/backup";

/// Transport to the staging folder of a simulated target. A real target uses the one
/// `BAKFLEET_TEST_STAGING` describes.
pub enum Transport {
    Smb,
    Sftp,
}

/// Where the target writes backups and how bakfleet reads them.
enum Staging {
    Smb {
        unc: String,
        port: u16,
        user: String,
        password: String,
        domain: Option<String>,
    },
    Sftp {
        host: String,
        port: u16,
        user: String,
        key_file: String,
        known_hosts: String,
        path: String,
        server_path: String,
    },
    Local {
        server_path: String,
        dir: String,
    },
}

impl Staging {
    fn from_env() -> Staging {
        let text = std::env::var(STAGING_VARIABLE).unwrap_or_else(|_| {
            panic!("{STAGING_VARIABLE} must be set with BAKFLEET_TEST_MSSQL; see docs/real-server-testing.md")
        });
        let pairs = parse_pairs(STAGING_VARIABLE, &text);
        let get = |key: &str| {
            pairs.get(key).cloned().unwrap_or_else(|| {
                panic!("{STAGING_VARIABLE} has no {key}=; see docs/real-server-testing.md")
            })
        };
        let port = |default: u16| {
            pairs
                .get("port")
                .map(|port| port.parse().expect("port= is a number"))
                .unwrap_or(default)
        };
        match get("kind").as_str() {
            "smb" => Staging::Smb {
                unc: get("unc"),
                port: port(445),
                user: get("user"),
                password: get("password"),
                domain: pairs.get("domain").cloned(),
            },
            "sftp" => Staging::Sftp {
                host: get("host"),
                port: port(22),
                user: get("user"),
                key_file: get("key_file"),
                known_hosts: get("known_hosts"),
                server_path: pairs
                    .get("server_path")
                    .cloned()
                    .unwrap_or_else(|| get("path")),
                path: get("path"),
            },
            "local" => Staging::Local {
                server_path: get("server_path"),
                dir: get("dir"),
            },
            other => panic!("{STAGING_VARIABLE}: kind={other} is not smb, sftp or local"),
        }
    }

    /// Builds the fleet.toml `staging` line, with `folder` appended to the configured location.
    fn fleet_line(&self, folder: Option<&str>) -> String {
        let join = |base: &str, separator: char| match folder {
            Some(folder) => format!("{}{separator}{folder}", base.trim_end_matches(separator)),
            None => base.to_string(),
        };
        match self {
            Staging::Smb { unc, port, .. } => format!(
                "staging = {{ smb = '{}', port = {port}, credential = \"share\" }}",
                join(unc, '\\')
            ),
            Staging::Sftp {
                host,
                port,
                user,
                key_file,
                known_hosts,
                path,
                server_path,
            } => format!(
                "staging = {{ sftp = {{ host = {host:?}, port = {port}, user = {user:?}, \
                 key_file = {key_file:?}, known_hosts = {known_hosts:?}, path = {:?}, \
                 server_path = {:?} }} }}",
                join(path, '/'),
                join(server_path, '/')
            ),
            Staging::Local { server_path, dir } => {
                let separator = if server_path.starts_with('/') {
                    '/'
                } else {
                    '\\'
                };
                format!(
                    "staging = {{ local = {{ server_path = '{}', dir = {:?} }} }}",
                    join(server_path, separator),
                    join(dir, '/')
                )
            }
        }
    }
}

/// Variations of the test fleet.
pub struct FleetOptions<'a> {
    /// Point the instance at a staging folder that does not exist, as a misconfigured
    /// share would be.
    pub missing_staging_folder: bool,
    /// The fleet's `compression` setting.
    pub compression: bool,
    /// The fleet's `schedule.full`; the built-in default when `None`.
    pub full_schedule: Option<&'a str>,
    /// More `[defaults]` lines, such as other schedules or `time_zone`.
    pub defaults: &'a str,
    /// Databases that exist on every instance (master, model, msdb) to include too.
    pub system_databases: &'a [&'a str],
    /// More `[service]` lines, such as a `retry` table.
    pub service: &'a str,
    /// More lines of the instance's table, such as `database_policies`.
    pub instance: &'a str,
    /// Bytes per second the staging peer may send, through a [`SlowRelay`]. `None`
    /// leaves the peer at full speed.
    pub staging_rate: Option<u64>,
}

impl Default for FleetOptions<'_> {
    fn default() -> Self {
        FleetOptions {
            missing_staging_folder: false,
            compression: true,
            full_schedule: None,
            defaults: "",
            system_databases: &[],
            service: "",
            instance: "",
            staging_rate: None,
        }
    }
}

/// Databases as (name, recovery model); each test gets its own copies with unique names.
pub type Databases<'a> = &'a [(&'a str, &'static str)];

/// One end-to-end set-up. Fields drop in order: the databases go before the server.
pub struct TestFleet {
    databases: BTreeMap<String, TestDatabase>,
    pub target: Target,
    pub smbd: Option<Smbd>,
    /// Runs until the test ends.
    pub sshd: Option<Sshd>,
    /// Slows the staging peer's bytes when the options ask for it.
    _relay: Option<SlowRelay>,
    /// The local folder behind a simulated instance's staging location.
    staging_root: Option<PathBuf>,
    pub fleet_path: PathBuf,
    pub ctx: JobContext,
    /// Holds the store, catalogue and share until the test ends.
    _dir: TempDir,
}

impl TestFleet {
    /// Starts everything with the default options.
    pub async fn start(transport: Transport, databases: Databases<'_>) -> TestFleet {
        Self::start_with(transport, databases, FleetOptions::default()).await
    }

    /// Starts the target (and, for the simulator, smbd or sshd), creates the databases and
    /// opens bakfleet on a fleet file that points at them.
    pub async fn start_with(
        transport: Transport,
        databases: Databases<'_>,
        options: FleetOptions<'_>,
    ) -> TestFleet {
        let dir = tempfile::Builder::new()
            .prefix("bakfleet-e2e-")
            .tempdir()
            .expect("temp dir");
        let share_root = dir.path().join("share");
        std::fs::create_dir_all(&share_root).expect("create share root");

        let (spec, smbd, sshd) = simulated_staging(&transport, &share_root);
        let target = Target::start(INSTANCE, &spec).await;
        let (mut staging, smbd, sshd, staging_root) = if target.is_simulator() {
            let smbd = smbd.map(|start| start());
            let sshd = sshd.map(|start| start());
            let staging = simulator_staging(smbd.as_ref(), sshd.as_ref(), &share_root);
            (staging, smbd, sshd, Some(share_root))
        } else {
            (Staging::from_env(), None, None, None)
        };
        let relay = match options.staging_rate {
            Some(rate) if target.is_simulator() => {
                slow_staging(&mut staging, sshd.as_ref(), rate).await
            }
            _ => None,
        };

        let mut created = BTreeMap::new();
        for (name, recovery_model) in databases {
            let database = target.create_database(name, recovery_model).await;
            created.insert(name.to_string(), database);
        }

        let folder = options
            .missing_staging_folder
            .then(|| format!("missing-{}", uuid::Uuid::new_v4().simple()));
        let fleet_text = fleet_text(&target, &staging, folder.as_deref(), &created, &options);
        let fleet_path = dir.path().join("fleet.toml");
        std::fs::write(&fleet_path, fleet_text).expect("write fleet.toml");
        write_secrets(dir.path(), &target, &staging);
        let ctx = service::open(&fleet_path, None)
            .await
            .expect("open the service");

        TestFleet {
            databases: created,
            target,
            smbd,
            sshd,
            _relay: relay,
            staging_root,
            fleet_path,
            ctx,
            _dir: dir,
        }
    }

    /// Returns the real name of the test database created as `name`.
    pub fn db(&self, name: &str) -> &str {
        &self
            .databases
            .get(name)
            .unwrap_or_else(|| panic!("no test database {name}"))
            .name
    }

    /// Adds a database after the start, under `name`.
    pub async fn add_database(&mut self, name: &str, recovery_model: &str) {
        let database = self.target.create_database(name, recovery_model).await;
        self.databases.insert(name.to_string(), database);
    }

    /// Adds a database under exactly `name`, on a simulator target only.
    pub async fn add_database_exact(&mut self, name: &str, recovery_model: &str) {
        let database = self
            .target
            .create_database_named(name.to_string(), recovery_model)
            .await;
        self.databases.insert(name.to_string(), database);
    }

    /// Builds a manual job request for a test database, or for a name that is not one
    /// (an unknown database).
    pub fn request(&self, database: &str, backup_type: BackupType) -> JobRequest {
        let name = self
            .databases
            .get(database)
            .map(|created| created.name.clone())
            .unwrap_or_else(|| database.to_string());
        JobRequest {
            instance: self
                .ctx
                .fleet
                .instance(INSTANCE)
                .expect("test instance")
                .clone(),
            database: name,
            backup_type,
            trigger: Trigger::Manual,
            slot: None,
        }
    }

    /// Runs one job through the whole pipeline.
    pub async fn run(
        &self,
        database: &str,
        backup_type: BackupType,
    ) -> Result<JobOutcome, JobFailure> {
        job::run(&self.ctx, &self.request(database, backup_type)).await
    }

    /// Tells whether the file the server wrote at `server_path` is still staged, asking
    /// the staging location itself, so it works against any server.
    pub async fn staged_file_exists(&self, server_path: &str) -> bool {
        let instance = self.ctx.fleet.instance(INSTANCE).expect("test instance");
        let file_name = server_path.rsplit(['\\', '/']).next().expect("file name");
        let source = job::open_source(&self.ctx.fleet, &self.ctx.secrets, instance)
            .await
            .expect("open the staging location");
        match source.size(&instance.staging.fetch_path(file_name)).await {
            Ok(_) => true,
            Err(TransferError::NotFound { .. }) => false,
            Err(error) => panic!("cannot look at the staged file: {error}"),
        }
    }

    /// Lists the files in a simulated instance's staging folder. Simulator-only.
    pub fn staged_files(&self) -> Vec<PathBuf> {
        list_files(
            self.staging_root
                .as_ref()
                .expect("staged_files() is simulator-only"),
        )
    }

    /// Returns the local folder behind a simulated instance's staging location.
    /// Simulator-only.
    pub fn staging_root(&self) -> &Path {
        self.staging_root
            .as_deref()
            .expect("staging_root() is simulator-only")
    }

    /// Returns the catalogue file.
    pub fn catalog_path(&self) -> PathBuf {
        self._dir.path().join("catalog.db")
    }

    /// Returns the store's root folder.
    pub fn store_root(&self) -> &Path {
        self.ctx.store.root()
    }
}

type PeerStart<T> = Option<Box<dyn FnOnce() -> T>>;

/// Describes the simulated instance for `transport`, and the peer to start when the
/// simulator is the target.
fn simulated_staging(
    transport: &Transport,
    share_root: &Path,
) -> (TargetSpec, PeerStart<Smbd>, PeerStart<Sshd>) {
    match transport {
        Transport::Smb => {
            let spec = TargetSpec {
                platform: "windows",
                edition: "enterprise",
                server_prefix: SMB_PREFIX.to_string(),
                local_dir: share_root.to_path_buf(),
            };
            let root = share_root.to_path_buf();
            (spec, Some(Box::new(move || Smbd::start(&root))), None)
        }
        Transport::Sftp => {
            let spec = TargetSpec {
                platform: "linux",
                edition: "developer",
                server_prefix: LINUX_BACKUP_DIR.to_string(),
                local_dir: share_root.to_path_buf(),
            };
            (spec, None, Some(Box::new(Sshd::start)))
        }
    }
}

/// Puts a relay that passes `rate` bytes per second in front of the staging peer and
/// points `staging` at it. A local staging folder has no peer to slow.
async fn slow_staging(staging: &mut Staging, sshd: Option<&Sshd>, rate: u64) -> Option<SlowRelay> {
    let port = match staging {
        Staging::Smb { port, .. } | Staging::Sftp { port, .. } => port,
        Staging::Local { .. } => return None,
    };
    let relay = SlowRelay::start(*port, rate).await;
    *port = relay.port;
    if let Some(sshd) = sshd {
        sshd.trust_port(relay.port);
    }
    Some(relay)
}

fn simulator_staging(smbd: Option<&Smbd>, sshd: Option<&Sshd>, share_root: &Path) -> Staging {
    match (smbd, sshd) {
        (Some(smbd), _) => Staging::Smb {
            unc: SMB_PREFIX.to_string(),
            port: smbd.port,
            user: smbd.user.clone(),
            password: smbd.password.clone(),
            domain: None,
        },
        (_, Some(sshd)) => Staging::Sftp {
            host: "127.0.0.1".to_string(),
            port: sshd.port,
            user: sshd.user.clone(),
            key_file: sshd.key_path.display().to_string(),
            known_hosts: sshd.known_hosts_path.display().to_string(),
            path: share_root.display().to_string(),
            server_path: LINUX_BACKUP_DIR.to_string(),
        },
        _ => unreachable!("a simulated target has one peer"),
    }
}

fn fleet_text(
    target: &Target,
    staging: &Staging,
    folder: Option<&str>,
    databases: &BTreeMap<String, TestDatabase>,
    options: &FleetOptions<'_>,
) -> String {
    let credentials = match staging {
        Staging::Smb { user, domain, .. } => format!(
            "[credentials.share]\nuser = {user:?}\npassword_secret = \"smb\"\n{}",
            domain
                .as_ref()
                .map(|domain| format!("domain = {domain:?}\n"))
                .unwrap_or_default()
        ),
        _ => String::new(),
    };
    let mut include: Vec<String> = databases
        .values()
        .map(|database| format!("{:?}", database.name))
        .collect();
    include.extend(
        options
            .system_databases
            .iter()
            .map(|name| format!("{name:?}")),
    );
    let settings = &target.settings;
    let tls = match &settings.ca_file {
        Some(ca_file) => format!(
            "tls = {{ encrypt = {:?}, ca_file = {ca_file:?} }}",
            settings.encrypt
        ),
        None => format!(
            "tls = {{ encrypt = {:?}, trust_server_certificate = {} }}",
            settings.encrypt, settings.trust_server_certificate
        ),
    };
    let mut schedule = options
        .full_schedule
        .map(|cron| format!("schedule.full = {cron:?}\n"))
        .unwrap_or_default();
    schedule.push_str(options.defaults);
    format!(
        "[service]\nstore_dir = \"store\"\ncatalog = \"catalog.db\"\nsecrets_file = \"secrets.toml\"\n\
         lease_seconds = 30\n{service}\n[defaults]\nconnect_timeout_secs = 10\ntransfer_timeout_secs = 20\n\
         compression = {compression}\n{schedule}\n{credentials}\n[[instance]]\nname = \"{INSTANCE}\"\n\
         host = {host:?}\nport = {port}\n\
         auth = {{ kind = \"sql\", user = {user:?}, password_secret = \"sql\" }}\n{tls}\n\
         databases = {{ include = [{include}] }}\n{instance}\n{staging}\n",
        instance = options.instance,
        compression = options.compression,
        service = options.service,
        host = settings.host,
        port = settings.port,
        user = settings.user,
        include = include.join(", "),
        staging = staging.fleet_line(folder),
    )
}

/// Writes the secrets file with mode 0600, as bakfleet requires.
fn write_secrets(dir: &Path, target: &Target, staging: &Staging) {
    let mut text = format!("sql = {:?}\n", target.settings.password);
    if let Staging::Smb { password, .. } = staging {
        text.push_str(&format!("smb = {password:?}\n"));
    }
    let path = dir.join("secrets.toml");
    std::fs::write(&path, text).expect("write secrets");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod 600");
}
