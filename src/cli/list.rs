//! `bakfleet list`: every catalogued database and its last good backup per type.

use std::path::Path;
use std::process::ExitCode;

use time::OffsetDateTime;

use super::output::human_bytes;
use crate::catalog::{Catalog, LastBackup, LastRun};
use crate::fleet::Fleet;

/// Prints one line per database known to the catalogue.
pub(crate) async fn execute(fleet_path: &Path) -> anyhow::Result<ExitCode> {
    let fleet = Fleet::load(fleet_path)?;
    let catalog = Catalog::open_existing(&fleet.service.catalog).await?;
    let mut overview = catalog.fleet_overview().await?;
    // A name known only from runs, such as a misspelled `bakfleet run`, is not a
    // database unless the fleet file names it. Its failed run stays on the runs page.
    overview.retain(|entry| {
        !entry.is_known_only_from_runs()
            || fleet
                .instance(&entry.instance)
                .is_some_and(|instance| crate::protection::is_configured(instance, &entry.database))
    });
    if overview.is_empty() {
        println!(
            "the catalogue {} holds no backups yet; `bakfleet run` takes some",
            fleet.service.catalog.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let now = OffsetDateTime::now_utc();
    println!(
        "{:<16} {:<24} {:<12} {:<24} {:<24} {:<24} last run",
        "instance", "database", "recovery", "full", "diff", "log"
    );
    for database in overview {
        let last_run = database
            .last_run
            .map(|run| describe_run(&run))
            .unwrap_or_else(|| "-".to_string());
        println!(
            "{:<16} {:<24} {:<12} {:<24} {:<24} {:<24} {last_run}",
            database.instance,
            format!("[{}]", database.database),
            database.recovery_model.as_deref().unwrap_or("-"),
            describe(database.last_full.as_ref(), now),
            describe(database.last_diff.as_ref(), now),
            describe(database.last_log.as_ref(), now),
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// "log→full succeeded (done): log changed to full: ...", or "log not applicable: ...".
fn describe_run(run: &LastRun) -> String {
    let types = if run.requested_type == run.backup_type {
        run.backup_type.to_string()
    } else {
        format!("{}→{}", run.requested_type, run.backup_type)
    };
    let status = match run.skip_kind {
        Some(kind) => kind.label(),
        None => run.status.as_str(),
    };
    let mut text = format!("{types} {status} ({})", run.phase);
    if let Some(reason) = &run.reason {
        // A skip reason may start with its own label ("not applicable: ..."), which the
        // status already shows.
        let reason = reason
            .strip_prefix(status)
            .and_then(|rest| rest.strip_prefix(": "))
            .unwrap_or(reason);
        text.push_str(": ");
        text.push_str(reason);
    }
    text
}

/// "#12 3h ago 256.0 MiB", or "-" when there is none.
fn describe(backup: Option<&LastBackup>, now: OffsetDateTime) -> String {
    match backup {
        Some(backup) => format!(
            "#{} {} ago {}",
            backup.id,
            age(now - backup.finished_at),
            human_bytes(backup.size_bytes)
        ),
        None => "-".to_string(),
    }
}

/// Formats a duration in its largest whole unit: 45s, 12m, 3h, 2d.
pub(crate) fn age(elapsed: time::Duration) -> String {
    let seconds = elapsed.whole_seconds().max(0);
    match seconds {
        0..=59 => format!("{seconds}s"),
        60..=3599 => format!("{}m", seconds / 60),
        3600..=86_399 => format!("{}h", seconds / 3600),
        _ => format!("{}d", seconds / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::backup::BackupType;
    use crate::catalog::{RunStatus, SkipKind};

    fn last_run(requested: BackupType, taken: BackupType, status: RunStatus) -> LastRun {
        LastRun {
            id: 7,
            backup_type: taken,
            requested_type: requested,
            reason: None,
            status,
            skip_kind: None,
            phase: "done".to_string(),
            error: None,
            started_at: datetime!(2026-06-01 00:30 UTC),
            finished_at: None,
        }
    }

    #[test]
    fn describe_run_shows_promotion() {
        let run = LastRun {
            reason: Some("log changed to full: no log chain".to_string()),
            ..last_run(BackupType::Log, BackupType::Full, RunStatus::Succeeded)
        };
        assert_eq!(
            describe_run(&run),
            "log→full succeeded (done): log changed to full: no log chain"
        );
    }

    #[test]
    fn describe_run_shows_not_applicable() {
        let run = LastRun {
            skip_kind: Some(SkipKind::NotApplicable),
            phase: "preflight".to_string(),
            ..last_run(BackupType::Log, BackupType::Log, RunStatus::Skipped)
        };
        assert_eq!(describe_run(&run), "log not applicable (preflight)");
    }

    #[test]
    fn describe_run_shows_label_once() {
        let run = LastRun {
            skip_kind: Some(SkipKind::NotApplicable),
            reason: Some("not applicable: the database uses SIMPLE".to_string()),
            phase: "preflight".to_string(),
            ..last_run(BackupType::Log, BackupType::Log, RunStatus::Skipped)
        };
        assert_eq!(
            describe_run(&run),
            "log not applicable (preflight): the database uses SIMPLE"
        );
    }
}
