//! A file being written into the store: hashed while written, made durable and renamed
//! to its final name on commit, removed when dropped uncommitted.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;

use super::sync;
use super::StoreError;

/// Suffix of temp files. Backup file names never start with `.` because `encode_name`
/// writes a dot as `%2e`, so a hidden name with this suffix and a UUID is never a backup.
const TEMP_SUFFIX: &str = ".partial";

/// Bytes of the final name kept in the temp name, so that the temp name stays below the
/// 255-byte component limit with the UUID and suffix added.
const TEMP_NAME_PREFIX_BYTES: usize = 200;

/// A file written to the store that is not yet visible under its final name.
///
/// Bytes go to a hidden temp file beside the final name and into a SHA-256 hasher at the
/// same time, so the hash always describes exactly the bytes on disk. Each chunk is
/// written and hashed on tokio's blocking pool while the caller fetches the next one, so
/// hashing runs in parallel with the transfer. Dropping it without
/// [`PendingFile::commit`] removes the temp file.
#[derive(Debug)]
pub struct PendingFile {
    rel_path: String,
    temp_path: PathBuf,
    final_path: PathBuf,
    writer: WriterSlot,
    bytes_written: u64,
    committed: bool,
}

/// The temp file and the hasher, moved to a blocking-pool thread while a chunk is written.
#[derive(Debug)]
struct Writer {
    file: std::fs::File,
    hasher: Sha256,
    /// The chunk being written. [`PendingFile::write`] copies into it and reuses its
    /// allocation, and [`PendingFile::write_buffer`] swaps it with the caller's buffer.
    chunk: Vec<u8>,
}

/// State of the writer: ready, busy with one chunk, or lost with a failed write.
#[derive(Debug)]
enum WriterSlot {
    Idle(Box<Writer>),
    Busy(JoinHandle<std::io::Result<Box<Writer>>>),
    Failed,
}

/// A file that is complete and durable under its final name in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    /// `/`-separated path relative to the store root.
    pub rel_path: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the content, lower-case hex.
    pub sha256: String,
}

