//! End-to-end backups: bakfleet against the SQL Server simulator, with staging served by
//! real smbd and sshd processes on loopback.
//!
//! Checks marked "simulator-only" inspect what only the simulator can show (the
//! statements it received, injected faults); every other assertion holds for any server.

#[path = "../support/mod.rs"]
mod support;

mod external;
mod failures;
mod faults;
mod fixture;
mod leases;
mod names;
mod policy;
mod relay;
mod restore;
mod schedule;
mod sftp;
mod shutdown;
mod smb;
mod stall;
mod stripes;
mod target;
