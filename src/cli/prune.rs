//! `bakfleet prune [--dry-run]`: applies retention to every catalogued database, and
//! the daily prune that `serve` runs.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;

use super::output::human_bytes;
use crate::catalog::{BackupRow, Catalog, CatalogError};
use crate::chain::ChainBackup;
use crate::fleet::{Fleet, Secrets};
use crate::leftovers::{self, LeftoverLine, LeftoverOutcome};
use crate::restore_plan::disk_path;
use crate::retention::{self, Action, Reason};

/// Time between two prunes of `serve`.
const DAILY: Duration = Duration::from_secs(24 * 60 * 60);

/// The prune outcome of one backup, as printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PruneLine {
    pub backup_id: i64,
    pub instance: String,
    pub database: String,
    pub backup_type: String,
    pub store_path: String,
    pub size_bytes: u64,
    pub action: PruneAction,
    pub reason: String,
}

/// The outcome for one backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PruneAction {
    Keep,
    /// Retention deletes it; with `--dry-run` nothing changed.
    WouldDelete,
    Deleted,
    /// Retention would delete it, but its file is outside the store (imported in place),
    /// so bakfleet leaves it alone.
    OutsideStore,
}

/// The result of one prune over the whole catalogue.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PruneReport {
    pub lines: Vec<PruneLine>,
    /// Databases with backups whose instance is no longer in the fleet file, so no
    /// retention applies; their backups are kept.
    pub skipped_databases: Vec<String>,
    /// Backups whose half-done prune was finished first.
    pub finished_prunes: usize,
}