impl PendingFile {
    pub(super) async fn create(
        rel_path: String,
        temp_path: PathBuf,
        final_path: PathBuf,
    ) -> Result<PendingFile, StoreError> {
        // Failing here saves a whole transfer, and `commit` checks again atomically.
        if tokio::fs::symlink_metadata(&final_path).await.is_ok() {
            return Err(StoreError::AlreadyExists { path: final_path });
        }
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp_path)
            .await
            .map_err(|source| StoreError::CreateTemp {
                path: temp_path.clone(),
                source,
            })?;
        let file = file.into_std().await;
        lock_exclusive(&file).map_err(|source| StoreError::CreateTemp {
            path: temp_path.clone(),
            source,
        })?;
        let writer = Writer {
            file,
            hasher: Sha256::new(),
            chunk: Vec::new(),
        };
        Ok(PendingFile {
            rel_path,
            temp_path,
            final_path,
            writer: WriterSlot::Idle(Box::new(writer)),
            bytes_written: 0,
            committed: false,
        })
    }

    /// Appends `chunk` to the temp file and feeds the same bytes to the hasher.
    ///
    /// The chunk is copied and written in the background. This call first waits for the
    /// previous chunk, so an error of that write is returned here (or by `commit`).
    ///
    /// # Errors
    /// [`StoreError::Write`] naming the temp file (for example when the disk is full).
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), StoreError> {
        if chunk.is_empty() {
            return Ok(());
        }
        let mut writer = self.finish_write().await?;
        writer.chunk.clear();
        writer.chunk.extend_from_slice(chunk);
        self.start_write(writer);
        Ok(())
    }

    /// Appends the bytes of `buffer` like [`PendingFile::write`], but without copying
    /// them: the buffer moves to the background writer, and `buffer` receives the
    /// writer's previous one, emptied, for the caller to fill next. A copy loop that
    /// alternates two buffers this way moves each byte once less.
    ///
    /// # Errors
    /// As for [`PendingFile::write`].
    pub async fn write_buffer(&mut self, buffer: &mut Vec<u8>) -> Result<(), StoreError> {
        if buffer.is_empty() {
            return Ok(());
        }
        let mut writer = self.finish_write().await?;
        std::mem::swap(&mut writer.chunk, buffer);
        buffer.clear();
        self.start_write(writer);
        Ok(())
    }

    /// Writes and hashes `writer.chunk` on the blocking pool.
    fn start_write(&mut self, mut writer: Box<Writer>) {
        let len = writer.chunk.len();
        let offset = self.bytes_written;
        let task = tokio::task::spawn_blocking(move || {
            use std::io::Write;

            writer.file.write_all(&writer.chunk)?;
            sync::start_writeback(&writer.file, offset, len as u64);
            writer.hasher.update(&writer.chunk);
            Ok(writer)
        });
        self.writer = WriterSlot::Busy(task);
        self.bytes_written += len as u64;
    }

    /// Waits for the chunk in flight, if any, and takes the writer back.
    async fn finish_write(&mut self) -> Result<Box<Writer>, StoreError> {
        let write_error = |source| StoreError::Write {
            path: self.temp_path.clone(),
            source,
        };
        match std::mem::replace(&mut self.writer, WriterSlot::Failed) {
            WriterSlot::Idle(writer) => Ok(writer),
            WriterSlot::Busy(task) => match task.await {
                Ok(Ok(writer)) => Ok(writer),
                Ok(Err(source)) => Err(write_error(source)),
                Err(error) => Err(StoreError::Task(error.to_string())),
            },
            WriterSlot::Failed => Err(write_error(std::io::Error::other(
                "an earlier write to this file failed",
            ))),
        }
    }

    /// Returns the number of bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written
    }

    /// Returns the temp file's path. A transfer tool that resumes by appending to a local
    /// file (`smbclient reget`) writes there, and [`PendingFile::absorb_appended`] then
    /// takes its bytes in.
    pub fn temp_path(&self) -> &Path {
        &self.temp_path
    }

    /// Prepares the file for a transfer that resumes after a failed one, and returns the
    /// offset to resume from.
    ///
    /// Steps: wait for the chunk in flight, cut the file to `keep` bytes when it contains more,
    /// and `fdatasync` it, so the resumed transfer continues from a durable prefix. When
    /// the file is cut, the hasher restarts over the kept prefix read back from disk,
    /// because a SHA-256 state cannot be rewound. `keep` lets a source drop bytes it cannot
    /// vouch for, such as the end of a stream that may hold a tool's error text.
    ///
    /// # Errors
    /// [`StoreError::Write`] when an earlier write failed (the file cannot be trusted) or
    /// the cut fails, [`StoreError::Read`] when the prefix cannot be read back, and
    /// [`StoreError::Sync`].
    pub async fn resume_point(&mut self, keep: u64) -> Result<u64, StoreError> {
        let mut writer = self.finish_write().await?;
        let keep = keep.min(self.bytes_written);
        let cut = keep < self.bytes_written;
        let temp_path = self.temp_path.clone();
        let writer = sync::run_blocking(move || {
            if cut {
                rewind_writer(&mut writer, &temp_path, keep)?;
            }
            writer.file.sync_data().map_err(|source| StoreError::Sync {
                path: temp_path,
                source,
            })?;
            Ok(writer)
        })
        .await?;
        self.writer = WriterSlot::Idle(writer);
        self.bytes_written = keep;
        Ok(keep)
    }

    /// Hashes the bytes another process appended to the temp file since the last write,
    /// counts them as written, and returns how many there were. The next write goes after
    /// them.
    ///
    /// Unlike [`PendingFile::write`], this starts no writeback: the other process is still
    /// appending, and writeback behind it slowed smbclient. A 1 GiB SMB fetch took
    /// 2.9-3.1 s with it, and 2.1-2.2 s in two of three runs without (release profile,
    /// loopback, two cores). Commit's `fdatasync` then writes the file out.
    ///
    /// The hashing runs at the lowest CPU priority, so smbclient and smbd get the CPU
    /// first and the hash catches up in what they leave. In alternating runs on the same
    /// machine, a 1 GiB SMB fetch took 2.00-2.21 s that way and 2.30-3.60 s at normal
    /// priority, and smbclient used 0.79 s of CPU instead of 1.13 s (medians).
    ///
    /// # Errors
    /// [`StoreError::Write`] when an earlier write failed, [`StoreError::Read`] when the
    /// appended bytes cannot be read.
    pub async fn absorb_appended(&mut self) -> Result<u64, StoreError> {
        let mut writer = self.finish_write().await?;
        let temp_path = self.temp_path.clone();
        let from = self.bytes_written;
        let (writer, appended) = sync::run_behind(move || {
            let appended = hash_range(&mut writer.hasher, &temp_path, from, u64::MAX)?;
            seek_writer(&mut writer, &temp_path, from + appended)?;
            Ok((writer, appended))
        })
        .await?;
        self.writer = WriterSlot::Idle(writer);
        self.bytes_written += appended;
        Ok(appended)
    }

    /// Returns the `/`-separated path the file gets on commit.
    pub fn rel_path(&self) -> &str {
        &self.rel_path
    }

    /// Makes the file durable and visible under its final name.
    ///
    /// Steps: wait for the last chunk, `fdatasync` the temp file, rename it to the final
    /// name without replacing an existing file, then `fsync` the directory so the rename
    /// survives a power loss. The final name therefore never contains an incomplete or unsynced file.
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`] when another file took the final name meanwhile (the
    /// temp file is removed); [`StoreError::Write`], [`StoreError::Sync`] or
    /// [`StoreError::Rename`] naming the path. A `Sync` error on the directory comes after
    /// the rename, so the file is then complete under its final name but its directory
    /// entry may not survive a power loss.
    pub async fn commit(mut self) -> Result<StoredFile, StoreError> {
        let writer = self.finish_write().await?;
        let temp_path = self.temp_path.clone();
        let hasher = sync::run_blocking(move || {
            let Writer { file, hasher, .. } = *writer;
            file.sync_data()
                .map_err(|source| StoreError::Sync {
                    path: temp_path,
                    source,
                })
                .map(|()| hasher)
        })
        .await?;

        let temp_path = self.temp_path.clone();
        let final_path = self.final_path.clone();
        sync::run_blocking(move || sync::rename_no_replace(&temp_path, &final_path)).await?;
        self.committed = true;

        let directory = self
            .final_path
            .parent()
            .expect("a store file has a parent directory")
            .to_path_buf();
        sync::run_blocking(move || sync::sync_dir(&directory)).await?;

        let sha256 = hex::encode(hasher.finalize());
        tracing::debug!(rel_path = %self.rel_path, size = self.bytes_written, "stored file");
        Ok(StoredFile {
            rel_path: std::mem::take(&mut self.rel_path),
            size: self.bytes_written,
            sha256,
        })
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        // A write still in flight finishes into the unlinked file and is then closed.
        // A blocking unlink in drop is brief, and it must happen even when no runtime is
        // left to run a task.
        match std::fs::remove_file(&self.temp_path) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => tracing::warn!(
                path = %self.temp_path.display(),
                %error,
                "cannot remove uncommitted temp file; remove_partial_files removes it later"
            ),
        }
    }
}

/// Cuts the temp file to `keep` bytes and restarts the hasher over them, read back from
/// the file.
fn rewind_writer(writer: &mut Writer, temp_path: &Path, keep: u64) -> Result<(), StoreError> {
    writer
        .file
        .set_len(keep)
        .map_err(|source| StoreError::Write {
            path: temp_path.to_path_buf(),
            source,
        })?;
    writer.hasher = Sha256::new();
    let hashed = hash_range(&mut writer.hasher, temp_path, 0, keep)?;
    if hashed != keep {
        return Err(StoreError::Read {
            path: temp_path.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("read back {hashed} bytes of the {keep} kept"),
            ),
        });
    }
    seek_writer(writer, temp_path, keep)
}

/// Feeds up to `limit` bytes of the file at `path`, from offset `from`, to `hasher`, and
/// returns how many it read. A file opened for reading of its own leaves the writer's
/// position alone.
fn hash_range(hasher: &mut Sha256, path: &Path, from: u64, limit: u64) -> Result<u64, StoreError> {
    use std::io::{Read, Seek, SeekFrom};

    let read_error = |source| StoreError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(read_error)?;
    file.seek(SeekFrom::Start(from)).map_err(read_error)?;
    let mut reader = file.take(limit);
    let mut buffer = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let count = reader.read(&mut buffer).map_err(read_error)?;
        if count == 0 {
            return Ok(total);
        }
        hasher.update(&buffer[..count]);
        total += count as u64;
    }
}

/// Moves the writer's position to `offset`, where the next chunk goes.
fn seek_writer(writer: &mut Writer, temp_path: &Path, offset: u64) -> Result<(), StoreError> {
    use std::io::{Seek, SeekFrom};

    writer
        .file
        .seek(SeekFrom::Start(offset))
        .map(drop)
        .map_err(|source| StoreError::Write {
            path: temp_path.to_path_buf(),
            source,
        })
}

/// Builds the temp name for `file_name`: `.{file_name}.{uuid}.partial`, with the file name
/// cut to its first 200 bytes.
pub(super) fn temp_file_name(file_name: &str) -> String {
    let mut cut = file_name.len().min(TEMP_NAME_PREFIX_BYTES);
    while !file_name.is_char_boundary(cut) {
        cut -= 1;
    }
    let unique = uuid::Uuid::new_v4().simple();
    format!(".{}.{unique}{TEMP_SUFFIX}", &file_name[..cut])
}

/// Checks whether `name` has the form [`temp_file_name`] produces.
pub fn is_temp_file_name(name: impl AsRef<OsStr>) -> bool {
    let Some(name) = name.as_ref().to_str() else {
        return false;
    };
    let Some(inner) = name
        .strip_prefix('.')
        .and_then(|rest| rest.strip_suffix(TEMP_SUFFIX))
    else {
        return false;
    };
    let Some((_, unique)) = inner.rsplit_once('.') else {
        return false;
    };
    unique.len() == 32
        && unique
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Takes an exclusive `flock` on a temp file for as long as the file stays open. The
/// kernel releases it when the writing process ends in any way, `kill -9` included, so
/// a temp file whose lock can be taken has no live writer (see
/// [`is_abandoned_temp_file`]).
fn lock_exclusive(file: &std::fs::File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;

    // SAFETY: flock on a descriptor this function borrows; it changes no memory.
    let result = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if result == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Returns whether no process writes the temp file at `path`: its `flock` can be taken.
/// A file that cannot be opened counts as in use, so that nothing is removed in doubt.
pub(super) fn is_abandoned_temp_file(path: &Path) -> bool {
    match std::fs::File::open(path) {
        // The probe's own lock goes away when `file` is dropped.
        Ok(file) => lock_exclusive(&file).is_ok(),
        Err(_) => false,
    }
}
