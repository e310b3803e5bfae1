//! Maps the paths a BACKUP or RESTORE names on the server to files on this machine
//! through the configured `path_map` entries. Paths outside every mapping do not exist.

use std::path::PathBuf;

use crate::config::{PathMap, Platform};

/// Where a server path lands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Device {
    /// The null device (`NUL` on Windows, `/dev/null` on Linux): written and discarded.
    Null,
    /// A local file behind a mapping.
    File(PathBuf),
    /// Outside every mapping, or escaping one with `..`: the server cannot see it.
    Unreachable,
}

/// Resolves `server_path` for `platform`. Windows paths compare case-insensitively and
/// accept `/` for `\`; Linux paths are case-sensitive. A name without a directory goes
/// to `default_directory`, as SQL Server puts it in its default backup directory.
pub fn resolve(
    server_path: &str,
    platform: Platform,
    maps: &[PathMap],
    default_directory: &str,
) -> Device {
    let full = full_path(server_path, platform, default_directory);
    let separator = separator(platform);
    if is_null_device(&full, platform) {
        return Device::Null;
    }
    for map in maps {
        let prefix = normalize(&map.server, platform);
        let prefix = prefix.trim_end_matches(separator);
        let Some(rest) = strip_prefix(&full, prefix, platform) else {
            continue;
        };
        let components: Vec<&str> = rest
            .split(separator)
            .filter(|part| !part.is_empty())
            .collect();
        if components.iter().any(|part| *part == ".." || *part == ".") {
            return Device::Unreachable;
        }
        let mut local = map.local.clone();
        local.extend(components);
        return Device::File(local);
    }
    Device::Unreachable
}

/// The path SQL Server names in messages: the given one, or the default directory joined
/// with a bare file name.
pub fn full_path(server_path: &str, platform: Platform, default_directory: &str) -> String {
    let normalized = normalize(server_path, platform);
    let separator = separator(platform);
    let has_drive = platform == Platform::Windows && normalized.get(1..2) == Some(":");
    let bare = !(normalized.contains(separator) || has_drive);
    if bare && !is_null_device(&normalized, platform) {
        format!("{default_directory}{separator}{normalized}")
    } else {
        normalized
    }
}

fn separator(platform: Platform) -> char {
    match platform {
        Platform::Windows => '\\',
        Platform::Linux => '/',
    }
}

fn normalize(path: &str, platform: Platform) -> String {
    match platform {
        Platform::Windows => path.replace('/', "\\"),
        Platform::Linux => path.to_string(),
    }
}

fn is_null_device(path: &str, platform: Platform) -> bool {
    match platform {
        Platform::Windows => path.eq_ignore_ascii_case("NUL"),
        Platform::Linux => path == "/dev/null",
    }
}

/// The part of `path` after `prefix` when `prefix` ends at a separator of `path`.
fn strip_prefix<'a>(path: &'a str, prefix: &str, platform: Platform) -> Option<&'a str> {
    let head = path.get(..prefix.len())?;
    let matches = match platform {
        Platform::Windows => head.eq_ignore_ascii_case(prefix),
        Platform::Linux => head == prefix,
    };
    let rest = &path[prefix.len()..];
    let at_boundary = rest.is_empty() || rest.starts_with(separator(platform));
    (matches && at_boundary).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn maps(server: &str) -> Vec<PathMap> {
        vec![PathMap {
            server: server.into(),
            local: PathBuf::from("/tmp/share"),
        }]
    }

    #[test]
    fn windows_unc_maps_case_insensitively() {
        let device = resolve(
            r"\\127.0.0.1\BACKUP\Sales\x.bak",
            Platform::Windows,
            &maps(r"\\127.0.0.1\backup\"),
            "C:\\B",
        );
        assert_eq!(
            device,
            Device::File(PathBuf::from("/tmp/share/Sales/x.bak"))
        );
    }

    #[test]
    fn windows_accepts_forward_slashes() {
        let device = resolve(
            "//127.0.0.1/backup/x.bak",
            Platform::Windows,
            &maps(r"\\127.0.0.1\backup"),
            "C:\\B",
        );
        assert_eq!(device, Device::File(PathBuf::from("/tmp/share/x.bak")));
    }

    #[test]
    fn linux_paths_are_case_sensitive() {
        let map = maps("/var/opt/mssql/backup");
        let found = resolve(
            "/var/opt/mssql/backup/a.bak",
            Platform::Linux,
            &map,
            "/var/opt/mssql/data",
        );
        assert_eq!(found, Device::File(PathBuf::from("/tmp/share/a.bak")));
        let missed = resolve(
            "/var/opt/mssql/Backup/a.bak",
            Platform::Linux,
            &map,
            "/var/opt/mssql/data",
        );
        assert_eq!(missed, Device::Unreachable);
    }

    #[test]
    fn prefix_must_end_at_separator() {
        let device = resolve(
            r"\\h\backup2\x.bak",
            Platform::Windows,
            &maps(r"\\h\backup"),
            "C:\\B",
        );
        assert_eq!(device, Device::Unreachable);
    }

    #[test]
    fn parent_components_are_unreachable() {
        let device = resolve(
            r"\\h\backup\..\x.bak",
            Platform::Windows,
            &maps(r"\\h\backup"),
            "C:\\B",
        );
        assert_eq!(device, Device::Unreachable);
    }

    #[test]
    fn bare_name_goes_to_default_directory() {
        let map = maps(r"C:\B");
        assert_eq!(
            resolve("x.bak", Platform::Windows, &map, r"C:\B"),
            Device::File(PathBuf::from("/tmp/share/x.bak"))
        );
        assert_eq!(
            full_path("x.bak", Platform::Windows, r"C:\B"),
            r"C:\B\x.bak"
        );
    }

    #[test]
    fn null_device_is_recognized() {
        assert_eq!(
            resolve("NUL", Platform::Windows, &[], "C:\\B"),
            Device::Null
        );
        assert_eq!(
            resolve("/dev/null", Platform::Linux, &[], "/x"),
            Device::Null
        );
    }
}
