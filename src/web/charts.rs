//! Charts as inline SVG rendered on the server: no script, no request to another host.
//! Every label passes through [`escape`], because database names may contain markup.

use std::fmt::Write as _;

use time::{Duration, OffsetDateTime};

use crate::backup::BackupType;
use crate::protection::{DatabaseProtection, ProtectionState};

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 200.0;
/// Room left of the plot for the y-axis labels, and below it for the dates.
const MARGIN_LEFT: f64 = 70.0;
const MARGIN_BOTTOM: f64 = 24.0;
const MARGIN_TOP: f64 = 10.0;
const MARGIN_RIGHT: f64 = 10.0;

/// Side of one database's square in the heat map, in pixels.
const CELL: f64 = 14.0;
/// Squares per heat-map row before it wraps.
const CELLS_PER_ROW: usize = 40;
/// Width of the instance names left of the heat map.
const HEAT_LABEL_WIDTH: f64 = 160.0;

/// One point of a time series: one value that stands for `count` backups or runs of
/// one type, the newest of which is at `at`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Point {
    pub at: OffsetDateTime,
    pub value: f64,
    pub backup_type: BackupType,
    pub count: u64,
}

/// Escapes text for an XML attribute or text node.
pub(super) fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            _ => escaped.push(character),
        }
    }
    escaped
}

fn type_colour(backup_type: BackupType) -> &'static str {
    match backup_type {
        BackupType::Full => "#1f5fa8",
        BackupType::Diff => "#3f9c3f",
        BackupType::Log => "#c77d12",
    }
}

/// Renders a scatter chart of `points` over `[from, until]`, one colour per backup type,
/// with the y axis from 0 to the largest value. `label` names the chart for screen
/// readers, `summary` names how a point of several values was formed (such as
/// "largest"), and `format` writes a y value, such as a size in MiB.
pub(super) fn time_series(
    label: &str,
    summary: &str,
    points: &[Point],
    from: OffsetDateTime,
    until: OffsetDateTime,
    format: impl Fn(f64) -> String,
) -> String {
    let plot_width = WIDTH - MARGIN_LEFT - MARGIN_RIGHT;
    let plot_height = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM;
    let max_value = points
        .iter()
        .map(|point| point.value)
        .filter(|value| value.is_finite())
        .fold(0.0_f64, f64::max);
    let span = (until - from).as_seconds_f64().max(1.0);
    let x = |at: OffsetDateTime| MARGIN_LEFT + (at - from).as_seconds_f64() / span * plot_width;
    let y = |value: f64| {
        let share = if max_value > 0.0 {
            value / max_value
        } else {
            0.0
        };
        MARGIN_TOP + plot_height * (1.0 - share)
    };

    let mut svg = open_svg(label, WIDTH, HEIGHT);
    let bottom = MARGIN_TOP + plot_height;
    let right = MARGIN_LEFT + plot_width;
    let _ = write!(
        svg,
        "<line x1=\"{MARGIN_LEFT}\" y1=\"{bottom}\" x2=\"{right}\" y2=\"{bottom}\" stroke=\"#999\"/>\
         <line x1=\"{MARGIN_LEFT}\" y1=\"{MARGIN_TOP}\" x2=\"{MARGIN_LEFT}\" y2=\"{bottom}\" stroke=\"#999\"/>"
    );
    axis_text(
        &mut svg,
        MARGIN_LEFT - 4.0,
        MARGIN_TOP + 10.0,
        "end",
        &format(max_value),
    );
    axis_text(&mut svg, MARGIN_LEFT - 4.0, bottom, "end", &format(0.0));
    axis_text(&mut svg, MARGIN_LEFT, HEIGHT - 6.0, "start", &date(from));
    axis_text(&mut svg, right, HEIGHT - 6.0, "end", &date(until));
    if points.is_empty() {
        let middle = MARGIN_LEFT + plot_width / 2.0;
        axis_text(
            &mut svg,
            middle,
            MARGIN_TOP + plot_height / 2.0,
            "middle",
            "no data",
        );
    }
    for point in points.iter().filter(|point| point.value.is_finite()) {
        let how = if point.count > 1 {
            format!("{summary} of {}: ", point.count)
        } else {
            String::new()
        };
        let _ = write!(
            svg,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{}\"><title>{} {}: {}{}</title></circle>",
            x(point.at),
            y(point.value),
            type_colour(point.backup_type),
            escape(point.backup_type.as_str()),
            escape(&date_time(point.at)),
            escape(&how),
            escape(&format(point.value)),
        );
    }
    legend(&mut svg, right);
    svg.push_str("</svg>");
    svg
}

