//! `/metrics` through the router: off by default, served without a session when on, and
//! in the Prometheus text format with the expected names, labels and values.

mod catalog_fixture;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use bakfleet::backup::BackupType;
use bakfleet::catalog::Catalog;
use bakfleet::web::{router, SessionSettings, WebState};
use catalog_fixture::{add_backup, new_run, record, T0};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// One sample line: metric name, labels by name, value.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the text format: `# HELP` and `# TYPE` lines by metric name, then samples.
/// Panics on a line that does not follow the format, so a malformed line fails the test.
fn parse(text: &str) -> (BTreeMap<String, String>, Vec<Sample>) {
    let mut types = BTreeMap::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE line has a kind");
            types.insert(name.to_string(), kind.to_string());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        assert!(!line.starts_with('#'), "unknown comment line {line:?}");
        let (series, value) = line.rsplit_once(' ').expect("sample line has a value");
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        let (name, labels) = match series.split_once('{') {
            None => (series.to_string(), BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').expect("labels end with }");
                (name.to_string(), parse_labels(body))
            }
        };
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "bad metric name {name:?}"
        );
        assert!(
            types.contains_key(&name),
            "{name} has no TYPE line before it"
        );
        samples.push(Sample {
            name,
            labels,
            value,
        });
    }
    (types, samples)
}

fn parse_labels(body: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = body;
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"").expect("label has =\"");
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            let (index, c) = chars.next().expect("label value ends with a quote");
            match c {
                '\\' => {
                    let (_, escaped) = chars.next().expect("escape has a character");
                    value.push(if escaped == 'n' { '\n' } else { escaped });
                }
                '"' => break index,
                c => value.push(c),
            }
        };
        labels.insert(name.to_string(), value);
        rest = after[end + 1..]
            .strip_prefix(',')
            .unwrap_or(&after[end + 1..]);
    }
    labels
}

fn find<'s>(samples: &'s [Sample], name: &str, labels: &[(&str, &str)]) -> Option<&'s Sample> {
    samples.iter().find(|sample| {
        sample.name == name
            && labels
                .iter()
                .all(|(key, value)| sample.labels.get(*key).map(String::as_str) == Some(*value))
    })
}

struct Site {
    router: Router,
    _store: tempfile::TempDir,
}

async fn site(metrics: bool) -> Site {
    let catalog = Catalog::open_in_memory().await.unwrap();
    add_backup(
        &catalog,
        &record("sales", "orders", BackupType::Full, T0, 1000),
    )
    .await;
    add_backup(
        &catalog,
        &record(
            "sales",
            "orders",
            BackupType::Log,
            T0 + time::Duration::hours(1),
            10,
        ),
    )
    .await;
    let failed = catalog
        .start_run(&new_run("sales", "orders", BackupType::Diff, T0))
        .await
        .unwrap();
    catalog.set_run_phase(failed, "backup").await.unwrap();
    catalog
        .fail_run(failed, "backup", "BACKUP failed")
        .await
        .unwrap();
    // A database name with a quote checks the label escaping.
    add_backup(
        &catalog,
        &record("hr", "pay\"roll", BackupType::Full, T0, 5),
    )
    .await;

    let store_dir = tempfile::tempdir().unwrap();
    let fleet = bakfleet::fleet::Fleet::parse(
        "[[instance]]\nname = \"sales\"\nhost = \"h\"\n\
         auth = { kind = \"sql\", user = \"u\", password_env = \"P\" }\n\
         staging = { local = { server_path = \"/b\", dir = \"/b\" } }\n",
        std::path::Path::new("/etc/bakfleet/fleet.toml"),
    )
    .unwrap();
    let state = WebState {
        catalog,
        fleet_name: "fleet.toml".to_string(),
        started_at: T0,
        limits: Some(Arc::new(bakfleet::job::Limits::new(&fleet.service))),
        fleet_status: None,
        sessions: SessionSettings::default(),
        store: Some(Arc::new(
            bakfleet::store::Store::open(store_dir.path()).unwrap(),
        )),
        run_requests: None,
        fleet: None,
        live: None,
        metrics,
    };
    Site {
        router: router(state),
        _store: store_dir,
    }
}

