//! Runs a batch: parse it whole, bind its SELECTs, then run statement by statement with
//! one DONE each, stopping where SQL Server stops a batch.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::messages::{self, Msg};
use super::select::{self, QueryContext, SelectError};
use super::sql::ast::{BackupKind, RestoreKind, SetOption, Statement, StatementKind};
use super::sql::{parse_batch, ParseError};
use super::state::Request;
use super::{backup, checkdb, ddl, header_lists, kill, restore, verify, Instance, Session};
use crate::reply::{Done, Message, ReplyEvent};

/// How one statement ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Succeeded; `row_count` goes into the DONE token unless NOCOUNT is on.
    Done { row_count: Option<u64> },
    /// Failed with a statement-level error; the batch goes on.
    Failed,
    /// Failed with an error that ends the batch.
    AbortBatch,
    /// Cancelled or the connection is to be dropped: nothing more is emitted.
    Stopped,
}

/// The event sink of a batch: fills in the server name and line of messages and drops
/// everything once the client cancelled.
pub struct Out<'a> {
    emit: &'a mut dyn FnMut(ReplyEvent),
    cancel: &'a AtomicBool,
    /// The session's kill flag; a killed batch stops like a cancelled one.
    killed: Arc<AtomicBool>,
    server: String,
    /// Line of the running statement within the batch.
    pub line: i32,
    silenced: bool,
}

impl Out<'_> {
    pub fn cancelled(&self) -> bool {
        self.silenced || self.cancel.load(Ordering::Relaxed) || self.killed.load(Ordering::Relaxed)
    }

    /// Stops all further events, for a connection that is about to be dropped.
    pub fn silence(&mut self) {
        self.silenced = true;
    }

    pub fn send(&mut self, event: ReplyEvent) {
        if !self.cancelled() {
            (self.emit)(event);
        }
    }

    fn message(&self, msg: Msg) -> Message {
        Message {
            number: msg.number,
            state: msg.state,
            class: msg.class,
            text: msg.text,
            server: self.server.clone(),
            procedure: String::new(),
            line: self.line,
        }
    }

    pub fn error(&mut self, msg: Msg) {
        let message = self.message(msg);
        self.send(ReplyEvent::Error(message));
    }

    pub fn info(&mut self, msg: Msg) {
        let message = self.message(msg);
        self.send(ReplyEvent::Info(message));
    }
}

/// Runs `sql` for `session` on `instance`.
pub fn execute(
    instance: &Instance,
    session: &mut Session,
    sql: &str,
    cancel: &AtomicBool,
    emit: &mut dyn FnMut(ReplyEvent),
) {
    instance.lock().statements.push(sql.to_string());
    if session.is_killed() {
        // The kill reached the session between batches: close without a reply.
        session.drop_connection = true;
        return;
    }
    let mut out = Out {
        emit,
        cancel,
        killed: Arc::clone(&session.killed),
        server: instance.server_name(),
        line: 1,
        silenced: false,
    };
    let statements = match parse_batch(sql) {
        Ok(statements) => statements,
        Err(error) => {
            tracing::debug!(instance = %instance.name(), ?error, "batch does not parse");
            fail_batch(&mut out, parse_message(&error));
            return;
        }
    };
    if let Err(error) = compile(instance, session, &statements) {
        fail_batch(&mut out, error);
        return;
    }
    if statements.is_empty() {
        out.send(ReplyEvent::Done(Done {
            more: false,
            error: false,
            row_count: None,
        }));
        return;
    }
    run_statements(instance, session, &statements, &mut out);
    instance.lock().requests.remove(&session.spid);
    if session.is_killed() {
        tracing::info!(instance = %instance.name(), spid = session.spid, "session killed; closing its connection");
        session.drop_connection = true;
    }
}

