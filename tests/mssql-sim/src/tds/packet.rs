//! TDS packets: the 8-byte header, reassembly of a message from its packets, and the
//! splitting of a reply into packets of the negotiated size (MS-TDS 2.2.3 "Packet Header").

use bytes::{BufMut, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Length of every packet header.
pub const HEADER_LEN: usize = 8;

/// Packet size a connection uses until LOGIN7 negotiates another; SQL Server's default.
pub const DEFAULT_PACKET_SIZE: usize = 4096;

/// Smallest and largest packet size SQL Server accepts in LOGIN7 ("network packet size
/// Server Configuration Option": 512 to 32767 bytes).
pub const MIN_PACKET_SIZE: usize = 512;
pub const MAX_PACKET_SIZE: usize = 32767;

/// Status bit of the last packet of a message (EOM).
const STATUS_EOM: u8 = 0x01;

/// Largest client message the simulator accepts; a guard against a length that never
/// ends, far above any batch bakfleet or the test clients send.
const MAX_MESSAGE_LEN: usize = 64 * 1024 * 1024;

/// Packet types the simulator reads or writes (MS-TDS 2.2.3.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketType {
    SqlBatch,
    Rpc,
    TabularResult,
    Attention,
    TransactionManager,
    Login7,
    PreLogin,
    Other(u8),
}

impl PacketType {
    /// Maps the header's type byte.
    pub fn from_byte(byte: u8) -> PacketType {
        match byte {
            0x01 => PacketType::SqlBatch,
            0x03 => PacketType::Rpc,
            0x04 => PacketType::TabularResult,
            0x06 => PacketType::Attention,
            0x0E => PacketType::TransactionManager,
            0x10 => PacketType::Login7,
            0x12 => PacketType::PreLogin,
            other => PacketType::Other(other),
        }
    }

    /// Returns the header's type byte.
    pub fn to_byte(self) -> u8 {
        match self {
            PacketType::SqlBatch => 0x01,
            PacketType::Rpc => 0x03,
            PacketType::TabularResult => 0x04,
            PacketType::Attention => 0x06,
            PacketType::TransactionManager => 0x0E,
            PacketType::Login7 => 0x10,
            PacketType::PreLogin => 0x12,
            PacketType::Other(byte) => byte,
        }
    }
}

/// A complete client message: the payloads of its packets joined.
#[derive(Debug, Clone)]
pub struct Message {
    pub packet_type: PacketType,
    pub payload: Vec<u8>,
}

/// Errors while reading packets.
#[derive(Debug, thiserror::Error)]
pub enum PacketError {
    #[error("reading from the client failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("packet header declares length {0}, below the 8-byte header itself")]
    ShortLength(usize),
    #[error("client message exceeds {MAX_MESSAGE_LEN} bytes")]
    TooLong,
    #[error("a packet of type 0x{got:02X} arrived inside a message of type 0x{expected:02X}")]
    MixedTypes { expected: u8, got: u8 },
    #[error("connection starts with byte 0x{0:02X}, a TLS record (TDS 8 strict), but this instance has no certificate; set [instance.tls] in the simulator configuration")]
    TlsFirst(u8),
}

