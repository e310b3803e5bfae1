//! `bakfleet restore-plan INSTANCE DATABASE [--at TIME]`: the backups that restore a
//! database to a point in time, and the T-SQL that applies them.

use std::path::Path;
use std::process::ExitCode;

use super::output::human_bytes;
use crate::catalog::Catalog;
use crate::chain::{format_time, Target};
use crate::fleet::Fleet;
use crate::restore_plan::{build_plan, parse_target_time, repair_advice, RestorePlan};
use crate::restore_script::ScriptOptions;

/// Output format of `restore-plan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlanFormat {
    /// The T-SQL script, with the files it reads as comments.
    Sql,
    /// The chain, script, files and restorable windows as JSON.
    Json,
}

/// The request of one `restore-plan` command.
#[derive(Debug, Clone)]
pub struct PlanRequest {
    pub instance: String,
    pub database: String,
    pub at: Option<String>,
    pub options: ScriptOptions,
    pub format: PlanFormat,
}

/// Prints the plan; the error gives the reason when no plan exists.
pub(crate) async fn execute(fleet_path: &Path, request: PlanRequest) -> anyhow::Result<ExitCode> {
    let target = match &request.at {
        Some(text) => Target::At(parse_target_time(text).map_err(anyhow::Error::msg)?),
        None => Target::Latest,
    };
    check_options(&request.options)?;
    let fleet = Fleet::load(fleet_path)?;
    let catalog = Catalog::open_existing(&fleet.service.catalog).await?;
    let store_root = std::path::absolute(&fleet.service.store_dir)?;

    let plan = build_plan(
        &catalog,
        &store_root,
        &request.instance,
        &request.database,
        target,
        &request.options,
    )
    .await?;
    match request.format {
        PlanFormat::Sql => print!("{}", format_sql(&plan)),
        PlanFormat::Json => println!("{}", serde_json::to_string_pretty(&plan)?),
    }
    Ok(ExitCode::SUCCESS)
}

/// Rejects a new name or folder that no server accepts. The rest is SQL Server's to
/// judge, because each server has its own rules for paths.
fn check_options(options: &ScriptOptions) -> anyhow::Result<()> {
    if let Some(name) = &options.restore_as {
        if name.trim().is_empty() {
            anyhow::bail!("--as names no database; give the name to restore under");
        }
        if name.chars().count() > 128 {
            anyhow::bail!(
                "--as {name:?} is longer than the 128 characters SQL Server allows in a \
                 database name"
            );
        }
    }
    if let Some(folder) = &options.move_to {
        let windows_absolute = folder.get(1..3) == Some(":\\") || folder.starts_with("\\\\");
        if !windows_absolute && !folder.starts_with('/') {
            anyhow::bail!(
                "--move-to {folder:?} is not an absolute folder; give the full path on the \
                 server that restores, such as D:\\Data or /var/opt/mssql/data"
            );
        }
    }
    Ok(())
}

/// Formats the script with a header listing the files (path, size, SHA-256), a warning
/// when the chain stops at a gap, and the backups left out because they failed
/// verification.
pub fn format_sql(plan: &RestorePlan) -> String {
    let mut text = String::new();
    let target = plan
        .target
        .map_or_else(|| "latest".to_string(), |at| format_time(&at));
    text.push_str(&format!(
        "-- Restore plan for instance {:?}, database {:?}, target {target}\n",
        plan.instance, plan.database
    ));
    if let Some(broken) = &plan.chain.broken {
        match &plan.stopped_by {
            Some(failed) => text.push_str(&format!(
                "-- WARNING: the log chain stops because {failed}; this script restores to {}, \
                 the latest point before it; {}\n",
                format_time(&broken.restorable_until),
                repair_advice(&plan.instance, &plan.database)
            )),
            None => text.push_str(&format!(
                "-- WARNING: {broken}; this script restores to {}, the latest point before the gap\n",
                format_time(&broken.restorable_until)
            )),
        }
    }
    for failed in &plan.failed_verification {
        text.push_str(&format!("-- Left out: {failed}\n"));
    }
    text.push_str("-- Files, in restore order (store path, size, SHA-256):\n");
    for file in &plan.script.files {
        text.push_str(&format!(
            "--   #{} {} {} {} {}\n",
            file.backup_id,
            file.backup_type,
            file.path,
            human_bytes(file.size_bytes),
            file.sha256
        ));
    }
    text.push_str(&plan.script.to_sql());
    text
}
