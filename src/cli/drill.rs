//! `bakfleet drill`: restores the latest chain of one database on the sandbox instance,
//! checks it with DBCC CHECKDB and drops the copy.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use crate::catalog::Catalog;
use crate::drill::{self, DrillContext, DrillReport};
use crate::fleet::{Fleet, Secrets};

/// Runs one drill and prints its outcome; exits 1 when the drill failed.
pub(crate) async fn execute(
    fleet_path: &Path,
    instance: &str,
    database: &str,
) -> anyhow::Result<ExitCode> {
    let fleet = Fleet::load(fleet_path)?;
    let Some(settings) = &fleet.drills else {
        anyhow::bail!(
            "{} has no [drill] table; add one with the sandbox instance and the store path \
             as the sandbox names it",
            fleet.source.display()
        );
    };
    let secrets = Secrets::load(&fleet.service)?;
    let catalog = Catalog::open(&fleet.service.catalog)
        .await
        .with_context(|| {
            format!(
                "cannot open the catalogue {}",
                fleet.service.catalog.display()
            )
        })?;
    let ctx = DrillContext {
        fleet: &fleet,
        secrets: &secrets,
        catalog: &catalog,
        settings,
    };
    let report = drill::run(&ctx, instance, database, "manual").await?;
    print_report(instance, database, &settings.sandbox, &report);
    Ok(if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_report(instance: &str, database: &str, sandbox: &str, report: &DrillReport) {
    let seconds = report.duration_ms as f64 / 1000.0;
    let outcome = match &report.error {
        None => "restored and CHECKDB passed".to_string(),
        Some(error) => format!("FAILED in {}: {error}", report.phase),
    };
    println!(
        "drill {} of [{database}] on {instance}: {} backup(s) restored on {sandbox} as \
         [{}]: {outcome} ({seconds:.1} s)",
        report.drill_id,
        report.backup_ids.len(),
        report.restored_as
    );
    match &report.drop_error {
        None => println!("the copy [{}] was dropped", report.restored_as),
        Some(error) => println!(
            "WARNING: the copy [{}] is still on {sandbox}: {error}",
            report.restored_as
        ),
    }
}
