//! Login and logout, with failed logins limited per user name and per client address.

use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{AppendHeaders, Html, IntoResponse, Redirect, Response};
use axum::Extension;
use serde::Deserialize;
use time::OffsetDateTime;

use super::audit;
use super::auth::{self, CurrentUser, SESSION_COOKIE};
use super::error::WebError;
use super::Site;
use crate::account;
use crate::catalog::{AuditOutcome, FailureCount, NewSession};

/// Cookie that carries the login form's token, checked against the form field so that
/// another site cannot log a browser in to an account of its choosing.
const LOGIN_COOKIE: &str = "bakfleet_login";

/// Window over which failed logins count.
const FAILURE_WINDOW: time::Duration = time::Duration::minutes(15);

/// Failed logins allowed in the window before logins wait.
const FREE_FAILURES: u32 = 5;

/// Wait after the first failure over [`FREE_FAILURES`]; it doubles with each further
/// failure, up to [`FAILURE_WINDOW`].
const FIRST_LOCKOUT: time::Duration = time::Duration::seconds(30);

/// The one message for an unknown user and a wrong password, so that the reply does not
/// tell which user names exist.
const INVALID_LOGIN: &str = "Invalid user name or password.";

#[derive(Debug, Default, Deserialize)]
pub(super) struct LoginQuery {
    next: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct LoginForm {
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    login_token: String,
    next: Option<String>,
}

/// Shows the login form, with a fresh login token in a cookie and a hidden field.
pub(super) async fn login_page(
    State(site): State<Site>,
    headers: HeaderMap,
    Query(query): Query<LoginQuery>,
) -> Result<Response, WebError> {
    let next = query.next.filter(|next| is_local_path(next));
    render_form(&site, &headers, StatusCode::OK, next, None, None)
}

/// Checks the user name and password, starts a session and redirects to the page the
/// user asked for.
pub(super) async fn login(State(site): State<Site>, request: Request) -> Response {
    match login_inner(&site, request).await {
        Ok(response) | Err(response) => response,
    }
}

async fn login_inner(site: &Site, request: Request) -> Result<Response, Response> {
    let settings = site.state.sessions;
    let client = auth::client_address(&settings, &request);
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
    auth::check_origin(&headers).map_err(|reason| WebError::Forbidden(reason).into_response())?;
    let bytes = auth::read_body(body).await?;
    let form: LoginForm = serde_urlencoded::from_bytes(&bytes).map_err(|error| {
        WebError::BadRequest(format!("The login form could not be read: {error}.")).into_response()
    })?;
    let next = form.next.clone().filter(|next| is_local_path(next));

    let cookie_token = auth::cookie(&headers, LOGIN_COOKIE).unwrap_or("");
    let token_matches = !cookie_token.is_empty()
        && auth::constant_time_eq(cookie_token.as_bytes(), form.login_token.as_bytes());
    if !token_matches {
        return Err(WebError::Forbidden(
            "The login form's token is missing or does not match its cookie; reload the \
             login page and try again."
                .to_string(),
        )
        .into_response());
    }

    let now = OffsetDateTime::now_utc();
    let catalog = &site.state.catalog;
    let error_page = |error: crate::catalog::CatalogError| WebError::from(error).into_response();
    let since = now - FAILURE_WINDOW;
    let by_user = catalog
        .login_failures_of_user(&form.user, since)
        .await
        .map_err(error_page)?;
    let by_client = catalog
        .login_failures_of_client(&client, since)
        .await
        .map_err(error_page)?;
    if let Some(wait) = lockout(by_user, now).max(lockout(by_client, now)) {
        audit::record(site, &form.user, "login_failed", None, AuditOutcome::Denied)
            .client(&client)
            .detail("too many failed logins")
            .save()
            .await;
        let message = format!(
            "Too many failed logins for this user or from this address; try again in {} s.",
            wait.whole_seconds().max(1)
        );
        let response = render_form(
            site,
            &headers,
            StatusCode::TOO_MANY_REQUESTS,
            next,
            Some(&form.user),
            Some(&message),
        )
        .map_err(IntoResponse::into_response)?;
        return Err(response);
    }

    let user = catalog
        .user_with_hash(&form.user)
        .await
        .map_err(error_page)?;
    let verified = match &user {
        Some((_, hash)) => account::verify_password(&form.password, hash),
        None => {
            account::verify_against_dummy(&form.password);
            false
        }
    };
    let Some((user, _)) = user.filter(|_| verified) else {
        catalog
            .record_login_failure(&form.user, &client, now)
            .await
            .map_err(error_page)?;
        audit::record(site, &form.user, "login_failed", None, AuditOutcome::Failed)
            .client(&client)
            .save()
            .await;
        let response = render_form(
            site,
            &headers,
            StatusCode::UNAUTHORIZED,
            next,
            Some(&form.user),
            Some(INVALID_LOGIN),
        )
        .map_err(IntoResponse::into_response)?;
        return Err(response);
    };

    catalog
        .clear_login_failures(&user.name, since)
        .await
        .map_err(error_page)?;
    let idle_before = now - settings.idle;
    let started_before = now - settings.max_age;
    catalog
        .delete_expired_sessions(idle_before, started_before)
        .await
        .map_err(error_page)?;

    let token = auth::random_token();
    let session = NewSession {
        id_hash: auth::hash_token(&token),
        user_id: user.id,
        csrf_token: auth::random_token(),
        client: client.clone(),
        at: now,
    };
    catalog.create_session(&session).await.map_err(error_page)?;
    audit::record(site, &user.name, "login", None, AuditOutcome::Ok)
        .client(&client)
        .detail(format!("role {}", user.role))
        .save()
        .await;

    let secure = auth::is_https(&settings, &headers);
    let session_cookie = auth::cookie_header(SESSION_COOKIE, &token, "/", secure, None);
    let clear_login = auth::cookie_header(LOGIN_COOKIE, "", "/login", secure, Some(0));
    let target = next.unwrap_or_else(|| "/".to_string());
    Ok((
        AppendHeaders([
            (header::SET_COOKIE, session_cookie),
            (header::SET_COOKIE, clear_login),
        ]),
        Redirect::to(&target),
    )
        .into_response())
}

/// Ends the session and returns to the login page.
pub(super) async fn logout(
    State(site): State<Site>,
    Extension(user): Extension<CurrentUser>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    site.state
        .catalog
        .delete_session(&user.session_hash)
        .await?;
    audit::record(&site, &user.name, "logout", None, AuditOutcome::Ok)
        .client(&user.client)
        .save()
        .await;
    let secure = auth::is_https(&site.state.sessions, &headers);
    let clear = auth::cookie_header(SESSION_COOKIE, "", "/", secure, Some(0));
    Ok(([(header::SET_COOKIE, clear)], Redirect::to("/login")).into_response())
}

/// Returns how long logins must wait after `failures`, or `None` when they need not.
fn lockout(failures: FailureCount, now: OffsetDateTime) -> Option<time::Duration> {
    let over = failures.count.checked_sub(FREE_FAILURES)?;
    let latest = failures.latest?;
    // 30 s, 60 s, 120 s ... up to the window: the shift stops growing well before then.
    let wait = (FIRST_LOCKOUT * 2i32.pow(over.min(10))).min(FAILURE_WINDOW);
    let left = latest + wait - now;
    (left > time::Duration::ZERO).then_some(left)
}

/// Returns true for a path on this site, so that `next` cannot send a user elsewhere.
fn is_local_path(path: &str) -> bool {
    path.starts_with('/') && !path.starts_with("//") && !path.contains('\\')
}

fn render_form(
    site: &Site,
    headers: &HeaderMap,
    status: StatusCode,
    next: Option<String>,
    user: Option<&str>,
    error: Option<&str>,
) -> Result<Response, WebError> {
    let token = auth::random_token();
    let secure = auth::is_https(&site.state.sessions, headers);
    let cookie = auth::cookie_header(LOGIN_COOKIE, &token, "/login", secure, None);
    let page: Html<String> = site.render(
        "login.html",
        minijinja::context! { login_token => token, next, user_name => user, error },
    )?;
    Ok((status, [(header::SET_COOKIE, cookie)], page).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: OffsetDateTime = time::macros::datetime!(2026-01-01 12:00 UTC);

    #[test]
    fn lockout_starts_after_five_failures() {
        let latest = Some(NOW);
        let four = FailureCount { count: 4, latest };
        assert_eq!(lockout(four, NOW), None);
        let five = FailureCount { count: 5, latest };
        assert_eq!(lockout(five, NOW), Some(time::Duration::seconds(30)));
    }

    #[test]
    fn lockout_grows_up_to_window() {
        let latest = Some(NOW);
        let seven = FailureCount { count: 7, latest };
        assert_eq!(lockout(seven, NOW), Some(time::Duration::seconds(120)));
        let many = FailureCount { count: 40, latest };
        assert_eq!(lockout(many, NOW), Some(FAILURE_WINDOW));
    }

    #[test]
    fn lockout_ends_after_wait() {
        let five = FailureCount {
            count: 5,
            latest: Some(NOW),
        };
        assert_eq!(lockout(five, NOW + time::Duration::seconds(31)), None);
    }

    #[test]
    fn next_must_be_local_path() {
        assert!(is_local_path("/runs"));
        assert!(!is_local_path("//evil.example/"));
        assert!(!is_local_path("https://evil.example/"));
        assert!(!is_local_path("/\\evil.example"));
    }
}
