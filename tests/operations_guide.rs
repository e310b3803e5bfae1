//! docs/operations.md stays true: every command in its `sh` and `console` blocks parses
//! (bakfleet commands) or is a known outside tool with the test that covers what it uses,
//! and every log message it explains is one the code logs.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Outside programs the guide runs, and where the repository tests what they act on.
const OUTSIDE_COMMANDS: [(&str, &str); 8] = [
    (
        "set",
        "shell built-in that exports the env file; no test needed",
    ),
    (
        ".",
        "shell built-in that reads the env file; no test needed",
    ),
    (
        "systemctl",
        "tests/deploy.rs checks the unit with systemd-analyze verify",
    ),
    (
        "journalctl",
        "reads the unit's stderr, whose format tests/logging.rs checks",
    ),
    (
        "podman",
        "tests/deploy.rs checks deploy/Containerfile with hadolint",
    ),
    (
        "git",
        "tests/reload.rs replaces the fleet file by rename, as a pull does",
    ),
    (
        "curl",
        "tests/health.rs and tests/reload.rs request /healthz",
    ),
    ("cp", "plain file copy; no test needed"),
];

fn guide() -> (PathBuf, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/operations.md");
    let text = std::fs::read_to_string(&path).expect("read docs/operations.md");
    (path, text)
}

/// Lists the commands of the `sh` and `console` blocks with their line numbers: lines
/// ending in `\` are joined, `$ ` prompts and comments dropped, and `;`, `&&` and `|`
/// split a line into commands.
fn commands(text: &str) -> Vec<(usize, String)> {
    let mut commands = Vec::new();
    let mut in_block = false;
    let mut pending: Option<(usize, String)> = None;
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if let Some(info) = line.strip_prefix("```") {
            in_block = !in_block && matches!(info.trim(), "sh" | "console");
            continue;
        }
        if !in_block {
            continue;
        }
        let line = line.strip_prefix("$ ").unwrap_or(line).trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (start, mut joined) = pending.take().unwrap_or((number, String::new()));
        if let Some(head) = line.strip_suffix('\\') {
            joined.push_str(head);
            pending = Some((start, joined));
            continue;
        }
        joined.push_str(line);
        for part in joined.split([';', '|']).flat_map(|part| part.split("&&")) {
            let part = part.trim();
            if !part.is_empty() {
                commands.push((start, part.to_string()));
            }
        }
    }
    commands
}

/// Splits a command into words, keeping single- and double-quoted words whole.
fn words(command: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    for character in command.chars() {
        match (quote, character) {
            (Some(open), c) if c == open => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => quote = Some(character),
            (None, c) if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            (None, c) => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

#[test]
fn guide_commands_are_known() {
    let (path, text) = guide();
    let found = commands(&text);
    assert!(
        found.len() >= 10,
        "the guide's commands were not found: {found:?}"
    );
    let mut unknown = Vec::new();
    for (line, command) in &found {
        let mut arguments = words(command);
        // `NAME=value` words before the program set its environment.
        while arguments.first().is_some_and(|word| word.contains('=')) {
            arguments.remove(0);
        }
        // `sudo -u USER` runs the rest as the service user.
        if arguments.first().is_some_and(|word| word == "sudo") {
            let user_option = arguments.get(1).is_some_and(|word| word == "-u");
            arguments.drain(..if user_option { 3 } else { 1 });
        }
        // Output redirections are the shell's.
        if let Some(position) = arguments.iter().position(|word| word.starts_with('>')) {
            arguments.truncate(position);
        }
        let Some(program) = arguments.first() else {
            continue;
        };
        if program == "bakfleet" {
            let mut checked = Command::new(env!("CARGO_BIN_EXE_bakfleet"));
            checked.args(&arguments[1..]).arg("--help");
            let output = checked.output().expect("run bakfleet");
            assert!(
                output.status.success(),
                "{}:{line}: `{command}` does not parse: {}",
                path.display(),
                String::from_utf8_lossy(&output.stderr)
            );
            continue;
        }
        if !OUTSIDE_COMMANDS.iter().any(|(known, _)| known == program) {
            unknown.push(format!("{}:{line}: {command}", path.display()));
        }
    }

    assert!(
        unknown.is_empty(),
        "commands that no test covers; add them to OUTSIDE_COMMANDS with the test that \
         covers them, or rewrite them:\n{}",
        unknown.join("\n")
    );
}

#[test]
fn guide_log_messages_exist() {
    let (_, text) = guide();
    let section = text
        .split("## Log messages")
        .nth(1)
        .expect("docs/operations.md has a Log messages section");
    let messages: Vec<&str> = section
        .lines()
        .take_while(|line| !line.starts_with("## "))
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split_once('`').map(|(message, _)| message))
        .collect();
    assert!(
        messages.len() >= 10,
        "the table was not found: {messages:?}"
    );
    let sources = rust_sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));

    for message in messages {
        let logged = sources.iter().any(|source| source.contains(message));
        assert!(logged, "no file under src/ logs {message:?}");
    }
}

fn rust_sources(dir: &Path) -> Vec<String> {
    let mut sources = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read src").flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources.extend(rust_sources(&path));
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            sources.push(std::fs::read_to_string(&path).expect("read source"));
        }
    }
    sources
}

#[test]
fn commands_join_continued_lines() {
    let text = "```sh\npodman run -d \\\n    -v a:b \\\n    bakfleet\nset -a; . x; set +a\n```\n";

    let found = commands(text);

    assert_eq!(found[0], (2, "podman run -d -v a:b bakfleet".to_string()));
    assert_eq!(found.len(), 4, "{found:?}");
}
