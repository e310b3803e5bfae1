//! Fetches staged backup files from database hosts over SMB, SFTP or the local file system,
//! streaming them into the store, which hashes them as it writes.

mod copy;
mod error;
pub mod local;
pub mod sftp;
pub mod smb;

use std::path::PathBuf;
use std::time::Duration;

pub use error::TransferError;

use crate::store::{PendingFile, StoreError};

/// Bytes handed to the store per write. Large writes keep system calls and progress
/// callbacks rare next to the cost of SHA-256 (about 1.3 GB/s on one core).
pub const FETCH_CHUNK_BYTES: usize = 4 << 20;

/// Bytes at the end of a failed SMB fetch that a resumed fetch reads again, because they
/// may hold smbclient's error text rather than file content. Its messages are a few lines.
pub const SMB_UNTRUSTED_TAIL_BYTES: u64 = 64 * 1024;

/// Source of staged backups. Each SMB operation runs its own `smbclient`
/// process and each SFTP source has its own connection, so one slow host cannot block
/// transfers from another.
#[derive(Debug)]
pub enum Source {
    /// A Windows or Samba share, read through Samba's `smbclient`.
    Smb(smb::SmbSource),
    /// A host path read over SFTP (OpenSSH or any SFTP v3 server).
    Sftp(sftp::SftpSource),
    /// A path on this machine.
    Local(local::LocalSource),
}

/// Connection settings of one SMB share.
#[derive(Debug, Clone)]
pub struct SmbSettings {
    /// Host name or IPv4 address of the file server.
    pub host: String,
    /// TCP port, 445 unless the server listens elsewhere.
    pub port: u16,
    /// Share name, without slashes.
    pub share: String,
    /// Account name, without the domain.
    pub user: String,
    /// Account password. It is written only to a private credentials file per operation.
    pub password: String,
    /// Windows domain or workgroup of the account, when the server needs one.
    pub domain: Option<String>,
    /// Maximum wait for any progress: connecting, a reply, or the next bytes of a file.
    pub timeout: Duration,
}

/// Connection settings of one SFTP host.
#[derive(Debug, Clone)]
pub struct SftpSettings {
    /// Host name or IP address.
    pub host: String,
    /// TCP port, 22 unless the server listens elsewhere.
    pub port: u16,
    /// Login name.
    pub user: String,
    /// Private key file (OpenSSH format) used for public key authentication.
    pub key_file: PathBuf,
    /// `known_hosts` file that must list the server's host key for `host` and `port`.
    pub known_hosts: PathBuf,
    /// Maximum wait for connecting, authenticating, opening a file or any one read.
    pub timeout: Duration,
}

impl Source {
    /// Creates an SMB source. No connection is made here because each operation runs its
    /// own `smbclient` process.
    ///
    /// # Errors
    /// [`TransferError::ToolMissing`] when `smbclient` cannot be started, and
    /// [`TransferError::InvalidSetting`] for a host, share name or credential that cannot be passed
    /// to `smbclient` safely.
    pub async fn smb(settings: SmbSettings) -> Result<Source, TransferError> {
        smb::SmbSource::new(settings).await.map(Source::Smb)
    }

    /// Connects and authenticates an SFTP source and opens its SFTP session.
    ///
    /// # Errors
    /// [`TransferError::Unreachable`], [`TransferError::TimedOut`],
    /// [`TransferError::HostKey`] (unknown or changed key, with its fingerprint) or
    /// [`TransferError::Authentication`].
    pub async fn sftp(settings: SftpSettings) -> Result<Source, TransferError> {
        sftp::SftpSource::connect(settings).await.map(Source::Sftp)
    }

    /// Creates a source for files on this machine.
    pub fn local() -> Source {
        Source::Local(local::LocalSource)
    }

    /// Returns the size in bytes of the file at `path`.
    ///
    /// `path` is a path inside the share for SMB (`dir\file.bak` or `dir/file.bak`), and
    /// an absolute path for SFTP and local sources.
    pub async fn size(&self, path: &str) -> Result<u64, TransferError> {
        match self {
            Source::Smb(source) => source.size(path).await,
            Source::Sftp(source) => source.size(path).await,
            Source::Local(source) => source.size(path).await,
        }
    }

