//! Admin site pages rendered through the router from a catalogue with a few runs and
//! backups, a failed run and a database name that needs escaping and percent-encoding.

mod catalog_fixture;
mod web_session;

use std::net::SocketAddr;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use bakfleet::account::Role;
use bakfleet::backup::BackupType;
use bakfleet::catalog::{Catalog, DatabaseFacts, InstanceFacts};
use bakfleet::web::{check_public_address, router, serve, SessionSettings, WebState};
use catalog_fixture::{add_backup, new_run, record, T0};
use http_body_util::BodyExt;
use time::{Duration, OffsetDateTime};
use tower::ServiceExt;

/// A database name with a closing bracket, a quote, a space, a slash and non-ASCII text.
const WEIRD_NAME: &str = "Q1]'s Bestellungen/ä";
/// [`WEIRD_NAME`] percent-encoded as one path segment.
const WEIRD_SEGMENT: &str = "Q1%5D%27s%20Bestellungen%2F%C3%A4";

/// Ids of what [`sample_catalog`] stored.
struct Sample {
    full_id: i64,
    full_run_id: i64,
    weird_backup_id: i64,
    failed_run_id: i64,
}

async fn sample_catalog(catalog: &Catalog) -> Sample {
    let now = OffsetDateTime::now_utc();
    catalog
        .upsert_instance(&InstanceFacts {
            name: "sales-prod".to_string(),
            host: "sql01.corp.example".to_string(),
            port: 1433,
            product_version: Some("16.0.1000.6".to_string()),
            edition: Some("Standard Edition (64-bit)".to_string()),
            engine_edition: Some(2),
            server_name: Some("SQL01".to_string()),
        })
        .await
        .unwrap();
    catalog
        .upsert_database(
            "sales-prod",
            &DatabaseFacts {
                name: "orders".to_string(),
                recovery_model: Some("FULL".to_string()),
                state: Some("ONLINE".to_string()),
            },
        )
        .await
        .unwrap();

    let full = record(
        "sales-prod",
        "orders",
        BackupType::Full,
        now - Duration::days(2),
        5 << 20,
    );
    let (full_run_id, full_id) = add_backup(catalog, &full).await;
    let log = record(
        "sales-prod",
        "orders",
        BackupType::Log,
        now - Duration::minutes(10),
        4096,
    );
    add_backup(catalog, &log).await;
    let weird = record(
        "sales-prod",
        WEIRD_NAME,
        BackupType::Full,
        now - Duration::days(20),
        1024,
    );
    let (_, weird_backup_id) = add_backup(catalog, &weird).await;

    let failed_run_id = catalog
        .start_run(&new_run(
            "sales-prod",
            "orders",
            BackupType::Diff,
            now - Duration::minutes(1),
        ))
        .await
        .unwrap();
    catalog
        .fail_run(
            failed_run_id,
            "backup",
            "error 3201: Cannot open backup device <script>alert(1)</script>",
        )
        .await
        .unwrap();

    Sample {
        full_id,
        full_run_id,
        weird_backup_id,
        failed_run_id,
    }
}

/// Builds the site with every request logged in as a viewer.
async fn site(catalog: Catalog) -> Router {
    let session = web_session::session_for(&catalog, Role::Viewer).await;
    let router = router(WebState {
        catalog,
        fleet_name: "/etc/bakfleet/fleet.toml".to_string(),
        started_at: T0,
        limits: None,
        fleet_status: None,
        sessions: SessionSettings::default(),
        store: None,
        run_requests: None,
        fleet: None,
        metrics: false,
        live: None,
    });
    web_session::with_session(router, &session)
}

/// Escapes text as minijinja's HTML auto-escaping does, which includes `/`.
fn escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
        .replace('/', "&#x2f;")
}