/// Reads the next message, or `Ok(None)` when the client closed the connection cleanly
/// between messages.
///
/// # Errors
/// A read fails, a header is malformed, packet types mix within one message, or the
/// first byte is a TLS record (0x16), which a TDS 8 strict client sends first.
pub async fn read_message<R>(reader: &mut R) -> Result<Option<Message>, PacketError>
where
    R: AsyncRead + Unpin,
{
    let mut message: Option<Message> = None;
    loop {
        let mut header = [0u8; HEADER_LEN];
        match reader.read_exact(&mut header).await {
            Ok(_) => {}
            Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof && message.is_none() => {
                return Ok(None);
            }
            Err(err) => return Err(err.into()),
        }
        if header[0] == 0x16 {
            return Err(PacketError::TlsFirst(header[0]));
        }

        let length = usize::from(u16::from_be_bytes([header[2], header[3]]));
        if length < HEADER_LEN {
            return Err(PacketError::ShortLength(length));
        }
        let mut body = vec![0u8; length - HEADER_LEN];
        reader.read_exact(&mut body).await?;

        let packet_type = PacketType::from_byte(header[0]);
        let current = message.get_or_insert_with(|| Message {
            packet_type,
            payload: Vec::new(),
        });
        if current.packet_type != packet_type {
            return Err(PacketError::MixedTypes {
                expected: current.packet_type.to_byte(),
                got: header[0],
            });
        }
        if current.payload.len() + body.len() > MAX_MESSAGE_LEN {
            return Err(PacketError::TooLong);
        }
        current.payload.extend_from_slice(&body);

        if header[1] & STATUS_EOM != 0 {
            return Ok(message);
        }
    }
}

/// Splits outgoing token data into packets of at most `packet_size` bytes.
///
/// Tokens are appended with [`PacketWriter::buffer`]; [`PacketWriter::flush`] sends
/// what is buffered without ending the message (so progress messages reach the client
/// while a batch still runs) and [`PacketWriter::finish`] sends the rest with EOM set.
#[derive(Debug)]
pub struct PacketWriter {
    packet_size: usize,
    packet_id: u8,
    pending: BytesMut,
}

impl PacketWriter {
    /// Creates a writer for the given negotiated packet size.
    pub fn new(packet_size: usize) -> PacketWriter {
        PacketWriter {
            packet_size,
            packet_id: 1,
            pending: BytesMut::new(),
        }
    }

    /// Changes the packet size for later messages; LOGIN7 negotiates it.
    pub fn set_packet_size(&mut self, packet_size: usize) {
        self.packet_size = packet_size;
    }

    /// Token data not yet sent.
    pub fn buffer(&mut self) -> &mut BytesMut {
        &mut self.pending
    }

    /// Drops token data not yet sent; an attention discards what a batch still emits.
    pub fn discard(&mut self) {
        self.pending.clear();
    }

    /// Sends every buffered byte in packets without EOM.
    pub async fn flush<W>(&mut self, writer: &mut W) -> std::io::Result<()>
    where
        W: AsyncWrite + Unpin,
    {
        if self.pending.is_empty() {
            return Ok(());
        }
        let data = self.pending.split();
        let packets = self.frame(&data, false);
        writer.write_all(&packets).await?;
        writer.flush().await
    }

    /// Sends the buffered bytes that fill whole packets and keeps the rest, so a large
    /// result streams out while small replies still end up in one packet.
    pub async fn write_full_packets<W>(&mut self, writer: &mut W) -> std::io::Result<()>
    where
        W: AsyncWrite + Unpin,
    {
        let chunk_len = self.packet_size - HEADER_LEN;
        let full = self.pending.len() / chunk_len * chunk_len;
        if full == 0 {
            return Ok(());
        }
        let data = self.pending.split_to(full);
        let packets = self.frame(&data, false);
        writer.write_all(&packets).await
    }

    /// Sends every buffered byte and ends the message with EOM; an empty buffer still
    /// sends one empty EOM packet, which no caller needs today.
    pub async fn finish<W>(&mut self, writer: &mut W) -> std::io::Result<()>
    where
        W: AsyncWrite + Unpin,
    {
        let data = self.pending.split();
        let packets = self.frame(&data, true);
        writer.write_all(&packets).await?;
        writer.flush().await?;
        self.packet_id = 1;
        Ok(())
    }