/// Renders one square per database, a row per instance, coloured by the ratio of the
/// age of its newest backup to the RPO, over all scheduled types (the worst counts).
pub(super) fn heat_map(protections: &[DatabaseProtection], now: OffsetDateTime) -> String {
    let mut rows: Vec<(&str, Vec<&DatabaseProtection>)> = Vec::new();
    for protection in protections {
        match rows.last_mut() {
            Some((instance, databases)) if *instance == protection.instance => {
                databases.push(protection);
            }
            _ => rows.push((&protection.instance, vec![protection])),
        }
    }
    let lines: usize = rows
        .iter()
        .map(|(_, databases)| databases.len().div_ceil(CELLS_PER_ROW).max(1))
        .sum();
    let width = HEAT_LABEL_WIDTH + CELL * CELLS_PER_ROW as f64;
    let height = CELL * lines.max(1) as f64 + 4.0;
    let mut svg = open_svg("Age of the newest backups against their RPO", width, height);
    let mut line = 0usize;
    for (instance, databases) in &rows {
        let top = CELL * line as f64;
        axis_text(
            &mut svg,
            HEAT_LABEL_WIDTH - 6.0,
            top + CELL - 3.0,
            "end",
            instance,
        );
        for (index, database) in databases.iter().enumerate() {
            let column = index % CELLS_PER_ROW;
            let row = index / CELLS_PER_ROW;
            let (colour, summary) = heat(database, now);
            let _ = write!(
                svg,
                "<rect x=\"{:.0}\" y=\"{:.0}\" width=\"{}\" height=\"{}\" fill=\"{colour}\" \
                 stroke=\"#fff\"><title>{} on {}: {}</title></rect>",
                HEAT_LABEL_WIDTH + CELL * column as f64,
                top + CELL * row as f64,
                CELL,
                CELL,
                escape(&database.database),
                escape(&database.instance),
                escape(&summary),
            );
        }
        line += databases.len().div_ceil(CELLS_PER_ROW).max(1);
    }
    svg.push_str("</svg>");
    svg
}

/// Returns the colour and the hover text of one database: green up to half the RPO,
/// light green up to the RPO, orange up to twice the RPO, red beyond, dark red missing.
fn heat(database: &DatabaseProtection, now: OffsetDateTime) -> (&'static str, String) {
    if database.state == ProtectionState::Missing {
        return ("#8e1b1b", "missing".to_string());
    }
    let ratio = database
        .types
        .iter()
        .filter_map(|entry| {
            let age = now - entry.last_good?;
            let rpo = entry.rpo?;
            (rpo > Duration::ZERO).then(|| age.as_seconds_f64() / rpo.as_seconds_f64())
        })
        .fold(0.0_f64, f64::max);
    let colour = if ratio <= 0.5 {
        "#2e7d32"
    } else if ratio <= 1.0 {
        "#8bc34a"
    } else if ratio <= 2.0 {
        "#f0a020"
    } else {
        "#d32f2f"
    };
    let percent = (ratio * 100.0).round();
    (
        colour,
        format!("{} at {percent}% of the RPO", database.state.as_str()),
    )
}

fn open_svg(label: &str, width: f64, height: f64) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"{}\" \
         width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" \
         font-family=\"sans-serif\" font-size=\"11\">",
        escape(label)
    )
}

