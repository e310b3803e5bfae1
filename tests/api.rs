//! The JSON API under /api/v1 through the router: bearer tokens from the token functions
//! for each role, missing, malformed, expired and removed tokens, cookie sessions with
//! their CSRF check, JSON shapes, paging, audit entries and the OpenAPI document. The
//! last test runs "run now" through `bakfleet serve` against the SQL Server simulator.

mod catalog_fixture;
mod support;
mod web_session;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::response::Response;
use axum::Router;
use bakfleet::account::Role;
use bakfleet::backup::BackupType;
use bakfleet::catalog::Catalog;
use bakfleet::web::{router, Access, RunStart, SessionSettings, WebState, ROUTES};
use catalog_fixture::{add_backup, record, T0};
use http_body_util::BodyExt;
use serde_json::Value;
use time::OffsetDateTime;
use tower::ServiceExt;

/// Returns one request per API route, with the parameters filled in and a JSON body for
/// POST.
fn api_case(method: &str, path: &str) -> Option<(&'static str, &'static str)> {
    let case = match (method, path) {
        ("GET", "/api/v1/health") => ("/api/v1/health", ""),
        ("GET", "/api/v1/instances") => ("/api/v1/instances", ""),
        ("GET", "/api/v1/instances/{instance}/databases") => {
            ("/api/v1/instances/sales/databases", "")
        }
        ("GET", "/api/v1/instances/{instance}/databases/{database}/backups") => {
            ("/api/v1/instances/sales/databases/orders/backups", "")
        }
        ("GET", "/api/v1/instances/{instance}/databases/{database}/restore-plan") => {
            ("/api/v1/instances/sales/databases/orders/restore-plan", "")
        }
        ("POST", "/api/v1/instances/{instance}/databases/{database}/run") => (
            "/api/v1/instances/sales/databases/orders/run",
            r#"{"type":"log"}"#,
        ),
        ("POST", "/api/v1/instances/{instance}/run") => {
            ("/api/v1/instances/sales/run", r#"{"type":"full"}"#)
        }
        ("GET", "/api/v1/backups/{id}") => ("/api/v1/backups/1", ""),
        ("POST", "/api/v1/backups/{id}/verify") => ("/api/v1/backups/1/verify", ""),
        ("GET", "/api/v1/runs") => ("/api/v1/runs", ""),
        ("GET", "/api/v1/runs/{id}") => ("/api/v1/runs/1", ""),
        ("GET", "/api/v1/runs/{id}/log") => ("/api/v1/runs/1/log", ""),
        _ => return None,
    };
    Some(case)
}

fn api_rules() -> impl Iterator<Item = &'static bakfleet::web::RouteRule> {
    ROUTES.iter().filter(|rule| rule.path.starts_with("/api/"))
}

fn state(catalog: Catalog) -> WebState {
    WebState {
        catalog,
        fleet_name: "fleet.toml".to_string(),
        started_at: T0,
        limits: None,
        fleet_status: None,
        sessions: SessionSettings::default(),
        store: None,
        run_requests: None,
        fleet: None,
        live: None,
        metrics: false,
    }
}

/// A site over a catalogue with two backups of sales/orders, whose store contains the
/// first one's file, and a job runner that starts run 42 for every request.
struct Site {
    router: Router,
    catalog: Catalog,
    _store: tempfile::TempDir,
}

async fn site() -> Site {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let store_dir = tempfile::tempdir().unwrap();
    let content = b"backup bytes";
    let mut full = record(
        "sales",
        "orders",
        BackupType::Full,
        T0,
        content.len() as u64,
    );
    full.sha256 = sha256_hex(content);
    let path = store_dir.path().join(&full.store_path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, content).unwrap();
    add_backup(&catalog, &full).await;
    let mut log = record(
        "sales",
        "orders",
        BackupType::Log,
        T0 + time::Duration::minutes(15),
        100,
    );
    // The log continues the full's chain, so a plan can stop inside it.
    log.first_lsn = full.last_lsn;
    log.last_lsn = bakfleet::backup::Lsn(full.last_lsn.0 + 1000);
    add_backup(&catalog, &log).await;

    let (sender, mut receiver) = tokio::sync::mpsc::channel::<bakfleet::web::RunRequest>(4);
    tokio::spawn(async move {
        while let Some(request) = receiver.recv().await {
            let _ = request.started.send(RunStart::Started(42));
        }
    });
    let mut state = state(catalog.clone());
    state.store = Some(std::sync::Arc::new(
        bakfleet::store::Store::open(store_dir.path()).unwrap(),
    ));
    state.run_requests = Some(sender);
    Site {
        router: router(state),
        catalog,
        _store: store_dir,
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

/// Issues a token named after `role` through the same function as `bakfleet token add`.
async fn token_for(catalog: &Catalog, role: Role) -> String {
    let name = format!("{role}-script");
    bakfleet::token::issue(catalog, &name, role, None, OffsetDateTime::now_utc())
        .await
        .unwrap()
        .secret
}

fn bearer(method: &str, uri: &str, body: &str, token: Option<&str>) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    if !body.is_empty() {
        builder = builder.header(header::CONTENT_TYPE, "application/json");
    }
    builder.body(Body::from(body.to_string())).unwrap()
}

async fn send(router: &Router, request: Request<Body>) -> Response {
    router.clone().oneshot(request).await.unwrap()
}

async fn json(response: Response) -> Value {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)))
}

