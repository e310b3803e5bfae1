use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::support::*;
use crate::config::{DatabaseState, Edition, Platform};
use crate::engine::{Corruption, Fault};
use crate::reply::{Done, ReplyEvent, Value};

fn backup_full(harness: &mut Harness, file: &str, options: &str) -> Vec<ReplyEvent> {
    let (path, _) = harness.share_path(file);
    harness.run(&format!(
        "BACKUP DATABASE [Sales] TO DISK = N'{path}' WITH {options}"
    ))
}

fn verify(harness: &mut Harness, file: &str, options: &str) -> Vec<ReplyEvent> {
    let (path, _) = harness.share_path(file);
    harness.run(&format!(
        "RESTORE VERIFYONLY FROM DISK = N'{path}' {options}"
    ))
}

fn history_row(harness: &mut Harness, file: &str) -> Vec<Value> {
    let (path, _) = harness.share_path(file);
    let sql = format!(
        "SELECT TOP (1) bs.backup_set_id, bs.backup_set_uuid, bs.type, bs.first_lsn, bs.last_lsn,
           bs.checkpoint_lsn, bs.database_backup_lsn, bs.differential_base_lsn, bs.database_guid,
           bs.backup_start_date, bs.backup_finish_date, bs.time_zone, bs.backup_size,
           bs.compressed_backup_size, bs.has_backup_checksums, bs.is_copy_only, bs.recovery_model,
           bs.software_major_version, bs.software_minor_version, bs.software_build_version,
           mf.physical_device_name, mf.family_sequence_number
         FROM msdb.dbo.backupset AS bs
         JOIN msdb.dbo.backupmediafamily AS mf ON mf.media_set_id = bs.media_set_id
         WHERE bs.database_name = N'Sales' AND mf.physical_device_name = N'{}'
         ORDER BY bs.backup_set_id DESC;",
        path.replace('\'', "''")
    );
    let (_, rows) = harness.query(&sql);
    assert_eq!(rows.len(), 1, "one history row for {file}");
    rows.into_iter().next().unwrap()
}

fn numeric(value: &Value) -> i128 {
    match value {
        Value::Numeric(number) => *number,
        Value::Null => 0,
        other => panic!("not numeric: {other:?}"),
    }
}

fn info_texts(events: &[ReplyEvent]) -> Vec<String> {
    infos(events)
        .into_iter()
        .map(|message| message.text)
        .collect()
}

#[test]
fn full_backup_writes_file_and_messages() {
    let mut harness = Harness::new();
    let events = backup_full(
        &mut harness,
        "full.bak",
        "INIT, FORMAT, CHECKSUM, STATS = 10",
    );
    assert!(errors(&events).is_empty(), "{:?}", errors(&events));
    let texts = info_texts(&events);
    let percents: Vec<&String> = texts
        .iter()
        .filter(|text| text.ends_with("percent processed."))
        .collect();
    assert_eq!(percents.len(), 10);
    assert_eq!(percents[0], "10 percent processed.");
    assert_eq!(percents[9], "100 percent processed.");
    assert!(texts.contains(
        &"Processed 256 pages for database 'Sales', file 'Sales' on file 1.".to_string()
    ));
    assert!(texts.contains(
        &"Processed 2 pages for database 'Sales', file 'Sales_log' on file 1.".to_string()
    ));
    let last = texts.last().unwrap();
    assert!(
        last.starts_with("BACKUP DATABASE successfully processed 258 pages in "),
        "{last}"
    );
    assert!(last.ends_with(" MB/sec)."), "{last}");
    assert!(harness.share_path("full.bak").1.is_file());
    assert_eq!(
        dones(&events),
        vec![Done {
            more: false,
            error: false,
            row_count: None
        }]
    );
}

#[test]
fn full_backup_passes_verification() {
    let mut harness = Harness::new();
    backup_full(&mut harness, "full.bak", "INIT, CHECKSUM");
    let events = verify(&mut harness, "full.bak", "WITH CHECKSUM");
    assert!(errors(&events).is_empty(), "{:?}", errors(&events));
    assert_eq!(
        info_texts(&events),
        vec!["The backup set on file 1 is valid.".to_string()]
    );
}

