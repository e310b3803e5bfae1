//! Access control of the admin site through the router: every route without a session,
//! with each role and with a forged CSRF token, plus login, logout, rate limiting,
//! session expiry, body limits and the audit log.

mod catalog_fixture;
mod web_session;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::response::Response;
use axum::Router;
use bakfleet::account::{self, Role};
use bakfleet::catalog::Catalog;
use bakfleet::web::{router, Access, SessionSettings, WebState, BODY_LIMIT, ROUTES};
use catalog_fixture::T0;
use http_body_util::BodyExt;
use tower::ServiceExt;
use web_session::{session_for, TestSession};

/// Password of the users that log in through the form.
const PASSWORD: &str = "correct horse battery staple";

/// One request per route: the URI with its parameters filled in, and the form body of a
/// POST without the CSRF token.
struct Case {
    uri: &'static str,
    form: &'static str,
}

/// Returns the request that exercises `rule`. Every route needs an arm here, so a new
/// route fails [`every_route_has_a_case`] until it gets one.
fn case_for(method: &str, path: &str) -> Option<Case> {
    let case = |uri, form| Some(Case { uri, form });
    match (method, path) {
        ("GET", "/") => case("/", ""),
        ("GET", "/instances/{instance}/databases/{database}") => {
            case("/instances/sales/databases/orders", "")
        }
        ("GET", "/instances/{instance}/databases/{database}/restore") => {
            case("/instances/sales/databases/orders/restore", "")
        }
        ("GET", "/backups/{id}") => case("/backups/1", ""),
        ("GET", "/runs") => case("/runs", ""),
        ("GET", "/runs/{id}") => case("/runs/1", ""),
        ("GET", "/runs/live") => case("/runs/live", ""),
        ("GET", "/runs/live/events") => case("/runs/live/events", ""),
        ("GET", "/static/live.js") => case("/static/live.js", ""),
        ("GET", "/queue") => case("/queue", ""),
        ("GET", "/storage") => case("/storage", ""),
        ("GET", "/healthz") => case("/healthz", ""),
        ("GET", "/static/site.css") => case("/static/site.css", ""),
        ("GET", "/login") => case("/login", ""),
        ("POST", "/login") => case("/login", "user=nobody&password=x"),
        ("POST", "/logout") => case("/logout", ""),
        ("GET", "/users") => case("/users", ""),
        ("POST", "/users") => case(
            "/users",
            "name=newuser&role=viewer&password=twelve+chars+ok",
        ),
        ("POST", "/users/{name}/remove") => case("/users/nobody/remove", ""),
        ("POST", "/users/{name}/password") => {
            case("/users/nobody/password", "password=twelve+chars+ok")
        }
        ("GET", "/audit") => case("/audit", ""),
        ("POST", "/instances/{instance}/run") => case("/instances/sales/run", "backup_type=full"),
        ("POST", "/instances/{instance}/databases/{database}/run") => {
            case("/instances/sales/databases/orders/run", "backup_type=log")
        }
        ("POST", "/backups/{id}/verify") => case("/backups/999/verify", ""),
        ("GET", "/backups/{id}/download") => case("/backups/999/download", ""),
        ("GET", "/metrics") => case("/metrics", ""),
        ("GET", "/api/v1/health") => case("/api/v1/health", ""),
        ("GET", "/api/v1/instances") => case("/api/v1/instances", ""),
        ("GET", "/api/v1/instances/{instance}/databases") => {
            case("/api/v1/instances/sales/databases", "")
        }
        ("GET", "/api/v1/instances/{instance}/databases/{database}/backups") => {
            case("/api/v1/instances/sales/databases/orders/backups", "")
        }
        ("GET", "/api/v1/instances/{instance}/databases/{database}/restore-plan") => {
            case("/api/v1/instances/sales/databases/orders/restore-plan", "")
        }
        ("POST", "/api/v1/instances/{instance}/databases/{database}/run") => {
            case("/api/v1/instances/sales/databases/orders/run", "type=log")
        }
        ("POST", "/api/v1/instances/{instance}/run") => {
            case("/api/v1/instances/sales/run", "type=full")
        }
        ("GET", "/api/v1/backups/{id}") => case("/api/v1/backups/1", ""),
        ("POST", "/api/v1/backups/{id}/verify") => case("/api/v1/backups/999/verify", ""),
        ("GET", "/api/v1/runs") => case("/api/v1/runs", ""),
        ("GET", "/api/v1/runs/{id}") => case("/api/v1/runs/1", ""),
        ("GET", "/api/v1/runs/{id}/log") => case("/api/v1/runs/1/log", ""),
        _ => None,
    }
}

