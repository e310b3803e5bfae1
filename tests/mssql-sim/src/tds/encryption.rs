//! Opening a connection: PRELOGIN and the encryption it negotiates, or TDS 8 strict TLS
//! when the first byte is a TLS record. One port serves both, as on SQL Server 2022.

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::packet::{self, Message, PacketType, PacketWriter, DEFAULT_PACKET_SIZE};
use super::prelogin::{self, Outcome, ENCRYPT_REQ};
use super::session::SessionError;
use super::tls::{PreLoginFraming, ServerTls, ALPN_TDS_8};
use super::Backend;

/// Content type of a TLS handshake record, the first byte a TDS 8 strict client sends;
/// a TDS 7.x client starts with a PRELOGIN (0x12) or LOGIN7 (0x10) packet.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// A byte stream the session can run over: plain TCP or TLS.
pub trait Transport: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> Transport for T {}

/// A connection after PRELOGIN: the stream the session continues on and the client's
/// first message after PRELOGIN (normally LOGIN7).
pub struct Opened {
    pub stream: Box<dyn Transport>,
    pub first_message: Message,
}

/// Runs PRELOGIN and any TLS handshake; `None` when the client closes first or the
/// negotiation ends the connection.
///
/// # Errors
/// A read or write fails, the PRELOGIN is malformed, the TLS handshake fails, or a TLS
/// client connects to an instance without a certificate.
pub async fn open<B: Backend>(
    stream: TcpStream,
    backend: &B,
    tls: Option<&ServerTls>,
) -> Result<Option<Opened>, SessionError> {
    let mut first = [0u8; 1];
    if stream.peek(&mut first).await? == 0 {
        return Ok(None);
    }
    if first[0] == TLS_HANDSHAKE_RECORD {
        let Some(tls) = tls else {
            return Err(packet::PacketError::TlsFirst(first[0]).into());
        };
        return open_strict(stream, backend, tls).await;
    }
    open_tds7(stream, backend, tls).await
}

/// TDS 8 strict: TLS 1.3 first, then PRELOGIN and LOGIN7 inside it.
async fn open_strict<B: Backend>(
    stream: TcpStream,
    backend: &B,
    tls: &ServerTls,
) -> Result<Option<Opened>, SessionError> {
    let mut stream = tls
        .strict_acceptor()
        .accept(stream)
        .await
        .map_err(SessionError::Tls)?;
    let alpn = stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    if alpn.as_deref() != Some(ALPN_TDS_8) {
        tracing::debug!(
            instance = backend.name(),
            alpn = ?alpn.as_deref().map(String::from_utf8_lossy),
            "strict TLS client did not offer ALPN tds/8.0; continuing"
        );
    }
    let Some(mut message) = packet::read_message(&mut stream).await? else {
        return Ok(None);
    };
    if message.packet_type == PacketType::PreLogin {
        prelogin::parse(&message.payload)?;
        // NOTE: the session is encrypted whatever this byte says; tiberius ignores it
        // in strict mode, and the simulator answers as a server that forces encryption.
        send_prelogin_reply(&mut stream, backend, ENCRYPT_REQ).await?;
        let Some(next) = packet::read_message(&mut stream).await? else {
            return Ok(None);
        };
        message = next;
    }
    tracing::debug!(instance = backend.name(), "TDS 8 strict TLS established");
    Ok(Some(Opened {
        stream: Box::new(stream),
        first_message: message,
    }))
}

/// TDS 7.x: a plain PRELOGIN whose ENCRYPTION option decides whether TLS follows, with
/// the handshake itself carried in PRELOGIN packets.
async fn open_tds7<B: Backend>(
    mut stream: TcpStream,
    backend: &B,
    tls: Option<&ServerTls>,
) -> Result<Option<Opened>, SessionError> {
    let Some(message) = packet::read_message(&mut stream).await? else {
        return Ok(None);
    };
    if message.packet_type != PacketType::PreLogin {
        // PRELOGIN is optional before TDS 7.1; such a client gets no TLS.
        return Ok(Some(Opened {
            stream: Box::new(stream),
            first_message: message,
        }));
    }
    let client = prelogin::parse(&message.payload)?;
    let force = tls.is_some_and(|tls| tls.force_encryption);
    let negotiation = prelogin::negotiate(&client, tls.is_some(), force);
    send_prelogin_reply(&mut stream, backend, negotiation.answer).await?;

    match (negotiation.outcome, tls) {
        (Outcome::Terminate, _) => {
            tracing::warn!(
                instance = backend.name(),
                client_encryption = ?client.encryption,
                server_encryption = negotiation.answer,
                "client and server encryption settings do not match; closing the connection"
            );
            Ok(None)
        }
        (Outcome::Plain, _) | (_, None) => {
            let Some(next) = packet::read_message(&mut stream).await? else {
                return Ok(None);
            };
            Ok(Some(Opened {
                stream: Box::new(stream),
                first_message: next,
            }))
        }
        (Outcome::LoginOnly, Some(tls)) => encrypted(stream, backend, tls, true).await,
        (Outcome::Full, Some(tls)) => encrypted(stream, backend, tls, false).await,
    }
}

/// Runs the handshake and reads LOGIN7 over TLS. With `login_only` the session then
/// continues in plain text without a close_notify, as SQL Server does for a client that
/// sent ENCRYPT_OFF; otherwise it stays on TLS.
async fn encrypted<B: Backend>(
    stream: TcpStream,
    backend: &B,
    tls: &ServerTls,
    login_only: bool,
) -> Result<Option<Opened>, SessionError> {
    let mut tls_stream = prelogin_handshake(stream, tls).await?;
    let Some(login) = packet::read_message(&mut tls_stream).await? else {
        return Ok(None);
    };
    tracing::debug!(
        instance = backend.name(),
        login_only,
        "LOGIN7 received over TLS"
    );
    let stream: Box<dyn Transport> = if login_only {
        let (framing, _) = tls_stream.into_inner();
        Box::new(framing.into_inner())
    } else {
        Box::new(tls_stream)
    };
    Ok(Some(Opened {
        stream,
        first_message: login,
    }))
}

/// Runs the TLS 1.2 handshake inside PRELOGIN packets, then turns the framing off.
async fn prelogin_handshake(
    stream: TcpStream,
    tls: &ServerTls,
) -> Result<tokio_rustls::server::TlsStream<PreLoginFraming<TcpStream>>, SessionError> {
    let mut tls_stream = tls
        .prelogin_acceptor()
        .accept(PreLoginFraming::new(stream))
        .await
        .map_err(SessionError::Tls)?;
    tls_stream.get_mut().0.handshake_complete();
    Ok(tls_stream)
}

async fn send_prelogin_reply<B: Backend, W: AsyncWrite + Unpin>(
    writer: &mut W,
    backend: &B,
    encryption: u8,
) -> Result<(), SessionError> {
    let mut packets = PacketWriter::new(DEFAULT_PACKET_SIZE);
    let reply = prelogin::reply(backend.product_version(), encryption);
    packets.buffer().extend_from_slice(&reply);
    packets.finish(writer).await?;
    Ok(())
}
