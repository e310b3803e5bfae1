//! Runs `smbclient` as a child process: a private credentials file, a watchdog that kills
//! the child when it makes no progress, and capped capture of its messages.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};

use super::{SMBCLIENT, SMBCLIENT_PACKAGE};
use crate::store::PendingFile;
use crate::transfer::copy::{ChunkCopy, CopyFailure};
use crate::transfer::{SmbSettings, TransferError};

/// Bytes of smbclient's messages kept per stream. Its texts are a few lines, and the cap
/// bounds memory if it prints far more.
const MESSAGE_CAP_BYTES: usize = 64 * 1024;

/// Pipe buffer requested for smbclient's standard output. 1 MiB is the default maximum
/// for unprivileged processes on Linux (`/proc/sys/fs/pipe-max-size`), and it lets
/// smbclient keep reading while the store writes a chunk.
const PIPE_BYTES: libc::c_int = 1 << 20;

/// How often a fetch hashes what smbclient appended to the temp file. At 400 MB/s that
/// is 40 MB at a time, which stays in the page cache and leaves little to hash once
/// smbclient exits.
const FOLLOW_POLL: Duration = Duration::from_millis(100);

/// Time allowed for a killed child to be reaped before it is left to tokio.
const REAP_WAIT: Duration = Duration::from_secs(5);

/// One `smbclient` run against the share in `settings`.
pub(super) struct SmbCommand<'a> {
    pub(super) settings: &'a SmbSettings,
    pub(super) location: String,
    pub(super) operation: &'static str,
}

/// The messages and exit status of a short `smbclient` run.
pub(super) struct CommandOutput {
    pub(super) status: ExitStatus,
    pub(super) stdout: Vec<u8>,
    pub(super) stderr: Vec<u8>,
}

/// The result of a `smbclient` run whose standard output went to the store.
pub(super) struct StreamOutput {
    pub(super) status: ExitStatus,
    pub(super) streamed: u64,
    pub(super) stderr: Vec<u8>,
    stdout_head: Vec<u8>,
    stdout_tail: Vec<u8>,
}

impl CommandOutput {
    /// Returns standard error then standard output as text, for status parsing.
    pub(super) fn text(&self) -> String {
        let mut text = String::from_utf8_lossy(&self.stderr).into_owned();
        text.push('\n');
        text.push_str(&String::from_utf8_lossy(&self.stdout));
        text
    }
}

impl StreamOutput {
    /// Returns standard error and the edges of standard output as text, for status
    /// parsing after a failed transfer.
    pub(super) fn text(&self) -> String {
        let mut text = String::from_utf8_lossy(&self.stderr).into_owned();
        for edge in [&self.stdout_head, &self.stdout_tail] {
            text.push('\n');
            text.push_str(&String::from_utf8_lossy(edge));
        }
        text
    }
}

