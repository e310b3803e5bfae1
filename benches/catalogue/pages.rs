//! The fleet page and a database page through the admin site's router, as a logged-in
//! browser gets them: session check, catalogue reads, RPO assessment and template
//! rendering. Requests go to the router in process, so the figures leave out TCP and the
//! client's own work.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use bakfleet::account::Role;
use bakfleet::catalog::{Catalog, NewSession};
use bakfleet::web::{router, SessionSettings, WebState};
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tower::ServiceExt;

/// The admin site over `catalog` and the session cookie of a viewer.
#[derive(Clone)]
pub struct Site {
    router: Router,
    cookie: String,
}

impl Site {
    /// Builds the site and logs a viewer in by storing a session straight in the
    /// catalogue, as the login form would after checking the password.
    pub async fn start(catalog: &Catalog) -> Site {
        let now = OffsetDateTime::now_utc();
        // A name of its own per run, so that a kept catalogue can be measured again.
        let name = format!("bench-viewer-{}", now.unix_timestamp_nanos());
        let user_id = catalog
            .add_user(&name, Role::Viewer, "not-a-hash", now)
            .await
            .expect("add the benchmark user");
        let token = hex::encode(rand::random::<[u8; 32]>());
        catalog
            .create_session(&NewSession {
                id_hash: hex::encode(Sha256::digest(token.as_bytes())),
                user_id,
                csrf_token: hex::encode(rand::random::<[u8; 32]>()),
                client: "127.0.0.1".to_string(),
                at: now,
            })
            .await
            .expect("store the benchmark session");
        let router = router(WebState {
            catalog: catalog.clone(),
            fleet_name: "fleet.toml".to_string(),
            started_at: now,
            limits: None,
            fleet_status: None,
            sessions: SessionSettings::default(),
            store: None,
            run_requests: None,
            fleet: None,
            metrics: false,
            live: None,
        });
        Site {
            router,
            cookie: format!("bakfleet_session={token}"),
        }
    }

    /// Requests `uri` and reads the whole page; any status but 200 stops the benchmark.
    pub async fn get(&self, uri: &str) -> usize {
        let request = Request::builder()
            .uri(uri)
            .header("cookie", &self.cookie)
            .body(Body::empty())
            .expect("a valid request");
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("the router returns a response");
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("read the page")
            .to_bytes();
        assert_eq!(
            status,
            StatusCode::OK,
            "{uri}: {}",
            String::from_utf8_lossy(&body)
        );
        body.len()
    }
}
