//! Live progress of running jobs: the serve process keeps the latest state of each job
//! from its [`JobEvent`]s, `/runs/live` shows them as a table, and `/runs/live/events`
//! streams every change as server-sent events to the page's script.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use futures_util::stream::{self, Stream, StreamExt};
use serde::Serialize;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use super::error::WebError;
use super::Site;
use crate::catalog::Catalog;
use crate::job::{JobEvent, JobEventKind};

/// Changes a slow watcher may fall behind by before it misses some; a missed change is
/// corrected by the next change of the same run.
const UPDATE_BUFFER: usize = 256;

/// The script of `/runs/live`, served from `/static/live.js`.
const SCRIPT: &str = include_str!("../../templates/live.js");

/// The template of `/runs/live`.
pub(super) const TEMPLATE: &str = include_str!("../../templates/runs_live.html");

/// The latest state of one job, as the page shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveRun {
    pub run_id: i64,
    pub instance: String,
    pub database: String,
    /// `full`, `diff` or `log`; `None` when the catalogue could not be read.
    pub backup_type: Option<String>,
    /// The phase the job is in, such as `backup` or `fetch`.
    pub phase: String,
    /// `percent_complete` of the running BACKUP, once read.
    pub percent: Option<f32>,
    /// Bytes fetched from the staging area so far.
    pub bytes_fetched: Option<u64>,
    /// Size of the file being fetched, when known.
    pub bytes_total: Option<u64>,
    /// `running`, or how the job ended: `succeeded`, `skipped` or `failed`. A job that
    /// ended is sent to watchers once and then forgotten.
    pub state: &'static str,
}

/// Running jobs of this process and the channel that announces their changes. Clones
/// share the same state.
#[derive(Debug, Clone)]
pub struct LiveRuns {
    runs: Arc<Mutex<BTreeMap<i64, LiveRun>>>,
    updates: broadcast::Sender<LiveRun>,
    /// Cancelled when the process stops, which ends every open event stream, so that
    /// the site's graceful shutdown does not wait for them.
    closed: CancellationToken,
}

impl Default for LiveRuns {
    fn default() -> Self {
        LiveRuns::new()
    }
}

impl LiveRuns {
    pub fn new() -> LiveRuns {
        LiveRuns {
            runs: Arc::new(Mutex::new(BTreeMap::new())),
            updates: broadcast::channel(UPDATE_BUFFER).0,
            closed: CancellationToken::new(),
        }
    }

    /// Returns the running jobs, in run id order.
    pub fn snapshot(&self) -> Vec<LiveRun> {
        self.lock().values().cloned().collect()
    }

    /// Applies one job event and announces the changed run. `backup_type` fills in the
    /// type of a run seen for the first time.
    pub fn apply(&self, event: &JobEvent, backup_type: Option<String>) -> LiveRun {
        let changed = {
            let mut runs = self.lock();
            let run = runs.entry(event.run_id).or_insert_with(|| LiveRun {
                run_id: event.run_id,
                instance: event.instance.clone(),
                database: event.database.clone(),
                backup_type,
                phase: "start".to_string(),
                percent: None,
                bytes_fetched: None,
                bytes_total: None,
                state: "running",
            });
            match &event.kind {
                JobEventKind::Phase(phase) => {
                    // A percent belongs to the statement of one phase (BACKUP or
                    // VERIFYONLY), so a new phase starts without one.
                    run.phase = phase.as_str().to_string();
                    run.percent = None;
                }
                JobEventKind::BackupPercent(percent) => run.percent = Some(*percent),
                JobEventKind::Fetched { bytes, total } => {
                    run.bytes_fetched = Some(*bytes);
                    run.bytes_total = *total;
                }
                JobEventKind::Succeeded { .. } => run.state = "succeeded",
                JobEventKind::Skipped(_) => run.state = "skipped",
                JobEventKind::Failed(_) => run.state = "failed",
            }
            let changed = run.clone();
            if changed.state != "running" {
                runs.remove(&event.run_id);
            }
            changed
        };
        // Having no subscriber is normal while no page is open.
        let _ = self.updates.send(changed.clone());
        changed
    }

    /// Returns a receiver of every later change, for watchers other than the event stream.
    pub fn subscribe(&self) -> broadcast::Receiver<LiveRun> {
        self.updates.subscribe()
    }

    /// Returns true when the run was seen before, so its type is known.
    fn knows(&self, run_id: i64) -> bool {
        self.lock().contains_key(&run_id)
    }

