//! Sources of MTF bytes for the block walker: a plain stream, a seekable file whose data
//! streams can be skipped without reading them, and (in `compressed`) the decoded records
//! of the compressed container.

use std::io::{self, Read, Seek, SeekFrom};

use crate::csum::PayloadChecksum;
use crate::VerifyError;

/// Buffer size for reading over data streams.
const SKIP_CHUNK: usize = 256 * 1024;

/// A sequential source of MTF bytes.
pub(crate) trait MtfInput {
    /// Offset in the MTF stream of the next byte.
    fn position(&self) -> u64;

    /// Fills `buf` completely. Returns `Ok(false)` when the input ended before the first
    /// byte, and [`VerifyError::Truncated`] when it ended part way.
    fn fill(&mut self, buf: &mut [u8]) -> Result<bool, VerifyError>;

    /// Moves `len` bytes forward, passing them to `checksum` when one is given.
    fn skip(&mut self, len: u64, checksum: Option<&mut PayloadChecksum>)
        -> Result<(), VerifyError>;

    /// True when the container ended with a soft filemark stored outside the MTF stream,
    /// as SQL Server writes compressed files.
    fn ends_with_raw_filemark(&self) -> bool {
        false
    }

    /// Fills `buf` completely; an input that ends first is [`VerifyError::Truncated`].
    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), VerifyError> {
        if buf.is_empty() || self.fill(buf)? {
            Ok(())
        } else {
            Err(VerifyError::Truncated {
                offset: self.position(),
            })
        }
    }
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
pub(crate) fn read_full<R: Read>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Plain MTF from any reader; skipping reads the bytes.
pub(crate) struct StreamInput<R: Read> {
    reader: R,
    position: u64,
    scratch: Vec<u8>,
}

impl<R: Read> StreamInput<R> {
    pub fn new(reader: R) -> Self {
        StreamInput {
            reader,
            position: 0,
            scratch: Vec::new(),
        }
    }
}

impl<R: Read> MtfInput for StreamInput<R> {
    fn position(&self) -> u64 {
        self.position
    }

    fn fill(&mut self, buf: &mut [u8]) -> Result<bool, VerifyError> {
        let n = read_full(&mut self.reader, buf)?;
        self.position += n as u64;
        match n {
            0 if !buf.is_empty() => Ok(false),
            n if n < buf.len() => Err(VerifyError::Truncated {
                offset: self.position,
            }),
            _ => Ok(true),
        }
    }

    fn skip(
        &mut self,
        len: u64,
        mut checksum: Option<&mut PayloadChecksum>,
    ) -> Result<(), VerifyError> {
        if self.scratch.is_empty() {
            self.scratch = vec![0; SKIP_CHUNK];
        }
        let mut remaining = len;
        while remaining > 0 {
            let want = remaining.min(SKIP_CHUNK as u64) as usize;
            let n = read_full(&mut self.reader, &mut self.scratch[..want])?;
            if let Some(sum) = checksum.as_deref_mut() {
                sum.update(&self.scratch[..n]);
            }
            self.position += n as u64;
            remaining -= n as u64;
            if n < want {
                return Err(VerifyError::Truncated {
                    offset: self.position,
                });
            }
        }
        Ok(())
    }
}

/// Plain MTF from a seekable reader: data streams are skipped by seeking, so reading the
/// headers touches only the descriptor blocks and stream headers.
pub(crate) struct SeekInput<R: Read + Seek> {
    inner: StreamInput<io::BufReader<R>>,
    len: u64,
}

impl<R: Read + Seek> SeekInput<R> {
    pub fn new(mut reader: R) -> Result<Self, VerifyError> {
        let len = reader.seek(SeekFrom::End(0))?;
        reader.seek(SeekFrom::Start(0))?;
        Ok(SeekInput {
            inner: StreamInput::new(io::BufReader::with_capacity(64 * 1024, reader)),
            len,
        })
    }
}

impl<R: Read + Seek> MtfInput for SeekInput<R> {
    fn position(&self) -> u64 {
        self.inner.position
    }

    fn fill(&mut self, buf: &mut [u8]) -> Result<bool, VerifyError> {
        self.inner.fill(buf)
    }

    fn skip(
        &mut self,
        len: u64,
        checksum: Option<&mut PayloadChecksum>,
    ) -> Result<(), VerifyError> {
        if checksum.is_some() {
            return self.inner.skip(len, checksum);
        }
        let target = self.inner.position.saturating_add(len);
        if target > self.len {
            return Err(VerifyError::Truncated { offset: self.len });
        }
        let offset = i64::try_from(len).map_err(|_| VerifyError::Truncated { offset: self.len })?;
        self.inner.reader.seek_relative(offset)?;
        self.inner.position = target;
        Ok(())
    }
}