async fn get(site: &Router, uri: &str) -> (StatusCode, String) {
    let request = Request::builder().uri(uri).body(Body::empty()).unwrap();
    let response = site.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn overview_shows_databases_and_ages() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let sample = sample_catalog(&catalog).await;
    let site = site(catalog).await;

    let (status, page) = get(&site, "/").await;

    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("sales-prod"), "{page}");
    assert!(
        page.contains("16.0.1000.6"),
        "instance facts missing: {page}"
    );
    assert!(
        page.contains(&escaped("/etc/bakfleet/fleet.toml")),
        "fleet file missing: {page}"
    );
    assert!(
        page.contains("href=\"/instances/sales-prod/databases/orders\""),
        "database link missing: {page}"
    );
    assert!(
        page.contains(&format!(
            "href=\"/instances/sales-prod/databases/{WEIRD_SEGMENT}\""
        )),
        "weird database link is not percent-encoded: {page}"
    );
    assert!(page.contains(&format!("href=\"/backups/{}\"", sample.full_id)));
    assert!(
        page.contains("age ok"),
        "the 2-day-old full is not within its RPO: {page}"
    );
    assert!(
        page.contains("age late"),
        "the 20-day-old full is not late: {page}"
    );
    assert!(
        page.contains("age missing"),
        "the missing diff is not marked: {page}"
    );
    assert!(
        page.contains("2 d 0 h ago"),
        "age of the full missing: {page}"
    );
    assert!(page.contains(&format!("href=\"/runs/{}\"", sample.failed_run_id)));
    assert!(page.contains("status failed"));
    assert!(
        page.contains("RPO 8 d 18 h"),
        "RPO derived from the built-in weekly full missing: {page}"
    );
}

#[tokio::test]
async fn overview_shows_a_new_backup_at_once() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let now = OffsetDateTime::now_utc();
    let old_full = record(
        "sales-prod",
        "orders",
        BackupType::Full,
        now - Duration::days(20),
        1024,
    );
    add_backup(&catalog, &old_full).await;
    let site = site(catalog.clone()).await;

    let (_, before) = get(&site, "/").await;
    let (_, filtered) = get(&site, "/?state=late").await;
    let full = record("sales-prod", "orders", BackupType::Full, now, 1024);
    let (_, full_id) = add_backup(&catalog, &full).await;
    let (_, after) = get(&site, "/").await;

    assert!(before.contains("age late"), "{before}");
    assert!(filtered.contains("href=\"/instances/sales-prod/databases/orders\""));
    assert!(
        after.contains(&format!("href=\"/backups/{full_id}\"")),
        "the overview of the same second still showed the old full: {after}"
    );
    let (_, filtered) = get(&site, "/?state=late").await;
    assert!(
        !filtered.contains("href=\"/instances/sales-prod/databases/orders\""),
        "a filtered overview of the same second still listed the database: {filtered}"
    );
}

#[tokio::test]
async fn pages_escape_html_in_catalogue_text() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let sample = sample_catalog(&catalog).await;
    let site = site(catalog).await;

    for uri in [
        "/".to_string(),
        "/runs".to_string(),
        format!("/runs/{}", sample.failed_run_id),
    ] {
        let (status, page) = get(&site, &uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert!(
            !page.contains("<script>"),
            "{uri} shows unescaped HTML: {page}"
        );
        assert!(
            page.contains("&lt;script&gt;"),
            "{uri} lacks the escaped error: {page}"
        );
    }
}

#[tokio::test]
async fn database_page_decodes_weird_name() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let sample = sample_catalog(&catalog).await;
    let site = site(catalog).await;

    let uri = format!("/instances/sales-prod/databases/{WEIRD_SEGMENT}");
    let (status, page) = get(&site, &uri).await;

    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains("Q1]&#x27;s Bestellungen"),
        "escaped name missing: {page}"
    );
    assert!(page.contains(&format!("href=\"/backups/{}\"", sample.weird_backup_id)));
    assert!(page.contains("1.0 KiB"));
}

#[tokio::test]
async fn database_page_lists_backups_and_runs() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let sample = sample_catalog(&catalog).await;
    let site = site(catalog).await;

    let (status, page) = get(&site, "/instances/sales-prod/databases/orders").await;

    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Recovery model FULL"));
    assert!(page.contains(&format!("href=\"/backups/{}\"", sample.full_id)));
    assert!(page.contains(&format!("href=\"/runs/{}\"", sample.full_run_id)));
    assert!(page.contains(&format!("href=\"/runs/{}\"", sample.failed_run_id)));
    assert!(page.contains("5.0 MiB"));
    assert!(page.contains("error 3201"));
    assert!(
        !page.contains(WEIRD_SEGMENT),
        "another database's rows leaked in"
    );
}

