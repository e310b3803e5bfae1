//! Mutable state of one instance, kept behind one mutex: databases, msdb history,
//! running requests, the statement log and armed faults.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use time::PrimitiveDateTime;

use super::catalog::Database;
use super::fault::Fault;
use super::history::History;

#[derive(Debug, Default)]
pub struct InstanceState {
    pub databases: Vec<Database>,
    pub history: History,
    /// The request each session is running, by session id (`sys.dm_exec_requests`).
    pub requests: BTreeMap<u16, Request>,
    /// Session ids in use.
    pub sessions: BTreeMap<u16, String>,
    /// The kill flag of each session in use, shared with its [`super::Session`], so that
    /// KILL from another session reaches a batch that runs on its own thread.
    pub kill_flags: BTreeMap<u16, Arc<AtomicBool>>,
    /// Every batch text received, in order.
    pub statements: Vec<String>,
    pub faults: Vec<Fault>,
}

/// A running request as `sys.dm_exec_requests` shows it.
#[derive(Debug, Clone)]
pub struct Request {
    /// `command`, e.g. "SELECT" or "BACKUP DATABASE".
    pub command: String,
    /// `status`: "running" or "suspended" (waiting on backup I/O).
    pub status: &'static str,
    pub database_id: i32,
    pub start_time: PrimitiveDateTime,
    pub started: Instant,
    pub percent_complete: f32,
    /// Milliseconds until the request is expected to finish; 0 when unknown.
    pub estimated_completion_ms: i64,
    pub wait_type: Option<&'static str>,
}

impl InstanceState {
    pub fn database(&self, name: &str) -> Option<&Database> {
        self.databases
            .iter()
            .find(|database| database.name.eq_ignore_ascii_case(name))
    }

    pub fn database_mut(&mut self, name: &str) -> Option<&mut Database> {
        self.databases
            .iter_mut()
            .find(|database| database.name.eq_ignore_ascii_case(name))
    }

    pub fn database_by_id(&self, id: i32) -> Option<&Database> {
        self.databases.iter().find(|database| database.id == id)
    }

    /// The lowest database id above every existing one, as SQL Server hands them out.
    pub fn next_database_id(&self) -> i32 {
        self.databases
            .iter()
            .map(|database| database.id)
            .max()
            .unwrap_or(4)
            + 1
    }

    /// Takes the first armed fault that `matches` selects, if it is a one-shot fault;
    /// returns a copy of a standing one.
    pub fn take_fault(&mut self, matches: impl Fn(&Fault) -> bool) -> Option<Fault> {
        let index = self.faults.iter().position(matches)?;
        match &self.faults[index] {
            Fault::SlowBackup { .. }
            | Fault::CorruptPages { .. }
            | Fault::StallBackup { .. }
            | Fault::StallVerify { .. } => Some(self.faults[index].clone()),
            _ => Some(self.faults.remove(index)),
        }
    }
}
