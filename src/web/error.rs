//! Error pages: handlers return a [`WebError`], and one middleware logs it with its
//! request and renders the page, so a handler's error is logged once.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};

use super::Site;
use crate::catalog::CatalogError;

/// Error of a page request.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// An unknown page, id or database: 404 with `message` shown to the user.
    #[error("{0}")]
    NotFound(String),
    /// A catalogue failure: 500 with a plain message; the detail goes to the log only.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// A template that failed to render: 500, as for a catalogue failure.
    #[error("cannot render page template: {0:#}")]
    Template(#[from] minijinja::Error),
    /// Another internal failure: 500, with the detail in the log only.
    #[error("{0}")]
    Internal(String),
    /// A request the site rejects as malformed: 400 with `message` shown to the user.
    #[error("{0}")]
    BadRequest(String),
    /// A missing role, CSRF token or same-origin proof: 403 with `message` shown.
    #[error("{0}")]
    Forbidden(String),
    /// A request body over the site's limit: 413.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// An action that conflicts with the state of the fleet, such as a backup whose job
    /// could not start: 409 with `message` shown.
    #[error("{0}")]
    Conflict(String),
    /// An action this process cannot perform, such as a run without a job runner: 503.
    #[error("{0}")]
    Unavailable(String),
}

/// The error a handler returned, carried in the response to the middleware.
#[derive(Debug, Clone)]
struct ErrorDetail {
    status: StatusCode,
    /// Text for the user.
    message: String,
    /// Text for the log; `None` for errors that need no log line, such as a 404.
    internal: Option<String>,
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let detail = match &self {
            WebError::NotFound(message) => ErrorDetail {
                status: StatusCode::NOT_FOUND,
                message: message.clone(),
                internal: None,
            },
            WebError::BadRequest(message) => ErrorDetail {
                status: StatusCode::BAD_REQUEST,
                message: message.clone(),
                internal: None,
            },
            WebError::Forbidden(message) => ErrorDetail {
                status: StatusCode::FORBIDDEN,
                message: message.clone(),
                internal: None,
            },
            WebError::PayloadTooLarge(message) => ErrorDetail {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                message: message.clone(),
                internal: None,
            },
            WebError::Conflict(message) => ErrorDetail {
                status: StatusCode::CONFLICT,
                message: message.clone(),
                internal: None,
            },
            WebError::Unavailable(message) => ErrorDetail {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: message.clone(),
                internal: None,
            },
            WebError::Catalog(_) | WebError::Template(_) | WebError::Internal(_) => ErrorDetail {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                message: "The page could not be built because of an internal error. \
                          The server log has the detail."
                    .to_string(),
                internal: Some(self.to_string()),
            },
        };

        let mut response = (detail.status, detail.message.clone()).into_response();
        response.extensions_mut().insert(detail);
        response
    }
}

/// Logs a handler's error once, with the request, and replaces the response body with
/// the error page.
pub(super) async fn render_error_page(
    State(site): State<Site>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    let uri = request.uri().clone();
    let response = next.run(request).await;
    let Some(detail) = response.extensions().get::<ErrorDetail>().cloned() else {
        return response;
    };

    if let Some(internal) = &detail.internal {
        tracing::error!(%method, %uri, status = detail.status.as_u16(), error = %internal, "admin page failed");
    }

    if super::api::is_api_path(uri.path()) {
        return super::api::error_response(detail.status, &detail.message);
    }

    let context = minijinja::context! {
        fleet_name => site.state.fleet_name,
        status => detail.status.as_u16(),
        reason => detail.status.canonical_reason().unwrap_or("Error"),
        message => detail.message,
    };
    match site
        .templates
        .get_template("error.html")
        .and_then(|template| template.render(context))
    {
        Ok(page) => (detail.status, Html(page)).into_response(),
        Err(error) => {
            tracing::error!(%method, %uri, error = %format!("{error:#}"), "error page template failed");
            (detail.status, detail.message).into_response()
        }
    }
}
