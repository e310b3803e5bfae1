//! SMB transfers through Samba's `smbclient`, one child process per operation.
//!
//! Why a child process: the pure-Rust `smb` crate (0.12) hung on pipelined 1 MiB reads
//! against Samba 4.17, and `pavao` (libsmbclient) serialises every call in the process
//! behind one mutex, so one stuck host would stall all others. A child process per
//! operation isolates hosts and can always be killed.
//!
//! A fetch lets smbclient write the store's temp file (`reget`) and hashes the file
//! behind it. On a 2-core machine over loopback, a 1 GiB fetch that way took 1.6 s with
//! hashing and `fdatasync`, where streaming through a pipe had taken 5.6 s and
//! `smbclient get` into a file 1.2 s.
//!
//! The limits: every operation pays a new connection and logon (80-100 ms on that
//! machine). Paths cannot contain `;`, because smbclient's `-c` splits commands on it even
//! inside quotes, nor the characters Windows forbids in file names. Each call needs the
//! `smbclient` binary from the Debian package `smbclient`.

mod process;
mod status;

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::{SmbSettings, TransferError};
use crate::store::{PendingFile, StoreError};
use process::SmbCommand;

/// Program run for every SMB operation.
const SMBCLIENT: &str = "smbclient";

/// Debian package that provides [`SMBCLIENT`].
const SMBCLIENT_PACKAGE: &str = "smbclient";

/// Characters that smbclient's `-c` cannot carry inside a quoted path (`"` ends the quote,
/// `;` ends the command) or that are wildcards to `del` and invalid in Windows file names.
const FORBIDDEN_PATH_CHARS: &[char] = &['"', ';', '*', '?', '<', '>', '|'];

/// Set once `smbclient --version` has succeeded in this process. The check costs a
/// process start (90 ms measured) before every fetch otherwise, and a later spawn still
/// reports a program removed since as missing.
static SMBCLIENT_RUNS: AtomicBool = AtomicBool::new(false);

/// An SMB share reached with `smbclient`, one process per operation.
#[derive(Debug)]
pub struct SmbSource {
    settings: SmbSettings,
}

impl SmbSource {
    pub(super) async fn new(settings: SmbSettings) -> Result<SmbSource, TransferError> {
        let source = SmbSource { settings };
        source.check_settings()?;
        if !SMBCLIENT_RUNS.load(Ordering::Relaxed) {
            source.check_smbclient_runs().await?;
            SMBCLIENT_RUNS.store(true, Ordering::Relaxed);
        }
        Ok(source)
    }

    pub(super) fn describe(&self) -> String {
        let settings = &self.settings;
        format!(
            "smb://{}:{}/{}",
            settings.host, settings.port, settings.share
        )
    }

    pub(super) async fn size(&self, path: &str) -> Result<u64, TransferError> {
        let smb_path = self.smb_path(path)?;
        let command = format!("allinfo \"{smb_path}\"");
        let output = self.command("size").run(&command, path).await?;
        // allinfo exits 0 even when the file is missing, so the status text decides.
        if let Some(error) = self.status_error(&output.text(), path, "size") {
            return Err(error);
        }
        status::parse_allinfo_size(&output.stdout).ok_or_else(|| TransferError::Failed {
            location: self.describe(),
            path: path.to_string(),
            operation: "size",
            detail: format!(
                "smbclient allinfo printed no data stream size; is it a directory? output: {}",
                status::last_line(&output.text())
            ),
        })
    }

