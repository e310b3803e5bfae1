//! A TDS 7.4 server that plays one or more SQL Server instances for bakfleet's tests and
//! demo.
//!
//! # Layout
//! `config` reads the TOML description of the instances. `tds` speaks the protocol:
//! packets, pre-login, login, token encoding, batches, RPC and attention. `engine` plays
//! SQL Server: it parses statements and answers them through [`reply::ReplyEvent`]s, the
//! only contract between the two. `server` ties them together behind [`Simulator`].
//!
//! # Limits
//! BACKUP ... WITH ENCRYPTION checks the certificate or asymmetric key named in the
//! configuration and records the encryption in msdb, but writes the file unencrypted, so
//! RESTORE and VERIFYONLY read it without the key. RESTORE FILELISTONLY on a backup this
//! instance did not write lists the default file names `name` and `name_log`, because
//! the backup's own file list is not read.

pub mod config;
pub mod engine;
pub mod reply;
pub mod server;
pub mod tds;

pub use config::SimConfig;
pub use server::{start, Simulator};
