//! The fleet overview's reads, kept in memory while the tables behind them do not change.
//!
//! A trigger on each of those tables increments `overview_generation` in the same
//! transaction as the change. A cached read is reused while the counter is where it was
//! when the read began, so a fleet page of thousands of databases costs one small query
//! until a run or backup changes something. The counter is read before the data, so a
//! kept read is never older than the counter value stored with it.

use std::future::Future;
use std::sync::{Mutex, PoisonError};

use super::{Catalog, CatalogError, DatabaseOverview, InstanceRow, Reachability};

/// One read and the generation it began at.
#[derive(Debug)]
struct KeptRead<T> {
    generation: i64,
    value: T,
}

/// The newest result of each cached read, shared by the clones of one [`Catalog`].
#[derive(Debug, Default)]
pub(super) struct OverviewCache {
    overview: Mutex<Option<KeptRead<Vec<DatabaseOverview>>>>,
    instances: Mutex<Option<KeptRead<Vec<InstanceRow>>>>,
    reachability: Mutex<Option<KeptRead<Vec<Reachability>>>>,
    /// Held while a missed read runs, so that pages that miss at the same moment wait
    /// for one read instead of each making its own.
    reading: tokio::sync::Mutex<()>,
}

/// Returns the value kept in `slot` when it was read at `generation`.
fn kept<T: Clone>(slot: &Mutex<Option<KeptRead<T>>>, generation: i64) -> Option<T> {
    let slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
    slot.as_ref()
        .filter(|kept| kept.generation == generation)
        .map(|kept| kept.value.clone())
}

/// Keeps `value`, read at `generation`, unless `slot` already contains a newer read.
fn keep<T: Clone>(slot: &Mutex<Option<KeptRead<T>>>, generation: i64, value: &T) {
    let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
    if slot
        .as_ref()
        .is_none_or(|kept| kept.generation < generation)
    {
        *slot = Some(KeptRead {
            generation,
            value: value.clone(),
        });
    }
}

impl Catalog {
    /// Lists every known database, ordered by instance and database name, with its newest
    /// backup of each type (by UTC finish time) and its newest run. The list comes from
    /// memory while nothing behind it has changed.
    pub async fn fleet_overview(&self) -> Result<Vec<DatabaseOverview>, CatalogError> {
        self.through_cache(|cache| &cache.overview, || self.read_fleet_overview())
            .await
    }

    /// Lists stored instances by name, from memory while nothing behind them has changed.
    pub async fn instances(&self) -> Result<Vec<InstanceRow>, CatalogError> {
        self.through_cache(|cache| &cache.instances, || self.read_instances())
            .await
    }

    /// Finds, per instance, the newest run that shows whether bakfleet could connect (see
    /// `read_instance_reachability`), from memory while nothing behind it has changed.
    pub async fn instance_reachability(&self) -> Result<Vec<Reachability>, CatalogError> {
        self.through_cache(
            |cache| &cache.reachability,
            || self.read_instance_reachability(),
        )
        .await
    }

    /// Returns the read kept in `slot` when the generation has not moved since it was
    /// made, else makes it with `read` and keeps it.
    async fn through_cache<T, Read, Reading>(
        &self,
        slot: fn(&OverviewCache) -> &Mutex<Option<KeptRead<T>>>,
        read: Read,
    ) -> Result<T, CatalogError>
    where
        T: Clone,
        Read: FnOnce() -> Reading,
        Reading: Future<Output = Result<T, CatalogError>>,
    {
        let generation = self.overview_generation().await?;
        if let Some(value) = kept(slot(&self.cache), generation) {
            return Ok(value);
        }
        let _reading = self.cache.reading.lock().await;
        if let Some(value) = kept(slot(&self.cache), generation) {
            return Ok(value);
        }
        let value = read().await?;
        keep(slot(&self.cache), generation, &value);
        Ok(value)
    }

    /// Reads the counter that every change to the overview's tables increments, so that
    /// a caller can keep what it derived from the overview while the counter stays.
    pub async fn overview_generation(&self) -> Result<i64, CatalogError> {
        sqlx::query_scalar("SELECT value FROM overview_generation WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .map_err(CatalogError::query("read the overview generation"))
    }
}
