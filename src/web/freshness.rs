//! Ages of backups and RPOs as the pages show them. Whether an age is within its RPO is
//! decided by [`crate::protection`].

use time::Duration;

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