/// Returns the ids that the database page's backups or runs listing links to, in page
/// order; `prefix` is `/backups/` or `/runs/`.
fn linked_ids(page: &str, prefix: &str) -> Vec<i64> {
    let runs_at = page.find("<h2 id=\"runs\"").expect("a runs heading");
    let page = if prefix == "/runs/" {
        &page[runs_at..]
    } else {
        let backups_at = page.find("<h2 id=\"backups\"").expect("a backups heading");
        &page[backups_at..runs_at]
    };
    let pattern = format!("href=\"{prefix}");
    page.match_indices(&pattern)
        .filter_map(|(at, _)| {
            let rest = &page[at + pattern.len()..];
            rest[..rest.find('"')?].parse().ok()
        })
        .collect()
}

/// Returns the target of the link with this element id.
fn link_target(page: &str, id: &str) -> Option<String> {
    let tag_start = page.find(&format!("id=\"{id}\""))?;
    let tag = &page[page[..tag_start].rfind('<')?..];
    let href = &tag[tag.find("href=\"")? + 6..];
    Some(href[..href.find('"')?].replace("&amp;", "&"))
}

#[tokio::test]
async fn database_page_pages_through_backups_and_runs() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let now = OffsetDateTime::now_utc();
    let mut backup_ids = Vec::new();
    let mut run_ids = Vec::new();
    for minutes in 0..120 {
        let log = record(
            "sales-prod",
            "orders",
            BackupType::Log,
            now - Duration::minutes(minutes),
            4096,
        );
        let (run_id, backup_id) = add_backup(&catalog, &log).await;
        backup_ids.push(backup_id);
        run_ids.push(run_id);
    }
    let site = site(catalog).await;
    let base = "/instances/sales-prod/databases/orders";

    let (status, first) = get(&site, base).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(linked_ids(&first, "/backups/"), backup_ids[..50]);
    assert_eq!(linked_ids(&first, "/runs/"), run_ids[..50]);
    assert_eq!(link_target(&first, "newest-backups"), None);

    let older = link_target(&first, "older-backups").expect("a link to older backups");
    assert_eq!(
        older,
        format!("{base}?backups_before={}#backups", backup_ids[49])
    );
    let (_, second) = get(&site, older.trim_end_matches("#backups")).await;
    assert_eq!(linked_ids(&second, "/backups/"), backup_ids[50..100]);
    assert_eq!(
        linked_ids(&second, "/runs/"),
        run_ids[..50],
        "the runs stay at the newest page"
    );
    assert!(link_target(&second, "newest-backups").is_some());

    let runs_link = link_target(&second, "older-runs").expect("a link to older runs");
    assert!(
        runs_link.contains(&format!("backups_before={}", backup_ids[49])),
        "{runs_link}"
    );
    let (_, both) = get(&site, runs_link.trim_end_matches("#runs")).await;
    assert_eq!(linked_ids(&both, "/backups/"), backup_ids[50..100]);
    assert_eq!(linked_ids(&both, "/runs/"), run_ids[50..100]);

    let last = format!("{base}?backups_before={}", backup_ids[99]);
    let (_, third) = get(&site, &last).await;
    assert_eq!(linked_ids(&third, "/backups/"), backup_ids[100..]);
    assert_eq!(link_target(&third, "older-backups"), None);

    let (status, page) = get(&site, &format!("{base}?runs_before=yesterday")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("runs_before"), "{page}");
}

#[tokio::test]
async fn backup_page_shows_lsns_and_hash() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let sample = sample_catalog(&catalog).await;
    let backup = catalog.backup(sample.full_id).await.unwrap().unwrap();
    let site = site(catalog).await;

    let (status, page) = get(&site, &format!("/backups/{}", sample.full_id)).await;

    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains(&backup.first_lsn.to_string()),
        "first LSN missing: {page}"
    );
    assert!(
        page.contains(&backup.last_lsn.to_string()),
        "last LSN missing"
    );
    assert!(
        page.contains(&backup.checkpoint_lsn.to_string()),
        "checkpoint LSN missing"
    );
    assert!(
        page.contains("41000000012300001"),
        "database backup LSN missing"
    );
    assert!(page.contains(&backup.sha256), "SHA-256 missing");
    assert!(
        page.contains("yes (WITH CHECKSUM)"),
        "checksum flag missing"
    );
    assert!(
        page.contains(&escaped(&backup.store_path)),
        "store path missing: {page}"
    );
    assert!(page.contains("UTC+02:00"), "server time zone missing");
    assert!(page.contains("5242880 bytes"), "exact size missing");
    assert!(page.contains(&format!("href=\"/runs/{}\"", sample.full_run_id)));
}

