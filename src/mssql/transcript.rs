//! A transcript of every batch bakfleet sends and the shape of every reply: result-set
//! columns with their types, row counts, and the server error. Taken against a real server
//! and against the simulator, two transcripts show where the simulator drifts.
//!
//! Recording is on when `BAKFLEET_TRANSCRIPT` names a file. Each entry is appended as one
//! JSON line, so several processes of one test run can share the file.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use serde::{Deserialize, Serialize};

/// The environment variable that turns recording on.
pub const TRANSCRIPT_VARIABLE: &str = "BAKFLEET_TRANSCRIPT";

/// One batch and its reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The statement label bakfleet uses in errors ("BACKUP", "sys.databases query", ...).
    pub label: String,
    pub statement: String,
    pub result_sets: Vec<ResultShape>,
    pub error: Option<ServerError>,
}

/// Columns and row count of one result set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultShape {
    pub columns: Vec<ColumnShape>,
    pub rows: usize,
}

/// A result-set column as the client saw it: name and TDS type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnShape {
    pub name: String,
    pub sql_type: String,
}

/// The first error the server sent for a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerError {
    pub number: u32,
    pub state: u8,
    pub class: u8,
    pub message: String,
}

/// The open transcript file of this process.
struct Recorder {
    file: Mutex<File>,
}

static RECORDER: OnceLock<Option<Recorder>> = OnceLock::new();

/// Appends an entry when recording is on. A failed write logs a warning and does not fail
/// the batch it describes.
pub fn record(entry: &Entry) {
    let recorder = RECORDER.get_or_init(open_from_environment);
    let Some(recorder) = recorder else {
        return;
    };
    let Ok(mut line) = serde_json::to_string(entry) else {
        return;
    };
    line.push('\n');
    let mut file = recorder
        .file
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Err(error) = file.write_all(line.as_bytes()) {
        tracing::warn!(%error, "could not append to the transcript");
    }
}

fn open_from_environment() -> Option<Recorder> {
    let path = PathBuf::from(std::env::var_os(TRANSCRIPT_VARIABLE)?);
    match OpenOptions::new().create(true).append(true).open(&path) {
        Ok(file) => Some(Recorder {
            file: Mutex::new(file),
        }),
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "cannot open the transcript; not recording");
            None
        }
    }
}

/// Reads a transcript file.
///
/// # Errors
/// The file cannot be read, or a line is not a transcript entry (the error names the line).
pub fn load(path: &Path) -> anyhow::Result<Vec<Entry>> {
    let file = File::open(path)
        .map_err(|error| anyhow::anyhow!("cannot open transcript {}: {error}", path.display()))?;
    let mut entries = Vec::new();
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let entry = serde_json::from_str(&line).map_err(|error| {
            anyhow::anyhow!(
                "{}:{}: not a transcript entry: {error}",
                path.display(),
                index + 1
            )
        })?;
        entries.push(entry);
    }
    Ok(entries)
}

/// Replaces what legitimately differs between two runs, so that only behaviour is
/// compared: string literals, bracketed identifiers and quoted names become `?`, and
/// digit runs become `0`.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                skip_quoted(&mut chars, c);
                out.push_str("'?'");
            }
            '[' => {
                skip_quoted(&mut chars, ']');
                out.push_str("[?]");
            }
            d if d.is_ascii_digit() => {
                while chars.peek().is_some_and(char::is_ascii_digit) {
                    chars.next();
                }
                out.push('0');
            }
            other => out.push(other),
        }
    }
    out
}

/// Skips to the closing `close`, treating a doubled `close` as an escaped one, as T-SQL does.
fn skip_quoted(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, close: char) {
    while let Some(c) = chars.next() {
        if c == close {
            if chars.peek() == Some(&close) {
                chars.next();
                continue;
            }
            return;
        }
    }
}

/// The label of progress polls. How many a run makes depends on timing, so [`diff`] leaves
/// them out.
pub const PROGRESS_LABEL: &str = "sys.dm_exec_requests query";

/// Lists the differences between two transcripts, entry by entry in order, after
/// [`normalize`] and without progress polls. An empty list means the servers behaved
/// alike.
pub fn diff(expected: &[Entry], actual: &[Entry]) -> Vec<String> {
    let expected = without_progress(expected);
    let actual = without_progress(actual);
    let mut differences = Vec::new();
    for (index, pair) in expected.iter().zip(&actual).enumerate() {
        let (left, right) = pair;
        let at = format!("entry {} ({})", index + 1, left.label);
        if normalize(&left.statement) != normalize(&right.statement) {
            differences.push(format!(
                "{at}: statement differs:\n  - {}\n  + {}",
                left.statement, right.statement
            ));
            continue;
        }
        compare_results(&at, left, right, &mut differences);
        compare_errors(&at, &left.error, &right.error, &mut differences);
    }
    if expected.len() != actual.len() {
        differences.push(format!(
            "the transcripts have {} and {} entries",
            expected.len(),
            actual.len()
        ));
    }
    differences
}

