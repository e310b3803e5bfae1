//! The fleet.toml schema as written, before defaults and checks. Values that are checked
//! after parsing keep their byte span so that errors can point at them.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFleet {
    /// Data folders, admin site address and job limits of the bakfleet process. Default:
    /// every key at its default.
    pub service: Option<RawService>,
    /// Policy keys and timeouts that every instance inherits, forming the policy named
    /// `defaults`. Default: the built-in policy.
    pub defaults: Option<RawDefaults>,
    /// SMB logins by name, used by `staging.credential` of instances. Default: none.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RawCredential>")]
    pub credentials: BTreeMap<Spanned<String>, Spanned<RawCredential>>,
    /// The SQL Server instances to back up, in file order. Default: none, and a file
    /// without an instance is invalid.
    #[serde(default, rename = "instance")]
    #[schemars(with = "Vec<RawInstance>")]
    pub instances: Vec<Spanned<RawInstance>>,
    /// Restore drills on a sandbox instance. Default: no drills.
    pub drill: Option<RawDrill>,
    /// Named backup policies; each starts from `[defaults]` and changes the keys it sets.
    /// Default: none.
    #[serde(default, rename = "policy")]
    #[schemars(with = "BTreeMap<String, RawPolicy>")]
    pub policies: BTreeMap<Spanned<String>, Spanned<RawPolicy>>,
    /// Alerts on failed backups, breached RPOs and recoveries, sent by webhook and e-mail.
    /// Default: no alerts.
    #[schemars(with = "Option<RawAlerts>")]
    pub alerts: Option<Spanned<RawAlerts>>,
}

