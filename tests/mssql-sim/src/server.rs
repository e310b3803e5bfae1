//! Listeners and sessions behind the [`Simulator`] handle: one TCP listener per
//! instance, one task per connection, and an optional log of every batch received.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::config::SimConfig;
use crate::engine::{self, Engine, Instance, LoginRequest, Session};
use crate::reply::{Message, ReplyEvent};
use crate::tds::{self, Backend, Login7, ServerTls};

/// How long [`Simulator::shutdown`] waits for sessions to end before aborting them; a
/// session blocked on a client that stopped reading would otherwise hold it forever.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Options of [`start_with`] beyond the configuration.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// File to which every batch received is appended, each followed by a `GO` line.
    pub statement_log: Option<PathBuf>,
}

/// A running simulator: one listener per instance.
pub struct Simulator {
    engine: Engine,
    instances: Vec<(String, SocketAddr)>,
    shutdown: watch::Sender<bool>,
    listeners: Vec<JoinHandle<()>>,
}

/// Starts every instance of `config` and returns once all listen.
///
/// # Errors
/// The configuration is invalid for the engine, or a listener cannot bind its address.
pub async fn start(config: SimConfig) -> anyhow::Result<Simulator> {
    start_with(config, StartOptions::default()).await
}

/// Starts every instance of `config` with `options` and returns once all listen.
///
/// # Errors
/// The configuration is invalid for the engine, the statement log cannot be opened, or
/// a listener cannot bind its address.
pub async fn start_with(config: SimConfig, options: StartOptions) -> anyhow::Result<Simulator> {
    let engine = Engine::new(&config).context("building the simulated instances failed")?;
    let statement_log = match &options.statement_log {
        Some(path) => Some(Arc::new(StatementLog::open(path)?)),
        None => None,
    };
    let (shutdown, watcher) = watch::channel(false);

    let mut instances = Vec::new();
    let mut listeners = Vec::new();
    for instance in engine.instances() {
        let tls = load_tls(&config, instance.name())?;
        let listener = TcpListener::bind(instance.listen())
            .await
            .with_context(|| {
                format!(
                    "instance {}: binding {} failed; choose another port or port 0",
                    instance.name(),
                    instance.listen()
                )
            })?;
        let addr = listener.local_addr()?;
        tracing::info!(instance = instance.name(), %addr, "listening");
        instances.push((instance.name().to_string(), addr));

        let backend = Arc::new(InstanceBackend {
            instance,
            statement_log: statement_log.clone(),
        });
        listeners.push(tokio::spawn(accept_loop(
            listener,
            backend,
            tls,
            watcher.clone(),
        )));
    }

    Ok(Simulator {
        engine,
        instances,
        shutdown,
        listeners,
    })
}

impl Simulator {
    /// Returns the address an instance listens on.
    pub fn addr(&self, instance: &str) -> Option<SocketAddr> {
        self.instances
            .iter()
            .find(|(name, _)| name == instance)
            .map(|(_, addr)| *addr)
    }

    /// Returns every instance with its address, in configuration order.
    pub fn instances(&self) -> Vec<(String, SocketAddr)> {
        self.instances.clone()
    }

    /// Returns the engine's instance, for tests that inspect or change its state directly.
    pub fn instance(&self, name: &str) -> Option<Arc<Instance>> {
        self.engine.instance(name)
    }

    /// Returns every batch the instance received, in order, or nothing for an unknown
    /// instance.
    pub fn statements(&self, instance: &str) -> Vec<String> {
        self.instance(instance)
            .map(|instance| instance.statements())
            .unwrap_or_default()
    }

    /// Arms a fault on an instance; an unknown instance name is logged and ignored.
    pub fn set_fault(&self, instance: &str, fault: engine::Fault) {
        match self.instance(instance) {
            Some(found) => found.set_fault(fault),
            None => tracing::warn!(instance, "set_fault: instance not found; fault ignored"),
        }
    }

    /// Stops the listeners and ends every session, cancelling running batches.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for listener in self.listeners {
            let _ = listener.await;
        }
        tracing::info!("simulator stopped");
    }
}

