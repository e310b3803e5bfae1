//! Bearer tokens on `/api/v1`: the token's role against the route's, no CSRF check
//! because no cookie is involved, and an audit entry for every call made with a token.

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use time::OffsetDateTime;

use super::super::audit;
use super::super::auth::{client_address, CurrentUser, CURRENT_USER};
use super::super::error::WebError;
use super::super::Site;
use crate::account::Role;
use crate::catalog::AuditOutcome;

/// How often at most a token's last use is written, so that a script polling the API
/// does not write the catalogue on each request.
const TOUCH_INTERVAL: time::Duration = time::Duration::seconds(60);

/// Returns the value of an `Authorization: Bearer` header, `Some("")` for another scheme
/// or an unreadable value, and `None` without the header.
pub(in crate::web) fn bearer_token(request: &Request) -> Option<&str> {
    let value = request.headers().get(header::AUTHORIZATION)?;
    let text = value.to_str().unwrap_or("");
    let token = match text.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => "",
    };
    Some(token)
}

/// Authenticates the bearer token of an API request, checks its role against
/// `required`, runs the handler and audits the call under the token's name.
pub(in crate::web) async fn enforce_bearer(
    site: &Site,
    required: Role,
    request: Request,
    next: Next,
) -> Response {
    let client = client_address(&site.state.sessions, &request);
    let secret = bearer_token(&request).unwrap_or("").to_string();
    let now = OffsetDateTime::now_utc();
    let token = match crate::token::authenticate(&site.state.catalog, &secret, now).await {
        Ok(Some(token)) => token,
        Ok(None) => {
            tracing::info!(%client, path = request.uri().path(), "API request with an unknown, expired or removed token");
            return unauthorized(
                "The bearer token is unknown, expired or removed; create one with \
                 `bakfleet token add NAME --role viewer`.",
                true,
            );
        }
        Err(error) => return WebError::Catalog(error).into_response(),
    };
    if token
        .last_used_at
        .is_none_or(|last| now - last > TOUCH_INTERVAL)
    {
        if let Err(error) = site.state.catalog.touch_token(token.id, now).await {
            tracing::error!(%error, token = %token.name, "could not record the use of an API token");
        }
    }

    let method = request.method().clone();
    let target = format!("{method} {}", request.uri().path());
    if token.role < required {
        audit::record(site, &token.name, "api", Some(target), AuditOutcome::Denied)
            .client(&client)
            .detail(format!("token role {} lacks {required}", token.role))
            .save()
            .await;
        return WebError::Forbidden(format!(
            "This endpoint needs the {required} role; token {} has the {} role.",
            token.name, token.role
        ))
        .into_response();
    }

    let user = CurrentUser {
        name: token.name.clone(),
        role: token.role,
        csrf_token: String::new(),
        session_hash: String::new(),
        client: client.clone(),
    };
    let mut request = request;
    request.extensions_mut().insert(user.clone());
    let response = CURRENT_USER.scope(user, next.run(request)).await;

    let status = response.status();
    let outcome = if status.is_success() {
        AuditOutcome::Ok
    } else if status == StatusCode::FORBIDDEN {
        AuditOutcome::Denied
    } else {
        AuditOutcome::Failed
    };
    audit::record(site, &token.name, "api", Some(target), outcome)
        .client(&client)
        .detail(format!("status {}", status.as_u16()))
        .save()
        .await;
    response
}

/// Returns 401 with a JSON body and `WWW-Authenticate: Bearer`, with
/// `error="invalid_token"` when a token was sent (RFC 6750, section 3).
pub(in crate::web) fn unauthorized(message: &str, token_sent: bool) -> Response {
    let challenge = if token_sent {
        "Bearer realm=\"bakfleet\", error=\"invalid_token\""
    } else {
        "Bearer realm=\"bakfleet\""
    };
    let mut response = super::error_response(StatusCode::UNAUTHORIZED, message);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    response
}