fn state(catalog: Catalog, sessions: SessionSettings) -> WebState {
    WebState {
        catalog,
        fleet_name: "fleet.toml".to_string(),
        started_at: T0,
        limits: None,
        fleet_status: None,
        sessions,
        store: None,
        run_requests: None,
        fleet: None,
        metrics: false,
        live: None,
    }
}

async fn site() -> (Router, Catalog) {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let site = router(state(catalog.clone(), SessionSettings::default()));
    (site, catalog)
}

/// Builds a request; `session` adds the cookie, and `csrf` the form's token field.
fn request(
    method: &str,
    uri: &str,
    form: &str,
    session: Option<&TestSession>,
    csrf: Option<&str>,
) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    if let Some(session) = session {
        builder = builder.header(header::COOKIE, &session.cookie);
    }
    let mut body = form.to_string();
    if let Some(token) = csrf {
        if !body.is_empty() {
            body.push('&');
        }
        body.push_str(&format!("csrf_token={token}"));
    }
    if method == "POST" {
        builder = builder.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    builder.body(Body::from(body)).unwrap()
}

async fn send(site: &Router, request: Request<Body>) -> Response {
    site.clone().oneshot(request).await.unwrap()
}

async fn body_text(response: Response) -> String {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn location(response: &Response) -> &str {
    response
        .headers()
        .get(header::LOCATION)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
}

/// Lists the `.route(...)` calls of the router's source as (method, path) pairs.
fn routes_in_router_source() -> Vec<(String, String)> {
    let source = include_str!("../src/web/mod.rs");
    let mut routes = Vec::new();
    for call in source.split(".route(").skip(1) {
        let Some(start) = call.find('"') else {
            continue;
        };
        let rest = &call[start + 1..];
        let end = rest.find('"').unwrap();
        let path = rest[..end].to_string();
        // The method routers follow the path up to the call's closing line.
        let handlers = &rest[end..rest.find("\n        .").unwrap_or(rest.len())];
        for (marker, method) in [("get(", "GET"), ("post(", "POST")] {
            if handlers.contains(marker) {
                routes.push((method.to_string(), path.clone()));
            }
        }
    }
    routes
}

#[test]
fn every_route_has_a_rule() {
    let routes = routes_in_router_source();
    assert!(routes.len() >= 10, "found only {routes:?}");
    for (method, path) in routes {
        let rule = ROUTES
            .iter()
            .find(|rule| rule.method == method && rule.path == path);
        assert!(rule.is_some(), "{method} {path} has no entry in ROUTES");
    }
}

#[test]
fn every_route_has_a_case() {
    for rule in ROUTES {
        assert!(
            case_for(rule.method, rule.path).is_some(),
            "{} {} has no case in web_auth.rs",
            rule.method,
            rule.path
        );
    }
}

#[tokio::test]
async fn routes_without_session_need_login() {
    let (site, _catalog) = site().await;
    for rule in ROUTES.iter().filter(|rule| rule.access != Access::Public) {
        let case = case_for(rule.method, rule.path).unwrap();
        let label = format!("{} {}", rule.method, rule.path);
        if rule.path.starts_with("/api/") {
            // The API returns 401 with a bearer challenge to browsers too.
            let response = send(&site, request(rule.method, case.uri, case.form, None, None)).await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{label}");
            assert!(
                response.headers().contains_key(header::WWW_AUTHENTICATE),
                "{label}"
            );
            continue;
        }

        let mut browser = request(rule.method, case.uri, case.form, None, None);
        browser
            .headers_mut()
            .insert(header::ACCEPT, "text/html,*/*".parse().unwrap());
        let response = send(&site, browser).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{label}");
        assert!(location(&response).starts_with("/login"), "{label}");

        let script = request(rule.method, case.uri, case.form, None, None);
        let response = send(&site, script).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{label}");
    }
}

#[tokio::test]
async fn unknown_path_needs_login() {
    let (site, _catalog) = site().await;
    let response = send(&site, request("GET", "/no/such/page", "", None, None)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn public_routes_need_no_session() {
    let (site, _catalog) = site().await;
    for path in ["/healthz", "/static/site.css", "/static/live.js", "/login"] {
        let response = send(&site, request("GET", path, "", None, None)).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn each_role_allowed_or_forbidden() {
    let (site, catalog) = site().await;
    for rule in ROUTES {
        let Access::Role(required) = rule.access else {
            continue;
        };
        let case = case_for(rule.method, rule.path).unwrap();
        for role in Role::ALL {
            let label = format!("{} {} as {role}", rule.method, rule.path);
            // A fresh session per request, because logout ends the one it is sent with.
            let session = session_for(&catalog, role).await;
            let csrf = (rule.method == "POST").then_some(session.csrf_token.as_str());
            let response = send(
                &site,
                request(rule.method, case.uri, case.form, Some(&session), csrf),
            )
            .await;
            let status = response.status();
            if role >= required {
                assert_ne!(status, StatusCode::FORBIDDEN, "{label}");
                assert_ne!(status, StatusCode::UNAUTHORIZED, "{label}");
                assert!(!location(&response).starts_with("/login?"), "{label}");
            } else {
                assert_eq!(status, StatusCode::FORBIDDEN, "{label}");
            }
        }
    }
}

#[tokio::test]
async fn every_post_rejects_forged_csrf() {
    let (site, catalog) = site().await;
    for rule in ROUTES.iter().filter(|rule| rule.method == "POST") {
        let case = case_for(rule.method, rule.path).unwrap();
        let label = format!("POST {}", rule.path);
        let session = session_for(&catalog, Role::Admin).await;
        let forged = "0".repeat(64);

        let response = send(
            &site,
            request("POST", case.uri, case.form, Some(&session), Some(&forged)),
        )
        .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{label} forged");

        let response = send(
            &site,
            request("POST", case.uri, case.form, Some(&session), None),
        )
        .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{label} missing");
    }
}

#[tokio::test]
async fn post_from_other_origin_forbidden() {
    let (site, catalog) = site().await;
    let session = session_for(&catalog, Role::Viewer).await;
    let mut cross = request(
        "POST",
        "/logout",
        "",
        Some(&session),
        Some(&session.csrf_token),
    );
    let headers = cross.headers_mut();
    headers.insert(header::HOST, "bakfleet.corp".parse().unwrap());
    headers.insert(header::ORIGIN, "https://evil.example".parse().unwrap());
    assert_eq!(send(&site, cross).await.status(), StatusCode::FORBIDDEN);

    let mut fetch = request(
        "POST",
        "/logout",
        "",
        Some(&session),
        Some(&session.csrf_token),
    );
    fetch
        .headers_mut()
        .insert("sec-fetch-site", "cross-site".parse().unwrap());
    assert_eq!(send(&site, fetch).await.status(), StatusCode::FORBIDDEN);

    let entries = catalog.audit_entries(10).await.unwrap();
    assert!(entries.iter().any(|entry| entry.action == "csrf_rejected"));
}

#[tokio::test]
async fn oversized_body_gets_413() {
    let (site, catalog) = site().await;
    let session = session_for(&catalog, Role::Admin).await;
    let padding = "a".repeat(BODY_LIMIT + 1);
    let form = format!("name=x&padding={padding}");
    let big = request(
        "POST",
        "/users",
        &form,
        Some(&session),
        Some(&session.csrf_token),
    );
    let response = send(&site, big).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);

    let login = request("POST", "/login", &form, None, None);
    let response = send(&site, login).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

/// Fetches the login form and returns its login cookie and token.
async fn login_form(site: &Router) -> (String, String) {
    let response = send(site, request("GET", "/login", "", None, None)).await;
    let cookie = response
        .headers()
        .get(header::SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let page = body_text(response).await;
    let marker = "name=\"login_token\" value=\"";
    let start = page.find(marker).unwrap() + marker.len();
    let token = page[start..start + 64].to_string();
    (cookie, token)
}

async fn post_login(
    site: &Router,
    user: &str,
    password: &str,
    extra: &[(&'static str, &str)],
) -> Response {
    let (cookie, token) = login_form(site).await;
    let form = format!(
        "user={user}&password={}&login_token={token}&next=%2Fruns",
        password.replace(' ', "+")
    );
    let mut login = request("POST", "/login", &form, None, None);
    login
        .headers_mut()
        .insert(header::COOKIE, cookie.parse().unwrap());
    for (name, value) in extra {
        login.headers_mut().insert(*name, value.parse().unwrap());
    }
    send(site, login).await
}

async fn add_real_user(catalog: &Catalog, name: &str, role: Role) {
    let hash = account::hash_password(PASSWORD).unwrap();
    catalog
        .add_user(name, role, &hash, time::OffsetDateTime::now_utc())
        .await
        .unwrap();
}

fn session_cookie(response: &Response) -> String {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|value| value.to_str().unwrap().to_string())
        .find(|value| value.starts_with("bakfleet_session="))
        .unwrap_or_default()
}

#[tokio::test]
async fn login_sets_strict_session_cookie() {
    let (site, catalog) = site().await;
    add_real_user(&catalog, "alice", Role::Operator).await;

    let response = post_login(&site, "alice", PASSWORD, &[]).await;

    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/runs");
    let cookie = session_cookie(&response);
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(cookie.contains("Path=/"), "{cookie}");
    assert!(!cookie.contains("Secure"), "{cookie}");
    let value = cookie.split(';').next().unwrap().to_string();
    let page = Request::builder()
        .uri("/")
        .header(header::COOKIE, &value)
        .body(Body::empty())
        .unwrap();
    let response = send(&site, page).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = body_text(response).await;
    assert!(body.contains("alice (operator)"), "{body}");

    let entries = catalog.audit_entries(10).await.unwrap();
    assert_eq!(entries[0].action, "login");
    assert_eq!(entries[0].actor, "alice");
}

#[tokio::test]
async fn login_cookie_secure_behind_trusted_proxy() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let trusted = SessionSettings {
        trusted_proxy: true,
        ..SessionSettings::default()
    };
    let site = router(state(catalog.clone(), trusted));
    add_real_user(&catalog, "alice", Role::Viewer).await;

    let headers = [
        ("x-forwarded-proto", "https"),
        ("x-forwarded-for", "192.0.2.7"),
    ];
    let response = post_login(&site, "alice", PASSWORD, &headers).await;

    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(session_cookie(&response).contains("Secure"));
    let entries = catalog.audit_entries(10).await.unwrap();
    assert_eq!(entries[0].client.as_deref(), Some("192.0.2.7"));
}

#[tokio::test]
async fn forwarded_proto_ignored_without_trust() {
    let (site, catalog) = site().await;
    add_real_user(&catalog, "alice", Role::Viewer).await;
    let headers = [
        ("x-forwarded-proto", "https"),
        ("x-forwarded-for", "192.0.2.7"),
    ];
    let response = post_login(&site, "alice", PASSWORD, &headers).await;
    assert!(!session_cookie(&response).contains("Secure"));
    let entries = catalog.audit_entries(10).await.unwrap();
    assert_ne!(entries[0].client.as_deref(), Some("192.0.2.7"));
}

#[tokio::test]
async fn login_errors_read_the_same() {
    let (site, catalog) = site().await;
    add_real_user(&catalog, "alice", Role::Viewer).await;

    let wrong = post_login(&site, "alice", "wrong password here", &[]).await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let wrong = body_text(wrong).await;
    let unknown = post_login(&site, "mallory", PASSWORD, &[]).await;
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    let unknown = body_text(unknown).await;

    assert!(wrong.contains("Invalid user name or password."), "{wrong}");
    assert!(
        unknown.contains("Invalid user name or password."),
        "{unknown}"
    );
    let entries = catalog.audit_entries(10).await.unwrap();
    let failed = entries
        .iter()
        .filter(|entry| entry.action == "login_failed")
        .count();
    assert_eq!(failed, 2);
}

#[tokio::test]
async fn login_without_form_token_forbidden() {
    let (site, catalog) = site().await;
    add_real_user(&catalog, "alice", Role::Viewer).await;
    let form = format!("user=alice&password={}", PASSWORD.replace(' ', "+"));
    let response = send(&site, request("POST", "/login", &form, None, None)).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn failed_logins_lock_account() {
    let (site, catalog) = site().await;
    add_real_user(&catalog, "alice", Role::Viewer).await;
    for attempt in 0..5 {
        let response = post_login(&site, "alice", "wrong password here", &[]).await;
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "attempt {attempt}"
        );
    }

    // The right password now waits too, so guessing cannot go on at full speed.
    let response = post_login(&site, "alice", PASSWORD, &[]).await;

    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let body = body_text(response).await;
    assert!(body.contains("Too many failed logins"), "{body}");
}

#[tokio::test]
async fn logout_ends_session() {
    let (site, catalog) = site().await;
    let session = session_for(&catalog, Role::Viewer).await;
    let logout = request(
        "POST",
        "/logout",
        "",
        Some(&session),
        Some(&session.csrf_token),
    );
    let response = send(&site, logout).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/login");

    let after = request("GET", "/runs", "", Some(&session), None);
    assert_eq!(send(&site, after).await.status(), StatusCode::UNAUTHORIZED);
    let entries = catalog.audit_entries(10).await.unwrap();
    assert_eq!(entries[0].action, "logout");
}

#[tokio::test]
async fn idle_session_expires() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let short = SessionSettings {
        idle: std::time::Duration::from_millis(200),
        ..SessionSettings::default()
    };
    let site = router(state(catalog.clone(), short));
    let session = session_for(&catalog, Role::Viewer).await;
    let fresh = send(&site, request("GET", "/runs", "", Some(&session), None)).await;
    assert_eq!(fresh.status(), StatusCode::OK);

    tokio::time::sleep(std::time::Duration::from_millis(400)).await;

    let stale = send(&site, request("GET", "/runs", "", Some(&session), None)).await;
    assert_eq!(stale.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn absolute_session_age_expires() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let short = SessionSettings {
        max_age: std::time::Duration::from_millis(200),
        ..SessionSettings::default()
    };
    let site = router(state(catalog.clone(), short));
    let session = session_for(&catalog, Role::Viewer).await;
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let stale = send(&site, request("GET", "/runs", "", Some(&session), None)).await;
    assert_eq!(stale.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn admin_manages_users_with_audit() {
    let (site, catalog) = site().await;
    let admin = session_for(&catalog, Role::Admin).await;
    let post = |uri: &'static str, form: &'static str| {
        request("POST", uri, form, Some(&admin), Some(&admin.csrf_token))
    };

    let added = send(
        &site,
        post("/users", "name=bob&role=operator&password=twelve+chars+ok"),
    )
    .await;
    assert_eq!(added.status(), StatusCode::SEE_OTHER);
    let short = send(
        &site,
        post("/users", "name=carol&role=viewer&password=short"),
    )
    .await;
    assert_eq!(short.status(), StatusCode::BAD_REQUEST);
    assert!(body_text(short).await.contains("at least 12"));
    let reset = send(
        &site,
        post("/users/bob/password", "password=another+twelve"),
    )
    .await;
    assert_eq!(reset.status(), StatusCode::SEE_OTHER);
    let removed = send(&site, post("/users/bob/remove", "")).await;
    assert_eq!(removed.status(), StatusCode::SEE_OTHER);
    let last_admin = send(&site, post("/users/admin/remove", "")).await;
    assert_eq!(last_admin.status(), StatusCode::BAD_REQUEST);

    let users: Vec<String> = catalog
        .users()
        .await
        .unwrap()
        .into_iter()
        .map(|user| user.name)
        .collect();
    assert_eq!(users, ["admin"]);
    let actions: Vec<String> = catalog
        .audit_entries(10)
        .await
        .unwrap()
        .into_iter()
        .map(|entry| entry.action)
        .collect();
    assert_eq!(actions, ["user_remove", "user_password", "user_add"]);

    let page = send(&site, request("GET", "/audit", "", Some(&admin), None)).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(body_text(page).await.contains("user_password"));
}

#[tokio::test]
async fn forms_carry_csrf_token() {
    let (site, catalog) = site().await;
    let admin = session_for(&catalog, Role::Admin).await;
    let page = send(&site, request("GET", "/users", "", Some(&admin), None)).await;
    let body = body_text(page).await;
    let field = format!("name=\"csrf_token\" value=\"{}\"", admin.csrf_token);
    // The logout form in the header and the add form on the page.
    assert!(body.matches(&field).count() >= 2, "{body}");
}

/// Stores a full backup of sales/orders whose file contains `content` in the store at
/// `store_root`, catalogues it and returns its id.
async fn stored_backup(catalog: &Catalog, store_root: &std::path::Path, content: &[u8]) -> i64 {
    use sha2::{Digest, Sha256};
    let mut record = catalog_fixture::record(
        "sales",
        "orders",
        bakfleet::backup::BackupType::Full,
        time::OffsetDateTime::now_utc(),
        content.len() as u64,
    );
    record.sha256 = hex::encode(Sha256::digest(content));
    let path = store_root.join(&record.store_path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, content).unwrap();
    let (_, backup_id) = catalog_fixture::add_backup(catalog, &record).await;
    backup_id
}

/// Builds a site with a store and, when `runner` is given, a job runner channel.
async fn site_with_store(
    runner: Option<bakfleet::web::RunSender>,
) -> (Router, Catalog, tempfile::TempDir) {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = bakfleet::store::Store::open(dir.path()).unwrap();
    let mut state = state(catalog.clone(), SessionSettings::default());
    state.store = Some(std::sync::Arc::new(store));
    state.run_requests = runner;
    (router(state), catalog, dir)
}

#[tokio::test]
async fn run_now_redirects_to_run() {
    let (sender, mut receiver) = tokio::sync::mpsc::channel(1);
    let (site, catalog, dir) = site_with_store(Some(sender)).await;
    stored_backup(&catalog, dir.path(), b"test").await;
    let runner = tokio::spawn(async move {
        let request = receiver.recv().await.unwrap();
        let summary = (
            request.instance.clone(),
            request.database.clone(),
            request.backup_type,
            request.requested_by.clone(),
        );
        request
            .started
            .send(bakfleet::web::RunStart::Started(42))
            .unwrap();
        summary
    });
    let operator = session_for(&catalog, Role::Operator).await;

    let response = send(
        &site,
        request(
            "POST",
            "/instances/sales/databases/orders/run",
            "backup_type=log",
            Some(&operator),
            Some(&operator.csrf_token),
        ),
    )
    .await;

    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/runs/42");
    let (instance, database, backup_type, user) = runner.await.unwrap();
    assert_eq!(instance, "sales");
    assert_eq!(database.as_deref(), Some("orders"));
    assert_eq!(backup_type, bakfleet::backup::BackupType::Log);
    assert_eq!(user, "operator");
    let entry = &catalog.audit_entries(1).await.unwrap()[0];
    assert_eq!(entry.action, "run");
    assert_eq!(entry.target.as_deref(), Some("sales/orders"));
    assert_eq!(entry.detail.as_deref(), Some("log, run 42"));
}

#[tokio::test]
async fn run_now_rejects_unknown_database() {
    let (sender, _receiver) = tokio::sync::mpsc::channel(1);
    let (site, catalog, _dir) = site_with_store(Some(sender)).await;
    let operator = session_for(&catalog, Role::Operator).await;
    let response = send(
        &site,
        request(
            "POST",
            "/instances/sales/databases/nothere/run",
            "backup_type=full",
            Some(&operator),
            Some(&operator.csrf_token),
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn run_now_unknown_instance_not_found() {
    let (sender, _receiver) = tokio::sync::mpsc::channel(1);
    let (site, catalog, dir) = site_with_store(Some(sender)).await;
    stored_backup(&catalog, dir.path(), b"test").await;
    let operator = session_for(&catalog, Role::Operator).await;
    let response = send(
        &site,
        request(
            "POST",
            "/instances/nowhere/run",
            "backup_type=full",
            Some(&operator),
            Some(&operator.csrf_token),
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(body_text(response).await.contains("nowhere"));
}

#[tokio::test]
async fn run_now_reports_rejected_job() {
    let (sender, mut receiver) = tokio::sync::mpsc::channel(1);
    let (site, catalog, dir) = site_with_store(Some(sender)).await;
    stored_backup(&catalog, dir.path(), b"test").await;
    tokio::spawn(async move {
        let request: bakfleet::web::RunRequest = receiver.recv().await.unwrap();
        let reason = "lease held by another process".to_string();
        let _ = request
            .started
            .send(bakfleet::web::RunStart::Rejected(reason));
    });
    let operator = session_for(&catalog, Role::Operator).await;
    let response = send(
        &site,
        request(
            "POST",
            "/instances/sales/run",
            "backup_type=full",
            Some(&operator),
            Some(&operator.csrf_token),
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert!(body_text(response).await.contains("lease held"));
}

#[tokio::test]
async fn run_now_without_runner_unavailable() {
    let (site, catalog, dir) = site_with_store(None).await;
    stored_backup(&catalog, dir.path(), b"test").await;
    let operator = session_for(&catalog, Role::Operator).await;
    let response = send(
        &site,
        request(
            "POST",
            "/instances/sales/run",
            "backup_type=full",
            Some(&operator),
            Some(&operator.csrf_token),
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn verify_now_records_result() {
    let (site, catalog, dir) = site_with_store(None).await;
    let backup_id = stored_backup(&catalog, dir.path(), b"test").await;
    let operator = session_for(&catalog, Role::Operator).await;
    let uri = format!("/backups/{backup_id}/verify");
    let verify = || {
        request(
            "POST",
            &uri,
            "",
            Some(&operator),
            Some(&operator.csrf_token),
        )
    };

    let response = send(&site, verify()).await;

    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), format!("/backups/{backup_id}"));
    let entry = &catalog.audit_entries(1).await.unwrap()[0];
    assert_eq!(entry.action, "verify");
    assert_eq!(entry.outcome, "ok");

    // A flipped byte in the stored file fails the next check.
    let backup = catalog.backup(backup_id).await.unwrap().unwrap();
    std::fs::write(dir.path().join(&backup.store_path), b"tesT").unwrap();
    send(&site, verify()).await;
    let entry = &catalog.audit_entries(1).await.unwrap()[0];
    assert_eq!(entry.outcome, "failed");
    let page = send(
        &site,
        request(
            "GET",
            &format!("/backups/{backup_id}"),
            "",
            Some(&operator),
            None,
        ),
    )
    .await;
    let body = body_text(page).await;
    assert!(body.contains("id=\"last-verification\""), "{body}");
    assert!(body.contains("SHA-256"), "{body}");
}

#[tokio::test]
async fn download_serves_ranges_and_digest() {
    let (site, catalog, dir) = site_with_store(None).await;
    let content: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let backup_id = stored_backup(&catalog, dir.path(), &content).await;
    let operator = session_for(&catalog, Role::Operator).await;
    let uri = format!("/backups/{backup_id}/download");

    let whole = send(&site, request("GET", &uri, "", Some(&operator), None)).await;
    assert_eq!(whole.status(), StatusCode::OK);
    let headers = whole.headers().clone();
    let expected_hex = {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(&content))
    };
    assert_eq!(headers["x-checksum-sha256"], expected_hex.as_str());
    let digest = headers["digest"].to_str().unwrap().to_string();
    assert!(digest.starts_with("sha-256="), "{digest}");
    assert_eq!(headers[header::ACCEPT_RANGES], "bytes");
    let body = whole.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body.as_ref(), content.as_slice());

    let mut ranged = request("GET", &uri, "", Some(&operator), None);
    ranged
        .headers_mut()
        .insert(header::RANGE, "bytes=1000-1999".parse().unwrap());
    let partial = send(&site, ranged).await;
    assert_eq!(partial.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        partial.headers()[header::CONTENT_RANGE],
        "bytes 1000-1999/100000"
    );
    let body = partial.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body.as_ref(), &content[1000..2000]);

    let mut past_end = request("GET", &uri, "", Some(&operator), None);
    past_end
        .headers_mut()
        .insert(header::RANGE, "bytes=100000-".parse().unwrap());
    let response = send(&site, past_end).await;
    assert_eq!(response.status(), StatusCode::RANGE_NOT_SATISFIABLE);

    let entries = catalog.audit_entries(10).await.unwrap();
    let downloads = entries
        .iter()
        .filter(|entry| entry.action == "download")
        .count();
    assert_eq!(downloads, 3);
}

#[tokio::test]
async fn download_refused_after_failed_verify() {
    let (site, catalog, dir) = site_with_store(None).await;
    let backup_id = stored_backup(&catalog, dir.path(), b"test").await;
    let backup = catalog.backup(backup_id).await.unwrap().unwrap();
    let path = dir.path().join(&backup.store_path);
    let operator = session_for(&catalog, Role::Operator).await;
    let verify_uri = format!("/backups/{backup_id}/verify");
    let download_uri = format!("/backups/{backup_id}/download");
    let verify = || {
        request(
            "POST",
            &verify_uri,
            "",
            Some(&operator),
            Some(&operator.csrf_token),
        )
    };

    std::fs::write(&path, b"tesT").unwrap();
    assert_eq!(send(&site, verify()).await.status(), StatusCode::SEE_OTHER);
    let mark = catalog.verification_failure(backup_id).await.unwrap();
    assert!(mark.is_some(), "verify now marks the backup");

    let response = send(
        &site,
        request("GET", &download_uri, "", Some(&operator), None),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert!(response.headers().get("x-checksum-sha256").is_none());
    let body = body_text(response).await;
    assert!(
        body.contains(&format!("Backup {backup_id} (full backup")),
        "{body}"
    );
    assert!(body.contains("failed verification on"), "{body}");
    assert!(body.contains("SHA-256"), "{body}");
    assert!(!body.contains("tesT"), "{body}");

    let page = send(
        &site,
        request(
            "GET",
            &format!("/backups/{backup_id}"),
            "",
            Some(&operator),
            None,
        ),
    )
    .await;
    let page = body_text(page).await;
    assert!(page.contains("id=\"failed-verification\""), "{page}");
    assert!(!page.contains("id=\"download-link\""), "{page}");
    let database = send(
        &site,
        request(
            "GET",
            "/instances/sales/databases/orders",
            "",
            Some(&operator),
            None,
        ),
    )
    .await;
    let database = body_text(database).await;
    assert!(database.contains("failed verification"), "{database}");

    // The good bytes put back clear the mark, and the file is served again.
    std::fs::write(&path, b"test").unwrap();
    send(&site, verify()).await;
    assert_eq!(catalog.verification_failure(backup_id).await.unwrap(), None);
    let response = send(
        &site,
        request("GET", &download_uri, "", Some(&operator), None),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn download_refuses_path_outside_store() {
    let (site, catalog, dir) = site_with_store(None).await;
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret.bak");
    std::fs::write(&secret, b"test").unwrap();
    let mut record = catalog_fixture::record(
        "sales",
        "orders",
        bakfleet::backup::BackupType::Full,
        time::OffsetDateTime::now_utc(),
        4,
    );
    let escape = "../".repeat(dir.path().components().count());
    record.store_path = format!("{escape}{}", secret.display());
    let (_, traversal_id) = catalog_fixture::add_backup(&catalog, &record).await;
    record.store_path = secret.display().to_string();
    record.first_lsn.0 += 1_000_000;
    record.last_lsn.0 += 1_000_000;
    let (_, absolute_id) = catalog_fixture::add_backup(&catalog, &record).await;
    let operator = session_for(&catalog, Role::Operator).await;

    for id in [traversal_id, absolute_id] {
        let uri = format!("/backups/{id}/download");
        let response = send(&site, request("GET", &uri, "", Some(&operator), None)).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "backup {id}");
        assert!(!body_text(response).await.contains("test"), "backup {id}");
    }
    let response = send(
        &site,
        request(
            "GET",
            "/backups/..%2F..%2Fetc/download",
            "",
            Some(&operator),
            None,
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn live_events_stream_running_jobs() {
    use bakfleet::job::{JobEvent, JobEventKind, Phase};

    let catalog = Catalog::open_in_memory().await.unwrap();
    let live = bakfleet::web::LiveRuns::new();
    let mut state = state(catalog.clone(), SessionSettings::default());
    state.live = Some(live.clone());
    let site = router(state);
    let event = |kind| JobEvent {
        run_id: 41,
        instance: "sales-prod".to_string(),
        database: "Sales".to_string(),
        kind,
    };
    live.apply(
        &event(JobEventKind::Phase(Phase::Backup)),
        Some("full".into()),
    );
    let session = session_for(&catalog, Role::Viewer).await;

    let page = send(
        &site,
        request("GET", "/runs/live", "", Some(&session), None),
    )
    .await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = body_text(page).await;
    assert!(html.contains("data-run=\"41\""), "{html}");
    assert!(html.contains("/static/live.js"), "{html}");

    let response = send(
        &site,
        request("GET", "/runs/live/events", "", Some(&session), None),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()[header::CONTENT_TYPE].to_str().unwrap();
    assert_eq!(content_type, "text/event-stream");
    let mut body = response.into_body();
    live.apply(&event(JobEventKind::BackupPercent(37.5)), None);
    let mut text = String::new();
    while !text.contains("37.5") {
        let frame = tokio::time::timeout(std::time::Duration::from_secs(10), body.frame())
            .await
            .expect("an event within 10 s")
            .expect("the stream stays open")
            .unwrap();
        if let Ok(data) = frame.into_data() {
            text.push_str(&String::from_utf8_lossy(&data));
        }
    }
    assert!(text.contains("event: run"), "{text}");
    assert!(text.contains("\"phase\":\"backup\""), "{text}");
    assert!(text.contains("\"percent\":37.5"), "{text}");
    live.close();
}

/// A stop cuts off a download whose client stopped reading, after the site's limit for
/// open requests, so a stalled client cannot hold the process up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_cuts_off_stalled_download() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let catalog = Catalog::open_in_memory().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Far larger than the socket buffers, so the server blocks on the unread body.
    let content = vec![7u8; 64 << 20];
    let backup_id = stored_backup(&catalog, dir.path(), &content).await;
    let operator = session_for(&catalog, Role::Operator).await;
    let mut state = state(catalog.clone(), SessionSettings::default());
    state.store = Some(std::sync::Arc::new(
        bakfleet::store::Store::open(dir.path()).unwrap(),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(bakfleet::web::serve_on(listener, state, async {
        let _ = stopped.await;
    }));

    let mut client = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!(
        "GET /backups/{backup_id}/download HTTP/1.1\r\nHost: {address}\r\nCookie: {}\r\n\r\n",
        operator.cookie
    );
    client.write_all(request.as_bytes()).await.unwrap();
    let mut head = [0u8; 512];
    let read = client.read(&mut head).await.unwrap();
    assert!(
        String::from_utf8_lossy(&head[..read]).starts_with("HTTP/1.1 200"),
        "the download starts"
    );

    let stopping = std::time::Instant::now();
    stop.send(()).unwrap();
    let result = tokio::time::timeout(std::time::Duration::from_secs(60), server)
        .await
        .expect("the site stops while the download is still open")
        .expect("server task");
    assert!(result.is_ok(), "{result:?}");
    assert!(
        stopping.elapsed() >= std::time::Duration::from_secs(5),
        "open requests get time to finish first"
    );
    drop(client);
}

#[tokio::test]
async fn verify_now_rejects_pruned_backup() {
    let (site, catalog, dir) = site_with_store(None).await;
    let backup_id = stored_backup(&catalog, dir.path(), b"test").await;
    let backup = catalog.backup(backup_id).await.unwrap().unwrap();
    catalog
        .mark_pruned(backup_id, "expired", time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    std::fs::remove_file(dir.path().join(&backup.store_path)).unwrap();
    let operator = session_for(&catalog, Role::Operator).await;

    let response = send(
        &site,
        request(
            "POST",
            &format!("/backups/{backup_id}/verify"),
            "",
            Some(&operator),
            Some(&operator.csrf_token),
        ),
    )
    .await;

    assert_eq!(response.status(), StatusCode::CONFLICT);
    let body = body_text(response).await;
    assert!(body.contains("deleted by retention"), "{body}");
    assert_eq!(catalog.verification_failure(backup_id).await.unwrap(), None);
}
