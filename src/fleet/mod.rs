//! The fleet inventory, `fleet.toml`: service settings, defaults, SMB credentials and
//! SQL Server instances, checked on load with errors that name file, line, column and key.

mod alerts;
mod databases;
mod drills;
mod error;
mod instance;
mod policy;
mod raw;
pub mod reference;
mod schedules;
mod secrets;
mod service;
mod staging;
mod value;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use alerts::{
    AlertEvent, Alerts, Email, SmtpTls, Webhook, WebhookFormat, DEFAULT_CHECK_INTERVAL,
    DEFAULT_MIN_INTERVAL,
};
pub use databases::{is_system_database, DatabaseSelection, SELECTION_KEYWORDS, SYSTEM_DATABASES};
pub use drills::Drills;
pub use error::{Diagnostic, FleetError, Position};
pub use instance::{
    is_valid_instance_name, Auth, Credential, DatabasePolicy, Encrypt, Instance, Tls,
};
pub use policy::{
    parse_duration, Encryption, Encryptor, Policy, PolicyDrill, Rpo, ENCRYPTION_ALGORITHMS,
    IMPLICIT_POLICY, MAX_BACKUP_FILES, MAX_TRANSFER_SIZE_LIMIT, MAX_TRANSFER_SIZE_STEP,
};
pub use schedules::{parse_cron, Schedules};
pub use secrets::{Secret, SecretRef, Secrets};
pub use service::{Defaults, Retention, Service, DEFAULT_MIN_STORE_FREE_BYTES};
pub use staging::Staging;

use error::Diagnostics;
use instance::InstanceContext;
use raw::{RawFleet, RawInstance};

/// The checked contents of one fleet.toml, with defaults applied to every instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fleet {
    /// The file as the caller named it; messages use this form.
    pub source: PathBuf,
    pub service: Service,
    pub defaults: Defaults,
    /// `[policy.NAME]` tables by name, each with `[defaults]` applied.
    pub policies: BTreeMap<String, Policy>,
    /// SMB logins by the name that `staging.credential` uses.
    pub credentials: BTreeMap<String, Credential>,
    /// Instances in file order.
    pub instances: Vec<Instance>,
    /// Restore drills; `None` when the file has no `[drill]` table.
    pub drills: Option<Drills>,
    /// Alert targets and events; `None` when the file has no `[alerts]` table.
    pub alerts: Option<Alerts>,
}

impl Fleet {
    /// Reads and checks the fleet file at `path`.
    ///
    /// # Errors
    /// `FleetError::Read` when the file cannot be read; `FleetError::Invalid` with every
    /// problem found, each with line, column and key.
    pub fn load(path: &Path) -> Result<Fleet, FleetError> {
        let text = std::fs::read_to_string(path).map_err(|cause| FleetError::Read {
            path: path.to_path_buf(),
            cause,
        })?;
        Fleet::parse(&text, path)
    }

    /// Checks fleet.toml text. `source` names the file in messages, and relative paths
    /// in the text are resolved against its directory.
    ///
    /// # Errors
    /// `FleetError::Invalid` with every problem found, in file order. A TOML syntax or
    /// schema error (unknown key, wrong type, missing key) stops the check at that error,
    /// because the later checks need a complete schema.
    pub fn parse(text: &str, source: &Path) -> Result<Fleet, FleetError> {
        let raw: RawFleet = toml::from_str(text).map_err(|error| {
            let diagnostic = error::diagnostic_from_toml(source, text, &error);
            FleetError::Invalid(vec![diagnostic])
        })?;
        let base_dir = base_directory(source);
        let mut diagnostics = Diagnostics::new(source, text);

        let service = Service::from_raw(raw.service.as_ref(), &base_dir, &mut diagnostics);
        let has_secrets_file = service.secrets_file.is_some();
        let defaults = Defaults::from_raw(raw.defaults.as_ref(), &base_dir, &mut diagnostics);
        let policies = read_policies(&raw.policies, &defaults.policy, &mut diagnostics);
        let default_policy = match raw.defaults.as_ref().and_then(|d| d.policy.as_ref()) {
            Some(name) => {
                let key = "defaults.policy";
                instance::named_policy(name, key, &policies, &mut diagnostics)
                    .unwrap_or(&defaults.policy)
            }
            None => &defaults.policy,
        };
        let credentials = read_credentials(&raw, has_secrets_file, &mut diagnostics);
        let credential_names: Vec<String> = raw
            .credentials
            .keys()
            .map(|name| name.get_ref().clone())
            .collect();
        let credential_exists = |name: &str| credential_names.iter().any(|known| known == name);
        let context = InstanceContext {
            base_dir: &base_dir,
            defaults: &defaults,
            default_policy,
            policies: &policies,
            credential_exists: &credential_exists,
            has_secrets_file,
        };
        if raw.drill.is_none() {
            drills::report_policy_drills_without_table(&raw, &mut diagnostics);
        }
        let instances = read_instances(raw.instances, &context, &mut diagnostics);
        let drills = raw
            .drill
            .as_ref()
            .and_then(|drill| Drills::from_raw(drill, &instances, &mut diagnostics));
        let alerts = raw
            .alerts
            .as_ref()
            .map(|alerts| Alerts::from_raw(alerts, &base_dir, has_secrets_file, &mut diagnostics));

        let fleet = Fleet {
            source: source.to_path_buf(),
            service,
            defaults,
            policies,
            credentials,
            instances,
            drills,
            alerts,
        };
        diagnostics.finish(fleet)
    }

