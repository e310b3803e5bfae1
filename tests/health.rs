//! `/healthz` readiness: 200 only with a catalogue that answers and a writable store with
//! enough free space, 503 with one reason per failed check otherwise.

use std::path::{Path, PathBuf};
use std::process::Command;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use bakfleet::catalog::Catalog;
use bakfleet::reload::{FleetStatus, ReloadFailure};
use bakfleet::web::{router, SessionSettings, WebState};
use http_body_util::BodyExt;
use time::macros::datetime;
use tokio::sync::watch;
use tower::ServiceExt;

const FLEET_TEXT: &str = "# fleet file in force\n";

/// A fleet file and a store folder under a temp dir, and the status that names them.
struct Setup {
    dir: tempfile::TempDir,
    status: FleetStatus,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = dir.path().join("store");
        std::fs::create_dir(&store).expect("store dir");
        let fleet = dir.path().join("fleet.toml");
        std::fs::write(&fleet, FLEET_TEXT).expect("fleet.toml");
        let status = FleetStatus {
            path: fleet,
            revision: "sha256 0123456789ab".to_string(),
            sha256: sha256_hex(FLEET_TEXT),
            loaded_at: datetime!(2026-06-01 10:00 UTC),
            last_error: None,
            store_dir: store,
            min_store_free_bytes: 1,
        };
        Setup { dir, status }
    }

    fn store(&self) -> PathBuf {
        self.status.store_dir.clone()
    }
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

fn site(catalog: Catalog, status: FleetStatus) -> (Router, watch::Sender<FleetStatus>) {
    let (sender, receiver) = watch::channel(status);
    let site = router(WebState {
        catalog,
        fleet_name: "fleet.toml".to_string(),
        started_at: datetime!(2026-06-01 10:00 UTC),
        limits: None,
        fleet_status: Some(receiver),
        sessions: SessionSettings::default(),
        store: None,
        run_requests: None,
        fleet: None,
        metrics: false,
        live: None,
    });
    (site, sender)
}

async fn healthz(site: &Router) -> (StatusCode, String) {
    let request = Request::builder()
        .uri("/healthz")
        .body(Body::empty())
        .unwrap();
    let response = site.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

/// Makes `dir` immutable with chattr(1), so that even root cannot create files in it, and
/// undoes it when dropped.
struct Immutable<'a>(&'a Path);

impl<'a> Immutable<'a> {
    fn set(dir: &'a Path) -> Immutable<'a> {
        let status = Command::new("chattr")
            .arg("+i")
            .arg(dir)
            .status()
            .expect("chattr runs: install it with `apt-get install e2fsprogs`");
        assert!(
            status.success(),
            "chattr +i {} failed; the test needs root and a file system with the \
             immutable attribute",
            dir.display()
        );
        Immutable(dir)
    }
}

impl Drop for Immutable<'_> {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(self.0).status();
    }
}

#[tokio::test]
async fn healthz_ready_lists_each_check() {
    let setup = Setup::new();
    let (site, _sender) = site(
        Catalog::open_in_memory().await.unwrap(),
        setup.status.clone(),
    );

    let (status, body) = healthz(&site).await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.starts_with("ok\n"), "{body}");
    assert!(body.contains("catalogue: ok"), "{body}");
    assert!(body.contains("store: ok"), "{body}");
    assert!(body.contains("revision sha256 0123456789ab"), "{body}");
    assert!(body.contains("the newest file on disk"), "{body}");
    let leftovers: Vec<_> = std::fs::read_dir(setup.store()).unwrap().collect();
    assert!(
        leftovers.is_empty(),
        "the probe file is deleted: {leftovers:?}"
    );
}

#[tokio::test]
async fn healthz_closed_catalogue_is_unavailable() {
    let setup = Setup::new();
    let catalog = Catalog::open(&setup.dir.path().join("catalog.db"))
        .await
        .unwrap();
    let (site, _sender) = site(catalog.clone(), setup.status.clone());
    catalog.close().await;

    let (status, body) = healthz(&site).await;

    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.starts_with("unavailable\n"), "{body}");
    assert!(body.contains("catalogue: failed"), "{body}");
    assert!(
        body.contains("store: ok"),
        "only the catalogue fails: {body}"
    );
}

#[tokio::test]
async fn healthz_missing_store_is_unavailable() {
    let setup = Setup::new();
    std::fs::remove_dir(setup.store()).unwrap();
    let (site, _sender) = site(
        Catalog::open_in_memory().await.unwrap(),
        setup.status.clone(),
    );

    let (status, body) = healthz(&site).await;

    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("store: failed"), "{body}");
    assert!(
        body.contains(&setup.store().display().to_string()),
        "the reason names the store: {body}"
    );
    assert!(body.contains("catalogue: ok"), "{body}");
}

#[tokio::test]
async fn healthz_store_file_is_unavailable() {
    let setup = Setup::new();
    std::fs::remove_dir(setup.store()).unwrap();
    std::fs::write(setup.store(), "not a folder").unwrap();
    let (site, _sender) = site(
        Catalog::open_in_memory().await.unwrap(),
        setup.status.clone(),
    );

    let (status, body) = healthz(&site).await;

    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("is not a folder"), "{body}");
}

#[tokio::test]
async fn healthz_readonly_store_is_unavailable() {
    let setup = Setup::new();
    let store = setup.store();
    let (site, _sender) = site(
        Catalog::open_in_memory().await.unwrap(),
        setup.status.clone(),
    );
    let immutable = Immutable::set(&store);

    let (status, body) = healthz(&site).await;
    drop(immutable);

    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("is not writable"), "{body}");
}

#[tokio::test]
async fn healthz_low_free_space_is_unavailable() {
    let mut setup = Setup::new();
    setup.status.min_store_free_bytes = u64::MAX;
    let (site, _sender) = site(
        Catalog::open_in_memory().await.unwrap(),
        setup.status.clone(),
    );

    let (status, body) = healthz(&site).await;

    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body.contains("below service.min_store_free_bytes"),
        "the reason names the key: {body}"
    );
}

#[tokio::test]
async fn healthz_reports_changed_fleet_file() {
    let setup = Setup::new();
    let (site, sender) = site(
        Catalog::open_in_memory().await.unwrap(),
        setup.status.clone(),
    );
    std::fs::write(&setup.status.path, "# edited, not yet loaded\n").unwrap();
    sender.send_modify(|status| {
        status.last_error = Some(ReloadFailure {
            at: datetime!(2026-06-01 11:00 UTC),
            message: "fleet.toml:3:1: key `schedule.full`: invalid cron".to_string(),
        });
    });

    let (status, body) = healthz(&site).await;

    assert_eq!(
        status,
        StatusCode::OK,
        "a rejected reload leaves the process ready: {body}"
    );
    assert!(body.contains("the file on disk differs from it"), "{body}");
    assert!(
        body.contains("reload rejected at 2026-06-01T11:00:00Z"),
        "{body}"
    );
    assert!(body.contains("key `schedule.full`"), "{body}");
}
