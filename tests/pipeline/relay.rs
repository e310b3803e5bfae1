//! A TCP relay on loopback that passes a peer's bytes on at a set rate. Fault tests put it
//! between bakfleet and smbd or sshd, so that a fetch lasts seconds on any machine and a
//! peer killed "mid-fetch" is killed while the fetch is really under way.

use std::net::Ipv4Addr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Bytes read from the peer at a time, small enough that the rate stays even.
const SLICE_BYTES: usize = 64 * 1024;

/// A listening relay. Dropping it stops the accepting and drops its connections.
pub struct SlowRelay {
    /// Port the relay listens on, on 127.0.0.1.
    pub port: u16,
    task: JoinHandle<()>,
}

impl SlowRelay {
    /// Listens on 127.0.0.1 and forwards each connection to `upstream_port` on the same
    /// address, passing at most `bytes_per_sec` from the peer to the client. Each
    /// connection is made to the peer anew, so the relay outlives a peer's restart. When
    /// either side ends, both connections are closed, as a client of the peer itself
    /// would see.
    pub async fn start(upstream_port: u16, bytes_per_sec: u64) -> SlowRelay {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind relay");
        let port = listener.local_addr().expect("relay address").port();
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                connections.spawn(relay(client, upstream_port, bytes_per_sec));
            }
        });
        SlowRelay { port, task }
    }
}

impl Drop for SlowRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(client: TcpStream, upstream_port: u16, bytes_per_sec: u64) {
    // A refused connection closes the client's at once, as the peer's own refusal would.
    let Ok(server) = TcpStream::connect((Ipv4Addr::LOCALHOST, upstream_port)).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    tokio::select! {
        _ = tokio::io::copy(&mut client_read, &mut server_write) => {}
        _ = copy_at_rate(&mut server_read, &mut client_write, bytes_per_sec) => {}
    }
}

/// Copies `reader` to `writer`, sleeping after each slice so that the bytes written never
/// run ahead of `bytes_per_sec`.
async fn copy_at_rate(
    reader: &mut (impl AsyncRead + Unpin),
    writer: &mut (impl AsyncWrite + Unpin),
    bytes_per_sec: u64,
) -> std::io::Result<()> {
    let started = tokio::time::Instant::now();
    let mut buffer = vec![0u8; SLICE_BYTES];
    let mut sent = 0u64;
    loop {
        let count = reader.read(&mut buffer).await?;
        if count == 0 {
            return Ok(());
        }
        writer.write_all(&buffer[..count]).await?;
        sent += count as u64;
        let due = Duration::from_secs_f64(sent as f64 / bytes_per_sec as f64);
        tokio::time::sleep_until(started + due).await;
    }
}
