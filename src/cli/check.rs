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
    missing += print_alerts(&fleet, &secrets);
    if missing == 0 {
        println!("{}: valid", fleet.source.display());
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{}: {missing} secret(s) missing", fleet.source.display());
        Ok(ExitCode::FAILURE)
    }
}

/// Prints the alert targets and events, and returns the number of secrets that do not
/// resolve. Webhooks are named by scheme and host, because their URLs may carry a token.
fn print_alerts(fleet: &Fleet, secrets: &Secrets) -> usize {
    let Some(alerts) = &fleet.alerts else {
        println!("  alerts: none");
        return 0;
    };
    let events: Vec<&str> = alerts.events.iter().map(|event| event.as_str()).collect();
    println!(
        "  alerts: events {}, at most one per database and event every {}s, checked every {}s",
        if events.is_empty() {
            "none".to_string()
        } else {
            events.join(", ")
        },
        alerts.min_interval.as_secs(),
        alerts.check_interval.as_secs()
    );
    let mut missing = 0;
    for webhook in &alerts.webhooks {
        println!("    webhook {} ({:?})", webhook.describe(), webhook.format);
        for (name, source) in &webhook.headers {
            let context = format!("alert webhook header {name}");
            if let Err(error) = secrets.resolve(source, &context) {
                println!("  error: {error}");
                missing += 1;
            }
        }
    }
    if let Some(email) = &alerts.email {
        println!(
            "    e-mail via {}:{} ({:?}) from {} to {}",
            email.host,
            email.port,
            email.tls,
            email.from,
            email.to.join(", ")
        );
        if let Some((_, source)) = &email.login {
            if let Err(error) = secrets.resolve(source, "alerts.email password") {
                println!("  error: {error}");
                missing += 1;
            }
        }
    }
    missing
}
