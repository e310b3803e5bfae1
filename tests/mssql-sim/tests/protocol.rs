//! The TDS layer against a canned backend, with tiberius, python-tds and tsql as
//! clients: login, tokens per TDS version, RPC, attention and encryption refusal.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mssql_sim::reply::{Column, Done, Message, ReplyEvent, SqlType, Value};
use mssql_sim::tds::{self, Backend, Login7};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// A backend with one login (`tester` / `Secret-1`) whose batches are `;`-separated
/// commands, each producing canned events. A batch that starts with `ECHO` returns
/// its own text as one `nvarchar(max)` value; otherwise `SELECT n` returns one
/// int row, `TYPES` one row of every type, `PROGRESS` three INFO messages 300 ms apart,
/// `FAIL` errors 3201 and 3013, and `WAIT` blocks until cancelled.
#[derive(Default)]
struct CannedBackend {
    /// Number of `WAIT` commands that ended because their batch was cancelled.
    cancelled_waits: AtomicUsize,
}

struct CannedSession {
    spid: u16,
}

fn message(number: i32, class: u8, text: &str) -> Message {
    Message {
        number,
        state: 1,
        class,
        text: text.to_string(),
        server: "CANNED".to_string(),
        procedure: String::new(),
        line: 1,
    }
}

fn column(name: &str, ty: SqlType, nullable: bool) -> Column {
    Column {
        name: name.to_string(),
        ty,
        nullable,
    }
}

fn done(more: bool, error: bool, row_count: Option<u64>) -> ReplyEvent {
    ReplyEvent::Done(Done {
        more,
        error,
        row_count,
    })
}

impl CannedBackend {
    fn command(&self, command: &str, cancel: &AtomicBool) -> Vec<ReplyEvent> {
        let upper = command.trim().to_uppercase();
        if let Some(number) = upper.strip_prefix("SELECT ") {
            let number = number.trim().parse().unwrap_or(-1);
            return vec![
                ReplyEvent::Columns(vec![column("n", SqlType::Int, false)]),
                ReplyEvent::Row(vec![Value::Int(number)]),
            ];
        }
        match upper.as_str() {
            "TYPES" => types_result(),
            "FAIL" => vec![
                ReplyEvent::Error(message(3201, 16, "Cannot open backup device 'x'.")),
                ReplyEvent::Error(message(
                    3013,
                    16,
                    "BACKUP DATABASE is terminating abnormally.",
                )),
            ],
            "WAIT" => {
                while !cancel.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(10));
                }
                self.cancelled_waits.fetch_add(1, Ordering::SeqCst);
                Vec::new()
            }
            _ => vec![ReplyEvent::Error(message(
                102,
                15,
                &format!("Incorrect syntax near '{command}'."),
            ))],
        }
    }
}

fn types_result() -> Vec<ReplyEvent> {
    let columns = vec![
        column("bit", SqlType::Bit, true),
        column("tiny", SqlType::TinyInt, true),
        column("small", SqlType::SmallInt, false),
        column("big", SqlType::BigInt, true),
        column("real", SqlType::Real, true),
        column("float", SqlType::Float, false),
        column(
            "lsn",
            SqlType::Numeric {
                precision: 25,
                scale: 0,
            },
            true,
        ),
        column("text", SqlType::NVarChar(Some(128)), true),
        column("code", SqlType::Char(1), true),
        column("guid", SqlType::UniqueIdentifier, true),
        column("at", SqlType::DateTime, true),
        column("missing", SqlType::NVarChar(Some(10)), true),
    ];
    let values = vec![
        Value::Bool(true),
        Value::Int(255),
        Value::Int(-2),
        Value::Int(1 << 40),
        Value::Float(1.5),
        Value::Float(-0.25),
        Value::Numeric(37_000_000_012_300_001),
        Value::Str("Sälës ]'".to_string()),
        Value::Str("D".to_string()),
        Value::Guid(uuid::Uuid::parse_str("6f9619ff-8b86-d011-b42d-00c04fc964ff").unwrap()),
        Value::DateTime(time::macros::datetime!(2024-05-06 07:08:09.5)),
        Value::Null,
    ];
    vec![ReplyEvent::Columns(columns), ReplyEvent::Row(values)]
}

impl Backend for CannedBackend {
    type Session = CannedSession;

    fn name(&self) -> &str {
        "canned"
    }

    fn server_name(&self) -> String {
        "CANNED".to_string()
    }