#[test]
fn compressed_backup_passes_verification() {
    let mut harness = Harness::new();
    let events = backup_full(&mut harness, "c.bak", "INIT, FORMAT, CHECKSUM, COMPRESSION");
    assert!(errors(&events).is_empty(), "{:?}", errors(&events));
    let events = verify(&mut harness, "c.bak", "WITH CHECKSUM");
    assert!(errors(&events).is_empty(), "{:?}", errors(&events));
    let row = history_row(&mut harness, "c.bak");
    let backup_size = numeric(&row[12]);
    let compressed_size = numeric(&row[13]);
    assert!(
        compressed_size < backup_size,
        "{compressed_size} < {backup_size}"
    );
}

#[test]
fn history_row_matches_backup() {
    let mut harness = Harness::new();
    backup_full(&mut harness, "h.bak", "INIT, CHECKSUM");
    let (path, local) = harness.share_path("h.bak");
    let row = history_row(&mut harness, "h.bak");
    assert_eq!(row[0], Value::Int(1));
    assert_eq!(text(&row[2]), "D");
    assert_eq!(
        numeric(&row[3]),
        numeric(&row[5]),
        "first_lsn = checkpoint_lsn"
    );
    assert!(numeric(&row[4]) > numeric(&row[3]));
    assert_eq!(numeric(&row[6]), 0, "first full has no database_backup_lsn");
    assert_eq!(row[7], Value::Null);
    assert_eq!(row[11], Value::Int(0));
    assert_eq!(
        numeric(&row[13]),
        std::fs::metadata(local).unwrap().len() as i128
    );
    assert_eq!(row[14], Value::Bool(true));
    assert_eq!(row[15], Value::Bool(false));
    assert_eq!(text(&row[16]), "FULL");
    assert_eq!(row[17], Value::Int(16));
    assert_eq!(text(&row[20]), path);
    assert_eq!(row[21], Value::Int(1));
}

#[test]
fn lsn_chain_full_diff_log_log() {
    let mut harness = Harness::new();
    backup_full(&mut harness, "f.bak", "INIT");
    let (diff_path, _) = harness.share_path("d.bak");
    let events = harness.run(&format!(
        "BACKUP DATABASE [Sales] TO DISK = N'{diff_path}' WITH DIFFERENTIAL, INIT"
    ));
    assert!(errors(&events).is_empty(), "{:?}", errors(&events));
    assert!(info_texts(&events)
        .last()
        .unwrap()
        .starts_with("BACKUP DATABASE WITH DIFFERENTIAL successfully processed"));
    for file in ["l1.trn", "l2.trn"] {
        let (path, _) = harness.share_path(file);
        let events = harness.run(&format!(
            "BACKUP LOG [Sales] TO DISK = N'{path}' WITH INIT, CHECKSUM"
        ));
        assert!(errors(&events).is_empty(), "{:?}", errors(&events));
        assert!(info_texts(&events)
            .last()
            .unwrap()
            .starts_with("BACKUP LOG successfully processed"));
    }
    let full = history_row(&mut harness, "f.bak");
    let diff = history_row(&mut harness, "d.bak");
    let log1 = history_row(&mut harness, "l1.trn");
    let log2 = history_row(&mut harness, "l2.trn");
    assert_eq!(text(&diff[2]), "I");
    assert_eq!(
        numeric(&diff[6]),
        numeric(&full[5]),
        "diff database_backup_lsn = full checkpoint_lsn"
    );
    assert_eq!(
        numeric(&diff[7]),
        numeric(&full[5]),
        "diff differential_base_lsn = full checkpoint_lsn"
    );
    assert_eq!(text(&log1[2]), "L");
    assert_eq!(
        numeric(&log1[3]),
        numeric(&full[3]),
        "first log starts at the full's first_lsn"
    );
    assert_eq!(
        numeric(&log2[3]),
        numeric(&log1[4]),
        "log2 first_lsn = log1 last_lsn"
    );
    assert!(numeric(&log2[4]) > numeric(&log2[3]));
    assert_eq!(numeric(&log2[6]), numeric(&full[5]));
    for file in ["d.bak", "l1.trn", "l2.trn"] {
        let events = verify(&mut harness, file, "");
        assert!(errors(&events).is_empty(), "{file}: {:?}", errors(&events));
    }
}

