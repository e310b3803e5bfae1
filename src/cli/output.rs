//! Terminal output: progress bars while jobs run and one line per job afterwards.

use std::collections::HashMap;
use std::io::IsTerminal;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;

use crate::job::{JobEvent, JobEventKind, JobFailure, JobOutcome, JobRequest, SelectionError};

/// Progress bars fed by job events; silent when stderr is not a terminal.
pub(crate) struct Progress {
    task: JoinHandle<()>,
}

impl Progress {
    /// Starts drawing bars for the events that arrive on `receiver`.
    pub(crate) fn start(receiver: UnboundedReceiver<JobEvent>) -> Progress {
        Progress {
            task: tokio::spawn(draw(receiver)),
        }
    }

    /// Stops drawing. Events still queued are dropped: the summary follows.
    pub(crate) async fn finish(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

async fn draw(mut receiver: UnboundedReceiver<JobEvent>) {
    let bars = MultiProgress::with_draw_target(if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });
    let style = ProgressStyle::with_template("{prefix:32} {bar:30} {percent:>3}% {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    let mut by_run: HashMap<i64, ProgressBar> = HashMap::new();
    while let Some(event) = receiver.recv().await {
        let bar = by_run.entry(event.run_id).or_insert_with(|| {
            let bar = bars.add(ProgressBar::new(100));
            bar.set_style(style.clone());
            bar.set_prefix(format!("{} [{}]", event.instance, event.database));
            bar
        });
        match event.kind {
            JobEventKind::Phase(phase) => bar.set_message(phase.to_string()),
            JobEventKind::BackupPercent(percent) => {
                bar.set_message("backup");
                bar.set_position(percent.clamp(0.0, 100.0) as u64);
            }
            JobEventKind::Fetched { bytes, total } => {
                let percent = total
                    .filter(|total| *total > 0)
                    .map(|total| bytes * 100 / total)
                    .unwrap_or(0);
                bar.set_message(format!("fetch {}", human_bytes(bytes)));
                bar.set_position(percent);
            }
            JobEventKind::Succeeded { .. } => bar.finish_with_message("ok"),
            JobEventKind::Skipped(_) => bar.finish_with_message("skipped"),
            JobEventKind::Failed(_) => bar.finish_with_message("failed"),
        }
    }
}

/// Prints one line per job and returns how many failed.
pub(crate) fn print_results(results: &[(JobRequest, Result<JobOutcome, JobFailure>)]) -> usize {
    let mut failed = 0;
    for (request, result) in results {
        let who = format!(
            "{:<16} [{}] {}",
            request.instance.name, request.database, request.backup_type
        );
        match result {
            Ok(JobOutcome::Succeeded {
                backup_id,
                record,
                notes,
                ..
            }) => {
                // A promoted run shows the type requested and the type taken.
                let who = if record.backup_type == request.backup_type {
                    who.clone()
                } else {
                    format!("{who} -> {}", record.backup_type)
                };
                println!(
                    "ok       {who}  {}  sha256 {}  backup #{backup_id}  {}",
                    human_bytes(record.size_bytes),
                    record.sha256,
                    record.store_path
                );
                for note in notes {
                    println!("         note: {note}");
                }
            }
            Ok(JobOutcome::Skipped { kind, reason, .. }) => {
                let label = kind.label();
                let reason = reason
                    .strip_prefix(label)
                    .and_then(|rest| rest.strip_prefix(": "))
                    .unwrap_or(reason);
                println!("{label:<8} {who}  {reason}")
            }
            Err(failure) => {
                failed += 1;
                println!("FAILED   {who}  phase {}: {}", failure.phase, failure.cause);
            }
        }
    }
    failed
}

/// Prints the instances that could not be listed and returns how many.
pub(crate) fn print_unreachable(errors: &[SelectionError]) -> usize {
    for error in errors {
        println!("FAILED   {:<16} {}", error.instance, error.reason);
    }
    errors.len()
}

/// Formats a byte count with a binary unit, one decimal.
pub(crate) fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
