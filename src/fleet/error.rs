//! Errors from fleet.toml and the secrets file. Each problem in a file names the file,
//! line, column, instance and key, and gives a hint when the fix is known.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// One problem at one place in fleet.toml or in the secrets file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file as the caller named it.
    pub file: PathBuf,
    /// 1-based line and column (in characters), when the parser reported a position.
    pub position: Option<Position>,
    /// Name of the `[[instance]]` concerned, or `#N` (1-based) when it has no valid name.
    pub instance: Option<String>,
    /// Dotted key, relative to the instance when `instance` is set.
    pub key: Option<String>,
    pub message: String,
    /// The change that fixes the problem, when it is known.
    pub hint: Option<String>,
}

/// A 1-based line and column in a text file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(position) = self.position {
            write!(f, ":{}:{}", position.line, position.column)?;
        }
        if let Some(instance) = &self.instance {
            write!(f, ": instance {instance:?}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": key `{key}`")?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

/// Error from loading the fleet inventory or resolving its secrets.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    // The I/O error is part of the message and not the error's source, so that `anyhow`'s
    // `{:#}` does not print it a second time.
    #[error(
        "failed to read fleet file {}: {cause}; name the file with --fleet or BAKFLEET_FLEET \
         (the default is fleet.toml in the current folder)",
        std::path::absolute(path).unwrap_or_else(|_| path.clone()).display()
    )]
    Read { path: PathBuf, cause: io::Error },

    /// Every problem found in one file, in file order. Display prints one per line.
    #[error("{}", join_lines(.0))]
    Invalid(Vec<Diagnostic>),

    #[error("failed to read secrets file {}: {source}", path.display())]
    SecretsRead { path: PathBuf, source: io::Error },

    #[error(
        "secrets file {} has mode {mode:04o}, so group or others can read it; \
         run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    SecretsPermissions { path: PathBuf, mode: u32 },

    /// A secret reference that does not resolve. The message names the variable or key
    /// and what refers to it, never a value.
    #[error("{reference} (needed by {context}) {problem}; {hint}")]
    SecretUnresolved {
        reference: String,
        context: String,
        problem: String,
        hint: String,
    },
}

impl FleetError {
    /// Returns the problems found in a file, or an empty slice for errors that are not
    /// about file contents.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            FleetError::Invalid(diagnostics) => diagnostics,
            _ => &[],
        }
    }
}

fn join_lines(diagnostics: &[Diagnostic]) -> String {
    let lines: Vec<String> = diagnostics.iter().map(Diagnostic::to_string).collect();
    lines.join("\n")
}

/// Converts byte offsets of one text into line and column numbers.
pub(crate) struct LineIndex<'a> {
    text: &'a str,
}

impl<'a> LineIndex<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        LineIndex { text }
    }

    /// Position of a byte offset; offsets past the end map to the end.
    pub(crate) fn position(&self, offset: usize) -> Position {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
        let column = before[line_start..].chars().count() + 1;
        Position { line, column }
    }
}

/// Collects diagnostics for one file while it is checked, so that one run reports every
/// problem instead of stopping at the first.
pub(crate) struct Diagnostics<'a> {
    file: &'a Path,
    lines: LineIndex<'a>,
    instance: Option<String>,
    found: Vec<Diagnostic>,
}

impl<'a> Diagnostics<'a> {
    pub(crate) fn new(file: &'a Path, text: &'a str) -> Self {
        Diagnostics {
            file,
            lines: LineIndex::new(text),
            instance: None,
            found: Vec::new(),
        }
    }

    /// Sets the instance that later diagnostics name; `None` for file-level keys.
    pub(crate) fn set_instance(&mut self, instance: Option<String>) {
        self.instance = instance;
    }

    /// Records a problem with `key` at byte offset `offset`.
    pub(crate) fn report(&mut self, offset: usize, key: &str, message: String, hint: &str) {
        let diagnostic = Diagnostic {
            file: self.file.to_path_buf(),
            position: Some(self.lines.position(offset)),
            instance: self.instance.clone(),
            key: (!key.is_empty()).then(|| key.to_string()),
            message,
            hint: (!hint.is_empty()).then(|| hint.to_string()),
        };
        self.found.push(diagnostic);
    }

