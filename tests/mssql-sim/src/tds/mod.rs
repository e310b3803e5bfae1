//! The TDS 7.x protocol layer: packets, pre-login, login, token encoding, SQL batches,
//! RPC, transaction manager requests and attention, without TLS.
//!
//! [`serve_connection`] runs one client connection against a [`Backend`], which plays
//! the SQL Server instance; the server module implements it for the engine.

pub mod login;
pub mod packet;
pub mod prelogin;
pub mod rpc;
mod session;
pub mod token;

use std::sync::atomic::AtomicBool;

pub use login::{Login7, TdsVersion};
pub use session::{serve_connection, SessionError};

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

    /// The session's SPID, for logs.
    fn spid(&self, session: &Self::Session) -> u16;

    /// The session's current database, announced in the login reply.
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
}