/// `[drill]`: restore drills on a sandbox instance.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDrill {
    /// Name of the `[[instance]]` that restores the copies; never a production server,
    /// because a drill uses its disk, memory and CPU.
    #[schemars(with = "String")]
    pub sandbox: Spanned<String>,
    /// The store root as the sandbox names it, such as `\\backup01\bakfleet-store`; share
    /// the store to the sandbox read-only.
    #[schemars(with = "String")]
    pub store_path: Spanned<String>,
    /// Folder on the sandbox for the restored files. Default: the sandbox's default data
    /// folder.
    pub data_dir: Option<String>,
    /// Schedule of the drills: a 6-field cron expression in UTC, or `"off"`. Default:
    /// drills run only on demand.
    #[schemars(with = "Option<String>")]
    pub schedule: Option<Spanned<String>>,
    /// Instances whose databases are drilled. Default: every instance but the sandbox.
    #[schemars(with = "Option<Vec<String>>")]
    pub instances: Option<Vec<Spanned<String>>>,
    /// Databases drilled on those instances, with `include` and `exclude` patterns as in an
    /// instance's `databases`. Default: `include = ["USER_DATABASES"]`.
    #[schemars(with = "Option<RawDatabases>")]
    pub databases: Option<Spanned<RawDatabases>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawService {
    /// Root folder of the central backup store; relative paths are read from the fleet
    /// file's folder. Takes effect at restart. Default: `bakfleet-data/store` beside the
    /// fleet file.
    #[schemars(with = "Option<String>")]
    pub store_dir: Option<Spanned<String>>,
    /// SQLite catalogue file; relative paths are read from the fleet file's folder. Takes
    /// effect at restart. Default: `bakfleet-data/catalog.db` beside the fleet file.
    #[schemars(with = "Option<String>")]
    pub catalog: Option<Spanned<String>>,
    /// Address and port of the admin site. `serve` binds an address other than loopback
    /// only once an admin user exists, and the site speaks plain HTTP: put a TLS proxy in
    /// front of it. Takes effect at restart. Default: `127.0.0.1:8080`.
    #[schemars(with = "Option<String>")]
    pub listen: Option<Spanned<String>>,
    /// File of `name = "value"` lines that `password_secret` keys name; it must have mode
    /// 0600 or stricter. Default: none.
    #[schemars(with = "Option<String>")]
    pub secrets_file: Option<Spanned<String>>,
    /// Lifetime of a job's lease on a database, 3 or more; a running job renews it at a
    /// third of this. Takes effect at restart. Default: `60`.
    #[schemars(with = "Option<i64>")]
    pub lease_seconds: Option<Spanned<i64>>,
    /// Maximum number of backup jobs running at once in this process, 1 or more. Takes
    /// effect at restart. Default: `4`.
    #[schemars(with = "Option<i64>")]
    pub max_parallel_jobs: Option<Spanned<i64>>,
    /// Maximum number of jobs running at once on one SQL Server instance, 1 or more. Takes
    /// effect at restart. Default: `2`.
    #[schemars(with = "Option<i64>")]
    pub max_jobs_per_instance: Option<Spanned<i64>>,
    /// Maximum number of jobs fetching at once from one staging server (an SMB or SFTP
    /// host, or all local folders together), 1 or more. Takes effect at restart. Default:
    /// `2`.
    #[schemars(with = "Option<i64>")]
    pub max_jobs_per_staging: Option<Spanned<i64>>,
    /// Days after which `prune` and the daily prune of `serve` delete a staged file that a
    /// failed or interrupted run left; 0 turns the clean-up off. Default: `7`.
    #[schemars(with = "Option<i64>")]
    pub staged_max_age_days: Option<Spanned<i64>>,
    /// Free bytes the store's file system needs for `/healthz` to return 200; 0 turns the
    /// check off. Default: `1073741824` (1 GiB).
    #[schemars(with = "Option<i64>")]
    pub min_store_free_bytes: Option<Spanned<i64>>,
    /// Whether the admin site trusts `X-Forwarded-Proto` and `X-Forwarded-For` from the
    /// reverse proxy in front of it: it then marks session cookies `Secure` when the proxy
    /// served HTTPS, and logs the forwarded client address. Set it only when every request
    /// reaches the site through a proxy that replaces those headers. Default: `false`.
    pub trusted_proxy: Option<bool>,
    /// Whether the admin site serves `/metrics` in the Prometheus text format. That
    /// address needs no session, as `/healthz` does, so the reverse proxy in front of the
    /// site must restrict who reaches it. Default: `false`.
    pub metrics: Option<bool>,
    /// Minutes without a request after which an admin site session ends, 1 or more.
    /// Default: `30`.
    #[schemars(with = "Option<i64>")]
    pub session_idle_minutes: Option<Spanned<i64>>,
    /// Hours after login at which an admin site session ends, however active, 1 or more.
    /// Default: `12`.
    #[schemars(with = "Option<i64>")]
    pub session_max_hours: Option<Spanned<i64>>,
    /// Seconds a running BACKUP or RESTORE VERIFYONLY may show the same `percent_complete` in
    /// `sys.dm_exec_requests` before bakfleet kills its session with KILL and fails the
    /// run as stalled; 0 turns stall detection off. Default: `600` (10 minutes).
    #[schemars(with = "Option<i64>")]
    pub stall_timeout_seconds: Option<Spanned<i64>>,
    /// Days the catalogue keeps the log of a run that succeeded or was skipped, 1 or more.
    /// The log of a failed or interrupted run is kept 90 days, or this many when more.
    /// `serve` deletes older logs once a day. Default: `7`.
    #[schemars(with = "Option<i64>")]
    pub run_log_days: Option<Spanned<i64>>,
    /// Retries of connect, BACKUP, RESTORE VERIFYONLY and fetch after a transient fault
    /// (a refused or reset connection, a dropped session, an unreachable share): a table
    /// with `attempts`, `base_delay_ms` and `max_delay_ms`. A retried fetch resumes after
    /// the bytes already stored. Default: 3 attempts, 2000 ms and 60000 ms.
    pub retry: Option<RawRetry>,
}

/// `service.retry`: exponential backoff with full jitter. The delay before retry n is
/// drawn from zero to `base_delay_ms * 2^(n-1)`, capped at `max_delay_ms`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRetry {
    /// Attempts in all, the first included, 1 or more; 1 turns retries off. Default: `3`.
    #[schemars(with = "Option<i64>")]
    pub attempts: Option<Spanned<i64>>,
    /// Ceiling of the first delay in milliseconds, 1 or more. Default: `2000`.
    #[schemars(with = "Option<i64>")]
    pub base_delay_ms: Option<Spanned<i64>>,
    /// Largest delay ceiling in milliseconds, at least `base_delay_ms`. Default: `60000`.
    #[schemars(with = "Option<i64>")]
    pub max_delay_ms: Option<Spanned<i64>>,
}

