//! The admin site: pages over the catalogue behind logins with roles, served by axum and
//! rendered with minijinja templates embedded in the binary.

mod actions;
pub mod api;
mod audit;
mod auth;
mod charts;
mod download;
mod error;
mod freshness;
mod health;
mod live;
mod login;
mod metrics;
mod overview;
mod pages;
mod restore;
mod storage;
mod templates;
mod users;

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use minijinja::Environment;
use time::OffsetDateTime;

use crate::catalog::Catalog;

pub use actions::{run_requested_backups, RunRequest, RunSender, RunStart};
pub use auth::{Access, RouteRule, SessionSettings, BODY_LIMIT, ROUTES};
pub use error::WebError;
pub use live::{collect_events, LiveRun, LiveRuns};
pub use overview::FleetInForce;

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
    /// Session lifetimes and whether the reverse proxy's headers are trusted.
    pub sessions: SessionSettings,
    /// The backup store, for downloads, "verify now" and absolute paths in restore
    /// scripts; `None` for a site that serves the catalogue alone.
    pub store: Option<Arc<crate::store::Store>>,
    /// Channel over which "run now" hands its backups to the job runner; `None` for a
    /// process that runs no jobs.
    pub run_requests: Option<RunSender>,
    /// The fleet file in force, whose selections and policies the overview assesses
    /// against; `None` for a site that serves the catalogue alone, which then assesses
    /// every catalogued database against the built-in policy.
    pub fleet: Option<FleetInForce>,
    /// Whether `/metrics` is served, without a session; from `service.metrics`, default false.
    pub metrics: bool,
    /// The running jobs that `/runs/live` shows and streams; `None` for a process that
    /// runs no jobs.
    pub live: Option<LiveRuns>,
}

/// State shared by handlers: the caller's state and the compiled templates.
#[derive(Clone)]
struct Site {
    state: WebState,
    templates: Arc<Environment<'static>>,
    /// The fleet overview's figures, shared by the requests of one second.
    overview_views: Arc<overview::OverviewViews>,
}

/// Builds the router of every page, the stylesheet and `/healthz`.
pub fn router(state: WebState) -> Router {
    let site = Site {
        state,
        templates: Arc::new(templates::environment()),
        overview_views: Arc::default(),
    };

    Router::new()
        .route("/", get(overview::overview))
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
        .route("/runs/live", get(live::live_page))
        .route("/runs/live/events", get(live::live_events))
        .route("/static/live.js", get(live::script))
        .route("/queue", get(pages::queue))
        .route("/storage", get(storage::storage))
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(metrics::metrics))
        .route("/static/site.css", get(pages::stylesheet))
        .route("/login", get(login::login_page).post(login::login))
        .route("/logout", post(login::logout))
        .route("/users", get(users::users_page).post(users::add_user))
        .route("/users/{name}/remove", post(users::remove_user))
        .route("/users/{name}/password", post(users::reset_password))
        .route("/audit", get(audit::audit_page))
        .route("/instances/{instance}/run", post(actions::run_instance))
        .route(
            "/instances/{instance}/databases/{database}/run",
            post(actions::run_database),
        )
        .route("/backups/{id}/verify", post(actions::verify_backup))
        .route("/backups/{id}/download", get(download::download))
        .merge(api::routes())
        .fallback(pages::not_found)
        .layer(axum::middleware::from_fn_with_state(
            site.clone(),
            auth::enforce_access,
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(
            site.clone(),
            error::render_error_page,
        ))
        .with_state(site)
}

/// Serves the site on `listen` until `shutdown` completes.
///
/// # Errors
/// Rejects an address that is not loopback while the catalogue has no admin user, because
/// no user could then log in to manage the site. Fails when the address cannot be bound.
pub async fn serve(
    listen: SocketAddr,
    state: WebState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = if listen.ip().is_loopback() {
        bind(listen).await?
    } else {
        check_public_address(listen, &state.catalog).await?;
        tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen} for the admin site"))?
    };
    serve_on(listener, state, shutdown).await
}

/// Checks that the site may listen on the non-loopback address `listen`: only once an
/// admin user exists. Warns that the site itself serves plain HTTP there.
///
/// # Errors
/// No admin user, or the catalogue cannot count them.
pub async fn check_public_address(listen: SocketAddr, catalog: &Catalog) -> anyhow::Result<()> {
    let admins = catalog
        .admin_count()
        .await
        .context("cannot count the admin users before binding the admin site")?;
    if admins == 0 {
        anyhow::bail!(
            "listen address {listen} is not a loopback address, and the catalogue has no \
             admin user yet: add one with `bakfleet user add NAME --role admin`, or listen \
             on loopback, such as 127.0.0.1:8080"
        );
    }
    tracing::warn!(
        %listen,
        "the admin site serves plain HTTP on a non-loopback address: passwords and session \
         cookies cross the network unencrypted unless a TLS proxy is the only client"
    );
    Ok(())
}

/// Binds a loopback address for the admin site. Binding apart from serving lets a caller
/// announce the address only once it accepts connections.
///
/// # Errors
/// A non-loopback address, which only [`serve`] binds after checking for an admin user,
/// or an address that cannot be bound.
pub async fn bind(listen: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    if !listen.ip().is_loopback() {
        anyhow::bail!(
            "listen address {listen} is not a loopback address; use 127.0.0.1 or [::1] here, \
             or `bakfleet serve`, which binds other addresses once an admin user exists"
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

    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    let (stop_seen, stop_received) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        shutdown.await;
        let _ = stop_seen.send(());
    };
    let server = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .into_future();
    // A download to a slow or stalled client would hold the graceful stop for as long as
    // it lasts, so open requests get a bounded time after the stop.
    let drain_limit = async {
        match stop_received.await {
            Ok(()) => tokio::time::sleep(REQUEST_DRAIN_LIMIT).await,
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        result = server => result.context("admin site server failed")?,
        () = drain_limit => {
            tracing::warn!(
                address = %local,
                limit_secs = REQUEST_DRAIN_LIMIT.as_secs(),
                "admin site requests still open after the stop, such as downloads; they are cut off"
            );
        }
    }

    tracing::info!(address = %local, "admin site stopped");
    Ok(())
}

/// Time the admin site gives requests still open at a stop to finish.
const REQUEST_DRAIN_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);
