//! Stage 1: open a session to the instance and read what it is.

use std::time::Duration;

use super::{AtPhase, JobContext, JobRequest, Phase, StageError};
use crate::catalog::InstanceFacts;
use crate::fleet::{Auth, Encrypt, Instance, Secrets};
use crate::mssql::{ConnectSettings, Connection, Encryption, MssqlError, ServerFacts};
use crate::retry;

/// The job's session: one connection that runs BACKUP and RESTORE, the facts read on it,
/// and the settings to open a second connection for progress.
pub(crate) struct Session {
    pub(crate) connection: Connection,
    pub(crate) facts: ServerFacts,
    pub(crate) settings: ConnectSettings,
}

/// Connects, retrying transient faults under `service.retry`, and reads the server facts.
pub(crate) async fn open(
    ctx: &JobContext,
    request: &JobRequest,
    run_id: i64,
) -> Result<Session, StageError> {
    let settings = connect_settings(&request.instance, &ctx.secrets, None).at(Phase::Connect)?;
    let policy = &ctx.fleet.service.retry;
    let opened =
        retry::open_connection(&settings, policy, &request.database, Some(&ctx.shutdown)).await;
    let (mut connection, attempts) =
        super::interrupt::unless_cancelled(ctx, Phase::Connect, opened)?;
    if attempts > 1 {
        let note = format!("connect took {attempts} attempts");
        ctx.catalog.add_run_note(run_id, &note).await.ok();
    }
    let facts = connection.server_facts().await.at(Phase::Connect)?;
    tracing::info!(
        version = %facts.product_version,
        edition = %facts.edition,
        server = %facts.server_name,
        "connected"
    );
    let instance = &request.instance;
    let inventory = InstanceFacts {
        name: instance.name.clone(),
        host: instance.host.clone(),
        port: instance.port,
        product_version: Some(facts.product_version.clone()),
        edition: Some(facts.edition.clone()),
        engine_edition: Some(facts.engine_edition),
        server_name: Some(facts.server_name.clone()),
    };
    if let Err(error) = ctx.catalog.upsert_instance(&inventory).await {
        tracing::warn!(%error, "could not record the instance facts");
    }
    Ok(Session {
        connection,
        facts,
        settings,
    })
}

/// Builds the tiberius settings for an instance. `command_timeout` is `None` for the
/// session that runs BACKUP and RESTORE: they take as long as the data needs, and a
/// client-side timeout would leave the statement running on the server.
pub fn connect_settings(
    instance: &Instance,
    secrets: &Secrets,
    command_timeout: Option<Duration>,
) -> Result<ConnectSettings, ConnectSettingsError> {
    let Auth::Sql { user, password } = &instance.auth;
    let context = format!("instance {} auth", instance.name);
    let password = secrets
        .resolve(password, &context)
        .map_err(|error| ConnectSettingsError(error.to_string()))?;
    Ok(ConnectSettings {
        instance: instance.name.clone(),
        host: instance.host.clone(),
        port: instance.port,
        user: user.clone(),
        password: password.expose().to_string(),
        encryption: match instance.tls.encrypt {
            Encrypt::Strict => Encryption::Strict,
            Encrypt::Mandatory => Encryption::Mandatory,
            Encrypt::Optional => Encryption::Optional,
            Encrypt::NotSupported => Encryption::NotSupported,
        },
        ca_file: instance.tls.ca_file.clone(),
        trust_server_certificate: instance.tls.trust_server_certificate,
        host_name_in_certificate: instance.tls.host_name_in_certificate.clone(),
        connect_timeout: instance.connect_timeout,
        command_timeout,
    })
}

/// A secret the instance needs could not be resolved.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConnectSettingsError(String);

/// Opens a short-lived connection for queries with a command timeout, such as progress
/// polling and listing databases.
pub(crate) async fn open_query_connection(
    settings: &ConnectSettings,
) -> Result<Connection, MssqlError> {
    let mut query_settings = settings.clone();
    query_settings.command_timeout = Some(settings.connect_timeout);
    Connection::open(&query_settings).await
}