/// Keys that `[defaults]` sets and each instance may override. The policy keys repeat
/// RawPolicy because serde's `flatten` cannot be combined with `deny_unknown_fields`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDefaults {
    /// Name of the `[policy.NAME]` that instances without their own `policy` key use.
    /// Default: the policy that the `[defaults]` keys form.
    #[schemars(with = "Option<String>")]
    pub policy: Option<Spanned<String>>,
    /// Schedule of each backup type: a table with `full`, `diff` and `log`, each a 6-field
    /// cron expression (second minute hour day month weekday) read in `time_zone`, or
    /// `"off"`. Default: full `0 0 1 * * Sun`, diff `0 0 1 * * Mon-Sat`, log `0 */15 * * *
    /// *`.
    pub schedule: Option<RawSchedules>,
    /// IANA time zone in which the schedules are read, such as `Europe/Paris`. Default:
    /// `UTC`.
    #[schemars(with = "Option<String>")]
    pub time_zone: Option<Spanned<String>>,
    /// Take a FULL in place of a DIFF without a differential base or a LOG without a log
    /// chain; when false, such a run fails. Default: `true`.
    pub change_backup_type: Option<bool>,
    /// Add `WITH COMPRESSION` to BACKUP; left out on Express, which rejects it. Default:
    /// `true`.
    pub compression: Option<bool>,
    /// Add `WITH CHECKSUM` to BACKUP and RESTORE VERIFYONLY. Default: `true`.
    pub checksum: Option<bool>,
    /// `BUFFERCOUNT` of BACKUP: the number of I/O buffers, 1 or more. Default: SQL Server
    /// chooses.
    #[schemars(with = "Option<i64>")]
    pub buffer_count: Option<Spanned<i64>>,
    /// `MAXTRANSFERSIZE` of BACKUP in bytes: a multiple of 65536 from 65536 to 4194304.
    /// Default: SQL Server chooses.
    #[schemars(with = "Option<i64>")]
    pub max_transfer_size: Option<Spanned<i64>>,
    /// `WITH ENCRYPTION`: a table with `algorithm` and one of `server_certificate` and
    /// `server_asymmetric_key`. Default: not encrypted.
    #[schemars(with = "Option<RawEncryption>")]
    pub encryption: Option<Spanned<RawEncryption>>,
    /// Retention that `prune` applies: a table with `full_days` and `keep_full`. Default:
    /// 35 days and 4 full backups.
    pub retention: Option<RawRetention>,
    /// Recovery point objectives, the maximum age of the newest backup of each type: a
    /// table with `full`, `diff` and `log` durations such as `8d` or `30m`. The overview,
    /// the API, `/metrics` and alerts report each database as ok, late or missing against
    /// them. Default: for each type, the longest gap of its schedule plus a quarter of it,
    /// and at least 30 minutes.
    pub rpo: Option<RawRpo>,
    /// Number of files each backup is striped over: BACKUP writes one media family per
    /// file, and every file is needed to restore. Allowed: 1 to 64, the device limit of
    /// SQL Server's BACKUP statement. Default: `1`.
    #[schemars(with = "Option<i64>")]
    pub files: Option<Spanned<i64>>,
    /// Scheduled restore drills for the databases under this policy, such as
    /// `drill = { schedule = "0 0 3 * * Sat" }` or `drill = { enabled = false }`. Needs a
    /// `[drill]` table, which names the sandbox. Default: the `[drill]` table's schedule.
    #[schemars(with = "Option<RawPolicyDrill>")]
    pub drill: Option<Spanned<RawPolicyDrill>>,
    /// Seconds allowed for the TCP connect, TLS handshake and login, 1 or more. Default:
    /// `15`.
    #[schemars(with = "Option<i64>")]
    pub connect_timeout_secs: Option<Spanned<i64>>,
    /// Seconds without received bytes after which a fetch fails, 1 or more. Default: `120`.
    #[schemars(with = "Option<i64>")]
    pub transfer_timeout_secs: Option<Spanned<i64>>,
    /// TLS settings every instance starts from, with the same keys as an instance's
    /// `tls`; an instance's own `tls` keys replace these one by one. Default: none set.
    pub tls: Option<RawTls>,
}

