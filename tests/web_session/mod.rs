//! Sessions for router tests: a user per role and a fresh session per request, stored
//! straight in the catalogue so that tests do not pay argon2 for each login.

#![allow(dead_code)]

use axum::body::Body;
use axum::http::Request;
use axum::Router;
use bakfleet::account::Role;
use bakfleet::catalog::{Catalog, NewSession};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// A session's cookie header value and its CSRF token.
#[derive(Debug, Clone)]
pub struct TestSession {
    pub cookie: String,
    pub csrf_token: String,
}

/// Adds user `name` with `role` unless it exists. Its password hash is not a valid PHC
/// string, so nobody can log in as it through the form.
pub async fn ensure_user(catalog: &Catalog, name: &str, role: Role) -> i64 {
    if let Some((user, _)) = catalog.user_with_hash(name).await.unwrap() {
        return user.id;
    }
    catalog
        .add_user(name, role, "not-a-hash", OffsetDateTime::now_utc())
        .await
        .unwrap()
}

/// Starts a new session for a user named after `role` (`viewer`, `operator`, `admin`).
pub async fn session_for(catalog: &Catalog, role: Role) -> TestSession {
    let user_id = ensure_user(catalog, role.as_str(), role).await;
    let token = hex::encode(rand_bytes());
    let csrf_token = hex::encode(rand_bytes());
    let session = NewSession {
        id_hash: hex::encode(Sha256::digest(token.as_bytes())),
        user_id,
        csrf_token: csrf_token.clone(),
        client: "127.0.0.1".to_string(),
        at: OffsetDateTime::now_utc(),
    };
    catalog.create_session(&session).await.unwrap();
    TestSession {
        cookie: format!("bakfleet_session={token}"),
        csrf_token,
    }
}

fn rand_bytes() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    for byte in &mut bytes {
        *byte = rand::random();
    }
    bytes
}

/// Wraps `router` so that every request carries `session`'s cookie, for tests of pages
/// that do not test access control.
pub fn with_session(router: Router, session: &TestSession) -> Router {
    let cookie = session.cookie.clone();
    router.layer(axum::middleware::map_request(
        move |mut request: Request<Body>| {
            let cookie = cookie.clone();
            async move {
                request
                    .headers_mut()
                    .insert("cookie", cookie.parse().unwrap());
                request
            }
        },
    ))
}