async fn get_json(site: &Site, uri: &str, token: &str) -> Value {
    let response = send(&site.router, bearer("GET", uri, "", Some(token))).await;
    assert_eq!(response.status(), StatusCode::OK, "GET {uri}");
    json(response).await
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"))
}

#[test]
fn every_api_route_has_rule_and_case() {
    let source = include_str!("../src/web/api/mod.rs");
    let mut found = 0;
    for call in source.split(".route(").skip(1) {
        let start = call.find('"').unwrap();
        let rest = &call[start + 1..];
        let path = &rest[..rest.find('"').unwrap()];
        let handlers = &rest[..rest.find(')').unwrap_or(rest.len())];
        let method = if handlers.contains("post(") {
            "POST"
        } else {
            "GET"
        };
        let rule = ROUTES
            .iter()
            .find(|rule| rule.method == method && rule.path == path);
        assert!(rule.is_some(), "{method} {path} has no entry in ROUTES");
        found += 1;
    }
    assert!(found >= 10, "found only {found} API routes");
    for rule in api_rules() {
        assert!(
            api_case(rule.method, rule.path).is_some(),
            "{} {} has no case in api.rs",
            rule.method,
            rule.path
        );
    }
}

#[tokio::test]
async fn each_role_allowed_or_forbidden() {
    let site = site().await;
    for role in Role::ALL {
        let token = token_for(&site.catalog, role).await;
        for rule in api_rules() {
            let Access::Role(required) = rule.access else {
                panic!("{} {} is public", rule.method, rule.path);
            };
            let (uri, body) = api_case(rule.method, rule.path).unwrap();
            let label = format!("{} {} as {role}", rule.method, rule.path);
            let response = send(
                &site.router,
                bearer(rule.method, uri, body, Some(token.as_str())),
            )
            .await;
            let status = response.status();
            assert!(is_json(&response), "{label}: not JSON");
            if rule.path == "/api/v1/health" && role >= required {
                // This site has no fleet file to assess; the simulator test covers 200.
                assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{label}");
            } else if role >= required {
                assert!(status.is_success(), "{label}: {status}");
            } else {
                assert_eq!(status, StatusCode::FORBIDDEN, "{label}");
                let body = json(response).await;
                assert_eq!(body["status"], 403, "{label}");
                assert!(body["error"].as_str().unwrap().contains("role"), "{label}");
            }
        }
    }
}

#[tokio::test]
async fn missing_token_gets_challenge() {
    let site = site().await;
    for rule in api_rules() {
        let (uri, body) = api_case(rule.method, rule.path).unwrap();
        let label = format!("{} {}", rule.method, rule.path);
        let response = send(&site.router, bearer(rule.method, uri, body, None)).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{label}");
        let challenge = response.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap();
        assert!(challenge.starts_with("Bearer"), "{label}: {challenge}");
        assert!(!challenge.contains("invalid_token"), "{label}: {challenge}");
        assert_eq!(json(response).await["status"], 401, "{label}");
    }
}

#[tokio::test]
async fn malformed_authorization_gets_401() {
    let site = site().await;
    let token = token_for(&site.catalog, Role::Admin).await;
    let headers = [
        format!("Basic {token}"),
        "Bearer".to_string(),
        "Bearer bkf_0000".to_string(),
        format!("Bearer {}", token.trim_start_matches("bkf_")),
    ];
    for value in headers {
        let request = Request::builder()
            .uri("/api/v1/instances")
            .header(header::AUTHORIZATION, &value)
            .body(Body::empty())
            .unwrap();
        let response = send(&site.router, request).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{value}");
        let challenge = response.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap();
        assert!(challenge.contains("invalid_token"), "{value}: {challenge}");
    }
}

