//! Concurrency limits shared by every job of a process: a global limit, one per instance
//! and one per staging server, so that a fleet-wide cycle does not flood one SQL Server or
//! one file server. Jobs waiting for a slot form the queue the admin site shows.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use time::OffsetDateTime;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::backup::BackupType;
use crate::fleet::{Service, Staging};

/// The slots a running job holds; dropping it frees them.
pub struct JobSlot {
    _global: OwnedSemaphorePermit,
    _instance: OwnedSemaphorePermit,
    _staging: OwnedSemaphorePermit,
    running: Arc<Mutex<BTreeMap<u64, QueuedJob>>>,
    id: u64,
}

impl Drop for JobSlot {
    fn drop(&mut self) {
        lock(&self.running).remove(&self.id);
    }
}

/// A job waiting for a slot or holding one, as the admin site lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueuedJob {
    pub instance: String,
    pub database: String,
    pub backup_type: BackupType,
    /// The staging server the job fetches from, as its limit is keyed.
    pub staging: String,
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
}

/// Jobs waiting and running at one moment, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct QueueSnapshot {
    pub waiting: Vec<QueuedJob>,
    pub running: Vec<QueuedJob>,
}

/// The configured number of slots of each kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SlotCounts {
    pub global: usize,
    pub per_instance: usize,
    pub per_staging: usize,
}

/// The limits of one process.
pub struct Limits {
    global: Arc<Semaphore>,
    global_slots: usize,
    per_instance: usize,
    per_staging: usize,
    instances: Mutex<HashMap<String, Arc<Semaphore>>>,
    stagings: Mutex<HashMap<String, Arc<Semaphore>>>,
    waiting: Arc<Mutex<BTreeMap<u64, QueuedJob>>>,
    running: Arc<Mutex<BTreeMap<u64, QueuedJob>>>,
    next_id: AtomicU64,
}

impl Limits {
    /// Builds the limits from `[service]`.
    pub fn new(service: &Service) -> Limits {
        Limits {
            global: Arc::new(Semaphore::new(service.max_parallel_jobs.max(1))),
            global_slots: service.max_parallel_jobs.max(1),
            per_instance: service.max_jobs_per_instance.max(1),
            per_staging: service.max_jobs_per_staging.max(1),
            instances: Mutex::new(HashMap::new()),
            stagings: Mutex::new(HashMap::new()),
            waiting: Arc::new(Mutex::new(BTreeMap::new())),
            running: Arc::new(Mutex::new(BTreeMap::new())),
            next_id: AtomicU64::new(0),
        }
    }

    /// Waits for a slot under all three limits and returns it.
    ///
    /// Slots are taken from the narrowest limit to the widest (instance, staging,
    /// global), and in that one order by every job, so two jobs never wait on each other
    /// in a cycle. The global slot comes last so that it only ever goes to a job that can
    /// run at once. Taken first, it went to the jobs of whichever instances queued first,
    /// most of which then waited for their instance's slot while holding it: in a slot
    /// of 100 instances with 10 databases each, 32 global slots kept about 13 jobs
    /// running on average.
    pub async fn acquire(
        &self,
        instance: &str,
        database: &str,
        backup_type: BackupType,
        staging: &Staging,
    ) -> JobSlot {
        let staging_key = staging_key(staging);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let job = QueuedJob {
            instance: instance.to_string(),
            database: database.to_string(),
            backup_type,
            staging: staging_key.clone(),
            since: OffsetDateTime::now_utc(),
        };
        lock(&self.waiting).insert(id, job.clone());
        let waiting = WaitingEntry {
            waiting: Arc::clone(&self.waiting),
            id,
        };

        let instance_semaphore = semaphore_for(&self.instances, instance, self.per_instance);
        let staging_semaphore = semaphore_for(&self.stagings, &staging_key, self.per_staging);
        // The semaphores are never closed, so acquiring cannot fail.
        let instance_permit = instance_semaphore.acquire_owned().await;
        let staging_permit = staging_semaphore.acquire_owned().await;
        let global = Arc::clone(&self.global).acquire_owned().await;
        drop(waiting);

        lock(&self.running).insert(
            id,
            QueuedJob {
                since: OffsetDateTime::now_utc(),
                ..job
            },
        );
        JobSlot {
            _global: global.expect("semaphore closed"),
            _instance: instance_permit.expect("semaphore closed"),
            _staging: staging_permit.expect("semaphore closed"),
            running: Arc::clone(&self.running),
            id,
        }
    }

    /// Returns the configured slot counts.
    pub fn slot_counts(&self) -> SlotCounts {
        SlotCounts {
            global: self.global_slots,
            per_instance: self.per_instance,
            per_staging: self.per_staging,
        }
    }

    /// Returns the jobs waiting and running now.
    pub fn snapshot(&self) -> QueueSnapshot {
        QueueSnapshot {
            waiting: lock(&self.waiting).values().cloned().collect(),
            running: lock(&self.running).values().cloned().collect(),
        }
    }
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits")
            .field("slots", &self.slot_counts())
            .finish_non_exhaustive()
    }
}

/// Removes a waiting job from the queue when it gets its slot or when its task is
/// cancelled while it waits.
struct WaitingEntry {
    waiting: Arc<Mutex<BTreeMap<u64, QueuedJob>>>,
    id: u64,
}

