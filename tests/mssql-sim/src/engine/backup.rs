//! BACKUP DATABASE and BACKUP LOG.

use super::batch::{Out, Outcome};
use super::sql::ast::Backup;
use super::{Instance, Session};

pub fn run(instance: &Instance, session: &mut Session, request: &Backup, out: &mut Out) -> Outcome {
    let _ = (instance, session, request);
    out.error(super::messages::terminating("BACKUP DATABASE"));
    Outcome::Failed
}
