//! The admin site: read-only pages over the catalogue, served by axum and rendered with
//! minijinja templates embedded in the binary.

mod error;
mod freshness;
mod health;
mod pages;
mod restore;
mod templates;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::routing::get;
use axum::Router;
use minijinja::Environment;
use time::OffsetDateTime;

use crate::catalog::Catalog;

pub use error::WebError;
pub use freshness::Freshness;

/// Inputs of the admin site: the catalogue and the facts shown around every page.
#[derive(Debug, Clone)]
pub struct WebState {
    pub catalog: Catalog,
    /// Path of the fleet file this process serves, shown in the page header.
    pub fleet_name: String,
    /// When this process started, shown in the page footer.
    pub started_at: OffsetDateTime,
    /// The job limits of this process, whose queue `/queue` shows; `None` for a process
    /// that runs no jobs.
    pub limits: Option<Arc<crate::job::Limits>>,
    /// The fleet file in force and the last reload error, which every page header and
    /// `/healthz` show; `None` for a process that does not reload its fleet file.
    pub fleet_status: Option<tokio::sync::watch::Receiver<crate::reload::FleetStatus>>,
}

/// State shared by handlers: the caller's state and the compiled templates.
#[derive(Clone)]
struct Site {
    state: WebState,
    templates: Arc<Environment<'static>>,
}

/// Builds the router of every page, the stylesheet and `/healthz`.
pub fn router(state: WebState) -> Router {
    let site = Site {
        state,
        templates: Arc::new(templates::environment()),
    };

    Router::new()
        .route("/", get(pages::overview))
        .route(
            "/instances/{instance}/databases/{database}",
            get(pages::database),
        )
        .route(
            "/instances/{instance}/databases/{database}/restore",
            get(restore::restore_plan),
        )
        .route("/backups/{id}", get(pages::backup))
        .route("/runs", get(pages::runs))
        .route("/runs/{id}", get(pages::run))
        .route("/queue", get(pages::queue))
        .route("/healthz", get(health::healthz))
        .route("/static/site.css", get(pages::stylesheet))
        .fallback(pages::not_found)
        .layer(axum::middleware::from_fn_with_state(
            site.clone(),
            error::render_error_page,
        ))
        .with_state(site)
}

/// Serves the site on `listen` until `shutdown` completes.
///
/// # Errors
/// Rejects an address that is not loopback, because the site has no accounts yet and
/// anyone who can reach it can read the catalogue. Fails when the address cannot be bound.
pub async fn serve(
    listen: SocketAddr,
    state: WebState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = bind(listen).await?;
    serve_on(listener, state, shutdown).await
}

/// Binds the admin site's address, refusing any address but loopback: the site has no
/// login yet. Binding apart from serving lets a caller announce the address only once it
/// accepts connections.
///
/// # Errors
/// A non-loopback address, or an address that cannot be bound.
pub async fn bind(listen: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    if !listen.ip().is_loopback() {
        anyhow::bail!(
            "listen address {listen} is not a loopback address: the admin site has no login \
             yet, so it serves only on loopback, such as 127.0.0.1:8080; to reach it from \
             other hosts, put a reverse proxy with authentication in front of it"
        );
    }
    tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen} for the admin site"))
}

/// Serves the admin site on a bound listener until `shutdown` resolves.
///
/// # Errors
/// The server fails while serving.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    state: WebState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let local = listener
        .local_addr()
        .context("cannot read the admin site's address")?;
    tracing::info!(address = %local, "admin site listening");

    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
        .context("admin site server failed")?;

    tracing::info!(address = %local, "admin site stopped");
    Ok(())
}