fn without_progress(entries: &[Entry]) -> Vec<&Entry> {
    entries
        .iter()
        .filter(|entry| entry.label != PROGRESS_LABEL)
        .collect()
}

fn compare_results(at: &str, left: &Entry, right: &Entry, differences: &mut Vec<String>) {
    if left.result_sets.len() != right.result_sets.len() {
        differences.push(format!(
            "{at}: {} result sets against {}",
            left.result_sets.len(),
            right.result_sets.len()
        ));
        return;
    }
    for (set, (a, b)) in left.result_sets.iter().zip(&right.result_sets).enumerate() {
        if a.columns != b.columns {
            differences.push(format!(
                "{at}: result set {} columns differ:\n  - {}\n  + {}",
                set + 1,
                describe_columns(&a.columns),
                describe_columns(&b.columns)
            ));
        }
    }
}

fn compare_errors(
    at: &str,
    left: &Option<ServerError>,
    right: &Option<ServerError>,
    differences: &mut Vec<String>,
) {
    let same = match (left, right) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            a.number == b.number
                && a.state == b.state
                && a.class == b.class
                && normalize(&a.message) == normalize(&b.message)
        }
        _ => false,
    };
    if !same {
        differences.push(format!(
            "{at}: error differs:\n  - {}\n  + {}",
            describe_error(left),
            describe_error(right)
        ));
    }
}

fn describe_columns(columns: &[ColumnShape]) -> String {
    columns
        .iter()
        .map(|column| format!("{} {}", column.name, column.sql_type))
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe_error(error: &Option<ServerError>) -> String {
    match error {
        None => "no error".to_string(),
        Some(error) => format!(
            "{} (severity {}, state {}): {}",
            error.number, error.class, error.state, error.message
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(statement: &str, error: Option<ServerError>) -> Entry {
        Entry {
            label: "BACKUP".to_string(),
            statement: statement.to_string(),
            result_sets: Vec::new(),
            error,
        }
    }

    fn error_3201(os_error: &str) -> ServerError {
        ServerError {
            number: 3201,
            state: 1,
            class: 16,
            message: format!("Cannot open backup device 'x'. Operating system error {os_error}."),
        }
    }

    #[test]
    fn normalize_hides_names_paths_and_numbers() {
        assert_eq!(
            normalize(
                "BACKUP DATABASE [a]]b] TO DISK = N'C:\\it''s_20261204.bak' WITH STATS = 10;"
            ),
            "BACKUP DATABASE [?] TO DISK = N'?' WITH STATS = 0;"
        );
    }

    #[test]
    fn diff_alike_transcripts_is_empty() {
        let left = vec![entry("BACKUP DATABASE [x] TO DISK = N'a';", None)];
        let right = vec![entry("BACKUP DATABASE [y] TO DISK = N'b';", None)];
        assert!(diff(&left, &right).is_empty());
    }

    #[test]
    fn diff_reports_other_error_text() {
        let left = vec![entry(
            "BACKUP",
            Some(error_3201("3(The system cannot find the path specified.)")),
        )];
        let right = vec![entry("BACKUP", Some(error_3201("5(Access is denied.)")))];
        let differences = diff(&left, &right);
        assert_eq!(differences.len(), 1, "{differences:?}");
        assert!(
            differences[0].contains("Access is denied"),
            "{differences:?}"
        );
    }

    #[test]
    fn diff_reports_column_type_change() {
        let column = |sql_type: &str| ColumnShape {
            name: "first_lsn".to_string(),
            sql_type: sql_type.to_string(),
        };
        let mut left = entry("SELECT first_lsn FROM msdb.dbo.backupset;", None);
        let mut right = left.clone();
        left.result_sets = vec![ResultShape {
            columns: vec![column("Numericn")],
            rows: 1,
        }];
        right.result_sets = vec![ResultShape {
            columns: vec![column("Intn")],
            rows: 1,
        }];
        let differences = diff(&[left], &[right]);
        assert_eq!(differences.len(), 1, "{differences:?}");
        assert!(differences[0].contains("Intn"), "{differences:?}");
    }
}
