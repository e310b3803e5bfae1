//! SFTP transfers over russh: one SSH connection per source, pipelined reads, and a
//! timeout on every step so a silent host cannot stall a job.

mod session;

use std::fmt;

use super::copy::{ChunkCopy, CopyFailure};
use super::{SftpSettings, TransferError};
use crate::store::PendingFile;
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::StatusCode;

/// An SFTP host with an open, authenticated session.
///
/// The session is opened once by [`super::Source::sftp`], and every operation on this
/// source, concurrent fetches included, uses that one connection.
// TODO: a dropped connection is not reopened, so create a new source after `Unreachable`.
pub struct SftpSource {
    settings: SftpSettings,
    connection: session::Connection,
}

impl fmt::Debug for SftpSource {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("SftpSource")
            .field("location", &self.describe())
            .finish_non_exhaustive()
    }
}

impl SftpSource {
    pub(super) async fn connect(settings: SftpSettings) -> Result<SftpSource, TransferError> {
        let location = describe(&settings);
        let connection = session::open(&settings, &location).await?;
        tracing::debug!(location, "opened SFTP session");
        Ok(SftpSource {
            settings,
            connection,
        })
    }

    pub(super) fn describe(&self) -> String {
        describe(&self.settings)
    }

    pub(super) async fn size(&self, path: &str) -> Result<u64, TransferError> {
        self.check_absolute(path)?;
        let metadata = self
            .within(path, "size", self.connection.sftp.metadata(path))
            .await?
            .map_err(|error| self.sftp_error(path, "size", error))?;
        if !metadata.file_type().is_file() {
            return Err(self.not_a_file(path, "size"));
        }
        Ok(metadata.len())
    }

    pub(super) async fn list_files(&self, path: &str) -> Result<Vec<String>, TransferError> {
        self.check_absolute(path)?;
        let entries = self
            .within(path, "list", self.connection.sftp.read_dir(path))
            .await?
            .map_err(|error| self.sftp_error(path, "list", error))?;
        Ok(entries
            .filter(|entry| entry.file_type().is_file())
            .map(|entry| entry.file_name())
            .collect())
    }

    pub(super) async fn check_folder(&self, path: &str) -> Result<(), TransferError> {
        self.check_absolute(path)?;
        self.within(path, "list", self.connection.sftp.read_dir(path))
            .await?
            .map_err(|error| self.sftp_error(path, "list", error))?;
        Ok(())
    }