    /// Returns the 1-based line of a byte offset, for messages that refer to another place.
    pub(crate) fn line_of(&self, offset: usize) -> usize {
        self.lines.position(offset).line
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    /// Returns `value` when nothing was reported, else every diagnostic in file order.
    pub(crate) fn finish<T>(mut self, value: T) -> Result<T, FleetError> {
        if self.found.is_empty() {
            return Ok(value);
        }
        self.found
            .sort_by_key(|found| found.position.map(|p| (p.line, p.column)));
        Err(FleetError::Invalid(self.found))
    }
}

/// Converts an error from the TOML parser or from serde into a diagnostic, finding the
/// instance and key at the error's position in the parsed document.
pub(crate) fn diagnostic_from_toml(file: &Path, text: &str, error: &toml::de::Error) -> Diagnostic {
    let offset = error.span().map(|span| span.start);
    let (instance, key) = match (offset, DeTable::parse(text)) {
        (Some(offset), Ok(document)) => locate_key(document.get_ref(), offset),
        _ => (None, None),
    };
    let message = toml_type_names(error.message().trim_end());
    let hint = hint_for_serde_message(&message);
    Diagnostic {
        file: file.to_path_buf(),
        position: offset.map(|offset| LineIndex::new(text).position(offset)),
        instance,
        key,
        message,
        hint,
    }
}

/// Finds the instance and dotted key at `offset`. An entry matches when its key or value
/// span contains the offset. Tables written with a `[header]` have spans that cover only
/// the header. So when no span contains the offset, the table or array with the latest
/// header before it is taken, because that header's body contains the offset.
fn locate_key(document: &DeTable<'_>, offset: usize) -> (Option<String>, Option<String>) {
    let mut path: Vec<String> = Vec::new();
    let mut instance = None;
    let mut table = document;
    while let Some((key, value)) = entry_at(table, offset) {
        path.push(key.to_string());
        match value {
            DeValue::Table(inner) => table = inner,
            DeValue::Array(items) if path.len() == 1 && path[0] == "instance" => {
                let Some((index, item)) = item_at(items, offset) else {
                    break;
                };
                let DeValue::Table(inner) = item else {
                    break;
                };
                instance = Some(instance_label(inner, index));
                path.clear();
                table = inner;
            }
            _ => break,
        }
    }
    let key = (!path.is_empty()).then(|| path.join("."));
    (instance, key)
}

fn entry_at<'t, 'i>(table: &'t DeTable<'i>, offset: usize) -> Option<(&'t str, &'t DeValue<'i>)> {
    let containing = table
        .iter()
        .find(|(key, value)| key.span().contains(&offset) || value.span().contains(&offset));
    let entry = containing.or_else(|| {
        table
            .iter()
            .filter(|(_, value)| matches!(value.get_ref(), DeValue::Table(_) | DeValue::Array(_)))
            .filter_map(|(key, value)| {
                let start = latest_start(key.span().start, value, offset)?;
                Some((start, (key, value)))
            })
            .max_by_key(|(start, _)| *start)
            .map(|(_, entry)| entry)
    });
    entry.map(|(key, value)| (key.get_ref().as_ref(), value.get_ref()))
}

fn item_at<'t, 'i>(
    items: &'t toml::de::DeArray<'i>,
    offset: usize,
) -> Option<(usize, &'t DeValue<'i>)> {
    let containing = items
        .iter()
        .enumerate()
        .find(|(_, item)| item.span().contains(&offset));
    let item = containing.or_else(|| {
        items
            .iter()
            .enumerate()
            .filter_map(|(index, item)| {
                let start = latest_start(item.span().start, item, offset)?;
                Some((start, (index, item)))
            })
            .max_by_key(|(start, _)| *start)
            .map(|(_, item)| item)
    });
    item.map(|(index, item)| (index, item.get_ref()))
}

/// Returns the latest start at or before `offset` of any key or item inside an entry.
/// A table split over several `[a.b]` headers has key spans at each header, so this
/// finds the header whose body contains the offset.
fn latest_start(key_start: usize, value: &Spanned<DeValue<'_>>, offset: usize) -> Option<usize> {
    let mut latest = (key_start <= offset).then_some(key_start);
    let inner = match value.get_ref() {
        DeValue::Table(table) => table
            .iter()
            .filter_map(|(key, value)| latest_start(key.span().start, value, offset))
            .max(),
        DeValue::Array(items) => items
            .iter()
            .filter_map(|item| latest_start(item.span().start, item, offset))
            .max(),
        _ => None,
    };
    latest = latest.max(inner);
    latest
}

/// Returns the instance's name when it is a string, else its 1-based position as `#N`.
fn instance_label(table: &DeTable<'_>, index: usize) -> String {
    let name = table
        .iter()
        .find(|(key, _)| key.get_ref() == "name")
        .and_then(|(_, value)| value.get_ref().as_str().map(str::to_string));
    name.unwrap_or_else(|| format!("#{}", index + 1))
}

/// Replaces Rust type names in serde messages with TOML type names.
fn toml_type_names(message: &str) -> String {
    let mut message = message.replace("expected i64", "expected an integer");
    message = message.replace("expected a sequence", "expected an array");
    if let Some(start) = message.find("expected struct Raw") {
        message.replace_range(start.., "expected a table");
    }
    message
}

/// Returns hints for the serde messages that the fleet schema produces most often.
fn hint_for_serde_message(message: &str) -> Option<String> {
    let hint = if message.starts_with("unknown field") {
        "remove the key or correct its spelling"
    } else if message.contains("missing field `staging`") {
        "add `staging = { smb = '\\\\host\\share\\dir', credential = \"NAME\" }`, \
         `staging = { sftp = { ... } }` or `staging = { local = { ... } }`"
    } else if message.contains("missing field `auth`") {
        "add `auth = { kind = \"sql\", user = \"USER\", password_env = \"VARIABLE\" }`"
    } else if message.starts_with("missing field") {
        "add the key to this table"
    } else if message.starts_with("invalid type") {
        "write the value with the type named after `expected`"
    } else {
        return None;
    };
    Some(hint.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_index_counts_characters() {
        let text = "a = 1\nbé = \"x\"\n";
        let index = LineIndex::new(text);
        assert_eq!(index.position(0), Position { line: 1, column: 1 });
        let quote = text.find('"').unwrap();
        assert_eq!(index.position(quote), Position { line: 2, column: 6 });
        assert_eq!(index.position(10_000).line, 3);
    }

    #[test]
    fn locate_key_finds_instance_name() {
        let text = "[service]\nlisten = \"x\"\n\n[[instance]]\nname = \"a\"\n\
                    tls = { encrypt = \"maybe\" }\n";
        let document = DeTable::parse(text).unwrap();
        let offset = text.find("maybe").unwrap();
        let (instance, key) = locate_key(document.get_ref(), offset);
        assert_eq!(instance.as_deref(), Some("a"));
        assert_eq!(key.as_deref(), Some("tls.encrypt"));
    }

    #[test]
    fn locate_key_in_split_table() {
        let text = "[credentials.a]\nuser = \"u\"\n\n[[instance]]\nname = \"x\"\n\n\
                    [credentials.b]\nuser = \"v\"\n";
        let document = DeTable::parse(text).unwrap();
        let offset = text.find("\"v\"").unwrap();
        let (instance, key) = locate_key(document.get_ref(), offset);
        assert_eq!(instance, None);
        assert_eq!(key.as_deref(), Some("credentials.b.user"));
    }

    #[test]
    fn locate_key_in_header_table() {
        let text = "[service]\nlisten = \"x\"\n";
        let document = DeTable::parse(text).unwrap();
        let offset = text.find("\"x\"").unwrap();
        let (instance, key) = locate_key(document.get_ref(), offset);
        assert_eq!(instance, None);
        assert_eq!(key.as_deref(), Some("service.listen"));
    }
}
