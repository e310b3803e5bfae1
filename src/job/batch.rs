//! Running many jobs at once, within the fleet's parallel limit.

use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::{run, JobContext, JobFailure, JobOutcome, JobRequest};

/// Runs every request, at most `max_parallel` at a time, and returns the results in
/// request order.
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
            let result = run(&ctx, &request).await;
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
