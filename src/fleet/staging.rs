//! The staging location of an instance: the place SQL Server writes backup files to and
//! bakfleet fetches them from (an SMB share, a host directory read over SFTP, or a
//! directory mounted on this machine).

use std::path::{Path, PathBuf};

use toml::Spanned;

use super::error::Diagnostics;
use super::raw::{RawLocal, RawSftp, RawStaging};
use super::value;

/// The staging location of one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Staging {
    /// A share that SQL Server writes to by UNC path and bakfleet reads over SMB.
    Smb {
        /// `\\host\share` or `\\host\share\dir`, without a trailing backslash.
        unc: String,
        host: String,
        share: String,
        /// Directory inside the share, components joined by `\`; `""` for the share root.
        dir: String,
        port: u16,
        /// Name of the `[credentials.NAME]` table used to log in to the share.
        credential: String,
    },
    /// A directory on the database host that bakfleet reads over SFTP.
    Sftp {
        host: String,
        port: u16,
        user: String,
        key_file: PathBuf,
        known_hosts: PathBuf,
        /// Absolute directory as the SFTP server names it.
        path: String,
        /// The same directory as SQL Server names it; equal to `path` unless set.
        server_path: String,
    },
    /// A directory that SQL Server writes to and that this machine mounts.
    Local {
        /// The directory as SQL Server names it (e.g. `D:\Backup`).
        server_path: String,
        /// The same directory on this machine.
        dir: PathBuf,
    },
}

impl Staging {
    /// Returns the path that BACKUP writes `file_name` to: the UNC path, Windows path or
    /// host path joined with `\` or `/` following the form of the configured path.
    /// `file_name` is a plain file name without separators.
    pub fn server_path(&self, file_name: &str) -> String {
        match self {
            Staging::Smb { unc, .. } => format!("{unc}\\{file_name}"),
            Staging::Sftp { server_path, .. } | Staging::Local { server_path, .. } => {
                join_server_path(server_path, file_name)
            }
        }
    }

    /// Returns the path bakfleet reads `file_name` from: the path inside the share, joined
    /// with `\` as SMB path names are (SMB), the absolute host path (SFTP) or the local
    /// absolute path (local).
    pub fn fetch_path(&self, file_name: &str) -> String {
        match self {
            Staging::Smb { dir, .. } if dir.is_empty() => file_name.to_string(),
            Staging::Smb { dir, .. } => format!("{dir}\\{file_name}"),
            Staging::Sftp { path, .. } => join_server_path(path, file_name),
            Staging::Local { dir, .. } => dir.join(file_name).to_string_lossy().into_owned(),
        }
    }

    /// Returns the staging folder in the form [`Staging::fetch_path`] gives its files:
    /// the folder inside the share (`""` for the share root), or the absolute folder.
    pub fn fetch_dir(&self) -> String {
        match self {
            Staging::Smb { dir, .. } => dir.clone(),
            Staging::Sftp { path, .. } => path.clone(),
            Staging::Local { dir, .. } => dir.to_string_lossy().into_owned(),
        }
    }

    /// Formats the location as one line for logs, `check` and the admin site. It contains
    /// no secret.
    pub fn describe(&self) -> String {
        match self {
            Staging::Smb {
                unc,
                port,
                credential,
                ..
            } => format!("SMB share {unc} (port {port}, credential {credential})"),
            Staging::Sftp {
                host,
                port,
                user,
                path,
                server_path,
                ..
            } => {
                let mut text = format!("SFTP {user}@{host}:{port} {path}");
                if path != server_path {
                    text.push_str(&format!(" (SQL Server writes {server_path})"));
                }
                text
            }
            Staging::Local { server_path, dir } => {
                format!("local {} (SQL Server writes {server_path})", dir.display())
            }
        }
    }

    /// Reads `staging`, which must set exactly one of `smb`, `sftp` and `local`.
    /// `credential_exists` returns whether a `[credentials.NAME]` table is defined.
    pub(crate) fn from_raw(
        raw: &Spanned<RawStaging>,
        base_dir: &Path,
        credential_exists: &dyn Fn(&str) -> bool,
        diagnostics: &mut Diagnostics,
    ) -> Option<Staging> {
        let staging = raw.get_ref();
        let kinds = [
            staging.smb.is_some(),
            staging.sftp.is_some(),
            staging.local.is_some(),
        ];
        let kind_count = kinds.iter().filter(|set| **set).count();
        if kind_count != 1 {
            let message = if kind_count == 0 {
                "no staging kind is set".to_string()
            } else {
                "more than one staging kind is set".to_string()
            };
            let hint = "set exactly one of smb, sftp and local";
            diagnostics.report(raw.span().start, "staging", message, hint);
            return None;
        }
        if staging.smb.is_none() {
            reject_smb_only_keys(staging, diagnostics);
        }
        if let Some(unc) = &staging.smb {
            return smb(staging, unc, credential_exists, diagnostics);
        }
        if let Some(sftp_table) = &staging.sftp {
            return sftp(sftp_table.get_ref(), base_dir, diagnostics);
        }
        let local_table = staging.local.as_ref()?;
        local(local_table.get_ref(), base_dir, diagnostics)
    }
}

