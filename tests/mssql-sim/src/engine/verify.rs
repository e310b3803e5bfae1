//! RESTORE VERIFYONLY.

use super::batch::{Out, Outcome};
use super::sql::ast::VerifyOnly;
use super::{Instance, Session};

pub fn run(
    instance: &Instance,
    session: &mut Session,
    request: &VerifyOnly,
    out: &mut Out,
) -> Outcome {
    let _ = (instance, session, request);
    out.error(super::messages::terminating("VERIFY DATABASE"));
    Outcome::Failed
}
