//! KILL against the simulator through tiberius: the errors SQL Server raises (KILL
//! (Transact-SQL)), a stalled BACKUP that KILL ends, and an idle session it closes.

mod support;

use std::time::Duration;

use mssql_sim::engine::Fault;
use mssql_sim::{SimConfig, Simulator};
use support::TiberiusClient;
use tempfile::TempDir;

const USER: &str = "bakfleet";
const PASSWORD: &str = "Bakfleet-Test-1";
const READER: &str = "reader";

/// A simulator with one instance whose share is a temporary directory, a sysadmin login
/// and a login without sysadmin.
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

[[instance.login]]
name = "{USER}"
password = "{PASSWORD}"
sysadmin = true

[[instance.login]]
name = "{READER}"
password = "{PASSWORD}"

[[instance.database]]
name = "Sales"
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

    async fn connect(&self, user: &str) -> TiberiusClient {
        let addr = self.simulator.addr("sales-prod").unwrap();
        support::tiberius_connect(addr, user, PASSWORD)
            .await
            .unwrap()
    }
}

async fn spid_of(client: &mut TiberiusClient) -> i16 {
    client
        .simple_query("SELECT @@SPID AS spid")
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap()
        .get("spid")
        .unwrap()
}

/// Runs `sql` and returns the number and text of the server error it raised.
async fn server_error(client: &mut TiberiusClient, sql: &str) -> (u32, String) {
    let result = match client.simple_query(sql).await {
        Ok(stream) => stream.into_results().await.map(|_| ()),
        Err(error) => Err(error),
    };
    match result {
        Err(tiberius::error::Error::Server(token)) => (token.code(), token.message().to_string()),
        other => panic!("{sql}: expected a server error, got {other:?}"),
    }
}

/// Returns the `percent_complete` of session `spid`'s request, or `None` when it runs
/// nothing.
async fn percent_of(watcher: &mut TiberiusClient, spid: i16) -> Option<f32> {
    let poll =
        format!("SELECT percent_complete FROM sys.dm_exec_requests WHERE session_id = {spid};");
    let row = watcher
        .simple_query(poll)
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()?;
    Some(row.get::<f32, _>("percent_complete").unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_own_session_raises_6104() {
    let fixture = Fixture::start().await;
    let mut client = fixture.connect(USER).await;
    let spid = spid_of(&mut client).await;

    let (number, text) = server_error(&mut client, &format!("KILL {spid}")).await;

    assert_eq!(number, 6104);
    assert_eq!(text, "Cannot use KILL to kill your own process.");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_unknown_session_raises_6106() {
    let fixture = Fixture::start().await;
    let mut client = fixture.connect(USER).await;

    let (number, text) = server_error(&mut client, "KILL 999").await;

    assert_eq!(number, 6106);
    assert_eq!(text, "Process ID 999 is not an active process ID.");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_system_session_raises_6107() {
    let fixture = Fixture::start().await;
    let mut client = fixture.connect(USER).await;

    let (number, _) = server_error(&mut client, "KILL 7").await;

    assert_eq!(number, 6107);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_without_sysadmin_raises_6102() {
    let fixture = Fixture::start().await;
    let mut admin = fixture.connect(USER).await;
    let target = spid_of(&mut admin).await;
    let mut reader = fixture.connect(READER).await;

    let (number, text) = server_error(&mut reader, &format!("KILL {target}")).await;

    assert_eq!(number, 6102);
    assert_eq!(
        text,
        "User does not have permission to use the KILL statement."
    );
    assert_eq!(
        spid_of(&mut admin).await,
        target,
        "the target session still works"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_ends_stalled_backup() {
    let fixture = Fixture::start().await;
    fixture
        .simulator
        .set_fault("sales-prod", Fault::StallBackup { at_percent: 40 });
    let mut runner = fixture.connect(USER).await;
    let mut watcher = fixture.connect(USER).await;
    let spid = spid_of(&mut runner).await;
    let backup = tokio::spawn(async move {
        let statement = r"BACKUP DATABASE [Sales] TO DISK = N'\\127.0.0.1\backup\stalled.bak' WITH INIT, FORMAT, CHECKSUM";
        runner
            .simple_query(statement)
            .await
            .map(|_| ())
            .map_err(|error| error.to_string())
    });

    // Wait until the BACKUP shows the frozen percent twice in a row.
    let mut readings = Vec::new();
    for _ in 0..200 {
        if let Some(percent) = percent_of(&mut watcher, spid).await {
            readings.push(percent);
        }
        let frozen = readings.len() >= 2
            && readings[readings.len() - 1] >= 40.0
            && readings[readings.len() - 1] == readings[readings.len() - 2];
        if frozen {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let last = *readings
        .last()
        .expect("the BACKUP never showed in sys.dm_exec_requests");
    assert!((40.0..100.0).contains(&last), "percent_complete {last}");
    assert!(
        !backup.is_finished(),
        "a stalled BACKUP must not end by itself"
    );

    watcher
        .simple_query(format!("KILL {spid}"))
        .await
        .unwrap()
        .into_results()
        .await
        .unwrap();

    let ended = tokio::time::timeout(Duration::from_secs(10), backup)
        .await
        .expect("the killed BACKUP did not end within 10 s")
        .unwrap();
    assert!(
        ended.is_err(),
        "the killed session's BACKUP must fail: {ended:?}"
    );
    assert_eq!(
        percent_of(&mut watcher, spid).await,
        None,
        "no request remains"
    );
    assert!(
        !fixture.share.path().join("stalled.bak").exists(),
        "the partial backup file is removed"
    );
    let (number, _) = server_error(&mut watcher, &format!("KILL {spid}")).await;
    assert_eq!(number, 6106, "the killed session is gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_closes_idle_session() {
    let fixture = Fixture::start().await;
    let mut idle = fixture.connect(USER).await;
    let mut admin = fixture.connect(USER).await;
    let spid = spid_of(&mut idle).await;

    admin
        .simple_query(format!("KILL {spid}"))
        .await
        .unwrap()
        .into_results()
        .await
        .unwrap();

    let next = match idle.simple_query("SELECT 1 AS one").await {
        Ok(stream) => stream.into_results().await.map(|_| ()),
        Err(error) => Err(error),
    };
    assert!(
        next.is_err(),
        "a killed session's connection is closed: {next:?}"
    );
    assert!(
        spid_of(&mut admin).await > 0,
        "the killing session still works"
    );
}
