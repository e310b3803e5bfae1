//! Access control of the admin site: which role each route needs, the session cookie,
//! and the CSRF and origin checks on every POST. One middleware applies all of it.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use rand::RngCore;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::audit;
use super::error::WebError;
use super::templates::path_segment;
use super::Site;
use crate::account::Role;
use crate::catalog::{AuditOutcome, SessionRow};

/// Name of the session cookie.
pub(super) const SESSION_COOKIE: &str = "bakfleet_session";

/// Maximum request body in bytes. Forms of this site are far smaller, so a larger body
/// gets 413 before any handler reads it.
pub const BODY_LIMIT: usize = 64 * 1024;

/// How often at most a session's last activity is written, so that a page with many
/// requests does not write the catalogue on each one.
const TOUCH_INTERVAL: time::Duration = time::Duration::seconds(60);

/// Access level a route requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without a session: the login page, the stylesheet and `/healthz`.
    Public,
    /// Users with this role or a higher one.
    Role(Role),
}

/// The access rule of one route: `path` as the router spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteRule {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
}

const fn rule(method: &'static str, path: &'static str, access: Access) -> RouteRule {
    RouteRule {
        method,
        path,
        access,
    }
}

const VIEWER: Access = Access::Role(Role::Viewer);
const OPERATOR: Access = Access::Role(Role::Operator);
const ADMIN: Access = Access::Role(Role::Admin);

/// Every route of the router with the access it needs. A route missing here returns 500,
/// so a new route cannot be reached before it has a rule.
pub const ROUTES: &[RouteRule] = &[
    rule("GET", "/", VIEWER),
    rule("GET", "/instances/{instance}/databases/{database}", VIEWER),
    rule(
        "GET",
        "/instances/{instance}/databases/{database}/restore",
        VIEWER,
    ),
    rule("GET", "/backups/{id}", VIEWER),
    rule("GET", "/runs", VIEWER),
    rule("GET", "/runs/{id}", VIEWER),
    rule("GET", "/runs/live", VIEWER),
    rule("GET", "/runs/live/events", VIEWER),
    rule("GET", "/static/live.js", Access::Public),
    rule("GET", "/queue", VIEWER),
    rule("GET", "/storage", VIEWER),
    rule("GET", "/healthz", Access::Public),
    // Served only when `service.metrics` is true; the proxy restricts who reaches it.
    rule("GET", "/metrics", Access::Public),
    rule("GET", "/static/site.css", Access::Public),
    rule("GET", "/login", Access::Public),
    rule("POST", "/login", Access::Public),
    rule("POST", "/logout", VIEWER),
    rule("GET", "/users", ADMIN),
    rule("POST", "/users", ADMIN),
    rule("POST", "/users/{name}/remove", ADMIN),
    rule("POST", "/users/{name}/password", ADMIN),
    rule("GET", "/audit", ADMIN),
    rule("POST", "/instances/{instance}/run", OPERATOR),
    rule(
        "POST",
        "/instances/{instance}/databases/{database}/run",
        OPERATOR,
    ),
    rule("POST", "/backups/{id}/verify", OPERATOR),
    // Operators only, because a backup file contains the whole database.
    rule("GET", "/backups/{id}/download", OPERATOR),
    rule("GET", "/api/v1/health", VIEWER),
    rule("GET", "/api/v1/instances", VIEWER),
    rule("GET", "/api/v1/instances/{instance}/databases", VIEWER),
    rule(
        "GET",
        "/api/v1/instances/{instance}/databases/{database}/backups",
        VIEWER,
    ),
    rule(
        "GET",
        "/api/v1/instances/{instance}/databases/{database}/restore-plan",
        VIEWER,
    ),
    rule(
        "POST",
        "/api/v1/instances/{instance}/databases/{database}/run",
        OPERATOR,
    ),
    rule("POST", "/api/v1/instances/{instance}/run", OPERATOR),
    rule("GET", "/api/v1/backups/{id}", VIEWER),
    rule("POST", "/api/v1/backups/{id}/verify", OPERATOR),
    rule("GET", "/api/v1/runs", VIEWER),
    rule("GET", "/api/v1/runs/{id}", VIEWER),
    rule("GET", "/api/v1/runs/{id}/log", VIEWER),
];

