//! The longest gap between two consecutive slots of a schedule, from which an RPO is
//! derived.
//!
//! Listing every slot of the window reads about 38,000 for a log backup every 15
//! minutes over 400 days. Most schedules repeat every day or every week, and their slots
//! then fall at the same times in every period that no clock change touches. For those,
//! listing the slots around each clock change and one stretch of three periods without
//! one gives the same longest gap from a few hundred slots.

use chrono::{DateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use time::{Duration, OffsetDateTime};

use crate::schedule::slots;

/// How far back the longest gap is sought. A yearly schedule has two slots within it.
pub(super) const GAP_WINDOW: Duration = Duration::days(400);

/// Maximum number of slots one search lists. A schedule every minute reaches it after
/// about 35 days of slots, which still shows every gap of a schedule that repeats daily
/// or weekly.
const MAX_GAP_SLOTS: usize = 50_000;

/// How often the zone's UTC offset is read to find clock changes. This assumes that no
/// zone of the tz database changes its clocks twice within six hours.
const OFFSET_PROBE: Duration = Duration::hours(6);

/// A UTC interval `(start, end]`.
type Span = (OffsetDateTime, OffsetDateTime);

/// Returns the longest gap between consecutive slots of `cron` (the parsed `expression`)
/// read in `zone`, among the slots of the [`GAP_WINDOW`] before `now`, or `None` when
/// there are fewer than two.
pub(super) fn longest_gap(
    cron: &croner::Cron,
    expression: &str,
    zone: Tz,
    now: OffsetDateTime,
) -> Option<Duration> {
    let window = (now - GAP_WINDOW, now);
    let spans = repeat_period(expression)
        .and_then(|period| periodic_spans(zone, window, period))
        .unwrap_or_else(|| vec![window]);
    longest_gap_in(cron, zone, &spans)
}

/// Returns the period after which the slots of `expression` fall on the same wall-clock
/// times again, when its day fields make it repeat daily or weekly. A day of month, a
/// month, or a day of week such as `5L` or `Fri#2` depends on the calendar, so those
/// schedules get `None` and are listed in full.
fn repeat_period(expression: &str) -> Option<Duration> {
    let fields: Vec<&str> = expression.split_whitespace().collect();
    let [_, _, _, day_of_month, month, day_of_week] = fields.as_slice() else {
        return None;
    };
    let any = |field: &str| field == "*" || field == "?";
    if !any(day_of_month) || !any(month) {
        return None;
    }
    if any(day_of_week) {
        return Some(Duration::DAY);
    }
    if day_of_week.contains(['#', 'L', 'l']) {
        return None;
    }
    Some(Duration::WEEK)
}

/// Returns the spans of `window` whose slots contain every gap of a schedule that repeats
/// every `period`: two periods and a probe on each side of every clock change, and three
/// periods without one. Every period of such a schedule has a slot, so its gaps are at
/// most a period and a clock change long. A gap across a clock change then lies within
/// the spans around it, and any other gap has a copy of the same length in the three
/// steady periods. `None` when the window has no such steady stretch.
fn periodic_spans(zone: Tz, window: Span, period: Duration) -> Option<Vec<Span>> {
    let (start, end) = window;
    let changes = clock_changes(zone, window);
    let steady = steady_stretch(&changes, window, period * 3)?;
    let margin: Duration = period * 2 + OFFSET_PROBE;
    let mut spans = vec![steady];
    for (before, after) in changes {
        spans.push(((before - margin).max(start), (after + margin).min(end)));
    }
    Some(merged(spans))
}

/// Returns the intervals `(before, after]` of `window` in which the zone's UTC offset
/// changes, each at most [`OFFSET_PROBE`] long.
fn clock_changes(zone: Tz, window: Span) -> Vec<Span> {
    let (start, end) = window;
    let mut changes = Vec::new();
    let mut probe = start;
    let mut offset = utc_offset(zone, probe);
    while probe < end {
        let next = (probe + OFFSET_PROBE).min(end);
        let next_offset = utc_offset(zone, next);
        if next_offset != offset {
            changes.push((probe, next));
        }
        (probe, offset) = (next, next_offset);
    }
    changes
}

fn utc_offset(zone: Tz, at: OffsetDateTime) -> i32 {
    let at = DateTime::<Utc>::from_timestamp(at.unix_timestamp(), 0).unwrap_or_default();
    zone.offset_from_utc_datetime(&at.naive_utc())
        .fix()
        .local_minus_utc()
}

/// Returns the latest span of `length` in `window` that no clock change touches.
fn steady_stretch(changes: &[Span], window: Span, length: Duration) -> Option<Span> {
    let (start, mut end) = window;
    while end - length >= start {
        let stretch = (end - length, end);
        match changes
            .iter()
            .filter(|change| change.0 < stretch.1 && change.1 > stretch.0)
            .map(|change| change.0)
            .min()
        {
            None => return Some(stretch),
            Some(change_start) => end = change_start,
        }
    }
    None
}

/// Sorts spans and joins those that overlap, so that no slot is listed twice.
fn merged(mut spans: Vec<Span>) -> Vec<Span> {
    spans.sort();
    let mut joined: Vec<Span> = Vec::with_capacity(spans.len());
    for span in spans {
        match joined.last_mut() {
            Some(last) if span.0 <= last.1 => last.1 = last.1.max(span.1),
            _ => joined.push(span),
        }
    }
    joined
}

/// Lists the slots of each span a day at a time, so that a schedule every few seconds
/// never keeps more than a day of slots at once, and returns the longest gap between
/// consecutive slots of one span.
// NOTE: a schedule that fires more than MAX_GAP_SLOTS times before its long gap (every
// second on one day a month) is measured on its first slots only.
pub(super) fn longest_gap_in(cron: &croner::Cron, zone: Tz, spans: &[Span]) -> Option<Duration> {
    let mut longest: Option<Duration> = None;
    let mut seen = 0;
    for &(start, end) in spans {
        let mut previous: Option<OffsetDateTime> = None;
        let mut from = start;
        while from < end && seen < MAX_GAP_SLOTS {
            let until = (from + Duration::DAY).min(end);
            for slot in slots(cron, zone, from, until) {
                if let Some(previous) = previous {
                    let gap = slot - previous;
                    longest = Some(longest.map_or(gap, |longest| longest.max(gap)));
                }
                previous = Some(slot);
                seen += 1;
            }
            from = until;
        }
    }
    longest
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::fleet::parse_cron;

    /// Schedules that repeat daily or weekly, with slots inside the hours that clocks skip
    /// or repeat (01:00-03:00 in Europe and North America, 02:00-02:30 on Lord Howe).
    const PERIODIC: [&str; 9] = [
        "0 */15 * * * *",
        "0 0 1 * * *",
        "0 30 2 * * *",
        "0 0 */6 * * *",
        "30 59 23 * * *",
        "0 0 1 * * Sun",
        "0 0 2 * * Mon-Sat",
        "0 */30 * * * Mon-Fri",
        "0 15 2 * * 1,3,5",
    ];

    #[test]
    fn periodic_schedules_match_full_listing() {
        let zones = [
            Tz::UTC,
            chrono_tz::Europe::Berlin,
            chrono_tz::America::New_York,
            chrono_tz::Australia::Lord_Howe,
            chrono_tz::America::Santiago,
        ];
        let nows = [
            datetime!(2026-03-29 01:30 UTC),
            datetime!(2026-11-01 06:10 UTC),
            datetime!(2026-12-05 21:00 UTC),
        ];
        for expression in PERIODIC {
            let cron = parse_cron(expression).expect("valid expression");
            for zone in zones {
                for now in nows {
                    let full = longest_gap_in(&cron, zone, &[(now - GAP_WINDOW, now)]);
                    let found = longest_gap(&cron, expression, zone, now);
                    assert_eq!(found, full, "{expression:?} in {zone} at {now}");
                }
            }
        }
    }

    #[test]
    fn clock_change_lengthens_daily_gap() {
        // Berlin moved its clocks forward on 2026-03-29, so the 01:00 slots of the 28th
        // and 29th are 23 hours apart and the autumn change makes one gap 25 hours.
        let cron = parse_cron("0 0 1 * * *").expect("valid expression");
        let now = datetime!(2026-12-05 21:00 UTC);
        let gap = longest_gap(&cron, "0 0 1 * * *", chrono_tz::Europe::Berlin, now);
        assert_eq!(gap, Some(Duration::hours(25)));
    }

    #[test]
    fn calendar_fields_are_listed_in_full() {
        for expression in [
            "0 0 2 1 * *",
            "0 0 1 * Jan *",
            "0 0 1 * * 5L",
            "0 0 1 * * Fri#2",
        ] {
            assert_eq!(repeat_period(expression), None, "{expression:?}");
        }
        assert_eq!(repeat_period("0 */15 * * * *"), Some(Duration::DAY));
        assert_eq!(repeat_period("0 0 1 ? * Sun"), Some(Duration::WEEK));
    }

    #[test]
    fn steady_stretch_avoids_clock_changes() {
        let end = datetime!(2026-12-05 00:00 UTC);
        let window = (end - Duration::days(30), end);
        let change = (
            end - Duration::days(2),
            end - Duration::days(2) + OFFSET_PROBE,
        );
        let stretch = steady_stretch(&[change], window, Duration::days(3));
        assert_eq!(stretch, Some((change.0 - Duration::days(3), change.0)));
        assert_eq!(steady_stretch(&[], window, Duration::days(31)), None);
    }
}
