//! Running many jobs at once, within the fleet's parallel limit.

use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::{run, JobContext, JobFailure, JobOutcome, JobRequest, Phase};

/// Runs every request, at most `max_parallel` at a time, and returns the results in
/// request order. A request whose turn comes after a stop began does not start; its
/// result is a [`JobFailure`] without a run, whose cause names the stop.
pub async fn run_batch(
    ctx: &JobContext,
    requests: Vec<JobRequest>,
    max_parallel: usize,
) -> Vec<(JobRequest, Result<JobOutcome, JobFailure>)> {
    let permits = Arc::new(Semaphore::new(max_parallel.max(1)));
    let mut tasks = JoinSet::new();
    for (index, request) in requests.into_iter().enumerate() {
        let ctx = ctx.clone();
        let permits = Arc::clone(&permits);
        tasks.spawn(async move {
            // The semaphore is never closed, so acquiring cannot fail.
            let _permit = permits.acquire_owned().await.expect("semaphore closed");
            let result = match ctx.shutdown.start_job() {
                Some(_running) => run(&ctx, &request).await,
                None => Err(not_started(&ctx, &request)),
            };
            (index, request, result)
        });
    }
    let mut results = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(result) => results.push(result),
            Err(error) => tracing::error!(%error, "a job task panicked"),
        }
    }
    results.sort_by_key(|(index, _, _)| *index);
    results
        .into_iter()
        .map(|(_, request, result)| (request, result))
        .collect()
}

/// Builds the result of a job that a stop kept from starting, and counts it.
pub(super) fn not_started(ctx: &JobContext, request: &JobRequest) -> JobFailure {
    tracing::warn!(
        instance = %request.instance.name,
        database = %request.database,
        "job not started: bakfleet is stopping"
    );
    ctx.shutdown.count_interrupted();
    JobFailure {
        run_id: None,
        instance: request.instance.name.clone(),
        database: request.database.clone(),
        backup_type: request.backup_type,
        // The lease is the first stage, and the job did not reach it.
        phase: Phase::Lease,
        cause: "not started because bakfleet is stopping".to_string(),
    }
}
