//! bakfleet backs up a fleet of SQL Server instances from one central machine.
//!
//! # Layout
//! `fleet` reads the inventory, `schedule` decides when jobs run, `job` runs one backup
//! through its stages, using `mssql` (TDS), `transfer` (SMB, SFTP, local), `store` (the
//! central repository) and `catalog` (SQLite). `web` serves the admin site.

pub mod account;
pub mod alert;
pub mod backup;
pub mod catalog;
pub mod chain;
pub mod cli;
pub mod drill;
pub mod fleet;
pub mod integrity;
pub mod job;
pub mod leftovers;
pub mod logging;
pub mod metrics;
pub mod mssql;
pub mod policy;
pub mod protection;
pub mod reload;
pub mod restore_plan;
pub mod restore_script;
pub mod retention;
pub mod retry;
pub mod run_log;
pub mod schedule;
pub mod service;
pub mod shutdown;
pub mod store;
pub mod token;
pub mod transfer;
pub mod web;