/// Session lifetimes and the trust placed in the reverse proxy in front of the site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionSettings {
    /// A session ends after this long without a request.
    pub idle: Duration,
    /// A session ends this long after login, however active.
    pub max_age: Duration,
    /// Whether `X-Forwarded-Proto` and `X-Forwarded-For` come from a trusted proxy.
    pub trusted_proxy: bool,
}

impl Default for SessionSettings {
    fn default() -> SessionSettings {
        SessionSettings {
            idle: Duration::from_secs(30 * 60),
            max_age: Duration::from_secs(12 * 3600),
            trusted_proxy: false,
        }
    }
}

impl SessionSettings {
    /// Reads the session keys of `[service]`.
    pub fn from_service(service: &crate::fleet::Service) -> SessionSettings {
        SessionSettings {
            idle: service.session_idle,
            max_age: service.session_max,
            trusted_proxy: service.trusted_proxy,
        }
    }
}

/// The logged-in user of a request, which the access middleware puts into the request's
/// extensions and into [`CURRENT_USER`] for the templates.
#[derive(Debug, Clone)]
pub(super) struct CurrentUser {
    pub name: String,
    pub role: Role,
    pub csrf_token: String,
    pub session_hash: String,
    /// Client address, from `X-Forwarded-For` only when the proxy is trusted.
    pub client: String,
}

tokio::task_local! {
    /// The user of the request being handled, so that every rendered page shows who is
    /// logged in and carries the CSRF token without each handler passing it on.
    pub(super) static CURRENT_USER: CurrentUser;
}

/// Applies the access rule of the matched route: a session for every route but the
/// public ones, the route's role, and the CSRF and origin checks on POST.
pub(super) async fn enforce_access(
    State(site): State<Site>,
    request: Request,
    next: Next,
) -> Response {
    let Some(access) = route_access(&request) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    if access == Access::Public {
        return next.run(request).await;
    }
    let Access::Role(required) = access else {
        unreachable!("public routes returned above");
    };
    // Bearer tokens count on the API only; HTML pages need a session.
    let is_api = super::api::is_api_path(request.uri().path());
    if is_api && super::api::access::bearer_token(&request).is_some() {
        return super::api::access::enforce_bearer(&site, required, request, next).await;
    }

    let client = client_address(&site.state.sessions, &request);
    let user = match current_session(&site, request.headers()).await {
        Ok(Some(session)) => CurrentUser {
            name: session.user_name,
            role: session.role,
            csrf_token: session.csrf_token,
            session_hash: session.id_hash,
            client,
        },
        Ok(None) if is_api => {
            return super::api::access::unauthorized(
                "Send Authorization: Bearer with a token from `bakfleet token add`, or a \
                 session cookie from /login.",
                false,
            )
        }
        Ok(None) => return login_required(&request),
        Err(error) => return error.into_response(),
    };

    let is_post = request.method() == Method::POST;
    if user.role < required {
        if is_post {
            let target = request.uri().path().to_string();
            audit::record(
                &site,
                &user.name,
                "forbidden",
                Some(target),
                AuditOutcome::Denied,
            )
            .client(&user.client)
            .detail(format!("role {} lacks {required}", user.role))
            .save()
            .await;
        }
        return WebError::Forbidden(format!(
            "This page needs the {required} role; your account {} has the {} role.",
            user.name, user.role
        ))
        .into_response();
    }

    let request = if is_post {
        match check_post(&site, &user, request).await {
            Ok(request) => request,
            Err(response) => return response,
        }
    } else {
        request
    };

    let mut request = request;
    request.extensions_mut().insert(user.clone());
    CURRENT_USER.scope(user, next.run(request)).await
}

/// Finds the access rule of the matched route, or `None` for a route without one.
/// Unmatched paths need a viewer, so that an unknown address does not return 404 before
/// login.
fn route_access(request: &Request) -> Option<Access> {
    let Some(matched) = request.extensions().get::<MatchedPath>() else {
        return Some(VIEWER);
    };
    let method = request.method().as_str();
    // HEAD requests reach GET handlers.
    let method = if method == "HEAD" { "GET" } else { method };
    let rule = ROUTES
        .iter()
        .find(|rule| rule.path == matched.as_str() && rule.method == method);
    match rule {
        Some(rule) => Some(rule.access),
        // A method the route does not serve: the router returns 405 for it.
        None if ROUTES.iter().any(|rule| rule.path == matched.as_str()) => Some(VIEWER),
        None => {
            tracing::error!(path = matched.as_str(), method, "route has no access rule");
            None
        }
    }
}