#[tokio::test]
async fn expired_token_gets_401() {
    let site = site().await;
    let issued_at = OffsetDateTime::now_utc() - time::Duration::days(3);
    let issued = bakfleet::token::issue(&site.catalog, "old", Role::Admin, Some(2), issued_at)
        .await
        .unwrap();
    let response = send(
        &site.router,
        bearer("GET", "/api/v1/instances", "", Some(issued.secret.as_str())),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn removed_token_gets_401() {
    let site = site().await;
    let token = token_for(&site.catalog, Role::Viewer).await;
    let request = || bearer("GET", "/api/v1/instances", "", Some(token.as_str()));
    assert_eq!(send(&site.router, request()).await.status(), StatusCode::OK);

    bakfleet::token::revoke(&site.catalog, "viewer-script")
        .await
        .unwrap();

    assert_eq!(
        send(&site.router, request()).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn token_use_recorded_in_list() {
    let site = site().await;
    let token = token_for(&site.catalog, Role::Viewer).await;
    let before = site.catalog.tokens().await.unwrap();
    assert_eq!(before[0].last_used_at, None);

    get_json(&site, "/api/v1/instances", &token).await;

    let after = site.catalog.tokens().await.unwrap();
    assert!(after[0].last_used_at.is_some());
}

#[tokio::test]
async fn bearer_rejected_on_html_pages() {
    let site = site().await;
    let token = token_for(&site.catalog, Role::Admin).await;
    for path in ["/", "/runs", "/audit"] {
        let response = send(&site.router, bearer("GET", path, "", Some(token.as_str()))).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
}

#[tokio::test]
async fn bearer_post_needs_no_csrf() {
    let site = site().await;
    let token = token_for(&site.catalog, Role::Operator).await;
    let mut request = bearer("POST", "/api/v1/backups/1/verify", "", Some(token.as_str()));
    // Origin checks apply to cookies; a script's bearer request passes without them.
    request
        .headers_mut()
        .insert("sec-fetch-site", "cross-site".parse().unwrap());
    let response = send(&site.router, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = json(response).await;
    assert_eq!(body["backup_id"], 1);
    assert_eq!(body["ok"], true);
}

#[tokio::test]
async fn cookie_post_needs_csrf_header() {
    let site = site().await;
    let session = web_session::session_for(&site.catalog, Role::Operator).await;
    let post = |csrf: Option<&str>| {
        let mut builder = Request::builder()
            .method("POST")
            .uri("/api/v1/backups/1/verify")
            .header(header::COOKIE, &session.cookie);
        if let Some(csrf) = csrf {
            builder = builder.header("x-csrf-token", csrf);
        }
        builder.body(Body::empty()).unwrap()
    };

    let response = send(&site.router, post(None)).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(is_json(&response));
    assert!(json(response).await["error"]
        .as_str()
        .unwrap()
        .contains("CSRF"));

    let response = send(&site.router, post(Some(&session.csrf_token))).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn cookie_get_reads_api() {
    let site = site().await;
    let session = web_session::session_for(&site.catalog, Role::Viewer).await;
    let request = Request::builder()
        .uri("/api/v1/instances/sales/databases")
        .header(header::COOKIE, &session.cookie)
        .body(Body::empty())
        .unwrap();
    let response = send(&site.router, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(is_json(&response));
}

#[tokio::test]
async fn database_and_backup_shapes() {
    let site = site().await;
    let token = token_for(&site.catalog, Role::Viewer).await;

    let databases = get_json(&site, "/api/v1/instances/sales/databases", &token).await;
    let orders = &databases[0];
    assert_eq!(orders["instance"], "sales");
    assert_eq!(orders["name"], "orders");
    assert_eq!(orders["last_full"]["id"], 1);
    assert_eq!(orders["last_full"]["finished_at"], "2024-05-01T10:00:00Z");
    assert_eq!(orders["last_log"]["id"], 2);
    assert_eq!(orders["last_diff"], Value::Null);
    assert_eq!(orders["last_run_status"], "succeeded");

    let backup = get_json(&site, "/api/v1/backups/1", &token).await;
    assert_eq!(backup["backup_type"], "full");
    assert_eq!(backup["sha256"], sha256_hex(b"backup bytes"));
    assert_eq!(backup["size_bytes"], 12);
    assert_eq!(backup["database_backup_lsn"], "41000000012300001");
    assert!(backup["first_lsn"].is_string());
    assert_eq!(backup["pruned"], false);
    assert_eq!(backup["families"][0]["family_number"], 1);
    assert_eq!(backup["families"][0]["sha256"], backup["sha256"]);
    assert_eq!(backup["recovery_model"], "FULL");

    let run = get_json(&site, "/api/v1/runs/1", &token).await;
    assert_eq!(run["status"], "succeeded");
    assert_eq!(run["backup_type"], "full");
    assert_eq!(run["backup_id"], 1);
    assert_eq!(run["trigger"], "schedule");
    assert!(run.get("note").is_some());

    site.catalog
        .append_run_log(&[bakfleet::catalog::RunLogLine {
            run_id: 1,
            seq: 0,
            at: T0,
            level: "INFO".to_string(),
            target: "bakfleet::job::verify".to_string(),
            message: "backup verified files=1".to_string(),
        }])
        .await
        .unwrap();
    let log = get_json(&site, "/api/v1/runs/1/log", &token).await;
    assert_eq!(log[0]["seq"], 0);
    assert_eq!(log[0]["level"], "INFO");
    assert_eq!(log[0]["message"], "backup verified files=1");
    assert!(log[0]["at"].is_string());
}

#[tokio::test]
async fn unknown_names_get_json_404() {
    let site = site().await;
    let token = token_for(&site.catalog, Role::Viewer).await;
    for uri in [
        "/api/v1/instances/nowhere/databases",
        "/api/v1/instances/sales/databases/nothere/backups",
        "/api/v1/backups/999",
        "/api/v1/backups/abc",
        "/api/v1/runs/999",
        "/api/v1/runs/999/log",
        "/api/v1/no-such-endpoint",
    ] {
        let response = send(&site.router, bearer("GET", uri, "", Some(token.as_str()))).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{uri}");
        assert!(is_json(&response), "{uri}");
        assert_eq!(json(response).await["status"], 404, "{uri}");
    }
}

#[tokio::test]
async fn backups_page_by_cursor() {
    let site = site().await;
    let token = token_for(&site.catalog, Role::Viewer).await;
    let uri = "/api/v1/instances/sales/databases/orders/backups";

    let first = get_json(&site, &format!("{uri}?limit=1"), &token).await;
    assert_eq!(first["items"].as_array().unwrap().len(), 1);
    assert_eq!(first["items"][0]["id"], 2);
    assert_eq!(first["next_before"], 2);

    let second = get_json(&site, &format!("{uri}?limit=1&before=2"), &token).await;
    assert_eq!(second["items"][0]["id"], 1);
    assert_eq!(second["items"][0]["backup_type"], "full");

    let last = get_json(&site, &format!("{uri}?limit=1&before=1"), &token).await;
    assert_eq!(last["items"].as_array().unwrap().len(), 0);
    assert_eq!(last["next_before"], Value::Null);

    let all = get_json(&site, uri, &token).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 2);
    assert_eq!(all["next_before"], Value::Null);
}

#[tokio::test]
async fn runs_filter_by_status() {
    let site = site().await;
    let run = catalog_fixture::new_run("sales", "orders", BackupType::Diff, T0);
    let failed = site.catalog.start_run(&run).await.unwrap();
    site.catalog
        .fail_run(failed, "backup", "BACKUP failed")
        .await
        .unwrap();
    let token = token_for(&site.catalog, Role::Viewer).await;

    let runs = get_json(&site, "/api/v1/runs?status=failed", &token).await;
    let items = runs["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], failed);
    assert_eq!(items[0]["error"], "BACKUP failed");

    let page = get_json(&site, "/api/v1/runs?limit=2", &token).await;
    assert_eq!(page["items"][0]["id"], failed);
    assert_eq!(page["next_before"], page["items"][1]["id"]);

    for bad in ["status=lost", "limit=0", "limit=501", "before=x"] {
        let uri = format!("/api/v1/runs?{bad}");
        let response = send(&site.router, bearer("GET", &uri, "", Some(token.as_str()))).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
}

#[tokio::test]
async fn restore_plan_returns_steps_and_sql() {
    let site = site().await;
    let token = token_for(&site.catalog, Role::Viewer).await;
    let uri = "/api/v1/instances/sales/databases/orders/restore-plan";

    let plan = get_json(&site, uri, &token).await;
    let steps = plan["steps"].as_array().unwrap();
    assert_eq!(steps[0]["backup_id"], 1);
    assert_eq!(steps[0]["backup_type"], "full");
    assert!(plan["sql"].as_str().unwrap().contains("RESTORE DATABASE"));
    assert!(!plan["windows"].as_array().unwrap().is_empty());

    let at = get_json(&site, &format!("{uri}?at=2024-05-01T10:10:00Z"), &token).await;
    assert_eq!(at["target"], "2024-05-01T10:10:00Z");
    assert!(at["sql"].as_str().unwrap().contains("STOPAT"));

    let response = send(
        &site.router,
        bearer(
            "GET",
            &format!("{uri}?at=yesterday"),
            "",
            Some(token.as_str()),
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(json(response).await["error"]
        .as_str()
        .unwrap()
        .contains("RFC 3339"));
}

#[tokio::test]
async fn verify_marks_backup_until_good() {
    let site = site().await;
    let operator = token_for(&site.catalog, Role::Operator).await;
    let backup = site.catalog.backup(1).await.unwrap().unwrap();
    let path = site._store.path().join(&backup.store_path);
    let verify = || {
        bearer(
            "POST",
            "/api/v1/backups/1/verify",
            "",
            Some(operator.as_str()),
        )
    };

    std::fs::write(&path, b"backup BYTES").unwrap();
    let result = json(send(&site.router, verify()).await).await;
    assert_eq!(result["ok"], false);
    assert!(
        result["detail"].as_str().unwrap().contains("SHA-256"),
        "{result}"
    );

    let marked = get_json(&site, "/api/v1/backups/1", &operator).await;
    assert_eq!(marked["failed_verification"]["finding"], "hash_mismatch");
    assert!(marked["failed_verification"]["found_at"].is_string());
    let page = get_json(
        &site,
        "/api/v1/instances/sales/databases/orders/backups",
        &operator,
    )
    .await;
    assert_eq!(page["items"][1]["id"], 1);
    assert_eq!(
        page["items"][1]["failed_verification"]["finding"],
        "hash_mismatch"
    );
    assert_eq!(page["items"][0]["failed_verification"], Value::Null);
    let databases = get_json(&site, "/api/v1/instances/sales/databases", &operator).await;
    assert_eq!(
        databases[0]["last_full"],
        Value::Null,
        "the full no longer counts"
    );
    let response = send(
        &site.router,
        bearer(
            "GET",
            "/api/v1/instances/sales/databases/orders/restore-plan",
            "",
            Some(operator.as_str()),
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error = json(response).await["error"].as_str().unwrap().to_string();
    assert!(error.contains("backup #1 (full backup"), "{error}");
    assert!(error.contains("failed verification"), "{error}");

    std::fs::write(&path, b"backup bytes").unwrap();
    let result = json(send(&site.router, verify()).await).await;
    assert_eq!(result["ok"], true);
    let cleared = get_json(&site, "/api/v1/backups/1", &operator).await;
    assert_eq!(cleared["failed_verification"], Value::Null);
    let databases = get_json(&site, "/api/v1/instances/sales/databases", &operator).await;
    assert_eq!(databases[0]["last_full"]["id"], 1);
}

#[tokio::test]
async fn run_now_answers_run_id() {
    let site = site().await;
    let token = token_for(&site.catalog, Role::Operator).await;
    let uri = "/api/v1/instances/sales/databases/orders/run";

    let response = send(
        &site.router,
        bearer("POST", uri, r#"{"type":"diff"}"#, Some(token.as_str())),
    )
    .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let body = json(response).await;
    assert_eq!(body["status"], "started");
    assert_eq!(body["run_id"], 42);

    for bad in [
        r#"{"type":"incremental"}"#,
        r#"{"kind":"full"}"#,
        "not json",
    ] {
        let response = send(&site.router, bearer("POST", uri, bad, Some(token.as_str()))).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert!(is_json(&response), "{bad}");
    }
}

#[tokio::test]
async fn token_calls_are_audited() {
    let site = site().await;
    let token = token_for(&site.catalog, Role::Operator).await;
    get_json(&site, "/api/v1/runs", &token).await;
    send(
        &site.router,
        bearer("POST", "/api/v1/backups/1/verify", "", Some(token.as_str())),
    )
    .await;
    let viewer = token_for(&site.catalog, Role::Viewer).await;
    send(
        &site.router,
        bearer(
            "POST",
            "/api/v1/backups/1/verify",
            "",
            Some(viewer.as_str()),
        ),
    )
    .await;

    let entries = site.catalog.audit_entries(10).await.unwrap();
    let find = |actor: &str, action: &str, target: &str| {
        entries.iter().find(|entry| {
            entry.actor == actor
                && entry.action == action
                && entry.target.as_deref() == Some(target)
        })
    };
    let read = find("operator-script", "api", "GET /api/v1/runs").expect("GET audited");
    assert_eq!(read.outcome, "ok");
    let verify = find("operator-script", "verify", "backup 1").expect("verify audited");
    assert_eq!(verify.outcome, "ok");
    let denied = find("viewer-script", "api", "POST /api/v1/backups/1/verify").expect("denial");
    assert_eq!(denied.outcome, "denied");
}

#[test]
fn openapi_document_is_current() {
    let generated = bakfleet::web::api::openapi_json();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} differs from the API's code; regenerate it with\n\n    \
         cargo run -- api openapi > docs/openapi.json\n",
        path.display()
    );
}

#[test]
fn openapi_lists_every_api_route() {
    let document: Value = serde_json::from_str(&bakfleet::web::api::openapi_json()).unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    assert_eq!(
        document["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    for rule in api_rules() {
        let operation = &document["paths"][rule.path][rule.method.to_lowercase()];
        assert!(
            operation.is_object(),
            "{} {} is missing from the OpenAPI document",
            rule.method,
            rule.path
        );
        assert!(
            operation["responses"]["200"].is_object() || operation["responses"]["202"].is_object()
        );
    }
}

#[test]
fn openapi_command_prints_document() {
    let output = Command::new(env!("CARGO_BIN_EXE_bakfleet"))
        .args(["api", "openapi"])
        .output()
        .expect("run bakfleet api openapi");
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        bakfleet::web::api::openapi_json()
    );
}

// --- "run now" through `bakfleet serve` against the simulator ---------------------------

/// Instance and database names as the simulator and the fleet file give them.
const INSTANCE: &str = "sales";
const DATABASE: &str = "Orders";

/// Maximum wait for the run to reach a final state. A 4 MiB database backs up in seconds
/// on the simulator, and the rest leaves room for a loaded machine.
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// Maximum wait for `bakfleet serve` to accept connections.
const START_LIMIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_now_via_api_against_simulator() {
    let fleet = SimulatedFleet::start();
    let token = fleet.add_token("deploy-bot", "operator");
    let viewer = fleet.add_token("dashboard", "viewer");
    fleet.back_up_once();
    let serve = fleet.start_serve();

    let uri = format!("/api/v1/instances/{INSTANCE}/databases/{DATABASE}/run");
    let started = http(serve.port, "POST", &uri, &token, r#"{"type":"diff"}"#);
    assert_eq!(started.status, 202, "{}", started.text());
    let run_id = started.json()["run_id"].as_i64().expect("a run id");

    let run = wait_for_run(serve.port, &viewer, run_id, &serve);
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["backup_type"], "diff");
    assert_eq!(run["trigger"], "manual");
    let backup_id = run["backup_id"].as_i64().expect("the run's backup");

    let backup = http(
        serve.port,
        "GET",
        &format!("/api/v1/backups/{backup_id}"),
        &viewer,
        "",
    );
    assert_eq!(backup.status, 200);
    let backup = backup.json();
    assert_eq!(backup["database"], DATABASE);
    assert_eq!(backup["backup_type"], "diff");
    let stored = fleet
        .dir
        .path()
        .join("store")
        .join(backup["store_path"].as_str().unwrap());
    let bytes = std::fs::read(&stored).expect("the stored backup file");
    assert_eq!(backup["sha256"], sha256_hex(&bytes));

    let denied = http(serve.port, "POST", &uri, &viewer, r#"{"type":"full"}"#);
    assert_eq!(denied.status, 403);

    let health = http(serve.port, "GET", "/api/v1/health", &viewer, "");
    assert_eq!(health.status, 200, "{}", health.text());
    let health = health.json();
    let orders = health["databases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["database"] == DATABASE)
        .unwrap_or_else(|| panic!("{DATABASE} missing from {health}"))
        .clone();
    assert_eq!(orders["instance"], INSTANCE);
    // Every schedule of this fleet is off, so no type has an RPO to miss.
    assert_eq!(orders["state"], "ok");
    assert_eq!(health["ok"], 1);

    let metrics = http(serve.port, "GET", "/metrics", "", "");
    assert_eq!(metrics.status, 200);
    let text = metrics.text();
    assert!(
        text.contains("bakfleet_runs_total{status=\"succeeded\"} 2"),
        "{text}"
    );
    assert!(text.contains(&format!(
        "bakfleet_last_backup_age_seconds{{instance=\"{INSTANCE}\",database=\"{DATABASE}\",type=\"diff\"}}"
    )));
    assert!(
        text.contains(&format!(
            "bakfleet_rpo_state{{instance=\"{INSTANCE}\",database=\"{DATABASE}\",state=\"ok\"}} 1"
        )),
        "{text}"
    );

    let catalog = Catalog::open(&fleet.dir.path().join("catalog.db"))
        .await
        .unwrap();
    let entries = catalog.audit_entries(50).await.unwrap();
    assert!(entries
        .iter()
        .any(|entry| entry.actor == "deploy-bot" && entry.action == "run"));
}

fn wait_for_run(port: u16, token: &str, run_id: i64, serve: &ServeGuard) -> Value {
    let started = Instant::now();
    loop {
        let response = http(port, "GET", &format!("/api/v1/runs/{run_id}"), token, "");
        assert_eq!(response.status, 200, "{}", response.text());
        let run = response.json();
        if run["status"] != "running" {
            return run;
        }
        assert!(
            started.elapsed() < RUN_LIMIT,
            "run {run_id} still running after {RUN_LIMIT:?}\n{}",
            serve.log_tail()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A simulated instance with one 4 MiB database, and a fleet file whose schedules are
/// off and whose site serves metrics.
struct SimulatedFleet {
    dir: tempfile::TempDir,
    simulator: Child,
    fleet: PathBuf,
    sql_password: String,
    listen_port: u16,
}

impl SimulatedFleet {
    fn start() -> SimulatedFleet {
        let dir = tempfile::tempdir().expect("temp dir");
        let staging = dir.path().join("staging");
        std::fs::create_dir_all(&staging).expect("staging dir");
        let sql_password = format!("B-{}", uuid::Uuid::new_v4().simple());
        let instance = support::SimulatedInstance {
            platform: "linux",
            edition: "developer",
            password: &sql_password,
            server_path: "/var/opt/mssql/backup",
            local_dir: &staging,
            databases: &[(DATABASE, 4, "FULL")],
            more_paths: &[],
        };
        let (simulator, sql_port) = support::start_simulated_instance(dir.path(), &instance);
        let listen_port = support::free_port();
        let fleet = dir.path().join("fleet.toml");
        std::fs::write(&fleet, fleet_config(sql_port, listen_port, &staging)).expect("fleet");
        SimulatedFleet {
            dir,
            simulator,
            fleet,
            sql_password,
            listen_port,
        }
    }

    fn bakfleet(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_bakfleet"));
        command
            .arg("--fleet")
            .arg(&self.fleet)
            .env("API_SQL_PASSWORD", &self.sql_password)
            .env_remove("RUST_LOG");
        command
    }

    /// Runs `bakfleet token add` and returns the token it printed.
    fn add_token(&self, name: &str, role: &str) -> String {
        let output = self
            .bakfleet()
            .args(["token", "add", name, "--role", role, "--expires", "1"])
            .output()
            .expect("run bakfleet token add");
        assert!(
            output.status.success(),
            "bakfleet token add failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let token = String::from_utf8(output.stdout).unwrap().trim().to_string();
        assert!(token.starts_with("bkf_"), "{token}");
        let list = self
            .bakfleet()
            .args(["token", "list"])
            .output()
            .expect("run bakfleet token list");
        let list = String::from_utf8(list.stdout).unwrap();
        assert!(list.contains(name), "{list}");
        assert!(!list.contains(&token), "token list shows the secret");
        token
    }

    /// Takes the first full backup with `bakfleet run`, so that "run now" can take a
    /// differential.
    fn back_up_once(&self) {
        let output = self
            .bakfleet()
            .args(["run", INSTANCE, DATABASE])
            .output()
            .expect("run bakfleet run");
        assert!(
            output.status.success(),
            "bakfleet run failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn start_serve(&self) -> ServeGuard {
        let log = self.dir.path().join("serve.log");
        let log_file = std::fs::File::create(&log).expect("create serve.log");
        let child = self
            .bakfleet()
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("start bakfleet serve");
        let guard = ServeGuard {
            child,
            port: self.listen_port,
            log,
        };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", guard.port)).is_err() {
            assert!(
                started.elapsed() < START_LIMIT,
                "bakfleet serve did not listen within {START_LIMIT:?}\n{}",
                guard.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        guard
    }
}

impl Drop for SimulatedFleet {
    fn drop(&mut self) {
        // SAFETY: signalling our own child by its PID.
        unsafe { libc::kill(self.simulator.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.simulator.wait();
    }
}

fn fleet_config(sql_port: u16, listen_port: u16, staging: &Path) -> String {
    format!(
        "[service]\nstore_dir = \"store\"\ncatalog = \"catalog.db\"\n\
         listen = \"127.0.0.1:{listen_port}\"\nmetrics = true\n\n\
         [defaults]\ncompression = false\nschedule.full = \"off\"\n\
         schedule.diff = \"off\"\nschedule.log = \"off\"\n\n\
         [[instance]]\nname = \"{INSTANCE}\"\n\
         host = \"127.0.0.1\"\nport = {sql_port}\n\
         auth = {{ kind = \"sql\", user = \"bakfleet\", password_env = \"API_SQL_PASSWORD\" }}\n\
         tls = {{ encrypt = \"not_supported\" }}\n\
         staging = {{ local = {{ server_path = \"/var/opt/mssql/backup\", dir = {:?} }} }}\n",
        staging.display().to_string()
    )
}

/// `bakfleet serve`, stopped by its PID with SIGTERM when dropped.
struct ServeGuard {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl ServeGuard {
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for ServeGuard {
    fn drop(&mut self) {
        // SAFETY: signalling our own child by its PID.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct HttpResponse {
    status: u16,
    body: Vec<u8>,
}

impl HttpResponse {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| panic!("not JSON: {}", self.text()))
    }
}

/// Sends one HTTP/1.1 request to the site on loopback, with a bearer token unless it is
/// empty, and reads the whole response (the connection closes after it).
fn http(port: u16, method: &str, path: &str, token: &str, body: &str) -> HttpResponse {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the site");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("set the read timeout");
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n");
    if !token.is_empty() {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    if !body.is_empty() {
        request.push_str("Content-Type: application/json\r\n");
    }
    request.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    stream
        .write_all(request.as_bytes())
        .expect("send the request");
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .expect("read the response");

    let split = response
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("{method} {path}: the response has no end of headers"));
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("{method} {path}: invalid status line in {head:?}"));
    let mut body = response[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    HttpResponse { status, body }
}

/// Joins the chunks of a chunked HTTP/1.1 body.
fn dechunk(mut bytes: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let Some(line_end) = bytes.windows(2).position(|window| window == b"\r\n") else {
            return body;
        };
        let size_text = String::from_utf8_lossy(&bytes[..line_end]);
        let size = usize::from_str_radix(size_text.trim(), 16).unwrap_or(0);
        if size == 0 {
            return body;
        }
        let start = line_end + 2;
        body.extend_from_slice(&bytes[start..start + size]);
        bytes = &bytes[start + size + 2..];
    }
}

/// Runs `bakfleet run INSTANCE DATABASE` and returns whether it succeeded and its stderr.
fn run_database(fleet: &SimulatedFleet, database: &str) -> (bool, String) {
    let output = fleet
        .bakfleet()
        .args(["run", INSTANCE, database])
        .output()
        .expect("run bakfleet run");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.success(), stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_run_rejects_misspelled_database() {
    let fleet = SimulatedFleet::start();
    let misspelled = format!("{DATABASE}x");
    let (succeeded, stderr) = run_database(&fleet, &misspelled);
    assert!(!succeeded, "{stderr}");
    let expected = format!("database {misspelled:?} not found on instance {INSTANCE}");
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(stderr.contains(DATABASE), "lists the databases: {stderr}");

    let (succeeded, stderr) = run_database(&fleet, &DATABASE.to_uppercase());
    assert!(!succeeded, "{stderr}");
    let hint = format!("names are matched exactly, so write {DATABASE:?}");
    assert!(stderr.contains(&hint), "{stderr}");

    let catalog = Catalog::open(&fleet.dir.path().join("catalog.db"))
        .await
        .unwrap();
    let runs = catalog.recent_runs(10).await.unwrap();
    assert!(
        runs.is_empty(),
        "a misspelled name records no run: {runs:?}"
    );
}
