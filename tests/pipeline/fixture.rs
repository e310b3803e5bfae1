//! A fleet of one instance for an end-to-end test: the target server, the peer that
//! serves its staging folder (smbd or sshd), and bakfleet's store, catalogue and secrets
//! in a temp dir.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use bakfleet::backup::BackupType;
use bakfleet::job::{self, JobContext, JobFailure, JobOutcome, JobRequest, Trigger};
use bakfleet::service;
use tempfile::TempDir;

use crate::support::{Smbd, Sshd};
use crate::target::{Target, TargetSpec, LOGIN};

/// Name of the instance in every test fleet.
pub const INSTANCE: &str = "sales";

/// Where the Windows test instance writes: the share smbd serves, as a UNC path.
const SMB_PREFIX: &str = r"\\127.0.0.1\backup";

/// Where the Linux test instance writes.
const LINUX_BACKUP_DIR: &str = "/var/opt/mssql/backup";

/// How bakfleet reaches the staging folder.
pub enum Transport {
    Smb,
    Sftp,
}

/// One end-to-end set-up.
pub struct TestFleet {
    /// Holds the store, catalogue and share until the test ends.
    _dir: TempDir,
    pub target: Target,
    pub smbd: Option<Smbd>,
    /// Held so that sshd runs until the test ends.
    _sshd: Option<Sshd>,
    /// The local folder behind the instance's staging location.
    pub staging_dir: PathBuf,
    pub fleet_path: PathBuf,
    pub ctx: JobContext,
}

/// Variations of the test fleet.
pub struct FleetOptions<'a> {
    /// The instance's staging folder inside the share (SMB) or the staging root (SFTP).
    pub subdir: &'a str,
    /// `false` leaves the staging folder missing, as a misconfigured share would.
    pub create_subdir: bool,
    /// The fleet's `compression` setting.
    pub compression: bool,
    /// The fleet's `schedule.full`; the built-in default when `None`.
    pub full_schedule: Option<&'a str>,
}

impl Default for FleetOptions<'_> {
    fn default() -> Self {
        FleetOptions {
            subdir: INSTANCE,
            create_subdir: true,
            compression: true,
            full_schedule: None,
        }
    }
}

/// Databases as (name, size in MiB, recovery model).
pub type Databases<'a> = &'a [(&'a str, u64, &'static str)];

impl TestFleet {
    /// Starts everything for `transport` with the default options.
    pub async fn start(transport: Transport, databases: Databases<'_>) -> TestFleet {
        Self::start_with(transport, databases, FleetOptions::default()).await
    }

    /// Starts everything for `transport`.
    pub async fn start_with(
        transport: Transport,
        databases: Databases<'_>,
        options: FleetOptions<'_>,
    ) -> TestFleet {
        let subdir = options.subdir;
        let dir = tempfile::Builder::new()
            .prefix("bakfleet-e2e-")
            .tempdir()
            .expect("temp dir");
        let share_root = dir.path().join("share");
        std::fs::create_dir_all(&share_root).expect("create share root");
        let staging_dir = share_root.join(subdir);
        if options.create_subdir {
            std::fs::create_dir_all(&staging_dir).expect("create staging dir");
        }
        let databases = databases
            .iter()
            .map(|(name, size, model)| (name.to_string(), *size, *model))
            .collect();

        let (spec, smbd, sshd) = match transport {
            Transport::Smb => {
                let spec = TargetSpec {
                    platform: "windows",
                    edition: "enterprise",
                    server_prefix: SMB_PREFIX.to_string(),
                    local_dir: share_root.clone(),
                    databases,
                };
                (spec, Some(Smbd::start(&share_root)), None)
            }
            Transport::Sftp => {
                let spec = TargetSpec {
                    platform: "linux",
                    edition: "developer",
                    server_prefix: LINUX_BACKUP_DIR.to_string(),
                    local_dir: share_root.clone(),
                    databases,
                };
                (spec, None, Some(Sshd::start()))
            }
        };
        let target = Target::simulator(INSTANCE, &spec).await;

        let fleet_text = fleet_text(&target, smbd.as_ref(), sshd.as_ref(), &share_root, &options);
        let fleet_path = dir.path().join("fleet.toml");
        std::fs::write(&fleet_path, fleet_text).expect("write fleet.toml");
        write_secrets(dir.path(), &target, smbd.as_ref());
        let ctx = service::open(&fleet_path, None)
            .await
            .expect("open the service");

        TestFleet {
            _dir: dir,
            target,
            smbd,
            _sshd: sshd,
            staging_dir,
            fleet_path,
            ctx,
        }
    }