/// Returns the session of the request's cookie, or `None` when there is none or it
/// expired. An expired session is deleted.
async fn current_session(site: &Site, headers: &HeaderMap) -> Result<Option<SessionRow>, WebError> {
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let id_hash = hash_token(token);
    let catalog = &site.state.catalog;
    let Some(session) = catalog.session(&id_hash).await? else {
        return Ok(None);
    };

    let now = OffsetDateTime::now_utc();
    let settings = &site.state.sessions;
    let idle = now - session.last_seen_at;
    let age = now - session.created_at;
    if idle > settings.idle || age > settings.max_age {
        tracing::info!(user = %session.user_name, "session expired");
        catalog.delete_session(&id_hash).await?;
        return Ok(None);
    }
    if idle > TOUCH_INTERVAL {
        catalog.touch_session(&id_hash, now).await?;
    }
    Ok(Some(session))
}

/// Redirects a browser to the login page and returns 401 to other clients.
fn login_required(request: &Request) -> Response {
    if !wants_html(request.headers()) {
        return (
            StatusCode::UNAUTHORIZED,
            "Log in first: open /login in a browser. Scripts use the JSON API under /api/v1 \
             with a bearer token from `bakfleet token add`.",
        )
            .into_response();
    }
    let next = request
        .uri()
        .path_and_query()
        .map(|path| path.as_str())
        .unwrap_or("/");
    let target = if request.method() == Method::GET && next != "/" {
        format!("/login?next={}", path_segment(next))
    } else {
        "/login".to_string()
    };
    Redirect::to(&target).into_response()
}

/// Returns true for requests from a browser, which send `text/html` in `Accept`.
fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

/// Checks the origin and the CSRF token of a POST, and returns the request with its body
/// read into memory so that the handler can read it again.
async fn check_post(
    site: &Site,
    user: &CurrentUser,
    request: Request,
) -> Result<Request, Response> {
    let target = request.uri().path().to_string();
    let deny = |reason: String| async {
        audit::record(
            site,
            &user.name,
            "csrf_rejected",
            Some(target.clone()),
            AuditOutcome::Denied,
        )
        .client(&user.client)
        .detail(reason.clone())
        .save()
        .await;
        WebError::Forbidden(reason).into_response()
    };

    if let Err(reason) = check_origin(request.headers()) {
        return Err(deny(reason).await);
    }
    let header_token = request
        .headers()
        .get("x-csrf-token")
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    let (parts, body) = request.into_parts();
    let bytes = read_body(body).await?;
    let form_token = form_field(&bytes, "csrf_token");
    let sent = form_token.or(header_token);
    let matches = sent
        .as_deref()
        .is_some_and(|sent| constant_time_eq(sent.as_bytes(), user.csrf_token.as_bytes()));
    if !matches {
        let reason = "The form's CSRF token is missing or does not match your session; \
                      reload the page and submit the form again."
            .to_string();
        return Err(deny(reason).await);
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// Reads a request body of at most [`BODY_LIMIT`] bytes; a larger one gets 413.
pub(super) async fn read_body(body: Body) -> Result<axum::body::Bytes, Response> {
    axum::body::to_bytes(body, BODY_LIMIT).await.map_err(|_| {
        WebError::PayloadTooLarge(format!(
            "The request body is larger than {BODY_LIMIT} bytes, the most this site accepts."
        ))
        .into_response()
    })
}

/// Returns the first value of `name` in a URL-encoded form body.
pub(super) fn form_field(body: &[u8], name: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).ok()?;
    pairs
        .into_iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
}

/// Rejects a request that a browser marks as sent from another site: `Sec-Fetch-Site`
/// other than `same-origin`, or an `Origin` whose host differs from `Host`. Clients that
/// send neither header (scripts, older browsers) pass; the CSRF token still applies.
pub(super) fn check_origin(headers: &HeaderMap) -> Result<(), String> {
    let text = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    if let Some(site) = text("sec-fetch-site") {
        if site != "same-origin" {
            return Err(format!(
                "The browser reports this request as sent from another site \
                 (Sec-Fetch-Site: {site}); submit the form from this site's own pages."
            ));
        }
    }
    let Some(origin) = text("origin") else {
        return Ok(());
    };
    let origin_host = origin.split_once("://").map(|(_, host)| host);
    let host = text("host");
    if origin_host.is_none() || origin_host != host {
        return Err(format!(
            "The request comes from origin {origin:?}, not from this site ({}); submit the \
             form from this site's own pages.",
            host.unwrap_or("no Host header")
        ));
    }
    Ok(())
}

/// Returns the value of cookie `name`, if the request sent it.
pub(super) fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Builds a `Set-Cookie` value with the site's attributes: `HttpOnly`, `SameSite=Strict`
/// and `Secure` when the request came over HTTPS.
pub(super) fn cookie_header(
    name: &str,
    value: &str,
    path: &str,
    secure: bool,
    max_age: Option<i64>,
) -> String {
    let mut cookie = format!("{name}={value}; HttpOnly; SameSite=Strict; Path={path}");
    if let Some(seconds) = max_age {
        cookie.push_str(&format!("; Max-Age={seconds}"));
    }
    if secure {
        cookie.push_str("; Secure");
    }
    cookie
}

/// Returns true when the client reached the site over HTTPS, which the site learns only
/// from a trusted proxy's `X-Forwarded-Proto`, because it serves plain HTTP itself.
pub(super) fn is_https(settings: &SessionSettings, headers: &HeaderMap) -> bool {
    settings.trusted_proxy
        && headers
            .get("x-forwarded-proto")
            .and_then(|value| value.to_str().ok())
            .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
}

/// Returns the client address: the last `X-Forwarded-For` entry when the proxy is
/// trusted (the address the proxy itself saw), else the peer address of the connection.
pub(super) fn client_address(settings: &SessionSettings, request: &Request) -> String {
    if settings.trusted_proxy {
        let forwarded = request
            .headers()
            .get("x-forwarded-for")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.rsplit(',').next())
            .map(str::trim)
            .filter(|value| !value.is_empty());
        if let Some(forwarded) = forwarded {
            return forwarded.to_string();
        }
    }
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip().to_string())
        .unwrap_or_else(|| "unknown".to_string())
}