impl Drop for WaitingEntry {
    fn drop(&mut self) {
        lock(&self.waiting).remove(&self.id);
    }
}

/// Keys the staging limit by server: the SMB or SFTP host, or one key for every local
/// folder, since those share this machine's disks.
fn staging_key(staging: &Staging) -> String {
    match staging {
        Staging::Smb { host, .. } => format!("smb://{}", host.to_lowercase()),
        Staging::Sftp { host, .. } => format!("sftp://{}", host.to_lowercase()),
        Staging::Local { .. } => "local".to_string(),
    }
}

fn semaphore_for(
    map: &Mutex<HashMap<String, Arc<Semaphore>>>,
    key: &str,
    permits: usize,
) -> Arc<Semaphore> {
    let mut map = lock(map);
    Arc::clone(
        map.entry(key.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(permits))),
    )
}

/// Locks a mutex, going on with the data when another thread panicked while holding it:
/// the maps stay consistent because every change is one insert or remove.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::time::Duration;

    fn service(global: usize, per_instance: usize, per_staging: usize) -> Service {
        let mut service = crate::fleet::Fleet::parse(
            "[[instance]]\nname = \"a\"\nhost = \"h\"\n\
             auth = { kind = \"sql\", user = \"u\", password_env = \"P\" }\n\
             staging = { local = { server_path = \"/b\", dir = \"/b\" } }\n",
            std::path::Path::new("/fleet.toml"),
        )
        .unwrap()
        .service;
        service.max_parallel_jobs = global;
        service.max_jobs_per_instance = per_instance;
        service.max_jobs_per_staging = per_staging;
        service
    }

    fn smb(host: &str) -> Staging {
        Staging::Smb {
            unc: format!(r"\\{host}\backup"),
            host: host.to_string(),
            share: "backup".to_string(),
            dir: String::new(),
            port: 445,
            credential: "c".to_string(),
        }
    }

    fn local() -> Staging {
        Staging::Local {
            server_path: "/b".to_string(),
            dir: PathBuf::from("/b"),
        }
    }

    #[tokio::test]
    async fn limits_hold_second_job_of_instance() {
        let limits = Arc::new(Limits::new(&service(4, 1, 4)));
        let first = limits
            .acquire("sales", "A", BackupType::Full, &smb("f1"))
            .await;
        let waiter = tokio::spawn({
            let limits = Arc::clone(&limits);
            async move {
                limits
                    .acquire("sales", "B", BackupType::Log, &smb("f2"))
                    .await
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let snapshot = limits.snapshot();
        assert_eq!(snapshot.running.len(), 1);
        assert_eq!(snapshot.waiting.len(), 1);
        assert_eq!(snapshot.waiting[0].database, "B");

        let other_instance = limits.acquire("hr", "C", BackupType::Full, &local()).await;
        assert_eq!(limits.snapshot().running.len(), 2, "another instance runs");

        drop(first);
        let second = waiter.await.unwrap();
        let snapshot = limits.snapshot();
        assert!(snapshot.waiting.is_empty());
        assert_eq!(snapshot.running.len(), 2);
        drop((second, other_instance));
        assert!(limits.snapshot().running.is_empty());
    }

    #[tokio::test]
    async fn instance_wait_keeps_global_slot_free() {
        let limits = Arc::new(Limits::new(&service(2, 1, 4)));
        let first = limits
            .acquire("sales", "A", BackupType::Log, &local())
            .await;
        // Queued before the other instance's job, it waits for the sales slot.
        let same_instance = tokio::spawn({
            let limits = Arc::clone(&limits);
            async move {
                limits
                    .acquire("sales", "B", BackupType::Log, &local())
                    .await
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;

        let other_instance = tokio::time::timeout(
            Duration::from_secs(5),
            limits.acquire("hr", "C", BackupType::Log, &local()),
        )
        .await
        .expect("the second global slot is free for a job that can run");
        assert_eq!(limits.snapshot().running.len(), 2);
        assert_eq!(limits.snapshot().waiting.len(), 1);

        drop((first, other_instance));
        drop(same_instance.await.unwrap());
    }

    #[tokio::test]
    async fn limits_share_staging_server_slots() {
        let limits = Arc::new(Limits::new(&service(8, 8, 1)));
        let first = limits
            .acquire("sales", "A", BackupType::Full, &smb("FILES01"))
            .await;
        let waiter = tokio::spawn({
            let limits = Arc::clone(&limits);
            async move {
                limits
                    .acquire("hr", "B", BackupType::Full, &smb("files01"))
                    .await
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            limits.snapshot().waiting.len(),
            1,
            "one file server, one slot"
        );
        drop(first);
        drop(waiter.await.unwrap());
    }

    #[tokio::test]
    async fn limits_forget_cancelled_waiter() {
        let limits = Arc::new(Limits::new(&service(1, 1, 1)));
        let first = limits.acquire("a", "A", BackupType::Full, &local()).await;
        let waiter = tokio::spawn({
            let limits = Arc::clone(&limits);
            async move { limits.acquire("a", "B", BackupType::Full, &local()).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        waiter.abort();
        let _ = waiter.await;
        assert!(limits.snapshot().waiting.is_empty());
        drop(first);
    }
}
