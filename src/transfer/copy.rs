//! Copies a byte stream into a store file in large chunks, with a stall timeout per read.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

use super::FETCH_CHUNK_BYTES;
use crate::store::{PendingFile, StoreError};

/// Bytes kept from the start and from the end of a stream. smbclient prints its error
/// texts to the stream it writes the file to, so they are found there.
const STREAM_EDGE_BYTES: usize = 1024;

/// Cause of a copy that stopped before the end of its stream.
pub(super) enum CopyFailure {
    /// No byte arrived within the stall timeout.
    Stalled,
    /// Reading the stream failed.
    Read(std::io::Error),
    /// Writing to the store failed.
    Store(StoreError),
}

/// A copy from a stream into the store, with its running byte count and the first and last
/// bytes of the stream.
pub(super) struct ChunkCopy {
    /// The chunk being filled. Full chunks move to the store without a copy, and the store
    /// hands back its previous one (see [`PendingFile::write_buffer`]).
    buffer: Vec<u8>,
    /// Bytes in the store file so far, counting those it held before this copy began.
    pub(super) streamed: u64,
    /// Up to [`STREAM_EDGE_BYTES`] from the start of the stream.
    pub(super) head: Vec<u8>,
    /// Up to [`STREAM_EDGE_BYTES`] from the end of what was written.
    pub(super) tail: Vec<u8>,
}

impl ChunkCopy {
    pub(super) fn new() -> ChunkCopy {
        ChunkCopy::resuming_at(0)
    }

    /// Starts a copy that appends to a store file already containing `offset` bytes, so
    /// that the running total and progress count the whole file.
    pub(super) fn resuming_at(offset: u64) -> ChunkCopy {
        ChunkCopy {
            buffer: Vec::with_capacity(FETCH_CHUNK_BYTES),
            streamed: offset,
            head: Vec::new(),
            tail: Vec::new(),
        }
    }

    /// Reads `reader` to its end, writing each full chunk of [`FETCH_CHUNK_BYTES`] (and
    /// the rest at the end) to `sink` and then calling `progress` with the running total.
    /// With a `stall_timeout`, every read must return within it.
    pub(super) async fn run(
        &mut self,
        reader: &mut (impl AsyncRead + Unpin),
        sink: &mut PendingFile,
        progress: &mut (dyn FnMut(u64) + Send),
        stall_timeout: Option<Duration>,
    ) -> Result<(), CopyFailure> {
        loop {
            // The store returns an empty buffer whose capacity may be smaller the first
            // time, and reads must never grow it past one chunk.
            self.buffer
                .reserve_exact(FETCH_CHUNK_BYTES.saturating_sub(self.buffer.len()));
            let count = read_within(reader, &mut self.buffer, stall_timeout).await?;
            let at_end = count == 0;
            let filled = self.buffer.len();
            if filled >= FETCH_CHUNK_BYTES || (at_end && filled > 0) {
                self.flush(sink).await?;
                progress(self.streamed);
            }
            if at_end {
                return Ok(());
            }
        }
    }

    async fn flush(&mut self, sink: &mut PendingFile) -> Result<(), CopyFailure> {
        let chunk = &self.buffer[..];
        if self.head.len() < STREAM_EDGE_BYTES {
            let missing = (STREAM_EDGE_BYTES - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..missing]);
        }
        let chunk_tail = &chunk[chunk.len().saturating_sub(STREAM_EDGE_BYTES)..];
        self.tail.extend_from_slice(chunk_tail);
        let excess = self.tail.len().saturating_sub(STREAM_EDGE_BYTES);
        self.tail.drain(..excess);

        let filled = chunk.len();
        sink.write_buffer(&mut self.buffer)
            .await
            .map_err(CopyFailure::Store)?;
        self.streamed += filled as u64;
        Ok(())
    }
}

/// Appends one read's bytes to `buffer`, into its spare capacity, so the memory is never
/// zeroed first. `buffer` must have spare capacity, or the read would grow it.
async fn read_within(
    reader: &mut (impl AsyncRead + Unpin),
    buffer: &mut Vec<u8>,
    stall_timeout: Option<Duration>,
) -> Result<usize, CopyFailure> {
    debug_assert!(buffer.capacity() > buffer.len());
    let read = reader.read_buf(buffer);
    let result = match stall_timeout {
        Some(timeout) => tokio::time::timeout(timeout, read)
            .await
            .map_err(|_| CopyFailure::Stalled)?,
        None => read.await,
    };
    result.map_err(CopyFailure::Read)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[tokio::test]
    async fn copy_keeps_stream_edges() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut sink = store.begin("a.bak").await.unwrap();
        let content: Vec<u8> = (0..FETCH_CHUNK_BYTES + 10)
            .map(|i| (i % 256) as u8)
            .collect();
        let mut reader = content.as_slice();
        let mut copy = ChunkCopy::new();
        let mut reports = Vec::new();

        let result = copy
            .run(
                &mut reader,
                &mut sink,
                &mut |total| reports.push(total),
                None,
            )
            .await;

        assert!(result.is_ok());
        assert_eq!(copy.streamed, content.len() as u64);
        assert_eq!(reports, [FETCH_CHUNK_BYTES as u64, content.len() as u64]);
        assert_eq!(copy.head, content[..STREAM_EDGE_BYTES]);
        assert_eq!(copy.tail, content[content.len() - STREAM_EDGE_BYTES..]);
    }

    #[tokio::test]
    async fn copy_stops_on_stalled_stream() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut sink = store.begin("a.bak").await.unwrap();
        // The write half stays open and silent, so reads never complete.
        let (_writer, mut reader) = tokio::io::duplex(64);
        let mut copy = ChunkCopy::new();

        let result = copy
            .run(
                &mut reader,
                &mut sink,
                &mut |_| {},
                Some(Duration::from_millis(50)),
            )
            .await;

        assert!(matches!(result, Err(CopyFailure::Stalled)));
    }
}