fn run_statements(
    instance: &Instance,
    session: &mut Session,
    statements: &[Statement],
    out: &mut Out,
) {
    for (index, statement) in statements.iter().enumerate() {
        if out.cancelled() {
            return;
        }
        out.line = statement.line;
        start_request(instance, session, &statement.kind);
        let outcome = run_statement(instance, session, statement, out);
        let last = index + 1 == statements.len();
        let done = match outcome {
            Outcome::Stopped => return,
            Outcome::Done { row_count } => {
                let row_count = if session.nocount { None } else { row_count };
                Done {
                    more: !last,
                    error: false,
                    row_count,
                }
            }
            Outcome::Failed => Done {
                more: !last,
                error: true,
                row_count: None,
            },
            Outcome::AbortBatch => Done {
                more: false,
                error: true,
                row_count: None,
            },
        };
        out.send(ReplyEvent::Done(done));
        if outcome == Outcome::AbortBatch {
            return;
        }
    }
}

/// Sends a compile error and the batch's single DONE; SQL Server runs none of a batch
/// that fails to compile.
fn fail_batch(out: &mut Out, (msg, line): (Msg, i32)) {
    out.line = line;
    out.error(msg);
    out.send(ReplyEvent::Done(Done {
        more: false,
        error: true,
        row_count: None,
    }));
}

fn parse_message(error: &ParseError) -> (Msg, i32) {
    match error {
        ParseError::Syntax {
            near,
            keyword: true,
            line,
        } => (messages::syntax_keyword(near), *line),
        ParseError::Syntax {
            near,
            keyword: false,
            line,
        } => (messages::syntax(near), *line),
        ParseError::Unclosed { text, line } => (messages::unclosed_quote(text), *line),
        ParseError::MissingEndComment { line } => (messages::missing_end_comment(), *line),
        ParseError::UnknownSetOption { name, line } => (messages::unknown_set_option(name), *line),
        ParseError::UnknownOption {
            name,
            statement,
            line,
        } => (messages::unknown_option(name, statement), *line),
        ParseError::UndeclaredVariable { name, line } => {
            (messages::undeclared_variable(name), *line)
        }
    }
}

/// Binds every SELECT against the tables that exist now; a table that does not exist is
/// left for run time (deferred name resolution).
fn compile(
    instance: &Instance,
    session: &Session,
    statements: &[Statement],
) -> Result<(), (Msg, i32)> {
    let state = instance.lock();
    let ctx = QueryContext {
        info: &instance.info,
        state: &state,
        session,
        now: instance.now(),
    };
    for statement in statements {
        let StatementKind::Select(query) = &statement.kind else {
            continue;
        };
        match select::run(query, &ctx, true) {
            Err(SelectError::Compile(msg)) => return Err((msg, statement.line)),
            Ok(_) | Err(SelectError::Deferred(_)) | Err(SelectError::Runtime(_)) => {}
        }
    }
    Ok(())
}

/// Shows the statement as this session's request in `sys.dm_exec_requests`.
fn start_request(instance: &Instance, session: &Session, kind: &StatementKind) {
    let command = match kind {
        StatementKind::Select(_) => "SELECT",
        StatementKind::Backup(backup) if backup.kind == BackupKind::Log => "BACKUP LOG",
        StatementKind::Backup(_) => "BACKUP DATABASE",
        // NOTE: unverified. The text is cut to 16 characters as sysprocesses' cmd column
        // holds it; no doc page lists the command text of RESTORE VERIFYONLY.
        StatementKind::RestoreVerifyOnly(_) => "RESTORE VERIFYON",
        StatementKind::Restore(restore) if restore.kind == RestoreKind::Log => "RESTORE LOG",
        StatementKind::Restore(_) => "RESTORE DATABASE",
        StatementKind::RestoreHeaderOnly(_) => "RESTORE HEADERON",
        StatementKind::RestoreFileListOnly(_) => "RESTORE FILELIST",
        // NOTE: "DBCC TABLE CHECK" as the command of a running CHECKDB is a guess.
        StatementKind::CheckDb(_) => "DBCC TABLE CHECK",
        StatementKind::CreateDatabase { .. } => "CREATE DATABASE",
        StatementKind::AlterDatabase { .. } => "ALTER DATABASE",
        StatementKind::DropDatabase { .. } => "DROP DATABASE",
        StatementKind::Use { .. } => "USE",
        StatementKind::Set(_) => "SET OPTION ON",
        StatementKind::BeginTransaction => "BEGIN TRANSACTION",
        StatementKind::Commit => "COMMIT TRANSACTION",
        StatementKind::Rollback => "ROLLBACK TRANSACTION",
        StatementKind::Execute { .. } => "EXECUTE",
        StatementKind::Kill { .. } => "KILL",
    };
    let mut state = instance.lock();
    let database_id = state
        .database(&session.database)
        .map_or(1, |database| database.id);
    let request = Request {
        command: command.to_string(),
        status: "running",
        database_id,
        start_time: instance.now(),
        started: Instant::now(),
        percent_complete: 0.0,
        estimated_completion_ms: 0,
        wait_type: None,
    };
    state.requests.insert(session.spid, request);
}