#[tokio::test]
async fn runs_pages_show_errors_and_phase() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let sample = sample_catalog(&catalog).await;
    let site = site(catalog).await;

    let (status, list) = get(&site, "/runs").await;
    assert_eq!(status, StatusCode::OK);
    assert!(list.contains("status failed"));
    assert!(
        list.contains("<td>backup</td>"),
        "phase of the failed run missing: {list}"
    );
    assert!(
        list.contains(&format!("/databases/{WEIRD_SEGMENT}\"")),
        "weird link missing"
    );

    let (status, page) = get(&site, &format!("/runs/{}", sample.failed_run_id)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Last phase reached"));
    assert!(page.contains("error 3201: Cannot open backup device"));
    assert!(page.contains("host central01, PID 4242"));

    let (status, page) = get(&site, &format!("/runs/{}", sample.full_run_id)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(&format!("href=\"/backups/{}\"", sample.full_id)));
}

#[tokio::test]
async fn unknown_ids_return_not_found() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    sample_catalog(&catalog).await;
    let site = site(catalog).await;

    for uri in [
        "/backups/9999",
        "/backups/abc",
        "/runs/9999",
        "/runs/-1",
        "/instances/sales-prod/databases/nonexistent",
        "/instances/nowhere/databases/orders",
        "/no/such/page",
    ] {
        let (status, page) = get(&site, uri).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        assert!(
            page.contains("404 Not Found"),
            "{uri} has no error page: {page}"
        );
    }
}

#[tokio::test]
async fn healthz_and_stylesheet_respond() {
    let site = site(Catalog::open_in_memory().await.unwrap()).await;

    let (status, body) = get(&site, "/healthz").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.starts_with("ok\n"), "{body}");

    let request = Request::builder()
        .uri("/static/site.css")
        .body(Body::empty())
        .unwrap();
    let response = site.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/css; charset=utf-8"
    );
}

#[tokio::test]
async fn catalogue_failure_shows_plain_500() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.db");
    let catalog = Catalog::open(&path).await.unwrap();
    sample_catalog(&catalog).await;
    let site = site(catalog).await;
    // A second connection breaks the schema under the running site.
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&path);
    let saboteur = sqlx::SqlitePool::connect_with(options).await.unwrap();
    sqlx::query("ALTER TABLE runs RENAME TO runs_gone")
        .execute(&saboteur)
        .await
        .unwrap();

    let (status, page) = get(&site, "/runs").await;

    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(page.contains("500 Internal Server Error"), "{page}");
    assert!(page.contains("internal error"), "{page}");
    assert!(
        !page.contains("no such table"),
        "the SQL error leaked to the page: {page}"
    );
    let (status, body) = get(&site, "/healthz").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "healthz checks that the catalogue responds: {body}"
    );
}

#[tokio::test]
async fn serve_rejects_non_loopback_address() {
    let state = WebState {
        catalog: Catalog::open_in_memory().await.unwrap(),
        fleet_name: "fleet.toml".to_string(),
        started_at: T0,
        limits: None,
        fleet_status: None,
        sessions: SessionSettings::default(),
        store: None,
        run_requests: None,
        fleet: None,
        metrics: false,
        live: None,
    };
    let listen: SocketAddr = "0.0.0.0:0".parse().unwrap();

    let error = serve(listen, state, std::future::pending())
        .await
        .unwrap_err();

    let message = error.to_string();
    assert!(message.contains("0.0.0.0:0"), "{message}");
    assert!(message.contains("loopback"), "{message}");
}

#[tokio::test]
async fn public_address_needs_admin_user() {
    // Checked without binding: the tests listen on loopback only.
    let catalog = Catalog::open_in_memory().await.unwrap();
    let listen: SocketAddr = "192.0.2.10:8080".parse().unwrap();
    let error = check_public_address(listen, &catalog).await.unwrap_err();
    assert!(error.to_string().contains("no admin user"), "{error}");

    web_session::ensure_user(&catalog, "operator", Role::Operator).await;
    assert!(check_public_address(listen, &catalog).await.is_err());

    web_session::ensure_user(&catalog, "root", Role::Admin).await;
    assert!(check_public_address(listen, &catalog).await.is_ok());
}

