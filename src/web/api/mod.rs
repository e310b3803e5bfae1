//! The JSON API under `/api/v1`: what the admin site shows and does, for scripts, with
//! bearer tokens or a site session, and its OpenAPI document derived from the handlers.

pub(super) mod access;
mod handlers;
pub mod model;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::OpenApi;

use super::error::WebError;
use super::Site;
use crate::protection::{self, DatabaseProtection, ProtectionError};

/// Path prefix of every API route.
pub const PREFIX: &str = "/api/v1";

/// Returns whether `path` belongs to the API, whose responses are JSON, errors included.
pub(super) fn is_api_path(path: &str) -> bool {
    path == PREFIX || path.starts_with("/api/v1/")
}

/// Builds the API routes, which the site's router merges under its access middleware.
pub(super) fn routes() -> Router<Site> {
    Router::new()
        .route("/api/v1/health", get(handlers::health))
        .route("/api/v1/instances", get(handlers::instances))
        .route(
            "/api/v1/instances/{instance}/databases",
            get(handlers::databases),
        )
        .route(
            "/api/v1/instances/{instance}/databases/{database}/backups",
            get(handlers::backups),
        )
        .route(
            "/api/v1/instances/{instance}/databases/{database}/restore-plan",
            get(handlers::restore_plan),
        )
        .route(
            "/api/v1/instances/{instance}/databases/{database}/run",
            post(handlers::run_database),
        )
        .route(
            "/api/v1/instances/{instance}/run",
            post(handlers::run_instance),
        )
        .route("/api/v1/backups/{id}", get(handlers::backup))
        .route("/api/v1/backups/{id}/verify", post(handlers::verify))
        .route("/api/v1/runs", get(handlers::runs))
        .route("/api/v1/runs/{id}", get(handlers::run))
        .route("/api/v1/runs/{id}/log", get(handlers::run_log))
}

/// Assesses every database of the fleet in force against its policy's RPO at `now`.
///
/// # Errors
/// 503 for a site without a fleet file, 500 when the catalogue cannot be read or a
/// schedule cannot be parsed.
pub(super) async fn assess_fleet(
    site: &Site,
    now: time::OffsetDateTime,
) -> Result<Vec<DatabaseProtection>, WebError> {
    let Some(fleet) = &site.state.fleet else {
        return Err(WebError::Unavailable(
            "This process serves no fleet file, so it has no policies to assess; use \
             `bakfleet serve`."
                .to_string(),
        ));
    };
    let fleet = fleet.current();
    match protection::assess(&fleet, &site.state.catalog, now).await {
        Ok(databases) => Ok(databases),
        Err(ProtectionError::Catalog(error)) => Err(WebError::Catalog(error)),
        Err(error) => Err(WebError::Internal(error.to_string())),
    }
}

/// Returns a JSON error body with `status`.
pub(super) fn error_response(status: StatusCode, message: &str) -> Response {
    let body = model::ErrorBody {
        status: status.as_u16(),
        error: message.to_string(),
    };
    (status, Json(body)).into_response()
}

/// The OpenAPI 3.1 document of the API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "bakfleet API",
        description = "Fleet, backups, runs and actions of a bakfleet service. Send \
                       `Authorization: Bearer TOKEN` with a token from `bakfleet token add`."
    ),
    paths(
        handlers::health,
        handlers::instances,
        handlers::databases,
        handlers::backups,
        handlers::backup,
        handlers::runs,
        handlers::run,
        handlers::run_log,
        handlers::run_database,
        handlers::run_instance,
        handlers::verify,
        handlers::restore_plan,
    ),
    modifiers(&BearerSecurity),
    security(("bearer" = [])),
    tags(
        (name = "fleet", description = "Fleet health, instances and databases; viewer role"),
        (name = "backups", description = "Catalogued backups and restore plans; viewer role"),
        (name = "runs", description = "Backup runs; viewer role"),
        (name = "actions", description = "Run and verify now; operator role"),
    )
)]
pub struct ApiDoc;

/// Adds the bearer security scheme that every operation requires.
struct BearerSecurity;

impl utoipa::Modify for BearerSecurity {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// Returns the OpenAPI document as pretty-printed JSON with a final newline, the form
/// committed as docs/openapi.json.
pub fn openapi_json() -> String {
    let mut text = ApiDoc::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serializes to JSON");
    text.push('\n');
    text
}
