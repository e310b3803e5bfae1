//! Plays SQL Server behind the TDS layer: logins, sessions, and batches, replying with
//! [`ReplyEvent`]s as SQL Server would.
//!
//! # Layout
//! `sql` parses batches; `batch` runs them statement by statement; `select` with
//! `tables` answers queries; `ddl`, `backup` and `verify` carry out the other statements;
//! `catalog` and `history` keep databases and msdb rows; `messages` holds SQL Server's
//! message texts.

mod backup;
mod backup_options;
mod batch;
mod catalog;
mod checkdb;
mod convert;
mod ddl;
mod fault;
mod file_tables;
mod header_lists;
mod history;
mod kill;
mod media;
pub mod messages;
mod paths;
mod progress;
mod restore;
mod restore_messages;
mod select;
mod server_info;
pub mod sql;
mod state;
mod stripes;
mod tables;
mod verify;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use time::{Duration, OffsetDateTime, PrimitiveDateTime};

use crate::config::{InstanceConfig, SimConfig};
use crate::reply::{Message, ReplyEvent};

pub use fault::{Corruption, Fault};
pub use server_info::ServerInfo;

use catalog::Database;
use state::InstanceState;

/// All instances of one simulator.
pub struct Engine {
    instances: Vec<Arc<Instance>>,
}

impl Engine {
    /// Builds every instance of `config`.
    ///
    /// # Errors
    /// Two instances share a name (configurations from [`SimConfig::load`] are already
    /// checked for this).
    pub fn new(config: &SimConfig) -> anyhow::Result<Engine> {
        let mut instances: Vec<Arc<Instance>> = Vec::new();
        for instance_config in &config.instances {
            if instances
                .iter()
                .any(|i| i.name().eq_ignore_ascii_case(&instance_config.name))
            {
                anyhow::bail!("instance '{}' is defined twice", instance_config.name);
            }
            instances.push(Arc::new(Instance::new(instance_config.clone())));
        }
        Ok(Engine { instances })
    }

    pub fn instances(&self) -> Vec<Arc<Instance>> {
        self.instances.clone()
    }

    pub fn instance(&self, name: &str) -> Option<Arc<Instance>> {
        self.instances
            .iter()
            .find(|instance| instance.name() == name)
            .cloned()
    }
}

/// One SQL Server instance: identity, databases, history and sessions.
pub struct Instance {
    config: InstanceConfig,
    info: ServerInfo,
    state: Mutex<InstanceState>,
}

/// What a client sent in LOGIN7.
#[derive(Debug, Clone, Default)]
pub struct LoginRequest {
    pub user: String,
    pub password: String,
    pub database: Option<String>,
    pub app_name: String,
    pub host_name: String,
}

/// A logged-in connection.
#[derive(Debug, Clone)]
pub struct Session {
    pub spid: u16,
    pub login: String,
    /// Current database, changed by USE.
    pub database: String,
    /// Set by the engine when a [`Fault::DropConnection`] fires: the server closes the
    /// connection without sending anything more for the batch.
    pub drop_connection: bool,
    /// Open transactions (`@@TRANCOUNT`); BACKUP and RESTORE fail with 3021 while it is
    /// above zero. The TDS layer may change it for transaction manager requests.
    pub transaction_depth: u32,
    /// SET NOCOUNT: statements end without a row count.
    pub nocount: bool,
    /// SET IMPLICIT_TRANSACTIONS: a SELECT from a table opens a transaction.
    pub implicit_transactions: bool,
    /// Set by KILL from another session: the running batch stops and the server closes
    /// the connection.
    pub killed: Arc<AtomicBool>,
}

impl Session {
    /// Returns true once another session ran KILL on this one.
    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::SeqCst)
    }
}

impl Instance {
    /// Builds an instance with the system databases and the configured ones, and arms the
    /// configured faults.
    pub fn new(config: InstanceConfig) -> Instance {
        let info = ServerInfo::from_config(&config);
        let now = local_now(info.time_zone_minutes);
        let level = info.compatibility_level();
        let data_directory = info.default_data_directory();
        let mut databases = catalog::system_databases(info.edition, level, now, &data_directory);
        for database_config in &config.databases {
            let id = databases.iter().map(|d| d.id).max().unwrap_or(4) + 1;
            databases.push(Database::from_config(
                database_config,
                id,
                level,
                now,
                &data_directory,
            ));
        }
        for database_config in &config.databases {
            let Some(source) = &database_config.snapshot_of else {
                continue;
            };
            let source_id = databases
                .iter()
                .find(|d| d.name.eq_ignore_ascii_case(source))
                .map(|d| d.id);
            if let Some(database) = databases
                .iter_mut()
                .find(|d| d.name == database_config.name)
            {
                database.source_database_id = source_id;
            }
        }
        let state = InstanceState {
            databases,
            faults: config.faults.clone(),
            ..InstanceState::default()
        };
        Instance {
            config,
            info,
            state: Mutex::new(state),
        }
    }

