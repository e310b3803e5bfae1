//! Checks shared by several fleet.toml tables: ports, durations, non-empty text, paths.

use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use super::error::Diagnostics;

/// Returns the port, or reports `key` when it is outside 1-65535.
pub(crate) fn port(diagnostics: &mut Diagnostics, key: &str, value: &Spanned<i64>) -> Option<u16> {
    let number = *value.get_ref();
    match u16::try_from(number) {
        Ok(port) if port > 0 => Some(port),
        _ => {
            let message = format!("port {number} is out of range");
            diagnostics.report(
                value.span().start,
                key,
                message,
                "use a port from 1 to 65535",
            );
            None
        }
    }
}

/// Returns a whole number of seconds of at least `minimum`, or reports `key`.
pub(crate) fn seconds(
    diagnostics: &mut Diagnostics,
    key: &str,
    value: &Spanned<i64>,
    minimum: u64,
) -> Option<Duration> {
    count(diagnostics, key, value, minimum).map(Duration::from_secs)
}

/// Returns a count of at least `minimum`, or reports `key`.
pub(crate) fn count(
    diagnostics: &mut Diagnostics,
    key: &str,
    value: &Spanned<i64>,
    minimum: u64,
) -> Option<u64> {
    let number = *value.get_ref();
    match u64::try_from(number) {
        Ok(count) if count >= minimum => Some(count),
        _ => {
            let message = format!("{number} is below the minimum of {minimum}");
            let hint = format!("use {minimum} or more");
            diagnostics.report(value.span().start, key, message, &hint);
            None
        }
    }
}

/// Returns the text when it contains more than white space, or reports `key`.
pub(crate) fn text(
    diagnostics: &mut Diagnostics,
    key: &str,
    value: &Spanned<String>,
) -> Option<String> {
    let text = value.get_ref();
    if text.trim().is_empty() {
        let message = "value is empty".to_string();
        diagnostics.report(
            value.span().start,
            key,
            message,
            "write a value or remove the key",
        );
        return None;
    }
    Some(text.clone())
}

/// Returns a local path, joined to `base_dir` when relative, or reports `key` when empty.
pub(crate) fn local_path(
    diagnostics: &mut Diagnostics,
    key: &str,
    value: &Spanned<String>,
    base_dir: &Path,
) -> Option<PathBuf> {
    let text = text(diagnostics, key, value)?;
    Some(resolve_path(base_dir, &text))
}

/// Joins a relative path to `base_dir`; absolute paths are returned unchanged.
pub(crate) fn resolve_path(base_dir: &Path, path: &str) -> PathBuf {
    let path = Path::new(path);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base_dir.join(path)
    }
}
