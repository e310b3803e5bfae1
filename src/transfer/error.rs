//! Errors of transfers, each naming the source, the path and the operation concerned.

use std::time::Duration;

use crate::store::StoreError;

/// A transfer operation that failed. `location` is the source as
/// [`super::Source::describe`] prints it (`smb://host:port/share`, `sftp://user@host:port`,
/// `local`), never with a secret.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("{location}: invalid path {path:?}: {reason}")]
    InvalidPath {
        location: String,
        path: String,
        reason: String,
    },
    #[error("{location}: invalid setting {setting}: {reason}")]
    InvalidSetting {
        location: String,
        setting: &'static str,
        reason: String,
    },
    #[error("{location}: file {path} not found; check the staging path and that the backup was written there")]
    NotFound { location: String, path: String },
    #[error("{location}: share not found; check the share name in the staging setting")]
    ShareNotFound { location: String },
    #[error("{location}: access denied to {path} during {operation}; check that the account may read and delete staged backups")]
    AccessDenied {
        location: String,
        path: String,
        operation: &'static str,
    },
    #[error("{location}: {path} is in use by another process (sharing violation); retry when the backup has finished")]
    Busy { location: String, path: String },
    #[error("{location}: authentication failed for user {user}: {detail}; check the credential")]
    Authentication {
        location: String,
        user: String,
        detail: String,
    },
    #[error("{location}: host key {fingerprint} {problem} in {known_hosts}; add the key with ssh-keyscan after checking the fingerprint with the host's administrator")]
    HostKey {
        location: String,
        fingerprint: String,
        problem: &'static str,
        known_hosts: String,
    },
    #[error("{location}: host unreachable during {operation}: {detail}")]
    Unreachable {
        location: String,
        operation: &'static str,
        detail: String,
    },
    #[error("{location}: {operation} of {path} timed out after {timeout:?} without progress")]
    TimedOut {
        location: String,
        path: String,
        operation: &'static str,
        timeout: Duration,
    },
    #[error(
        "{location}: {operation} of {path} was cut short: received {received} of {expected} bytes"
    )]
    Truncated {
        location: String,
        path: String,
        operation: &'static str,
        received: u64,
        expected: u64,
    },
    #[error("{location}: {operation} of {path} failed: {detail}")]
    Failed {
        location: String,
        path: String,
        operation: &'static str,
        detail: String,
    },
    #[error("{location}: cannot start {program}: {source}; install Debian package {package}")]
    ToolMissing {
        location: String,
        program: &'static str,
        package: &'static str,
        source: std::io::Error,
    },
    #[error("{location}: {operation} of {path} failed: {source}")]
    Io {
        location: String,
        path: String,
        operation: &'static str,
        source: std::io::Error,
    },
    #[error("{location}: cannot store {path}: {source}")]
    Store {
        location: String,
        path: String,
        source: StoreError,
    },
}

impl TransferError {
    /// Tells whether a retry of the same operation may succeed without a change of
    /// configuration: timeouts, unreachable hosts, cut connections and busy files.
    pub fn is_transient(&self) -> bool {
        match self {
            TransferError::Unreachable { .. }
            | TransferError::TimedOut { .. }
            | TransferError::Truncated { .. }
            | TransferError::Busy { .. } => true,
            TransferError::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::Interrupted | std::io::ErrorKind::TimedOut
            ),
            TransferError::InvalidPath { .. }
            | TransferError::InvalidSetting { .. }
            | TransferError::NotFound { .. }
            | TransferError::ShareNotFound { .. }
            | TransferError::AccessDenied { .. }
            | TransferError::Authentication { .. }
            | TransferError::HostKey { .. }
            | TransferError::Failed { .. }
            | TransferError::ToolMissing { .. }
            | TransferError::Store { .. } => false,
        }
    }
}