    /// Finds the instance named `name`, compared exactly.
    pub fn instance(&self, name: &str) -> Option<&Instance> {
        self.instances.iter().find(|instance| instance.name == name)
    }

    /// Settings that load but weaken security or do nothing, one sentence each, for
    /// `check` and the start-up log.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        for instance in &self.instances {
            warnings.extend(instance_warnings(instance));
        }
        for name in self.credentials.keys() {
            let used = self.instances.iter().any(|instance| {
                matches!(&instance.staging, Staging::Smb { credential, .. } if credential == name)
            });
            if !used {
                warnings.push(format!(
                    "{}: credential {name:?} is not used by any instance",
                    self.source.display()
                ));
            }
        }
        warnings
    }
}

fn instance_warnings(instance: &Instance) -> Vec<String> {
    let mut warnings = Vec::new();
    let name = &instance.name;
    for warning in instance.tls_warnings() {
        warnings.push(format!("instance {name:?}: {warning}"));
    }
    for (key, entry, keyword) in instance.databases.keyword_lookalikes() {
        warnings.push(format!(
            "instance {name:?}: databases.{key} entry {entry:?} is not the keyword {keyword}, \
             so it selects only a database named {entry}; write {keyword} if that is what \
             you meant"
        ));
    }
    let schedule = &instance.schedule;
    if schedule.full.is_none() && schedule.diff.is_none() && schedule.log.is_none() {
        warnings.push(format!(
            "instance {name:?}: every schedule is off, so it is never backed up"
        ));
    }
    warnings
}

/// Returns the directory that relative paths in `source` are resolved against. It is
/// made absolute so that the paths stay valid if the working directory changes later.
fn base_directory(source: &Path) -> PathBuf {
    let parent = source.parent().unwrap_or(Path::new(""));
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    std::path::absolute(parent).unwrap_or_else(|_| parent.to_path_buf())
}

fn read_credentials(
    raw: &RawFleet,
    has_secrets_file: bool,
    diagnostics: &mut Diagnostics,
) -> BTreeMap<String, Credential> {
    let mut credentials = BTreeMap::new();
    for (name, table) in &raw.credentials {
        let found = Credential::from_raw(name.get_ref(), table, has_secrets_file, diagnostics);
        if let Some(credential) = found {
            credentials.insert(name.get_ref().clone(), credential);
        }
    }
    credentials
}

fn read_policies(
    raw: &BTreeMap<toml::Spanned<String>, toml::Spanned<raw::RawPolicy>>,
    base: &Policy,
    diagnostics: &mut Diagnostics,
) -> BTreeMap<String, Policy> {
    let mut policies = BTreeMap::new();
    for (name, table) in raw {
        let text = name.get_ref();
        if text.trim().is_empty() || text == IMPLICIT_POLICY {
            let message = format!("invalid policy name {text:?}");
            let hint = "\"defaults\" names the policy that the [defaults] keys form; give \
                        the table another, non-empty name";
            diagnostics.report(name.span().start, &format!("policy.{text}"), message, hint);
            continue;
        }
        let prefix = format!("policy.{text}.");
        let mut policy = base.overridden(table.get_ref(), diagnostics, &prefix);
        policy.name = text.clone();
        policies.insert(text.clone(), policy);
    }
    policies
}

fn read_instances(
    raw_instances: Vec<toml::Spanned<RawInstance>>,
    context: &InstanceContext<'_>,
    diagnostics: &mut Diagnostics,
) -> Vec<Instance> {
    if raw_instances.is_empty() {
        let message = "the file defines no instance".to_string();
        let hint = "add an [[instance]] table with name, host, auth and staging";
        diagnostics.report(0, "instance", message, hint);
        return Vec::new();
    }
    // Names are compared without case because they become directory names, and
    // Windows and SMB shares treat `Sales` and `sales` as the same directory.
    let mut seen: Vec<(String, usize)> = Vec::new();
    let mut instances = Vec::new();
    for raw in raw_instances {
        let raw = raw.into_inner();
        let name_span = raw.name.span();
        let name = raw.name.get_ref().clone();
        diagnostics.set_instance(Some(name.clone()));
        let folded = name.to_lowercase();
        if let Some((_, first_offset)) = seen.iter().find(|(known, _)| *known == folded) {
            let line = diagnostics.line_of(*first_offset);
            let message =
                format!("instance name {name:?} is already used by the instance at line {line}");
            let hint = "give each instance a unique name (compared without case)";
            diagnostics.report(name_span.start, "name", message, hint);
        } else {
            seen.push((folded, name_span.start));
        }
        if let Some(instance) = Instance::from_raw(raw, context, diagnostics) {
            instances.push(instance);
        }
    }
    diagnostics.set_instance(None);
    instances
}
