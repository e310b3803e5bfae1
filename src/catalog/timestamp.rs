//! Text forms of times in the catalogue: UTC RFC 3339 with milliseconds, and msdb's
//! server-local times without an offset.

use time::format_description::FormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

use super::CatalogError;

/// Fixed-width UTC form, so that text order is time order: `2024-05-01T10:00:00.123Z`.
const UTC_FORMAT: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// Server-local form without an offset, as msdb records backup start and finish.
const LOCAL_FORMAT: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]");

/// Formats `at` in UTC with millisecond precision.
pub(crate) fn format_utc(at: OffsetDateTime) -> String {
    at.to_offset(UtcOffset::UTC)
        .format(UTC_FORMAT)
        .expect("every UTC time in years 0-9999 formats")
}

/// Formats a server-local time with millisecond precision and no offset.
pub(crate) fn format_local(at: PrimitiveDateTime) -> String {
    at.format(LOCAL_FORMAT)
        .expect("every time in years 0-9999 formats")
}

/// Parses a stored UTC time; `table`, `column` and `row_id` name the value in the error.
pub(crate) fn parse_utc(
    table: &'static str,
    column: &'static str,
    row_id: i64,
    text: &str,
) -> Result<OffsetDateTime, CatalogError> {
    if let Some(at) = parse_utc_fixed(text) {
        return Ok(at);
    }
    PrimitiveDateTime::parse(text, UTC_FORMAT)
        .map(PrimitiveDateTime::assume_utc)
        .map_err(|error| invalid(table, column, row_id, text, error))
}

/// Reads [`UTC_FORMAT`] by byte position, the form every stored UTC time has, without
/// interpreting the format description per value as `time`'s parser does. A restore plan
/// parses one time per backup of the database, 10,000 and more. Returns `None` for any
/// other text, which the general parser then reads or rejects with its message.
fn parse_utc_fixed(text: &str) -> Option<OffsetDateTime> {
    let bytes = text.as_bytes();
    if bytes.len() != 24
        || bytes[4] != b'-'
        || bytes[7] != b'-'
        || bytes[10] != b'T'
        || bytes[13] != b':'
        || bytes[16] != b':'
        || bytes[19] != b'.'
        || bytes[23] != b'Z'
    {
        return None;
    }
    let number = |range: std::ops::Range<usize>| {
        bytes[range].iter().try_fold(0u32, |value, &byte| {
            byte.is_ascii_digit()
                .then(|| value * 10 + u32::from(byte - b'0'))
        })
    };
    let month = time::Month::try_from(u8::try_from(number(5..7)?).ok()?).ok()?;
    let date = time::Date::from_calendar_date(
        i32::try_from(number(0..4)?).ok()?,
        month,
        u8::try_from(number(8..10)?).ok()?,
    )
    .ok()?;
    let clock = time::Time::from_hms_milli(
        u8::try_from(number(11..13)?).ok()?,
        u8::try_from(number(14..16)?).ok()?,
        u8::try_from(number(17..19)?).ok()?,
        u16::try_from(number(20..23)?).ok()?,
    )
    .ok()?;
    Some(PrimitiveDateTime::new(date, clock).assume_utc())
}

/// Parses a stored server-local time; the arguments name the value in the error.
pub(crate) fn parse_local(
    table: &'static str,
    column: &'static str,
    row_id: i64,
    text: &str,
) -> Result<PrimitiveDateTime, CatalogError> {
    PrimitiveDateTime::parse(text, LOCAL_FORMAT)
        .map_err(|error| invalid(table, column, row_id, text, error))
}

/// Converts msdb's server-local `backup_finish` to UTC.
///
/// msdb's `backupset.time_zone` is the offset of server local time from UTC in 15-minute
/// steps, from -48 to +48, and 127 when unknown ("backupset (Transact-SQL)"). Returns
/// `None` when the offset is unknown or out of that range.
pub(crate) fn server_local_to_utc(
    local: PrimitiveDateTime,
    time_zone: Option<i16>,
) -> Option<OffsetDateTime> {
    let steps = time_zone.filter(|steps| (-48..=48).contains(steps))?;
    let offset = UtcOffset::from_whole_seconds(i32::from(steps) * 15 * 60).ok()?;
    Some(local.assume_offset(offset).to_offset(UtcOffset::UTC))
}

fn invalid(
    table: &'static str,
    column: &'static str,
    row_id: i64,
    text: &str,
    error: time::error::Parse,
) -> CatalogError {
    CatalogError::InvalidValue {
        table,
        column,
        row_id,
        value: text.to_string(),
        reason: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn utc_text_round_trips_with_millis() {
        let at = datetime!(2024-05-01 10:00:00.123456 +02:00);
        let text = format_utc(at);
        assert_eq!(text, "2024-05-01T08:00:00.123Z");
        let parsed = parse_utc("runs", "started_at", 1, &text).unwrap();
        assert_eq!(parsed, datetime!(2024-05-01 08:00:00.123 UTC));
    }

    #[test]
    fn fixed_utc_reader_matches_time_parser() {
        for text in [
            "2024-05-01T08:00:00.123Z",
            "0001-01-01T00:00:00.000Z",
            "9999-12-31T23:59:59.999Z",
            "2024-02-29T12:30:45.001Z",
        ] {
            let general = PrimitiveDateTime::parse(text, UTC_FORMAT)
                .unwrap()
                .assume_utc();
            assert_eq!(parse_utc_fixed(text), Some(general), "{text}");
        }
        for text in [
            "2023-02-29T12:30:45.001Z",
            "2024-13-01T00:00:00.000Z",
            "2024-05-01T24:00:00.000Z",
            "2024-05-01T08:00:00.12xZ",
            "2024-05-01 08:00:00.123Z",
            "2024-05-01T08:00:00Z",
        ] {
            assert_eq!(parse_utc_fixed(text), None, "{text}");
            assert!(parse_utc("runs", "started_at", 1, text).is_err(), "{text}");
        }
    }

    #[test]
    fn server_time_converts_with_msdb_offset() {
        let local = datetime!(2024-05-01 10:00:00);
        let utc = server_local_to_utc(local, Some(8)).unwrap();
        assert_eq!(utc, datetime!(2024-05-01 08:00:00 UTC));
        assert_eq!(server_local_to_utc(local, Some(127)), None);
        assert_eq!(server_local_to_utc(local, None), None);
    }
}
