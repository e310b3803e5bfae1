//! The simulator with its real engine against three independent clients: tiberius,
//! FreeTDS `tsql` (TDS 7.4 and 7.0) and python-tds (TDS 7.4, 7.1 and 7.0), sending the
//! statements bakfleet sends.

mod support;

use mssql_sim::{SimConfig, Simulator};
use tempfile::TempDir;

const USER: &str = "bakfleet";
const PASSWORD: &str = "Bakfleet-Test-1";

/// The server query bakfleet sends first on every connection.
const SERVER_QUERY: &str = "SELECT @@VERSION AS version,
  CAST(SERVERPROPERTY('ProductVersion') AS nvarchar(128)) AS product_version,
  CAST(SERVERPROPERTY('Edition') AS nvarchar(128)) AS edition,
  CAST(SERVERPROPERTY('EngineEdition') AS int) AS engine_edition,
  CAST(SERVERPROPERTY('MachineName') AS nvarchar(128)) AS machine_name,
  CAST(SERVERPROPERTY('ServerName') AS nvarchar(128)) AS server_name,
  CAST(SERVERPROPERTY('InstanceName') AS nvarchar(128)) AS instance_name,
  @@SPID AS spid;";

const DATABASES_QUERY: &str =
    "SELECT name, database_id, state_desc, recovery_model_desc, is_read_only, source_database_id
  FROM sys.databases ORDER BY name;";

/// A simulator with one instance, `sales-prod`, whose share `\\127.0.0.1\backup` is a
/// temporary directory.
struct Fixture {
    simulator: Simulator,
    share: TempDir,
}

impl Fixture {
    async fn start() -> Fixture {
        let share = tempfile::tempdir().unwrap();
        let config = format!(
            r#"
[[instance]]
name = "sales-prod"
listen = "127.0.0.1:0"
machine_name = "SQL01"
version = "16.0.4135.4"

[[instance.login]]
name = "{USER}"
password = "{PASSWORD}"
sysadmin = true

[[instance.database]]
name = "Sales"
recovery_model = "FULL"
size_mb = 4

[[instance.path_map]]
server = '\\127.0.0.1\backup'
local = "{}"
"#,
            share.path().display()
        );
        let config = SimConfig::from_toml_str(&config).unwrap();
        let simulator = mssql_sim::start(config).await.unwrap();
        Fixture { simulator, share }
    }

    fn addr(&self) -> std::net::SocketAddr {
        self.simulator.addr("sales-prod").unwrap()
    }

    fn port(&self) -> u16 {
        self.addr().port()
    }
}

/// `BACKUP DATABASE [Sales]` to `file` on the mapped share, as bakfleet sends it.
fn backup_statement(file: &str) -> String {
    format!(
        "BACKUP DATABASE [Sales] TO DISK = N'\\\\127.0.0.1\\backup\\{file}' WITH INIT, FORMAT, CHECKSUM, STATS = 10"
    )
}

