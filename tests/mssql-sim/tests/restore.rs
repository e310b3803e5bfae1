//! RESTORE, RESTORE HEADERONLY and FILELISTONLY, and DBCC CHECKDB through tiberius: a
//! DBA's restore sequence, the log chain errors, CHECKDB with and without damage, and
//! HEADERONLY on real backups from `BAKFLEET_FIXTURES_BAK`.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use mssql_sim::engine::Fault;
use mssql_sim::{SimConfig, Simulator};
use support::{fixtures_dir, tiberius_connect, TiberiusClient};
use tiberius::numeric::Numeric;
use tiberius::{ColumnType, Row};

const USER: &str = "bakfleet";
const PASSWORD: &str = "Bakfleet-Restore-1";
const SHARE: &str = r"\\127.0.0.1\backup";
const DATA: &str = r"C:\Program Files\Microsoft SQL Server\MSSQL16.MSSQLSERVER\MSSQL\DATA";

struct Setup {
    simulator: Simulator,
    client: TiberiusClient,
    _share: tempfile::TempDir,
}

async fn start() -> Setup {
    start_with_fixtures(None).await
}

/// Starts one instance with a Sales database, the share mapped to a temporary folder
/// and, when given, `C:\fixtures` mapped to the folder of real backups.
async fn start_with_fixtures(fixtures: Option<&PathBuf>) -> Setup {
    let share = tempfile::tempdir().unwrap();
    let mut toml = format!(
        "[[instance]]\nname = \"sales-prod\"\nlisten = \"127.0.0.1:0\"\n\n\
         [[instance.login]]\nname = \"{USER}\"\npassword = \"{PASSWORD}\"\nsysadmin = true\n\n\
         [[instance.database]]\nname = \"Sales\"\nsize_mb = 2\n\n\
         [[instance.path_map]]\nserver = '{SHARE}'\nlocal = {:?}\n",
        share.path().display().to_string()
    );
    if let Some(dir) = fixtures {
        toml.push_str(&format!(
            "\n[[instance.path_map]]\nserver = 'C:\\fixtures'\nlocal = {:?}\n",
            dir.display().to_string()
        ));
    }
    let config = SimConfig::from_toml_str(&toml).expect("simulator config");
    let simulator = mssql_sim::start(config).await.expect("start simulator");
    let addr = simulator.addr("sales-prod").expect("address");
    let client = tiberius_connect(addr, USER, PASSWORD)
        .await
        .expect("log in");
    Setup {
        simulator,
        client,
        _share: share,
    }
}

/// Runs a batch and returns its rows, or the number of the first server error.
async fn run(client: &mut TiberiusClient, sql: &str) -> Result<Vec<Row>, u32> {
    let stream = match client.simple_query(sql).await {
        Ok(stream) => stream,
        Err(tiberius::error::Error::Server(token)) => return Err(token.code()),
        Err(other) => panic!("{sql}: session failed: {other}"),
    };
    match stream.into_first_result().await {
        Ok(rows) => Ok(rows),
        Err(tiberius::error::Error::Server(token)) => Err(token.code()),
        Err(other) => panic!("{sql}: session failed: {other}"),
    }
}

async fn ok(client: &mut TiberiusClient, sql: &str) -> Vec<Row> {
    match run(client, sql).await {
        Ok(rows) => rows,
        Err(code) => panic!("{sql}: server error {code}"),
    }
}

async fn backup(client: &mut TiberiusClient, kind: &str, file: &str) {
    let sql = match kind {
        "full" => {
            format!("BACKUP DATABASE [Sales] TO DISK = N'{SHARE}\\{file}' WITH INIT, CHECKSUM")
        }
        "diff" => format!(
            "BACKUP DATABASE [Sales] TO DISK = N'{SHARE}\\{file}' WITH DIFFERENTIAL, INIT, CHECKSUM"
        ),
        _ => format!("BACKUP LOG [Sales] TO DISK = N'{SHARE}\\{file}' WITH INIT, CHECKSUM"),
    };
    ok(client, &sql).await;
    // Backups some milliseconds apart get distinct finish times for STOPAT.
    tokio::time::sleep(Duration::from_millis(30)).await;
}

