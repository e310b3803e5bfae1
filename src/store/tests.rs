use super::*;
use crate::backup::BackupType;
use time::OffsetDateTime;

fn open_temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("store")).expect("open store");
    (dir, store)
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list dir")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[tokio::test]
async fn commit_stores_bytes_and_hash() {
    let (_dir, store) = open_temp_store();
    let mut pending = store.begin("inst/db/full/a.bak").await.unwrap();
    pending.write(b"hello ").await.unwrap();
    pending.write(b"world").await.unwrap();
    assert_eq!(pending.bytes_written(), 11);

    let stored = pending.commit().await.unwrap();

    assert_eq!(stored.rel_path, "inst/db/full/a.bak");
    assert_eq!(stored.size, 11);
    assert_eq!(stored.sha256, sha256_hex(b"hello world"));
    let on_disk = std::fs::read(store.absolute("inst/db/full/a.bak")).unwrap();
    assert_eq!(on_disk, b"hello world");
    assert_eq!(names_in(&store.absolute("inst/db/full")), ["a.bak"]);
}

#[tokio::test]
async fn begin_hides_bytes_until_commit() {
    let (_dir, store) = open_temp_store();
    let mut pending = store.begin("i/d/log/x.trn").await.unwrap();
    pending.write(&[7u8; 4096]).await.unwrap();

    let final_path = store.absolute("i/d/log/x.trn");
    assert!(!final_path.exists());
    let names = names_in(&store.absolute("i/d/log"));
    assert_eq!(names.len(), 1);
    assert!(names[0].starts_with(".x.trn."), "{names:?}");
    assert!(names[0].ends_with(".partial"), "{names:?}");
    assert_eq!(pending.temp_path().file_name().unwrap(), names[0].as_str());

    pending.commit().await.unwrap();
    assert!(final_path.exists());
}

#[tokio::test]
async fn drop_without_commit_removes_temp() {
    let (_dir, store) = open_temp_store();
    let mut pending = store.begin("i/d/full/x.bak").await.unwrap();
    pending.write(b"partial").await.unwrap();
    drop(pending);

    assert!(names_in(&store.absolute("i/d/full")).is_empty());
}

#[tokio::test]
async fn begin_rejects_existing_final_name() {
    let (_dir, store) = open_temp_store();
    let pending = store.begin("i/d/full/x.bak").await.unwrap();
    pending.commit().await.unwrap();

    let error = store.begin("i/d/full/x.bak").await.unwrap_err();
    assert!(matches!(error, StoreError::AlreadyExists { .. }), "{error}");
    assert!(error.to_string().contains("x.bak"), "{error}");
}

#[tokio::test]
async fn commit_never_replaces_existing_file() {
    let (_dir, store) = open_temp_store();
    let mut first = store.begin("i/d/full/x.bak").await.unwrap();
    let mut second = store.begin("i/d/full/x.bak").await.unwrap();
    first.write(b"first").await.unwrap();
    second.write(b"second").await.unwrap();
    first.commit().await.unwrap();

    let error = second.commit().await.unwrap_err();

    assert!(matches!(error, StoreError::AlreadyExists { .. }), "{error}");
    let on_disk = std::fs::read(store.absolute("i/d/full/x.bak")).unwrap();
    assert_eq!(on_disk, b"first");
    assert_eq!(names_in(&store.absolute("i/d/full")), ["x.bak"]);
}

#[tokio::test]
async fn rename_fallback_never_replaces_file() {
    let (dir, _store) = open_temp_store();
    let from = dir.path().join("from");
    let to = dir.path().join("to");
    std::fs::write(&from, b"new").unwrap();
    std::fs::write(&to, b"old").unwrap();

    let error = sync::rename_no_replace(&from, &to).unwrap_err();
    assert!(matches!(error, StoreError::AlreadyExists { .. }), "{error}");
    let error = sync::link_then_unlink(&from, &to).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::AlreadyExists);
    assert_eq!(std::fs::read(&to).unwrap(), b"old");
}

