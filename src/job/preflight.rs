//! Stage 2: read the database's state and recovery model and decide whether the backup
//! applies, and with which options.

use super::connect::Session;
use super::{AtPhase, JobContext, JobRequest, Phase, StageError};
use crate::backup::BackupType;
use crate::catalog::DatabaseFacts;
use crate::mssql::tsql::BackupOptions;

/// Percent steps of BACKUP progress messages. Progress itself is read from
/// `sys.dm_exec_requests`; the messages only matter to other tools watching the session.
const STATS_PERCENT: u8 = 10;

/// The options a backup runs with, and the changes of course on the way.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) options: BackupOptions,
    pub(crate) recovery_model: String,
    /// Changes of course the DBA should see on the run, such as compression left out.
    pub(crate) notes: Vec<String>,
}

pub(crate) enum Decision {
    Run(Plan),
    Skip(String),
}

/// Reads the database and decides.
pub(crate) async fn check(
    ctx: &JobContext,
    session: &mut Session,
    request: &JobRequest,
    run_id: i64,
) -> Result<Decision, StageError> {
    let database = session
        .connection
        .database(&request.database)
        .await
        .at(Phase::Preflight)?;
    let Some(database) = database else {
        return Err(StageError {
            phase: Phase::Preflight,
            cause: format!(
                "database [{}] does not exist on instance {} (not in sys.databases); check the \
                 name in fleet.toml or whether the database was dropped",
                request.database, request.instance.name
            ),
        });
    };

    if database.name != request.database {
        return Err(StageError {
            phase: Phase::Preflight,
            cause: format!(
                "database [{}] is named [{}] on instance {}; use the exact name, so that \
                 its backups and its job lease stay under one name",
                request.database, database.name, request.instance.name
            ),
        });
    }

    let inventory = DatabaseFacts {
        name: database.name.clone(),
        recovery_model: Some(database.recovery_model.clone()),
        state: Some(database.state.clone()),
    };
    if let Err(error) = ctx
        .catalog
        .upsert_database(&request.instance.name, &inventory)
        .await
    {
        tracing::warn!(%error, "could not record the database facts");
    }

    if let Some(reason) = skip_reason(request, &database) {
        return Ok(Decision::Skip(reason));
    }

    let mut notes = Vec::new();
    let mut compression = request.instance.compression;
    if compression && session.facts.is_express() {
        compression = false;
        let note = format!(
            "compression left out: {} does not support backup compression",
            session.facts.edition
        );
        tracing::warn!(edition = %session.facts.edition, "compression left out on Express");
        ctx.catalog.add_run_note(run_id, &note).await.ok();
        notes.push(note);
    }
    tracing::info!(
        state = %database.state,
        recovery_model = %database.recovery_model,
        compression,
        "preflight passed"
    );
    Ok(Decision::Run(Plan {
        options: BackupOptions {
            checksum: request.instance.checksum,
            compression,
            stats_percent: STATS_PERCENT,
        },
        recovery_model: database.recovery_model,
        notes,
    }))
}

/// Why a backup does not apply to this database, if it does not.
fn skip_reason(request: &JobRequest, database: &crate::mssql::DatabaseInfo) -> Option<String> {
    if database.name.eq_ignore_ascii_case("tempdb") {
        return Some("tempdb is recreated at every start and cannot be backed up".to_string());
    }
    if database.is_snapshot {
        return Some("database snapshots cannot be backed up".to_string());
    }
    if database.state != "ONLINE" {
        return Some(format!(
            "database is {}; only ONLINE databases can be backed up",
            database.state
        ));
    }
    if request.backup_type == BackupType::Log && database.recovery_model == "SIMPLE" {
        return Some(
            "not applicable: LOG backups need the FULL or BULK_LOGGED recovery model, and \
             the database uses SIMPLE"
                .to_string(),
        );
    }
    if request.backup_type != BackupType::Full && database.name.eq_ignore_ascii_case("master") {
        return Some("only FULL backups exist for master".to_string());
    }
    None
}
