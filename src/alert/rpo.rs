//! RPO states for the evaluator, from the fleet's protection assessment.

use time::OffsetDateTime;

use super::evaluator::{RpoState, RpoStatus};
use super::AlertError;
use crate::catalog::Catalog;
use crate::fleet::Fleet;
use crate::protection::{self, DatabaseProtection, ProtectionState, TypeProtection};

/// Assesses every database of the fleet against its RPO at `now`.
///
/// # Errors
/// [`AlertError::Protection`] when the assessment fails.
pub async fn rpo_statuses(
    fleet: &Fleet,
    catalog: &Catalog,
    now: OffsetDateTime,
) -> Result<Vec<RpoStatus>, AlertError> {
    let assessed = protection::assess(fleet, catalog, now)
        .await
        .map_err(|error| AlertError::Protection {
            reason: error.to_string(),
        })?;
    Ok(assessed
        .iter()
        .map(|database| status_of(database, now))
        .collect())
}

fn status_of(database: &DatabaseProtection, now: OffsetDateTime) -> RpoStatus {
    let details: Vec<String> = database
        .types
        .iter()
        .filter(|kind| kind.state != ProtectionState::Ok)
        .map(|kind| type_detail(kind, now))
        .collect();
    RpoStatus {
        instance: database.instance.clone(),
        database: database.database.clone(),
        state: match database.state {
            ProtectionState::Ok => RpoState::Ok,
            ProtectionState::Late => RpoState::Late,
            ProtectionState::Missing => RpoState::Missing,
        },
        detail: details.join("; "),
        missing_grace: database
            .types
            .iter()
            .filter(|kind| kind.state == ProtectionState::Missing)
            .filter_map(|kind| kind.rpo)
            .min(),
    }
}

/// Describes one late or missing backup type, such as "log backup 3h 10m old, RPO 30m".
fn type_detail(kind: &TypeProtection, now: OffsetDateTime) -> String {
    let rpo = kind
        .rpo
        .map(|rpo| format!(", RPO {}", human_duration(rpo)))
        .unwrap_or_default();
    match kind.last_good {
        Some(last_good) => format!(
            "{} backup {} old{rpo}",
            kind.backup_type,
            human_duration(now - last_good)
        ),
        None => format!("no good {} backup{rpo}", kind.backup_type),
    }
}

/// Formats a duration in its two largest units, such as `3d 4h` or `12m`.
pub(crate) fn human_duration(duration: time::Duration) -> String {
    let seconds = duration.whole_seconds().max(0);
    let units = [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)];
    let mut parts = Vec::new();
    let mut rest = seconds;
    for (name, size) in units {
        if rest >= size || (parts.is_empty() && size == 1) {
            parts.push(format!("{}{name}", rest / size));
            rest %= size;
        }
        if parts.len() == 2 {
            break;
        }
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::human_duration;
    use time::Duration;

    #[test]
    fn human_duration_keeps_two_units() {
        assert_eq!(
            human_duration(Duration::seconds(3 * 86_400 + 4 * 3_600 + 59)),
            "3d 4h"
        );
        assert_eq!(human_duration(Duration::minutes(12)), "12m");
        assert_eq!(human_duration(Duration::seconds(0)), "0s");
    }
}