#[tokio::test]
async fn begin_rejects_paths_outside_root() {
    let (_dir, store) = open_temp_store();
    let cases = [
        "/etc/passwd",
        "../escape.bak",
        "a/../../escape.bak",
        "a/./b.bak",
        "a//b.bak",
        "",
        "a/",
        "a\\b.bak",
        "a/b\0.bak",
    ];
    for rel_path in cases {
        let error = store.begin(rel_path).await.unwrap_err();
        assert!(
            matches!(error, StoreError::InvalidPath { .. }),
            "{rel_path:?} gave {error}"
        );
    }
}

#[tokio::test]
async fn begin_rejects_overlong_component() {
    let (_dir, store) = open_temp_store();
    let long_name = format!("i/d/full/{}.bak", "x".repeat(260));
    let error = store.begin(&long_name).await.unwrap_err();
    assert!(error.to_string().contains("255 bytes"), "{error}");
}

#[tokio::test]
async fn begin_accepts_longest_component() {
    let (_dir, store) = open_temp_store();
    let name = format!("i/{}", "x".repeat(255));
    let mut pending = store.begin(&name).await.unwrap();
    pending.write(b"x").await.unwrap();
    pending.commit().await.unwrap();
}

#[tokio::test]
async fn begin_rejects_temp_file_names() {
    let (_dir, store) = open_temp_store();
    let name = format!("i/.a.bak.{}.partial", "0".repeat(32));
    let error = store.begin(&name).await.unwrap_err();
    assert!(matches!(error, StoreError::InvalidPath { .. }), "{error}");
}

#[tokio::test]
async fn begin_reports_file_in_directory_place() {
    let (_dir, store) = open_temp_store();
    std::fs::write(store.absolute("blocker"), b"x").unwrap();
    let error = store.begin("blocker/db/full/a.bak").await.unwrap_err();
    assert!(matches!(error, StoreError::CreateDir { .. }), "{error}");
    assert!(error.to_string().contains("blocker"), "{error}");
}

#[tokio::test]
async fn rehash_matches_commit_hash() {
    let (_dir, store) = open_temp_store();
    let content: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut pending = store.begin("i/d/full/big.bak").await.unwrap();
    for chunk in content.chunks(700_001) {
        pending.write(chunk).await.unwrap();
    }
    let stored = pending.commit().await.unwrap();

    let (size, sha256) = store.rehash("i/d/full/big.bak").await.unwrap();

    assert_eq!(size, content.len() as u64);
    assert_eq!(sha256, sha256_hex(&content));
    assert_eq!(sha256, stored.sha256);
}

#[tokio::test]
async fn read_back_hashes_whole_file() {
    let (_dir, store) = open_temp_store();
    let content: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut pending = store.begin("i/d/full/big.bak").await.unwrap();
    pending.write(&content).await.unwrap();
    let stored = pending.commit().await.unwrap();

    let (size, sha256, head) = store
        .read_back("i/d/full/big.bak", |reader| {
            let mut head = [0u8; 5];
            reader.read_exact(&mut head).map(|()| head)
        })
        .await
        .unwrap();

    assert_eq!(head.unwrap(), content[..5]);
    assert_eq!(size, content.len() as u64);
    assert_eq!(sha256, stored.sha256);
}

#[tokio::test]
async fn rehash_missing_file_names_path() {
    let (_dir, store) = open_temp_store();
    let error = store.rehash("i/d/full/gone.bak").await.unwrap_err();
    assert!(matches!(error, StoreError::Read { .. }), "{error}");
    assert!(error.to_string().contains("gone.bak"), "{error}");
}