    /// Ends every open event stream; called when the process stops.
    pub fn close(&self) {
        self.closed.cancel();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<i64, LiveRun>> {
        // Every update is a single insert, change or remove, so a poisoned map is whole.
        self.runs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Reads job events until every sender is gone and applies them to `live`. The type of
/// a run seen for the first time is read from the catalogue.
pub async fn collect_events(
    live: LiveRuns,
    catalog: Catalog,
    mut events: mpsc::UnboundedReceiver<JobEvent>,
) {
    while let Some(event) = events.recv().await {
        let backup_type = if live.knows(event.run_id) {
            None
        } else {
            match catalog.run(event.run_id).await {
                Ok(run) => run.map(|run| run.backup_type.to_string()),
                Err(error) => {
                    tracing::warn!(run_id = event.run_id, %error, "could not read the run's type for the live page");
                    None
                }
            }
        };
        live.apply(&event, backup_type);
    }
}

/// `/runs/live`: the running jobs as a table, which the script keeps current.
pub(super) async fn live_page(State(site): State<Site>) -> Result<Html<String>, WebError> {
    let live = site.state.live.as_ref();
    let runs = live.map(LiveRuns::snapshot).unwrap_or_default();
    site.render(
        "runs_live.html",
        minijinja::context! { runs, enabled => live.is_some() },
    )
}

/// `/runs/live/events`: one `run` event with a [`LiveRun`] as JSON per change, starting
/// with every running job. A process that runs no jobs sends none.
pub(super) async fn live_events(
    State(site): State<Site>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = match site.state.live.as_ref() {
        Some(live) => run_updates(live).boxed(),
        None => stream::empty().boxed(),
    };
    Sse::new(stream.map(|run| Ok(run_event(&run)))).keep_alive(KeepAlive::default())
}

/// Streams the current runs, then every later change until the process stops. It
/// subscribes before it takes the snapshot, so no change is lost between the two, but one
/// may come twice.
fn run_updates(live: &LiveRuns) -> impl Stream<Item = LiveRun> + Send + 'static {
    let receiver = live.subscribe();
    let snapshot = stream::iter(live.snapshot());
    let changes = stream::unfold(receiver, |mut receiver| async move {
        loop {
            match receiver.recv().await {
                Ok(run) => return Some((run, receiver)),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, "live page watcher fell behind");
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    let closed = live.closed.clone().cancelled_owned();
    snapshot.chain(changes).take_until(closed)
}

fn run_event(run: &LiveRun) -> Event {
    let data = serde_json::to_string(run).unwrap_or_else(|_| "{}".to_string());
    Event::default().event("run").data(data)
}

/// `/static/live.js`.
pub(super) async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::Phase;

    fn event(run_id: i64, kind: JobEventKind) -> JobEvent {
        JobEvent {
            run_id,
            instance: "sales-prod".to_string(),
            database: "Sales".to_string(),
            kind,
        }
    }

    #[test]
    fn apply_tracks_phase_and_percent() {
        let live = LiveRuns::new();
        live.apply(
            &event(7, JobEventKind::Phase(Phase::Backup)),
            Some("full".into()),
        );
        let run = live.apply(&event(7, JobEventKind::BackupPercent(42.5)), None);
        assert_eq!(run.phase, "backup");
        assert_eq!(run.percent, Some(42.5));
        assert_eq!(run.backup_type.as_deref(), Some("full"));
        assert_eq!(live.snapshot(), vec![run]);
        let fetching = live.apply(&event(7, JobEventKind::Phase(Phase::Fetch)), None);
        assert_eq!(
            fetching.percent, None,
            "a new phase starts without a percent"
        );
    }

    #[test]
    fn apply_forgets_ended_run() {
        let live = LiveRuns::new();
        live.apply(&event(7, JobEventKind::Phase(Phase::Fetch)), None);
        let ended = live.apply(&event(7, JobEventKind::Failed("x".into())), None);
        assert_eq!(ended.state, "failed");
        assert!(live.snapshot().is_empty());
    }

    #[tokio::test]
    async fn updates_start_with_snapshot() {
        let live = LiveRuns::new();
        live.apply(&event(1, JobEventKind::Phase(Phase::Backup)), None);
        let mut updates = Box::pin(run_updates(&live));
        live.apply(
            &event(
                1,
                JobEventKind::Fetched {
                    bytes: 10,
                    total: Some(20),
                },
            ),
            None,
        );
        let first = updates.next().await.unwrap();
        assert_eq!(first.phase, "backup");
        let second = updates.next().await.unwrap();
        assert_eq!(second.bytes_fetched, Some(10));
        live.close();
        assert!(updates.next().await.is_none(), "close ends the stream");
    }
}
