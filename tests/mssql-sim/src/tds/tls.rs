//! TLS as SQL Server offers it: TLS 1.2 carried inside PRELOGIN packets for TDS 7.x,
//! and TLS 1.3 with ALPN `tds/8.0` before any TDS packet for TDS 8 strict.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Buf, BufMut, BytesMut};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::TlsAcceptor;

use super::packet::{PacketType, HEADER_LEN};

/// The ALPN protocol name a TDS 8 strict client offers and the server selects.
pub const ALPN_TDS_8: &[u8] = b"tds/8.0";

/// Payload bytes per PRELOGIN packet that wraps a handshake flight. It is the 4096-byte
/// default packet size less the header, because no size is negotiated before LOGIN7.
const HANDSHAKE_CHUNK: usize = 4096 - HEADER_LEN;

/// An instance's certificate and its encryption policy.
#[derive(Clone)]
pub struct ServerTls {
    /// TLS 1.2 only: SQL Server allows no other version inside PRELOGIN, and FreeTDS
    /// (GnuTLS) sends its Finished unwrapped when 1.3 is offered there.
    prelogin: TlsAcceptor,
    /// TLS 1.3 with ALPN `tds/8.0`, for connections whose first byte is a TLS record.
    strict: TlsAcceptor,
    /// SQL Server's "Force Encryption" setting: every TDS 7.x session is encrypted.
    pub force_encryption: bool,
}

/// Why an instance's certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("cannot read the certificate chain {path}: {reason}; give a PEM file with the server certificate first")]
    Certificate { path: PathBuf, reason: String },
    #[error("cannot read the private key {path}: {reason}; give a PEM file with a PKCS#8, PKCS#1 or SEC1 key")]
    PrivateKey { path: PathBuf, reason: String },
    #[error("the certificate {certificate} and the key {private_key} do not form a TLS configuration: {reason}")]
    Config {
        certificate: PathBuf,
        private_key: PathBuf,
        reason: String,
    },
}

impl ServerTls {
    /// Loads a PEM certificate chain and its private key.
    ///
    /// # Errors
    /// A file cannot be read or parsed, or the key does not match the certificate.
    pub fn load(
        certificate: &Path,
        private_key: &Path,
        force_encryption: bool,
    ) -> Result<ServerTls, TlsSetupError> {
        let chain = read_chain(certificate)?;
        let key = PrivateKeyDer::from_pem_file(private_key).map_err(|error| {
            TlsSetupError::PrivateKey {
                path: private_key.to_path_buf(),
                reason: error.to_string(),
            }
        })?;
        let config_error = |error: rustls::Error| TlsSetupError::Config {
            certificate: certificate.to_path_buf(),
            private_key: private_key.to_path_buf(),
            reason: error.to_string(),
        };
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());

