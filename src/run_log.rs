//! Each run's own log: the events logged inside a job, copied to the catalogue.
//!
//! The process logger carries one more layer, [`RunLogLayer`]. An event logged inside a
//! span that carries a `run_id` (the job span, once its run is recorded) becomes a
//! [`RunLogLine`] and goes through a bounded queue to a writer task, which stores lines in
//! batches. A command that runs jobs starts the writer with [`start`] after it opens the
//! catalogue, and calls [`finish`] before it closes the catalogue, so the last lines of a
//! run are stored before the process ends. Without a writer, lines are not kept.

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use time::OffsetDateTime;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::catalog::{Catalog, RunLogLine};

/// The events a run's log keeps, whatever level the process log is set to. These are every
/// bakfleet event at INFO and above, and the phases a run enters and the label of each
/// T-SQL batch it sends, which are logged at DEBUG. The TDS and SQL crates log per connection, so only
/// their errors are kept.
pub const FILTER: &str =
    "info,tiberius=error,sqlx=warn,bakfleet::job::context=debug,bakfleet::mssql::connection=debug";

/// Fields left out of run log lines. `sql` is the text of each T-SQL batch, often a few
/// KB. 10,000 databases with 15-minute log backups make 960,000 runs a day, so keeping
/// it would grow the catalogue by several GB a day (an estimate). The line keeps the statement's label, and the process
/// log at DEBUG has the text.
const OMITTED_FIELDS: &[&str] = &["sql"];

/// Days the log of a run that succeeded or was skipped is kept when
/// `service.run_log_days` is not set. The daily prune deletes older ones.
pub const KEEP_DAYS: u64 = 7;

/// Days the log of a run that failed or was interrupted is kept at least, longer because
/// it is the one a DBA comes back to.
pub const KEEP_FAILED_DAYS: u64 = 90;

/// Lines kept per run. A run that retries a stalled fetch for hours would otherwise grow
/// its log without bound; the process log still has every line.
pub const MAX_LINES_PER_RUN: i64 = 2_000;

/// Lines waiting for the writer. Once the queue is full, further lines are dropped and
/// counted, so a slow catalogue never slows the jobs.
const QUEUE_LINES: usize = 8_192;

/// Lines stored per catalogue transaction.
const BATCH_LINES: usize = 256;

/// The queue the layer sends to and the task that empties it, while a writer runs.
static WRITER: Mutex<Option<Writer>> = Mutex::new(None);

/// Lines dropped because the queue was full.
static DROPPED: AtomicU64 = AtomicU64::new(0);

struct Writer {
    queue: mpsc::Sender<RunLogLine>,
    task: JoinHandle<()>,
}

/// Starts storing run log lines in `catalog`. A writer started before is replaced; it
/// stores what it has queued and ends.
pub fn start(catalog: Catalog) {
    let (queue, receiver) = mpsc::channel(QUEUE_LINES);
    let task = tokio::spawn(store_batches(catalog, receiver));
    let previous = lock_writer().replace(Writer { queue, task });
    drop(previous);
}

/// Stops taking lines and waits until the queued ones are stored.
pub async fn finish() {
    let Some(writer) = lock_writer().take() else {
        return;
    };
    drop(writer.queue);
    if let Err(error) = writer.task.await {
        tracing::warn!(%error, "the run log writer ended abnormally");
    }
    let dropped = DROPPED.swap(0, Ordering::Relaxed);
    if dropped > 0 {
        tracing::warn!(
            dropped,
            "run log lines were dropped because the catalogue could not keep up; the process log has them"
        );
    }
}

fn lock_writer() -> std::sync::MutexGuard<'static, Option<Writer>> {
    WRITER.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Hands `line` to the writer; without one, or with its queue full, the line is dropped.
fn enqueue(line: RunLogLine) {
    let writer = lock_writer();
    let Some(writer) = writer.as_ref() else {
        return;
    };
    if writer.queue.try_send(line).is_err() {
        DROPPED.fetch_add(1, Ordering::Relaxed);
    }
}

async fn store_batches(catalog: Catalog, mut receiver: mpsc::Receiver<RunLogLine>) {
    let mut batch = Vec::with_capacity(BATCH_LINES);
    while receiver.recv_many(&mut batch, BATCH_LINES).await > 0 {
        if let Err(error) = catalog.append_run_log(&batch).await {
            // Logged outside any run, so this warning does not come back here.
            tracing::warn!(%error, lines = batch.len(), "could not store run log lines; the process log has them");
        }
        batch.clear();
    }
}

/// The run a span belongs to, and the number its next line gets.
struct RunTag {
    run_id: i64,
    next_seq: i64,
}

/// Copies events inside a run's span to that run's log. Install it with [`FILTER`].
pub struct RunLogLayer;