    /// Fetches `path` into `sink`. smbclient writes the store's temp file itself, from the
    /// temp file's current length on, while bakfleet hashes what it appended. So the same
    /// call starts a fetch and resumes one. When the temp path cannot pass through
    /// smbclient's `-c`, the file streams through a pipe from the start instead.
    pub(super) async fn fetch(
        &self,
        path: &str,
        sink: &mut PendingFile,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<u64, TransferError> {
        let smb_path = self.smb_path(path)?;
        match resumable_local_path(sink) {
            Some(local) => {
                self.fetch_into(path, &smb_path, &local, sink, progress)
                    .await
            }
            None => {
                self.fetch_through_pipe(path, &smb_path, sink, progress)
                    .await
            }
        }
    }

    /// Lets `reget` append the file to the store's temp file from its length on.
    ///
    /// Why not a pipe: `get FILE -` through a pipe ran at about half the speed of `get`
    /// into a file on a 2-core machine, because every pipe write wakes the reader, and
    /// the bytes are copied once more. Reading back what smbclient wrote comes from the
    /// page cache.
    async fn fetch_into(
        &self,
        path: &str,
        smb_path: &str,
        local: &str,
        sink: &mut PendingFile,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<u64, TransferError> {
        let offset = sink.bytes_written();
        let command = format!("reget \"{smb_path}\" \"{local}\"");
        let output = self
            .command("fetch")
            .append(&command, path, sink, progress)
            .await?;
        let text = output.text();
        let received = sink.bytes_written();
        if offset > 0 {
            tracing::debug!(location = %self.describe(), path, offset, received, "resumed SMB fetch");
        }
        // smbclient 4.17 prints the summary line to standard error and error texts to
        // standard output, so both are searched.
        let expected = status::parse_get_size(text.as_bytes());
        if expected.is_none() || !output.status.success() {
            if let Some(error) = self.local_write_error(&text, path, sink) {
                return Err(error);
            }
        }
        self.fetch_outcome(path, expected, received, output.status, &text)
    }

    /// Streams the whole file through smbclient's standard output into `sink`. A temp
    /// file that already contains part of the file is emptied first, because the stream
    /// starts at the beginning.
    async fn fetch_through_pipe(
        &self,
        path: &str,
        smb_path: &str,
        sink: &mut PendingFile,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<u64, TransferError> {
        if sink.bytes_written() > 0 {
            sink.resume_point(0)
                .await
                .map_err(|source| super::store_error(&self.describe(), path, source))?;
        }
        // `get FILE -` writes the file to standard output and its summary line, with the
        // file size, to standard error. Error texts go to standard output instead.
        let command = format!("get \"{smb_path}\" -");
        let output = self
            .command("fetch")
            .stream(&command, path, sink, progress)
            .await?;
        let text = output.text();
        let expected = status::parse_get_size(&output.stderr);
        self.fetch_outcome(path, expected, output.streamed, output.status, &text)
    }

    /// Turns a finished fetch into its result: the size when smbclient succeeded and
    /// `received` matches the size its summary line gave, else the error its exit and
    /// `text` show.
    fn fetch_outcome(
        &self,
        path: &str,
        expected: Option<u64>,
        received: u64,
        exit: ExitStatus,
        text: &str,
    ) -> Result<u64, TransferError> {
        match expected {
            Some(expected) if exit.success() && expected == received => Ok(expected),
            Some(expected) if exit.success() => Err(TransferError::Truncated {
                location: self.describe(),
                path: path.to_string(),
                operation: "fetch",
                received,
                expected,
            }),
            _ => Err(self
                .status_error(text, path, "fetch")
                .unwrap_or_else(|| self.failed(path, "fetch", text, exit))),
        }
    }

    pub(super) async fn list_files(&self, path: &str) -> Result<Vec<String>, TransferError> {
        let pattern = if path.is_empty() {
            "*".to_string()
        } else {
            format!("{}\\*", self.smb_path(path)?.trim_end_matches('\\'))
        };
        let command = format!("ls \"{pattern}\"");
        let output = self.command("list").run(&command, path).await?;
        let text = output.text();
        if let Some(error) = self.status_error(&text, path, "list") {
            return Err(error);
        }
        if !output.status.success() {
            return Err(self.failed(path, "list", &text, output.status));
        }
        Ok(status::parse_ls_file_names(&output.stdout))
    }

    pub(super) async fn check_folder(&self, path: &str) -> Result<(), TransferError> {
        // `ls` fails with a status text when the folder is missing or the account may not
        // list it, and it logs on like every operation.
        let pattern = if path.is_empty() {
            "*".to_string()
        } else {
            format!("{}\\*", self.smb_path(path)?.trim_end_matches('\\'))
        };
        let command = format!("ls \"{pattern}\"");
        let output = self.command("list").run(&command, path).await?;
        let text = output.text();
        if let Some(error) = self.status_error(&text, path, "list") {
            return Err(error);
        }
        if !output.status.success() {
            return Err(self.failed(path, "list", &text, output.status));
        }
        Ok(())
    }

    pub(super) async fn remove(&self, path: &str) -> Result<(), TransferError> {
        let smb_path = self.smb_path(path)?;
        let command = format!("del \"{smb_path}\"");
        let output = self.command("remove").run(&command, path).await?;
        let text = output.text();
        if let Some(error) = self.status_error(&text, path, "remove") {
            return Err(error);
        }
        if !output.status.success() {
            return Err(self.failed(path, "remove", &text, output.status));
        }
        Ok(())
    }

    fn command(&self, operation: &'static str) -> SmbCommand<'_> {
        SmbCommand {
            settings: &self.settings,
            location: self.describe(),
            operation,
        }
    }

    /// Converts `path` to the backslash form smbclient expects and rejects characters
    /// that cannot be passed through `-c`.
    fn smb_path(&self, path: &str) -> Result<String, TransferError> {
        let invalid = |reason: &str| TransferError::InvalidPath {
            location: self.describe(),
            path: path.to_string(),
            reason: reason.to_string(),
        };
        if path.contains(FORBIDDEN_PATH_CHARS) {
            return Err(invalid(
                "SMB paths cannot contain \" ; * ? < > | because smbclient's command line \
                 or Windows file names do not allow them; rename the staging directory",
            ));
        }
        if path.chars().any(char::is_control) {
            return Err(invalid("SMB paths cannot contain control characters"));
        }
        let converted = path.replace('/', "\\");
        let trimmed = converted.trim_start_matches('\\');
        if trimmed.is_empty() {
            return Err(invalid("the path inside the share is empty"));
        }
        Ok(trimmed.to_string())
    }

    /// Rejects settings that would let a value escape its place in the `smbclient`
    /// arguments or in the credentials file.
    fn check_settings(&self) -> Result<(), TransferError> {
        let settings = &self.settings;
        let invalid = |setting: &'static str, reason: &str| TransferError::InvalidSetting {
            location: self.describe(),
            setting,
            reason: reason.to_string(),
        };
        let has_line_break = |text: &str| text.contains(['\n', '\r', '\0']);

        if settings.host.is_empty() || settings.host.contains(['/', '\\', ' ', ':']) {
            // TODO: IPv6 literals are rejected because a UNC name cannot carry them as is.
            return Err(invalid(
                "host",
                "an SMB host must be a host name or IPv4 address",
            ));
        }

        if settings.share.is_empty()
            || settings.share.contains(['/', '\\'])
            || has_line_break(&settings.share)
        {
            return Err(invalid(
                "share",
                "a share name must be non-empty, without slashes or line breaks",
            ));
        }

        let domain = settings.domain.as_deref().unwrap_or("");
        if has_line_break(&settings.user)
            || has_line_break(&settings.password)
            || has_line_break(domain)
        {
            return Err(invalid(
                "credential",
                "user, password and domain cannot contain line breaks because smbclient \
                 reads them from a line-based credentials file",
            ));
        }

        // smbclient 4.17 trims spaces around each value of the credentials file, so such
        // a password would fail to log on with a misleading logon failure.
        if settings.password.trim() != settings.password {
            return Err(invalid(
                "credential",
                "an SMB password cannot start or end with a space because smbclient's \
                 credentials file trims them",
            ));
        }
        Ok(())
    }

    async fn check_smbclient_runs(&self) -> Result<(), TransferError> {
        let mut command = tokio::process::Command::new(SMBCLIENT);
        command
            .arg("--version")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true);
        let missing = |source| TransferError::ToolMissing {
            location: self.describe(),
            program: SMBCLIENT,
            package: SMBCLIENT_PACKAGE,
            source,
        };
        let status = tokio::time::timeout(Duration::from_secs(10), command.status())
            .await
            .map_err(|_| missing(std::io::ErrorKind::TimedOut.into()))?
            .map_err(missing)?;
        if !status.success() {
            let source = std::io::Error::other(format!("`smbclient --version` exited {status}"));
            return Err(missing(source));
        }
        Ok(())
    }

    fn status_error(
        &self,
        text: &str,
        path: &str,
        operation: &'static str,
    ) -> Option<TransferError> {
        status::classify(text, &self.describe(), &self.settings.user, path, operation)
    }

    /// Recognises smbclient's report that it could not write the temp file, because it
    /// reports a full local disk (`ENOSPC`) as `NT_STATUS_DISK_FULL`. Returns a store
    /// error that names the temp file, since the share itself was read without fault.
    fn local_write_error(
        &self,
        text: &str,
        path: &str,
        sink: &PendingFile,
    ) -> Option<TransferError> {
        if !text.contains("NT_STATUS_DISK_FULL") {
            return None;
        }
        Some(TransferError::Store {
            location: self.describe(),
            path: path.to_string(),
            source: StoreError::Write {
                path: sink.temp_path().to_path_buf(),
                source: std::io::Error::from_raw_os_error(libc::ENOSPC),
            },
        })
    }

    /// Builds the error of a smbclient run that failed without a known status text. A
    /// child ended by SIGPIPE wrote to its connection after the server had closed it, as
    /// when smbd restarts mid-transfer. That is a cut connection, which a retry may get
    /// past.
    fn failed(
        &self,
        path: &str,
        operation: &'static str,
        text: &str,
        exit: ExitStatus,
    ) -> TransferError {
        if exit.signal() == Some(libc::SIGPIPE) {
            return TransferError::Unreachable {
                location: self.describe(),
                operation,
                detail: "smbclient ended on SIGPIPE: its connection to the server broke"
                    .to_string(),
            };
        }
        TransferError::Failed {
            location: self.describe(),
            path: path.to_string(),
            operation,
            detail: format!("smbclient {exit}: {}", status::last_line(text)),
        }
    }
}

/// Returns the temp file's path when smbclient's `-c` can carry it inside quotes.
fn resumable_local_path(sink: &PendingFile) -> Option<String> {
    let local = sink.temp_path().to_str()?;
    let carried = !local.contains(['"', ';']) && !local.chars().any(char::is_control);
    carried.then(|| local.to_string())
}

#[cfg(test)]
mod tests;
