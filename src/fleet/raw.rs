//! The fleet.toml schema as written, before defaults and checks. Values that are checked
//! after parsing keep their byte span so that errors can point at them.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFleet {
    pub service: Option<RawService>,
    pub defaults: Option<RawDefaults>,
    #[serde(default)]
    pub credentials: BTreeMap<Spanned<String>, Spanned<RawCredential>>,
    #[serde(default, rename = "instance")]
    pub instances: Vec<Spanned<RawInstance>>,
    pub drill: Option<RawDrill>,
    #[serde(default, rename = "policy")]
    pub policies: BTreeMap<Spanned<String>, Spanned<RawPolicy>>,
}

/// `[drill]`: restore drills on a sandbox instance.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDrill {
    pub sandbox: Spanned<String>,
    pub store_path: Spanned<String>,
    pub data_dir: Option<String>,
    pub schedule: Option<Spanned<String>>,
    pub instances: Option<Vec<Spanned<String>>>,
    pub databases: Option<Spanned<RawDatabases>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawService {
    pub store_dir: Option<Spanned<String>>,
    pub catalog: Option<Spanned<String>>,
    pub listen: Option<Spanned<String>>,
    pub secrets_file: Option<Spanned<String>>,
    pub lease_seconds: Option<Spanned<i64>>,
    pub max_parallel_jobs: Option<Spanned<i64>>,
    pub max_jobs_per_instance: Option<Spanned<i64>>,
    pub max_jobs_per_staging: Option<Spanned<i64>>,
    pub staged_max_age_days: Option<Spanned<i64>>,
    /// How connect, RESTORE VERIFYONLY and fetch are retried after a transient fault
    /// (a refused or reset connection, a dropped session, an unreachable share).
    pub retry: Option<RawRetry>,
}

/// `service.retry`: exponential backoff with full jitter. The delay before retry n is
/// drawn from zero to `base_delay_ms * 2^(n-1)`, capped at `max_delay_ms`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRetry {
    /// Attempts in all, the first included; 1 turns retries off. Default 3, at least 1.
    pub attempts: Option<Spanned<i64>>,
    /// Ceiling of the first delay, in milliseconds. Default 2000, at least 1.
    pub base_delay_ms: Option<Spanned<i64>>,
    /// Largest delay ceiling, in milliseconds. Default 60000, at least `base_delay_ms`.
    pub max_delay_ms: Option<Spanned<i64>>,
}

/// Keys that `[defaults]` sets and each instance may override. The policy keys repeat
/// RawPolicy because serde's `flatten` cannot be combined with `deny_unknown_fields`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDefaults {
    /// The `[policy.NAME]` that instances without their own `policy` key use.
    pub policy: Option<Spanned<String>>,
    pub schedule: Option<RawSchedules>,
    pub time_zone: Option<Spanned<String>>,
    pub change_backup_type: Option<bool>,
    pub compression: Option<bool>,
    pub checksum: Option<bool>,
    pub buffer_count: Option<Spanned<i64>>,
    pub max_transfer_size: Option<Spanned<i64>>,
    pub encryption: Option<Spanned<RawEncryption>>,
    pub retention: Option<RawRetention>,
    pub rpo: Option<RawRpo>,
    pub connect_timeout_secs: Option<Spanned<i64>>,
    pub transfer_timeout_secs: Option<Spanned<i64>>,
    /// TLS settings every instance starts from, with the same keys as an instance's
    /// `tls`; an instance's own `tls` keys replace these one by one. Default: none set.
    pub tls: Option<RawTls>,
}

