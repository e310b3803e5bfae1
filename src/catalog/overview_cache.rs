//! The fleet overview's reads, kept in memory while the tables behind them do not change.
//!
//! A trigger on each of those tables increments `overview_generation` in the same
//! transaction as the change. A cached read is reused while the counter is where it was
//! when the read began, so a fleet page of thousands of databases costs one small query
//! until a run or backup changes something. The counter is read before the data, so a
//! kept read is never older than its counter says.

use std::sync::{Mutex, PoisonError};

use super::{Catalog, CatalogError, DatabaseOverview, InstanceRow, Reachability};

/// One read and the generation it began at.
#[derive(Debug)]
struct Kept<T> {
    generation: i64,
    value: T,
}

/// The newest result of each cached read, shared by the clones of one [`Catalog`].
#[derive(Debug, Default)]
pub(super) struct OverviewCache {
    overview: Mutex<Option<Kept<Vec<DatabaseOverview>>>>,
    instances: Mutex<Option<Kept<Vec<InstanceRow>>>>,
    reachability: Mutex<Option<Kept<Vec<Reachability>>>>,
    /// Held while a missed read runs, so that pages that miss at the same moment wait
    /// for one read instead of each making its own.
    reading: tokio::sync::Mutex<()>,
}

/// Returns the value kept in `slot` when it was read at `generation`.
fn kept<T: Clone>(slot: &Mutex<Option<Kept<T>>>, generation: i64) -> Option<T> {
    let slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
    slot.as_ref()
        .filter(|kept| kept.generation == generation)
        .map(|kept| kept.value.clone())
}

/// Keeps `value`, read at `generation`, unless `slot` holds a newer read.
fn keep<T: Clone>(slot: &Mutex<Option<Kept<T>>>, generation: i64, value: &T) {
    let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
    if slot
        .as_ref()
        .is_none_or(|kept| kept.generation < generation)
    {
        *slot = Some(Kept {
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
        let generation = self.overview_generation().await?;
        if let Some(value) = kept(&self.cache.overview, generation) {
            return Ok(value);
        }
        let _reading = self.cache.reading.lock().await;
        if let Some(value) = kept(&self.cache.overview, generation) {
            return Ok(value);
        }
        let value = self.read_fleet_overview().await?;
        keep(&self.cache.overview, generation, &value);
        Ok(value)
    }

    /// Lists stored instances by name, from memory while nothing behind them has changed.
    pub async fn instances(&self) -> Result<Vec<InstanceRow>, CatalogError> {
        let generation = self.overview_generation().await?;
        if let Some(value) = kept(&self.cache.instances, generation) {
            return Ok(value);
        }
        let _reading = self.cache.reading.lock().await;
        if let Some(value) = kept(&self.cache.instances, generation) {
            return Ok(value);
        }
        let value = self.read_instances().await?;
        keep(&self.cache.instances, generation, &value);
        Ok(value)
    }

    /// Finds, per instance, the newest run that shows whether bakfleet could connect (see
    /// `read_instance_reachability`), from memory while nothing behind it has changed.
    pub async fn instance_reachability(&self) -> Result<Vec<Reachability>, CatalogError> {
        let generation = self.overview_generation().await?;
        if let Some(value) = kept(&self.cache.reachability, generation) {
            return Ok(value);
        }
        let _reading = self.cache.reading.lock().await;
        if let Some(value) = kept(&self.cache.reachability, generation) {
            return Ok(value);
        }
        let value = self.read_instance_reachability().await?;
        keep(&self.cache.reachability, generation, &value);
        Ok(value)
    }

    async fn overview_generation(&self) -> Result<i64, CatalogError> {
        sqlx::query_scalar("SELECT value FROM overview_generation WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .map_err(CatalogError::query("read the overview generation"))
    }
}
