//! Stage 2: read the database's state, differential base and log chain, decide with the
//! database's policy which backup to take, and build the BACKUP options.

use super::connect::Session;
use super::{AtPhase, JobContext, JobRequest, Phase, StageError};
use crate::backup::BackupType;
use crate::catalog::{self, SkipKind};
use crate::fleet::Policy;
use crate::mssql::tsql::BackupOptions;
use crate::mssql::DatabaseInfo;
use crate::policy::{self, DatabaseFacts, StoreHistory};

/// Percent steps of BACKUP progress messages. Progress itself is read from
/// `sys.dm_exec_requests`; the messages only matter to other tools watching the session.
const STATS_PERCENT: u8 = 10;

/// The backup a run takes, its options, and the changes of course on the way.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// The type taken: the requested one, or FULL after a promotion.
    pub(crate) backup_type: BackupType,
    pub(crate) options: BackupOptions,
    pub(crate) recovery_model: String,
    /// Files the backup is striped over, from the policy: 1 for a backup on one file.
    pub(crate) files: u32,
    /// Changes of course the DBA should see on the run, such as compression left out.
    pub(crate) notes: Vec<String>,
    /// The decision's input, compared again just before BACKUP.
    facts: DatabaseFacts,
    history: StoreHistory,
}

impl Plan {
    /// Returns the base full's `backup_set_guid` for a differential backup, as
    /// `sys.master_files` reported it in the last read before BACKUP.
    pub(crate) fn differential_base_guid(&self) -> Option<String> {
        if self.backup_type != BackupType::Diff {
            return None;
        }
        self.facts
            .differential_base_guid
            .map(|guid| guid.to_string())
    }
}

pub(crate) enum Decision {
    Run(Box<Plan>),
    Skip { kind: SkipKind, reason: String },
}

/// Reads the database and the store's history of it, and decides.
///
/// # Errors
/// A [`StageError`] in phase preflight when the database does not exist, its name differs
/// in case, a query fails, or the policy forbids the FULL a broken chain needs.
pub(crate) async fn check(
    ctx: &JobContext,
    session: &mut Session,
    request: &JobRequest,
    run_id: i64,
) -> Result<Decision, StageError> {
    let (database, facts) = read_facts(session, request).await?;
    record_inventory(ctx, request, &database).await;
    let history = ctx
        .catalog
        .store_history(&request.instance.name, &request.database)
        .await
        .at(Phase::Preflight)?;
    let policy = request.instance.policy_for(&request.database);

    let decision = policy::decide(request.backup_type, &facts, &history, policy);
    let (backup_type, reason) = match decision {
        policy::Decision::Run {
            backup_type,
            reason,
        } => (backup_type, reason),
        policy::Decision::NotApplicable(reason) => {
            let kind = SkipKind::NotApplicable;
            return Ok(Decision::Skip { kind, reason });
        }
        policy::Decision::Skip(reason) => {
            let kind = SkipKind::Unavailable;
            return Ok(Decision::Skip { kind, reason });
        }
        policy::Decision::Fail(cause) => {
            return Err(StageError {
                phase: Phase::Preflight,
                cause,
            })
        }
    };

    let mut notes = Vec::new();
    if let Some(reason) = reason {
        tracing::warn!(requested = %request.backup_type, %backup_type, %reason, "backup type changed");
        ctx.catalog
            .change_run_type(run_id, backup_type, &reason)
            .await
            .at(Phase::Catalog)?;
        notes.push(reason);
    }
    let options = backup_options(ctx, session, policy, run_id, &mut notes).await;
    tracing::info!(
        state = %facts.state,
        recovery_model = %facts.recovery_model,
        %backup_type,
        policy = %policy.name,
        compression = options.compression,
        "preflight passed"
    );
    Ok(Decision::Run(Box::new(Plan {
        backup_type,
        options,
        recovery_model: facts.recovery_model.clone(),
        files: policy.files,
        notes,
        facts,
        history,
    })))
}

/// Reads the database again just before BACKUP and decides again with the same store
/// history, because the state may change between the decision and the statement (a log
/// backup taken elsewhere, a switch to SIMPLE, the database taken offline).
///
/// # Errors
/// A [`StageError`] in phase preflight when the new decision differs from the plan,
/// naming both. A changed fact that keeps the decision becomes a note on the run.
pub(crate) async fn confirm(
    ctx: &JobContext,
    session: &mut Session,
    request: &JobRequest,
    run_id: i64,
    plan: &mut Plan,
) -> Result<(), StageError> {
    let (_, facts) = read_facts(session, request).await?;
    if facts == plan.facts {
        return Ok(());
    }
    // NOTE: no test changes a database between the decision and this read, so the
    // branches below have not run.

    let policy = request.instance.policy_for(&request.database);
    let decision = policy::decide(request.backup_type, &facts, &plan.history, policy);
    let same_type = matches!(
        &decision,
        policy::Decision::Run { backup_type, .. } if *backup_type == plan.backup_type
    );

    if !same_type {
        return Err(StageError {
            phase: Phase::Preflight,
            cause: format!(
                "database [{}] changed between the type decision and BACKUP: the decision \
                 was a {} backup, it is now {decision:?}",
                request.database, plan.backup_type
            ),
        });
    }
    let note = format!(
        "database state changed before BACKUP (state {}, recovery model {}, last log \
         backup LSN {}); the {} backup still applies",
        facts.state,
        facts.recovery_model,
        facts
            .last_log_backup_lsn
            .map_or("NULL".to_string(), |lsn| lsn.to_string()),
        plan.backup_type
    );
    tracing::warn!(%note, "database state changed before BACKUP");
    ctx.catalog.add_run_note(run_id, &note).await.ok();
    plan.notes.push(note);
    plan.facts = facts;
    Ok(())
}

/// Reads `sys.databases`, the differential base and the log chain of the request's
/// database, and checks that it exists under exactly that name.
async fn read_facts(
    session: &mut Session,
    request: &JobRequest,
) -> Result<(DatabaseInfo, DatabaseFacts), StageError> {
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
                 name given (fleet.toml, the command line or the site) or whether the \
                 database was dropped",
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
    let recovery = session
        .connection
        .recovery_facts(database.database_id)
        .await
        .at(Phase::Preflight)?;
    let facts = DatabaseFacts {
        name: database.name.clone(),
        state: database.state.clone(),
        is_snapshot: database.is_snapshot,
        recovery_model: database.recovery_model.clone(),
        is_read_only: database.is_read_only,
        differential_base_lsn: recovery.differential_base_lsn,
        differential_base_guid: recovery.differential_base_guid,
        last_log_backup_lsn: recovery.last_log_backup_lsn,
        database_guid: recovery.database_guid,
    };
    Ok((database, facts))
}

async fn record_inventory(ctx: &JobContext, request: &JobRequest, database: &DatabaseInfo) {
    let inventory = catalog::DatabaseFacts {
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
}

/// Builds the BACKUP options from the policy. Compression is left out on Express because
/// it rejects it with error 1844, and the run gets a note saying so.
async fn backup_options(
    ctx: &JobContext,
    session: &Session,
    policy: &Policy,
    run_id: i64,
    notes: &mut Vec<String>,
) -> BackupOptions {
    let mut compression = policy.compression;
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
    BackupOptions {
        checksum: policy.checksum,
        compression,
        stats_percent: STATS_PERCENT,
        buffer_count: policy.buffer_count,
        max_transfer_size: policy.max_transfer_size,
        encryption: policy.encryption.clone(),
    }
}
