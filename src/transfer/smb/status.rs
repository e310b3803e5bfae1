//! Parses `smbclient` output: NT status codes into [`TransferError`] kinds, and the sizes
//! printed by `allinfo` and `get`.

use crate::transfer::TransferError;

/// Maximum length, in characters, of a message excerpt quoted in an error.
const EXCERPT_CHARS: usize = 300;

/// Turns the first `NT_STATUS_...` code in `text` into an error, or returns `None` when
/// `text` contains no status code.
pub(super) fn classify(
    text: &str,
    location: &str,
    user: &str,
    path: &str,
    operation: &'static str,
) -> Option<TransferError> {
    let code = find_status_code(text)?;
    let location = location.to_string();
    let path = path.to_string();
    let error = match code {
        "NT_STATUS_OBJECT_NAME_NOT_FOUND"
        | "NT_STATUS_OBJECT_PATH_NOT_FOUND"
        | "NT_STATUS_NO_SUCH_FILE"
        | "NT_STATUS_NOT_FOUND" => TransferError::NotFound { location, path },
        "NT_STATUS_BAD_NETWORK_NAME" => TransferError::ShareNotFound { location },
        "NT_STATUS_ACCESS_DENIED"
        | "NT_STATUS_NETWORK_ACCESS_DENIED"
        | "NT_STATUS_CANNOT_DELETE" => TransferError::AccessDenied {
            location,
            path,
            operation,
        },
        "NT_STATUS_SHARING_VIOLATION"
        | "NT_STATUS_FILE_LOCK_CONFLICT"
        | "NT_STATUS_DELETE_PENDING" => TransferError::Busy { location, path },
        "NT_STATUS_LOGON_FAILURE"
        | "NT_STATUS_WRONG_PASSWORD"
        | "NT_STATUS_NO_SUCH_USER"
        | "NT_STATUS_ACCOUNT_DISABLED"
        | "NT_STATUS_ACCOUNT_LOCKED_OUT"
        | "NT_STATUS_ACCOUNT_EXPIRED"
        | "NT_STATUS_ACCOUNT_RESTRICTION"
        | "NT_STATUS_PASSWORD_EXPIRED"
        | "NT_STATUS_PASSWORD_MUST_CHANGE" => TransferError::Authentication {
            location,
            user: user.to_string(),
            detail: code.to_string(),
        },
        "NT_STATUS_CONNECTION_REFUSED"
        | "NT_STATUS_HOST_UNREACHABLE"
        | "NT_STATUS_NETWORK_UNREACHABLE"
        | "NT_STATUS_BAD_NETWORK_PATH"
        | "NT_STATUS_IO_TIMEOUT"
        | "NT_STATUS_CONNECTION_RESET"
        | "NT_STATUS_CONNECTION_DISCONNECTED"
        | "NT_STATUS_CONNECTION_ABORTED"
        | "NT_STATUS_PIPE_BROKEN"
        | "NT_STATUS_INVALID_NETWORK_RESPONSE" => TransferError::Unreachable {
            location,
            operation,
            detail: excerpt_around(text, code),
        },
        _ => TransferError::Failed {
            location,
            path,
            operation,
            detail: excerpt_around(text, code),
        },
    };
    Some(error)
}

/// Reads the data stream size from `allinfo` output: `stream: [::$DATA], 3000000 bytes`.
pub(super) fn parse_allinfo_size(stdout: &[u8]) -> Option<u64> {
    let text = String::from_utf8_lossy(stdout);
    text.lines().find_map(|line| {
        line.trim()
            .strip_prefix("stream: [::$DATA], ")?
            .strip_suffix(" bytes")?
            .parse()
            .ok()
    })
}

/// Reads the file size from the line `get` prints when it finishes:
/// `getting file \dir\a.bak of size 3000000 as - (...)`.
pub(super) fn parse_get_size(stderr: &[u8]) -> Option<u64> {
    let text = String::from_utf8_lossy(stderr);
    text.lines()
        .filter(|line| line.starts_with("getting file "))
        .find_map(|line| {
            // The file name may itself contain " of size ", so the last match counts.
            let (_, after) = line.rsplit_once(" of size ")?;
            let (size, _) = after.split_once(" as ")?;
            size.parse().ok()
        })
}

/// Returns the last non-empty line of `text`, shortened for an error message.
pub(super) fn last_line(text: &str) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .rfind(|line| !line.is_empty())
        .unwrap_or("no output");
    line.chars().take(EXCERPT_CHARS).collect()
}

fn find_status_code(text: &str) -> Option<&str> {
    let start = text.find("NT_STATUS_")?;
    let rest = &text[start..];
    let end = rest
        .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

/// Returns the line of `text` that contains `code`, shortened for an error message.
fn excerpt_around(text: &str, code: &str) -> String {
    let line = text
        .lines()
        .find(|line| line.contains(code))
        .unwrap_or(code)
        .trim();
    line.chars().take(EXCERPT_CHARS).collect()
}

/// Reads the file names from `smbclient`'s `ls` output. Each entry line is the name, the
/// attribute letters (`D` marks a folder), the size and a date of five words, so the
/// line is read from its end. Folders, `.` and `..` are left out. Names that contain
/// spaces come back whole because only the last eight words are taken apart.
pub(super) fn parse_ls_file_names(stdout: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(stdout);
    let mut names = Vec::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        // name, attributes, size, then "Fri Dec  4 20:00:00 2026".
        if words.len() < 8 {
            continue;
        }
        let (head, date) = words.split_at(words.len() - 5);
        let Some((size, head)) = head.split_last() else {
            continue;
        };
        if size.parse::<u64>().is_err() || date[4].parse::<u32>().is_err() {
            continue;
        }
        let Some((attributes, name_words)) = head.split_last() else {
            continue;
        };
        let is_attributes = attributes.chars().all(|c| "DAHSRNV".contains(c));
        let (name_words, is_folder) = if is_attributes {
            (name_words, attributes.contains('D'))
        } else {
            (head, false)
        };
        let name = name_words.join(" ");
        if name.is_empty() || is_folder || name == "." || name == ".." {
            continue;
        }
        names.push(name);
    }
    names
}