/// A BACKUP to a share outside every path mapping, which fails with 3201 then 3013.
const FAILING_BACKUP: &str =
    "BACKUP DATABASE [Sales] TO DISK = N'\\\\127.0.0.1\\missing\\x.bak' WITH INIT, FORMAT, CHECKSUM";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiberius_logs_in_and_reads_server() {
    let fixture = Fixture::start().await;
    let mut client = support::tiberius_connect(fixture.addr(), USER, PASSWORD)
        .await
        .unwrap();

    let row = client
        .simple_query(SERVER_QUERY)
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .expect("one row");

    assert_eq!(row.get::<&str, _>("product_version"), Some("16.0.4135.4"));
    assert_eq!(row.get::<&str, _>("machine_name"), Some("SQL01"));
    assert!(
        row.get::<i16, _>("spid").unwrap() > 50,
        "user SPIDs start above 50"
    );
    fixture.simulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiberius_wrong_password_gets_18456() {
    let fixture = Fixture::start().await;

    let result = support::tiberius_connect(fixture.addr(), USER, "wrong").await;

    match result.err() {
        Some(tiberius::error::Error::Server(token)) => {
            assert_eq!(token.code(), 18456);
            assert_eq!(token.class(), 14);
            assert_eq!(token.message(), "Login failed for user 'bakfleet'.");
        }
        other => panic!("expected error 18456, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiberius_batch_returns_every_result() {
    let fixture = Fixture::start().await;
    let mut client = support::tiberius_connect(fixture.addr(), USER, PASSWORD)
        .await
        .unwrap();

    let batch = format!("SET NOCOUNT ON; {DATABASES_QUERY} SELECT @@SPID AS spid;");
    let results = client
        .simple_query(batch)
        .await
        .unwrap()
        .into_results()
        .await
        .unwrap();

    assert_eq!(results.len(), 2, "one result set per SELECT");
    let names: Vec<&str> = results[0]
        .iter()
        .filter_map(|row| row.get::<&str, _>("name"))
        .collect();
    assert_eq!(names, ["master", "model", "msdb", "Sales", "tempdb"]);
    assert_eq!(results[1].len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiberius_query_binds_parameters() {
    let fixture = Fixture::start().await;
    let mut client = support::tiberius_connect(fixture.addr(), USER, PASSWORD)
        .await
        .unwrap();

    let row = client
        .query(
            "SELECT name, database_id, state_desc, recovery_model_desc, is_read_only, source_database_id
  FROM sys.databases WHERE name = @P1",
            &[&"Sales"],
        )
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .expect("one row for Sales");

    assert_eq!(row.get::<&str, _>("name"), Some("Sales"));
    assert_eq!(row.get::<&str, _>("state_desc"), Some("ONLINE"));
    assert_eq!(row.get::<&str, _>("recovery_model_desc"), Some("FULL"));
    let statements = fixture.simulator.statements("sales-prod");
    assert!(
        statements
            .iter()
            .any(|s| s.contains("WHERE name = N'Sales'")),
        "the engine must receive the parameter as a literal: {statements:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiberius_failed_backup_returns_3201() {
    let fixture = Fixture::start().await;
    let mut client = support::tiberius_connect(fixture.addr(), USER, PASSWORD)
        .await
        .unwrap();

    let error = client.simple_query(FAILING_BACKUP).await.err();

    match error {
        Some(tiberius::error::Error::Server(token)) => {
            assert_eq!(token.code(), 3201);
            assert_eq!(token.class(), 16);
        }
        other => panic!("expected error 3201, got {other:?}"),
    }
    let spid = client
        .simple_query("SELECT @@SPID AS spid")
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap();
    assert!(spid.is_some(), "the connection stays usable after an error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tsql_batch_and_backup_messages() {
    let fixture = Fixture::start().await;
    for (version, file) in [("7.4", "tsql74.bak"), ("7.0", "tsql70.bak")] {
        let input = format!(
            "SELECT name FROM sys.databases ORDER BY name; SELECT @@SERVERNAME AS server\ngo\n{}\ngo\n{FAILING_BACKUP}\ngo\n",
            backup_statement(file)
        );

        let output = support::run_tsql(fixture.port(), USER, PASSWORD, version, &input).await;

        support::assert_line(&output.stdout, "master");
        support::assert_line(&output.stdout, "Sales");
        support::assert_line(&output.stdout, "SQL01");
        // The severity of these INFO messages is the engine's choice; only the
        // numbers and their order matter to the protocol.
        let progress = output.stderr.find("Msg 3211 (");
        let processed = output.stderr.find("Msg 3014 (");
        assert!(
            progress.is_some() && processed > progress,
            "TDS {version}: expected 3211 then 3014 on stderr:\n{}",
            output.stderr
        );
        let cannot_open = output.stderr.find("Msg 3201 (severity 16");
        let terminating = output.stderr.find("Msg 3013 (severity 16");
        assert!(
            cannot_open.is_some() && terminating > cannot_open,
            "TDS {version}: expected 3201 then 3013 on stderr:\n{}",
            output.stderr
        );
        assert!(
            fixture.share.path().join(file).exists(),
            "TDS {version}: the backup file must exist on the share"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tsql_wrong_password_reports_18456() {
    let fixture = Fixture::start().await;

    let output = support::run_tsql(fixture.port(), USER, "wrong", "7.4", "SELECT 1\ngo\n").await;

    support::assert_contains(&output.stderr, "Msg 18456 (severity 14");
    support::assert_contains(&output.stderr, "Login failed for user 'bakfleet'.");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pytds_batch_backup_and_attention() {
    let fixture = Fixture::start().await;
    let script = format!(
        r#"
import sys, pytds
port = int(sys.argv[1])
conn = pytds.connect(dsn='127.0.0.1', port=port, user='{USER}', password='{PASSWORD}',
                     autocommit=True)
cur = conn.cursor()
cur.execute("SELECT name FROM sys.databases ORDER BY name; SELECT @@SERVERNAME AS server")
print("names", [row[0] for row in cur.fetchall()])
cur.nextset()
print("server", cur.fetchall()[0][0])

cur.execute(r"{backup}")
numbers = [m[1].msg_no for m in cur.messages]
print("backup", 3211 in numbers, numbers[-1])

try:
    cur.execute(r"{failing}")
    print("failing", "no error")
except pytds.OperationalError as error:
    print("failing", error.msg_no, [m[1].msg_no for m in cur.messages])

cur.execute("SELECT name FROM sys.databases ORDER BY name")
cur.execute("SELECT @@SERVERNAME AS server")
print("after-attention", cur.fetchall()[0][0])
conn.close()
"#,
        backup = backup_statement("pytds.bak"),
        failing = FAILING_BACKUP,
    );

    let output = support::run_pytds(&script, fixture.port()).await;

    support::assert_line(
        &output,
        "names ['master', 'model', 'msdb', 'Sales', 'tempdb']",
    );
    support::assert_line(&output, "server SQL01");
    support::assert_line(&output, "backup True 3014");
    support::assert_line(&output, "failing 3013 [3201, 3013]");
    support::assert_line(&output, "after-attention SQL01");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pytds_logs_in_at_70_and_71() {
    let fixture = Fixture::start().await;
    let script = format!(
        r#"
import sys, pytds
from pytds.tds_base import TDS70, TDS71
port = int(sys.argv[1])
for name, version in (("7.0", TDS70), ("7.1", TDS71)):
    with pytds.connect(dsn='127.0.0.1', port=port, user='{USER}', password='{PASSWORD}',
                       autocommit=True, tds_version=version) as conn:
        cur = conn.cursor()
        cur.execute("""{SERVER_QUERY}""")
        row = cur.fetchone()
        print(name, row[1], row[4], row[7] > 50)
"#
    );

    let output = support::run_pytds(&script, fixture.port()).await;

    support::assert_line(&output, "7.0 16.0.4135.4 SQL01 True");
    support::assert_line(&output, "7.1 16.0.4135.4 SQL01 True");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiberius_polls_running_backup() {
    let fixture = Fixture::start().await;
    fixture.simulator.set_fault(
        "sales-prod",
        mssql_sim::engine::Fault::SlowBackup {
            bytes_per_sec: 2_000_000,
        },
    );
    let mut runner = support::tiberius_connect(fixture.addr(), USER, PASSWORD)
        .await
        .unwrap();
    let mut watcher = support::tiberius_connect(fixture.addr(), USER, PASSWORD)
        .await
        .unwrap();
    let spid: i16 = runner
        .simple_query("SELECT @@SPID AS spid")
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap()
        .get("spid")
        .unwrap();

    let backup = tokio::spawn(async move {
        let statement = backup_statement("slow.bak");
        runner
            .simple_query(statement)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
    let poll = format!(
        "SELECT session_id, command, percent_complete, estimated_completion_time
  FROM sys.dm_exec_requests WHERE session_id = {spid};"
    );
    let mut seen = None;
    for _ in 0..100 {
        let row = watcher
            .simple_query(poll.as_str())
            .await
            .unwrap()
            .into_row()
            .await
            .unwrap();
        if let Some(row) = row {
            let command = row
                .get::<&str, _>("command")
                .unwrap_or_default()
                .to_string();
            let percent = row.get::<f32, _>("percent_complete").unwrap_or_default();
            if command.starts_with("BACKUP") && percent > 0.0 {
                seen = Some((command, percent));
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let finished = backup.await.unwrap();

    let (command, percent) = seen.expect("no running BACKUP seen in sys.dm_exec_requests");
    assert_eq!(command, "BACKUP DATABASE");
    assert!(percent < 100.0, "percent_complete {percent}");
    assert_eq!(finished, Ok(()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiberius_sees_dropped_connection() {
    let fixture = Fixture::start().await;
    fixture.simulator.set_fault(
        "sales-prod",
        mssql_sim::engine::Fault::DropConnection { at_percent: 50 },
    );
    let mut client = support::tiberius_connect(fixture.addr(), USER, PASSWORD)
        .await
        .unwrap();

    let result = client
        .simple_query(backup_statement("dropped.bak"))
        .await
        .map(|_| ())
        .map_err(|error| error.to_string());

    assert!(
        result.is_err(),
        "the BACKUP must fail when the connection drops"
    );
    let mut again = support::tiberius_connect(fixture.addr(), USER, PASSWORD)
        .await
        .unwrap();
    let row = again
        .simple_query("SELECT @@SPID AS spid")
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap();
    assert!(row.is_some(), "a new connection works after the drop");
}
