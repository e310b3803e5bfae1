//! The storage page: bytes kept per instance and database, their growth over 30 days,
//! and the free space of the store's file system.

use axum::extract::State;
use axum::response::Html;
use serde::Serialize;
use time::{Duration, OffsetDateTime};

use super::charts;
use super::error::WebError;
use super::health::free_bytes;
use super::overview::{assess, FleetInForce};
use super::Site;
use crate::catalog::DatabaseStorage;

/// The span over which the page reports growth.
const GROWTH_WINDOW: Duration = Duration::days(30);

/// Stored bytes of one instance, summed over its databases.
#[derive(Debug, Default, Serialize)]
struct InstanceStorage {
    instance: String,
    stored_bytes: u64,
    backup_count: u64,
    growth_bytes: i64,
    databases: Vec<DatabaseStorageView>,
}

#[derive(Debug, Serialize)]
struct DatabaseStorageView {
    #[serde(flatten)]
    storage: DatabaseStorage,
    growth_bytes: i64,
}

/// Free space of the store's file system, or why it could not be read.
#[derive(Debug, Serialize)]
struct StoreSpace {
    root: String,
    free_bytes: Option<u64>,
    error: Option<String>,
}

pub(super) async fn storage(State(site): State<Site>) -> Result<Html<String>, WebError> {
    let now = OffsetDateTime::now_utc();
    let databases = site
        .state
        .catalog
        .storage_by_database(now - GROWTH_WINDOW)
        .await?;
    let instances = by_instance(databases);
    let total_bytes: u64 = instances.iter().map(|entry| entry.stored_bytes).sum();
    let total_growth: i64 = instances.iter().map(|entry| entry.growth_bytes).sum();
    let store = site
        .state
        .store
        .as_ref()
        .map(|store| store_space(store.root()));
    let overview = site.state.catalog.fleet_overview().await?;
    let fleet = site.state.fleet.as_ref().map(FleetInForce::current);
    let protections = assess(fleet.as_deref(), &overview, now)?;
    let heat_map = (!protections.is_empty()).then(|| charts::heat_map(&protections, now));
    site.render(
        "storage.html",
        minijinja::context! {
            instances,
            total_bytes,
            total_growth,
            growth_days => GROWTH_WINDOW.whole_days(),
            store,
            heat_map,
        },
    )
}

fn store_space(root: &std::path::Path) -> StoreSpace {
    match free_bytes(root) {
        Ok(free) => StoreSpace {
            root: root.display().to_string(),
            free_bytes: Some(free),
            error: None,
        },
        Err(error) => {
            tracing::warn!(root = %root.display(), %error, "cannot read the free space of the store");
            StoreSpace {
                root: root.display().to_string(),
                free_bytes: None,
                error: Some(error.to_string()),
            }
        }
    }
}

/// Groups database rows, ordered by instance, under one entry per instance.
fn by_instance(databases: Vec<DatabaseStorage>) -> Vec<InstanceStorage> {
    let mut instances: Vec<InstanceStorage> = Vec::new();
    for storage in databases {
        let growth_bytes = storage.growth_bytes();
        let starts_new = instances
            .last()
            .is_none_or(|entry| entry.instance != storage.instance);
        if starts_new {
            instances.push(InstanceStorage {
                instance: storage.instance.clone(),
                ..InstanceStorage::default()
            });
        }
        let entry = instances.last_mut().expect("an entry was pushed above");
        entry.stored_bytes += storage.stored_bytes;
        entry.backup_count += storage.backup_count;
        entry.growth_bytes += growth_bytes;
        entry.databases.push(DatabaseStorageView {
            storage,
            growth_bytes,
        });
    }
    instances
}
