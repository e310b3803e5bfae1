//! Fetches, sizes and deletes files through a private OpenSSH sshd with the russh SFTP
//! source, including host key and authentication failures.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use bakfleet::store::Store;
use bakfleet::transfer::{SftpSettings, Source, TransferError};
use sha2::{Digest, Sha256};
use support::{write_random_file, Sshd};

const TIMEOUT: Duration = Duration::from_secs(5);

fn settings(sshd: &Sshd) -> SftpSettings {
    SftpSettings {
        host: "127.0.0.1".to_string(),
        port: sshd.port,
        user: sshd.user.clone(),
        key_file: sshd.key_path.clone(),
        known_hosts: sshd.known_hosts_path.clone(),
        timeout: TIMEOUT,
    }
}

fn path_text(path: &Path) -> String {
    path.to_str().unwrap().to_string()
}

#[tokio::test]
async fn sftp_fetch_stores_and_removes() {
    let staging = tempfile::tempdir().unwrap();
    let staged = staging.path().join("it's a [db] file.bak");
    let content = write_random_file(&staged, 6 * 1024 * 1024 + 5);
    let sshd = Sshd::start();
    let store_dir = tempfile::tempdir().unwrap();
    let store = Store::open(store_dir.path()).unwrap();
    let source = Source::sftp(settings(&sshd)).await.unwrap();
    let remote = path_text(&staged);

    assert_eq!(source.size(&remote).await.unwrap(), content.len() as u64);

    let mut sink = store.begin("i/d/full/a.bak").await.unwrap();
    let mut reports = Vec::new();
    let bytes = source
        .fetch(&remote, &mut sink, &mut |so_far| reports.push(so_far))
        .await
        .unwrap();
    let stored = sink.commit().await.unwrap();
    assert_eq!(bytes, content.len() as u64);
    assert_eq!(reports.last().copied(), Some(bytes));
    assert_eq!(stored.sha256, hex::encode(Sha256::digest(&content)));

    source.remove(&remote).await.unwrap();
    assert!(!staged.exists());
    let again = source.remove(&remote).await.unwrap_err();
    assert!(matches!(again, TransferError::NotFound { .. }), "{again}");
}

#[tokio::test]
async fn sftp_missing_file_names_path() {
    let staging = tempfile::tempdir().unwrap();
    let sshd = Sshd::start();
    let store_dir = tempfile::tempdir().unwrap();
    let store = Store::open(store_dir.path()).unwrap();
    let source = Source::sftp(settings(&sshd)).await.unwrap();
    let missing = path_text(&staging.path().join("gone.bak"));

    let size_error = source.size(&missing).await.unwrap_err();
    assert!(
        matches!(size_error, TransferError::NotFound { .. }),
        "{size_error}"
    );
    assert!(size_error.to_string().contains(&missing), "{size_error}");

    let mut sink = store.begin("i/d/full/a.bak").await.unwrap();
    let fetch_error = source
        .fetch(&missing, &mut sink, &mut |_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(fetch_error, TransferError::NotFound { .. }),
        "{fetch_error}"
    );
    assert!(
        fetch_error.to_string().contains("gone.bak"),
        "{fetch_error}"
    );
}

#[tokio::test]
async fn sftp_unknown_host_key_is_rejected() {
    let sshd = Sshd::start();
    let empty = tempfile::NamedTempFile::new().unwrap();
    let mut unknown = settings(&sshd);
    unknown.known_hosts = empty.path().to_path_buf();

    let error = Source::sftp(unknown).await.unwrap_err();

    assert!(matches!(error, TransferError::HostKey { .. }), "{error}");
    assert!(error.to_string().contains("SHA256:"), "{error}");
    assert!(error.to_string().contains("is not listed"), "{error}");
}

#[tokio::test]
async fn sftp_changed_host_key_is_rejected() {
    let sshd = Sshd::start();
    let mut changed = settings(&sshd);
    changed.known_hosts = sshd.known_hosts_with_other_key();

    let error = Source::sftp(changed).await.unwrap_err();

    assert!(matches!(error, TransferError::HostKey { .. }), "{error}");
    assert!(error.to_string().contains("changed"), "{error}");
    assert!(error.to_string().contains("SHA256:"), "{error}");
}

#[tokio::test]
async fn sftp_unauthorized_key_fails_login() {
    let sshd = Sshd::start();
    let other_dir = tempfile::tempdir().unwrap();
    let other_key = other_dir.path().join("other_key");
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other_key)
        .status()
        .unwrap();
    assert!(status.success(), "ssh-keygen failed");
    let mut wrong = settings(&sshd);
    wrong.key_file = other_key;

    let error = Source::sftp(wrong).await.unwrap_err();

    assert!(
        matches!(error, TransferError::Authentication { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("root"), "{error}");
}

#[tokio::test]
async fn sftp_stopped_server_fails_fast() {
    let mut sshd = Sshd::start();
    let config = settings(&sshd);
    sshd.stop();

    let started = Instant::now();
    let error = Source::sftp(config).await.unwrap_err();

    assert!(started.elapsed() < TIMEOUT, "{:?}", started.elapsed());
    assert!(
        matches!(error, TransferError::Unreachable { .. }),
        "{error}"
    );
    assert!(error.is_transient());
}

#[tokio::test]
async fn sftp_silent_server_times_out() {
    // A listener that accepts and never replies, as a hung sshd would.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let keys = tempfile::tempdir().unwrap();
    let config = SftpSettings {
        host: "127.0.0.1".to_string(),
        port,
        user: "root".to_string(),
        key_file: keys.path().join("absent"),
        known_hosts: keys.path().join("known_hosts"),
        timeout: Duration::from_secs(1),
    };

    let started = Instant::now();
    let error = Source::sftp(config).await.unwrap_err();

    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(error, TransferError::TimedOut { .. }), "{error}");
    drop(listener);
}
