use super::support::*;
use crate::reply::Value;

fn numeric(value: &Value) -> Option<i128> {
    match value {
        Value::Numeric(number) => Some(*number),
        Value::Null => None,
        other => panic!("not numeric: {other:?}"),
    }
}

fn backup(harness: &mut Harness, kind: &str, file: &str) -> Vec<i32> {
    let (path, _) = harness.share_path(file);
    let sql = match kind {
        "full" => format!("BACKUP DATABASE [Sales] TO DISK = N'{path}' WITH INIT"),
        "copy" => format!("BACKUP DATABASE [Sales] TO DISK = N'{path}' WITH COPY_ONLY"),
        "diff" => format!("BACKUP DATABASE [Sales] TO DISK = N'{path}' WITH DIFFERENTIAL"),
        _ => format!("BACKUP LOG [Sales] TO DISK = N'{path}' WITH INIT"),
    };
    error_numbers(&harness.run(&sql))
}

fn sales_data_file(harness: &mut Harness) -> Vec<Value> {
    let (_, rows) = harness.query(
        "SELECT mf.name, mf.physical_name, mf.type, mf.type_desc, mf.differential_base_lsn,
           mf.differential_base_guid, mf.differential_base_time, mf.size, mf.state_desc
         FROM sys.master_files AS mf WHERE mf.database_id = DB_ID(N'Sales') AND mf.type = 0",
    );
    assert_eq!(rows.len(), 1);
    rows.into_iter().next().unwrap()
}

fn last_log_backup_lsn(harness: &mut Harness) -> Option<i128> {
    let (_, rows) = harness.query(
        "SELECT last_log_backup_lsn FROM sys.database_recovery_status
         WHERE database_id = DB_ID(N'Sales')",
    );
    numeric(&rows[0][0])
}

fn newest_set(harness: &mut Harness) -> (i128, i128, Value) {
    let (_, rows) = harness.query(
        "SELECT TOP (1) first_lsn, last_lsn, backup_set_uuid FROM msdb.dbo.backupset
         ORDER BY backup_set_id DESC",
    );
    let row = &rows[0];
    (
        numeric(&row[0]).unwrap(),
        numeric(&row[1]).unwrap(),
        row[2].clone(),
    )
}

#[test]
fn master_files_lists_every_database() {
    let mut harness = Harness::new();
    let (columns, rows) = harness.query("SELECT * FROM sys.master_files");
    assert_eq!(columns[0].name, "database_id");
    assert!(columns.iter().any(|c| c.name == "differential_base_time"));
    // master, tempdb, model, msdb and Sales, two files each.
    assert_eq!(rows.len(), 10);
    let row = sales_data_file(&mut harness);
    assert_eq!(text(&row[0]), "Sales");
    assert_eq!(
        text(&row[1]),
        r"C:\Program Files\Microsoft SQL Server\MSSQL16.MSSQLSERVER\MSSQL\DATA\Sales.mdf"
    );
    assert_eq!(row[2], Value::Int(0));
    assert_eq!(text(&row[3]), "ROWS");
    assert_eq!(row[7], Value::Int(256));
    assert_eq!(text(&row[8]), "ONLINE");
}

#[test]
fn master_files_log_name_linux() {
    let mut harness = Harness::with(|config| config.platform = crate::config::Platform::Linux);
    let (_, rows) = harness.query(
        "SELECT name, physical_name FROM sys.master_files
         WHERE database_id = DB_ID(N'Sales') AND type = 1",
    );
    assert_eq!(text(&rows[0][0]), "Sales_log");
    assert_eq!(text(&rows[0][1]), "/var/opt/mssql/data/Sales_log.ldf");
}

#[test]
fn differential_base_follows_full_backups() {
    let mut harness = Harness::new();
    let row = sales_data_file(&mut harness);
    assert_eq!(row[4], Value::Null, "no base before any full");
    assert_eq!(row[5], Value::Null);
    assert_eq!(row[6], Value::Null);

    assert!(backup(&mut harness, "full", "f1.bak").is_empty());
    let (first, _, uuid) = newest_set(&mut harness);
    let row = sales_data_file(&mut harness);
    assert_eq!(numeric(&row[4]), Some(first));
    assert_eq!(row[5], uuid);
    assert!(matches!(row[6], Value::DateTime(_)));

    assert!(backup(&mut harness, "copy", "copy.bak").is_empty());
    let row = sales_data_file(&mut harness);
    assert_eq!(row[5], uuid, "COPY_ONLY keeps the base");

    harness.run("ALTER DATABASE [Sales] SET RECOVERY SIMPLE");
    let row = sales_data_file(&mut harness);
    assert_eq!(row[5], uuid, "SIMPLE keeps the base");
}

#[test]
fn last_log_backup_lsn_tracks_chain() {
    let mut harness = Harness::new();
    assert_eq!(last_log_backup_lsn(&mut harness), None, "no chain yet");

    assert!(backup(&mut harness, "full", "f1.bak").is_empty());
    let (full_first, _, _) = newest_set(&mut harness);
    assert_eq!(last_log_backup_lsn(&mut harness), Some(full_first));

    assert!(backup(&mut harness, "log", "l1.trn").is_empty());
    let (_, log_last, _) = newest_set(&mut harness);
    assert_eq!(last_log_backup_lsn(&mut harness), Some(log_last));

    harness.run("ALTER DATABASE [Sales] SET RECOVERY SIMPLE");
    assert_eq!(last_log_backup_lsn(&mut harness), None, "SIMPLE breaks it");
}

#[test]
fn recovery_status_has_guids() {
    let mut harness = Harness::new();
    let (columns, rows) = harness.query(
        "SELECT database_id, database_guid, family_guid, last_log_backup_lsn,
           recovery_fork_guid, first_recovery_fork_guid, fork_point_lsn
         FROM sys.database_recovery_status ORDER BY database_id",
    );
    assert_eq!(columns.len(), 7);
    assert_eq!(rows.len(), 5);
    let sales = &rows[4];
    assert!(matches!(sales[1], Value::Guid(_)));
    assert_eq!(sales[4], sales[5], "one fork before any restore");
    assert_eq!(sales[6], Value::Null);
}

#[test]
fn backupfile_rows_per_backup() {
    let mut harness = Harness::new();
    assert!(backup(&mut harness, "full", "f1.bak").is_empty());
    assert!(backup(&mut harness, "log", "l1.trn").is_empty());
    let (_, rows) = harness.query(
        "SELECT bf.backup_set_id, bf.file_type, bf.logical_name, bf.physical_name,
           bf.backed_up_page_count, bf.is_present, bs.type
         FROM msdb.dbo.backupfile AS bf
         JOIN msdb.dbo.backupset AS bs ON bs.backup_set_id = bf.backup_set_id
         ORDER BY bf.backup_set_id, bf.file_number",
    );
    assert_eq!(rows.len(), 4);
    assert_eq!(text(&rows[0][1]), "D");
    assert_eq!(text(&rows[0][2]), "Sales");
    assert!(text(&rows[0][3]).ends_with(r"\DATA\Sales.mdf"));
    assert_eq!(rows[0][4], Value::Numeric(256));
    assert_eq!(rows[0][5], Value::Bool(true));
    assert_eq!(text(&rows[1][1]), "L");
    assert_eq!(text(&rows[1][2]), "Sales_log");
    assert_eq!(text(&rows[2][6]), "L");
    assert_eq!(rows[2][5], Value::Bool(false), "log backup skips data");
    assert_eq!(rows[3][5], Value::Bool(true));
}
