//! Fetches, sizes and deletes files through a private smbd with the `smbclient`-based
//! SMB source, including the failures a job must report.

mod support;

use std::time::{Duration, Instant};

use bakfleet::store::Store;
use bakfleet::transfer::{SmbSettings, Source, TransferError};
use sha2::{Digest, Sha256};
use support::{write_random_file, Smbd};

const TIMEOUT: Duration = Duration::from_secs(3);

fn settings(smbd: &Smbd) -> SmbSettings {
    SmbSettings {
        host: "127.0.0.1".to_string(),
        port: smbd.port,
        share: smbd.share.clone(),
        user: smbd.user.clone(),
        password: smbd.password.clone(),
        domain: None,
        timeout: TIMEOUT,
    }
}

#[tokio::test]
async fn smb_fetch_stores_and_removes() {
    let share = tempfile::tempdir().unwrap();
    let staged = share.path().join("sales prod/it's [db].bak");
    let content = write_random_file(&staged, 5 * 1024 * 1024 + 3);
    let smbd = Smbd::start(share.path());
    let store_dir = tempfile::tempdir().unwrap();
    let store = Store::open(store_dir.path()).unwrap();
    let source = Source::smb(settings(&smbd)).await.unwrap();
    let remote = "sales prod\\it's [db].bak";

    assert_eq!(source.size(remote).await.unwrap(), content.len() as u64);

    fetch_and_check(&source, &store, remote, &content).await;

    source.remove("sales prod/it's [db].bak").await.unwrap();
    assert!(!staged.exists());
    let again = source.remove(remote).await.unwrap_err();
    assert!(matches!(again, TransferError::NotFound { .. }), "{again}");
}

/// A store whose path smbclient's `-c` cannot carry (it contains `;`) gets the file through
/// smbclient's standard output instead, with the same content.
#[tokio::test]
async fn smb_fetch_into_unquotable_store_path_streams() {
    let share = tempfile::tempdir().unwrap();
    let content = write_random_file(&share.path().join("a.bak"), 9 * 1024 * 1024 + 1);
    let smbd = Smbd::start(share.path());
    let store_parent = tempfile::tempdir().unwrap();
    let store_dir = store_parent.path().join("store;one");
    std::fs::create_dir(&store_dir).unwrap();
    let store = Store::open(&store_dir).unwrap();
    let source = Source::smb(settings(&smbd)).await.unwrap();

    fetch_and_check(&source, &store, "a.bak", &content).await;
}

/// Fetches `remote` into the store and checks the byte count, the last progress report
/// and the stored hash against `content`.
async fn fetch_and_check(source: &Source, store: &Store, remote: &str, content: &[u8]) {
    let mut sink = store.begin("sales/db/full/a.bak").await.unwrap();
    let mut last_progress = 0;
    let bytes = source
        .fetch(remote, &mut sink, &mut |so_far| last_progress = so_far)
        .await
        .unwrap();
    let stored = sink.commit().await.unwrap();
    assert_eq!(bytes, content.len() as u64);
    assert_eq!(last_progress, bytes);
    assert_eq!(stored.sha256, hex::encode(Sha256::digest(content)));
}

#[tokio::test]
async fn smb_fetch_empty_file() {
    let share = tempfile::tempdir().unwrap();
    write_random_file(&share.path().join("empty.bak"), 0);
    let smbd = Smbd::start(share.path());
    let store_dir = tempfile::tempdir().unwrap();
    let store = Store::open(store_dir.path()).unwrap();
    let source = Source::smb(settings(&smbd)).await.unwrap();

    assert_eq!(source.size("empty.bak").await.unwrap(), 0);
    let mut sink = store.begin("i/d/log/e.trn").await.unwrap();
    let bytes = source
        .fetch("empty.bak", &mut sink, &mut |_| {})
        .await
        .unwrap();
    let stored = sink.commit().await.unwrap();
    assert_eq!(bytes, 0);
    assert_eq!(stored.sha256, hex::encode(Sha256::digest(b"")));
}