    /// Frames `data` as tabular-result packets; the last one carries EOM when `end`.
    fn frame(&mut self, data: &[u8], end: bool) -> BytesMut {
        let chunk_len = self.packet_size - HEADER_LEN;
        let chunks: Vec<&[u8]> = if data.is_empty() {
            vec![&[]]
        } else {
            data.chunks(chunk_len).collect()
        };

        let mut out = BytesMut::with_capacity(data.len() + chunks.len() * HEADER_LEN);
        let last = chunks.len() - 1;
        for (index, chunk) in chunks.into_iter().enumerate() {
            let status = if end && index == last { STATUS_EOM } else { 0 };
            let length = u16::try_from(chunk.len() + HEADER_LEN)
                .expect("packet size is at most 32767 bytes");
            out.put_u8(PacketType::TabularResult.to_byte());
            out.put_u8(status);
            out.put_u16(length);
            out.put_u16(0); // SPID field of the header; clients ignore it.
            out.put_u8(self.packet_id);
            out.put_u8(0); // Window, always 0.
            out.put_slice(chunk);
            self.packet_id = self.packet_id.wrapping_add(1);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(packet_type: u8, status: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![packet_type, status];
        out.extend_from_slice(&u16::try_from(body.len() + 8).unwrap().to_be_bytes());
        out.extend_from_slice(&[0, 0, 1, 0]);
        out.extend_from_slice(body);
        out
    }

    #[tokio::test]
    async fn read_joins_multi_packet_message() {
        let mut wire = packet(0x01, 0, b"SELECT ");
        wire.extend(packet(0x01, 1, b"1"));
        let mut reader = &wire[..];

        let message = read_message(&mut reader).await.unwrap().unwrap();

        assert_eq!(message.packet_type, PacketType::SqlBatch);
        assert_eq!(message.payload, b"SELECT 1");
    }

    #[tokio::test]
    async fn read_returns_none_on_clean_close() {
        let mut reader: &[u8] = &[];
        assert!(read_message(&mut reader).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn read_rejects_mixed_packet_types() {
        let mut wire = packet(0x01, 0, b"a");
        wire.extend(packet(0x03, 1, b"b"));
        let mut reader = &wire[..];

        let error = read_message(&mut reader).await.unwrap_err();

        assert!(matches!(error, PacketError::MixedTypes { .. }), "{error}");
    }

    #[tokio::test]
    async fn read_rejects_tls_first_byte() {
        let wire = packet(0x16, 1, b"");
        let mut reader = &wire[..];
        assert!(matches!(
            read_message(&mut reader).await,
            Err(PacketError::TlsFirst(0x16))
        ));
    }

    #[tokio::test]
    async fn writer_splits_at_packet_size() {
        let mut writer = PacketWriter::new(512);
        writer.buffer().extend_from_slice(&[7u8; 1200]);
        let mut out = Vec::new();

        writer.finish(&mut out).await.unwrap();

        // 504 + 504 + 192 payload bytes.
        assert_eq!(out.len(), 1200 + 3 * HEADER_LEN);
        assert_eq!(&out[0..4], &[0x04, 0x00, 0x02, 0x00]);
        assert_eq!(out[6], 1);
        assert_eq!(&out[512..516], &[0x04, 0x00, 0x02, 0x00]);
        assert_eq!(out[512 + 6], 2);
        assert_eq!(&out[1024..1028], &[0x04, 0x01, 0x00, 200]);
    }

    #[tokio::test]
    async fn writer_flush_leaves_message_open() {
        let mut writer = PacketWriter::new(4096);
        writer.buffer().extend_from_slice(b"abc");
        let mut out = Vec::new();

        writer.flush(&mut out).await.unwrap();
        writer.buffer().extend_from_slice(b"de");
        writer.finish(&mut out).await.unwrap();

        assert_eq!(out[1], 0x00, "first packet must not carry EOM");
        assert_eq!(out[11 + 1], 0x01, "second packet must carry EOM");
        assert_eq!(out[11 + 6], 2, "packet ids must count up within a message");
    }

    #[tokio::test]
    async fn writer_keeps_partial_packet_back() {
        let mut writer = PacketWriter::new(512);
        writer.buffer().extend_from_slice(&[1u8; 600]);
        let mut out = Vec::new();

        writer.write_full_packets(&mut out).await.unwrap();

        assert_eq!(out.len(), 512);
        assert_eq!(writer.buffer().len(), 96);
    }
}
