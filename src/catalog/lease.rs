//! Job leases: at most one job per database at a time, across bakfleet processes.

use std::time::Duration;

use sqlx::sqlite::SqliteQueryResult;
use sqlx::{Sqlite, SqliteConnection};
use time::OffsetDateTime;

use super::timestamp::{format_utc, parse_utc};
use super::{Catalog, CatalogError};

/// The process that holds or requests a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseHolder {
    /// Host name, shown in the error another process gets while this lease is live.
    pub host: String,
    pub pid: u32,
    /// Unique per process, so that a restarted process with a reused pid is not mistaken
    /// for the holder it replaced.
    pub id: String,
}

/// Error of acquiring or renewing a lease.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error(
        "database {database:?} on instance {instance} is locked by a job on host {host}, \
         pid {pid}, until {}; wait for that job to finish or, if that process is gone, \
         for its lease to expire",
        format_utc(*expires_at)
    )]
    Held {
        instance: String,
        database: String,
        host: String,
        pid: u32,
        expires_at: OffsetDateTime,
    },
    #[error(
        "this process no longer holds the lease on database {database:?} on instance \
         {instance}: it was released, or it expired and another process took it over; \
         stop the job"
    )]
    Lost { instance: String, database: String },
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

/// The holder of a lease as stored.
struct StoredLease {
    host: String,
    pid: u32,
    id: String,
    expires_at: OffsetDateTime,
}

/// The values a job lease is written with.
struct NewLease<'a> {
    instance: &'a str,
    database: &'a str,
    holder: &'a LeaseHolder,
    now: OffsetDateTime,
    ttl: Duration,
}

impl NewLease<'_> {
    /// Runs `sql`, an INSERT into `job_leases` with its seven columns in table order,
    /// with this lease's values.
    async fn write<'e>(
        &self,
        executor: impl sqlx::Executor<'e, Database = Sqlite>,
        sql: &'static str,
    ) -> Result<SqliteQueryResult, sqlx::Error> {
        sqlx::query(sql)
            .bind(self.instance)
            .bind(self.database)
            .bind(&self.holder.host)
            .bind(i64::from(self.holder.pid))
            .bind(&self.holder.id)
            .bind(format_utc(self.now))
            .bind(format_utc(self.now + self.ttl))
            .execute(executor)
            .await
    }
}

impl Catalog {
    /// Acquires the lease on a database for `ttl` from `now`.
    ///
    /// The holder may acquire again a lease it already holds, which extends it. A lease
    /// whose `expires_at` is not after `now` is taken over, with a warning that names
    /// the previous holder. Reading and writing happen in one IMMEDIATE transaction, so
    /// two processes cannot both succeed.
    ///
    /// # Errors
    /// [`LeaseError::Held`] with the live holder's host, pid and expiry.
    pub async fn acquire_lease(
        &self,
        instance: &str,
        database: &str,
        holder: &LeaseHolder,
        ttl: Duration,
        now: OffsetDateTime,
    ) -> Result<(), LeaseError> {
        let _turn = self.write_turn().await;
        let action =
            || format!("acquire the lease on database {database:?} on instance {instance}");
        let lease = NewLease {
            instance,
            database,
            holder,
            now,
            ttl,
        };
        // A lease lost in a power cut belonged to a process that the cut stopped too.
        // Mostly no lease is in place, because the previous job released it, and one
        // statement takes it. A lease in place goes through the checks below.
        let inserted = lease
            .write(
                self.relaxed(),
                "INSERT INTO job_leases (instance, database, holder_host, holder_pid, holder_id,
                                         acquired_at, expires_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (instance, database) DO NOTHING",
            )
            .await
            .map_err(CatalogError::query(action()))?;
        if inserted.rows_affected() == 1 {
            return Ok(());
        }
        let mut transaction = self
            .relaxed()
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(CatalogError::query(action()))?;

        if let Some(current) = read_lease(&mut transaction, instance, database).await? {
            let holder_gone = current.id != holder.id && is_dead_local_holder(&current);
            if holder_gone {
                tracing::warn!(
                    instance,
                    database,
                    previous_pid = current.pid,
                    "took over the job lease of a process on this host that no longer runs"
                );
            }
            if current.id != holder.id && current.expires_at > now && !holder_gone {
                return Err(LeaseError::Held {
                    instance: instance.to_string(),
                    database: database.to_string(),
                    host: current.host,
                    pid: current.pid,
                    expires_at: current.expires_at,
                });
            }
            if current.id != holder.id && !holder_gone {
                tracing::warn!(
                    instance,
                    database,
                    previous_host = %current.host,
                    previous_pid = current.pid,
                    expired_at = %format_utc(current.expires_at),
                    "took over an expired job lease"
                );
            }
        }

        lease
            .write(
                &mut *transaction,
                "INSERT INTO job_leases (instance, database, holder_host, holder_pid, holder_id,
                                         acquired_at, expires_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (instance, database) DO UPDATE SET
                     holder_host = excluded.holder_host,
                     holder_pid = excluded.holder_pid,
                     holder_id = excluded.holder_id,
                     acquired_at = excluded.acquired_at,
                     expires_at = excluded.expires_at",
            )
            .await
            .map_err(CatalogError::query(action()))?;

        transaction
            .commit()
            .await
            .map_err(CatalogError::query(action()))?;
        Ok(())
    }