#[tokio::test]
async fn serve_answers_healthz_on_loopback() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = free.local_addr().unwrap();
    drop(free);
    let state = WebState {
        catalog: Catalog::open_in_memory().await.unwrap(),
        fleet_name: "fleet.toml".to_string(),
        started_at: T0,
        limits: None,
        fleet_status: None,
        sessions: SessionSettings::default(),
        store: None,
        run_requests: None,
        fleet: None,
        metrics: false,
        live: None,
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listen, state, async move {
        let _ = stopped.await;
    }));

    let mut stream = connect_with_retry(listen).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\r\n\r\nok\n"), "{response}");

    stop.send(()).unwrap();
    server
        .await
        .unwrap()
        .expect("serve stops cleanly on shutdown");
}

async fn connect_with_retry(address: SocketAddr) -> tokio::net::TcpStream {
    for _ in 0..50 {
        if let Ok(stream) = tokio::net::TcpStream::connect(address).await {
            return stream;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the admin site did not start listening on {address}");
}

#[tokio::test]
async fn queue_page_lists_running_and_waiting() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let fleet = bakfleet::fleet::Fleet::parse(
        "[service]\nmax_jobs_per_instance = 1\n\n[[instance]]\nname = \"sales\"\n\
         host = \"h\"\nauth = { kind = \"sql\", user = \"u\", password_env = \"P\" }\n\
         staging = { local = { server_path = \"/b\", dir = \"/b\" } }\n",
        std::path::Path::new("/etc/bakfleet/fleet.toml"),
    )
    .unwrap();
    let limits = std::sync::Arc::new(bakfleet::job::Limits::new(&fleet.service));
    let staging = &fleet.instances[0].staging;
    let _running = limits
        .acquire("sales", "Orders <1>", BackupType::Full, staging)
        .await;
    let waiter = tokio::spawn({
        let limits = limits.clone();
        let staging = staging.clone();
        async move {
            let _slot = limits
                .acquire("sales", "HR", BackupType::Log, &staging)
                .await;
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let session = web_session::session_for(&catalog, Role::Viewer).await;
    let busy = router(WebState {
        catalog,
        fleet_name: "fleet.toml".to_string(),
        started_at: T0,
        limits: Some(limits),
        fleet_status: None,
        sessions: SessionSettings::default(),
        store: None,
        run_requests: None,
        fleet: None,
        metrics: false,
        live: None,
    });
    let busy = web_session::with_session(busy, &session);

    let (status, body) = get(&busy, "/queue").await;

    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("Running (1)"), "{body}");
    assert!(body.contains("Waiting (1)"), "{body}");
    assert!(body.contains(&escaped("Orders <1>")), "{body}");
    assert!(body.contains("1 per instance"), "{body}");
    waiter.abort();

    let without_jobs = site(Catalog::open_in_memory().await.unwrap()).await;
    let (status, body) = get(&without_jobs, "/queue").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("runs no jobs"), "{body}");
}

#[tokio::test]
async fn restore_page_shows_script() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let sample = sample_catalog(&catalog).await;
    let site = site(catalog).await;

    let (status, body) = get(&site, "/instances/sales-prod/databases/orders/restore").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body.contains("RESTORE DATABASE [orders] FROM DISK"),
        "{body}"
    );
    assert!(
        body.contains("RESTORE DATABASE [orders] WITH RECOVERY;"),
        "{body}"
    );
    assert!(
        body.contains(&format!("/backups/{}", sample.full_id)),
        "{body}"
    );

    let weird_page = format!("/instances/sales-prod/databases/{WEIRD_SEGMENT}/restore");
    let (status, body) = get(&site, &weird_page).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let quoted = escaped("RESTORE DATABASE [Q1]]'s Bestellungen/ä] FROM DISK");
    assert!(body.contains(&quoted), "{body}");

    // A new name needs MOVE clauses, and this backup has no file list.
    let (status, body) = get(&site, &format!("{weird_page}?as=copy%5D")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("cannot write MOVE clauses"), "{body}");
}