#[test]
fn copy_only_full_keeps_differential_base() {
    let mut harness = Harness::new();
    backup_full(&mut harness, "f.bak", "INIT");
    backup_full(&mut harness, "c.bak", "INIT, COPY_ONLY");
    let (path, _) = harness.share_path("d.bak");
    harness.run(&format!(
        "BACKUP DATABASE [Sales] TO DISK = N'{path}' WITH DIFFERENTIAL"
    ));
    let full = history_row(&mut harness, "f.bak");
    let copy = history_row(&mut harness, "c.bak");
    let diff = history_row(&mut harness, "d.bak");
    assert_eq!(copy[15], Value::Bool(true));
    assert_eq!(numeric(&diff[6]), numeric(&full[5]));
}

#[test]
fn log_under_simple_fails_4208() {
    let mut harness = Harness::new();
    harness.run("ALTER DATABASE [Sales] SET RECOVERY SIMPLE");
    let (path, _) = harness.share_path("l.trn");
    let events = harness.run(&format!("BACKUP LOG [Sales] TO DISK = N'{path}'"));
    let errors = errors(&events);
    assert_eq!(errors.len(), 2);
    assert_eq!(errors[0].number, 4208);
    assert_eq!(errors[1].number, 3013);
    assert_eq!(errors[1].text, "BACKUP LOG is terminating abnormally.");
    assert_eq!(
        dones(&events),
        vec![Done {
            more: false,
            error: true,
            row_count: None
        }]
    );
}

#[test]
fn log_without_full_fails_4214() {
    let mut harness = Harness::new();
    let (path, _) = harness.share_path("l.trn");
    let events = harness.run(&format!("BACKUP LOG [Sales] TO DISK = N'{path}'"));
    assert_eq!(error_numbers(&events), vec![4214, 3013]);
}

#[test]
fn log_after_simple_round_trip_fails_4214() {
    let mut harness = Harness::new();
    backup_full(&mut harness, "f.bak", "INIT");
    harness.run(
        "ALTER DATABASE [Sales] SET RECOVERY SIMPLE; ALTER DATABASE [Sales] SET RECOVERY FULL",
    );
    let (path, _) = harness.share_path("l.trn");
    let events = harness.run(&format!("BACKUP LOG [Sales] TO DISK = N'{path}'"));
    assert_eq!(error_numbers(&events), vec![4214, 3013]);
}

#[test]
fn differential_without_base_fails_3035() {
    let mut harness = Harness::new();
    let events = backup_full(&mut harness, "d.bak", "DIFFERENTIAL");
    let errors = errors(&events);
    assert_eq!(errors[0].number, 3035);
    assert!(errors[0].text.contains("database \"Sales\""));
    assert_eq!(errors[1].text, "BACKUP DATABASE is terminating abnormally.");
}

#[test]
fn missing_directory_fails_3201() {
    let mut harness = Harness::new();
    let path = format!(r"{SHARE}\nodir\x.bak");
    let events = harness.run(&format!(
        "BACKUP DATABASE [Sales] TO DISK = N'{path}' WITH INIT"
    ));
    let errors = errors(&events);
    assert_eq!(errors[0].number, 3201);
    assert_eq!(
        errors[0].text,
        format!("Cannot open backup device '{path}'. Operating system error 3(The system cannot find the path specified.).")
    );
    assert_eq!(errors[1].number, 3013);
}

#[test]
fn unmapped_path_fails_3201() {
    let mut harness = Harness::new();
    let events = harness.run(r"BACKUP DATABASE [Sales] TO DISK = N'\\elsewhere\share\x.bak'");
    assert_eq!(error_numbers(&events), vec![3201, 3013]);
}

#[test]
fn directory_as_file_fails_access_denied() {
    let mut harness = Harness::new();
    std::fs::create_dir(harness.dir.path().join("taken")).unwrap();
    let events = backup_full(&mut harness, "taken", "INIT");
    let errors = errors(&events);
    assert!(
        errors[0]
            .text
            .ends_with("Operating system error 5(Access is denied.)."),
        "{}",
        errors[0].text
    );
}

#[test]
fn unknown_database_fails_911() {
    let mut harness = Harness::new();
    let (path, _) = harness.share_path("x.bak");
    let events = harness.run(&format!("BACKUP DATABASE [Nope] TO DISK = N'{path}'"));
    assert_eq!(error_numbers(&events), vec![911, 3013]);
}