/// Returns 32 random bytes in hex: a session id or CSRF token of 256 bits.
pub(super) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Returns the SHA-256 of a session token in hex, as the catalogue stores it.
pub(super) fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Compares two byte strings in time that depends only on their lengths.
pub(super) fn constant_time_eq(left: &[u8], right: &[u8]) -> bool {
    if left.len() != right.len() {
        return false;
    }
    left.iter()
        .zip(right)
        .fold(0u8, |difference, (a, b)| difference | (a ^ b))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn cookie_finds_named_value() {
        let headers = headers(&[("cookie", "a=1; bakfleet_session=abc; b=2")]);
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, "missing"), None);
    }

    #[test]
    fn origin_check_rejects_cross_site() {
        let same = headers(&[
            ("host", "bakfleet.corp"),
            ("origin", "https://bakfleet.corp"),
        ]);
        assert!(check_origin(&same).is_ok());
        let other = headers(&[
            ("host", "bakfleet.corp"),
            ("origin", "https://evil.example"),
        ]);
        assert!(check_origin(&other).is_err());
        let null = headers(&[("host", "bakfleet.corp"), ("origin", "null")]);
        assert!(check_origin(&null).is_err());
        let fetch = headers(&[("sec-fetch-site", "cross-site")]);
        assert!(check_origin(&fetch).is_err());
        assert!(check_origin(&headers(&[("sec-fetch-site", "same-origin")])).is_ok());
        assert!(check_origin(&HeaderMap::new()).is_ok());
    }

    #[test]
    fn https_needs_trusted_proxy() {
        let forwarded = headers(&[("x-forwarded-proto", "https")]);
        let untrusted = SessionSettings::default();
        let trusted = SessionSettings {
            trusted_proxy: true,
            ..SessionSettings::default()
        };
        assert!(!is_https(&untrusted, &forwarded));
        assert!(is_https(&trusted, &forwarded));
        assert!(!is_https(&trusted, &HeaderMap::new()));
    }

    #[test]
    fn token_is_256_bit_hex() {
        let token = random_token();
        assert_eq!(token.len(), 64);
        assert_ne!(token, random_token());
        assert_eq!(hash_token(&token).len(), 64);
        assert_ne!(hash_token(&token), token);
    }

    #[test]
    fn constant_time_eq_compares_bytes() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