    /// Streams the file at `path` into `sink` and returns the file's byte count.
    ///
    /// When `sink` already contains bytes, from an earlier attempt cut to
    /// [`Source::resume_offset`], the fetch reads on from there instead of from byte 0.
    /// Bytes arrive in chunks of up to [`FETCH_CHUNK_BYTES`], and `progress` receives the
    /// running total after each one, so memory use stays bounded whatever the file size.
    /// On error `sink` contains a partial file: resume into it or drop it uncommitted.
    pub async fn fetch(
        &self,
        path: &str,
        sink: &mut PendingFile,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<u64, TransferError> {
        let started = std::time::Instant::now();
        let result = match self {
            Source::Smb(source) => source.fetch(path, sink, progress).await,
            Source::Sftp(source) => source.fetch(path, sink, progress).await,
            Source::Local(source) => source.fetch(path, sink, progress).await,
        };
        if let Ok(bytes) = result {
            let seconds = started.elapsed().as_secs_f64();
            tracing::debug!(
                source = %self.describe(),
                path,
                bytes,
                seconds,
                mb_per_s = bytes as f64 / seconds.max(1e-9) / 1e6,
                "fetched staged file"
            );
        }
        result
    }

    /// Returns how many of the `written` bytes of a failed fetch a new attempt keeps.
    ///
    /// SFTP and local reads stop at a byte boundary of the file, so every byte written
    /// counts. An SMB fetch that falls back to a pipe gets smbclient's error texts in the
    /// stream that carries the file, so the last [`SMB_UNTRUSTED_TAIL_BYTES`] of a failed
    /// SMB fetch are fetched again whichever way it ran.
    pub fn resume_offset(&self, written: u64) -> u64 {
        match self {
            Source::Smb(_) => written.saturating_sub(SMB_UNTRUSTED_TAIL_BYTES),
            Source::Sftp(_) | Source::Local(_) => written,
        }
    }

    /// Checks that the folder at `path` exists and can be listed, for `check --connect`.
    /// `path` has the form of [`Source::size`]'s, and `""` is the share root for SMB.
    ///
    /// # Errors
    /// The same errors as [`Source::size`], for a missing, unreadable or unreachable folder.
    pub async fn check_folder(&self, path: &str) -> Result<(), TransferError> {
        match self {
            Source::Smb(source) => source.check_folder(path).await,
            Source::Sftp(source) => source.check_folder(path).await,
            Source::Local(source) => source.check_folder(path).await,
        }
    }

    /// Lists the names of the regular files in the folder at `path` (the form
    /// [`Source::check_folder`] takes), for the clean-up of staged files of failed runs.
    ///
    /// # Errors
    /// The same errors as [`Source::check_folder`].
    pub async fn list_files(&self, path: &str) -> Result<Vec<String>, TransferError> {
        match self {
            Source::Smb(source) => source.list_files(path).await,
            Source::Sftp(source) => source.list_files(path).await,
            Source::Local(source) => source.list_files(path).await,
        }
    }

    /// Deletes the file at `path`, once its copy is durable in the store.
    pub async fn remove(&self, path: &str) -> Result<(), TransferError> {
        match self {
            Source::Smb(source) => source.remove(path).await,
            Source::Sftp(source) => source.remove(path).await,
            Source::Local(source) => source.remove(path).await,
        }
    }

    /// Describes the source for logs and errors, without secrets:
    /// `smb://host:port/share`, `sftp://user@host:port` or `local`.
    pub fn describe(&self) -> String {
        match self {
            Source::Smb(source) => source.describe(),
            Source::Sftp(source) => source.describe(),
            Source::Local(_) => "local".to_string(),
        }
    }
}

fn store_error(location: &str, path: &str, source: StoreError) -> TransferError {
    TransferError::Store {
        location: location.to_string(),
        path: path.to_string(),
        source,
    }
}

#[cfg(test)]
mod tests;