/// Loads the certificate of the instance named `name`, when its configuration has one.
fn load_tls(config: &SimConfig, name: &str) -> anyhow::Result<Option<Arc<ServerTls>>> {
    let Some(settings) = config
        .instances
        .iter()
        .find(|instance| instance.name == name)
        .and_then(|instance| instance.tls.as_ref())
    else {
        return Ok(None);
    };
    let tls = ServerTls::load(
        &settings.certificate,
        &settings.private_key,
        settings.force_encryption,
    )
    .with_context(|| format!("instance {name}: loading its TLS certificate failed"))?;
    Ok(Some(Arc::new(tls)))
}

/// Accepts connections until shutdown, then waits for the sessions to end.
async fn accept_loop(
    listener: TcpListener,
    backend: Arc<InstanceBackend>,
    tls: Option<Arc<ServerTls>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if backend.instance.take_connection_drop() {
                        tracing::info!(instance = backend.name(), %peer, "fault: closing the connection at once");
                        drop(stream);
                        continue;
                    }
                    tracing::debug!(instance = backend.name(), %peer, "connection accepted");
                    let backend = Arc::clone(&backend);
                    let tls = tls.clone();
                    let watcher = shutdown.clone();
                    sessions.spawn(async move {
                        if let Err(error) = tds::serve_connection(stream, Arc::clone(&backend), tls, watcher).await {
                            tracing::warn!(instance = backend.name(), %peer, %error, "connection closed after an error");
                        }
                    });
                }
                Err(error) => {
                    tracing::warn!(instance = backend.name(), %error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            // Also fires when the Simulator is dropped without shutdown.
            _ = shutdown.changed() => break,
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
        }
    }
    drop(listener);

    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while sessions.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            instance = backend.name(),
            sessions = sessions.len(),
            "sessions did not end within the shutdown grace period; aborting them"
        );
        sessions.abort_all();
    }
}

/// Adapter that exposes an engine instance to the TDS layer.
struct InstanceBackend {
    instance: Arc<Instance>,
    statement_log: Option<Arc<StatementLog>>,
}

impl Backend for InstanceBackend {
    type Session = Session;

    fn name(&self) -> &str {
        self.instance.name()
    }

    fn server_name(&self) -> String {
        self.instance.server_name()
    }

    fn product_version(&self) -> (u8, u8, u16) {
        self.instance.product_version()
    }

    fn login(&self, login: &Login7) -> Result<Session, Message> {
        let request = LoginRequest {
            user: login.user_name.clone(),
            password: login.password.clone(),
            database: Some(login.database.clone()).filter(|name| !name.is_empty()),
            app_name: login.app_name.clone(),
            host_name: login.host_name.clone(),
        };
        self.instance.login(&request)
    }

    fn spid(&self, session: &Session) -> u16 {
        session.spid
    }

    fn database(&self, session: &Session) -> String {
        session.database.clone()
    }

    fn execute_batch(
        &self,
        session: &mut Session,
        sql: &str,
        cancel: &AtomicBool,
        emit: &mut dyn FnMut(ReplyEvent),
    ) {
        if let Some(log) = &self.statement_log {
            log.append(self.instance.name(), session.spid, sql);
        }
        self.instance.execute_batch(session, sql, cancel, emit);
    }

    fn end_session(&self, session: &Session) {
        self.instance.end_session(session);
    }

    fn drop_requested(&self, session: &Session) -> bool {
        session.drop_connection
    }

    fn set_transaction_depth(&self, session: &mut Session, depth: u32) {
        session.transaction_depth = depth;
    }
}

/// The `--statement-log` file, shared by every instance.
struct StatementLog {
    path: PathBuf,
    file: Mutex<File>,
}

impl StatementLog {
    fn open(path: &std::path::Path) -> anyhow::Result<StatementLog> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening the statement log {} failed", path.display()))?;
        Ok(StatementLog {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }

    /// Appends one batch as `-- instance NAME spid N`, its text, then `GO`. A failed
    /// write is logged and the batch still runs.
    fn append(&self, instance: &str, spid: u16, sql: &str) {
        let entry = format!("-- instance {instance} spid {spid}\n{sql}\nGO\n");
        let mut file = self
            .file
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Err(error) = file.write_all(entry.as_bytes()) {
            tracing::error!(path = %self.path.display(), %error, "appending to the statement log failed");
        }
    }
}
