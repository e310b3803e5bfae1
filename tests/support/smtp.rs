//! A minimal SMTP server on 127.0.0.1 for alert tests. It offers STARTTLS with a test
//! CA's certificate, rejects MAIL and AUTH before TLS, and keeps each message it
//! accepts with the login that sent it.
#![allow(dead_code)] // Each test file uses a different subset.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::TlsAcceptor;

/// One message the server accepted.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub from: String,
    pub to: Vec<String>,
    /// Headers and body as sent after DATA, without the final `.` line.
    pub data: String,
    /// Whether the session was in TLS when the message arrived; always true here,
    /// because MAIL before STARTTLS is rejected, but tests assert it anyway.
    pub tls: bool,
    /// The user of AUTH PLAIN, if the client logged in.
    pub user: Option<String>,
}

/// The running server; the task stops when this is dropped.
pub struct SmtpReceiver {
    pub addr: SocketAddr,
    messages: Arc<Mutex<Vec<ReceivedMail>>>,
    task: JoinHandle<()>,
}

impl Drop for SmtpReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The login the server accepts.
#[derive(Debug, Clone)]
pub struct Login {
    pub user: String,
    pub password: String,
}

impl SmtpReceiver {
    /// Starts the server with the PEM certificate chain and key of `127.0.0.1`.
    pub async fn start(certificate: &Path, private_key: &Path, login: Login) -> SmtpReceiver {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(certificate)
            .expect("read the test certificate")
            .collect::<Result<_, _>>()
            .expect("parse the test certificate");
        let key = PrivateKeyDer::from_pem_file(private_key).expect("read the test key");
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("certificate and key match");
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind SMTP");
        let addr = listener.local_addr().expect("SMTP address");
        let messages = Arc::new(Mutex::new(Vec::new()));
        let stored = messages.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                let stored = stored.clone();
                let login = login.clone();
                tokio::spawn(async move {
                    if let Err(error) = session(stream, acceptor, stored, login).await {
                        eprintln!("test SMTP session ended: {error}");
                    }
                });
            }
        });
        SmtpReceiver {
            addr,
            messages,
            task,
        }
    }

    /// Returns the messages accepted so far.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        self.messages.lock().unwrap().clone()
    }
}

type Stored = Arc<Mutex<Vec<ReceivedMail>>>;

/// What the plain-text part of a session ended with.
enum Plain {
    Upgrade,
    Closed,
}

async fn session(
    stream: tokio::net::TcpStream,
    acceptor: TlsAcceptor,
    stored: Stored,
    login: Login,
) -> std::io::Result<()> {
    let mut plain = BufReader::new(stream);
    plain
        .get_mut()
        .write_all(b"220 127.0.0.1 test ESMTP\r\n")
        .await?;
    match commands(&mut plain, false, &stored, &login).await? {
        Plain::Closed => return Ok(()),
        Plain::Upgrade => {}
    }
    // The client waits for the 220 reply before its handshake, so nothing is buffered.
    assert!(
        plain.buffer().is_empty(),
        "client sent data before the TLS handshake"
    );
    let tls = acceptor.accept(plain.into_inner()).await?;
    let mut tls = BufReader::new(tls);
    commands(&mut tls, true, &stored, &login).await?;
    Ok(())
}

async fn commands<S>(
    stream: &mut BufReader<S>,
    tls: bool,
    stored: &Stored,
    login: &Login,
) -> std::io::Result<Plain>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut user = None;
    let mut from = String::new();
    let mut to = Vec::new();
    loop {
        let mut line = String::new();
        if stream.read_line(&mut line).await? == 0 {
            return Ok(Plain::Closed);
        }
        let line = line.trim_end().to_string();
        let upper = line.to_ascii_uppercase();
        let reply: String = if upper.starts_with("EHLO") {
            if tls {
                "250-127.0.0.1\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n".to_string()
            } else {
                "250-127.0.0.1\r\n250-STARTTLS\r\n250 8BITMIME\r\n".to_string()
            }
        } else if upper == "STARTTLS" && !tls {
            stream.get_mut().write_all(b"220 go ahead\r\n").await?;
            stream.get_mut().flush().await?;
            return Ok(Plain::Upgrade);
        } else if upper.starts_with("AUTH PLAIN") || upper.starts_with("MAIL") {
            if !tls {
                "530 must issue STARTTLS first\r\n".to_string()
            } else if upper.starts_with("AUTH PLAIN") {
                match check_plain(&line, login) {
                    Some(name) => {
                        user = Some(name);
                        "235 authenticated\r\n".to_string()
                    }
                    None => "535 authentication failed\r\n".to_string(),
                }
            } else if user.is_none() {
                "530 authentication required\r\n".to_string()
            } else {
                from = line[10..].trim().to_string();
                to.clear();
                "250 ok\r\n".to_string()
            }
        } else if upper.starts_with("RCPT TO:") {
            to.push(line[8..].trim().to_string());
            "250 ok\r\n".to_string()
        } else if upper == "DATA" {
            stream.get_mut().write_all(b"354 end with .\r\n").await?;
            let data = read_data(stream).await?;
            stored.lock().unwrap().push(ReceivedMail {
                from: from.clone(),
                to: to.clone(),
                data,
                tls,
                user: user.clone(),
            });
            "250 queued\r\n".to_string()
        } else if upper == "QUIT" {
            stream.get_mut().write_all(b"221 bye\r\n").await?;
            return Ok(Plain::Closed);
        } else if upper == "NOOP" || upper == "RSET" {
            "250 ok\r\n".to_string()
        } else {
            "502 not implemented\r\n".to_string()
        };
        stream.get_mut().write_all(reply.as_bytes()).await?;
        stream.get_mut().flush().await?;
    }
}

/// Decodes `AUTH PLAIN <base64 of \0user\0password>` and returns the user when the
/// password matches.
fn check_plain(line: &str, login: &Login) -> Option<String> {
    let encoded = line.split_whitespace().nth(2)?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let mut parts = text.split('\0');
    let _authorization = parts.next()?;
    let user = parts.next()?;
    let password = parts.next()?;
    (user == login.user && password == login.password).then(|| user.to_string())
}

async fn read_data<S>(stream: &mut BufReader<S>) -> std::io::Result<String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut data = String::new();
    loop {
        let mut line = String::new();
        if stream.read_line(&mut line).await? == 0 {
            return Ok(data);
        }
        if line == ".\r\n" {
            return Ok(data);
        }
        // Dot-stuffing (RFC 5321, 4.5.2): a leading `..` stands for `.`.
        let line = line.strip_prefix('.').unwrap_or(&line);
        data.push_str(line);
    }
}