#[tokio::test]
async fn remove_partial_files_after_crash() {
    let (_dir, store) = open_temp_store();
    let committed = store.begin("i/d/full/kept.bak").await.unwrap();
    committed.commit().await.unwrap();
    let deep = store.begin("i/d/log/a.trn").await.unwrap();
    let shallow = store.begin("top.bak").await.unwrap();
    // Forgetting the pending files leaves their temp files as a crash would.
    std::mem::forget(deep);
    std::mem::forget(shallow);
    std::fs::write(store.absolute("i/d/log/.hidden-user-file"), b"x").unwrap();

    let removed = store.remove_partial_files(Duration::ZERO).await.unwrap();

    assert_eq!(removed, 2);
    assert_eq!(names_in(&store.absolute("i/d/log")), [".hidden-user-file"]);
    assert_eq!(names_in(&store.absolute("i/d/full")), ["kept.bak"]);
    assert_eq!(store.remove_partial_files(Duration::ZERO).await.unwrap(), 0);
}

#[tokio::test]
async fn remove_partial_files_keeps_active_writes() {
    let (_dir, store) = open_temp_store();
    let mut active = store.begin("i/d/full/active.bak").await.unwrap();
    active.write(b"in progress").await.unwrap();

    let removed = store
        .remove_partial_files(Duration::from_secs(3600))
        .await
        .unwrap();

    assert_eq!(
        removed, 0,
        "a file written just now belongs to a live writer"
    );
    let stored = active.commit().await.unwrap();
    assert_eq!(stored.size, 11);
}

#[test]
fn temp_name_pattern_is_recognised() {
    let name = pending::temp_file_name("a.bak");
    assert!(pending::is_temp_file_name(&name), "{name}");
    assert!(!pending::is_temp_file_name("a.bak"));
    assert!(!pending::is_temp_file_name(".a.bak.partial"));
    assert!(!pending::is_temp_file_name(format!(
        ".a.{}.partial",
        "G".repeat(32)
    )));
}

#[test]
fn temp_name_fits_component_limit() {
    let name = pending::temp_file_name(&"é".repeat(200));
    assert!(name.len() <= MAX_COMPONENT_BYTES, "{} bytes", name.len());
    assert!(pending::is_temp_file_name(&name));
}

#[test]
fn open_rejects_file_as_root() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let error = Store::open(&file).unwrap_err();
    assert!(error.to_string().contains("plain-file"), "{error}");
}

#[test]
fn absolute_joins_components() {
    let store = Store {
        root: PathBuf::from("/srv/store"),
    };
    assert_eq!(
        store.absolute("a/b/c.bak"),
        PathBuf::from("/srv/store/a/b/c.bak")
    );
}

#[test]
fn path_name_shortens_long_names() {
    let long = "数".repeat(128);
    let other = format!("{}x", "数".repeat(127));
    let shortened = path_name(&long);

    assert!(shortened.len() <= 160, "{} bytes", shortened.len());
    assert!(shortened.contains('~'), "{shortened}");
    assert_eq!(
        decode_name(&shortened),
        None,
        "the catalogue keeps the exact name"
    );
    assert_ne!(shortened, path_name(&other), "different names stay apart");
    assert_eq!(
        shortened,
        path_name(&long),
        "the same name gives the same path"
    );
    let prefix = shortened.split('~').next().unwrap().as_bytes();
    let len = prefix.len();
    assert!(!matches!(prefix[len - 1], b'%' | b'^'), "no escape is cut");
    assert_ne!(prefix[len - 2], b'%', "no escape is cut");
}

#[test]
fn path_name_keeps_short_names_whole() {
    assert_eq!(path_name("Sales"), encode_name("Sales"));
    let file = backup_file_name(
        &"A".repeat(128),
        BackupType::Full,
        OffsetDateTime::UNIX_EPOCH,
    );
    assert!(file.len() < 200, "{file}");
}