/// Joins a file name to a directory as SQL Server or an SFTP server names it, with `\`
/// when the directory is written Windows-style (`D:\Backup`, `\\host\share`) and `/`
/// otherwise.
fn join_server_path(directory: &str, file_name: &str) -> String {
    let windows_style = directory.contains('\\');
    let separator = if windows_style { '\\' } else { '/' };
    let directory = directory.trim_end_matches(separator);
    format!("{directory}{separator}{file_name}")
}

fn reject_smb_only_keys(staging: &RawStaging, diagnostics: &mut Diagnostics) {
    let hint = "remove it: port and credential belong to an smb staging; an sftp \
                staging sets its port inside the sftp table";
    if let Some(port) = &staging.port {
        let message = "port is only valid with smb".to_string();
        diagnostics.report(port.span().start, "staging.port", message, hint);
    }
    if let Some(credential) = &staging.credential {
        let message = "credential is only valid with smb".to_string();
        diagnostics.report(credential.span().start, "staging.credential", message, hint);
    }
}

fn smb(
    staging: &RawStaging,
    unc: &Spanned<String>,
    credential_exists: &dyn Fn(&str) -> bool,
    diagnostics: &mut Diagnostics,
) -> Option<Staging> {
    let parts = match parse_unc(unc.get_ref()) {
        Ok(parts) => Some(parts),
        Err(reason) => {
            let message = format!("invalid UNC path {:?}: {reason}", unc.get_ref());
            let hint = "write \\\\host\\share or \\\\host\\share\\dir in a literal string \
                        ('...'), so that backslashes stay as written";
            diagnostics.report(unc.span().start, "staging.smb", message, hint);
            None
        }
    };
    let port = match &staging.port {
        Some(port) => value::port(diagnostics, "staging.port", port),
        None => Some(445),
    };
    let credential = smb_credential(staging, unc, credential_exists, diagnostics);
    let UncParts { host, share, dir } = parts?;
    let unc = if dir.is_empty() {
        format!("\\\\{host}\\{share}")
    } else {
        format!("\\\\{host}\\{share}\\{dir}")
    };
    Some(Staging::Smb {
        unc,
        host,
        share,
        dir,
        port: port?,
        credential: credential?,
    })
}

fn smb_credential(
    staging: &RawStaging,
    unc: &Spanned<String>,
    credential_exists: &dyn Fn(&str) -> bool,
    diagnostics: &mut Diagnostics,
) -> Option<String> {
    let Some(credential) = &staging.credential else {
        let message = "smb staging has no credential".to_string();
        let hint = "add credential = \"NAME\" naming a [credentials.NAME] table";
        diagnostics.report(unc.span().start, "staging.credential", message, hint);
        return None;
    };
    let name = credential.get_ref();
    if !credential_exists(name) {
        let message = format!("credential {name:?} is not defined");
        let hint = format!("add a [credentials.{name}] table or fix the name");
        diagnostics.report(
            credential.span().start,
            "staging.credential",
            message,
            &hint,
        );
        return None;
    }
    Some(name.clone())
}

struct UncParts {
    host: String,
    share: String,
    dir: String,
}

/// Splits `\\host\share[\dir...]`. A trailing backslash is ignored.
fn parse_unc(text: &str) -> Result<UncParts, String> {
    let Some(rest) = text.strip_prefix("\\\\") else {
        return Err("it does not start with \\\\".to_string());
    };
    let rest = rest.strip_suffix('\\').unwrap_or(rest);
    let components: Vec<&str> = rest.split('\\').collect();
    if components.len() < 2 {
        return Err("it has no share name".to_string());
    }
    for component in &components {
        check_unc_component(component)?;
    }
    Ok(UncParts {
        host: components[0].to_string(),
        share: components[1].to_string(),
        dir: components[2..].join("\\"),
    })
}

/// Rejects empty components, `.` and `..`, and characters that Windows does not allow
/// in file names ("Naming Files, Paths, and Namespaces" on Microsoft Learn).
fn check_unc_component(component: &str) -> Result<(), String> {
    if component.is_empty() {
        return Err("it contains an empty component (\\\\)".to_string());
    }
    if component == "." || component == ".." {
        return Err(format!("it contains the relative component {component:?}"));
    }
    let forbidden = ['/', ':', '*', '?', '"', '<', '>', '|'];
    if let Some(character) = component
        .chars()
        .find(|c| forbidden.contains(c) || c.is_control())
    {
        return Err(format!(
            "{component:?} contains the invalid character {character:?}"
        ));
    }
    Ok(())
}

