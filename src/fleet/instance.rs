//! One `[[instance]]`: how to reach and log in to a SQL Server instance, what to back
//! up, and where it stages its files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use super::databases::DatabaseSelection;
use super::error::Diagnostics;
use super::policy::Policy;
use super::raw::{
    RawAuth, RawCredential, RawDatabasePolicy, RawDefaults, RawInstance, RawPolicy, RawTls,
};
use super::schedules::Schedules;
use super::secrets::{password_ref, SecretRef};
use super::service::{Defaults, Retention};
use super::staging::Staging;
use super::value;

/// A SQL Server instance with `[defaults]` applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// Unique name matching `[A-Za-z0-9][A-Za-z0-9_.-]*`; used in store paths and the UI.
    pub name: String,
    pub host: String,
    /// TCP port; default 1433.
    pub port: u16,
    pub auth: Auth,
    pub tls: Tls,
    pub databases: DatabaseSelection,
    pub staging: Staging,
    /// The policy of databases that no `database_policies` entry matches: the instance's
    /// `policy` (else `defaults.policy`, else the `[defaults]` keys) with the policy keys
    /// written on the instance applied over it.
    pub policy: Policy,
    /// Per-database policies in file order; [`Instance::policy_for`] takes the first match.
    pub database_policies: Vec<DatabasePolicy>,
    /// `policy.schedule`, kept for callers that read the instance's own settings.
    pub schedule: Schedules,
    /// `policy.compression`.
    pub compression: bool,
    /// `policy.checksum`.
    pub checksum: bool,
    /// `policy.retention`.
    pub retention: Retention,
    pub connect_timeout: Duration,
    pub transfer_timeout: Duration,
}

/// One `database_policies` entry: databases matched like `databases.include`, and the
/// named policy they use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabasePolicy {
    pub databases: DatabaseSelection,
    pub policy: Policy,
}

impl Instance {
    /// Returns the policy of `database`: the first `database_policies` entry that matches
    /// it, else the instance's policy.
    pub fn policy_for(&self, database: &str) -> &Policy {
        self.database_policies
            .iter()
            .find(|entry| entry.databases.selects(database))
            .map_or(&self.policy, |entry| &entry.policy)
    }

    /// Lists the distinct policies of this instance, the instance policy first, so that
    /// the scheduler adds one entry per policy and backup type.
    pub fn policies(&self) -> Vec<&Policy> {
        let mut policies = vec![&self.policy];
        for entry in &self.database_policies {
            if !policies.iter().any(|known| **known == entry.policy) {
                policies.push(&entry.policy);
            }
        }
        policies
    }
}

/// The login method and login of an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// A SQL Server login (`kind = "sql"`).
    Sql { user: String, password: SecretRef },
}

/// The TDS encryption mode, named as the `Encrypt` keyword of Microsoft ODBC Driver 18
/// for SQL Server names it (Strict, Mandatory, Optional).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encrypt {
    /// TDS 8: TLS 1.3 before any TDS packet.
    Strict,
    /// TLS for the whole connection after the PRELOGIN exchange; the default.
    Mandatory,
    /// TLS for the login packet, and for the whole session only when the server forces
    /// encryption.
    Optional,
    /// No TLS at all, not even for the login packet; for servers without a certificate.
    NotSupported,
}

impl Encrypt {
    /// Returns the value as written in fleet.toml.
    pub fn as_str(self) -> &'static str {
        match self {
            Encrypt::Strict => "strict",
            Encrypt::Mandatory => "mandatory",
            Encrypt::Optional => "optional",
            Encrypt::NotSupported => "not_supported",
        }
    }
}

/// TLS settings of an instance connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    pub encrypt: Encrypt,
    /// CA certificate (PEM) that the server certificate must chain to; the system roots
    /// when unset.
    pub ca_file: Option<PathBuf>,
    /// Accept any server certificate. Only true when set explicitly, and
    /// [`Instance::tls_warnings`] reports it.
    pub trust_server_certificate: bool,
    /// The name the certificate is checked against instead of `host`.
    pub host_name_in_certificate: Option<String>,
}

impl Default for Tls {
    fn default() -> Self {
        Tls {
            encrypt: Encrypt::Mandatory,
            ca_file: None,
            trust_server_certificate: false,
            host_name_in_certificate: None,
        }
    }
}

