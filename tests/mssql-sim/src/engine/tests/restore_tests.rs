use std::time::Duration;

use super::support::*;
use crate::engine::Fault;
use crate::reply::{ReplyEvent, Value};

const DATA: &str = r"C:\Program Files\Microsoft SQL Server\MSSQL16.MSSQLSERVER\MSSQL\DATA";

/// Runs `statement` (e.g. "BACKUP LOG [Sales]") to `file`. A trailing " WITH
/// DIFFERENTIAL" moves into the WITH list after INIT.
fn backup(harness: &mut Harness, statement: &str, file: &str) {
    let (path, _) = harness.share_path(file);
    let (statement, extra) = match statement.strip_suffix(" WITH DIFFERENTIAL") {
        Some(head) => (head, ", DIFFERENTIAL"),
        None => (statement, ""),
    };
    let events = harness.run(&format!("{statement} TO DISK = N'{path}' WITH INIT{extra}"));
    assert!(
        errors(&events).is_empty(),
        "{statement}: {:?}",
        errors(&events)
    );
    // Backups a few milliseconds apart get distinct finish times for STOPAT.
    std::thread::sleep(Duration::from_millis(30));
}

/// Takes full, log l0, differential, logs l1 and l2 of Sales.
fn chain(harness: &mut Harness) {
    backup(harness, "BACKUP DATABASE [Sales]", "f1.bak");
    backup(harness, "BACKUP LOG [Sales]", "l0.trn");
    backup(
        harness,
        "BACKUP DATABASE [Sales] WITH DIFFERENTIAL",
        "d1.bak",
    );
    backup(harness, "BACKUP LOG [Sales]", "l1.trn");
    backup(harness, "BACKUP LOG [Sales]", "l2.trn");
}

fn restore(harness: &mut Harness, statement: &str, file: &str, options: &str) -> Vec<ReplyEvent> {
    let (path, _) = harness.share_path(file);
    harness.run(&format!("{statement} FROM DISK = N'{path}' WITH {options}"))
}

fn copy_moves() -> String {
    format!("MOVE N'Sales' TO N'{DATA}\\Copy.mdf', MOVE N'Sales_log' TO N'{DATA}\\Copy_log.ldf'")
}

fn state_of(harness: &mut Harness, database: &str) -> String {
    let (_, rows) = harness.query(&format!(
        "SELECT state_desc FROM sys.databases WHERE name = N'{database}'"
    ));
    assert_eq!(rows.len(), 1, "{database} exists");
    text(&rows[0][0]).to_string()
}

fn finish_time(harness: &mut Harness, file: &str) -> time::PrimitiveDateTime {
    let (path, _) = harness.share_path(file);
    let (_, rows) = harness.query(&format!(
        "SELECT bs.backup_finish_date FROM msdb.dbo.backupset AS bs
         JOIN msdb.dbo.backupmediafamily AS mf ON mf.media_set_id = bs.media_set_id
         WHERE mf.physical_device_name = N'{path}'"
    ));
    match rows[0][0] {
        Value::DateTime(moment) => moment,
        ref other => panic!("not a datetime: {other:?}"),
    }
}

fn stop_at_text(moment: time::PrimitiveDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03}",
        moment.year(),
        u8::from(moment.month()),
        moment.day(),
        moment.hour(),
        moment.minute(),
        moment.second(),
        moment.millisecond()
    )
}