fn run_statement(
    instance: &Instance,
    session: &mut Session,
    statement: &Statement,
    out: &mut Out,
) -> Outcome {
    match &statement.kind {
        StatementKind::Select(query) => run_select(instance, session, query, out),
        StatementKind::Backup(request) => backup::run(instance, session, request, out),
        StatementKind::RestoreVerifyOnly(request) => verify::run(instance, session, request, out),
        StatementKind::Restore(request) => restore::run(instance, session, request, out),
        StatementKind::RestoreHeaderOnly(request) => header_lists::headers(instance, request, out),
        StatementKind::RestoreFileListOnly(request) => {
            header_lists::file_list(instance, request, out)
        }
        StatementKind::CheckDb(request) => checkdb::run(instance, session, request, out),
        StatementKind::CreateDatabase { name } => {
            ddl::create_database(instance, session, name, out)
        }
        StatementKind::AlterDatabase { name, action } => {
            ddl::alter_database(instance, session, name, *action, out)
        }
        StatementKind::DropDatabase { names, if_exists } => {
            ddl::drop_database(instance, session, names, *if_exists, out)
        }
        StatementKind::Use { database } => ddl::use_database(instance, session, database, out),
        StatementKind::Set(option) => {
            match option {
                SetOption::NoCount(on) => session.nocount = *on,
                SetOption::ImplicitTransactions(on) => session.implicit_transactions = *on,
                SetOption::Other => {}
            }
            Outcome::Done { row_count: None }
        }
        StatementKind::BeginTransaction => {
            session.transaction_depth += 1;
            Outcome::Done { row_count: None }
        }
        StatementKind::Commit => {
            end_transaction(session, out, messages::commit_without_begin(), false)
        }
        StatementKind::Rollback => {
            end_transaction(session, out, messages::rollback_without_begin(), true)
        }
        StatementKind::Execute { procedure } => {
            out.error(messages::unknown_procedure(procedure));
            Outcome::Failed
        }
        StatementKind::Kill { session_id } => kill::run(instance, session, *session_id, out),
    }
}

fn end_transaction(session: &mut Session, out: &mut Out, error: Msg, rollback: bool) -> Outcome {
    if session.transaction_depth == 0 {
        out.error(error);
        return Outcome::Failed;
    }
    // ROLLBACK ends every nested transaction; COMMIT ends one level.
    session.transaction_depth = if rollback {
        0
    } else {
        session.transaction_depth - 1
    };
    Outcome::Done { row_count: None }
}

fn run_select(
    instance: &Instance,
    session: &mut Session,
    query: &super::sql::ast::Select,
    out: &mut Out,
) -> Outcome {
    let result = {
        let state = instance.lock();
        let ctx = QueryContext {
            info: &instance.info,
            state: &state,
            session,
            now: instance.now(),
        };
        select::run(query, &ctx, false)
    };
    match result {
        Ok(result) => {
            if session.implicit_transactions
                && query.from.is_some()
                && session.transaction_depth == 0
            {
                session.transaction_depth = 1;
            }
            let count = result.rows.len() as u64;
            out.send(ReplyEvent::Columns(result.columns));
            for row in result.rows {
                out.send(ReplyEvent::Row(row));
            }
            Outcome::Done {
                row_count: Some(count),
            }
        }
        Err(SelectError::Deferred(msg))
        | Err(SelectError::Compile(msg))
        | Err(SelectError::Runtime(msg)) => {
            out.error(msg);
            Outcome::AbortBatch
        }
    }
}
