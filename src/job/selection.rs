//! Which databases of an instance a fleet entry selects, read from the instance itself.

use super::connect::{connect_settings, open_query_connection};
use crate::fleet::{Instance, Secrets};
use crate::mssql::DatabaseInfo;

/// The instance could not be listed.
#[derive(Debug, thiserror::Error)]
#[error("instance {instance}: cannot list databases: {reason}")]
pub struct SelectionError {
    pub instance: String,
    pub reason: String,
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
    let fail = |reason: String| SelectionError {
        instance: instance.name.clone(),
        reason,
    };
    let settings = connect_settings(instance, secrets, None).map_err(|e| fail(e.to_string()))?;
    let mut connection = open_query_connection(&settings)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let databases = connection
        .databases()
        .await
        .map_err(|e| fail(e.to_string()))?;
    Ok(databases
        .into_iter()
        .filter(|database| !database.name.eq_ignore_ascii_case("tempdb"))
        .filter(|database| instance.databases.selects(&database.name))
        .collect())
}
