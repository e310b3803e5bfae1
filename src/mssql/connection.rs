//! TDS connections to one instance through tiberius.

use std::path::PathBuf;
use std::time::Duration;

use futures_util::TryStreamExt;
use tiberius::{AuthMethod, Client, Config, EncryptionLevel, QueryItem, Row};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

use super::{transcript, MssqlError};

/// TLS negotiation with the instance. The names follow the `Encrypt` keyword of
/// Microsoft ODBC Driver 18 for SQL Server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encryption {
    /// TDS 8: TLS before any TDS packet.
    Strict,
    /// TLS for the whole session after the pre-login.
    Mandatory,
    /// TLS for the login packet, and for the whole session when the server forces it.
    Optional,
    /// No TLS at all; only for servers without a certificate, such as the simulator.
    NotSupported,
}

/// Everything needed to open a session; built from the fleet inventory by the job.
#[derive(Clone)]
pub struct ConnectSettings {
    /// The fleet's name for the instance, used in errors and logs.
    pub instance: String,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub encryption: Encryption,
    pub ca_file: Option<PathBuf>,
    pub trust_server_certificate: bool,
    /// Name the server certificate must carry; `host` when `None`.
    pub host_name_in_certificate: Option<String>,
    /// Limit for the TCP connect and for the TDS login handshake, each.
    pub connect_timeout: Duration,
    /// Limit for each server round-trip of a query; `None` for BACKUP and RESTORE, which
    /// may run for hours and are watched by progress polling instead.
    pub command_timeout: Option<Duration>,
}

impl std::fmt::Debug for ConnectSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectSettings")
            .field("instance", &self.instance)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &"***")
            .field("encryption", &self.encryption)
            .finish_non_exhaustive()
    }
}

/// Idle time before the first TCP keep-alive probe. NAT gateways and firewalls commonly
/// drop idle TCP flows after a few minutes, and a BACKUP sends nothing to the client
/// between its progress messages, so probes start well before that.
pub const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);

/// Time between two keep-alive probes once they started.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);

/// Keep-alive settings of a session's socket, as `getsockopt` returned them after they
/// were set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    /// `SO_KEEPALIVE`.
    pub enabled: bool,
    /// `TCP_KEEPIDLE`.
    pub idle: Duration,
    /// `TCP_KEEPINTVL`.
    pub interval: Duration,
}

/// One open session. It is dropped, never reused, after a timeout or a cancel, because
/// tiberius leaves such a connection in the middle of a response.
pub struct Connection {
    client: Client<Compat<TcpStream>>,
    instance: String,
    keepalive: Option<Keepalive>,
}

impl Connection {
    /// Opens a TCP connection and logs in.
    ///
    /// # Errors
    /// [`MssqlError::Connect`] when the host cannot be reached or the login fails,
    /// [`MssqlError::Timeout`] when either takes longer than `connect_timeout`.
    pub async fn open(settings: &ConnectSettings) -> Result<Connection, MssqlError> {
        let config = tiberius_config(settings);
        let address = format!("{}:{}", settings.host, settings.port);
        let tcp = tokio::time::timeout(settings.connect_timeout, TcpStream::connect(&address))
            .await
            .map_err(|_| MssqlError::Timeout {
                instance: settings.instance.clone(),
                what: format!("TCP connect to {address}"),
                after: settings.connect_timeout,
            })?
            .map_err(|source| MssqlError::Connect {
                instance: settings.instance.clone(),
                address: address.clone(),
                reason: source.to_string(),
            })?;
        tcp.set_nodelay(true).ok();
        let keepalive = match enable_keepalive(&tcp) {
            Ok(keepalive) => Some(keepalive),
            Err(error) => {
                // The session still works; only a long quiet BACKUP through a NAT may lose it.
                tracing::warn!(instance = %settings.instance, %address, %error, "setting TCP keep-alive failed");
                None
            }
        };
        let client = Client::connect(config, tcp.compat_write())
            .await
            .map_err(|source| connect_error(settings, address, &source))?;
        Ok(Connection {
            client,
            instance: settings.instance.clone(),
            keepalive,
        })
    }

    /// Returns the fleet name of the instance this session belongs to.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Returns the keep-alive settings read back from the socket, or `None` when setting
    /// them failed.
    pub fn keepalive(&self) -> Option<Keepalive> {
        self.keepalive
    }

