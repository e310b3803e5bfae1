//! A TDS 7.4 server that plays one or more SQL Server instances for bakfleet's tests and
//! demo.
//!
//! # Layout
//! `config` reads the TOML description of the instances. `tds` speaks the protocol:
//! packets, pre-login, login, token encoding, batches, RPC and attention. `engine` plays
//! SQL Server: it parses statements and answers them through [`reply::ReplyEvent`]s, the
//! only contract between the two. `server` ties them together behind [`Simulator`].

pub mod config;
pub mod engine;
pub mod reply;
pub mod server;
pub mod tds;

pub use config::SimConfig;
pub use server::{start, Simulator};
