//! The TDS protocol layer: packets, pre-login, TLS (in PRELOGIN for TDS 7.x, first for
//! TDS 8 strict), login, token encoding, SQL batches, RPC, transaction manager requests
//! and attention.
//!
//! [`serve_connection`] runs one client connection against a [`Backend`], which plays
//! the SQL Server instance; the server module implements it for the engine.

mod encryption;
pub mod login;
pub mod packet;
pub mod prelogin;
pub mod rpc;
mod session;
pub mod tls;
pub mod token;

use std::sync::atomic::AtomicBool;

pub use login::{Login7, TdsVersion};
pub use session::{serve_connection, SessionError};
pub use tls::{ServerTls, TlsSetupError};

use crate::reply::{Message, ReplyEvent};

/// What a session needs from the SQL Server instance it serves.
///
/// The protocol layer calls `execute_batch` on a blocking thread and encodes the events
/// as they arrive, so an implementation may block for as long as a BACKUP runs.
pub trait Backend: Send + Sync + 'static {
    /// Per-connection state the backend keeps (current database, SPID, SET options).
    type Session: Send + 'static;

    /// Simulator-level instance name, for logs.
    fn name(&self) -> &str;

    /// @@SERVERNAME, put in the server field of the messages the protocol layer sends.
    fn server_name(&self) -> String;

    /// (major, minor, build) for PRELOGIN's VERSION and LOGINACK.
    fn product_version(&self) -> (u8, u8, u16);

    /// Checks a SQL login. The error is the message to send, 18456 for a wrong user or
    /// password.
    fn login(&self, login: &Login7) -> Result<Self::Session, Message>;

    /// Returns the session's SPID, for logs.
    fn spid(&self, session: &Self::Session) -> u16;

    /// Returns the session's current database, which the login reply announces.
    fn database(&self, session: &Self::Session) -> String;

    /// Runs one SQL batch, emitting its reply in order. Stops emitting once `cancel` is
    /// set (attention, closed connection or shutdown).
    fn execute_batch(
        &self,
        session: &mut Self::Session,
        sql: &str,
        cancel: &AtomicBool,
        emit: &mut dyn FnMut(ReplyEvent),
    );

    /// Releases the session when its connection closes.
    fn end_session(&self, session: &Self::Session);

    /// Returns true when the last batch requested that the connection be dropped without
    /// a reply, as a simulated network failure. The session then closes it at once.
    fn drop_requested(&self, session: &Self::Session) -> bool {
        let _ = session;
        false
    }

    /// Records how many transactions transaction manager requests left open, so the
    /// engine can reject statements that SQL Server forbids inside a transaction.
    fn set_transaction_depth(&self, session: &mut Self::Session, depth: u32) {
        let _ = (session, depth);
    }
}
