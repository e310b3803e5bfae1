//! The Prometheus text exposition format (version 0.0.4) for `/metrics`.
//!
//! Every value is read at scrape time from the catalogue, the job limits and the store,
//! so run counters survive restarts and several processes over one catalogue agree. The
//! `metrics` crate's in-process counters were left out for that reason.

use std::fmt::Write as _;

/// Content type of the text format, as Prometheus expects it.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Kind of a metric family, written on its `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
}

/// One sample: label pairs and a value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Vec<(&'static str, String)>,
    pub value: f64,
}

/// A metric family: name, help text, kind and samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub samples: Vec<Sample>,
}

impl Family {
    /// Starts a family without samples.
    pub fn new(name: &'static str, help: &'static str, kind: Kind) -> Family {
        Family {
            name,
            help,
            kind,
            samples: Vec::new(),
        }
    }

    /// Adds a sample with `labels`.
    pub fn push(&mut self, labels: Vec<(&'static str, String)>, value: f64) {
        self.samples.push(Sample { labels, value });
    }
}

/// Writes families in the text format: `# HELP`, `# TYPE`, then one line per sample.
pub fn render(families: &[Family]) -> String {
    let mut text = String::new();
    for family in families {
        let kind = match family.kind {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
        };
        // Writing to a String cannot fail.
        let _ = writeln!(text, "# HELP {} {}", family.name, family.help);
        let _ = writeln!(text, "# TYPE {} {kind}", family.name);
        for sample in &family.samples {
            text.push_str(family.name);
            write_labels(&mut text, &sample.labels);
            let _ = writeln!(text, " {}", format_value(sample.value));
        }
    }
    text
}

fn write_labels(text: &mut String, labels: &[(&'static str, String)]) {
    if labels.is_empty() {
        return;
    }
    text.push('{');
    for (index, (name, value)) in labels.iter().enumerate() {
        if index > 0 {
            text.push(',');
        }
        let _ = write!(text, "{name}=\"{}\"", escape_label(value));
    }
    text.push('}');
}

/// Escapes a label value: backslash, double quote and line feed, as the format requires.
fn escape_label(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            c => escaped.push(c),
        }
    }
    escaped
}

fn format_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_string()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_escapes_label_values() {
        let mut family = Family::new("bakfleet_test", "A test gauge.", Kind::Gauge);
        family.push(vec![("database", "a\"b\\c\nd".to_string())], 1.5);
        let text = render(&[family]);
        assert_eq!(
            text,
            "# HELP bakfleet_test A test gauge.\n# TYPE bakfleet_test gauge\n\
             bakfleet_test{database=\"a\\\"b\\\\c\\nd\"} 1.5\n"
        );
    }

    #[test]
    fn render_writes_unlabelled_counter() {
        let mut family = Family::new("bakfleet_runs_total", "Runs.", Kind::Counter);
        family.push(Vec::new(), 3.0);
        let text = render(&[family]);
        assert!(text.contains("# TYPE bakfleet_runs_total counter\n"));
        assert!(text.ends_with("bakfleet_runs_total 3\n"));
    }
}