    /// Runs a batch and returns the rows of every result set. `label` names the
    /// statement in errors ("BACKUP", "RESTORE VERIFYONLY", ...).
    ///
    /// # Errors
    /// [`MssqlError::Server`] with the first error SQL Server sent, or
    /// [`MssqlError::Session`] when the session itself broke.
    pub async fn query(&mut self, label: &str, sql: &str) -> Result<Vec<Vec<Row>>, MssqlError> {
        tracing::debug!(instance = %self.instance, statement = label, sql, "sending batch");
        let (result_sets, error) = run_batch(&mut self.client, sql).await;
        transcript::record(&transcript_entry(label, sql, &result_sets, error.as_ref()));
        match error {
            Some(error) => Err(classify(&self.instance, label, error)),
            None => Ok(result_sets.into_iter().map(|set| set.rows).collect()),
        }
    }

    /// Runs a batch that returns no rows and reads its reply to the final DONE.
    ///
    /// # Errors
    /// As [`Connection::query`].
    pub async fn execute(&mut self, label: &str, sql: &str) -> Result<(), MssqlError> {
        self.query(label, sql).await.map(|_| ())
    }
}

/// Turns on TCP keep-alive with [`KEEPALIVE_IDLE`] and [`KEEPALIVE_INTERVAL`] and reads
/// the settings back.
fn enable_keepalive(tcp: &TcpStream) -> std::io::Result<Keepalive> {
    let socket = socket2::SockRef::from(tcp);
    let params = socket2::TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_INTERVAL);
    socket.set_tcp_keepalive(&params)?;
    Ok(Keepalive {
        enabled: socket.keepalive()?,
        idle: socket.tcp_keepalive_time()?,
        interval: socket.tcp_keepalive_interval()?,
    })
}

/// Keeps a server error's number, state and class; anything else means the session broke.
fn classify(instance: &str, label: &str, error: tiberius::error::Error) -> MssqlError {
    match error {
        tiberius::error::Error::Server(token) => MssqlError::Server {
            instance: instance.to_string(),
            statement: label.to_string(),
            number: token.code(),
            state: token.state(),
            class: token.class(),
            message: token.message().to_string(),
        },
        other => MssqlError::Session {
            instance: instance.to_string(),
            statement: label.to_string(),
            reason: describe_tiberius_error(&other),
        },
    }
}

/// The rows of one result set, with its columns as the transcript records them.
struct ResultSet {
    columns: Vec<transcript::ColumnShape>,
    rows: Vec<Row>,
}

/// Sends a batch and reads its reply to the end, keeping result sets apart (also those
/// without rows). The error, if any, is the first one the server sent.
async fn run_batch(
    client: &mut Client<Compat<TcpStream>>,
    sql: &str,
) -> (Vec<ResultSet>, Option<tiberius::error::Error>) {
    let mut result_sets = Vec::new();
    let mut stream = match client.simple_query(sql).await {
        Ok(stream) => stream,
        Err(error) => return (result_sets, Some(error)),
    };
    loop {
        match stream.try_next().await {
            Ok(Some(QueryItem::Metadata(metadata))) => result_sets.push(ResultSet {
                columns: column_shapes(metadata.columns()),
                rows: Vec::new(),
            }),
            Ok(Some(QueryItem::Row(row))) => {
                if result_sets.is_empty() {
                    result_sets.push(ResultSet {
                        columns: column_shapes(row.columns()),
                        rows: Vec::new(),
                    });
                }
                if let Some(set) = result_sets.last_mut() {
                    set.rows.push(row);
                }
            }
            Ok(None) => return (result_sets, None),
            Err(error) => return (result_sets, Some(error)),
        }
    }
}

fn column_shapes(columns: &[tiberius::Column]) -> Vec<transcript::ColumnShape> {
    columns
        .iter()
        .map(|column| transcript::ColumnShape {
            name: column.name().to_string(),
            sql_type: format!("{:?}", column.column_type()),
        })
        .collect()
}

