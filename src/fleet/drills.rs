//! The `[drill]` table: where restore drills run, when, and which databases they cover.

use toml::Spanned;

use super::databases::DatabaseSelection;
use super::error::Diagnostics;
use super::raw::{RawDrill, RawFleet, RawPolicyDrill};
use super::schedules::validate_cron;
use super::Instance;

/// Restore drill settings. Without a `[drill]` table no drill runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drills {
    /// The fleet instance that restores the copies. It must not be a production server:
    /// a drill uses its disk, memory and CPU for as long as the restore and CHECKDB take.
    pub sandbox: String,
    /// The store root as the sandbox names it, such as `\\backup01\bakfleet-store` or
    /// `/mnt/bakfleet-store`: the DBA shares the store to the sandbox, read-only.
    pub store_path: String,
    /// The sandbox folder for the restored files; the sandbox's default data folder when
    /// `None`.
    pub data_dir: Option<String>,
    /// When scheduled drills run (6-field cron, UTC); `None` runs drills only on demand.
    pub schedule: Option<String>,
    /// Instances whose databases are drilled; every instance but the sandbox when empty.
    pub instances: Vec<String>,
    /// Databases drilled on those instances; `USER_DATABASES` by default.
    pub databases: DatabaseSelection,
}

impl Drills {
    /// Returns whether scheduled drills cover `database` of `instance`.
    pub fn covers(&self, instance: &str, database: &str) -> bool {
        let instance_listed = if self.instances.is_empty() {
            instance != self.sandbox
        } else {
            self.instances.iter().any(|name| name == instance)
        };
        instance_listed && self.databases.selects(database)
    }

    /// Reads `[drill]`; reports a sandbox or listed instance that is not in the fleet, an
    /// empty store path and an invalid schedule.
    pub(crate) fn from_raw(
        raw: &RawDrill,
        instances: &[Instance],
        diagnostics: &mut Diagnostics,
    ) -> Option<Drills> {
        let known = || {
            instances
                .iter()
                .map(|instance| instance.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let exists = |name: &str| instances.iter().any(|instance| instance.name == name);
        let mut valid = true;
        if !exists(raw.sandbox.get_ref()) {
            let message = format!(
                "sandbox {:?} is not an instance of this file",
                raw.sandbox.get_ref()
            );
            let hint = format!("name one of: {}", known());
            diagnostics.report(raw.sandbox.span().start, "drill.sandbox", message, &hint);
            valid = false;
        }
        for name in raw.instances.iter().flatten() {
            if !exists(name.get_ref()) {
                let message = format!("instance {:?} is not in this file", name.get_ref());
                let hint = format!("name one of: {}", known());
                diagnostics.report(name.span().start, "drill.instances", message, &hint);
                valid = false;
            }
        }
        let store_path = raw.store_path.get_ref().trim();
        if store_path.is_empty() {
            diagnostics.report(
                raw.store_path.span().start,
                "drill.store_path",
                "store_path is empty".to_string(),
                "write the store root as the sandbox names it, e.g. '\\\\backup01\\bakfleet-store'",
            );
            valid = false;
        }
        let schedule = raw
            .schedule
            .as_ref()
            .and_then(|value| read_schedule(value, diagnostics, &mut valid));
        let databases = DatabaseSelection::from_raw(raw.databases.as_ref(), diagnostics);
        valid.then(|| Drills {
            sandbox: raw.sandbox.get_ref().clone(),
            store_path: store_path.to_string(),
            data_dir: raw.data_dir.clone().filter(|dir| !dir.trim().is_empty()),
            schedule,
            instances: raw
                .instances
                .iter()
                .flatten()
                .map(|name| name.get_ref().clone())
                .collect(),
            databases,
        })
    }
}

/// Reports each `drill` key of `[defaults]` and `[policy.NAME]` in a file without a
/// `[drill]` table, which would otherwise be ignored because no sandbox is named.
pub(crate) fn report_policy_drills_without_table(raw: &RawFleet, diagnostics: &mut Diagnostics) {
    let defaults = raw
        .defaults
        .iter()
        .filter_map(|defaults| defaults.drill.as_ref())
        .map(|drill| ("defaults.drill".to_string(), drill));
    let policies = raw.policies.iter().filter_map(|(name, policy)| {
        let drill = policy.get_ref().drill.as_ref()?;
        Some((format!("policy.{}.drill", name.get_ref()), drill))
    });
    for (key, drill) in defaults.chain(policies) {
        report_missing_table(diagnostics, &key, drill);
    }
}

fn report_missing_table(diagnostics: &mut Diagnostics, key: &str, drill: &Spanned<RawPolicyDrill>) {
    if drill.get_ref().enabled == Some(false) {
        return;
    }
    diagnostics.report(
        drill.span().start,
        key,
        "a policy drill needs a [drill] table, which names the sandbox instance".to_string(),
        "add [drill] with sandbox and store_path, or remove the key",
    );
}

fn read_schedule(
    value: &Spanned<String>,
    diagnostics: &mut Diagnostics,
    valid: &mut bool,
) -> Option<String> {
    let expression = value.get_ref().trim();
    if expression.is_empty() || expression.eq_ignore_ascii_case("off") {
        return None;
    }
    match validate_cron(expression) {
        Ok(()) => Some(expression.to_string()),
        Err(reason) => {
            let message = format!("invalid cron expression {expression:?}: {reason}");
            let hint = "write 6 fields: second minute hour day-of-month month day-of-week, \
                        e.g. \"0 0 3 * * Sat\" for 03:00 every Saturday";
            diagnostics.report(value.span().start, "drill.schedule", message, hint);
            *valid = false;
            None
        }
    }
}