impl SmbCommand<'_> {
    /// Runs a command that prints a little text (`allinfo`, `del`). The whole run must end
    /// within the timeout, or the child is killed.
    pub(super) async fn run(
        &self,
        command: &str,
        path: &str,
    ) -> Result<CommandOutput, TransferError> {
        let (mut child, _credentials) = self.spawn(command)?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");

        let collect = async {
            let (stdout, stderr) = tokio::join!(
                read_capped(stdout, MESSAGE_CAP_BYTES),
                read_capped(stderr, MESSAGE_CAP_BYTES)
            );
            (stdout, stderr, child.wait().await)
        };
        let (stdout, stderr, status) =
            match tokio::time::timeout(self.settings.timeout, collect).await {
                Ok(result) => result,
                Err(_) => {
                    kill(&mut child, &self.location).await;
                    return Err(self.timed_out(path));
                }
            };
        Ok(CommandOutput {
            status: self.exit_status(status, path)?,
            stdout: stdout.map_err(|error| self.io_error(path, error))?,
            stderr: stderr.map_err(|error| self.io_error(path, error))?,
        })
    }

    /// Runs a command that writes a file to standard output (`get FILE -`) and streams
    /// that output into `sink` in chunks of [`FETCH_CHUNK_BYTES`]. The watchdog kills the
    /// child when no byte arrives within the timeout.
    pub(super) async fn stream(
        &self,
        command: &str,
        path: &str,
        sink: &mut PendingFile,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<StreamOutput, TransferError> {
        let (mut child, _credentials) = self.spawn(command)?;
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        enlarge_pipe(&stdout);
        let stderr_task = tokio::spawn(read_capped(stderr, MESSAGE_CAP_BYTES));

        let mut copy = ChunkCopy::new();
        let copied = copy
            .run(&mut stdout, sink, progress, Some(self.settings.timeout))
            .await;
        if let Err(failure) = copied {
            kill(&mut child, &self.location).await;
            return Err(match failure {
                CopyFailure::Stalled => self.timed_out(path),
                CopyFailure::Read(error) => self.io_error(path, error),
                CopyFailure::Store(source) => self.store_error(path, source),
            });
        }

        let status = match tokio::time::timeout(self.settings.timeout, child.wait()).await {
            Ok(status) => status,
            Err(_) => {
                kill(&mut child, &self.location).await;
                return Err(self.timed_out(path));
            }
        };
        let status = self.exit_status(status, path)?;
        let stderr = match tokio::time::timeout(self.settings.timeout, stderr_task).await {
            Ok(Ok(Ok(stderr))) => stderr,
            _ => Vec::new(),
        };
        Ok(StreamOutput {
            status,
            streamed: copy.streamed,
            stderr,
            stdout_head: copy.head,
            stdout_tail: copy.tail,
        })
    }

    /// Runs a command that appends a file to the store's temp file itself
    /// (`reget FILE LOCAL`) and hashes the appended bytes behind it. smbclient reads the
    /// remote file from the local file's length on, so this starts or resumes a fetch.
    /// Progress comes from the bytes hashed, and the watchdog kills the child when the
    /// file stops growing for the timeout. The messages go to standard output and
    /// standard error, which are captured.
    pub(super) async fn append(
        &self,
        command: &str,
        path: &str,
        sink: &mut PendingFile,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<CommandOutput, TransferError> {
        let (mut child, _credentials) = self.spawn(command)?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let stdout_task = tokio::spawn(read_capped(stdout, MESSAGE_CAP_BYTES));
        let stderr_task = tokio::spawn(read_capped(stderr, MESSAGE_CAP_BYTES));

        let followed = self.follow(&mut child, path, sink, progress).await;
        if followed.is_err() {
            kill(&mut child, &self.location).await;
        }
        // Bytes smbclient wrote are bytes of the remote file even when it failed later,
        // so they count towards the next resume. The child has ended, so none follow.
        let absorbed = sink.absorb_appended().await;
        let status = followed?;
        if absorbed.map_err(|source| self.store_error(path, source))? > 0 {
            progress(sink.bytes_written());
        }
        let collect = |task: tokio::task::JoinHandle<std::io::Result<Vec<u8>>>| async {
            match tokio::time::timeout(self.settings.timeout, task).await {
                Ok(Ok(Ok(bytes))) => bytes,
                _ => Vec::new(),
            }
        };
        Ok(CommandOutput {
            status,
            stdout: collect(stdout_task).await,
            stderr: collect(stderr_task).await,
        })
    }

    /// Waits for the child to exit while hashing what it appends to the temp file every
    /// [`FOLLOW_POLL`], reports the bytes hashed as progress, and fails when nothing was
    /// appended for the timeout. Hashing behind the writer overlaps SHA-256 with the
    /// transfer and reads bytes the page cache still holds.
    async fn follow(
        &self,
        child: &mut Child,
        path: &str,
        sink: &mut PendingFile,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<ExitStatus, TransferError> {
        let mut last_growth = tokio::time::Instant::now();
        let mut tick = tokio::time::interval(FOLLOW_POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                status = child.wait() => return self.exit_status(status, path),
                _ = tick.tick() => {}
            }
            let appended = sink
                .absorb_appended()
                .await
                .map_err(|source| self.store_error(path, source))?;
            if appended > 0 {
                last_growth = tokio::time::Instant::now();
                progress(sink.bytes_written());
            } else if last_growth.elapsed() >= self.settings.timeout {
                return Err(self.timed_out(path));
            }
        }
    }

    /// Starts smbclient with the credentials in a private file, which is removed when the
    /// returned guard drops.
    fn spawn(&self, command: &str) -> Result<(Child, CredentialsFile), TransferError> {
        let settings = self.settings;
        let credentials = CredentialsFile::create(settings)
            .map_err(|error| self.io_error("credentials file", error))?;
        let timeout_seconds = settings.timeout.as_secs_f64().ceil().max(1.0) as u64;

        let mut child_command = Command::new(SMBCLIENT);
        child_command
            // An empty configuration keeps the machine's smb.conf from changing behaviour.
            .args(["--configfile", "/dev/null"])
            .arg("--port")
            .arg(settings.port.to_string())
            .arg("--timeout")
            .arg(timeout_seconds.to_string())
            .arg("--authentication-file")
            .arg(&credentials.file)
            // Signing is required so a tampered stream fails instead of being stored. The
            // session also encrypts when the share requires it (`smb encrypt = required`).
            .arg("--client-protection=sign")
            .arg(format!("//{}/{}", settings.host, settings.share))
            .arg("--command")
            .arg(command)
            // Samba reads a password from PASSWD and a user from USER, so the child gets
            // only PATH and a fixed locale, which keeps its messages parseable.
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);

        let child = child_command.spawn().map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                TransferError::ToolMissing {
                    location: self.location.clone(),
                    program: SMBCLIENT,
                    package: SMBCLIENT_PACKAGE,
                    source,
                }
            } else {
                self.io_error("smbclient", source)
            }
        })?;
        tracing::debug!(
            location = %self.location,
            operation = self.operation,
            pid = child.id(),
            "started smbclient"
        );
        Ok((child, credentials))
    }

    fn exit_status(
        &self,
        status: std::io::Result<ExitStatus>,
        path: &str,
    ) -> Result<ExitStatus, TransferError> {
        status.map_err(|error| self.io_error(path, error))
    }

    fn store_error(&self, path: &str, source: crate::store::StoreError) -> TransferError {
        TransferError::Store {
            location: self.location.clone(),
            path: path.to_string(),
            source,
        }
    }

    fn timed_out(&self, path: &str) -> TransferError {
        TransferError::TimedOut {
            location: self.location.clone(),
            path: path.to_string(),
            operation: self.operation,
            timeout: self.settings.timeout,
        }
    }

    fn io_error(&self, path: &str, source: std::io::Error) -> TransferError {
        TransferError::Io {
            location: self.location.clone(),
            path: path.to_string(),
            operation: self.operation,
            source,
        }
    }
}