#[tokio::test]
async fn smb_missing_file_names_path() {
    let share = tempfile::tempdir().unwrap();
    let smbd = Smbd::start(share.path());
    let store_dir = tempfile::tempdir().unwrap();
    let store = Store::open(store_dir.path()).unwrap();
    let source = Source::smb(settings(&smbd)).await.unwrap();

    let size_error = source.size("nowhere\\gone.bak").await.unwrap_err();
    assert!(
        matches!(size_error, TransferError::NotFound { .. }),
        "{size_error}"
    );
    assert!(
        size_error.to_string().contains("nowhere\\gone.bak"),
        "{size_error}"
    );

    let mut sink = store.begin("i/d/full/a.bak").await.unwrap();
    let fetch_error = source
        .fetch("nowhere\\gone.bak", &mut sink, &mut |_| {})
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
async fn smb_fetch_of_directory_fails() {
    let share = tempfile::tempdir().unwrap();
    std::fs::create_dir(share.path().join("dir")).unwrap();
    let smbd = Smbd::start(share.path());
    let store_dir = tempfile::tempdir().unwrap();
    let store = Store::open(store_dir.path()).unwrap();
    let source = Source::smb(settings(&smbd)).await.unwrap();

    let mut sink = store.begin("i/d/full/a.bak").await.unwrap();
    let error = source
        .fetch("dir", &mut sink, &mut |_| {})
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("NT_STATUS_FILE_IS_A_DIRECTORY"),
        "{error}"
    );
}

