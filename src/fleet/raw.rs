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
}

/// Keys that `[defaults]` sets and each instance may override.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDefaults {
    pub schedule: Option<RawSchedules>,
    pub compression: Option<bool>,
    pub checksum: Option<bool>,
    pub retention: Option<RawRetention>,
    pub connect_timeout_secs: Option<Spanned<i64>>,
    pub transfer_timeout_secs: Option<Spanned<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSchedules {
    pub full: Option<Spanned<String>>,
    pub diff: Option<Spanned<String>>,
    pub log: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
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
    // The keys below override `[defaults]`; they repeat RawDefaults because serde's
    // `flatten` cannot be combined with `deny_unknown_fields`.
    pub schedule: Option<RawSchedules>,
    pub compression: Option<bool>,
    pub checksum: Option<bool>,
    pub retention: Option<RawRetention>,
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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTls {
    pub encrypt: Option<Spanned<String>>,
    pub ca_file: Option<Spanned<String>>,
    pub trust_server_certificate: Option<Spanned<bool>>,
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