/// One `[policy.NAME]` table; unset keys come from `[defaults]`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPolicy {
    /// Schedule of each backup type: a table with `full`, `diff` and `log`, each a 6-field
    /// cron expression (second minute hour day month weekday) read in `time_zone`, or
    /// `"off"`. Default: full `0 0 1 * * Sun`, diff `0 0 1 * * Mon-Sat`, log `0 */15 * * *
    /// *`.
    pub schedule: Option<RawSchedules>,
    /// IANA time zone in which the schedules are read, such as `Europe/Paris`. Default:
    /// `UTC`.
    #[schemars(with = "Option<String>")]
    pub time_zone: Option<Spanned<String>>,
    /// Take a FULL in place of a DIFF without a differential base or a LOG without a log
    /// chain; when false, such a run fails. Default: `true`.
    pub change_backup_type: Option<bool>,
    /// Add `WITH COMPRESSION` to BACKUP; left out on Express, which rejects it. Default:
    /// `true`.
    pub compression: Option<bool>,
    /// Add `WITH CHECKSUM` to BACKUP and RESTORE VERIFYONLY. Default: `true`.
    pub checksum: Option<bool>,
    /// `BUFFERCOUNT` of BACKUP: the number of I/O buffers, 1 or more. Default: SQL Server
    /// chooses.
    #[schemars(with = "Option<i64>")]
    pub buffer_count: Option<Spanned<i64>>,
    /// `MAXTRANSFERSIZE` of BACKUP in bytes: a multiple of 65536 from 65536 to 4194304.
    /// Default: SQL Server chooses.
    #[schemars(with = "Option<i64>")]
    pub max_transfer_size: Option<Spanned<i64>>,
    /// `WITH ENCRYPTION`: a table with `algorithm` and one of `server_certificate` and
    /// `server_asymmetric_key`. Default: not encrypted.
    #[schemars(with = "Option<RawEncryption>")]
    pub encryption: Option<Spanned<RawEncryption>>,
    /// Retention that `prune` applies: a table with `full_days` and `keep_full`. Default:
    /// 35 days and 4 full backups.
    pub retention: Option<RawRetention>,
    /// Recovery point objectives, the maximum age of the newest backup of each type: a
    /// table with `full`, `diff` and `log` durations such as `8d` or `30m`. The overview,
    /// the API, `/metrics` and alerts report each database as ok, late or missing against
    /// them. Default: for each type, the longest gap of its schedule plus a quarter of it,
    /// and at least 30 minutes.
    pub rpo: Option<RawRpo>,
    /// Number of files each backup is striped over: BACKUP writes one media family per
    /// file, and every file is needed to restore. Allowed: 1 to 64, the device limit of
    /// SQL Server's BACKUP statement. Default: `1`.
    #[schemars(with = "Option<i64>")]
    pub files: Option<Spanned<i64>>,
    /// Scheduled restore drills for the databases under this policy, such as
    /// `drill = { schedule = "0 0 3 * * Sat" }` or `drill = { enabled = false }`. Needs a
    /// `[drill]` table, which names the sandbox. Default: the `[drill]` table's schedule.
    #[schemars(with = "Option<RawPolicyDrill>")]
    pub drill: Option<Spanned<RawPolicyDrill>>,
}