fn sftp(raw: &RawSftp, base_dir: &Path, diagnostics: &mut Diagnostics) -> Option<Staging> {
    let host = value::text(diagnostics, "staging.sftp.host", &raw.host);
    let port = match &raw.port {
        Some(port) => value::port(diagnostics, "staging.sftp.port", port),
        None => Some(22),
    };
    let user = value::text(diagnostics, "staging.sftp.user", &raw.user);
    let key_file = value::local_path(
        diagnostics,
        "staging.sftp.key_file",
        &raw.key_file,
        base_dir,
    );
    let known_hosts = value::local_path(
        diagnostics,
        "staging.sftp.known_hosts",
        &raw.known_hosts,
        base_dir,
    );
    let path = absolute_host_path(diagnostics, "staging.sftp.path", &raw.path);
    let server_path = match &raw.server_path {
        Some(server_path) => server_directory(diagnostics, "staging.sftp.server_path", server_path),
        None => path.clone(),
    };
    Some(Staging::Sftp {
        host: host?,
        port: port?,
        user: user?,
        key_file: key_file?,
        known_hosts: known_hosts?,
        path: path?,
        server_path: server_path?,
    })
}

/// An SFTP path must be absolute because servers resolve relative paths against the
/// login's home directory, which differs between accounts.
fn absolute_host_path(
    diagnostics: &mut Diagnostics,
    key: &str,
    value: &Spanned<String>,
) -> Option<String> {
    let path = value.get_ref();
    if !path.starts_with('/') {
        let message = format!("path {path:?} is not absolute");
        let hint = "write the directory from the root, e.g. \"/var/opt/mssql/backup\"";
        diagnostics.report(value.span().start, key, message, hint);
        return None;
    }
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return Some("/".to_string());
    }
    Some(trimmed.to_string())
}

/// A directory as SQL Server names it must be absolute: `/dir` on Linux, `D:\dir` or
/// `\\host\share` on Windows.
fn server_directory(
    diagnostics: &mut Diagnostics,
    key: &str,
    value: &Spanned<String>,
) -> Option<String> {
    let path = value.get_ref();
    let bytes = path.as_bytes();
    let drive_letter =
        bytes.len() >= 3 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' && bytes[2] == b'\\';
    if path.starts_with('/') || path.starts_with("\\\\") || drive_letter {
        return Some(path.clone());
    }
    let message = format!("server path {path:?} is not absolute");
    let hint = "write it as SQL Server names it: \"/var/opt/mssql/backup\" on Linux, \
                'D:\\Backup' on Windows (in single quotes so that backslashes stay)";
    diagnostics.report(value.span().start, key, message, hint);
    None
}

fn local(raw: &RawLocal, base_dir: &Path, diagnostics: &mut Diagnostics) -> Option<Staging> {
    let server_path = server_directory(diagnostics, "staging.local.server_path", &raw.server_path);
    let dir = value::local_path(diagnostics, "staging.local.dir", &raw.dir, base_dir);
    Some(Staging::Local {
        server_path: server_path?,
        dir: dir?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unc_splits_host_share_dir() {
        let parts = parse_unc("\\\\files01\\sqlbackup\\sales\\prod\\").unwrap();
        assert_eq!(parts.host, "files01");
        assert_eq!(parts.share, "sqlbackup");
        assert_eq!(parts.dir, "sales\\prod");
    }

    #[test]
    fn unc_without_dir_has_empty_dir() {
        let parts = parse_unc("\\\\files01\\sqlbackup").unwrap();
        assert_eq!(parts.dir, "");
    }

    #[test]
    fn unc_rejects_malformed_paths() {
        let cases = [
            ("//files01/sqlbackup", "does not start"),
            ("\\\\files01", "no share"),
            ("\\\\files01\\\\share", "empty component"),
            ("\\\\files01\\share\\..\\x", "relative component"),
            ("\\\\files01\\share\\a:b", "invalid character"),
        ];
        for (text, expected) in cases {
            let error = parse_unc(text).err().unwrap_or_default();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }

    #[test]
    fn join_follows_directory_style() {
        assert_eq!(
            join_server_path("D:\\Backup\\", "a.bak"),
            "D:\\Backup\\a.bak"
        );
        assert_eq!(
            join_server_path("/var/backup/", "a.bak"),
            "/var/backup/a.bak"
        );
    }
}
