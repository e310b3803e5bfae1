//! `/metrics`: fleet, queue and store figures in the Prometheus text format, served
//! without a session when `service.metrics` is true and 404 otherwise.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use time::OffsetDateTime;

use super::error::WebError;
use super::Site;
use crate::backup::BackupType;
use crate::metrics::{render, Family, Kind, CONTENT_TYPE};
use crate::protection::ProtectionState;

pub(super) async fn metrics(State(site): State<Site>) -> Result<Response, WebError> {
    if !site.state.metrics {
        return Err(WebError::NotFound(
            "Metrics are off; set service.metrics = true in the fleet file to serve them."
                .to_string(),
        ));
    }
    let now = OffsetDateTime::now_utc();
    let mut families = backup_families(&site, now).await?;
    families.push(run_family(&site).await?);
    families.extend(phase_families(&site).await?);
    if site.state.fleet.is_some() {
        families.push(rpo_family(&site, now).await?);
    }
    families.extend(queue_families(&site));
    families.extend(store_family(&site));

    let text = render(&families);
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response())
}

/// Age and time of the newest backup of each type per database.
async fn backup_families(site: &Site, now: OffsetDateTime) -> Result<Vec<Family>, WebError> {
    let mut age = Family::new(
        "bakfleet_last_backup_age_seconds",
        "Seconds since the newest catalogued backup of this type finished.",
        Kind::Gauge,
    );
    let mut time = Family::new(
        "bakfleet_last_backup_timestamp_seconds",
        "Unix time at which the newest catalogued backup of this type finished.",
        Kind::Gauge,
    );
    for database in site.state.catalog.fleet_overview().await? {
        for backup_type in BackupType::ALL {
            let last = match backup_type {
                BackupType::Full => &database.last_full,
                BackupType::Diff => &database.last_diff,
                BackupType::Log => &database.last_log,
            };
            let Some(last) = last else {
                continue;
            };
            let labels = vec![
                ("instance", database.instance.clone()),
                ("database", database.database.clone()),
                ("type", backup_type.as_str().to_string()),
            ];
            let seconds = (now - last.finished_at).as_seconds_f64().max(0.0);
            age.push(labels.clone(), seconds);
            time.push(labels, last.finished_at.unix_timestamp() as f64);
        }
    }
    Ok(vec![age, time])
}

/// RPO state per database: 1 for its current state, 0 for the other two, as Prometheus
/// writes an enumeration, so that `bakfleet_rpo_state{state="late"} == 1` selects the late
/// databases.
async fn rpo_family(site: &Site, now: OffsetDateTime) -> Result<Family, WebError> {
    let mut family = Family::new(
        "bakfleet_rpo_state",
        "Protection of the database against its policy's RPO: ok, late or missing.",
        Kind::Gauge,
    );
    for database in super::api::assess_fleet(site, now).await? {
        for state in [
            ProtectionState::Ok,
            ProtectionState::Late,
            ProtectionState::Missing,
        ] {
            let labels = vec![
                ("instance", database.instance.clone()),
                ("database", database.database.clone()),
                ("state", state.as_str().to_string()),
            ];
            let value = if database.state == state { 1.0 } else { 0.0 };
            family.push(labels, value);
        }
    }
    Ok(family)
}

/// Runs by status, counted in the catalogue so that the counter survives restarts.
async fn run_family(site: &Site) -> Result<Family, WebError> {
    let mut runs = Family::new(
        "bakfleet_runs_total",
        "Backup runs recorded in the catalogue, by status.",
        Kind::Counter,
    );
    for (status, count) in site.state.catalog.run_counts_by_status().await? {
        runs.push(vec![("status", status)], count as f64);
    }
    Ok(runs)
}

/// Seconds spent in each phase, the runs that left it, and the bytes BACKUP wrote and the
/// fetch moved, per phase and backup type. Dividing the seconds by the runs gives the mean
/// time of a phase, and the rate of bytes over the rate of seconds its throughput.
async fn phase_families(site: &Site) -> Result<Vec<Family>, WebError> {
    let mut seconds = Family::new(
        "bakfleet_phase_seconds_total",
        "Seconds runs spent in each phase, summed as each run leaves the phase.",
        Kind::Counter,
    );
    let mut runs = Family::new(
        "bakfleet_phase_runs_total",
        "Runs that left each phase, for the next phase or an outcome.",
        Kind::Counter,
    );
    let mut bytes = Family::new(
        "bakfleet_phase_bytes_total",
        "Bytes BACKUP wrote to the staging location (phase backup) and bytes fetched into the store (phase fetch), by succeeded runs.",
        Kind::Counter,
    );
    for total in site.state.catalog.phase_totals().await? {
        let labels = vec![
            ("phase", total.phase.clone()),
            ("type", total.backup_type.clone()),
        ];
        seconds.push(labels.clone(), total.milliseconds as f64 / 1000.0);
        runs.push(labels.clone(), total.runs as f64);
        if total.bytes > 0 {
            bytes.push(labels, total.bytes as f64);
        }
    }
    Ok(vec![seconds, runs, bytes])
}

/// Jobs running and waiting for a slot in this process; none for a process without jobs.
fn queue_families(site: &Site) -> Vec<Family> {
    let Some(limits) = &site.state.limits else {
        return Vec::new();
    };
    let queue = limits.snapshot();
    let mut running = Family::new(
        "bakfleet_jobs_running",
        "Backup jobs holding a slot in this process.",
        Kind::Gauge,
    );
    running.push(Vec::new(), queue.running.len() as f64);
    let mut waiting = Family::new(
        "bakfleet_jobs_waiting",
        "Backup jobs waiting for a slot in this process.",
        Kind::Gauge,
    );
    waiting.push(Vec::new(), queue.waiting.len() as f64);
    vec![running, waiting]
}

/// Free bytes of the store's file system. A process without the store has none, and a
/// file system that cannot be read is logged and left out.
fn store_family(site: &Site) -> Option<Family> {
    let store = site.state.store.as_ref()?;
    let free = match super::health::free_bytes(store.root()) {
        Ok(free) => free,
        Err(error) => {
            tracing::warn!(%error, store = %store.root().display(), "cannot read the store's free space for /metrics");
            return None;
        }
    };
    let mut family = Family::new(
        "bakfleet_store_free_bytes",
        "Bytes an unprivileged user may still write on the store's file system.",
        Kind::Gauge,
    );
    family.push(Vec::new(), free as f64);
    Some(family)
}