/// Takes full, log l0, differential, logs l1 and l2 of Sales.
async fn chain(client: &mut TiberiusClient) {
    backup(client, "full", "f1.bak").await;
    backup(client, "log", "l0.trn").await;
    backup(client, "diff", "d1.bak").await;
    backup(client, "log", "l1.trn").await;
    backup(client, "log", "l2.trn").await;
}

fn restore_sql(statement: &str, file: &str, options: &str) -> String {
    format!("{statement} FROM DISK = N'{SHARE}\\{file}' WITH {options}")
}

fn moves() -> String {
    format!("MOVE N'Sales' TO N'{DATA}\\Copy.mdf', MOVE N'Sales_log' TO N'{DATA}\\Copy_log.ldf'")
}

async fn state_of(client: &mut TiberiusClient, database: &str) -> String {
    let rows = ok(
        client,
        &format!("SELECT state_desc FROM sys.databases WHERE name = N'{database}'"),
    )
    .await;
    rows[0].get::<&str, _>(0).unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_sequence_stopat_brings_online() {
    let mut setup = start().await;
    let client = &mut setup.client;
    chain(client).await;
    let full = restore_sql(
        "RESTORE DATABASE [Copy]",
        "f1.bak",
        &format!("{}, NORECOVERY", moves()),
    );
    ok(client, &full).await;
    assert_eq!(state_of(client, "Copy").await, "RESTORING");
    ok(
        client,
        &restore_sql("RESTORE DATABASE [Copy]", "d1.bak", "NORECOVERY"),
    )
    .await;
    ok(
        client,
        &restore_sql("RESTORE LOG [Copy]", "l1.trn", "NORECOVERY"),
    )
    .await;

    let rows = ok(
        client,
        &format!(
            "SELECT bs.backup_finish_date
             FROM msdb.dbo.backupset AS bs
             JOIN msdb.dbo.backupmediafamily AS mf ON mf.media_set_id = bs.media_set_id
             WHERE mf.physical_device_name IN (N'{SHARE}\\l1.trn', N'{SHARE}\\l2.trn')
             ORDER BY bs.backup_set_id"
        ),
    )
    .await;
    let l2_end: time::PrimitiveDateTime = rows[1].get(0).unwrap();
    // datetime keeps 1/300 s, so 10 ms before the end of l2 still lies inside it.
    let stop_at = datetime_text(l2_end - time::Duration::milliseconds(10));
    let last = restore_sql(
        "RESTORE LOG [Copy]",
        "l2.trn",
        &format!("STOPAT = '{stop_at}', RECOVERY"),
    );
    ok(client, &last).await;
    assert_eq!(state_of(client, "Copy").await, "ONLINE");

    let rows = ok(
        client,
        "SELECT rs.recovery_fork_guid, rs.first_recovery_fork_guid, rs.fork_point_lsn
         FROM sys.database_recovery_status AS rs WHERE rs.database_id = DB_ID(N'Copy')",
    )
    .await;
    let fork: uuid::Uuid = rows[0].get(0).unwrap();
    let first_fork: uuid::Uuid = rows[0].get(1).unwrap();
    assert_ne!(fork, first_fork, "recovery starts a new fork");
    assert!(rows[0].get::<Numeric, _>(2).is_some());

    let copy_full = format!("BACKUP DATABASE [Copy] TO DISK = N'{SHARE}\\copy.bak' WITH INIT");
    ok(client, &copy_full).await;
    setup.simulator.shutdown().await;
}

/// Formats a STOPAT value as `yyyy-mm-dd hh:mm:ss.fff`.
fn datetime_text(moment: time::PrimitiveDateTime) -> String {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_log_chain_errors() {
    let mut setup = start().await;
    let client = &mut setup.client;
    chain(client).await;

    let log_on_online = restore_sql("RESTORE LOG [Sales]", "l1.trn", "NORECOVERY");
    assert_eq!(run(client, &log_on_online).await.err(), Some(3117));

    let full = restore_sql(
        "RESTORE DATABASE [Copy]",
        "f1.bak",
        &format!("{}, NORECOVERY", moves()),
    );
    ok(client, &full).await;
    let gap = restore_sql("RESTORE LOG [Copy]", "l2.trn", "NORECOVERY");
    assert_eq!(run(client, &gap).await.err(), Some(4305));

    ok(
        client,
        &restore_sql("RESTORE DATABASE [Copy]", "d1.bak", "NORECOVERY"),
    )
    .await;
    let too_early = restore_sql("RESTORE LOG [Copy]", "l0.trn", "NORECOVERY");
    assert_eq!(run(client, &too_early).await.err(), Some(4326));

    let beside = restore_sql("RESTORE DATABASE [Other]", "f1.bak", "NORECOVERY");
    assert_eq!(run(client, &beside).await.err(), Some(1834));
    setup.simulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkdb_clean_and_corrupt() {
    let mut setup = start().await;
    let client = &mut setup.client;
    let rows = ok(client, "DBCC CHECKDB (N'Sales') WITH NO_INFOMSGS").await;
    assert!(rows.is_empty());

    setup.simulator.set_fault(
        "sales-prod",
        Fault::CorruptPages {
            database: "Sales".into(),
            pages: 1,
        },
    );
    let result = run(
        &mut setup.client,
        "DBCC CHECKDB (N'Sales') WITH NO_INFOMSGS",
    )
    .await;
    assert_eq!(result.err(), Some(8939));
    setup.simulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filelistonly_columns_and_types() {
    let mut setup = start().await;
    let client = &mut setup.client;
    backup(client, "full", "f1.bak").await;
    let stream = client
        .simple_query(format!(
            "RESTORE FILELISTONLY FROM DISK = N'{SHARE}\\f1.bak'"
        ))
        .await
        .expect("FILELISTONLY runs");
    let results = stream.into_results().await.expect("FILELISTONLY results");
    let rows = &results[0];
    let columns = rows[0].columns();
    let names: Vec<&str> = columns.iter().map(|column| column.name()).collect();
    assert_eq!(
        names[..8],
        [
            "LogicalName",
            "PhysicalName",
            "Type",
            "FileGroupName",
            "Size",
            "MaxSize",
            "FileID",
            "CreateLSN"
        ]
    );
    assert_eq!(columns[2].column_type(), ColumnType::BigChar);
    assert_eq!(columns[4].column_type(), ColumnType::Numericn);
    // tiberius reports a nullable bigint (INTN of length 8) as Int8.
    assert_eq!(columns[6].column_type(), ColumnType::Int8);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].get::<&str, _>("LogicalName"), Some("Sales"));
    assert_eq!(rows[0].get::<&str, _>("Type"), Some("D"));
    assert_eq!(rows[1].get::<&str, _>("LogicalName"), Some("Sales_log"));
    assert_eq!(rows[1].get::<&str, _>("Type"), Some("L"));
    setup.simulator.shutdown().await;
}

fn lsn_text(row: &Row, column: &str) -> String {
    let value: Numeric = row
        .get(column)
        .unwrap_or_else(|| panic!("{column} is NULL"));
    value.value().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headeronly_matches_fixture_lsns() {
    let Some(dir) = fixtures_dir() else {
        return;
    };
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap())
            .expect("expected.json");
    let mut setup = start_with_fixtures(Some(&dir)).await;
    let files = [
        "SQL2008_dbOrphanUsers_FULL_20170518_041740.bak",
        "SQL2008_dbOrphanUsers_DIFF_20170518_041819.bak",
        "SQL2008_dbOrphanUsers_LOG_20170518_041831.trn",
        "StopAt_21.trn",
        "TutorialDB.bak",
        "Northwind.bak",
    ];
    for file in files {
        let sql = format!("RESTORE HEADERONLY FROM DISK = N'C:\\fixtures\\{file}'");
        let rows = ok(&mut setup.client, &sql).await;
        let sets = expected[file]["backup_sets"]
            .as_array()
            .expect("backup_sets");
        assert_eq!(rows.len(), sets.len(), "{file}: one row per backup set");
        for (row, set) in rows.iter().zip(sets) {
            for (column, key) in [
                ("FirstLSN", "first_lsn"),
                ("LastLSN", "last_lsn"),
                ("CheckpointLSN", "checkpoint_lsn"),
                ("DatabaseBackupLSN", "database_backup_lsn"),
            ] {
                assert_eq!(
                    lsn_text(row, column),
                    set[key].to_string(),
                    "{file}: {column}"
                );
            }
            assert_eq!(
                row.get::<&str, _>("DatabaseName"),
                set["database_name"].as_str(),
                "{file}: DatabaseName"
            );
        }
    }
    setup.simulator.shutdown().await;
}
