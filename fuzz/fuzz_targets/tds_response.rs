//! A server that answers bakfleet's session with arbitrary bytes. The input is everything
//! the server sends: pre-login reply, login reply and the replies to the queries of a
//! backup's preflight and history read. Each step must end in a value or an error, never
//! a panic. The seed corpus is a recorded session with the simulator
//! (`examples/record_tds_seed.rs`), so mutations start from well-formed replies.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use bakfleet::mssql::{ConnectSettings, Connection, Encryption};
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;

/// One runtime and one loopback listener for the whole run, so that iterations do not
/// use up ports.
struct Harness {
    runtime: Runtime,
    listener: TcpListener,
    port: u16,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("build a tokio runtime");
        let listener = runtime
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("bind a loopback port");
        let port = listener.local_addr().expect("listener address").port();
        Harness {
            runtime,
            listener,
            port,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let harness = harness();
    harness.runtime.block_on(session(harness, data));
});

async fn session(harness: &Harness, reply: &[u8]) {
    let server = serve_once(&harness.listener, reply);
    let client = run_client(harness.port);
    tokio::join!(server, client);
}

/// Sends `reply` to the next client, closes the sending half, and reads until the client
/// hangs up, so the client's writes never fail before it has read the reply.
async fn serve_once(listener: &TcpListener, reply: &[u8]) {
    let Ok((mut stream, _)) = listener.accept().await else {
        return;
    };
    let _ = stream.write_all(reply).await;
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 4096];
    while let Ok(read) = stream.read(&mut sink).await {
        if read == 0 {
            break;
        }
    }
}

async fn run_client(port: u16) {
    let settings = ConnectSettings {
        instance: "fuzz".to_string(),
        host: "127.0.0.1".to_string(),
        port,
        user: "bakfleet".to_string(),
        password: "fuzz-password".to_string(),
        encryption: Encryption::NotSupported,
        ca_file: None,
        trust_server_certificate: false,
        connect_timeout: Duration::from_secs(2),
        command_timeout: Some(Duration::from_secs(2)),
    };
    let Ok(mut connection) = Connection::open(&settings).await else {
        return;
    };
    let _ = connection.server_facts().await;
    let _ = connection.databases().await;
    let Ok(Some(database)) = connection.database("Sales").await else {
        return;
    };
    let _ = connection.recovery_facts(database.database_id).await;
    if let Ok(Some(set)) = connection
        .backup_set("Sales", r"\\files\backups\Sales.bak")
        .await
    {
        let _ = connection.backup_files(set.backup_set_id).await;
    }
}
