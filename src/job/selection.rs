//! Which databases of an instance a fleet entry selects, read from the instance itself.

use super::connect::{connect_settings, open_query_connection};
use super::JobContext;
use crate::catalog::DatabaseFacts;
use crate::fleet::{Instance, Secrets};
use crate::mssql::DatabaseInfo;

/// The instance could not be listed.
#[derive(Debug, thiserror::Error)]
#[error("instance {instance}: cannot list databases: {reason}")]
pub struct SelectionError {
    pub instance: String,
    pub reason: String,
}

/// Lists every database of the instance, in name order, whatever its patterns select.
///
/// # Errors
/// [`SelectionError`] when the instance cannot be reached or queried.
pub async fn list_all_databases(
    instance: &Instance,
    secrets: &Secrets,
) -> Result<Vec<DatabaseInfo>, SelectionError> {
    let fail = |reason: String| SelectionError {
        instance: instance.name.clone(),
        reason,
    };
    let settings = connect_settings(instance, secrets, None).map_err(|e| fail(e.to_string()))?;
    let mut connection = open_query_connection(&settings)
        .await
        .map_err(|e| fail(e.to_string()))?;
    connection
        .databases()
        .await
        .map_err(|e| fail(e.to_string()))
}

/// Lists the instance's databases that its `databases` include/exclude patterns select,
/// in name order. tempdb is never selected: SQL Server cannot back it up.
///
/// # Errors
/// [`SelectionError`] when the instance cannot be reached or queried.
pub async fn select_databases(
    instance: &Instance,
    secrets: &Secrets,
) -> Result<Vec<DatabaseInfo>, SelectionError> {
    let databases = list_all_databases(instance, secrets).await?;
    Ok(databases
        .into_iter()
        .filter(|database| !database.name.eq_ignore_ascii_case("tempdb"))
        .filter(|database| instance.databases.selects(&database.name))
        .collect())
}

/// Lists the databases the instance's patterns select, like [`select_databases`], and
/// records each in the catalogue. A selected database that has never been backed up then
/// shows on the overview as missing, before its first run.
///
/// # Errors
/// [`SelectionError`] when the instance cannot be reached or queried. A failed catalogue
/// write is logged and does not fail the selection.
pub async fn select_and_record_databases(
    ctx: &JobContext,
    instance: &Instance,
) -> Result<Vec<DatabaseInfo>, SelectionError> {
    let databases = select_databases(instance, &ctx.secrets).await?;
    if let Err(error) = record_databases(ctx, instance, &databases).await {
        tracing::warn!(instance = %instance.name, %error, "could not record the selected databases");
    }
    Ok(databases)
}

/// Records each database under its instance. The instance row exists because opening
/// the fleet and every reload register every instance of the fleet file.
async fn record_databases(
    ctx: &JobContext,
    instance: &Instance,
    databases: &[DatabaseInfo],
) -> Result<(), crate::catalog::CatalogError> {
    for database in databases {
        let facts = DatabaseFacts {
            name: database.name.clone(),
            recovery_model: Some(database.recovery_model.clone()),
            state: Some(database.state.clone()),
        };
        ctx.catalog.upsert_database(&instance.name, &facts).await?;
    }
    Ok(())
}