/// One `[policy.NAME]` table; unset keys come from `[defaults]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPolicy {
    pub schedule: Option<RawSchedules>,
    pub time_zone: Option<Spanned<String>>,
    pub change_backup_type: Option<bool>,
    pub compression: Option<bool>,
    pub checksum: Option<bool>,
    pub buffer_count: Option<Spanned<i64>>,
    pub max_transfer_size: Option<Spanned<i64>>,
    pub encryption: Option<Spanned<RawEncryption>>,
    pub retention: Option<RawRetention>,
    pub rpo: Option<RawRpo>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEncryption {
    pub algorithm: Spanned<String>,
    pub server_certificate: Option<Spanned<String>>,
    pub server_asymmetric_key: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRpo {
    pub full: Option<Spanned<String>>,
    pub diff: Option<Spanned<String>>,
    pub log: Option<Spanned<String>>,
}

/// One entry of an instance's `database_policies`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDatabasePolicy {
    pub databases: Spanned<Vec<Spanned<String>>>,
    pub policy: Spanned<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSchedules {
    pub full: Option<Spanned<String>>,
    pub diff: Option<Spanned<String>>,
    pub log: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRetention {
    pub full_days: Option<Spanned<i64>>,
    pub keep_full: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCredential {
    pub user: Spanned<String>,
    pub domain: Option<Spanned<String>>,
    pub password_env: Option<Spanned<String>>,
    pub password_secret: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawInstance {
    pub name: Spanned<String>,
    pub host: Spanned<String>,
    pub port: Option<Spanned<i64>>,
    pub auth: Spanned<RawAuth>,
    pub tls: Option<RawTls>,
    pub databases: Option<Spanned<RawDatabases>>,
    pub staging: Spanned<RawStaging>,
    /// Per-database policies; the first entry whose pattern matches wins.
    pub database_policies: Option<Vec<Spanned<RawDatabasePolicy>>>,
    // The keys below override `[defaults]`; they repeat RawDefaults because serde's
    // `flatten` cannot be combined with `deny_unknown_fields`.
    pub policy: Option<Spanned<String>>,
    pub schedule: Option<RawSchedules>,
    pub time_zone: Option<Spanned<String>>,
    pub change_backup_type: Option<bool>,
    pub compression: Option<bool>,
    pub checksum: Option<bool>,
    pub buffer_count: Option<Spanned<i64>>,
    pub max_transfer_size: Option<Spanned<i64>>,
    pub encryption: Option<Spanned<RawEncryption>>,
    pub retention: Option<RawRetention>,
    pub rpo: Option<RawRpo>,
    pub connect_timeout_secs: Option<Spanned<i64>>,
    pub transfer_timeout_secs: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAuth {
    pub kind: Spanned<String>,
    pub user: Option<Spanned<String>>,
    pub password_env: Option<Spanned<String>>,
    pub password_secret: Option<Spanned<String>>,
}

/// `tls`: how bakfleet encrypts the TDS connection and checks the server's certificate.
/// The names follow the `Encrypt`, `TrustServerCertificate` and `HostNameInCertificate`
/// keywords of Microsoft ODBC Driver 18 for SQL Server.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTls {
    /// Encryption mode. `"strict"`: TDS 8, TLS 1.3 before any TDS packet (SQL Server
    /// 2022 and later). `"mandatory"`: TLS for the whole session after PRELOGIN.
    /// `"optional"`: TLS for the login packet, and for the whole session only when the
    /// server forces encryption. `"not_supported"`: no TLS at all, for the simulator
    /// without a certificate; it sends the password in plain text. Default `"mandatory"`.
    pub encrypt: Option<Spanned<String>>,
    /// PEM file of the CA certificates that the server's certificate must chain to.
    /// Relative paths start at fleet.toml's folder. Default: the system's trusted CAs.
    pub ca_file: Option<Spanned<String>>,
    /// `true` accepts any server certificate without checking it, so another host can
    /// pose as the server; `bakfleet check` warns about it. Cannot be combined with
    /// `ca_file` in the same table. Default `false`.
    pub trust_server_certificate: Option<Spanned<bool>>,
    /// Host name the server's certificate must carry, when it differs from `host`
    /// (for example when `host` is an IP address or an alias). Default: `host`.
    pub host_name_in_certificate: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDatabases {
    pub include: Option<Spanned<Vec<Spanned<String>>>>,
    pub exclude: Option<Vec<Spanned<String>>>,
}

/// `staging` contains exactly one of `smb`, `sftp` and `local`; `port` and `credential`
/// belong to `smb`. The checks in `staging.rs` enforce both rules.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStaging {
    pub smb: Option<Spanned<String>>,
    pub port: Option<Spanned<i64>>,
    pub credential: Option<Spanned<String>>,
    pub sftp: Option<Spanned<RawSftp>>,
    pub local: Option<Spanned<RawLocal>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSftp {
    pub host: Spanned<String>,
    pub port: Option<Spanned<i64>>,
    pub user: Spanned<String>,
    pub key_file: Spanned<String>,
    pub known_hosts: Spanned<String>,
    pub path: Spanned<String>,
    pub server_path: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLocal {
    pub server_path: Spanned<String>,
    pub dir: Spanned<String>,
}