impl Instance {
    /// Lists why this instance's TLS settings are weak, empty when the connection is
    /// encrypted and the certificate is checked. `bakfleet check`, `check --connect` and
    /// the admin site show these.
    pub fn tls_warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.tls.trust_server_certificate {
            warnings.push(
                "tls.trust_server_certificate = true accepts any server certificate, so \
                 another host can pose as the server and read the login; set tls.ca_file \
                 instead"
                    .to_string(),
            );
        }
        match self.tls.encrypt {
            Encrypt::Optional => warnings.push(
                "tls.encrypt = \"optional\" encrypts only the login packet unless the \
                 server forces encryption, so queries and backup paths may travel in plain \
                 text"
                    .to_string(),
            ),
            Encrypt::NotSupported => warnings.push(
                "tls.encrypt = \"not_supported\" sends the login, including the password, \
                 in plain text"
                    .to_string(),
            ),
            Encrypt::Strict | Encrypt::Mandatory => {}
        }
        warnings
    }
}

/// A login for SMB shares (`[credentials.NAME]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub user: String,
    /// Windows domain of the user, if any.
    pub domain: Option<String>,
    pub password: SecretRef,
}

impl Credential {
    /// Reads `[credentials.NAME]`.
    pub(crate) fn from_raw(
        name: &str,
        raw: &Spanned<RawCredential>,
        has_secrets_file: bool,
        diagnostics: &mut Diagnostics,
    ) -> Option<Credential> {
        let prefix = format!("credentials.{name}.");
        let table = raw.get_ref();
        let user = value::text(diagnostics, &format!("{prefix}user"), &table.user);
        let domain = match &table.domain {
            Some(domain) => Some(value::text(
                diagnostics,
                &format!("{prefix}domain"),
                domain,
            )?),
            None => None,
        };
        let password = password_ref(
            diagnostics,
            &prefix,
            raw.span().start,
            (table.password_env.as_ref(), table.password_secret.as_ref()),
            has_secrets_file,
        );
        Some(Credential {
            user: user?,
            domain,
            password: password?,
        })
    }
}

/// Returns whether `name` is a valid instance name: an ASCII letter or digit, then letters,
/// digits, `_`, `.` or `-`. The name becomes a directory in the store, so it must be
/// safe as a path component on every platform.
pub fn is_valid_instance_name(name: &str) -> bool {
    let mut characters = name.chars();
    let Some(first) = characters.next() else {
        return false;
    };
    first.is_ascii_alphanumeric()
        && characters.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// The parts of the file that an instance refers to while it is read.
pub(crate) struct InstanceContext<'a> {
    pub base_dir: &'a Path,
    pub defaults: &'a Defaults,
    /// The policy of instances without a `policy` key (`defaults.policy` resolved).
    pub default_policy: &'a Policy,
    /// `[policy.NAME]` tables by name.
    pub policies: &'a BTreeMap<String, Policy>,
    pub credential_exists: &'a dyn Fn(&str) -> bool,
    /// Whether `service.secrets_file` is set, which `password_secret` needs.
    pub has_secrets_file: bool,
}