#[test]
fn restore_sequence_with_stopat_recovers() {
    let mut harness = Harness::new();
    chain(&mut harness);
    let moves = copy_moves();
    let events = restore(
        &mut harness,
        "RESTORE DATABASE [Copy]",
        "f1.bak",
        &format!("{moves}, NORECOVERY"),
    );
    assert!(errors(&events).is_empty(), "{:?}", errors(&events));
    let texts: Vec<String> = infos(&events).into_iter().map(|m| m.text).collect();
    assert!(texts[0].starts_with("Processed "), "{texts:?}");
    assert!(texts[0].contains("for database 'Copy', file 'Sales' on file 1."));
    assert!(texts
        .last()
        .unwrap()
        .starts_with("RESTORE DATABASE successfully processed"));
    assert_eq!(state_of(&mut harness, "Copy"), "RESTORING");

    let events = restore(
        &mut harness,
        "RESTORE DATABASE [Copy]",
        "d1.bak",
        "NORECOVERY",
    );
    assert!(errors(&events).is_empty(), "{:?}", errors(&events));
    let events = restore(&mut harness, "RESTORE LOG [Copy]", "l1.trn", "NORECOVERY");
    assert!(errors(&events).is_empty(), "{:?}", errors(&events));
    let last = infos(&events).last().unwrap().text.clone();
    assert!(
        last.starts_with("RESTORE LOG successfully processed"),
        "{last}"
    );

    let l1_end = finish_time(&mut harness, "l1.trn");
    let l2_end = finish_time(&mut harness, "l2.trn");
    let middle = l1_end + (l2_end - l1_end) / 2;
    let options = format!("STOPAT = '{}', RECOVERY", stop_at_text(middle));
    let events = restore(&mut harness, "RESTORE LOG [Copy]", "l2.trn", &options);
    assert!(errors(&events).is_empty(), "{:?}", errors(&events));
    assert_eq!(state_of(&mut harness, "Copy"), "ONLINE");

    let (_, rows) = harness.query(
        "SELECT d.name, rs.database_guid, rs.family_guid, rs.recovery_fork_guid,
           rs.first_recovery_fork_guid, rs.fork_point_lsn, d.recovery_model_desc
         FROM sys.databases AS d
         JOIN sys.database_recovery_status AS rs ON rs.database_id = d.database_id
         WHERE d.name IN (N'Copy', N'Sales') ORDER BY d.name",
    );
    let (copy, sales) = (&rows[0], &rows[1]);
    assert_ne!(copy[1], sales[1], "restore makes a new database_guid");
    assert_eq!(copy[2], sales[2], "family_guid stays");
    assert_ne!(copy[3], copy[4], "recovery starts a new fork");
    assert_ne!(copy[5], Value::Null);
    assert_eq!(text(&copy[6]), "FULL");

    let (_, files) = harness.query(
        "SELECT physical_name FROM sys.master_files WHERE database_id = DB_ID(N'Copy') ORDER BY file_id",
    );
    assert_eq!(text(&files[0][0]), format!("{DATA}\\Copy.mdf"));

    // The restored database takes log and full backups again.
    let (path, _) = harness.share_path("copy_log.trn");
    let events = harness.run(&format!("BACKUP LOG [Copy] TO DISK = N'{path}'"));
    assert!(errors(&events).is_empty(), "{:?}", errors(&events));
    let (path, _) = harness.share_path("copy_full.bak");
    let events = harness.run(&format!("BACKUP DATABASE [Copy] TO DISK = N'{path}'"));
    assert!(errors(&events).is_empty(), "{:?}", errors(&events));
}

#[test]
fn restore_log_gap_is_4305() {
    let mut harness = Harness::new();
    chain(&mut harness);
    let moves = copy_moves();
    restore(
        &mut harness,
        "RESTORE DATABASE [Copy]",
        "f1.bak",
        &format!("{moves}, NORECOVERY"),
    );
    let events = restore(&mut harness, "RESTORE LOG [Copy]", "l2.trn", "NORECOVERY");
    assert_eq!(error_numbers(&events), vec![4305, 3013]);
    let text = &errors(&events)[0].text;
    assert!(
        text.contains("which is too recent to apply to the database"),
        "{text}"
    );
    assert_eq!(
        errors(&events)[1].text,
        "RESTORE LOG is terminating abnormally."
    );
}

#[test]
fn restore_log_too_early_is_4326() {
    let mut harness = Harness::new();
    chain(&mut harness);
    let moves = copy_moves();
    restore(
        &mut harness,
        "RESTORE DATABASE [Copy]",
        "f1.bak",
        &format!("{moves}, NORECOVERY"),
    );
    restore(
        &mut harness,
        "RESTORE DATABASE [Copy]",
        "d1.bak",
        "NORECOVERY",
    );
    let events = restore(&mut harness, "RESTORE LOG [Copy]", "l0.trn", "NORECOVERY");
    assert_eq!(error_numbers(&events), vec![4326, 3013]);
}

#[test]
fn restore_log_online_database_3117() {
    let mut harness = Harness::new();
    chain(&mut harness);
    let events = restore(&mut harness, "RESTORE LOG [Sales]", "l1.trn", "NORECOVERY");
    assert_eq!(error_numbers(&events), vec![3117, 3013]);
}

#[test]
fn differential_on_other_full_3136() {
    let mut harness = Harness::new();
    chain(&mut harness);
    backup(&mut harness, "BACKUP DATABASE [Sales]", "f2.bak");
    backup(
        &mut harness,
        "BACKUP DATABASE [Sales] WITH DIFFERENTIAL",
        "d2.bak",
    );
    let moves = copy_moves();
    restore(
        &mut harness,
        "RESTORE DATABASE [Copy]",
        "f1.bak",
        &format!("{moves}, NORECOVERY"),
    );
    let events = restore(
        &mut harness,
        "RESTORE DATABASE [Copy]",
        "d2.bak",
        "NORECOVERY",
    );
    assert_eq!(error_numbers(&events), vec![3136, 3013]);
}