    fn product_version(&self) -> (u8, u8, u16) {
        (16, 0, 4135)
    }

    fn login(&self, login: &Login7) -> Result<CannedSession, Message> {
        if login.user_name == "tester" && login.password == "Secret-1" {
            Ok(CannedSession { spid: 53 })
        } else {
            let text = format!("Login failed for user '{}'.", login.user_name);
            Err(message(18456, 14, &text))
        }
    }

    fn spid(&self, session: &CannedSession) -> u16 {
        session.spid
    }

    fn database(&self, _session: &CannedSession) -> String {
        "master".to_string()
    }

    fn execute_batch(
        &self,
        _session: &mut CannedSession,
        sql: &str,
        cancel: &AtomicBool,
        emit: &mut dyn FnMut(ReplyEvent),
    ) {
        if sql.starts_with("ECHO") {
            emit(ReplyEvent::Columns(vec![column(
                "batch",
                SqlType::NVarChar(None),
                true,
            )]));
            emit(ReplyEvent::Row(vec![Value::Str(sql.to_string())]));
            emit(done(false, false, Some(1)));
            return;
        }
        let commands: Vec<&str> = sql.split(';').filter(|c| !c.trim().is_empty()).collect();
        for (index, command) in commands.iter().enumerate() {
            if cancel.load(Ordering::SeqCst) {
                return;
            }
            if command.trim().eq_ignore_ascii_case("PROGRESS") {
                // Each message goes out as it happens, as BACKUP's STATS messages do.
                for percent in [30, 60, 90] {
                    std::thread::sleep(Duration::from_millis(300));
                    let text = format!("{percent} percent processed.");
                    emit(ReplyEvent::Info(message(3211, 10, &text)));
                }
                emit(done(index + 1 < commands.len(), false, None));
                continue;
            }
            let events = self.command(command, cancel);
            let failed = events.iter().any(|e| matches!(e, ReplyEvent::Error(_)));
            let rows = events
                .iter()
                .filter(|e| matches!(e, ReplyEvent::Row(_)))
                .count();
            let has_columns = events.iter().any(|e| matches!(e, ReplyEvent::Columns(_)));
            for event in events {
                emit(event);
            }
            let more = index + 1 < commands.len();
            emit(done(more, failed, has_columns.then_some(rows as u64)));
        }
    }

    fn end_session(&self, _session: &CannedSession) {}
}

/// A listener that serves the canned backend until the test ends.
struct CannedServer {
    addr: SocketAddr,
    backend: Arc<CannedBackend>,
    _shutdown: watch::Sender<bool>,
}