impl Instance {
    /// Reads one `[[instance]]` with defaults applied; `None` after reporting problems.
    pub(crate) fn from_raw(
        raw: RawInstance,
        context: &InstanceContext<'_>,
        diagnostics: &mut Diagnostics,
    ) -> Option<Instance> {
        let name = instance_name(&raw.name, diagnostics);
        let host = host(&raw.host, diagnostics);
        let port = match &raw.port {
            Some(port) => value::port(diagnostics, "port", port),
            None => Some(1433),
        };
        let auth = auth(&raw.auth, context.has_secrets_file, diagnostics);
        let tls = tls(
            raw.tls.as_ref(),
            &context.defaults.tls,
            context.base_dir,
            diagnostics,
            "",
        );
        let databases = DatabaseSelection::from_raw(raw.databases.as_ref(), diagnostics);
        let staging = Staging::from_raw(
            &raw.staging,
            context.base_dir,
            context.credential_exists,
            diagnostics,
        );
        let database_policies = database_policies(
            raw.database_policies.as_deref().unwrap_or_default(),
            context.policies,
            diagnostics,
        );
        let base_policy = match &raw.policy {
            Some(name) => named_policy(name, "policy", context.policies, diagnostics),
            None => Some(context.default_policy),
        };
        let overrides = RawPolicy {
            schedule: raw.schedule,
            time_zone: raw.time_zone,
            change_backup_type: raw.change_backup_type,
            compression: raw.compression,
            checksum: raw.checksum,
            buffer_count: raw.buffer_count,
            max_transfer_size: raw.max_transfer_size,
            encryption: raw.encryption,
            retention: raw.retention,
            rpo: raw.rpo,
            files: raw.files,
            drill: raw.drill,
        };
        let policy = base_policy.map(|base| base.overridden(&overrides, diagnostics, ""));
        let timeouts = RawDefaults {
            connect_timeout_secs: raw.connect_timeout_secs,
            transfer_timeout_secs: raw.transfer_timeout_secs,
            ..RawDefaults::default()
        };
        let (connect_timeout, transfer_timeout) =
            context
                .defaults
                .timeouts_overridden(&timeouts, diagnostics, "");
        let policy = policy?;
        Some(Instance {
            name: name?,
            host: host?,
            port: port?,
            auth: auth?,
            tls: tls?,
            databases,
            staging: staging?,
            schedule: policy.schedule.clone(),
            compression: policy.compression,
            checksum: policy.checksum,
            retention: policy.retention,
            policy,
            database_policies,
            connect_timeout,
            transfer_timeout,
        })
    }
}

/// Looks up `[policy.NAME]`; reports `key` with the known names when it does not exist.
pub(crate) fn named_policy<'p>(
    name: &Spanned<String>,
    key: &str,
    policies: &'p BTreeMap<String, Policy>,
    diagnostics: &mut Diagnostics,
) -> Option<&'p Policy> {
    if let Some(policy) = policies.get(name.get_ref()) {
        return Some(policy);
    }
    let message = format!("unknown policy {:?}", name.get_ref());
    let hint = if policies.is_empty() {
        "the file defines no [policy.NAME] table; add one or remove the key".to_string()
    } else {
        let known: Vec<String> = policies.keys().map(|known| format!("{known:?}")).collect();
        format!("use one of the defined policies: {}", known.join(", "))
    };
    diagnostics.report(name.span().start, key, message, &hint);
    None
}

fn database_policies(
    raw: &[Spanned<RawDatabasePolicy>],
    policies: &BTreeMap<String, Policy>,
    diagnostics: &mut Diagnostics,
) -> Vec<DatabasePolicy> {
    let mut entries = Vec::new();
    for entry in raw {
        let table = entry.get_ref();
        let key = "database_policies.databases";
        let databases = DatabaseSelection::from_patterns(&table.databases, key, diagnostics);
        let key = "database_policies.policy";
        let policy = named_policy(&table.policy, key, policies, diagnostics);
        if let (Some(databases), Some(policy)) = (databases, policy) {
            entries.push(DatabasePolicy {
                databases,
                policy: policy.clone(),
            });
        }
    }
    entries
}

fn instance_name(value: &Spanned<String>, diagnostics: &mut Diagnostics) -> Option<String> {
    let name = value.get_ref();
    if !is_valid_instance_name(name) {
        let message = format!("invalid instance name {name:?}");
        let hint = "start with a letter or digit and use only letters, digits, _, . and -";
        diagnostics.report(value.span().start, "name", message, hint);
        return None;
    }
    Some(name.clone())
}

fn host(value: &Spanned<String>, diagnostics: &mut Diagnostics) -> Option<String> {
    let host = value::text(diagnostics, "host", value)?;
    if host.contains('\\') {
        let message = format!("host {host:?} contains a named instance");
        let hint = "write only the host name and set port to the instance's TCP port, \
                    because bakfleet does not query the SQL Server Browser service";
        diagnostics.report(value.span().start, "host", message, hint);
        return None;
    }
    let ipv6 = host.parse::<std::net::Ipv6Addr>().is_ok();
    if host.contains(char::is_whitespace) || host.contains(':') && !ipv6 {
        let message = format!("invalid host {host:?}");
        let hint = "write a host name or IP address, and the port in `port`";
        diagnostics.report(value.span().start, "host", message, hint);
        return None;
    }
    Some(host)
}