#[test]
fn restore_over_unbacked_tail_3159() {
    let mut harness = Harness::new();
    backup(&mut harness, "BACKUP DATABASE [Sales]", "f1.bak");
    let events = restore(
        &mut harness,
        "RESTORE DATABASE [Sales]",
        "f1.bak",
        "NORECOVERY",
    );
    assert_eq!(error_numbers(&events), vec![3159, 3013]);
    let events = restore(
        &mut harness,
        "RESTORE DATABASE [Sales]",
        "f1.bak",
        "REPLACE",
    );
    assert!(errors(&events).is_empty(), "{:?}", errors(&events));
    assert_eq!(state_of(&mut harness, "Sales"), "ONLINE");
}

#[test]
fn restore_copy_without_move_1834() {
    let mut harness = Harness::new();
    backup(&mut harness, "BACKUP DATABASE [Sales]", "f1.bak");
    let events = restore(
        &mut harness,
        "RESTORE DATABASE [Copy]",
        "f1.bak",
        "NORECOVERY",
    );
    assert_eq!(
        error_numbers(&events),
        vec![1834, 3156, 1834, 3156, 3119, 3013]
    );
    let first = &errors(&events)[0].text;
    assert_eq!(
        first,
        &format!("The file '{DATA}\\Sales.mdf' cannot be overwritten.  It is being used by database 'Sales'.")
    );
}

#[test]
fn restore_other_database_3154() {
    let mut harness = Harness::new();
    backup(&mut harness, "BACKUP DATABASE [Sales]", "f1.bak");
    harness.run("CREATE DATABASE [Other]");
    let events = restore(
        &mut harness,
        "RESTORE DATABASE [Other]",
        "f1.bak",
        &copy_moves(),
    );
    assert_eq!(error_numbers(&events), vec![3154, 3013]);
}

#[test]
fn restore_unknown_logical_file_3234() {
    let mut harness = Harness::new();
    backup(&mut harness, "BACKUP DATABASE [Sales]", "f1.bak");
    let options = format!("MOVE N'Nope' TO N'{DATA}\\x.mdf'");
    let events = restore(&mut harness, "RESTORE DATABASE [Copy]", "f1.bak", &options);
    assert_eq!(error_numbers(&events)[0], 3234);
    assert_eq!(*error_numbers(&events).last().unwrap(), 3013);
}

#[test]
fn restore_missing_file_3201() {
    let mut harness = Harness::new();
    let events = restore(
        &mut harness,
        "RESTORE DATABASE [Copy]",
        "none.bak",
        "NORECOVERY",
    );
    assert_eq!(error_numbers(&events), vec![3201, 3013]);
    assert!(errors(&events)[0]
        .text
        .contains("Operating system error 2("));
}

#[test]
fn recovery_only_statements() {
    let mut harness = Harness::new();
    backup(&mut harness, "BACKUP DATABASE [Sales]", "f1.bak");
    let events = harness.run("RESTORE DATABASE [Sales] WITH RECOVERY");
    assert_eq!(error_numbers(&events), vec![3153, 3013]);
    let moves = copy_moves();
    restore(
        &mut harness,
        "RESTORE DATABASE [Copy]",
        "f1.bak",
        &format!("{moves}, NORECOVERY"),
    );
    let events = harness.run("RESTORE DATABASE [Copy] WITH RECOVERY");
    assert!(errors(&events).is_empty(), "{:?}", errors(&events));
    assert_eq!(state_of(&mut harness, "Copy"), "ONLINE");
}

#[test]
fn stopat_outside_log_range() {
    let mut harness = Harness::new();
    chain(&mut harness);
    let moves = copy_moves();
    restore(
        &mut harness,
        "RESTORE DATABASE [Copy]",
        "f1.bak",
        &format!("{moves}, NORECOVERY"),
    );
    restore(
        &mut harness,
        "RESTORE DATABASE [Copy]",
        "d1.bak",
        "NORECOVERY",
    );
    let events = restore(
        &mut harness,
        "RESTORE LOG [Copy]",
        "l1.trn",
        "STOPAT = '2000-01-01 00:00:00', RECOVERY",
    );
    assert_eq!(error_numbers(&events), vec![4338, 3013]);
    let events = restore(
        &mut harness,
        "RESTORE LOG [Copy]",
        "l1.trn",
        "STOPAT = '2999-01-01T00:00:00', RECOVERY",
    );
    assert!(errors(&events).is_empty(), "{:?}", errors(&events));
    assert!(infos(&events).iter().any(|m| m.number == 4322));
    assert_eq!(state_of(&mut harness, "Copy"), "RESTORING");
}