    /// Simulator-level name from the configuration.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Configured listening address; port 0 means any free port.
    pub fn listen(&self) -> SocketAddr {
        self.config.listen
    }

    /// `@@SERVERNAME`, also the server field of every message.
    pub fn server_name(&self) -> String {
        self.info.server_name()
    }

    /// Major, minor and build for LOGINACK's server version.
    pub fn product_version(&self) -> (u8, u8, u16) {
        let version = self.info.version;
        (version.major, version.minor, version.build)
    }

    pub fn info(&self) -> &ServerInfo {
        &self.info
    }

    /// Checks a SQL login. Failures carry the message SQL Server sends: 18456 for a wrong
    /// user or password, 4060 when the requested database cannot be opened.
    pub fn login(&self, login: &LoginRequest) -> Result<Session, Message> {
        let known = self.config.logins.iter().any(|entry| {
            entry.name.eq_ignore_ascii_case(&login.user) && entry.password == login.password
        });
        if !known {
            tracing::info!(instance = %self.name(), user = %login.user, "login failed");
            return Err(self.message(messages::login_failed(&login.user), 1));
        }
        let mut state = self.lock();
        let database = match login.database.as_deref().filter(|name| !name.is_empty()) {
            Some(name) => match state.database(name) {
                Some(database) if database.state == crate::config::DatabaseState::Online => {
                    database.name.clone()
                }
                _ => return Err(self.message(messages::login_database_unavailable(name), 1)),
            },
            None => "master".to_string(),
        };
        let spid = (51..=u16::MAX)
            .find(|spid| !state.sessions.contains_key(spid))
            .unwrap_or(u16::MAX);
        state.sessions.insert(spid, login.user.clone());
        let killed = Arc::new(AtomicBool::new(false));
        state.kill_flags.insert(spid, Arc::clone(&killed));
        Ok(Session {
            spid,
            login: login.user.clone(),
            database,
            drop_connection: false,
            transaction_depth: 0,
            nocount: false,
            implicit_transactions: false,
            killed,
        })
    }

    /// Runs one batch and emits its reply events in order. Blocking: a BACKUP writes its
    /// whole file before this returns. Once `cancel` is set, nothing more is emitted.
    pub fn execute_batch(
        &self,
        session: &mut Session,
        sql: &str,
        cancel: &AtomicBool,
        emit: &mut dyn FnMut(ReplyEvent),
    ) {
        batch::execute(self, session, sql, cancel, emit);
    }

    /// Forgets a closed session.
    pub fn end_session(&self, session: &Session) {
        let mut state = self.lock();
        state.sessions.remove(&session.spid);
        state.kill_flags.remove(&session.spid);
        state.requests.remove(&session.spid);
    }

    /// Every batch text received, in order.
    pub fn statements(&self) -> Vec<String> {
        self.lock().statements.clone()
    }

    /// Returns true when the login `name` is a member of sysadmin.
    fn is_sysadmin(&self, name: &str) -> bool {
        self.config
            .logins
            .iter()
            .any(|login| login.name.eq_ignore_ascii_case(name) && login.sysadmin)
    }

    /// Arms a fault; one-shot faults fire once, [`Fault::SlowBackup`] stays.
    pub fn set_fault(&self, fault: Fault) {
        self.lock().faults.push(fault);
    }

    /// Sets the data size of database `name` in MiB, so a test can make its backups large
    /// enough to interrupt mid-way. Returns false when no such database exists.
    pub fn resize_database(&self, name: &str, size_mb: u64) -> bool {
        match self.lock().database_mut(name) {
            Some(database) => {
                database.set_size_mb(size_mb);
                true
            }
            None => false,
        }
    }

    /// Returns true when a [`Fault::DropConnections`] is armed, counting it down; the
    /// server then closes the new connection at once.
    pub fn take_connection_drop(&self) -> bool {
        let mut state = self.lock();
        let Some(index) = state
            .faults
            .iter()
            .position(|fault| matches!(fault, Fault::DropConnections { .. }))
        else {
            return false;
        };
        if let Fault::DropConnections { count } = &mut state.faults[index] {
            *count = count.saturating_sub(1);
            if *count == 0 {
                state.faults.remove(index);
            }
        }
        true
    }

    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    fn lock(&self) -> MutexGuard<'_, InstanceState> {
        // A panic while the lock was held leaves the state usable: every update is a
        // single assignment or push.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Server local time.
    fn now(&self) -> PrimitiveDateTime {
        local_now(self.info.time_zone_minutes)
    }

    fn message(&self, msg: messages::Msg, line: i32) -> Message {
        Message {
            number: msg.number,
            state: msg.state,
            class: msg.class,
            text: msg.text,
            server: self.server_name(),
            procedure: String::new(),
            line,
        }
    }
}

fn local_now(offset_minutes: i32) -> PrimitiveDateTime {
    let now = OffsetDateTime::now_utc() + Duration::minutes(offset_minutes.into());
    PrimitiveDateTime::new(now.date(), now.time())
}

#[cfg(test)]
mod tests;