    pub(super) async fn fetch(
        &self,
        path: &str,
        sink: &mut PendingFile,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<u64, TransferError> {
        self.check_absolute(path)?;
        let sftp = &self.connection.sftp;
        let mut file = self
            .within(path, "open", sftp.open(path))
            .await?
            .map_err(|error| self.sftp_error(path, "open", error))?;
        let metadata = self
            .within(path, "open", file.metadata())
            .await?
            .map_err(|error| self.sftp_error(path, "open", error))?;
        if !metadata.file_type().is_file() {
            return Err(self.not_a_file(path, "fetch"));
        }
        let expected = metadata.len();

        // A resumed fetch reads on after the bytes the store file already holds.
        let offset = sink.bytes_written();
        if offset > 0 {
            use tokio::io::AsyncSeekExt;

            self.within(path, "fetch", file.seek(std::io::SeekFrom::Start(offset)))
                .await?
                .map_err(|error| self.io_error(path, error))?;
        }
        // Every read must return within the timeout, so a host that stops sending fails
        // the fetch instead of stalling it.
        let mut copy = ChunkCopy::resuming_at(offset);
        let stall_timeout = Some(self.settings.timeout);
        let copied = copy.run(&mut file, sink, progress, stall_timeout).await;
        let total = copy.streamed;
        match copied {
            Ok(()) => {}
            Err(CopyFailure::Stalled) => {
                return Err(TransferError::TimedOut {
                    location: self.describe(),
                    path: path.to_string(),
                    operation: "fetch",
                    timeout: self.settings.timeout,
                })
            }
            Err(CopyFailure::Read(error)) => return Err(self.io_error(path, error)),
            Err(CopyFailure::Store(source)) => {
                return Err(super::store_error(&self.describe(), path, source))
            }
        }

        if total != expected {
            return Err(TransferError::Truncated {
                location: self.describe(),
                path: path.to_string(),
                operation: "fetch",
                received: total,
                expected,
            });
        }
        Ok(total)
    }

    pub(super) async fn remove(&self, path: &str) -> Result<(), TransferError> {
        self.check_absolute(path)?;
        self.within(path, "remove", self.connection.sftp.remove_file(path))
            .await?
            .map_err(|error| self.sftp_error(path, "remove", error))
    }

    async fn within<T>(
        &self,
        path: &str,
        operation: &'static str,
        step: impl std::future::Future<Output = T>,
    ) -> Result<T, TransferError> {
        tokio::time::timeout(self.settings.timeout, step)
            .await
            .map_err(|_| TransferError::TimedOut {
                location: self.describe(),
                path: path.to_string(),
                operation,
                timeout: self.settings.timeout,
            })
    }

    fn check_absolute(&self, path: &str) -> Result<(), TransferError> {
        if path.starts_with('/') {
            return Ok(());
        }
        Err(TransferError::InvalidPath {
            location: self.describe(),
            path: path.to_string(),
            reason: "SFTP paths must be absolute".to_string(),
        })
    }

    fn not_a_file(&self, path: &str, operation: &'static str) -> TransferError {
        TransferError::Failed {
            location: self.describe(),
            path: path.to_string(),
            operation,
            detail: "not a regular file".to_string(),
        }
    }

    fn sftp_error(&self, path: &str, operation: &'static str, error: SftpError) -> TransferError {
        let location = self.describe();
        let path = path.to_string();
        match error {
            SftpError::Status(status) if status.status_code == StatusCode::NoSuchFile => {
                TransferError::NotFound { location, path }
            }
            SftpError::Status(status) if status.status_code == StatusCode::PermissionDenied => {
                TransferError::AccessDenied {
                    location,
                    path,
                    operation,
                }
            }
            SftpError::Timeout => TransferError::TimedOut {
                location,
                path,
                operation,
                timeout: self.settings.timeout,
            },
            lost if is_session_lost(&lost) => TransferError::Unreachable {
                location,
                operation,
                detail: lost.to_string(),
            },
            other => TransferError::Failed {
                location,
                path,
                operation,
                detail: other.to_string(),
            },
        }
    }

    /// Maps a read error of russh-sftp's `File`, which reports SFTP failures as
    /// `std::io::Error` values.
    fn io_error(&self, path: &str, error: std::io::Error) -> TransferError {
        let location = self.describe();
        let path = path.to_string();
        match error.kind() {
            std::io::ErrorKind::TimedOut => TransferError::TimedOut {
                location,
                path,
                operation: "fetch",
                timeout: self.settings.timeout,
            },
            std::io::ErrorKind::UnexpectedEof
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::BrokenPipe => TransferError::Unreachable {
                location,
                operation: "fetch",
                detail: error.to_string(),
            },
            _ if wraps_lost_session(&error) => TransferError::Unreachable {
                location,
                operation: "fetch",
                detail: error.to_string(),
            },
            _ => TransferError::Io {
                location,
                path,
                operation: "fetch",
                source: error,
            },
        }
    }
}

/// Returns whether `error` means the SSH session under SFTP is gone, as when sshd dies or
/// the connection drops, so that a new connection may succeed. russh-sftp 3.0 reports a
/// closed channel as `UnexpectedBehavior("session closed")`, a pending request whose
/// session ended as `"sender dropped"`, and a closed internal channel as a `SendError` or
/// `RecvError` text.
fn is_session_lost(error: &SftpError) -> bool {
    match error {
        SftpError::IO(_) => true,
        SftpError::UnexpectedBehavior(detail) => {
            detail == "session closed"
                || detail == "sender dropped"
                || detail.starts_with("SendError")
                || detail.starts_with("RecvError")
        }
        _ => false,
    }
}

/// Returns whether a read error of russh-sftp's `File` carries a lost session: the file
/// wraps its SFTP error in an `std::io::Error` of kind `Other`.
fn wraps_lost_session(error: &std::io::Error) -> bool {
    error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<SftpError>())
        .is_some_and(is_session_lost)
}

fn describe(settings: &SftpSettings) -> String {
    format!(
        "sftp://{}@{}:{}",
        settings.user, settings.host, settings.port
    )
}