/// A credentials file for `smbclient --authentication-file` in a directory only this user
/// can enter. Dropping it removes both, so the password lives on disk only while one
/// operation runs.
pub(super) struct CredentialsFile {
    dir: PathBuf,
    file: PathBuf,
}

impl CredentialsFile {
    fn create(settings: &SmbSettings) -> std::io::Result<CredentialsFile> {
        let dir = std::env::temp_dir().join(format!("bakfleet-smb-{}", uuid::Uuid::new_v4()));
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        let guard = CredentialsFile {
            file: dir.join("credentials"),
            dir,
        };
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&guard.file)?;
        let mut content = format!(
            "username = {}\npassword = {}\n",
            settings.user, settings.password
        );
        if let Some(domain) = &settings.domain {
            content.push_str(&format!("domain = {domain}\n"));
        }
        file.write_all(content.as_bytes())?;
        Ok(guard)
    }
}

impl Drop for CredentialsFile {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_dir_all(&self.dir) {
            tracing::warn!(dir = %self.dir.display(), %error, "cannot remove SMB credentials directory");
        }
    }
}

/// Reads `reader` to its end, keeping at most `cap` bytes.
async fn read_capped(mut reader: impl AsyncRead + Unpin, cap: usize) -> std::io::Result<Vec<u8>> {
    let mut captured = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        let count = reader.read(&mut buffer).await?;
        if count == 0 {
            return Ok(captured);
        }
        let room = cap.saturating_sub(captured.len()).min(count);
        captured.extend_from_slice(&buffer[..room]);
    }
}

/// Sends SIGKILL to the child by its PID and reaps it.
async fn kill(child: &mut Child, location: &str) {
    let pid = child.id();
    if let Err(error) = child.start_kill() {
        tracing::warn!(location, ?pid, %error, "cannot kill smbclient");
        return;
    }
    if tokio::time::timeout(REAP_WAIT, child.wait()).await.is_err() {
        tracing::warn!(location, ?pid, "killed smbclient has not exited yet");
    } else {
        tracing::warn!(
            location,
            ?pid,
            "killed smbclient after a stalled or failed transfer"
        );
    }
}

/// Asks Linux for a larger pipe buffer, so smbclient blocks less often while a chunk is
/// written to the store. Failure only costs speed.
fn enlarge_pipe(stdout: &tokio::process::ChildStdout) {
    use std::os::fd::AsRawFd;

    // SAFETY: the descriptor belongs to `stdout`, which outlives the call, and
    // F_SETPIPE_SZ changes only the pipe's capacity.
    let result = unsafe { libc::fcntl(stdout.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_BYTES) };
    if result < 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "cannot enlarge smbclient pipe");
    }
}