fn auth(
    raw: &Spanned<RawAuth>,
    has_secrets_file: bool,
    diagnostics: &mut Diagnostics,
) -> Option<Auth> {
    let table = raw.get_ref();
    let kind = table.kind.get_ref();
    if kind != "sql" {
        let message = format!("unsupported auth kind {kind:?}");
        let hint = "use kind = \"sql\" with a SQL Server login; Windows logins are not \
                    supported yet";
        diagnostics.report(table.kind.span().start, "auth.kind", message, hint);
        return None;
    }
    let user = match &table.user {
        Some(user) => value::text(diagnostics, "auth.user", user),
        None => {
            let message = "SQL login has no user".to_string();
            let hint = "add user = \"LOGIN\"";
            diagnostics.report(raw.span().start, "auth.user", message, hint);
            None
        }
    };
    let password = password_ref(
        diagnostics,
        "auth.",
        raw.span().start,
        (table.password_env.as_ref(), table.password_secret.as_ref()),
        has_secrets_file,
    );
    Some(Auth::Sql {
        user: user?,
        password: password?,
    })
}

/// Reads a `tls` table over `inherited` (the `[defaults]` values, or the built-in ones
/// for `defaults.tls`); `key_prefix` is `defaults.` there and empty on an instance.
pub(crate) fn tls(
    raw: Option<&RawTls>,
    inherited: &Tls,
    base_dir: &Path,
    diagnostics: &mut Diagnostics,
    key_prefix: &str,
) -> Option<Tls> {
    let mut tls = inherited.clone();
    let Some(raw) = raw else {
        return Some(tls);
    };
    let mut valid = true;
    if let Some(encrypt) = &raw.encrypt {
        match parse_encrypt(encrypt.get_ref()) {
            Ok(mode) => tls.encrypt = mode,
            Err(hint) => {
                let message = format!("invalid encrypt mode {:?}", encrypt.get_ref());
                let key = format!("{key_prefix}tls.encrypt");
                diagnostics.report(encrypt.span().start, &key, message, hint);
                valid = false;
            }
        }
    }
    if let Some(ca_file) = &raw.ca_file {
        // TODO: check that ca_file, key_file and known_hosts exist and are readable.
        let key = format!("{key_prefix}tls.ca_file");
        tls.ca_file = value::local_path(diagnostics, &key, ca_file, base_dir);
        valid &= tls.ca_file.is_some();
    }
    if let Some(name) = &raw.host_name_in_certificate {
        let key = format!("{key_prefix}tls.host_name_in_certificate");
        tls.host_name_in_certificate = value::text(diagnostics, &key, name);
        valid &= tls.host_name_in_certificate.is_some();
    }
    if let Some(trust) = &raw.trust_server_certificate {
        tls.trust_server_certificate = *trust.get_ref();
        if tls.trust_server_certificate && raw.ca_file.is_some() {
            let message = "trust_server_certificate = true conflicts with ca_file".to_string();
            let hint = "remove one: ca_file checks the certificate against that CA, \
                        trust_server_certificate accepts any certificate";
            let key = format!("{key_prefix}tls.trust_server_certificate");
            diagnostics.report(trust.span().start, &key, message, hint);
            valid = false;
        } else if tls.trust_server_certificate {
            // A ca_file inherited from [defaults] no longer applies to this instance.
            tls.ca_file = None;
        }
    }
    valid.then_some(tls)
}

/// Parses an encrypt mode; the error is the hint, which names the new spelling of the
/// values older versions of bakfleet accepted.
fn parse_encrypt(text: &str) -> Result<Encrypt, &'static str> {
    match text {
        "strict" => Ok(Encrypt::Strict),
        "mandatory" => Ok(Encrypt::Mandatory),
        "optional" => Ok(Encrypt::Optional),
        "not_supported" => Ok(Encrypt::NotSupported),
        "required" => Err("use \"mandatory\", the ODBC Driver 18 name of this mode"),
        "off" => Err("use \"optional\", the ODBC Driver 18 name of this mode"),
        _ => Err("use strict, mandatory, optional or not_supported"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_name_rules() {
        for valid in ["sales-prod", "a", "9x", "db01.corp_b"] {
            assert!(is_valid_instance_name(valid), "{valid}");
        }
        for invalid in ["", "-a", ".a", "_a", "a b", "a/b", "sälj"] {
            assert!(!is_valid_instance_name(invalid), "{invalid}");
        }
    }
}