/// The `drill` key of a policy: when its databases get restore drills.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPolicyDrill {
    /// 6-field cron expression (second minute hour day-of-month month day-of-week, UTC) of
    /// the drills, or `"off"`. Default: the `[drill]` table's schedule.
    #[schemars(with = "Option<String>")]
    pub schedule: Option<Spanned<String>>,
    /// Whether the policy's databases are drilled on a schedule; `bakfleet drill` drills
    /// any database on demand whatever this sets. Default: `true`.
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEncryption {
    /// Encryption algorithm of BACKUP ... WITH ENCRYPTION: `AES_128`, `AES_192`, `AES_256`
    /// or `TRIPLE_DES_3KEY`.
    #[schemars(with = "String", extend("enum" = ["AES_128", "AES_192", "AES_256", "TRIPLE_DES_3KEY"]))]
    pub algorithm: Spanned<String>,
    /// Certificate in master that protects the backup; set this or `server_asymmetric_key`.
    /// Default: none.
    #[schemars(with = "Option<String>")]
    pub server_certificate: Option<Spanned<String>>,
    /// Asymmetric key in master that protects the backup; set this or `server_certificate`.
    /// Default: none.
    #[schemars(with = "Option<String>")]
    pub server_asymmetric_key: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRpo {
    /// Maximum age of the newest full backup, such as `8d`; units `s`, `m`, `h`, `d` and
    /// `w`. Default: none.
    #[schemars(with = "Option<String>")]
    pub full: Option<Spanned<String>>,
    /// Maximum age of the newest differential backup, such as `1d`. Default: none.
    #[schemars(with = "Option<String>")]
    pub diff: Option<Spanned<String>>,
    /// Maximum age of the newest log backup, such as `30m`. Default: none.
    #[schemars(with = "Option<String>")]
    pub log: Option<Spanned<String>>,
}

/// One entry of an instance's `database_policies`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDatabasePolicy {
    /// Database names or patterns (`*` and `?` wildcards, compared without case) that this
    /// entry applies to.
    #[schemars(with = "Vec<String>")]
    pub databases: Spanned<Vec<Spanned<String>>>,
    /// Name of the `[policy.NAME]` those databases use.
    #[schemars(with = "String")]
    pub policy: Spanned<String>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSchedules {
    /// Schedule of full backups: a 6-field cron expression (second minute hour day month
    /// weekday), or `"off"`. Default: `0 0 1 * * Sun`.
    #[schemars(with = "Option<String>")]
    pub full: Option<Spanned<String>>,
    /// Schedule of differential backups: a 6-field cron expression, or `"off"`. Default: `0
    /// 0 1 * * Mon-Sat`.
    #[schemars(with = "Option<String>")]
    pub diff: Option<Spanned<String>>,
    /// Schedule of log backups: a 6-field cron expression, or `"off"`. Default: `0 */15 * *
    /// * *`.
    #[schemars(with = "Option<String>")]
    pub log: Option<Spanned<String>>,
    /// Window after each slot over which instances start, such as `10m`: each instance
    /// gets a fixed offset within it, derived from its name, and its runs are due at the
    /// slot plus that offset. A fleet of many instances then does not queue every run in
    /// the same second. Less than a day; keep it shorter than the schedules' shortest gap,
    /// so that each slot's runs start before the next slot. Default: `"off"`.
    #[schemars(with = "Option<String>")]
    pub spread: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRetention {
    /// Minimum age in days, 1 or more, before a full backup and the chain that depends on
    /// it may be deleted. Default: `35`.
    #[schemars(with = "Option<i64>")]
    pub full_days: Option<Spanned<i64>>,
    /// Minimum number of full backups kept per database whatever their age, 1 or more.
    /// Default: `4`.
    #[schemars(with = "Option<i64>")]
    pub keep_full: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCredential {
    /// User name of the SMB login.
    #[schemars(with = "String")]
    pub user: Spanned<String>,
    /// Windows domain of the user. Default: none.
    #[schemars(with = "Option<String>")]
    pub domain: Option<Spanned<String>>,
    /// Environment variable of the bakfleet process that contains the password; set this or
    /// `password_secret`. Default: none.
    #[schemars(with = "Option<String>")]
    pub password_env: Option<Spanned<String>>,
    /// Key in `service.secrets_file` that contains the password; set this or
    /// `password_env`. Default: none.
    #[schemars(with = "Option<String>")]
    pub password_secret: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawInstance {
    /// Name of the instance in bakfleet: letters, digits, `-`, `_` and `.`, unique without
    /// regard to case, because it becomes a store folder.
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// Host name or IP address of the SQL Server.
    #[schemars(with = "String")]
    pub host: Spanned<String>,
    /// TCP port of the SQL Server. Default: `1433`.
    #[schemars(with = "Option<i64>")]
    pub port: Option<Spanned<i64>>,
    /// Login of bakfleet to the instance: a table with `kind`, `user` and one of
    /// `password_env` and `password_secret`.
    #[schemars(with = "RawAuth")]
    pub auth: Spanned<RawAuth>,
    /// TLS of the connection: a table with `encrypt`, `ca_file` and
    /// `trust_server_certificate`. Default: `encrypt = "mandatory"` with the system's root
    /// certificates.
    pub tls: Option<RawTls>,
    /// Databases to back up: a table with `include` and `exclude` lists of names, patterns
    /// or `USER_DATABASES`, `SYSTEM_DATABASES` and `ALL_DATABASES`. Default: `include =
    /// ["USER_DATABASES"]`.
    #[schemars(with = "Option<RawDatabases>")]
    pub databases: Option<Spanned<RawDatabases>>,
    /// Staging folder, which SQL Server writes the backup files to and bakfleet fetches
    /// them from: a table with exactly one of `smb`, `sftp` and `local`.
    #[schemars(with = "RawStaging")]
    pub staging: Spanned<RawStaging>,
    /// Policies of single databases: a list of tables with `databases` and `policy`; the
    /// first entry that matches a database applies. Default: none.
    #[schemars(with = "Option<Vec<RawDatabasePolicy>>")]
    pub database_policies: Option<Vec<Spanned<RawDatabasePolicy>>>,
    // The keys below override `[defaults]`; they repeat RawDefaults because serde's
    // `flatten` cannot be combined with `deny_unknown_fields`.
    /// Name of the `[policy.NAME]` this instance uses. Default: `defaults.policy`, else the
    /// `[defaults]` keys.
    #[schemars(with = "Option<String>")]
    pub policy: Option<Spanned<String>>,
    /// Schedule of each backup type: a table with `full`, `diff` and `log`, each a 6-field
    /// cron expression (second minute hour day month weekday) read in `time_zone`, or
    /// `"off"`. Default: full `0 0 1 * * Sun`, diff `0 0 1 * * Mon-Sat`, log `0 */15 * * *
    /// *`.
    pub schedule: Option<RawSchedules>,
    /// IANA time zone in which the schedules are read, such as `Europe/Paris`. Default:
    /// `UTC`.
    #[schemars(with = "Option<String>")]
    pub time_zone: Option<Spanned<String>>,
    /// Take a FULL in place of a DIFF without a differential base or a LOG without a log
    /// chain; when false, such a run fails. Default: `true`.
    pub change_backup_type: Option<bool>,
    /// Add `WITH COMPRESSION` to BACKUP; left out on Express, which rejects it. Default:
    /// `true`.
    pub compression: Option<bool>,
    /// Add `WITH CHECKSUM` to BACKUP and RESTORE VERIFYONLY. Default: `true`.
    pub checksum: Option<bool>,
    /// `BUFFERCOUNT` of BACKUP: the number of I/O buffers, 1 or more. Default: SQL Server
    /// chooses.
    #[schemars(with = "Option<i64>")]
    pub buffer_count: Option<Spanned<i64>>,
    /// `MAXTRANSFERSIZE` of BACKUP in bytes: a multiple of 65536 from 65536 to 4194304.
    /// Default: SQL Server chooses.
    #[schemars(with = "Option<i64>")]
    pub max_transfer_size: Option<Spanned<i64>>,
    /// `WITH ENCRYPTION`: a table with `algorithm` and one of `server_certificate` and
    /// `server_asymmetric_key`. Default: not encrypted.
    #[schemars(with = "Option<RawEncryption>")]
    pub encryption: Option<Spanned<RawEncryption>>,
    /// Retention that `prune` applies: a table with `full_days` and `keep_full`. Default:
    /// 35 days and 4 full backups.
    pub retention: Option<RawRetention>,
    /// Recovery point objectives, the maximum age of the newest backup of each type: a
    /// table with `full`, `diff` and `log` durations such as `8d` or `30m`. The overview,
    /// the API, `/metrics` and alerts report each database as ok, late or missing against
    /// them. Default: for each type, the longest gap of its schedule plus a quarter of it,
    /// and at least 30 minutes.
    pub rpo: Option<RawRpo>,
    /// Number of files each backup is striped over: BACKUP writes one media family per
    /// file, and every file is needed to restore. Allowed: 1 to 64, the device limit of
    /// SQL Server's BACKUP statement. Default: `1`.
    #[schemars(with = "Option<i64>")]
    pub files: Option<Spanned<i64>>,
    /// Scheduled restore drills for the databases under this policy, such as
    /// `drill = { schedule = "0 0 3 * * Sat" }` or `drill = { enabled = false }`. Needs a
    /// `[drill]` table, which names the sandbox. Default: the `[drill]` table's schedule.
    #[schemars(with = "Option<RawPolicyDrill>")]
    pub drill: Option<Spanned<RawPolicyDrill>>,
    /// Seconds allowed for the TCP connect, TLS handshake and login, 1 or more. Default:
    /// `15`.
    #[schemars(with = "Option<i64>")]
    pub connect_timeout_secs: Option<Spanned<i64>>,
    /// Seconds without received bytes after which a fetch fails, 1 or more. Default: `120`.
    #[schemars(with = "Option<i64>")]
    pub transfer_timeout_secs: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAuth {
    /// Login method: `sql`, a SQL Server login.
    #[schemars(with = "String", extend("enum" = ["sql"]))]
    pub kind: Spanned<String>,
    /// Login name; required with `kind = "sql"`. Default: none.
    #[schemars(with = "Option<String>")]
    pub user: Option<Spanned<String>>,
    /// Environment variable of the bakfleet process that contains the password; set this or
    /// `password_secret`. Default: none.
    #[schemars(with = "Option<String>")]
    pub password_env: Option<Spanned<String>>,
    /// Key in `service.secrets_file` that contains the password; set this or
    /// `password_env`. Default: none.
    #[schemars(with = "Option<String>")]
    pub password_secret: Option<Spanned<String>>,
}

/// `tls`: how bakfleet encrypts the TDS connection and checks the server's certificate.
/// The names follow the `Encrypt`, `TrustServerCertificate` and `HostNameInCertificate`
/// keywords of Microsoft ODBC Driver 18 for SQL Server.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTls {
    /// Encryption mode. `strict`: TDS 8, TLS 1.3 before any TDS packet (SQL Server 2022
    /// and later). `mandatory`: TLS for the whole session after PRELOGIN. `optional`: TLS
    /// for the login packet, and for the whole session only when the server forces
    /// encryption. `not_supported`: no TLS at all, for the simulator without a
    /// certificate; it sends the password in plain text. Default: `mandatory`.
    #[schemars(with = "Option<String>", extend("enum" = ["strict", "mandatory", "optional", "not_supported"]))]
    pub encrypt: Option<Spanned<String>>,
    /// PEM file of the CA certificates that the server's certificate must chain to.
    /// Relative paths start at fleet.toml's folder. Default: the system's trusted CAs.
    #[schemars(with = "Option<String>")]
    pub ca_file: Option<Spanned<String>>,
    /// Whether to accept any server certificate without checking it, so another host can
    /// pose as the server; `bakfleet check` warns about it. Cannot be combined with
    /// `ca_file` in the same table. Default: `false`.
    #[schemars(with = "Option<bool>")]
    pub trust_server_certificate: Option<Spanned<bool>>,
    /// Host name the server's certificate must carry, when it differs from `host`
    /// (for example when `host` is an IP address or an alias). Default: `host`.
    #[schemars(with = "Option<String>")]
    pub host_name_in_certificate: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDatabases {
    /// Databases to back up: names, patterns with `*` and `?` (compared without case), or
    /// `USER_DATABASES`, `SYSTEM_DATABASES` and `ALL_DATABASES`. `tempdb` is never backed
    /// up. Default: `["USER_DATABASES"]`.
    #[schemars(with = "Option<Vec<String>>")]
    pub include: Option<Spanned<Vec<Spanned<String>>>>,
    /// Databases left out even when `include` selects them, written as in `include`.
    /// Default: none.
    #[schemars(with = "Option<Vec<String>>")]
    pub exclude: Option<Vec<Spanned<String>>>,
}

/// `staging` contains exactly one of `smb`, `sftp` and `local`; `port` and `credential`
/// belong to `smb`. The checks in `staging.rs` enforce both rules.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStaging {
    /// UNC path of the share folder, such as `\\files01\sqlbackup\sales-prod`, which SQL
    /// Server writes to and bakfleet reads over SMB. Default: none.
    #[schemars(with = "Option<String>")]
    pub smb: Option<Spanned<String>>,
    /// TCP port of the SMB server; only with `smb`. Default: `445`.
    #[schemars(with = "Option<i64>")]
    pub port: Option<Spanned<i64>>,
    /// Name of the `[credentials.NAME]` login to the share; required with `smb`. Default:
    /// none.
    #[schemars(with = "Option<String>")]
    pub credential: Option<Spanned<String>>,
    /// A folder on the database host that bakfleet reads over SFTP: a table with `host`,
    /// `port`, `user`, `key_file`, `known_hosts`, `path` and `server_path`. Default: none.
    #[schemars(with = "Option<RawSftp>")]
    pub sftp: Option<Spanned<RawSftp>>,
    /// A folder that SQL Server writes to and this machine mounts: a table with
    /// `server_path` and `dir`. Default: none.
    #[schemars(with = "Option<RawLocal>")]
    pub local: Option<Spanned<RawLocal>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSftp {
    /// Host name or IP address of the SFTP server.
    #[schemars(with = "String")]
    pub host: Spanned<String>,
    /// TCP port of the SFTP server. Default: `22`.
    #[schemars(with = "Option<i64>")]
    pub port: Option<Spanned<i64>>,
    /// SSH user name.
    #[schemars(with = "String")]
    pub user: Spanned<String>,
    /// Private key file of the SSH user; relative paths are read from the fleet file's
    /// folder.
    #[schemars(with = "String")]
    pub key_file: Spanned<String>,
    /// known_hosts file with the server's host key, which must match.
    #[schemars(with = "String")]
    pub known_hosts: Spanned<String>,
    /// Absolute folder as the SFTP server names it.
    #[schemars(with = "String")]
    pub path: Spanned<String>,
    /// The same folder as SQL Server names it. Default: `path`.
    #[schemars(with = "Option<String>")]
    pub server_path: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLocal {
    /// The folder as SQL Server names it, such as `D:\Backup` or `/var/opt/mssql/backup`.
    #[schemars(with = "String")]
    pub server_path: Spanned<String>,
    /// The same folder on this machine; relative paths are read from the fleet file's
    /// folder.
    #[schemars(with = "String")]
    pub dir: Spanned<String>,
}

/// `[alerts]`: where `serve` sends alerts, which events it sends, and how often.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAlerts {
    /// Events that send an alert: any of `failure` (a finished run failed), `rpo` (a
    /// database's newest backup is older than its policy's RPO, or it has none) and
    /// `recovery` (a good backup or state after a failure or RPO alert). Default: all three.
    #[schemars(with = "Option<Vec<String>>")]
    pub events: Option<Vec<Spanned<String>>>,
    /// Minimum time between two alerts of the same kind for one database, such as `1h`;
    /// units `s`, `m`, `h`, `d` and `w`. A recovery alert is never held back. Default: `1h`.
    #[schemars(with = "Option<String>")]
    pub min_interval: Option<Spanned<String>>,
    /// Seconds between two passes of the alert evaluator in `serve`, 5 or more. Default:
    /// `30`.
    #[schemars(with = "Option<i64>")]
    pub check_interval_secs: Option<Spanned<i64>>,
    /// Address of the admin site as operators open it, such as
    /// `https://backup01.corp.example`; alerts then link to the run. Default: no link.
    #[schemars(with = "Option<String>")]
    pub site_url: Option<Spanned<String>>,
    /// Webhooks that receive each alert as an HTTP POST of JSON: a list of tables with
    /// `url`, `format` and `headers_env`. Default: none.
    #[serde(default)]
    #[schemars(with = "Vec<RawWebhook>")]
    pub webhook: Vec<Spanned<RawWebhook>>,
    /// SMTP server and addresses of alert e-mail: a table with `host`, `port`, `tls`,
    /// `user`, `password_env` or `password_secret`, `from`, `to` and `ca_file`. Default:
    /// no e-mail.
    #[schemars(with = "Option<RawEmail>")]
    pub email: Option<Spanned<RawEmail>>,
}

/// One `[[alerts.webhook]]`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWebhook {
    /// `http` or `https` URL that receives the POST.
    #[schemars(with = "String")]
    pub url: Spanned<String>,
    /// Body of the POST: `slack` (`{"text": ...}`), `teams` (an Office 365 connector
    /// MessageCard) or `json` (an object with `event`, `instance`, `database`,
    /// `backup_type`, `message`, `run_id`, `link` and `at`). Default: `json`.
    #[schemars(with = "Option<String>", extend("enum" = ["slack", "teams", "json"]))]
    pub format: Option<Spanned<String>>,
    /// Extra request headers, each a header name mapped to the environment variable of
    /// the bakfleet process that contains its value, such as `{ Authorization =
    /// "BAKFLEET_HOOK_TOKEN" }`. Default: none.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub headers_env: BTreeMap<Spanned<String>, Spanned<String>>,
}

/// `[alerts.email]`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEmail {
    /// Host name of the SMTP server; its certificate must carry this name.
    #[schemars(with = "String")]
    pub host: Spanned<String>,
    /// TCP port of the SMTP server. Default: `587` with `tls = "starttls"`, `465` with
    /// `tls = "implicit"`.
    #[schemars(with = "Option<i64>")]
    pub port: Option<Spanned<i64>>,
    /// `starttls`: plain SMTP upgraded by STARTTLS, which must succeed. `implicit`: TLS
    /// from the first byte (SMTPS). Default: `starttls`.
    #[schemars(with = "Option<String>", extend("enum" = ["starttls", "implicit"]))]
    pub tls: Option<Spanned<String>>,
    /// SMTP login; needs `password_env` or `password_secret`. Default: no login.
    #[schemars(with = "Option<String>")]
    pub user: Option<Spanned<String>>,
    /// Environment variable of the bakfleet process that contains the SMTP password; set
    /// this or `password_secret` with `user`. Default: none.
    #[schemars(with = "Option<String>")]
    pub password_env: Option<Spanned<String>>,
    /// Key in `service.secrets_file` that contains the SMTP password; set this or
    /// `password_env` with `user`. Default: none.
    #[schemars(with = "Option<String>")]
    pub password_secret: Option<Spanned<String>>,
    /// Sender address, such as `bakfleet@corp.example`.
    #[schemars(with = "String")]
    pub from: Spanned<String>,
    /// Recipient addresses, one or more.
    #[schemars(with = "Vec<String>")]
    pub to: Spanned<Vec<Spanned<String>>>,
    /// PEM file of the CA certificates that the SMTP server's certificate must chain to;
    /// relative paths are read from the fleet file's folder. Default: the system's trusted
    /// CAs.
    #[schemars(with = "Option<String>")]
    pub ca_file: Option<Spanned<String>>,
}
