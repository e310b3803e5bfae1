//! DBCC CHECKDB: silent success on a healthy database, consistency errors 8928 and 8939
//! for pages a [`Fault::CorruptPages`] marks, and the open errors of databases that are
//! not online (DBCC CHECKDB (Transact-SQL)).

use super::batch::{Out, Outcome};
use super::ddl;
use super::fault::Fault;
use super::restore_messages as msg;
use super::sql::ast::CheckDb;
use super::{Instance, Session};
use crate::config::DatabaseState;

/// First data page of the simulated user table whose pages a fault damages.
const FIRST_DAMAGED_PAGE: u32 = 280;

pub fn run(instance: &Instance, session: &Session, request: &CheckDb, out: &mut Out) -> Outcome {
    let name = request
        .database
        .clone()
        .unwrap_or_else(|| session.database.clone());
    let state = instance.lock();
    let Some(database) = state.database(&name) else {
        drop(state);
        out.error(msg::dbcc_database_missing(&name));
        return Outcome::Failed;
    };
    let canonical = database.name.clone();
    // EMERGENCY databases can be checked; the other states fail as opening them does.
    let open_error = match database.state {
        DatabaseState::Emergency => None,
        other => ddl::open_error(&canonical, other),
    };
    let damaged: u32 = state
        .faults
        .iter()
        .filter_map(|fault| match fault {
            Fault::CorruptPages { database, pages }
                if database.eq_ignore_ascii_case(&canonical) =>
            {
                Some(*pages)
            }
            _ => None,
        })
        .sum();
    let object_id = 2_073_058_421 + i64::from(database.id);
    drop(state);
    if let Some(error) = open_error {
        out.error(error);
        return Outcome::Failed;
    }
    if damaged == 0 {
        if !request.no_infomsgs {
            out.info(msg::checkdb_clean(&canonical));
            out.info(msg::dbcc_done());
        }
        return Outcome::Done { row_count: None };
    }
    report_damage(&canonical, object_id, damaged, request.no_infomsgs, out);
    tracing::info!(instance = %instance.name(), database = %canonical, pages = damaged, "checkdb found damaged pages");
    Outcome::Failed
}

/// Sends two consistency errors per damaged page (the failed page test and the page
/// that could not be processed), then the 8989 summary as an error and the repair level.
fn report_damage(database: &str, object_id: i64, pages: u32, no_infomsgs: bool, out: &mut Out) {
    for index in 0..pages {
        let page = (1, FIRST_DAMAGED_PAGE + index);
        out.error(msg::page_test_failed(object_id, page));
        out.error(msg::page_not_processed(object_id, page));
    }
    // NOTE: 8989 is severity 10 in sys.messages. Published CHECKDB output with errors
    // shows it at severity 16, which the simulator copies.
    out.error(msg::checkdb_summary(0, pages * 2, database));
    out.info(msg::repair_level(database));
    if !no_infomsgs {
        out.info(msg::dbcc_done());
    }
}