#[test]
fn restore_in_own_database_3102() {
    let mut harness = Harness::new();
    backup(&mut harness, "BACKUP DATABASE [Sales]", "f1.bak");
    harness.run("USE [Sales]");
    let events = restore(
        &mut harness,
        "RESTORE DATABASE [Sales]",
        "f1.bak",
        "REPLACE",
    );
    assert_eq!(error_numbers(&events), vec![3102, 3013]);
}

#[test]
fn headeronly_lists_simulator_backup() {
    let mut harness = Harness::new();
    backup(&mut harness, "BACKUP DATABASE [Sales]", "f1.bak");
    let (path, _) = harness.share_path("f1.bak");
    let (columns, rows) = harness.query(&format!("RESTORE HEADERONLY FROM DISK = N'{path}'"));
    assert_eq!(columns[0].name, "BackupName");
    assert_eq!(columns.len(), 56);
    let position = |name: &str| columns.iter().position(|c| c.name == name).unwrap();
    let row = &rows[0];
    assert_eq!(row[position("BackupType")], Value::Int(1));
    assert_eq!(text(&row[position("DatabaseName")]), "Sales");
    assert_eq!(text(&row[position("BackupTypeDescription")]), "Database");
    let (_, history) =
        harness.query("SELECT first_lsn, last_lsn, backup_set_uuid FROM msdb.dbo.backupset");
    assert_eq!(row[position("FirstLSN")], history[0][0]);
    assert_eq!(row[position("LastLSN")], history[0][1]);
    assert_eq!(row[position("BackupSetGUID")], history[0][2]);
}

#[test]
fn filelistonly_lists_backup_files() {
    let mut harness = Harness::new();
    backup(&mut harness, "BACKUP DATABASE [Sales]", "f1.bak");
    let (path, _) = harness.share_path("f1.bak");
    let (columns, rows) = harness.query(&format!("RESTORE FILELISTONLY FROM DISK = N'{path}'"));
    let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        &names[..4],
        &["LogicalName", "PhysicalName", "Type", "FileGroupName"]
    );
    assert_eq!(rows.len(), 2);
    assert_eq!(text(&rows[0][0]), "Sales");
    assert_eq!(text(&rows[0][2]), "D");
    assert_eq!(text(&rows[1][0]), "Sales_log");
    assert_eq!(text(&rows[1][2]), "L");
}

#[test]
fn checkdb_clean_sends_nothing() {
    let mut harness = Harness::new();
    let events = harness.run("DBCC CHECKDB (N'Sales') WITH NO_INFOMSGS");
    assert!(errors(&events).is_empty());
    assert!(infos(&events).is_empty());
    assert!(!events.iter().any(|e| matches!(e, ReplyEvent::Columns(_))));
}

#[test]
fn checkdb_reports_corrupt_pages() {
    let mut harness = Harness::new();
    harness.instance.set_fault(Fault::CorruptPages {
        database: "Sales".into(),
        pages: 2,
    });
    let events = harness.run("DBCC CHECKDB (N'Sales') WITH NO_INFOMSGS");
    assert_eq!(error_numbers(&events), vec![8939, 8928, 8939, 8928, 8989]);
    assert_eq!(
        errors(&events)[4].text,
        "CHECKDB found 0 allocation errors and 4 consistency errors in database 'Sales'."
    );
}

#[test]
fn checkdb_offline_database_942() {
    let mut harness = Harness::new();
    harness.run("ALTER DATABASE [Sales] SET OFFLINE");
    let events = harness.run("DBCC CHECKDB (N'Sales') WITH NO_INFOMSGS");
    assert_eq!(error_numbers(&events), vec![942]);
}

#[test]
fn backup_rejects_bad_maxtransfersize() {
    let mut harness = Harness::new();
    let (path, _) = harness.share_path("f.bak");
    let events = harness.run(&format!(
        "BACKUP DATABASE [Sales] TO DISK = N'{path}' WITH MAXTRANSFERSIZE = 1000, BUFFERCOUNT = 4"
    ));
    assert_eq!(error_numbers(&events), vec![3250, 3013]);
    let events = harness.run(&format!(
        "BACKUP DATABASE [Sales] TO DISK = N'{path}' WITH MAXTRANSFERSIZE = 4194304, BUFFERCOUNT = 4"
    ));
    assert!(errors(&events).is_empty(), "{:?}", errors(&events));
}