        let prelogin = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&[&rustls::version::TLS12])
            .map_err(config_error)?
            .with_no_client_auth()
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(config_error)?;

        let mut strict = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(config_error)?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(config_error)?;
        strict.alpn_protocols = vec![ALPN_TDS_8.to_vec()];
        strict.send_tls13_tickets = 0;

        Ok(ServerTls {
            prelogin: TlsAcceptor::from(Arc::new(prelogin)),
            strict: TlsAcceptor::from(Arc::new(strict)),
            force_encryption,
        })
    }

    /// Returns the acceptor for a handshake inside PRELOGIN packets.
    pub fn prelogin_acceptor(&self) -> &TlsAcceptor {
        &self.prelogin
    }

    /// Returns the acceptor for a TDS 8 strict connection.
    pub fn strict_acceptor(&self) -> &TlsAcceptor {
        &self.strict
    }
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("force_encryption", &self.force_encryption)
            .finish_non_exhaustive()
    }
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let invalid = |reason: String| TlsSetupError::Certificate {
        path: path.to_path_buf(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(|error| invalid(error.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| invalid(error.to_string()))?;
    if chain.is_empty() {
        return Err(invalid("the file holds no CERTIFICATE block".to_string()));
    }
    Ok(chain)
}

/// A stream that carries TLS records inside PRELOGIN packets until the handshake ends,
/// then passes them through unchanged (MS-TDS 2.2.6.5 "PRELOGIN": in TDS 7.x the
/// PRELOGIN message also wraps the TLS handshake payload).
///
/// While wrapping, every read returns payload bytes of the client's PRELOGIN packets,
/// one packet at a time, and every flush sends what was written since the last flush
/// as one PRELOGIN message whose last packet carries end-of-message. tokio-rustls
/// flushes once per handshake flight, so each flight becomes one message.
pub struct PreLoginFraming<S> {
    inner: S,
    wrapping: bool,
    /// Header bytes of the client packet being read, while fewer than eight arrived.
    header: [u8; HEADER_LEN],
    header_filled: usize,
    /// Payload bytes of the current client packet not yet returned.
    payload_left: usize,
    /// Framed bytes waiting to be written.
    outgoing: BytesMut,
    /// Handshake bytes written since the last flush, not yet framed.
    flight: BytesMut,
}

impl<S> PreLoginFraming<S> {
    /// Wraps `inner`, framing from the start.
    pub fn new(inner: S) -> PreLoginFraming<S> {
        PreLoginFraming {
            inner,
            wrapping: true,
            header: [0; HEADER_LEN],
            header_filled: 0,
            payload_left: 0,
            outgoing: BytesMut::new(),
            flight: BytesMut::new(),
        }
    }

    /// Stops framing: later reads and writes are raw TLS records.
    pub fn handshake_complete(&mut self) {
        self.wrapping = false;
    }

    /// Returns the wrapped stream.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// Moves the pending flight into PRELOGIN packets in `outgoing`.
    fn frame_flight(&mut self) {
        let flight = self.flight.split();
        let chunks: Vec<&[u8]> = flight.chunks(HANDSHAKE_CHUNK).collect();
        let last = chunks.len().saturating_sub(1);
        for (index, chunk) in chunks.into_iter().enumerate() {
            let status = u8::from(index == last); // EOM on the last packet
            let length = u16::try_from(chunk.len() + HEADER_LEN).expect("chunk fits a packet");
            self.outgoing.put_u8(PacketType::PreLogin.to_byte());
            self.outgoing.put_u8(status);
            self.outgoing.put_u16(length);
            self.outgoing.put_u16(0);
            // Packet ids count from 1 within a message and wrap at 255.
            self.outgoing.put_u8((index % 255) as u8 + 1);
            self.outgoing.put_u8(0);
            self.outgoing.put_slice(chunk);
        }
    }
}

impl<S: AsyncWrite + Unpin> PreLoginFraming<S> {
    fn poll_write_outgoing(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.outgoing.is_empty() {
            let written = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.outgoing))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.outgoing.advance(written);
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for PreLoginFraming<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.wrapping {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        while this.payload_left == 0 {
            while this.header_filled < HEADER_LEN {
                let mut header = ReadBuf::new(&mut this.header[this.header_filled..]);
                ready!(Pin::new(&mut this.inner).poll_read(cx, &mut header))?;
                let read = header.filled().len();
                if read == 0 {
                    // End of stream: rustls reports the unfinished handshake.
                    return Poll::Ready(Ok(()));
                }
                this.header_filled += read;
            }
            this.header_filled = 0;
            if this.header[0] != PacketType::PreLogin.to_byte() {
                let message = format!(
                    "expected a PRELOGIN packet (0x12) carrying the TLS handshake, got type 0x{:02X}",
                    this.header[0]
                );
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, message)));
            }
            let length = usize::from(u16::from_be_bytes([this.header[2], this.header[3]]));
            this.payload_left = length.saturating_sub(HEADER_LEN);
        }
        let limit = this.payload_left.min(buf.remaining());
        let mut limited = ReadBuf::new(buf.initialize_unfilled_to(limit));
        ready!(Pin::new(&mut this.inner).poll_read(cx, &mut limited))?;
        let read = limited.filled().len();
        buf.advance(read);
        this.payload_left -= read;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for PreLoginFraming<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.wrapping {
            this.flight.extend_from_slice(data);
            return Poll::Ready(Ok(data.len()));
        }
        ready!(this.poll_write_outgoing(cx))?;
        Pin::new(&mut this.inner).poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.flight.is_empty() {
            this.frame_flight();
        }
        ready!(this.poll_write_outgoing(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_write_outgoing(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn framing_wraps_flight_in_prelogin() {
        let mut framing = PreLoginFraming::new(Vec::new());
        framing.write_all(b"hello").await.unwrap();
        framing.write_all(b" world").await.unwrap();
        framing.flush().await.unwrap();

        let wire = framing.into_inner();
        assert_eq!(wire.len(), HEADER_LEN + 11);
        assert_eq!(wire[0], 0x12, "packet type must be PRELOGIN");
        assert_eq!(wire[1], 0x01, "the last packet must carry EOM");
        assert_eq!(&wire[2..4], &[0, 19]);
        assert_eq!(&wire[8..], b"hello world");
    }

    #[tokio::test]
    async fn framing_splits_large_flight() {
        let mut framing = PreLoginFraming::new(Vec::new());
        framing.write_all(&[7u8; 5000]).await.unwrap();
        framing.flush().await.unwrap();

        let wire = framing.into_inner();
        assert_eq!(wire.len(), 5000 + 2 * HEADER_LEN);
        assert_eq!(wire[1], 0x00, "the first packet must not carry EOM");
        assert_eq!(&wire[2..4], &4096u16.to_be_bytes());
        assert_eq!(wire[4096 + 1], 0x01, "the second packet must carry EOM");
    }

    #[tokio::test]
    async fn framing_reads_payload_of_each_packet() {
        let mut wire = vec![0x12, 0x00, 0, 11, 0, 0, 1, 0, b'a', b'b', b'c'];
        wire.extend_from_slice(&[0x12, 0x01, 0, 10, 0, 0, 2, 0, b'd', b'e']);
        let mut framing = PreLoginFraming::new(&wire[..]);

        let mut payload = Vec::new();
        framing.read_to_end(&mut payload).await.unwrap();

        assert_eq!(payload, b"abcde");
    }

    #[tokio::test]
    async fn framing_rejects_other_packet_type() {
        let wire = [0x10, 0x01, 0, 9, 0, 0, 1, 0, 0];
        let mut framing = PreLoginFraming::new(&wire[..]);

        let error = framing.read_u8().await.unwrap_err();

        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(error.to_string().contains("0x10"), "{error}");
    }

    #[tokio::test]
    async fn framing_passes_through_after_handshake() {
        let mut framing = PreLoginFraming::new(Vec::new());
        framing.handshake_complete();
        framing.write_all(b"raw").await.unwrap();
        framing.flush().await.unwrap();
        assert_eq!(framing.into_inner(), b"raw");
    }
}