    /// Releases the leases held by processes on this host that no longer run, and returns
    /// how many it released. A process killed with `kill -9` leaves its leases behind;
    /// without this its databases would stay locked until the leases expire.
    pub async fn release_dead_leases(&self, holder: &LeaseHolder) -> Result<u64, CatalogError> {
        let _turn = self.write_turn().await;
        let rows: Vec<(String, String, String, i64, String)> = sqlx::query_as(
            "SELECT instance, database, holder_host, holder_pid, holder_id FROM job_leases
             WHERE holder_host = ? AND holder_id != ?",
        )
        .bind(&holder.host)
        .bind(&holder.id)
        .fetch_all(&self.pool)
        .await
        .map_err(CatalogError::query("list job leases of this host"))?;
        let mut released = 0;
        for (instance, database, host, pid, id) in rows {
            let stored = StoredLease {
                host,
                pid: u32::try_from(pid).unwrap_or(0),
                id: id.clone(),
                expires_at: OffsetDateTime::UNIX_EPOCH,
            };
            if !is_dead_local_holder(&stored) {
                continue;
            }
            let result = sqlx::query(
                "DELETE FROM job_leases WHERE instance = ? AND database = ? AND holder_id = ?",
            )
            .bind(&instance)
            .bind(&database)
            .bind(&id)
            .execute(&self.pool)
            .await
            .map_err(CatalogError::query(format!(
                "release the lease of a stopped process on database {database:?} on instance {instance}"
            )))?;
            released += result.rows_affected();
        }
        Ok(released)
    }

    /// Extends a lease this holder has to `ttl` from `now`.
    ///
    /// Renewal succeeds after expiry too, as long as no other process took the lease over.
    ///
    /// # Errors
    /// [`LeaseError::Lost`] when the lease was released or another holder has it.
    pub async fn renew_lease(
        &self,
        instance: &str,
        database: &str,
        holder: &LeaseHolder,
        ttl: Duration,
        now: OffsetDateTime,
    ) -> Result<(), LeaseError> {
        let _turn = self.write_turn().await;
        let result = sqlx::query(
            "UPDATE job_leases SET expires_at = ?
             WHERE instance = ? AND database = ? AND holder_id = ?",
        )
        .bind(format_utc(now + ttl))
        .bind(instance)
        .bind(database)
        .bind(&holder.id)
        .execute(self.relaxed())
        .await
        .map_err(CatalogError::query(format!(
            "renew the lease on database {database:?} on instance {instance}"
        )))?;

        if result.rows_affected() == 0 {
            return Err(LeaseError::Lost {
                instance: instance.to_string(),
                database: database.to_string(),
            });
        }
        Ok(())
    }

    /// Releases a lease this holder has. Releasing a lease held by another process or
    /// by nobody changes nothing and logs a warning.
    pub async fn release_lease(
        &self,
        instance: &str,
        database: &str,
        holder: &LeaseHolder,
    ) -> Result<(), CatalogError> {
        let _turn = self.write_turn().await;
        let result = sqlx::query(
            "DELETE FROM job_leases WHERE instance = ? AND database = ? AND holder_id = ?",
        )
        .bind(instance)
        .bind(database)
        .bind(&holder.id)
        .execute(self.relaxed())
        .await
        .map_err(CatalogError::query(format!(
            "release the lease on database {database:?} on instance {instance}"
        )))?;

        if result.rows_affected() == 0 {
            tracing::warn!(
                instance,
                database,
                holder_id = %holder.id,
                "job lease to release was not held by this process"
            );
        }
        Ok(())
    }
}

async fn read_lease(
    connection: &mut SqliteConnection,
    instance: &str,
    database: &str,
) -> Result<Option<StoredLease>, CatalogError> {
    let row: Option<(i64, String, i64, String, String)> = sqlx::query_as(
        "SELECT rowid, holder_host, holder_pid, holder_id, expires_at FROM job_leases
         WHERE instance = ? AND database = ?",
    )
    .bind(instance)
    .bind(database)
    .fetch_optional(connection)
    .await
    .map_err(CatalogError::query(format!(
        "read the lease on database {database:?} on instance {instance}"
    )))?;
    let Some((rowid, host, pid, id, expires_at)) = row else {
        return Ok(None);
    };

    let expires_at = parse_utc("job_leases", "expires_at", rowid, &expires_at)?;
    let pid = u32::try_from(pid).map_err(|_| CatalogError::InvalidValue {
        table: "job_leases",
        column: "holder_pid",
        row_id: rowid,
        value: pid.to_string(),
        reason: "not a process id".to_string(),
    })?;
    Ok(Some(StoredLease {
        host,
        pid,
        id,
        expires_at,
    }))
}

/// Returns whether a stored lease belongs to a process on this machine that no longer
/// runs. A lease of another host is never judged here, and a pid that a new process
/// reused counts as alive, so such a lease waits for its expiry as before.
fn is_dead_local_holder(stored: &StoredLease) -> bool {
    let this_host = gethostname::gethostname();
    stored.host.as_str() == this_host && !process_alive(stored.pid)
}

/// Returns whether a process with this id runs on this host. Signal 0 checks existence
/// without signalling anything, and EPERM means it exists under another user.
pub(crate) fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 sends nothing; it only reports whether the pid exists.
    let result = unsafe { libc::kill(pid, 0) };
    result == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}