#[test]
fn offline_database_fails_942() {
    let mut harness = Harness::new();
    harness.run("ALTER DATABASE [Sales] SET OFFLINE");
    let events = backup_full(&mut harness, "x.bak", "INIT");
    let errors = errors(&events);
    assert_eq!(errors[0].number, 942);
    assert_eq!(errors[0].class, 14);
}

#[test]
fn emergency_database_fails_3033() {
    let mut harness = Harness::with(|config| config.databases[0].state = DatabaseState::Emergency);
    let events = backup_full(&mut harness, "x.bak", "INIT");
    assert_eq!(error_numbers(&events), vec![3033, 3013]);
}

#[test]
fn master_log_backup_fails_3024() {
    let mut harness = Harness::new();
    let (path, _) = harness.share_path("m.trn");
    let events = harness.run(&format!("BACKUP LOG [master] TO DISK = N'{path}'"));
    assert_eq!(error_numbers(&events), vec![3024, 3013]);
}

#[test]
fn tempdb_backup_fails_3147() {
    let mut harness = Harness::new();
    let (path, _) = harness.share_path("t.bak");
    let events = harness.run(&format!("BACKUP DATABASE tempdb TO DISK = N'{path}'"));
    assert_eq!(error_numbers(&events), vec![3147, 3013]);
}

#[test]
fn snapshot_backup_fails_3002() {
    let mut harness = Harness::with(|config| {
        let mut snapshot = crate::config::DatabaseConfig::new("Sales_snap");
        snapshot.snapshot_of = Some("Sales".into());
        config.databases.push(snapshot);
    });
    let (path, _) = harness.share_path("s.bak");
    let events = harness.run(&format!("BACKUP DATABASE [Sales_snap] TO DISK = N'{path}'"));
    assert_eq!(error_numbers(&events), vec![3002, 3013]);
}

#[test]
fn backup_in_transaction_fails_3021() {
    let mut harness = Harness::new();
    let (path, _) = harness.share_path("x.bak");
    let events = harness.run(&format!(
        "BEGIN TRAN; BACKUP DATABASE [Sales] TO DISK = N'{path}'; COMMIT"
    ));
    assert_eq!(error_numbers(&events), vec![3021, 3013]);
    assert_eq!(
        dones(&events).len(),
        3,
        "the batch goes on after the failed BACKUP"
    );
}

#[test]
fn express_rejects_compression_1844() {
    let mut harness = Harness::with(|config| config.edition = Edition::Express);
    let events = backup_full(&mut harness, "x.bak", "COMPRESSION");
    let errors = errors(&events);
    assert_eq!(errors[0].number, 1844);
    assert_eq!(
        errors[0].text,
        "BACKUP DATABASE WITH COMPRESSION is not supported on Express Edition (64-bit)."
    );
}

#[test]
fn linux_host_path_backs_up() {
    let mut harness = Harness::with(|config| {
        config.platform = Platform::Linux;
        config.path_maps[0].server = "/var/opt/mssql/backup".into();
    });
    let events =
        harness.run("BACKUP DATABASE [Sales] TO DISK = N'/var/opt/mssql/backup/x.bak' WITH INIT");
    assert!(errors(&events).is_empty(), "{:?}", errors(&events));
    assert!(harness.dir.path().join("x.bak").is_file());
}

#[test]
fn backup_to_null_device_succeeds() {
    let mut harness = Harness::new();
    let events = harness.run("BACKUP DATABASE [Sales] TO DISK = N'NUL'");
    assert!(errors(&events).is_empty(), "{:?}", errors(&events));
}

#[test]
fn verify_missing_file_fails_3201() {
    let mut harness = Harness::new();
    let events = verify(&mut harness, "none.bak", "");
    let errors = errors(&events);
    assert_eq!(errors[0].number, 3201);
    assert!(errors[0]
        .text
        .ends_with("Operating system error 2(The system cannot find the file specified.)."));
    assert_eq!(errors[1].text, "VERIFY DATABASE is terminating abnormally.");
}

