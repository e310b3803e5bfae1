//! Builders of runs and backup records for catalogue and web tests.
#![allow(dead_code)]

use bakfleet::backup::{BackupRecord, BackupType, Lsn};
use bakfleet::catalog::{Catalog, LeaseHolder, NewRun, RunStats};
use time::macros::datetime;
use time::{Duration, OffsetDateTime, PrimitiveDateTime};

/// A fixed time the fixtures count from, so that tests do not depend on the clock.
pub const T0: OffsetDateTime = datetime!(2024-05-01 10:00:00 UTC);

pub fn new_run(
    instance: &str,
    database: &str,
    backup_type: BackupType,
    started_at: OffsetDateTime,
) -> NewRun {
    NewRun {
        instance: instance.to_string(),
        database: database.to_string(),
        backup_type,
        trigger: "schedule".to_string(),
        started_at,
        host: "central01".to_string(),
        pid: 4242,
        slot: None,
    }
}

/// Builds a verified backup that finished at `finish`, from a server in UTC+2.
pub fn record(
    instance: &str,
    database: &str,
    backup_type: BackupType,
    finish: OffsetDateTime,
    size_bytes: u64,
) -> BackupRecord {
    let local = finish.to_offset(time::macros::offset!(+2));
    let local_finish = PrimitiveDateTime::new(local.date(), local.time());
    let sequence = u128::from(finish.unix_timestamp().unsigned_abs());
    BackupRecord {
        instance: instance.to_string(),
        database: database.to_string(),
        backup_type,
        store_path: format!(
            "{instance}/{database}/{backup_type}/{}.{}",
            finish.unix_timestamp(),
            backup_type.file_extension()
        ),
        staged_path: format!(
            r"\\files01\sqlbackup\{instance}\{database}.{}",
            backup_type.file_extension()
        ),
        size_bytes,
        sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".to_string(),
        first_lsn: Lsn(sequence * 100_000),
        last_lsn: Lsn(sequence * 100_000 + 500),
        checkpoint_lsn: Lsn(sequence * 100_000 + 100),
        database_backup_lsn: Lsn(41_000_000_012_300_001),
        differential_base_lsn: None,
        backup_set_guid: Some("6f1e2a3b-0000-4000-8000-000000000001".to_string()),
        database_guid: Some("6f1e2a3b-0000-4000-8000-0000000000db".to_string()),
        backup_start: local_finish - Duration::seconds(30),
        backup_finish: local_finish,
        time_zone: Some(8),
        server_version: Some("16.0.1000.6".to_string()),
        recovery_model: Some("FULL".to_string()),
        has_checksums: true,
        is_copy_only: false,
        compressed: true,
        backup_size: Some(size_bytes * 3),
        compressed_size: Some(size_bytes),
        fetched_at: finish + Duration::seconds(20),
        fetch_ms: 1500,
        files: None,
        families: Vec::new(),
        differential_base_guid: None,
    }
}

pub fn stats(finished_at: OffsetDateTime, bytes: u64) -> RunStats {
    RunStats {
        finished_at,
        duration_ms: 60_000,
        bytes,
        throughput_bps: bytes as f64 / 60.0,
    }
}

pub fn holder(host: &str, pid: u32) -> LeaseHolder {
    LeaseHolder {
        host: host.to_string(),
        pid,
        id: format!("{host}-{pid}-0001"),
    }
}

/// Starts a run of the backup's database and completes it with the backup, returning
/// the run id and backup id.
pub async fn add_backup(catalog: &Catalog, backup: &BackupRecord) -> (i64, i64) {
    let started_at = backup.fetched_at - Duration::minutes(1);
    let run = new_run(
        &backup.instance,
        &backup.database,
        backup.backup_type,
        started_at,
    );
    let run_id = catalog.start_run(&run).await.expect("start run");
    let backup_id = catalog
        .complete_run(run_id, backup, &stats(backup.fetched_at, backup.size_bytes))
        .await
        .expect("complete run");
    (run_id, backup_id)
}