#[tokio::test]
async fn remove_partial_files_unlocked_at_once() {
    let (_dir, store) = open_temp_store();
    let mut active = store.begin("i/d/full/active.bak").await.unwrap();
    active.write(b"in progress").await.unwrap();
    // A temp file that no process has open, as a killed writer leaves it: its lock is free.
    let orphan = format!("i/d/full/.dead.bak.{}.partial", "0".repeat(32));
    std::fs::write(store.absolute(&orphan), b"half").unwrap();

    let removed = store
        .remove_partial_files(Duration::from_secs(3600))
        .await
        .unwrap();

    assert_eq!(removed, 1, "only the unlocked temp file goes");
    assert!(!store.absolute(&orphan).exists());
    let stored = active.commit().await.unwrap();
    assert_eq!(stored.size, 11);
}

#[test]
fn backup_file_name_parses_back() {
    let at = time::macros::datetime!(2026-12-04 20:30:05.123 UTC);
    for (database, backup_type) in [
        ("Sales", BackupType::Full),
        ("a_b_c", BackupType::Diff),
        ("Ventes d'été", BackupType::Log),
    ] {
        let name = backup_file_name(database, backup_type, at);
        assert_eq!(
            parse_backup_file_name(&name),
            Some((backup_type, at)),
            "{name}"
        );
    }
    for other in [
        "notes.txt",
        "Sales_full_20261204T203005.123Z.trn",
        "Sales_differential_20261204T203005.123Z.bak",
        "_full_20261204T203005.123Z.bak",
        "Sales_full_2026.bak",
    ] {
        assert_eq!(parse_backup_file_name(other), None, "{other}");
    }
}

#[tokio::test]
async fn resume_point_keeps_written_bytes_and_hash() {
    let (_dir, store) = open_temp_store();
    let mut pending = store.begin("i/d/full/r.bak").await.unwrap();
    pending.write(b"first part ").await.unwrap();

    let offset = pending.resume_point(u64::MAX).await.unwrap();
    pending.write(b"second part").await.unwrap();
    let stored = pending.commit().await.unwrap();

    assert_eq!(offset, 11);
    assert_eq!(stored.size, 22);
    assert_eq!(stored.sha256, sha256_hex(b"first part second part"));
}

#[tokio::test]
async fn resume_point_cuts_untrusted_tail_and_rehashes() {
    let (_dir, store) = open_temp_store();
    let mut pending = store.begin("i/d/full/c.bak").await.unwrap();
    pending.write(b"good bytes").await.unwrap();
    pending.write(b"NT_STATUS_CONNECTION_RESET").await.unwrap();

    let offset = pending.resume_point(4).await.unwrap();
    pending.write(b" bytes, resumed").await.unwrap();
    let stored = pending.commit().await.unwrap();

    assert_eq!(offset, 4);
    let on_disk = std::fs::read(store.absolute("i/d/full/c.bak")).unwrap();
    assert_eq!(on_disk, b"good bytes, resumed");
    assert_eq!(stored.sha256, sha256_hex(b"good bytes, resumed"));
    assert_eq!(stored.size, 19);
}

#[tokio::test]
async fn absorb_appended_hashes_bytes_another_writer_added() {
    use std::io::Write;

    let (_dir, store) = open_temp_store();
    let mut pending = store.begin("i/d/full/a.bak").await.unwrap();
    pending.write(b"from the stream, ").await.unwrap();
    let offset = pending.resume_point(u64::MAX).await.unwrap();
    let mut other = std::fs::OpenOptions::new()
        .append(true)
        .open(pending.temp_path())
        .unwrap();
    other.write_all(b"appended by a tool").unwrap();
    drop(other);

    let appended = pending.absorb_appended().await.unwrap();
    pending.write(b", then more").await.unwrap();
    let stored = pending.commit().await.unwrap();

    assert_eq!(offset, 17);
    assert_eq!(appended, 18);
    let expected = b"from the stream, appended by a tool, then more";
    assert_eq!(
        std::fs::read(store.absolute("i/d/full/a.bak")).unwrap(),
        expected
    );
    assert_eq!(stored.sha256, sha256_hex(expected));
    assert_eq!(stored.size, expected.len() as u64);
}
