//! Page templates, embedded in the binary so that it serves them from any working
//! directory, and the filters they use.

use minijinja::{Environment, Value};
use time::format_description::well_known::Rfc3339;
use time::format_description::FormatItem;
use time::macros::format_description;
use time::OffsetDateTime;

/// Template names and sources. Names end in `.html`, which turns on minijinja's HTML
/// auto-escaping for them.
const TEMPLATES: [(&str, &str); 15] = [
    ("base.html", include_str!("../../templates/base.html")),
    (
        "overview.html",
        include_str!("../../templates/overview.html"),
    ),
    (
        "database.html",
        include_str!("../../templates/database.html"),
    ),
    ("backup.html", include_str!("../../templates/backup.html")),
    ("runs.html", include_str!("../../templates/runs.html")),
    (
        "runs_table.html",
        include_str!("../../templates/runs_table.html"),
    ),
    ("run.html", include_str!("../../templates/run.html")),
    ("error.html", include_str!("../../templates/error.html")),
    ("queue.html", include_str!("../../templates/queue.html")),
    ("restore.html", include_str!("../../templates/restore.html")),
    ("login.html", include_str!("../../templates/login.html")),
    ("users.html", include_str!("../../templates/users.html")),
    ("audit.html", include_str!("../../templates/audit.html")),
    (
        "protection_cell.html",
        include_str!("../../templates/protection_cell.html"),
    ),
    ("storage.html", include_str!("../../templates/storage.html")),
];

/// The stylesheet served at `/static/site.css`.
pub(super) const STYLESHEET: &str = include_str!("../../templates/site.css");

/// Builds the template environment with the site's filters.
pub(super) fn environment() -> Environment<'static> {
    let mut environment = Environment::new();
    for (name, source) in TEMPLATES {
        environment
            .add_template(name, source)
            .unwrap_or_else(|error| panic!("embedded template {name} is invalid: {error:#}"));
    }
    environment
        .add_template("runs_live.html", super::live::TEMPLATE)
        .unwrap_or_else(|error| panic!("embedded template runs_live.html is invalid: {error:#}"));

    environment.add_filter("path_segment", path_segment);
    environment.add_filter("bytes", format_bytes);
    environment.add_filter("datetime", format_datetime);
    environment.add_filter("time_of_day", format_time_of_day);
    environment.add_filter("duration_ms", format_duration_ms);
    environment.add_filter("msdb_time_zone", format_msdb_time_zone);
    environment.add_filter("truncate", truncate);
    environment
}

/// Percent-encodes text for one URL path segment: every byte but the unreserved
/// characters of RFC 3986 (letters, digits, `-`, `.`, `_`, `~`).
///
/// Database names may contain `/`, `]`, `'`, spaces and any Unicode character, and each
/// of them must stay inside its segment.
pub(super) fn path_segment(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// Formats a byte count in binary units with one decimal, such as `1.5 MiB`.
pub(super) fn format_bytes(value: Value) -> String {
    let Some(bytes) = value.as_i64().and_then(|bytes| u64::try_from(bytes).ok()) else {
        return value.to_string();
    };

    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1024.0 && unit + 1 < UNITS.len() {
        size /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{size:.1} {}", UNITS[unit])
    }
}

/// Formats an RFC 3339 time as `2024-05-01 10:00:00 UTC`; other text passes unchanged.
fn format_datetime(text: &str) -> String {
    format_in_utc(
        text,
        format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC"),
    )
}

/// Formats an RFC 3339 time as its UTC time of day with milliseconds, `10:00:02.145`,
/// for lines of one run, which rarely cross a day.
fn format_time_of_day(text: &str) -> String {
    format_in_utc(
        text,
        format_description!("[hour]:[minute]:[second].[subsecond digits:3]"),
    )
}

/// Parses `text` as RFC 3339 and formats it in UTC with `format`; text that does not
/// parse passes unchanged.
fn format_in_utc(text: &str, format: &[FormatItem<'_>]) -> String {
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .and_then(|at| at.to_offset(time::UtcOffset::UTC).format(format).ok())
        .unwrap_or_else(|| text.to_string())
}

/// Formats milliseconds as `1 h 2 min`, `3 min 4 s` or `5.6 s`.
fn format_duration_ms(value: Value) -> String {
    let Some(ms) = value.as_i64() else {
        return value.to_string();
    };

    let seconds = ms / 1000;
    if seconds >= 3600 {
        format!("{} h {} min", seconds / 3600, seconds % 3600 / 60)
    } else if seconds >= 60 {
        format!("{} min {} s", seconds / 60, seconds % 60)
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

/// Formats msdb's `time_zone` (15-minute steps from UTC, 127 for unknown) as `UTC+02:00`.
fn format_msdb_time_zone(value: Value) -> String {
    let steps = value.as_i64().filter(|steps| (-48..=48).contains(steps));
    let Some(steps) = steps else {
        return "unknown".to_string();
    };

    let minutes = steps * 15;
    let sign = if minutes < 0 { '-' } else { '+' };
    let minutes = minutes.abs();
    format!("UTC{sign}{:02}:{:02}", minutes / 60, minutes % 60)
}

/// Shortens text to at most `max_chars` characters, ending a shortened text with `…`,
/// as Jinja's `truncate` filter does.
fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let prefix: String = text.chars().take(max_chars.saturating_sub(1)).collect();
    format!("{prefix}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segment_encodes_reserved_bytes() {
        assert_eq!(path_segment("orders"), "orders");
        assert_eq!(path_segment("a]b's c/d"), "a%5Db%27s%20c%2Fd");
        assert_eq!(path_segment("Bestellungen-ä"), "Bestellungen-%C3%A4");
    }

    #[test]
    fn bytes_use_binary_units() {
        assert_eq!(format_bytes(Value::from(512)), "512 B");
        assert_eq!(format_bytes(Value::from(1_572_864)), "1.5 MiB");
    }

    #[test]
    fn duration_picks_readable_units() {
        assert_eq!(format_duration_ms(Value::from(5_600)), "5.6 s");
        assert_eq!(format_duration_ms(Value::from(184_000)), "3 min 4 s");
        assert_eq!(format_duration_ms(Value::from(3_720_000)), "1 h 2 min");
    }

    #[test]
    fn time_zone_shows_utc_offset() {
        assert_eq!(format_msdb_time_zone(Value::from(8)), "UTC+02:00");
        assert_eq!(format_msdb_time_zone(Value::from(-14)), "UTC-03:30");
        assert_eq!(format_msdb_time_zone(Value::from(127)), "unknown");
        assert_eq!(format_msdb_time_zone(Value::from(())), "unknown");
    }

    #[test]
    fn truncate_keeps_short_text() {
        assert_eq!(truncate("error 3201", 20), "error 3201");
        assert_eq!(truncate("abcdef", 4), "abc…");
    }

    #[test]
    fn templates_all_parse() {
        let environment = environment();
        for (name, _) in TEMPLATES {
            assert!(environment.get_template(name).is_ok(), "template {name}");
        }
    }
}
