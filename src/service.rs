//! Opens what every command that runs jobs needs: catalogue, store, secrets, identity.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::mpsc::UnboundedSender;

use crate::catalog::{Catalog, InstanceFacts, LeaseHolder};
use crate::fleet::{Fleet, Secrets};
use crate::job::{JobContext, JobEvent};
use crate::shutdown::Shutdown;
use crate::store::Store;

/// How often a running BACKUP's progress is read. One second keeps a terminal progress bar
/// lively while costing the server one tiny DMV query per second per running backup.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// Loads the fleet file and opens the catalogue, the store and the secrets.
///
/// # Errors
/// The fleet file is invalid, or the catalogue, store or secrets file cannot be opened;
/// each error names the path.
pub async fn open(
    fleet_path: &Path,
    events: Option<UnboundedSender<JobEvent>>,
) -> anyhow::Result<JobContext> {
    let fleet = Fleet::load(fleet_path)?;
    open_fleet(fleet, events).await
}

/// Like [`open`], for a fleet already loaded (the demo builds its own).
///
/// # Errors
/// As [`open`].
pub async fn open_fleet(
    fleet: Fleet,
    events: Option<UnboundedSender<JobEvent>>,
) -> anyhow::Result<JobContext> {
    let secrets = Secrets::load(&fleet.service)?;
    let catalog = Catalog::open(&fleet.service.catalog)
        .await
        .with_context(|| {
            format!(
                "cannot open the catalogue {}",
                fleet.service.catalog.display()
            )
        })?;
    crate::run_log::start(catalog.clone());
    let store = Store::open(&fleet.service.store_dir).with_context(|| {
        format!(
            "cannot open the store {}",
            fleet.service.store_dir.display()
        )
    })?;
    let holder = this_process();
    let released = catalog.release_dead_leases(&holder).await?;
    if released > 0 {
        tracing::warn!(
            released,
            "released job leases of a stopped bakfleet process on this host"
        );
    }
    let drills = catalog
        .interrupt_orphaned_drills(&holder.host, time::OffsetDateTime::now_utc())
        .await?;
    if drills > 0 {
        tracing::warn!(
            drills,
            "marked restore drills left running by a stopped process as interrupted"
        );
    }
    let interrupted = catalog
        .interrupt_orphaned_runs(time::OffsetDateTime::now_utc())
        .await?;
    if interrupted > 0 {
        tracing::warn!(
            interrupted,
            "marked runs left running by a stopped process as interrupted"
        );
    }
    // A writer idle for two lease lifetimes has lost its lease, so its file is abandoned.
    let removed = store.remove_partial_files(fleet.service.lease * 2).await?;
    if removed > 0 {
        tracing::warn!(removed, store = %store.root().display(), "removed partial files left by an interrupted run");
    }
    register_instances(&catalog, &fleet).await;
    let lease_ttl = fleet.service.lease;
    let limits = Arc::new(crate::job::Limits::new(&fleet.service));
    Ok(JobContext {
        limits,
        fleet: Arc::new(fleet),
        catalog,
        store: Arc::new(store),
        secrets: Arc::new(secrets),
        holder,
        lease_ttl,
        progress_interval: PROGRESS_INTERVAL,
        events,
        shutdown: Shutdown::new(),
    })
}

/// Records every instance of the fleet file, so that the site and `list` show an instance
/// that was never reached too. Facts the server reported earlier are kept.
pub(crate) async fn register_instances(catalog: &Catalog, fleet: &Fleet) {
    for instance in &fleet.instances {
        let facts = InstanceFacts {
            name: instance.name.clone(),
            host: instance.host.clone(),
            port: instance.port,
            product_version: None,
            edition: None,
            engine_edition: None,
            server_name: None,
        };
        if let Err(error) = catalog.upsert_instance(&facts).await {
            tracing::warn!(instance = %instance.name, %error, "could not record the instance");
        }
    }
}

/// This process as a lease holder: host name, PID and a random id, so that a restarted
/// process with a reused PID is still a different holder.
pub fn this_process() -> LeaseHolder {
    LeaseHolder {
        host: gethostname::gethostname().to_string_lossy().into_owned(),
        pid: std::process::id(),
        id: uuid::Uuid::new_v4().to_string(),
    }
}