async fn start_canned() -> CannedServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (shutdown, watcher) = watch::channel(false);
    let backend = Arc::new(CannedBackend::default());
    let shared = Arc::clone(&backend);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let backend = Arc::clone(&backend);
            let watcher = watcher.clone();
            tokio::spawn(async move {
                if let Err(error) = tds::serve_connection(stream, backend, None, watcher).await {
                    eprintln!("canned session ended with an error: {error}");
                }
            });
        }
    });
    CannedServer {
        addr,
        backend: shared,
        _shutdown: shutdown,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiberius_logs_in_and_selects() {
    let server = start_canned().await;
    let mut client = support::tiberius_connect(server.addr, "tester", "Secret-1")
        .await
        .unwrap();

    let results = client
        .simple_query("SELECT 1; SELECT 2")
        .await
        .unwrap()
        .into_results()
        .await
        .unwrap();

    assert_eq!(results.len(), 2, "one result set per statement");
    assert_eq!(results[0][0].get::<i32, _>(0), Some(1));
    assert_eq!(results[1][0].get::<i32, _>(0), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiberius_wrong_password_gets_18456() {
    let server = start_canned().await;

    let result = support::tiberius_connect(server.addr, "tester", "wrong").await;

    match result.err() {
        Some(tiberius::error::Error::Server(token)) => {
            assert_eq!(token.code(), 18456);
            assert_eq!(token.class(), 14);
            assert_eq!(token.message(), "Login failed for user 'tester'.");
        }
        other => panic!("expected a server error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiberius_decodes_every_type() {
    let server = start_canned().await;
    let mut client = support::tiberius_connect(server.addr, "tester", "Secret-1")
        .await
        .unwrap();

    let row = client
        .simple_query("TYPES")
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .expect("one row");

    assert_eq!(row.get::<bool, _>("bit"), Some(true));
    assert_eq!(row.get::<u8, _>("tiny"), Some(255));
    assert_eq!(row.get::<i16, _>("small"), Some(-2));
    assert_eq!(row.get::<i64, _>("big"), Some(1 << 40));
    assert_eq!(row.get::<f32, _>("real"), Some(1.5));
    assert_eq!(row.get::<f64, _>("float"), Some(-0.25));
    let lsn: tiberius::numeric::Numeric = row.get("lsn").unwrap();
    assert_eq!(lsn.value(), 37_000_000_012_300_001);
    assert_eq!(row.get::<&str, _>("text"), Some("Sälës ]'"));
    assert_eq!(row.get::<&str, _>("code"), Some("D"));
    assert_eq!(
        row.get::<uuid::Uuid, _>("guid").map(|g| g.to_string()),
        Some("6f9619ff-8b86-d011-b42d-00c04fc964ff".to_string())
    );
    let at: time::PrimitiveDateTime = row.get("at").unwrap();
    assert_eq!(at, time::macros::datetime!(2024-05-06 07:08:09.5));
    assert_eq!(row.get::<&str, _>("missing"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiberius_query_substitutes_parameters() {
    let server = start_canned().await;
    let mut client = support::tiberius_connect(server.addr, "tester", "Secret-1")
        .await
        .unwrap();

    let row = client
        .query("ECHO; -- @P1 @P2", &[&"O'Brien", &42i32])
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .expect("one row");

    assert_eq!(
        row.get::<&str, _>(0),
        Some("ECHO; -- @P1 @P2"),
        "comments keep their text"
    );

    let row = client
        .query("ECHO; SELECT @P2; @P1", &[&"O'Brien", &42i32])
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .expect("one row");
    assert_eq!(row.get::<&str, _>(0), Some("ECHO; SELECT 42; N'O''Brien'"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiberius_reports_first_error() {
    let server = start_canned().await;
    let mut client = support::tiberius_connect(server.addr, "tester", "Secret-1")
        .await
        .unwrap();

    let error = client.simple_query("FAIL").await.err();

    match error {
        Some(tiberius::error::Error::Server(token)) => assert_eq!(token.code(), 3201),
        other => panic!("expected error 3201, got {other:?}"),
    }
    let after = client
        .simple_query("SELECT 7")
        .await
        .unwrap()
        .into_row()
        .await;
    assert_eq!(
        after.unwrap().unwrap().get::<i32, _>(0),
        Some(7),
        "connection stays usable"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiberius_required_encryption_fails() {
    let server = start_canned().await;
    let mut config = support::tiberius_config(server.addr, "tester", "Secret-1");
    config.encryption(tiberius::EncryptionLevel::Required);

    let result = support::tiberius_connect_with(config).await;

    assert!(
        result.is_err(),
        "a client that requires TLS must not get a session"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pytds_attention_and_old_versions() {
    let server = start_canned().await;
    let script = r#"
import sys, pytds
from pytds.tds_base import TDS70, TDS71, TDS74
port = int(sys.argv[1])
for version in (TDS74, TDS71, TDS70):
    with pytds.connect(dsn='127.0.0.1', port=port, user='tester', password='Secret-1',
                       autocommit=True, tds_version=version) as conn:
        cur = conn.cursor()
        cur.execute("SELECT 5; TYPES")
        print("select", version, cur.fetchall())
        cur.nextset()
        row = cur.fetchone()
        print("types", version, row[7], row[8], row[11])
        cur.execute("ECHO %s %s", ("O'Brien", 7))
        print("echo", version, cur.fetchall()[0][0])
        cur.execute("PROGRESS")
        print("progress", version, [m[1].msg_no for m in cur.messages])
        cur.execute("SELECT 5; SELECT 6")
        cur.execute("SELECT 8")
        print("after-unread", version, cur.fetchall())
        cur.execute("SELECT 5; WAIT")
        cur.execute("SELECT 9")
        print("after-attention", version, cur.fetchall())
        try:
            cur.execute("FAIL")
            print("fail", "no error")
        except pytds.OperationalError as error:
            print("fail", version, error.msg_no)
"#;

    let output = support::run_pytds(script, server.addr.port()).await;

    for version in ["1946157060", "1895825408", "1879048192"] {
        support::assert_line(&output, &format!("select {version} [(5,)]"));
        support::assert_line(&output, &format!("types {version} Sälës ]' D None"));
        support::assert_line(&output, &format!("progress {version} [3211, 3211, 3211]"));
        support::assert_line(&output, &format!("echo {version} ECHO N'O''Brien' 7"));
        support::assert_line(&output, &format!("after-unread {version} [(8,)]"));
        support::assert_line(&output, &format!("after-attention {version} [(9,)]"));
        support::assert_line(&output, &format!("fail {version} 3013"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tsql_runs_batches_at_70_and_74() {
    let server = start_canned().await;
    for version in ["7.4", "7.0"] {
        let output = support::run_tsql(
            server.addr.port(),
            "tester",
            "Secret-1",
            version,
            "SELECT 3; SELECT 4\ngo\nPROGRESS\ngo\nFAIL\ngo\n",
        )
        .await;

        support::assert_line(&output.stdout, "3");
        support::assert_line(&output.stdout, "4");
        support::assert_contains(
            &output.stderr,
            "Msg 3211 (severity 10, state 1) from CANNED",
        );
        support::assert_contains(
            &output.stderr,
            "Msg 3201 (severity 16, state 1) from CANNED",
        );
        support::assert_contains(
            &output.stderr,
            "Msg 3013 (severity 16, state 1) from CANNED",
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_connection_served_during_batch() {
    let server = start_canned().await;
    let mut slow = support::tiberius_connect(server.addr, "tester", "Secret-1")
        .await
        .unwrap();
    let mut fast = support::tiberius_connect(server.addr, "tester", "Secret-1")
        .await
        .unwrap();

    let started = std::time::Instant::now();
    let slow_batch = tokio::spawn(async move {
        slow.simple_query("PROGRESS; SELECT 1")
            .await
            .unwrap()
            .into_results()
            .await
            .unwrap();
        started.elapsed()
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    fast.simple_query("SELECT 2")
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap();
    let fast_elapsed = started.elapsed();
    let slow_elapsed = slow_batch.await.unwrap();

    assert!(
        slow_elapsed >= Duration::from_millis(900),
        "{slow_elapsed:?}"
    );
    assert!(
        fast_elapsed < slow_elapsed,
        "the second connection waited for the first: {fast_elapsed:?} >= {slow_elapsed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_connection_cancels_batch() {
    let server = start_canned().await;
    let mut client = support::tiberius_connect(server.addr, "tester", "Secret-1")
        .await
        .unwrap();

    let running = tokio::spawn(async move {
        let _ = client.simple_query("WAIT").await;
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    running.abort();
    let _ = running.await;

    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while server.backend.cancelled_waits.load(Ordering::SeqCst) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the batch still runs 5 s after its connection closed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_reaches_client_before_done() {
    use std::process::Stdio;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    let server = start_canned().await;
    let mut child = tokio::process::Command::new("tsql")
        .args(["-H", "127.0.0.1", "-p", &server.addr.port().to_string()])
        .args(["-U", "tester", "-P", "Secret-1", "-o", "q"])
        .env("TDSVER", "7.4")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("tsql is missing: install FreeTDS with `apt-get install freetds-bin`");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"PROGRESS\ngo\nexit\n").await.unwrap();
    drop(stdin);

    let started = std::time::Instant::now();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut first_progress = None;
    while let Ok(Some(line)) = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .unwrap()
    {
        if first_progress.is_none() && line.starts_with("Msg 3211") {
            first_progress = Some(started.elapsed());
        }
    }
    let ended = started.elapsed();
    child.wait().await.unwrap();

    let first_progress = first_progress.expect("tsql printed no 3211 message");
    assert!(
        ended - first_progress >= Duration::from_millis(400),
        "the first progress message arrived at {first_progress:?}, only at the end ({ended:?})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pytds_commits_without_autocommit() {
    let server = start_canned().await;
    let script = r#"
import sys, pytds
port = int(sys.argv[1])
with pytds.connect(dsn='127.0.0.1', port=port, user='tester', password='Secret-1',
                   autocommit=False) as conn:
    cur = conn.cursor()
    cur.execute("SELECT 3")
    print("first", cur.fetchall())
    conn.commit()
    cur.execute("SELECT 4")
    print("second", cur.fetchall())
    conn.rollback()
    cur.execute("SELECT 5")
    print("third", cur.fetchall())
"#;

    let output = support::run_pytds(script, server.addr.port()).await;

    support::assert_line(&output, "first [(3,)]");
    support::assert_line(&output, "second [(4,)]");
    support::assert_line(&output, "third [(5,)]");
}
