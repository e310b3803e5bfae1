//! `bakfleet verify`: the store against the catalogue, both directions, with exit codes
//! that monitoring systems read (0 ok, 1 warning, 2 critical, 3 unknown).

use std::path::Path;
use std::process::ExitCode;

use super::output::human_bytes;
use crate::catalog::Catalog;
use crate::chain::format_time;
use crate::fleet::Fleet;
use crate::integrity::{self, Depth, Report, Scope};
use crate::store::Store;

/// Exit code when orphan files were found and nothing worse.
const EXIT_WARNING: u8 = 1;
/// Exit code when a catalogued backup is missing, changed or damaged.
const EXIT_CRITICAL: u8 = 2;
/// Exit code when the check itself could not run.
const EXIT_UNKNOWN: u8 = 3;

/// Runs the check and prints one line per finding, then a summary line.
pub(crate) async fn execute(fleet_path: &Path, scope: Scope, depth: Depth) -> ExitCode {
    match check(fleet_path, &scope, depth).await {
        Ok(report) => {
            print_report(&report, depth);
            exit_code(&report)
        }
        Err(error) => {
            println!("UNKNOWN: the store check could not run: {error:#}");
            ExitCode::from(EXIT_UNKNOWN)
        }
    }
}

async fn check(fleet_path: &Path, scope: &Scope, depth: Depth) -> anyhow::Result<Report> {
    let fleet = Fleet::load(fleet_path)?;
    let catalog = Catalog::open_existing(&fleet.service.catalog).await?;
    check_scope_exists(&fleet, &catalog, scope).await?;
    let store = Store::open(&fleet.service.store_dir)?;
    Ok(integrity::check(&catalog, &store, scope, depth).await?)
}

/// Rejects a scope that names an instance or database with no catalogued backup, so that a
/// mistyped name is not reported as a clean store. An instance removed from the fleet file
/// whose backups are still catalogued is checked, with a warning.
async fn check_scope_exists(fleet: &Fleet, catalog: &Catalog, scope: &Scope) -> anyhow::Result<()> {
    let Some(instance) = scope.instance.as_deref() else {
        return Ok(());
    };
    let database = scope.database.as_deref();
    let backups = catalog
        .backups_in_scope_with_pruned(Some(instance), database)
        .await?;
    if !backups.is_empty() {
        if fleet.instance(instance).is_none() {
            tracing::warn!(%instance, "instance not found in the fleet file; checking its catalogued backups anyway");
        }
        return Ok(());
    }
    match database {
        Some(database) => anyhow::bail!(
            "the catalogue contains no backup of database [{database}] on instance {instance}; \
             check the spelling (names are case-sensitive here): `bakfleet list` shows every \
             catalogued database"
        ),
        None => anyhow::bail!(
            "the catalogue contains no backup of instance {instance}; check the spelling: \
             `bakfleet list` shows every catalogued instance and database"
        ),
    }
}

fn print_report(report: &Report, depth: Depth) {
    for finding in &report.findings {
        let level = if finding.is_critical() {
            "CRITICAL"
        } else {
            "WARNING"
        };
        println!("{level}: {finding}");
    }
    for cleared in &report.cleared {
        println!(
            "OK: {}: the file matches the catalogue again; the failed-verification mark set \
             on {} is cleared",
            cleared.backup,
            format_time(&cleared.found_at)
        );
    }
    if report.kept_marks > 0 {
        println!(
            "NOTE: {} backups keep their failed-verification mark: their files matched, but \
             this check does not read what found the problem; run `bakfleet verify \
             --structure` to clear the marks of files that match in every respect",
            report.kept_marks
        );
    }
    if report.critical() > 0 {
        println!(
            "The damaged or missing backups are marked as failed verification, so \
             restore plans, drills, downloads and the newest-backup summaries leave them out. \
             Put a good copy of each file back and run `bakfleet verify --structure` to \
             clear the mark, or \
             take a new full backup with `bakfleet run INSTANCE DATABASE --type full`."
        );
    }
    let checked = match depth {
        Depth::Size => "sizes",
        Depth::Hash => "sizes and SHA-256",
        Depth::Structure => "sizes, SHA-256 and backup structure",
    };
    let status = if report.critical() > 0 {
        "CRITICAL"
    } else if report.orphans() > 0 {
        "WARNING"
    } else {
        "OK"
    };
    println!(
        "{status}: {} backups checked ({checked}, {}), {} files in the store; {} damaged or \
         missing, {} not catalogued",
        report.backups,
        human_bytes(report.bytes),
        report.store_files,
        report.critical(),
        report.orphans()
    );
}

fn exit_code(report: &Report) -> ExitCode {
    if report.critical() > 0 {
        ExitCode::from(EXIT_CRITICAL)
    } else if report.orphans() > 0 {
        ExitCode::from(EXIT_WARNING)
    } else {
        ExitCode::SUCCESS
    }
}
