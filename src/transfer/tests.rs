use super::*;
use crate::store::Store;
use sha2::{Digest, Sha256};

fn write_sample(dir: &std::path::Path, len: usize) -> (String, Vec<u8>) {
    let content: Vec<u8> = (0..len).map(|i| (i * 7 % 253) as u8).collect();
    let path = dir.join("staged.bak");
    std::fs::write(&path, &content).unwrap();
    (path.to_str().unwrap().to_string(), content)
}

#[tokio::test]
async fn local_fetch_streams_into_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let (path, content) = write_sample(dir.path(), 9 * 1024 * 1024 + 17);
    let source = Source::local();
    let mut sink = store.begin("i/d/full/a.bak").await.unwrap();
    let mut reports = Vec::new();

    let bytes = source
        .fetch(&path, &mut sink, &mut |so_far| reports.push(so_far))
        .await
        .unwrap();
    let stored = sink.commit().await.unwrap();

    assert_eq!(bytes, content.len() as u64);
    assert_eq!(stored.sha256, hex::encode(Sha256::digest(&content)));
    assert_eq!(reports.last().copied(), Some(bytes));
    assert_eq!(reports.len(), 3, "chunks of 4 MiB: {reports:?}");
    assert_eq!(source.size(&path).await.unwrap(), bytes);
}

#[tokio::test]
async fn local_remove_deletes_file() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = write_sample(dir.path(), 10);
    Source::local().remove(&path).await.unwrap();
    assert!(!std::path::Path::new(&path).exists());
}

#[tokio::test]
async fn local_missing_file_names_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("gone.bak");
    let error = Source::local()
        .size(missing.to_str().unwrap())
        .await
        .unwrap_err();
    assert!(matches!(error, TransferError::NotFound { .. }), "{error}");
    assert!(error.to_string().contains("gone.bak"), "{error}");
    assert!(!error.is_transient());
}

#[tokio::test]
async fn local_rejects_relative_path() {
    let error = Source::local().size("relative/x.bak").await.unwrap_err();
    assert!(
        matches!(error, TransferError::InvalidPath { .. }),
        "{error}"
    );
}

#[tokio::test]
async fn local_rejects_directory() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let mut sink = store.begin("i/d/full/a.bak").await.unwrap();
    let error = Source::local()
        .fetch(dir.path().to_str().unwrap(), &mut sink, &mut |_| {})
        .await
        .unwrap_err();
    assert!(error.to_string().contains("not a regular file"), "{error}");
}

#[test]
fn describe_local_source() {
    assert_eq!(Source::local().describe(), "local");
}

#[test]
fn source_futures_are_send() {
    fn require_send<T: Send>(_: &T) {}
    fn require_send_sync<T: Send + Sync>() {}

    // Jobs run on a multi-thread runtime, so sources are shared and fetches spawned.
    require_send_sync::<Source>();
    require_send_sync::<crate::store::Store>();
    let source = Source::local();
    let mut reports = |_: u64| {};
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut sink = runtime.block_on(store.begin("a.bak")).unwrap();
    let fetch = source.fetch("/nonexistent", &mut sink, &mut reports);
    require_send(&fetch);
    let size = source.size("/nonexistent");
    require_send(&size);
    let remove = source.remove("/nonexistent");
    require_send(&remove);
}