fn axis_text(svg: &mut String, x: f64, y: f64, anchor: &str, text: &str) {
    let _ = write!(
        svg,
        "<text x=\"{x:.1}\" y=\"{y:.1}\" text-anchor=\"{anchor}\" fill=\"#444\">{}</text>",
        escape(text)
    );
}

fn legend(svg: &mut String, right: f64) {
    for (index, backup_type) in BackupType::ALL.into_iter().enumerate() {
        let x = right - 150.0 + 50.0 * index as f64;
        let _ = write!(
            svg,
            "<circle cx=\"{x:.1}\" cy=\"{MARGIN_TOP}\" r=\"4\" fill=\"{}\"/>",
            type_colour(backup_type)
        );
        axis_text(
            svg,
            x + 7.0,
            MARGIN_TOP + 4.0,
            "start",
            backup_type.as_str(),
        );
    }
}

fn date(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!("{}-{:02}-{:02}", at.year(), u8::from(at.month()), at.day())
}

fn date_time(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!("{} {:02}:{:02} UTC", date(at), at.hour(), at.minute())
}

/// Formats bytes in binary units with one decimal, such as `1.5 MiB`, as the pages'
/// `bytes` filter does.
pub(super) fn format_bytes(bytes: f64) -> String {
    // The cast saturates: NaN and negative values become 0.
    super::templates::format_bytes(minijinja::Value::from(bytes as u64))
}

/// Formats seconds as `250 ms`, `4.2 s`, `42 s`, `3.5 min` or `1.2 h`, so that the axis
/// of runs shorter than a second does not read `0 s` at both ends.
pub(super) fn format_seconds(seconds: f64) -> String {
    if seconds < 1.0 {
        format!("{:.0} ms", seconds * 1000.0)
    } else if seconds < 10.0 {
        format!("{seconds:.1} s")
    } else if seconds < 120.0 {
        format!("{seconds:.0} s")
    } else if seconds < 7200.0 {
        format!("{:.1} min", seconds / 60.0)
    } else {
        format!("{:.1} h", seconds / 3600.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-06-03 12:00 UTC);

    #[test]
    fn escape_covers_markup_characters() {
        assert_eq!(escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&#39;");
    }

    #[test]
    fn time_series_escapes_labels() {
        let points = [Point {
            at: NOW - Duration::days(1),
            value: 2048.0,
            backup_type: BackupType::Full,
            count: 1,
        }];
        let svg = time_series(
            "size of <x>",
            "largest",
            &points,
            NOW - Duration::days(2),
            NOW,
            format_bytes,
        );
        assert!(
            svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
            "{svg}"
        );
        assert!(svg.contains("size of &lt;x&gt;"), "{svg}");
        assert!(svg.contains("2.0 KiB"), "{svg}");
        assert!(svg.ends_with("</svg>"), "{svg}");
    }

    #[test]
    fn time_series_titles_summed_points() {
        let points = [Point {
            at: NOW - Duration::days(1),
            value: 3.0,
            backup_type: BackupType::Log,
            count: 48,
        }];
        let svg = time_series(
            "durations",
            "longest",
            &points,
            NOW - Duration::days(2),
            NOW,
            format_seconds,
        );
        assert!(svg.contains("longest of 48: 3.0 s"), "{svg}");
    }

    #[test]
    fn time_series_marks_empty_data() {
        let svg = time_series(
            "runs",
            "longest",
            &[],
            NOW - Duration::days(2),
            NOW,
            format_seconds,
        );
        assert!(svg.contains("no data"), "{svg}");
    }

    #[test]
    fn seconds_pick_readable_unit() {
        assert_eq!(format_seconds(0.25), "250 ms");
        assert_eq!(format_seconds(4.2), "4.2 s");
        assert_eq!(format_seconds(42.0), "42 s");
        assert_eq!(format_seconds(210.0), "3.5 min");
        assert_eq!(format_seconds(4.0 * 3600.0), "4.0 h");
    }
}