#[test]
fn backup_encryption_needs_certificate() {
    let mut harness = Harness::with(|config| config.certificates.push("BackupCert".into()));
    let (path, _) = harness.share_path("f.bak");
    let events = harness.run(&format!(
        "BACKUP DATABASE [Sales] TO DISK = N'{path}' WITH ENCRYPTION (ALGORITHM = AES_256, SERVER CERTIFICATE = [Missing])"
    ));
    assert_eq!(error_numbers(&events), vec![15151, 3013]);
    assert_eq!(
        errors(&events)[0].text,
        "Cannot find the certificate 'Missing', because it does not exist or you do not have permission."
    );
    let events = harness.run(&format!(
        "BACKUP DATABASE [Sales] TO DISK = N'{path}' WITH ENCRYPTION (ALGORITHM = AES_256, SERVER CERTIFICATE = [BackupCert])"
    ));
    assert!(errors(&events).is_empty(), "{:?}", errors(&events));
    let (_, rows) = harness.query(
        "SELECT key_algorithm, encryptor_type, encryptor_thumbprint FROM msdb.dbo.backupset",
    );
    assert_eq!(text(&rows[0][0]), "aes_256");
    assert_eq!(text(&rows[0][1]), "CERTIFICATE");
    assert!(matches!(&rows[0][2], Value::Bytes(bytes) if bytes.len() == 20));
    let events = harness.run(&format!("RESTORE VERIFYONLY FROM DISK = N'{path}'"));
    assert!(errors(&events).is_empty(), "{:?}", errors(&events));
}

fn two_disks(harness: &Harness, first: &str, second: &str) -> String {
    let (a, _) = harness.share_path(first);
    let (b, _) = harness.share_path(second);
    format!("DISK = N'{a}', DISK = N'{b}'")
}

#[test]
fn striped_backup_writes_two_families() {
    let mut harness = Harness::new();
    let disks = two_disks(&harness, "s1.bak", "s2.bak");
    let events = harness.run(&format!("BACKUP DATABASE [Sales] TO {disks} WITH INIT"));
    assert!(errors(&events).is_empty(), "{:?}", errors(&events));
    assert!(harness.share_path("s1.bak").1.exists());
    assert!(harness.share_path("s2.bak").1.exists());

    let (_, families) = harness.query(
        "SELECT mf.family_sequence_number, ms.media_family_count
         FROM msdb.dbo.backupmediafamily AS mf
         JOIN msdb.dbo.backupmediaset AS ms ON ms.media_set_id = mf.media_set_id
         ORDER BY mf.family_sequence_number",
    );
    assert_eq!(families.len(), 2);
    assert_eq!(families[1][0], Value::Int(2));
    assert_eq!(families[0][1], Value::Int(2));

    let events = harness.run(&format!("RESTORE VERIFYONLY FROM {disks}"));
    assert!(errors(&events).is_empty(), "{:?}", errors(&events));
    let (one, _) = harness.share_path("s1.bak");
    let events = harness.run(&format!("RESTORE VERIFYONLY FROM DISK = N'{one}'"));
    assert_eq!(error_numbers(&events), vec![3132, 3013]);
    assert_eq!(
        errors(&events)[0].text,
        "The media set has 2 media families but only 1 are provided. All members must be provided."
    );
    let (_, rows) = harness.query(&format!("RESTORE HEADERONLY FROM DISK = N'{one}'"));
    assert_eq!(rows.len(), 1, "HEADERONLY reads one family");
}

#[test]
fn striped_restore_needs_every_family() {
    let mut harness = Harness::new();
    let disks = two_disks(&harness, "s1.bak", "s2.bak");
    harness.run(&format!("BACKUP DATABASE [Sales] TO {disks} WITH INIT"));
    let (one, _) = harness.share_path("s2.bak");
    let moves = copy_moves();
    let events = harness.run(&format!(
        "RESTORE DATABASE [Copy] FROM DISK = N'{one}' WITH {moves}"
    ));
    assert_eq!(error_numbers(&events), vec![3132, 3013]);
    let events = harness.run(&format!(
        "RESTORE DATABASE [Copy] FROM {disks} WITH {moves}"
    ));
    assert!(errors(&events).is_empty(), "{:?}", errors(&events));
    assert_eq!(state_of(&mut harness, "Copy"), "ONLINE");
}