/// Error of a prune.
#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("cannot delete store file {path} of backup #{backup_id}: {source}; the backup is already marked pruned, and the next prune retries the deletion")]
    DeleteFile {
        backup_id: i64,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Prints one line per backup and a summary.
pub(crate) async fn execute(fleet_path: &Path, dry_run: bool) -> anyhow::Result<ExitCode> {
    let fleet = Fleet::load(fleet_path)?;
    let catalog = Catalog::open(&fleet.service.catalog).await?;
    let report = prune(&catalog, &fleet, OffsetDateTime::now_utc(), dry_run).await?;

    if report.finished_prunes > 0 {
        println!(
            "finished {} prune(s) left half-done by an earlier run",
            report.finished_prunes
        );
    }
    for line in &report.lines {
        println!(
            "{:<13} #{:<6} {:<4} {:<16} {:<24} {:>10}  {}  ({})",
            action_label(line.action),
            line.backup_id,
            line.backup_type,
            line.instance,
            format!("[{}]", line.database),
            human_bytes(line.size_bytes),
            line.store_path,
            line.reason
        );
    }
    for database in &report.skipped_databases {
        println!(
            "skipped {database}: its instance is not in the fleet file, so no retention applies"
        );
    }
    print_summary(&report, dry_run);
    print_staged_leftovers(&catalog).await?;
    let secrets = Secrets::load(&fleet.service)?;
    let staged = leftovers::clean(&fleet, &secrets, OffsetDateTime::now_utc(), dry_run).await;
    print_staged_cleanup(&staged, dry_run);
    Ok(ExitCode::SUCCESS)
}

/// Prints one line per staged file deleted (or to delete) and per staging folder that
/// could not be read.
fn print_staged_cleanup(lines: &[LeftoverLine], dry_run: bool) {
    for line in lines {
        let age = line
            .age
            .map(|age| format!("{} days old", age.as_secs() / 86_400))
            .unwrap_or_default();
        match &line.outcome {
            LeftoverOutcome::Deleted => {
                println!(
                    "deleted staged file {} on {} ({age})",
                    line.path, line.instance
                )
            }
            LeftoverOutcome::WouldDelete => println!(
                "would delete staged file {} on {} ({age})",
                line.path, line.instance
            ),
            LeftoverOutcome::Failed(reason) => println!(
                "staged file clean-up failed for {} on {}: {reason}",
                line.path, line.instance
            ),
        }
    }
    let removed = lines
        .iter()
        .filter(|line| !matches!(line.outcome, LeftoverOutcome::Failed(_)))
        .count();
    let verb = if dry_run { "would delete" } else { "deleted" };
    println!("staged files left by failed runs: {verb} {removed}");
}

/// Applies retention to every catalogued database.
///
/// Order per deleted backup: the catalogue marks it pruned (from then on it no longer
/// counts as restorable), then the store file is deleted and its directory synced, then
/// the deletion is recorded. A crash in between leaves a pruned row whose file may still
/// exist, never a restorable row without its file; the next prune finishes it first.
///
/// # Errors
/// A catalogue error, or a store file that cannot be deleted.
pub async fn prune(
    catalog: &Catalog,
    fleet: &Fleet,
    now: OffsetDateTime,
    dry_run: bool,
) -> Result<PruneReport, PruneError> {
    let store_root = &fleet.service.store_dir;
    let mut report = PruneReport::default();
    if !dry_run {
        report.finished_prunes = finish_unfinished_prunes(catalog, store_root, now).await?;
    }

    for database in catalog.catalogued_databases().await? {
        let Some(instance) = fleet.instance(&database.instance) else {
            report
                .skipped_databases
                .push(format!("{}/[{}]", database.instance, database.database));
            continue;
        };
        let rows = catalog
            .restorable_backups(&database.instance, &database.database)
            .await?;
        let backups: Vec<ChainBackup> = rows.iter().map(ChainBackup::from).collect();
        let verdicts = retention::evaluate(&backups, instance.retention, now);
        // Backups that failed verification count for no kept chain, and go once they are
        // older than every kept backup.
        let failed_rows: Vec<BackupRow> = catalog
            .failed_backups(Some(&database.instance), Some(&database.database))
            .await?
            .into_iter()
            .map(|failed| failed.backup)
            .collect();
        let failed: Vec<ChainBackup> = failed_rows.iter().map(ChainBackup::from).collect();
        let failed_verdicts = retention::evaluate_failed(&failed, &backups, &verdicts);
        let decided = rows
            .iter()
            .zip(verdicts)
            .chain(failed_rows.iter().zip(failed_verdicts));
        for (row, verdict) in decided {
            let action = apply(
                catalog,
                store_root,
                row,
                verdict.action,
                verdict.reason,
                now,
                dry_run,
            )
            .await?;
            report.lines.push(PruneLine {
                backup_id: row.id,
                instance: row.instance.clone(),
                database: row.database.clone(),
                backup_type: row.backup_type.to_string(),
                store_path: row.store_path.clone(),
                size_bytes: row.size_bytes,
                action,
                reason: verdict.reason.to_string(),
            });
        }
    }
    Ok(report)
}

/// Runs [`prune`] once a day until the task is dropped; errors are logged.
pub async fn run_daily(contexts: tokio::sync::watch::Receiver<crate::job::JobContext>) {
    let mut interval = tokio::time::interval(DAILY);
    loop {
        interval.tick().await;
        // Each day's prune applies the retention of the fleet file in force then.
        let (catalog, fleet) = {
            let ctx = contexts.borrow();
            (ctx.catalog.clone(), ctx.fleet.clone())
        };
        match Secrets::load(&fleet.service) {
            Ok(secrets) => {
                let staged =
                    leftovers::clean(&fleet, &secrets, OffsetDateTime::now_utc(), false).await;
                tracing::info!(
                    files = staged.len(),
                    "daily clean-up of staged files finished"
                );
            }
            Err(error) => tracing::error!(%error, "daily clean-up of staged files skipped"),
        }
        prune_run_logs(
            &catalog,
            fleet.service.run_log_days,
            OffsetDateTime::now_utc(),
        )
        .await;
        match prune(&catalog, &fleet, OffsetDateTime::now_utc(), false).await {
            Ok(report) => {
                let deleted = report
                    .lines
                    .iter()
                    .filter(|line| line.action == PruneAction::Deleted)
                    .count();
                tracing::info!(
                    deleted,
                    backups = report.lines.len(),
                    "daily prune finished"
                );
            }
            Err(error) => tracing::error!(%error, "daily prune failed"),
        }
    }
}

/// Deletes the logs of succeeded and skipped runs older than `days`, and of other runs
/// older than [`crate::run_log::KEEP_FAILED_DAYS`] or `days`, whichever is longer.
async fn prune_run_logs(catalog: &Catalog, days: u64, now: OffsetDateTime) {
    let days_ago = |days: u64| now - time::Duration::days(i64::try_from(days).unwrap_or(36_500));
    let before = days_ago(days);
    let failed_before = days_ago(days.max(crate::run_log::KEEP_FAILED_DAYS));
    match catalog.prune_run_logs(before, failed_before).await {
        Ok(lines) => tracing::info!(lines, "daily prune of run logs finished"),
        Err(error) => tracing::error!(%error, "daily prune of run logs failed"),
    }
}

async fn apply(
    catalog: &Catalog,
    store_root: &Path,
    row: &BackupRow,
    action: Action,
    reason: Reason,
    now: OffsetDateTime,
    dry_run: bool,
) -> Result<PruneAction, PruneError> {
    if action == Action::Keep {
        return Ok(PruneAction::Keep);
    }
    if Path::new(&row.store_path).is_absolute() {
        return Ok(PruneAction::OutsideStore);
    }
    if dry_run {
        return Ok(PruneAction::WouldDelete);
    }
    catalog
        .mark_pruned(row.id, &reason.to_string(), now)
        .await?;
    delete_store_files(catalog, store_root, row).await?;
    catalog.finish_prune(row.id, now).await?;
    tracing::info!(
        instance = %row.instance,
        database = %row.database,
        backup_id = row.id,
        store_path = %row.store_path,
        %reason,
        "pruned backup"
    );
    Ok(PruneAction::Deleted)
}

async fn finish_unfinished_prunes(
    catalog: &Catalog,
    store_root: &Path,
    now: OffsetDateTime,
) -> Result<usize, PruneError> {
    let unfinished = catalog.unfinished_prunes().await?;
    for row in &unfinished {
        if !Path::new(&row.store_path).is_absolute() {
            delete_store_files(catalog, store_root, row).await?;
        }
        catalog.finish_prune(row.id, now).await?;
        tracing::warn!(backup_id = row.id, store_path = %row.store_path, "finished a half-done prune");
    }
    Ok(unfinished.len())
}

/// Deletes every file of `row`: its one file, or each media family of a striped backup.
async fn delete_store_files(
    catalog: &Catalog,
    store_root: &Path,
    row: &BackupRow,
) -> Result<(), PruneError> {
    for family in catalog.backup_families(row).await? {
        delete_store_file(store_root, &row.for_family(&family)).await?;
    }
    Ok(())
}

/// Deletes the store file of `row` (a missing file counts as deleted) and syncs its
/// directory, so the deletion survives a crash.
async fn delete_store_file(store_root: &Path, row: &BackupRow) -> Result<(), PruneError> {
    let path = disk_path(store_root, &row.store_path);
    let error = |source| PruneError::DeleteFile {
        backup_id: row.id,
        path: path.clone(),
        source,
    };
    // A catalogued store path never climbs out of the store; reject one that would.
    if row.store_path.split('/').any(|part| part == "..") {
        let source = std::io::Error::new(std::io::ErrorKind::InvalidInput, "path contains ..");
        return Err(error(source));
    }
    match tokio::fs::remove_file(&path).await {
        Ok(()) => {}
        Err(source) if source.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(error(source)),
    }
    if let Some(parent) = path.parent() {
        let directory = tokio::fs::File::open(parent).await.map_err(error)?;
        directory.sync_all().await.map_err(error)?;
    }
    Ok(())
}

/// Lists runs that may have left a staged file on a share; bakfleet does not delete
/// those files, so the DBA can.
async fn print_staged_leftovers(catalog: &Catalog) -> Result<(), CatalogError> {
    let leftovers = catalog.staged_leftovers().await?;
    if leftovers.is_empty() {
        return Ok(());
    }
    println!(
        "{} run(s) may have left a staged file on a share; delete it there by hand:",
        leftovers.len()
    );
    for run in leftovers {
        println!(
            "  run #{} {}/[{}] {} in phase {}: {}",
            run.run_id,
            run.instance,
            run.database,
            run.status,
            run.phase,
            run.detail.as_deref().unwrap_or("-")
        );
    }
    Ok(())
}

fn action_label(action: PruneAction) -> &'static str {
    match action {
        PruneAction::Keep => "keep",
        PruneAction::WouldDelete => "would delete",
        PruneAction::Deleted => "deleted",
        PruneAction::OutsideStore => "kept outside",
    }
}

fn print_summary(report: &PruneReport, dry_run: bool) {
    let deleted_action = if dry_run {
        PruneAction::WouldDelete
    } else {
        PruneAction::Deleted
    };
    let mut deleted_count = 0;
    let mut deleted_bytes = 0;
    let mut kept = 0;
    for line in &report.lines {
        if line.action == deleted_action {
            deleted_count += 1;
            deleted_bytes += line.size_bytes;
        } else {
            kept += 1;
        }
    }
    let verb = if dry_run { "would delete" } else { "deleted" };
    println!(
        "{verb} {deleted_count} backup(s), {}; kept {kept}",
        human_bytes(deleted_bytes)
    );
}
