//! `bakfleet check`: validate the fleet file without touching any server.

use std::path::Path;
use std::process::ExitCode;

use crate::backup::BackupType;
use crate::fleet::{Auth, Fleet, Secrets};

/// Loads and validates the fleet file, checks that every secret resolves, and prints a
/// summary. Exits non-zero when a secret is missing.
pub(crate) fn execute(fleet_path: &Path) -> anyhow::Result<ExitCode> {
    let fleet = Fleet::load(fleet_path)?;
    println!(
        "{}: read, {} instance(s)",
        fleet.source.display(),
        fleet.instances.len()
    );
    for warning in fleet.warnings() {
        println!("warning: {warning}");
    }

    let secrets = Secrets::load(&fleet.service)?;
    let mut missing = 0;
    for instance in &fleet.instances {
        let schedules: Vec<String> = BackupType::ALL
            .iter()
            .filter_map(|kind| {
                instance
                    .schedule
                    .for_type(*kind)
                    .map(|expression| format!("{kind} \"{expression}\""))
            })
            .collect();
        println!(
            "  {}  {}:{}  staging {}  policy {} ({})  schedules: {}",
            instance.name,
            instance.host,
            instance.port,
            instance.staging.describe(),
            instance.policy.name,
            instance.policy.time_zone,
            if schedules.is_empty() {
                "none".to_string()
            } else {
                schedules.join(", ")
            }
        );
        for entry in &instance.database_policies {
            println!(
                "    databases {}: policy {} ({})",
                entry.databases.include_patterns().join(", "),
                entry.policy.name,
                entry.policy.time_zone
            );
        }
        let Auth::Sql { password, .. } = &instance.auth;
        let context = format!("instance {} auth", instance.name);
        if let Err(error) = secrets.resolve(password, &context) {
            println!("  error: {error}");
            missing += 1;
        }
    }
    for (name, credential) in &fleet.credentials {
        let context = format!("credential {name}");
        if let Err(error) = secrets.resolve(&credential.password, &context) {
            println!("  error: {error}");
            missing += 1;
        }
    }
    if missing == 0 {
        println!("{}: valid", fleet.source.display());
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{}: {missing} secret(s) missing", fleet.source.display());
        Ok(ExitCode::FAILURE)
    }
}