fn transcript_entry(
    label: &str,
    sql: &str,
    result_sets: &[ResultSet],
    error: Option<&tiberius::error::Error>,
) -> transcript::Entry {
    transcript::Entry {
        label: label.to_string(),
        statement: sql.to_string(),
        result_sets: result_sets
            .iter()
            .map(|set| transcript::ResultShape {
                columns: set.columns.clone(),
                rows: set.rows.len(),
            })
            .collect(),
        error: error.map(|error| match error {
            tiberius::error::Error::Server(token) => transcript::ServerError {
                number: token.code(),
                state: token.state(),
                class: token.class(),
                message: token.message().to_string(),
            },
            other => transcript::ServerError {
                number: 0,
                state: 0,
                class: 0,
                message: format!("session failed: {other}"),
            },
        }),
    }
}

fn tiberius_config(settings: &ConnectSettings) -> Config {
    let mut config = Config::new();
    config.host(&settings.host);
    config.port(settings.port);
    config.application_name("bakfleet");
    config.authentication(AuthMethod::sql_server(&settings.user, &settings.password));
    config.encryption(match settings.encryption {
        Encryption::Strict => EncryptionLevel::Strict,
        Encryption::Mandatory => EncryptionLevel::Required,
        Encryption::Optional => EncryptionLevel::Off,
        Encryption::NotSupported => EncryptionLevel::NotSupported,
    });
    if let Some(ca_file) = &settings.ca_file {
        config.trust_cert_ca(ca_file.display().to_string());
    } else if settings.trust_server_certificate {
        config.trust_cert();
    }
    if let Some(name) = &settings.host_name_in_certificate {
        config.hostname_in_certificate(name);
    }
    config.handshake_timeout(Some(settings.connect_timeout));
    config.command_timeout(settings.command_timeout);
    config
}

/// Turns a failed login handshake into an error; a TLS failure becomes
/// [`MssqlError::Certificate`] with what to check.
fn connect_error(
    settings: &ConnectSettings,
    address: String,
    error: &tiberius::error::Error,
) -> MssqlError {
    let reason = describe_tiberius_error(error);
    let tiberius::error::Error::Tls(text) = error else {
        return MssqlError::Connect {
            instance: settings.instance.clone(),
            address,
            reason,
        };
    };
    MssqlError::Certificate {
        instance: settings.instance.clone(),
        problem: certificate_problem(settings, text),
        reason,
    }
}

/// Describes a TLS failure from tiberius's text, which carries the rustls error (for
/// example `UnknownIssuer` or `certificate not valid for name ...`).
fn certificate_problem(settings: &ConnectSettings, text: &str) -> String {
    let instance = &settings.instance;
    let ca = match &settings.ca_file {
        Some(path) => format!("the CA in ca_file {}", path.display()),
        None => "the system's trusted CAs".to_string(),
    };
    let name = settings
        .host_name_in_certificate
        .as_deref()
        .unwrap_or(&settings.host);
    if text.contains("UnknownIssuer") || text.contains("unable to get local issuer") {
        format!(
            "certificate of instance {instance} is not signed by {ca}; check ca_file or \
             the server's certificate"
        )
    } else if text.contains("not valid for name") || text.contains("mismatch") {
        format!(
            "certificate of instance {instance} is not valid for the name {name}; connect \
             by a name the certificate lists, or set tls.host_name_in_certificate to one"
        )
    } else if text.contains("Could not read certificate") {
        format!(
            "ca_file of instance {instance} cannot be read; check the path and that the \
             bakfleet user may read it"
        )
    } else if text.contains("CaUsedAsEndEntity") || text.contains("self-signed") {
        format!(
            "certificate of instance {instance} is a self-signed CA certificate; give the \
             server a certificate that a CA issued, or put this one in ca_file"
        )
    } else {
        format!(
            "TLS with instance {instance} failed; check tls.encrypt (the server may not \
             support this mode), ca_file and the server's certificate"
        )
    }
}

/// Turns a tiberius error into one line; a server error keeps its number, so that a
/// failed login reads "error 18456: Login failed for user 'x'.".
fn describe_tiberius_error(error: &tiberius::error::Error) -> String {
    match error {
        tiberius::error::Error::Server(token) => {
            format!("error {}: {}", token.code(), token.message())
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keepalive_is_set_on_socket() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let tcp = TcpStream::connect(address).await.unwrap();
        let keepalive = enable_keepalive(&tcp).unwrap();
        assert!(keepalive.enabled);
        assert_eq!(keepalive.idle, KEEPALIVE_IDLE);
        assert_eq!(keepalive.interval, KEEPALIVE_INTERVAL);
    }
}
