//! Cron schedules per backup type, parsed with croner.

use std::time::Duration;

use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;
use toml::Spanned;

use super::error::Diagnostics;
use super::policy::parse_duration;
use super::raw::RawSchedules;
use crate::backup::BackupType;

/// The cron expression for each backup type; `None` disables that type.
///
/// Expressions have six fields: second, minute, hour, day of month, month, day of week,
/// read in the policy's time zone. They were accepted by [`parse_cron`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedules {
    pub full: Option<String>,
    pub diff: Option<String>,
    pub log: Option<String>,
    /// Window after each slot over which the instances' start times are spread; zero
    /// starts every instance at the slot. The scheduler gives each instance a fixed offset
    /// within it, so a fleet of thousands does not queue all its runs in one second.
    pub spread: Duration,
}

impl Schedules {
    /// Returns the cron expression of `backup_type`, or `None` when that type is disabled.
    pub fn for_type(&self, backup_type: BackupType) -> Option<&str> {
        let schedule = match backup_type {
            BackupType::Full => &self.full,
            BackupType::Diff => &self.diff,
            BackupType::Log => &self.log,
        };
        schedule.as_deref()
    }

    /// Weekly full at 01:00 on Sunday, differential at 01:00 on the other days, log
    /// every 15 minutes.
    pub(crate) fn built_in() -> Schedules {
        Schedules {
            full: Some("0 0 1 * * Sun".to_string()),
            diff: Some("0 0 1 * * Mon-Sat".to_string()),
            log: Some("0 */15 * * * *".to_string()),
            spread: Duration::ZERO,
        }
    }

    /// Returns `base` with the types that `raw` sets replaced; reports invalid ones under
    /// `key_prefix` (e.g. `defaults.schedule.`) and keeps the base value for them.
    pub(crate) fn merge(
        base: &Schedules,
        raw: Option<&RawSchedules>,
        diagnostics: &mut Diagnostics,
        key_prefix: &str,
    ) -> Schedules {
        let Some(raw) = raw else {
            return base.clone();
        };
        let mut merge_one =
            |name: &str, base: &Option<String>, value: &Option<Spanned<String>>| match value {
                None => base.clone(),
                Some(value) => {
                    let key = format!("{key_prefix}{name}");
                    parse_schedule(diagnostics, &key, value).unwrap_or_else(|| base.clone())
                }
            };
        let full = merge_one("full", &base.full, &raw.full);
        let diff = merge_one("diff", &base.diff, &raw.diff);
        let log = merge_one("log", &base.log, &raw.log);
        let spread = match &raw.spread {
            None => base.spread,
            Some(value) => {
                let key = format!("{key_prefix}spread");
                parse_spread(diagnostics, &key, value).unwrap_or(base.spread)
            }
        };
        Schedules {
            full,
            diff,
            log,
            spread,
        }
    }
}

/// Reads `spread`: a duration such as `10m`, or `"off"` for none. It must be shorter
/// than a day, the gap of a daily schedule.
fn parse_spread(
    diagnostics: &mut Diagnostics,
    key: &str,
    value: &Spanned<String>,
) -> Option<Duration> {
    let text = value.get_ref().trim();
    if text.is_empty() || text.eq_ignore_ascii_case("off") {
        return Some(Duration::ZERO);
    }
    let problem = match parse_duration(text) {
        Ok(spread) if spread < MAX_SPREAD => return Some(spread),
        Ok(_) => "it is a day or longer".to_string(),
        Err(reason) => reason,
    };
    let message = format!("invalid spread {text:?}: {problem}");
    let hint = "write a duration shorter than the schedule's shortest gap, e.g. \"10m\" \
                for log backups every 15 minutes, or \"off\"";
    diagnostics.report(value.span().start, key, message, hint);
    None
}

/// Longest `spread` accepted (exclusive): one day.
const MAX_SPREAD: Duration = Duration::from_secs(86_400);

/// Returns `Some(None)` for `""` or `"off"`, `Some(Some(expression))` for a valid cron
/// expression, and `None` after reporting an invalid one.
fn parse_schedule(
    diagnostics: &mut Diagnostics,
    key: &str,
    value: &Spanned<String>,
) -> Option<Option<String>> {
    let expression = value.get_ref().trim();
    if expression.is_empty() || expression.eq_ignore_ascii_case("off") {
        return Some(None);
    }
    match validate_cron(expression) {
        Ok(()) => Some(Some(expression.to_string())),
        Err(reason) => {
            let message = format!("invalid cron expression {expression:?}: {reason}");
            let hint = "write 6 fields: second minute hour day-of-month month day-of-week, \
                        e.g. \"0 0 1 * * Sun\" for 01:00 every Sunday, or \"off\" to disable";
            diagnostics.report(value.span().start, key, message, hint);
            None
        }
    }
}

/// Checks an expression the way [`parse_cron`] reads it.
pub(crate) fn validate_cron(expression: &str) -> Result<(), String> {
    parse_cron(expression).map(|_| ())
}

/// Parses a six-field expression: seconds required, a seventh field (year) rejected, and
/// day of month and day of week both required to match when both are set.
pub fn parse_cron(expression: &str) -> Result<Cron, String> {
    let fields = expression.split_whitespace().count();
    if fields != 6 {
        return Err(format!("it has {fields} fields, expected 6"));
    }
    let parser = CronParser::builder()
        .seconds(Seconds::Required)
        .year(Year::Disallowed)
        .dom_and_dow(true)
        .build();
    parser.parse(expression).map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_accepts_documented_examples() {
        for expression in ["0 0 1 * * Sun", "0 0 1 * * Mon-Sat", "0 */15 * * * *"] {
            assert_eq!(validate_cron(expression), Ok(()), "{expression}");
        }
    }

    #[test]
    fn cron_rejects_five_fields() {
        let error = validate_cron("0 1 * * *").unwrap_err();
        assert!(error.contains("5 fields"), "{error}");
    }

    #[test]
    fn cron_rejects_out_of_range_hour() {
        assert!(validate_cron("0 0 25 * * *").is_err());
    }

    #[test]
    fn for_type_returns_each_schedule() {
        let schedules = Schedules {
            full: Some("0 0 1 * * Sun".to_string()),
            diff: None,
            log: Some("0 */5 * * * *".to_string()),
            spread: Duration::ZERO,
        };
        assert_eq!(schedules.for_type(BackupType::Full), Some("0 0 1 * * Sun"));
        assert_eq!(schedules.for_type(BackupType::Diff), None);
        assert_eq!(schedules.for_type(BackupType::Log), Some("0 */5 * * * *"));
    }
}