    /// Builds a manual job request for one database of the test instance.
    pub fn request(&self, database: &str, backup_type: BackupType) -> JobRequest {
        JobRequest {
            instance: self
                .ctx
                .fleet
                .instance(INSTANCE)
                .expect("test instance")
                .clone(),
            database: database.to_string(),
            backup_type,
            trigger: Trigger::Manual,
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

    /// Lists the files left in the staging folder.
    pub fn staged_files(&self) -> Vec<PathBuf> {
        list_files(&self.staging_dir)
    }

    /// Returns the store's root folder.
    pub fn store_root(&self) -> &Path {
        self.ctx.store.root()
    }
}

/// Lists every regular file under `dir`, recursively, sorted.
pub fn list_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(list_files(&path));
        } else {
            files.push(path);
        }
    }
    files.sort();
    files
}

fn fleet_text(
    target: &Target,
    smbd: Option<&Smbd>,
    sshd: Option<&Sshd>,
    share_root: &Path,
    options: &FleetOptions<'_>,
) -> String {
    let subdir = options.subdir;
    let staging = match (smbd, sshd) {
        (Some(smbd), _) => format!(
            "staging = {{ smb = '{SMB_PREFIX}\\{subdir}', port = {}, credential = \"share\" }}",
            smbd.port
        ),
        (_, Some(sshd)) => format!(
            "staging = {{ sftp = {{ host = \"127.0.0.1\", port = {}, user = {:?}, key_file = {:?}, \
             known_hosts = {:?}, path = {:?}, server_path = \"{LINUX_BACKUP_DIR}/{subdir}\" }} }}",
            sshd.port,
            sshd.user,
            sshd.key_path.display().to_string(),
            sshd.known_hosts_path.display().to_string(),
            share_root.join(subdir).display().to_string(),
        ),
        _ => unreachable!("a test fleet has one transport"),
    };
    let credentials = match smbd {
        Some(smbd) => format!(
            "[credentials.share]\nuser = {:?}\npassword_secret = \"smb\"\n",
            smbd.user
        ),
        None => String::new(),
    };
    format!(
        "[service]\nstore_dir = \"store\"\ncatalog = \"catalog.db\"\nsecrets_file = \"secrets.toml\"\n\
         lease_seconds = 30\n\n[defaults]\nconnect_timeout_secs = 10\ntransfer_timeout_secs = 20\n\
         compression = {compression}\n{schedule}\n\
         {credentials}\n[[instance]]\nname = \"{INSTANCE}\"\nhost = \"127.0.0.1\"\nport = {port}\n\
         auth = {{ kind = \"sql\", user = \"{LOGIN}\", password_secret = \"sql\" }}\n\
         tls = {{ encrypt = \"not_supported\" }}\n\
         databases = {{ include = [\"USER_DATABASES\"] }}\n{staging}\n",
        port = target.addr.port(),
        compression = options.compression,
        schedule = options
            .full_schedule
            .map(|cron| format!("schedule.full = {cron:?}\n"))
            .unwrap_or_default(),
    )
}

/// Writes the secrets file with mode 0600, as bakfleet requires.
fn write_secrets(dir: &Path, target: &Target, smbd: Option<&Smbd>) {
    let mut text = format!("sql = {:?}\n", target.password);
    if let Some(smbd) = smbd {
        text.push_str(&format!("smb = {:?}\n", smbd.password));
    }
    let path = dir.join("secrets.toml");
    std::fs::write(&path, text).expect("write secrets");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod 600");
}