#[tokio::test]
async fn smb_wrong_password_fails_logon() {
    let share = tempfile::tempdir().unwrap();
    write_random_file(&share.path().join("a.bak"), 10);
    let smbd = Smbd::start(share.path());
    let mut wrong = settings(&smbd);
    wrong.password = "not-the-password".to_string();
    let source = Source::smb(wrong).await.unwrap();

    let error = source.size("a.bak").await.unwrap_err();
    assert!(
        matches!(error, TransferError::Authentication { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("backup"), "{error}");
    assert!(!error.to_string().contains("not-the-password"), "{error}");
}

#[tokio::test]
async fn smb_unknown_share_is_reported() {
    let share = tempfile::tempdir().unwrap();
    let smbd = Smbd::start(share.path());
    let mut other = settings(&smbd);
    other.share = "nosuch".to_string();
    let source = Source::smb(other).await.unwrap();

    let error = source.size("a.bak").await.unwrap_err();
    assert!(
        matches!(error, TransferError::ShareNotFound { .. }),
        "{error}"
    );
}

#[tokio::test]
async fn smb_stopped_server_fails_fast() {
    let share = tempfile::tempdir().unwrap();
    let mut smbd = Smbd::start(share.path());
    let source = Source::smb(settings(&smbd)).await.unwrap();
    smbd.stop();

    let started = Instant::now();
    let error = source.size("a.bak").await.unwrap_err();

    assert!(
        started.elapsed() < TIMEOUT + Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(error, TransferError::Unreachable { .. }),
        "{error}"
    );
    assert!(error.is_transient());
}

#[tokio::test]
async fn smb_paused_server_times_out() {
    let share = tempfile::tempdir().unwrap();
    write_random_file(&share.path().join("a.bak"), 1024);
    let smbd = Smbd::start(share.path());
    let store_dir = tempfile::tempdir().unwrap();
    let store = Store::open(store_dir.path()).unwrap();
    let source = Source::smb(settings(&smbd)).await.unwrap();
    let pid = smbd.pid() as libc::pid_t;
    // SAFETY: `pid` is the smbd child this test started and still owns.
    unsafe { libc::kill(pid, libc::SIGSTOP) };

    let started = Instant::now();
    let mut sink = store.begin("i/d/full/a.bak").await.unwrap();
    let result = source.fetch("a.bak", &mut sink, &mut |_| {}).await;
    let elapsed = started.elapsed();
    // SAFETY: as above; the server must run again so that it can be stopped.
    unsafe { libc::kill(pid, libc::SIGCONT) };

    let error = result.unwrap_err();
    assert!(
        elapsed < TIMEOUT * 2 + Duration::from_secs(2),
        "{elapsed:?}"
    );
    assert!(error.is_transient(), "{error}");
}

#[tokio::test]
async fn smb_paused_host_spares_others() {
    let paused_share = tempfile::tempdir().unwrap();
    let healthy_share = tempfile::tempdir().unwrap();
    write_random_file(&paused_share.path().join("a.bak"), 1024);
    let content = write_random_file(&healthy_share.path().join("a.bak"), 2 * 1024 * 1024);
    let paused = Smbd::start(paused_share.path());
    let healthy = Smbd::start(healthy_share.path());
    let store_dir = tempfile::tempdir().unwrap();
    let store = Store::open(store_dir.path()).unwrap();
    let paused_source = Source::smb(settings(&paused)).await.unwrap();
    let healthy_source = Source::smb(settings(&healthy)).await.unwrap();
    let pid = paused.pid() as libc::pid_t;
    // SAFETY: `pid` is the smbd child this test started and still owns.
    unsafe { libc::kill(pid, libc::SIGSTOP) };

    let mut paused_sink = store.begin("p/d/full/a.bak").await.unwrap();
    let mut healthy_sink = store.begin("h/d/full/a.bak").await.unwrap();
    let paused_fetch = async {
        let result = paused_source
            .fetch("a.bak", &mut paused_sink, &mut |_| {})
            .await;
        (result, Instant::now())
    };
    let healthy_fetch = async {
        let result = healthy_source
            .fetch("a.bak", &mut healthy_sink, &mut |_| {})
            .await;
        (result, Instant::now())
    };
    let ((paused_result, paused_done), (healthy_result, healthy_done)) =
        tokio::join!(paused_fetch, healthy_fetch);
    // SAFETY: as above; the server must run again so that it can be stopped.
    unsafe { libc::kill(pid, libc::SIGCONT) };

    assert!(paused_result.is_err());
    assert_eq!(healthy_result.unwrap(), content.len() as u64);
    assert!(
        healthy_done < paused_done,
        "the healthy fetch waited for the paused host"
    );
}

#[tokio::test]
async fn smb_lists_files_not_folders() {
    let share = tempfile::tempdir().unwrap();
    let dir = share.path().join("sales");
    std::fs::create_dir_all(dir.join("sub folder")).unwrap();
    std::fs::write(dir.join("Sales_full_20261204T203005.123Z.bak"), b"x").unwrap();
    std::fs::write(dir.join("notes with spaces.txt"), b"yz").unwrap();
    let smbd = Smbd::start(share.path());
    let source = Source::smb(settings(&smbd)).await.unwrap();

    let mut names = source.list_files("sales").await.unwrap();
    names.sort();

    assert_eq!(
        names,
        [
            "Sales_full_20261204T203005.123Z.bak",
            "notes with spaces.txt"
        ]
    );
    let error = source.list_files("missing").await.unwrap_err();
    assert!(error.to_string().contains("missing"), "{error}");
}

/// A share with `smb encrypt = required` rejects sessions that do not encrypt, so the
/// fetch that succeeds there has encrypted its traffic.
#[tokio::test]
async fn smb_encrypted_share_is_fetched() {
    let share = tempfile::tempdir().unwrap();
    let content = write_random_file(&share.path().join("a.bak"), 1024 * 1024 + 7);
    let smbd = Smbd::start_with_share_options(share.path(), "    smb encrypt = required\n");

    let unencrypted = list_share_without_protection(&smbd);
    assert!(
        !unencrypted.status.success(),
        "the share accepted a session without encryption: {}",
        String::from_utf8_lossy(&unencrypted.stdout)
    );
    let rejection = String::from_utf8_lossy(&unencrypted.stdout);
    assert!(rejection.contains("NT_STATUS_ACCESS_DENIED"), "{rejection}");

    let store_dir = tempfile::tempdir().unwrap();
    let store = Store::open(store_dir.path()).unwrap();
    let source = Source::smb(settings(&smbd)).await.unwrap();
    let mut sink = store.begin("sales/db/full/a.bak").await.unwrap();
    let bytes = source.fetch("a.bak", &mut sink, &mut |_| {}).await.unwrap();
    let stored = sink.commit().await.unwrap();

    assert_eq!(bytes, content.len() as u64);
    assert_eq!(stored.sha256, hex::encode(Sha256::digest(&content)));
}

/// Lists the share with smbclient's signing and encryption turned off and SMB 2.1 at most,
/// which has no encryption. smbclient reads the password from `PASSWD`, so it stays off
/// the command line.
fn list_share_without_protection(smbd: &Smbd) -> std::process::Output {
    std::process::Command::new("smbclient")
        .arg("--port")
        .arg(smbd.port.to_string())
        .arg("--user")
        .arg(&smbd.user)
        .arg("--client-protection=off")
        .arg("--max-protocol=SMB2_10")
        .arg(format!("//127.0.0.1/{}", smbd.share))
        .arg("--command")
        .arg("ls")
        .env("PASSWD", &smbd.password)
        .output()
        .expect("run smbclient")
}
