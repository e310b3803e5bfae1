//! `bakfleet run`: back up now and report what happened.

use std::path::Path;
use std::process::ExitCode;

use anyhow::bail;

use super::output;
use crate::backup::BackupType;
use crate::job::{self, JobContext, JobRequest, Trigger};
use crate::service;

/// Runs the jobs the arguments select and prints one line per job.
pub(crate) async fn execute(
    fleet_path: &Path,
    instance: Option<&str>,
    database: Option<&str>,
    backup_type: BackupType,
) -> anyhow::Result<ExitCode> {
    let (events, receiver) = tokio::sync::mpsc::unbounded_channel();
    let ctx = service::open(fleet_path, Some(events)).await?;
    let (requests, unreachable) =
        plan(&ctx, instance, database, backup_type, Trigger::Manual).await?;
    let display = output::Progress::start(receiver);
    let results = job::run_batch(&ctx, requests, ctx.fleet.service.max_parallel_jobs).await;
    display.finish().await;

    let failed = output::print_results(&results) + output::print_unreachable(&unreachable);
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Turns the command's selection into job requests. An instance that cannot be listed is
/// returned apart, so the other instances still run.
pub(crate) async fn plan(
    ctx: &JobContext,
    instance: Option<&str>,
    database: Option<&str>,
    backup_type: BackupType,
    trigger: Trigger,
) -> anyhow::Result<(Vec<JobRequest>, Vec<job::SelectionError>)> {
    let instances: Vec<_> = match instance {
        Some(name) => match ctx.fleet.instance(name) {
            Some(found) => vec![found.clone()],
            None => bail!(
                "instance {name:?} is not in {}; `bakfleet check` lists the instances",
                ctx.fleet.source.display()
            ),
        },
        None => ctx.fleet.instances.clone(),
    };

    let mut requests = Vec::new();
    let mut unreachable = Vec::new();
    for instance in instances {
        let databases = match database {
            Some(name) => vec![name.to_string()],
            None => match job::select_databases(&instance, &ctx.secrets).await {
                Ok(found) => found.into_iter().map(|database| database.name).collect(),
                Err(error) => {
                    tracing::error!(instance = %instance.name, %error, "cannot list databases");
                    unreachable.push(error);
                    continue;
                }
            },
        };
        for database in databases {
            requests.push(JobRequest {
                instance: instance.clone(),
                database,
                backup_type,
                trigger,
                slot: None,
            });
        }
    }
    Ok((requests, unreachable))
}
