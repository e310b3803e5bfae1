//! Age classes of each database's newest backups, shown as colours on the overview.

use serde::Serialize;
use time::{Duration, OffsetDateTime};

use crate::backup::BackupType;

/// Age class of a newest backup, shown as its colour on the overview.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Freshness {
    /// Within the interval the default schedule implies for this type.
    Fresh,
    /// Up to about twice that interval late: one run missed.
    Aging,
    /// Later than that: look at the runs.
    Stale,
    /// No backup of this type was catalogued.
    Missing,
}

/// Maximum ages of a `Fresh` and an `Aging` backup of each type.
///
/// The defaults follow a weekly full, a daily differential and a log backup every
/// 15 minutes, each with slack for a run's own duration.
// TODO: derive the limits from each database's schedule in fleet.toml.
fn limits(backup_type: BackupType) -> (Duration, Duration) {
    match backup_type {
        BackupType::Full => (Duration::days(8), Duration::days(15)),
        BackupType::Diff => (Duration::hours(26), Duration::hours(50)),
        BackupType::Log => (Duration::hours(1), Duration::hours(4)),
    }
}

/// Describes each type's `Fresh` limit for the overview's legend, such as `8 d 0 h`.
pub(super) fn fresh_limits() -> Vec<(BackupType, String)> {
    BackupType::ALL
        .into_iter()
        .map(|backup_type| (backup_type, format_age(limits(backup_type).0)))
        .collect()
}

/// Classifies the newest backup of `backup_type`, which finished at `finished_at`.
pub(super) fn classify(
    backup_type: BackupType,
    finished_at: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Freshness {
    let Some(finished_at) = finished_at else {
        return Freshness::Missing;
    };

    let age = now - finished_at;
    let (fresh, aging) = limits(backup_type);
    if age <= fresh {
        Freshness::Fresh
    } else if age <= aging {
        Freshness::Aging
    } else {
        Freshness::Stale
    }
}

/// Formats an age with its two largest units, such as `3 d 4 h` or `12 min`.
pub(super) fn format_age(age: Duration) -> String {
    if age.is_negative() {
        return "in the future".to_string();
    }

    let days = age.whole_days();
    let hours = age.whole_hours() % 24;
    let minutes = age.whole_minutes() % 60;
    let seconds = age.whole_seconds() % 60;
    if days > 0 {
        format!("{days} d {hours} h")
    } else if hours > 0 {
        format!("{hours} h {minutes} min")
    } else if minutes > 0 {
        format!("{minutes} min")
    } else {
        format!("{seconds} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2024-05-01 10:00:00 UTC);

    #[test]
    fn classify_uses_limits_per_type() {
        let cases = [
            (BackupType::Full, Duration::days(7), Freshness::Fresh),
            (BackupType::Full, Duration::days(10), Freshness::Aging),
            (BackupType::Full, Duration::days(20), Freshness::Stale),
            (BackupType::Diff, Duration::hours(25), Freshness::Fresh),
            (BackupType::Diff, Duration::hours(49), Freshness::Aging),
            (BackupType::Log, Duration::minutes(20), Freshness::Fresh),
            (BackupType::Log, Duration::hours(2), Freshness::Aging),
            (BackupType::Log, Duration::hours(5), Freshness::Stale),
        ];
        for (backup_type, age, expected) in cases {
            let actual = classify(backup_type, Some(NOW - age), NOW);
            assert_eq!(actual, expected, "{backup_type} backup aged {age}");
        }
    }

    #[test]
    fn classify_marks_missing_backup() {
        assert_eq!(classify(BackupType::Log, None, NOW), Freshness::Missing);
    }

    #[test]
    fn age_shows_two_largest_units() {
        assert_eq!(format_age(Duration::seconds(42)), "42 s");
        assert_eq!(
            format_age(Duration::minutes(12) + Duration::seconds(5)),
            "12 min"
        );
        assert_eq!(format_age(Duration::minutes(312)), "5 h 12 min");
        assert_eq!(format_age(Duration::hours(76)), "3 d 4 h");
        assert_eq!(format_age(Duration::seconds(-5)), "in the future");
    }
}
