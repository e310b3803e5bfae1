//! USE and the database statements tests set up with: CREATE, ALTER ... SET, DROP.

use super::batch::{Out, Outcome};
use super::catalog::{is_system, Database};
use super::messages::{self, Msg};
use super::sql::ast::AlterAction;
use super::{Instance, Session};
use crate::config::DatabaseState;
use crate::reply::ReplyEvent;

/// The error for opening a database in `state`, or `None` when it is online.
pub fn open_error(name: &str, state: DatabaseState) -> Option<Msg> {
    match state {
        DatabaseState::Online | DatabaseState::Emergency => None,
        DatabaseState::Offline => Some(messages::database_offline(name)),
        DatabaseState::Restoring => Some(messages::database_restoring(name)),
        DatabaseState::Recovering => Some(messages::database_recovering(name)),
        DatabaseState::RecoveryPending | DatabaseState::Suspect => {
            Some(messages::database_suspect(name))
        }
    }
}

/// 226, which SQL Server raises for database DDL inside a transaction.
fn not_in_transaction(statement: &str) -> Msg {
    Msg {
        number: 226,
        state: 6,
        class: 16,
        text: format!("{statement} statement not allowed within multi-statement transaction."),
    }
}

pub fn use_database(
    instance: &Instance,
    session: &mut Session,
    name: &str,
    out: &mut Out,
) -> Outcome {
    let found = instance
        .lock()
        .database(name)
        .map(|database| (database.name.clone(), database.state));
    let Some((canonical, state)) = found else {
        out.error(messages::database_not_found(name, 1));
        return Outcome::Failed;
    };
    if let Some(msg) = open_error(&canonical, state) {
        out.error(msg);
        return Outcome::Failed;
    }
    let old = std::mem::replace(&mut session.database, canonical.clone());
    out.send(ReplyEvent::DatabaseChanged {
        old,
        new: canonical.clone(),
    });
    out.info(messages::changed_database(&canonical));
    Outcome::Done { row_count: None }
}

pub fn create_database(
    instance: &Instance,
    session: &Session,
    name: &str,
    out: &mut Out,
) -> Outcome {
    if session.transaction_depth > 0 {
        out.error(not_in_transaction("CREATE DATABASE"));
        return Outcome::Failed;
    }
    let mut state = instance.lock();
    if state.database(name).is_some() {
        drop(state);
        out.error(messages::database_exists(name));
        return Outcome::Failed;
    }
    let id = state.next_database_id();
    let data_directory = instance.info.default_data_directory();
    let mut database = Database::new(name, id, instance.now(), &data_directory);
    // A new database copies model: recovery model, size and compatibility level
    // (CREATE DATABASE (Transact-SQL)).
    if let Some(model) = state.database("model") {
        database.recovery_model = model.recovery_model;
        database.set_size_mb(model.size_mb);
        database.compatibility_level = model.compatibility_level;
    }
    state.databases.push(database);
    tracing::info!(instance = %instance.name(), database = %name, "database created");
    Outcome::Done { row_count: None }
}

pub fn alter_database(
    instance: &Instance,
    session: &Session,
    name: &str,
    action: AlterAction,
    out: &mut Out,
) -> Outcome {
    if session.transaction_depth > 0 {
        out.error(not_in_transaction("ALTER DATABASE"));
        return Outcome::Failed;
    }
    let result = apply_alter(instance, name, action);
    match result {
        Ok(()) => Outcome::Done { row_count: None },
        Err(msg) => {
            out.error(msg);
            out.error(messages::alter_failed());
            Outcome::Failed
        }
    }
}

fn apply_alter(instance: &Instance, name: &str, action: AlterAction) -> Result<(), Msg> {
    let mut state = instance.lock();
    let database = state
        .database_mut(name)
        .ok_or_else(|| messages::cannot_alter(name))?;
    let (option, allowed_on_system) = match action {
        AlterAction::Recovery(_) => ("RECOVERY", !database.name.eq_ignore_ascii_case("tempdb")),
        AlterAction::Offline => ("OFFLINE", false),
        AlterAction::Online => ("ONLINE", true),
        AlterAction::Emergency => ("EMERGENCY", false),
        AlterAction::ReadOnly(_) => ("READ_ONLY", false),
    };
    if is_system(&database.name) && !allowed_on_system {
        return Err(messages::option_not_allowed(option, &database.name));
    }
    let online = database.state == DatabaseState::Online;
    match action {
        AlterAction::Recovery(model) if online => database.set_recovery_model(model),
        AlterAction::ReadOnly(read_only) if online => database.read_only = read_only,
        AlterAction::Recovery(_) | AlterAction::ReadOnly(_) => {
            return Err(messages::cannot_alter(&database.name))
        }
        AlterAction::Offline => database.state = DatabaseState::Offline,
        AlterAction::Online => database.state = DatabaseState::Online,
        AlterAction::Emergency => database.state = DatabaseState::Emergency,
    }
    tracing::info!(instance = %instance.name(), database = %database.name, ?action, "database altered");
    Ok(())
}

pub fn drop_database(
    instance: &Instance,
    session: &Session,
    names: &[String],
    if_exists: bool,
    out: &mut Out,
) -> Outcome {
    if session.transaction_depth > 0 {
        out.error(not_in_transaction("DROP DATABASE"));
        return Outcome::Failed;
    }
    let mut outcome = Outcome::Done { row_count: None };
    for name in names {
        if let Err(msg) = drop_one(instance, session, name, if_exists) {
            out.error(msg);
            outcome = Outcome::Failed;
        }
    }
    outcome
}

fn drop_one(
    instance: &Instance,
    session: &Session,
    name: &str,
    if_exists: bool,
) -> Result<(), Msg> {
    let mut state = instance.lock();
    let Some(database) = state.database(name) else {
        return if if_exists {
            Ok(())
        } else {
            Err(messages::cannot_drop_missing(name))
        };
    };
    let canonical = database.name.clone();
    if is_system(&canonical) {
        return Err(messages::cannot_drop_system(&canonical));
    }
    let in_use = session.database.eq_ignore_ascii_case(&canonical);
    if in_use {
        return Err(messages::cannot_drop_in_use(&canonical));
    }
    state
        .databases
        .retain(|database| database.name != canonical);
    tracing::info!(instance = %instance.name(), database = %canonical, "database dropped");
    Ok(())
}