#[tokio::test]
async fn restore_page_explains_rejected_time() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    sample_catalog(&catalog).await;
    let site = site(catalog).await;

    let (status, body) = get(
        &site,
        "/instances/sales-prod/databases/orders/restore?at=2001-01-01+00%3A00%3A00",
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "no plan comes back: {body}"
    );
    assert!(body.contains("earliest point to restore to"), "{body}");

    let (status, body) = get(
        &site,
        "/instances/sales-prod/databases/orders/restore?at=soon",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("invalid time"), "{body}");

    let (status, body) = get(&site, "/instances/sales-prod/databases/nosuch/restore").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("databases with backups there"), "{body}");
    assert!(body.contains("orders"), "{body}");
}

#[tokio::test]
async fn run_page_shows_the_run_log_escaped() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let sample = sample_catalog(&catalog).await;
    let at = time::macros::datetime!(2024-05-01 10:00:02.145 UTC);
    let line = |seq: i64, level: &str, message: &str| bakfleet::catalog::RunLogLine {
        run_id: sample.failed_run_id,
        seq,
        at,
        level: level.to_string(),
        target: "bakfleet::job::backup".to_string(),
        message: message.to_string(),
    };
    catalog
        .append_run_log(&[
            line(0, "DEBUG", "phase started phase=backup"),
            line(1, "ERROR", "backup failed cause=\"<b>disk full</b>\""),
        ])
        .await
        .unwrap();
    let site = site(catalog).await;

    let (status, page) = get(&site, &format!("/runs/{}", sample.failed_run_id)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("id=\"run-log\""), "no log table: {page}");
    assert!(page.contains("10:00:02.145"), "line time missing: {page}");
    assert!(page.contains("phase started phase=backup"));
    assert!(
        page.contains("class=\"log-error\""),
        "error line not marked"
    );
    assert!(
        page.contains("&lt;b&gt;disk full&lt;"),
        "message not escaped"
    );

    let (status, page) = get(&site, &format!("/runs/{}", sample.full_run_id)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("id=\"run-log-empty\""),
        "no empty-log note: {page}"
    );
}

/// Adds `database` on `instance` under the SIMPLE recovery model with one full backup
/// that finished `age` ago.
async fn add_simple_database(catalog: &Catalog, instance: &str, database: &str, age: Duration) {
    catalog
        .upsert_database(
            instance,
            &DatabaseFacts {
                name: database.to_string(),
                recovery_model: Some("SIMPLE".to_string()),
                state: Some("ONLINE".to_string()),
            },
        )
        .await
        .unwrap();
    let full = record(
        instance,
        database,
        BackupType::Full,
        OffsetDateTime::now_utc() - age,
        1024,
    );
    add_backup(catalog, &full).await;
}

#[tokio::test]
async fn large_fleet_overview_is_compact() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    for (instance, count) in [("big", 300), ("calm", 5)] {
        catalog
            .upsert_instance(&InstanceFacts {
                name: instance.to_string(),
                host: "127.0.0.1".to_string(),
                port: 1433,
                product_version: Some("16.0.1000.6".to_string()),
                edition: None,
                engine_edition: None,
                server_name: None,
            })
            .await
            .unwrap();
        for index in 0..count {
            let database = format!("db{index:03}");
            add_simple_database(&catalog, instance, &database, Duration::hours(1)).await;
        }
    }
    add_simple_database(&catalog, "big", "stale", Duration::days(30)).await;
    let site = site(catalog).await;

    let (status, page) = get(&site, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("id=\"compact-note\""),
        "no compact note: {page}"
    );
    assert!(
        page.contains("/instances/big/databases/stale\""),
        "late row missing"
    );
    assert!(!page.contains("/databases/db000\""), "ok rows are listed");
    assert!(
        page.contains("300 more databases are ok"),
        "ok count missing"
    );
    assert!(page.contains("id=\"all-ok-instances\""), "no all-ok table");
    assert!(
        page.contains("href=\"/?instance=calm\""),
        "calm not in the all-ok table"
    );
    assert!(!page.contains("<h2>calm</h2>"), "calm has a full section");

    let (status, page) = get(&site, "/?instance=big").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !page.contains("id=\"compact-note\""),
        "filtered page is compact"
    );
    assert!(
        page.contains("/instances/big/databases/db000\""),
        "filter lists ok rows"
    );
}