#[test]
fn verify_rejects_foreign_file_3242() {
    let mut harness = Harness::new();
    std::fs::write(
        harness.dir.path().join("pg.bak"),
        b"PGDMP not a tape at all, padded out to some length",
    )
    .unwrap();
    let events = verify(&mut harness, "pg.bak", "");
    assert_eq!(error_numbers(&events), vec![3242, 3013]);
}

#[test]
fn verify_checksum_on_plain_backup_fails_3187() {
    let mut harness = Harness::new();
    backup_full(&mut harness, "n.bak", "INIT, NO_CHECKSUM");
    let events = verify(&mut harness, "n.bak", "WITH CHECKSUM");
    assert_eq!(error_numbers(&events), vec![3187, 3013]);
    let events = verify(&mut harness, "n.bak", "");
    assert!(errors(&events).is_empty(), "{:?}", errors(&events));
}

#[test]
fn verify_detects_payload_corruption_3189() {
    let mut harness = Harness::new();
    harness.instance.set_fault(Fault::CorruptNextBackup {
        what: Corruption::PayloadByte,
    });
    let events = backup_full(&mut harness, "p.bak", "INIT, CHECKSUM");
    assert!(errors(&events).is_empty(), "{:?}", errors(&events));
    let events = verify(&mut harness, "p.bak", "WITH CHECKSUM");
    assert_eq!(error_numbers(&events), vec![3189, 3013]);
}

#[test]
fn verify_detects_header_corruption_3241() {
    let mut harness = Harness::new();
    harness.instance.set_fault(Fault::CorruptNextBackup {
        what: Corruption::HeaderByte,
    });
    backup_full(&mut harness, "h.bak", "INIT, CHECKSUM");
    let events = verify(&mut harness, "h.bak", "");
    assert_eq!(error_numbers(&events), vec![3241, 3013]);
}

#[test]
fn verify_detects_truncated_file() {
    let mut harness = Harness::new();
    backup_full(&mut harness, "t.bak", "INIT, CHECKSUM");
    let local = harness.share_path("t.bak").1;
    let length = std::fs::metadata(&local).unwrap().len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&local)
        .unwrap();
    file.set_len(length / 2).unwrap();
    let events = verify(&mut harness, "t.bak", "");
    assert_eq!(error_numbers(&events), vec![3256, 3013]);
}

#[test]
fn verify_missing_file_number_fails_4038() {
    let mut harness = Harness::new();
    backup_full(&mut harness, "f.bak", "INIT");
    let events = verify(&mut harness, "f.bak", "WITH FILE = 2");
    assert_eq!(error_numbers(&events), vec![4038, 3013]);
}

#[test]
fn disk_full_fails_3202_without_history() {
    let mut harness = Harness::new();
    harness
        .instance
        .set_fault(Fault::DiskFull { at_percent: 50 });
    let events = backup_full(&mut harness, "full.bak", "INIT");
    let errors = errors(&events);
    assert_eq!(errors[0].number, 3202);
    assert!(
        errors[0]
            .text
            .ends_with("failed: 112(There is not enough space on the disk.)"),
        "{}",
        errors[0].text
    );
    assert_eq!(errors[1].number, 3013);
    assert!(
        !harness.share_path("full.bak").1.exists(),
        "no partial file stays"
    );
    let (_, rows) = harness.query("SELECT backup_set_id FROM msdb.dbo.backupset");
    assert!(rows.is_empty());
}

#[test]
fn nonrecoverable_disk_full_fails_3271() {
    let mut harness = Harness::new();
    harness
        .instance
        .set_fault(Fault::DiskFullNonrecoverable { at_percent: 50 });
    let events = backup_full(&mut harness, "full.bak", "INIT");
    let errors = errors(&events);
    assert_eq!(errors[0].number, 3271);
    assert!(
        errors[0]
            .text
            .ends_with(":\" 112(There is not enough space on the disk.)."),
        "{}",
        errors[0].text
    );
    assert_eq!(errors[1].number, 3013);
    assert!(
        !harness.share_path("full.bak").1.exists(),
        "no partial file"
    );
}

