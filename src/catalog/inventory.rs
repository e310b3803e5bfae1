//! Instances and databases as last seen on the servers.

use serde::Serialize;
use sqlx::sqlite::SqliteRow;
use time::OffsetDateTime;

use super::decode::RowReader;
use super::timestamp::format_utc;
use super::{Catalog, CatalogError};

/// Facts about an instance: its address from fleet.toml and, once bakfleet has
/// connected, what the server reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceFacts {
    /// Unique name from fleet.toml.
    pub name: String,
    pub host: String,
    pub port: u16,
    /// `SERVERPROPERTY('ProductVersion')`, such as `16.0.1000.6`.
    pub product_version: Option<String>,
    /// `SERVERPROPERTY('Edition')`.
    pub edition: Option<String>,
    /// `SERVERPROPERTY('EngineEdition')`: 4 is Express, 3 Enterprise, 2 Standard.
    pub engine_edition: Option<i32>,
    /// `@@SERVERNAME`.
    pub server_name: Option<String>,
}

/// Facts about one database, as `sys.databases` reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseFacts {
    pub name: String,
    /// `recovery_model_desc`: `FULL`, `BULK_LOGGED` or `SIMPLE`.
    pub recovery_model: Option<String>,
    /// `state_desc`, such as `ONLINE` or `RESTORING`.
    pub state: Option<String>,
}

/// An instance as the catalogue stores it, with the number of its known databases.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstanceRow {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub product_version: Option<String>,
    pub edition: Option<String>,
    pub engine_edition: Option<i32>,
    pub server_name: Option<String>,
    /// When server facts were last stored; `None` until bakfleet has connected once.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_seen_at: Option<OffsetDateTime>,
    pub database_count: i64,
}

impl Catalog {
    /// Inserts or updates an instance by name.
    ///
    /// A server fact given as `None` keeps the stored value, so loading fleet.toml (with
    /// only name, host and port) does not erase what an earlier connection learnt.
    /// `last_seen_at` moves to now only when `product_version` is given, because only a
    /// connected caller has it.
    pub async fn upsert_instance(&self, instance: &InstanceFacts) -> Result<(), CatalogError> {
        let _turn = self.write_turn().await;
        let seen_at = instance
            .product_version
            .as_ref()
            .map(|_| format_utc(OffsetDateTime::now_utc()));

        sqlx::query(
            "INSERT INTO instances (name, host, port, product_version, edition, engine_edition,
                                    server_name, last_seen_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (name) DO UPDATE SET
                 host = excluded.host,
                 port = excluded.port,
                 product_version = COALESCE(excluded.product_version, instances.product_version),
                 edition = COALESCE(excluded.edition, instances.edition),
                 engine_edition = COALESCE(excluded.engine_edition, instances.engine_edition),
                 server_name = COALESCE(excluded.server_name, instances.server_name),
                 last_seen_at = COALESCE(excluded.last_seen_at, instances.last_seen_at)",
        )
        .bind(&instance.name)
        .bind(&instance.host)
        .bind(i64::from(instance.port))
        .bind(&instance.product_version)
        .bind(&instance.edition)
        .bind(instance.engine_edition)
        .bind(&instance.server_name)
        .bind(seen_at)
        .execute(self.relaxed())
        .await
        .map_err(CatalogError::query(format!(
            "store instance {}",
            instance.name
        )))?;
        Ok(())
    }

    /// Inserts or updates a database of a stored instance, marking it seen now.
    ///
    /// # Errors
    /// [`CatalogError::InstanceNotFound`] when `instance` was never stored.
    pub async fn upsert_database(
        &self,
        instance: &str,
        database: &DatabaseFacts,
    ) -> Result<(), CatalogError> {
        let _turn = self.write_turn().await;
        let seen_at = format_utc(OffsetDateTime::now_utc());
        let result = sqlx::query(
            "INSERT INTO databases (instance_id, name, recovery_model, state, last_seen_at)
             SELECT id, ?, ?, ?, ? FROM instances WHERE name = ?
             ON CONFLICT (instance_id, name) DO UPDATE SET
                 recovery_model = excluded.recovery_model,
                 state = excluded.state,
                 last_seen_at = excluded.last_seen_at",
        )
        .bind(&database.name)
        .bind(&database.recovery_model)
        .bind(&database.state)
        .bind(&seen_at)
        .bind(instance)
        .execute(self.relaxed())
        .await
        .map_err(CatalogError::query(format!(
            "store database {:?} of instance {instance}",
            database.name
        )))?;

        if result.rows_affected() == 0 {
            return Err(CatalogError::InstanceNotFound {
                instance: instance.to_string(),
            });
        }
        Ok(())
    }

    /// Lists stored instances by name.
    pub(super) async fn read_instances(&self) -> Result<Vec<InstanceRow>, CatalogError> {
        let rows = sqlx::query(
            "SELECT i.id, i.name, i.host, i.port, i.product_version, i.edition,
                    i.engine_edition, i.server_name, i.last_seen_at,
                    (SELECT COUNT(*) FROM databases d WHERE d.instance_id = i.id)
                        AS database_count
             FROM instances i
             ORDER BY i.name",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(CatalogError::query("list instances"))?;

        rows.iter().map(instance_from_row).collect()
    }
}

fn instance_from_row(row: &SqliteRow) -> Result<InstanceRow, CatalogError> {
    let row = RowReader::new(row, "instances", "id")?;
    let port: i64 = row.get("port")?;
    let port =
        u16::try_from(port).map_err(|_| row.invalid("port", port.to_string(), "not a TCP port"))?;

    Ok(InstanceRow {
        name: row.get("name")?,
        host: row.get("host")?,
        port,
        product_version: row.get("product_version")?,
        edition: row.get("edition")?,
        engine_edition: row.get("engine_edition")?,
        server_name: row.get("server_name")?,
        last_seen_at: row.optional_utc("last_seen_at")?,
        database_count: row.get("database_count")?,
    })
}
