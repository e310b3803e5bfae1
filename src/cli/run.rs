//! `bakfleet run`: back up now and report what happened.

use std::future::Future;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;

use super::output;
use crate::backup::BackupType;
use crate::fleet::Instance;
use crate::job::{self, JobContext, JobRequest, Trigger};
use crate::service;
use crate::shutdown;

/// Runs the jobs the arguments select and prints one line per job. On SIGTERM or Ctrl-C
/// no further job starts, and running jobs get `grace` to finish before they are cancelled.
///
/// Returns [`shutdown::EXIT_INTERRUPTED`] when a stop interrupted a job or kept one from
/// starting, else 1 when a job failed.
pub(crate) async fn execute(
    fleet_path: &Path,
    instance: Option<&str>,
    database: Option<&str>,
    backup_type: BackupType,
    grace: Duration,
) -> anyhow::Result<ExitCode> {
    let (events, receiver) = tokio::sync::mpsc::unbounded_channel();
    let ctx = service::open(fleet_path, Some(events)).await?;
    let (requests, unreachable) =
        plan(&ctx, instance, database, backup_type, Trigger::Manual).await?;
    if requests.is_empty() && unreachable.is_empty() {
        eprintln!("{}", nothing_selected(instance));
        return Ok(ExitCode::FAILURE);
    }
    let display = output::Progress::start(receiver);
    let batch = job::run_batch(&ctx, requests, ctx.fleet.service.max_parallel_jobs);
    let results = run_until_stopped(&ctx, batch, grace).await;
    display.finish().await;
    crate::run_log::finish().await;

    let failed = output::print_results(&results) + output::print_unreachable(&unreachable);
    if let Some(code) = ctx.shutdown.exit_code() {
        return Ok(ExitCode::from(code));
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Explains a run that selected no database, which would otherwise end without a line.
fn nothing_selected(instance: Option<&str>) -> String {
    let cause = match instance {
        Some(name) => format!(
            "the databases selection of instance {name:?} selects none of the databases on \
             its server"
        ),
        None => "no instance's databases selection selects a database on its server".to_string(),
    };
    format!(
        "nothing backed up: {cause}; `bakfleet check --connect` compares each selection with \
         its server"
    )
}

/// Awaits `batch`; a stop signal first stops new jobs and gives running ones `grace`.
/// The jobs run in their own tasks, so they go on while the stop waits for them.
async fn run_until_stopped<F: Future>(ctx: &JobContext, batch: F, grace: Duration) -> F::Output {
    tokio::pin!(batch);
    tokio::select! {
        results = &mut batch => return results,
        signal = shutdown::wait_for_stop_signal() => {
            ctx.shutdown.drain(signal, grace).await;
        }
    }
    batch.await
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
            Some(name) => {
                check_named_database(ctx, &instance, name).await?;
                vec![name.to_string()]
            }
            None => match job::select_and_record_databases(ctx, &instance).await {
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

/// Checks that a database named on the command line exists on its instance, so that a
/// typo is reported at once instead of being recorded as a failed run. When the instance
/// cannot be listed, the job runs and records why it could not connect.
async fn check_named_database(
    ctx: &JobContext,
    instance: &Instance,
    name: &str,
) -> anyhow::Result<()> {
    let databases = match job::list_all_databases(instance, &ctx.secrets).await {
        Ok(databases) => databases,
        Err(error) => {
            tracing::warn!(instance = %instance.name, database = name, %error, "could not check the database name");
            return Ok(());
        }
    };
    if databases.iter().any(|database| database.name == name) {
        return Ok(());
    }
    let hint = match databases
        .iter()
        .find(|database| database.name.eq_ignore_ascii_case(name))
    {
        Some(database) => format!("names are matched exactly, so write {:?}", database.name),
        None => {
            let names: Vec<&str> = databases
                .iter()
                .map(|database| database.name.as_str())
                .collect();
            format!("its databases are {}", names.join(", "))
        }
    };
    bail!(
        "database {name:?} not found on instance {}; {hint}",
        instance.name
    )
}
