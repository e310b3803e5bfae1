//! Talking to SQL Server over TDS: connections, the facts bakfleet reads from an
//! instance, and the T-SQL it sends.

mod connection;
mod server;
pub mod transcript;
pub mod tsql;

use std::time::Duration;

pub use connection::{ConnectSettings, Connection, Encryption};
pub use connection::{Keepalive, KEEPALIVE_IDLE, KEEPALIVE_INTERVAL};
pub use server::{BackupSetRow, DatabaseInfo, RequestProgress, ServerFacts};

/// A failure talking to an instance. Every variant names the instance.
#[derive(Debug, thiserror::Error)]
pub enum MssqlError {
    #[error(
        "instance {instance}: cannot connect to {address}: {reason}; {}",
        connect_hint(reason)
    )]
    Connect {
        instance: String,
        address: String,
        reason: String,
    },
    /// The TLS handshake failed: the certificate was rejected, the CA file cannot be
    /// read, or the server does not speak the requested mode.
    #[error("{problem} ({reason})")]
    Certificate {
        instance: String,
        problem: String,
        reason: String,
    },
    #[error("instance {instance}: {what} timed out after {after:?}")]
    Timeout {
        instance: String,
        what: String,
        after: Duration,
    },
    /// An error SQL Server sent; `number` is its message number (3201, 4208, ...).
    #[error(
        "instance {instance}: {statement} failed with SQL Server error {number} (severity {class}, state {state}): {message}{}",
        server_hint(*number, message)
    )]
    Server {
        instance: String,
        statement: String,
        number: u32,
        state: u8,
        class: u8,
        message: String,
    },
    #[error("instance {instance}: {statement}: session failed: {reason}")]
    Session {
        instance: String,
        statement: String,
        reason: String,
    },
    /// The reply did not have the shape the query expects.
    #[error("instance {instance}: {statement}: unexpected reply: {reason}")]
    Reply {
        instance: String,
        statement: String,
        reason: String,
    },
}

/// Returns what to check after a failed connection, by the kind of failure.
fn connect_hint(reason: &str) -> &'static str {
    if reason.contains("18456") {
        "check the login name in fleet.toml and the password its secret holds"
    } else if reason.contains("refused") {
        "check the host and port, and that SQL Server listens for TCP connections there"
    } else {
        "check the host, the port and the tls settings in fleet.toml"
    }
}

/// Returns what to do about a BACKUP device error whose cause is known, after "; ", or
/// nothing. It reads the Windows operating system error that SQL Server puts inside
/// 3201, 3202 and 3271: 112 for a full disk, 5 for access denied.
fn server_hint(number: u32, message: &str) -> &'static str {
    let disk_full = message.contains(" 112(");
    let access_denied = message.contains("error 5(");
    match number {
        3202 | 3271 if disk_full => {
            "; free space on the backup target (the staging share or folder), for example \
             by removing staged files that failed runs left with `bakfleet prune`"
        }
        3201 if access_denied => {
            "; give the SQL Server service account write access to the staging share or \
             folder"
        }
        _ => "",
    }
}

impl MssqlError {
    /// Returns the SQL Server error number, when the server sent one.
    pub fn server_error_number(&self) -> Option<u32> {
        match self {
            MssqlError::Server { number, .. } => Some(*number),
            _ => None,
        }
    }
}