impl<S> Layer<S> for RunLogLayer
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut visitor = RunIdVisitor(None);
        attrs.record(&mut visitor);
        tag_span(visitor.0, id, &ctx);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let mut visitor = RunIdVisitor(None);
        values.record(&mut visitor);
        tag_span(visitor.0, id, &ctx);
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let Some((run_id, seq)) = next_line_of_run(event, &ctx) else {
            return;
        };
        if seq > MAX_LINES_PER_RUN {
            return;
        }
        let metadata = event.metadata();
        let message = if seq == MAX_LINES_PER_RUN {
            format!("this run logged more than {MAX_LINES_PER_RUN} lines; further lines are only in the process log")
        } else {
            format_event(event)
        };
        enqueue(RunLogLine {
            run_id,
            seq,
            at: OffsetDateTime::now_utc(),
            level: metadata.level().to_string(),
            target: metadata.target().to_string(),
            message,
        });
    }
}

fn tag_span<S>(run_id: Option<i64>, id: &Id, ctx: &Context<'_, S>)
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
{
    let (Some(run_id), Some(span)) = (run_id, ctx.span(id)) else {
        return;
    };
    span.extensions_mut().replace(RunTag {
        run_id,
        next_seq: 0,
    });
}

/// Finds the innermost span of `event` that belongs to a run and takes its next line
/// number.
fn next_line_of_run<S>(event: &Event<'_>, ctx: &Context<'_, S>) -> Option<(i64, i64)>
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
{
    for span in ctx.event_scope(event)? {
        let mut extensions = span.extensions_mut();
        if let Some(tag) = extensions.get_mut::<RunTag>() {
            let seq = tag.next_seq;
            tag.next_seq += 1;
            return Some((tag.run_id, seq));
        }
    }
    None
}

/// Reads a `run_id` field recorded as an integer.
struct RunIdVisitor(Option<i64>);

impl Visit for RunIdVisitor {
    fn record_i64(&mut self, field: &Field, value: i64) {
        if field.name() == "run_id" {
            self.0 = Some(value);
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "run_id" {
            self.0 = i64::try_from(value).ok();
        }
    }

    fn record_debug(&mut self, _field: &Field, _value: &dyn fmt::Debug) {}
}

/// Formats the message, then each other field as `key=value`, as the text log does.
fn format_event(event: &Event<'_>) -> String {
    let mut visitor = LineVisitor::default();
    event.record(&mut visitor);
    let mut line = visitor.message;
    if !visitor.fields.is_empty() {
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(visitor.fields.trim_start());
    }
    line
}

#[derive(Default)]
struct LineVisitor {
    message: String,
    fields: String,
}

impl Visit for LineVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if OMITTED_FIELDS.contains(&field.name()) {
            return;
        }
        // fmt::Write for String returns Ok for every write.
        let _ = if field.name() == "message" {
            write!(self.message, "{value:?}")
        } else {
            write!(self.fields, " {}={value:?}", field.name())
        };
    }
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;
    use crate::backup::BackupType;
    use crate::catalog::NewRun;

    async fn catalogue_with_run() -> (Catalog, i64) {
        let catalog = Catalog::open_in_memory().await.unwrap();
        let run_id = catalog
            .start_run(&NewRun {
                instance: "sql01".into(),
                database: "Sales".into(),
                backup_type: BackupType::Full,
                trigger: "manual".into(),
                started_at: OffsetDateTime::now_utc(),
                host: "central".into(),
                pid: 1,
                slot: None,
            })
            .await
            .unwrap();
        (catalog, run_id)
    }

    /// The only test that starts the process-wide writer, so no other test races it.
    #[tokio::test]
    async fn run_events_stored_in_order() {
        let (catalog, run_id) = catalogue_with_run().await;
        start(catalog.clone());
        let subscriber = tracing_subscriber::registry()
            .with(RunLogLayer.with_filter(tracing_subscriber::EnvFilter::new(FILTER)));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("serving");
            let span = tracing::error_span!("job", run_id = tracing::field::Empty);
            let _entered = span.enter();
            tracing::info!("before the run is recorded");
            span.record("run_id", run_id);
            tracing::info!(bytes = 12_u64, path = "a b", "fetched");
            tracing::info!(
                statement = "BACKUP",
                sql = "BACKUP DATABASE [x]",
                "sending batch"
            );
            let inner = tracing::info_span!("fetch");
            let _inner = inner.enter();
            tracing::warn!(error = %"reset", "retrying");
            tracing::debug!("left out at DEBUG");
        });
        finish().await;

        let lines = catalog.run_log(run_id, 10).await.unwrap();
        let texts: Vec<_> = lines
            .iter()
            .map(|line| (line.seq, line.level.as_str(), line.message.as_str()))
            .collect();
        assert_eq!(
            texts,
            vec![
                (0, "INFO", "fetched bytes=12 path=\"a b\""),
                (1, "INFO", "sending batch statement=\"BACKUP\""),
                (2, "WARN", "retrying error=reset"),
            ]
        );
        assert!(
            lines[0].target.ends_with("run_log::tests"),
            "{}",
            lines[0].target
        );
    }
}
