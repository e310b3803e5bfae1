//! Checks docs/faults.md against the tests: every test the table names exists, every
//! `fault_*` test is in the table, and the counts line matches the rows.

use std::path::{Path, PathBuf};

/// Prefix of the fault tests, which the table must list.
const FAULT_PREFIX: &str = "fault_";

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Reads every `.rs` file under `dir`, recursively.
fn read_sources(dir: &Path, sources: &mut Vec<(PathBuf, String)>) {
    let entries = std::fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("cannot list {}: {error}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            read_sources(&path, sources);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
            sources.push((path, text));
        }
    }
}

/// Returns the names of the functions `text` defines as `fn NAME(`.
fn function_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    for line in text.lines() {
        let Some((_, after)) = line.split_once("fn ") else {
            continue;
        };
        let name: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() && after[name.len()..].starts_with('(') {
            names.push(name);
        }
    }
    names
}

/// The table of docs/faults.md: the test column of every row, and the counts line.
struct FaultTable {
    tests: Vec<String>,
    counts: String,
}

fn read_table() -> FaultTable {
    let path = repository().join("docs/faults.md");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    let mut tests = Vec::new();
    let mut counts = None;
    for line in text.lines() {
        if line.starts_with("Faults injected:") {
            counts = Some(line.to_string());
        }
        if !line.starts_with("| ") || line.starts_with("| fault |") || line.starts_with("| ---") {
            continue;
        }
        let cells: Vec<&str> = line.trim_matches('|').split(" | ").collect();
        assert_eq!(cells.len(), 4, "a row has four cells: {line}");
        tests.push(cells[3].trim().trim_matches('`').to_string());
    }
    FaultTable {
        tests,
        counts: counts.expect("docs/faults.md has a line starting \"Faults injected:\""),
    }
}

/// Reads the number after `label` in the counts line.
fn count_after(counts: &str, label: &str) -> usize {
    let (_, after) = counts
        .split_once(label)
        .unwrap_or_else(|| panic!("the counts line has no {label:?}: {counts}"));
    after
        .trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|digits| digits.parse().ok())
        .unwrap_or_else(|| panic!("no number after {label:?}: {counts}"))
}

#[test]
fn table_names_existing_tests() {
    let table = read_table();
    let mut sources = Vec::new();
    read_sources(&repository().join("tests"), &mut sources);
    let defined: Vec<String> = sources
        .iter()
        .flat_map(|(_, text)| function_names(text))
        .collect();
    for test in &table.tests {
        assert!(
            defined.contains(test),
            "docs/faults.md names test {test}, but no `fn {test}(` exists under tests/"
        );
    }
}

#[test]
fn table_lists_every_fault_test() {
    let table = read_table();
    let mut sources = Vec::new();
    read_sources(&repository().join("tests"), &mut sources);
    for (path, text) in &sources {
        for name in function_names(text) {
            if !name.starts_with(FAULT_PREFIX) {
                continue;
            }
            assert!(
                table.tests.contains(&name),
                "{} defines fault test {name}, which docs/faults.md does not list",
                path.display()
            );
        }
    }
}

#[test]
fn table_counts_match_rows() {
    let table = read_table();
    assert_eq!(
        count_after(&table.counts, "Faults injected:"),
        table.tests.len(),
        "the counts line gives the number of rows: {}",
        table.counts
    );
    assert_eq!(count_after(&table.counts, "Backups lost:"), 0);
    assert_eq!(count_after(&table.counts, "False \"good\" backups:"), 0);
    let mut unique = table.tests.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), table.tests.len(), "each test is named once");
}

#[test]
fn function_names_reads_definitions() {
    let text = "async fn sample_a() {}\npub fn helper(x: u8) {}\n// fn not_a_call\nlet fn_x = 1;\n";
    assert_eq!(function_names(text), vec!["sample_a", "helper"]);
}