#[test]
fn deny_access_fails_3201_with_error_5() {
    let mut harness = Harness::new();
    harness.instance.set_fault(Fault::DenyAccess);
    let events = backup_full(&mut harness, "full.bak", "INIT");
    let errors = errors(&events);
    assert_eq!(errors[0].number, 3201);
    assert!(
        errors[0]
            .text
            .ends_with("Operating system error 5(Access is denied.)."),
        "{}",
        errors[0].text
    );
    assert_eq!(errors[1].number, 3013);
    assert!(
        !harness.share_path("full.bak").1.exists(),
        "no file created"
    );
    let again = backup_full(&mut harness, "full.bak", "INIT");
    assert!(error_numbers(&again).is_empty(), "the fault fires once");
}

#[test]
fn verify_drop_connection_sets_flag() {
    let mut harness = Harness::new();
    backup_full(&mut harness, "f.bak", "INIT");
    harness
        .instance
        .set_fault(Fault::DropConnectionInVerify { at_percent: 50 });
    let events = verify(&mut harness, "f.bak", "");
    assert!(harness.session.drop_connection);
    assert!(
        !events
            .iter()
            .any(|event| matches!(event, ReplyEvent::Done(_))),
        "no DONE after the drop"
    );
}

#[test]
fn drop_connection_fault_sets_flag() {
    let mut harness = Harness::new();
    harness
        .instance
        .set_fault(Fault::DropConnection { at_percent: 30 });
    let events = backup_full(&mut harness, "full.bak", "INIT, STATS = 10");
    assert!(harness.session.drop_connection);
    assert!(
        !events
            .iter()
            .any(|event| matches!(event, ReplyEvent::Done(_))),
        "no DONE after the drop"
    );
    assert!(!harness.share_path("full.bak").1.exists());
}

#[test]
fn cancel_stops_backup_and_removes_file() {
    let mut harness = Harness::new();
    harness.instance.set_fault(Fault::SlowBackup {
        bytes_per_sec: 2_000_000,
    });
    let (path, local) = harness.share_path("slow.bak");
    let cancel = AtomicBool::new(false);
    let mut events = Vec::new();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            std::thread::sleep(Duration::from_millis(200));
            cancel.store(true, Ordering::Relaxed);
        });
        let sql = format!("BACKUP DATABASE [Sales] TO DISK = N'{path}' WITH STATS = 1; SELECT 1");
        harness
            .instance
            .execute_batch(&mut harness.session, &sql, &cancel, &mut |event| {
                events.push(event)
            });
    });
    assert!(
        !events
            .iter()
            .any(|event| matches!(event, ReplyEvent::Done(_))),
        "no DONE after cancel"
    );
    assert!(!local.exists(), "no partial file stays");
}

#[test]
fn slow_backup_progress_visible_elsewhere() {
    let harness = Harness::new();
    harness.instance.set_fault(Fault::SlowBackup {
        bytes_per_sec: 2_000_000,
    });
    let (path, _) = harness.share_path("slow.bak");
    let mut backup_session = harness.instance.login(&login_request()).unwrap();
    let backup_spid = backup_session.spid;
    let mut watcher = harness.instance.login(&login_request()).unwrap();
    let query = format!(
        "SELECT session_id, command, percent_complete, estimated_completion_time \
         FROM sys.dm_exec_requests WHERE session_id = {backup_spid};"
    );
    let mut seen = Vec::new();
    std::thread::scope(|scope| {
        let instance = &harness.instance;
        let handle = scope.spawn(move || {
            let sql = format!("BACKUP DATABASE [Sales] TO DISK = N'{path}' WITH INIT");
            run_on(instance, &mut backup_session, &sql)
        });
        while !handle.is_finished() {
            let events = run_on(instance, &mut watcher, &query);
            for event in events {
                if let ReplyEvent::Row(row) = event {
                    seen.push(row);
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let events = handle.join().unwrap();
        assert!(errors(&events).is_empty(), "{:?}", errors(&events));
    });
    let backups: Vec<&Vec<Value>> = seen
        .iter()
        .filter(|row| text(&row[1]) == "BACKUP DATABASE")
        .collect();
    assert!(backups.len() >= 3, "progress seen {} times", backups.len());
    let percent = |row: &Vec<Value>| match row[2] {
        Value::Float(value) => value,
        ref other => panic!("{other:?}"),
    };
    let middle = backups[backups.len() / 2];
    assert!(
        percent(middle) > 0.0 && percent(middle) < 100.0,
        "{middle:?}"
    );
    assert!(matches!(middle[3], Value::Int(ms) if ms > 0), "{middle:?}");
}
