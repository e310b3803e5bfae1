//! KILL session_id: ends another session, as KILL (Transact-SQL) describes. The target's
//! running batch stops at its next cancellation check and its connection is closed.

use std::sync::atomic::Ordering;

use super::batch::{Out, Outcome};
use super::messages;
use super::{Instance, Session};

/// Session ids SQL Server gives to user connections start above this one.
const LAST_SYSTEM_SESSION: u64 = 50;

/// Runs KILL for `session`. The checks run in this order: permission, own session,
/// system session, then whether the session exists.
// NOTE: SQL Server's order of these checks is assumed; no doc page gives it.
pub fn run(instance: &Instance, session: &Session, session_id: u64, out: &mut Out) -> Outcome {
    // NOTE: only sysadmin grants ALTER ANY CONNECTION here; the simulator has no
    // processadmin role or server permissions.
    if !instance.is_sysadmin(&session.login) {
        out.error(messages::kill_permission_denied());
        return Outcome::Failed;
    }
    if session_id == u64::from(session.spid) {
        out.error(messages::kill_own_session());
        return Outcome::Failed;
    }
    if session_id <= LAST_SYSTEM_SESSION {
        out.error(messages::kill_system_session());
        return Outcome::Failed;
    }
    let flag = u16::try_from(session_id)
        .ok()
        .and_then(|spid| instance.lock().kill_flags.get(&spid).cloned());
    let Some(flag) = flag else {
        out.error(messages::kill_inactive_session(session_id));
        return Outcome::Failed;
    };
    flag.store(true, Ordering::SeqCst);
    tracing::info!(
        instance = %instance.name(),
        by = session.spid,
        session_id,
        "session killed"
    );
    Outcome::Done { row_count: None }
}