async fn scrape(site: &Site) -> (StatusCode, String, String) {
    let request = Request::builder()
        .uri("/metrics")
        .body(Body::empty())
        .unwrap();
    let response = site.router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|value| value.to_str().unwrap().to_string())
        .unwrap_or_default();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        content_type,
        String::from_utf8(bytes.to_vec()).unwrap(),
    )
}

#[tokio::test]
async fn metrics_off_by_default() {
    let site = site(false).await;
    let (status, _, _) = scrape(&site).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn metrics_need_no_session() {
    let site = site(true).await;
    let (status, content_type, _) = scrape(&site).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
}

#[tokio::test]
async fn metrics_names_labels_values() {
    let site = site(true).await;
    let (_, _, text) = scrape(&site).await;
    let (types, samples) = parse(&text);

    assert_eq!(types["bakfleet_runs_total"], "counter");
    assert_eq!(types["bakfleet_last_backup_age_seconds"], "gauge");
    assert_eq!(types["bakfleet_jobs_running"], "gauge");
    assert_eq!(types["bakfleet_store_free_bytes"], "gauge");

    let succeeded = find(&samples, "bakfleet_runs_total", &[("status", "succeeded")]);
    assert_eq!(succeeded.map(|sample| sample.value), Some(3.0));
    let failed = find(&samples, "bakfleet_runs_total", &[("status", "failed")]);
    assert_eq!(failed.map(|sample| sample.value), Some(1.0));

    let full = [
        ("instance", "sales"),
        ("database", "orders"),
        ("type", "full"),
    ];
    let finished = find(&samples, "bakfleet_last_backup_timestamp_seconds", &full).unwrap();
    assert_eq!(finished.value, T0.unix_timestamp() as f64);
    let age = find(&samples, "bakfleet_last_backup_age_seconds", &full).unwrap();
    let expected = (time::OffsetDateTime::now_utc() - T0).as_seconds_f64();
    assert!(
        (age.value - expected).abs() < 60.0,
        "{} vs {expected}",
        age.value
    );
    let log = [
        ("instance", "sales"),
        ("database", "orders"),
        ("type", "log"),
    ];
    let log_age = find(&samples, "bakfleet_last_backup_age_seconds", &log).unwrap();
    assert!(log_age.value < age.value);
    let diff = [
        ("instance", "sales"),
        ("database", "orders"),
        ("type", "diff"),
    ];
    assert!(find(&samples, "bakfleet_last_backup_age_seconds", &diff).is_none());

    let quoted = [("database", "pay\"roll")];
    assert!(find(&samples, "bakfleet_last_backup_age_seconds", &quoted).is_some());

    assert_eq!(
        find(&samples, "bakfleet_jobs_running", &[]).map(|sample| sample.value),
        Some(0.0)
    );
    assert_eq!(
        find(&samples, "bakfleet_jobs_waiting", &[]).map(|sample| sample.value),
        Some(0.0)
    );
    let free = find(&samples, "bakfleet_store_free_bytes", &[]).unwrap();
    assert!(free.value > 0.0);

    assert_eq!(types["bakfleet_phase_seconds_total"], "counter");
    assert_eq!(types["bakfleet_phase_runs_total"], "counter");
    assert_eq!(types["bakfleet_phase_bytes_total"], "counter");
    // Each full run spent the minute between its start and its outcome in phase `start`.
    let full_start = [("phase", "start"), ("type", "full")];
    let seconds = find(&samples, "bakfleet_phase_seconds_total", &full_start).unwrap();
    assert_eq!(seconds.value, 120.0);
    let runs = find(&samples, "bakfleet_phase_runs_total", &full_start).unwrap();
    assert_eq!(runs.value, 2.0);
    let fetched = [("phase", "fetch"), ("type", "full")];
    let bytes = find(&samples, "bakfleet_phase_bytes_total", &fetched).unwrap();
    assert_eq!(bytes.value, 1005.0);
    // The failed diff run left `start` for `backup`, and `backup` for its outcome.
    let diff_backup = [("phase", "backup"), ("type", "diff")];
    let left = find(&samples, "bakfleet_phase_runs_total", &diff_backup).unwrap();
    assert_eq!(left.value, 1.0);
}
