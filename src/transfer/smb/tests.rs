use super::*;

fn settings() -> SmbSettings {
    SmbSettings {
        host: "127.0.0.1".to_string(),
        port: 4455,
        share: "backup".to_string(),
        user: "backup".to_string(),
        password: "secret".to_string(),
        domain: None,
        timeout: Duration::from_secs(5),
    }
}

fn source() -> SmbSource {
    SmbSource {
        settings: settings(),
    }
}

fn classify(text: &str) -> Option<TransferError> {
    status::classify(text, "smb://h:1/s", "backup", "dir\\a.bak", "fetch")
}

#[test]
fn smb_path_converts_slashes() {
    assert_eq!(
        source().smb_path("dir/sub/a.bak").unwrap(),
        "dir\\sub\\a.bak"
    );
    assert_eq!(source().smb_path("\\dir\\a.bak").unwrap(), "dir\\a.bak");
    assert_eq!(
        source().smb_path("it's a [x].bak").unwrap(),
        "it's a [x].bak"
    );
}

#[test]
fn smb_path_rejects_unquotable_characters() {
    for path in ["a;b.bak", "a\"b.bak", "*.bak", "a?.bak", "a\nb", "", "/"] {
        let error = source().smb_path(path).unwrap_err();
        assert!(
            matches!(error, TransferError::InvalidPath { .. }),
            "{path:?} gave {error}"
        );
    }
}

#[test]
fn settings_reject_line_breaks() {
    let mut with_break = settings();
    with_break.password = "a\nusername = other".to_string();
    let error = SmbSource {
        settings: with_break,
    }
    .check_settings()
    .unwrap_err();
    assert!(error.to_string().contains("line breaks"), "{error}");
    assert!(!error.to_string().contains("other"), "{error}");
}

#[test]
fn settings_reject_padded_password() {
    let mut padded = settings();
    padded.password = " secret".to_string();
    let error = SmbSource { settings: padded }.check_settings().unwrap_err();
    assert!(error.to_string().contains("space"), "{error}");
}

#[test]
fn settings_reject_share_with_slash() {
    let mut bad = settings();
    bad.share = "a/b".to_string();
    assert!(SmbSource { settings: bad }.check_settings().is_err());
}

#[test]
fn describe_smb_omits_secrets() {
    assert_eq!(source().describe(), "smb://127.0.0.1:4455/backup");
}

#[test]
fn classify_maps_status_codes() {
    let not_found = classify("NT_STATUS_OBJECT_NAME_NOT_FOUND opening remote file \\a.bak");
    assert!(matches!(not_found, Some(TransferError::NotFound { .. })));
    let logon = classify("session setup failed: NT_STATUS_LOGON_FAILURE");
    assert!(matches!(logon, Some(TransferError::Authentication { .. })));
    let share = classify("tree connect failed: NT_STATUS_BAD_NETWORK_NAME");
    assert!(matches!(share, Some(TransferError::ShareNotFound { .. })));
    let refused =
        classify("do_connect: Connection to 127.0.0.1 failed (Error NT_STATUS_CONNECTION_REFUSED)");
    assert!(matches!(refused, Some(TransferError::Unreachable { .. })));
    assert!(refused.unwrap().is_transient());
    let denied = classify("NT_STATUS_ACCESS_DENIED opening remote file \\a.bak");
    assert!(matches!(denied, Some(TransferError::AccessDenied { .. })));
    let busy = classify("NT_STATUS_SHARING_VIOLATION opening remote file \\a.bak");
    assert!(matches!(busy, Some(TransferError::Busy { .. })));
}

#[test]
fn classify_keeps_unknown_code_text() {
    let error = classify("NT_STATUS_FILE_IS_A_DIRECTORY opening remote file \\dir").unwrap();
    assert!(matches!(error, TransferError::Failed { .. }), "{error}");
    assert!(
        error.to_string().contains("NT_STATUS_FILE_IS_A_DIRECTORY"),
        "{error}"
    );
}

#[test]
fn classify_without_code_is_none() {
    assert!(classify("getting file \\a.bak of size 3 as -").is_none());
}

#[test]
fn allinfo_size_is_parsed() {
    let output = b"altname: A.BAK\nattributes:  (80)\nstream: [::$DATA], 3000000 bytes\n";
    assert_eq!(status::parse_allinfo_size(output), Some(3_000_000));
    assert_eq!(status::parse_allinfo_size(b"attributes: D (10)\n"), None);
}

#[test]
fn get_size_is_parsed() {
    let line = b"getting file \\a of size 9.bak of size 100 as - (1000.0 KiloBytes/sec)\n";
    assert_eq!(status::parse_get_size(line), Some(100));
    assert_eq!(status::parse_get_size(b"NT_STATUS_IO_TIMEOUT\n"), None);
}

#[test]
fn last_line_skips_blank_lines() {
    assert_eq!(status::last_line("first\nsecond\n\n  \n"), "second");
    assert_eq!(status::last_line(""), "no output");
}

#[test]
fn ls_output_names_files_only() {
    let output = b"  .                                   D        0  Fri Dec  4 20:00:00 2026\n\
  ..                                  D        0  Fri Dec  4 19:00:00 2026\n\
  sub folder                          D        0  Fri Dec  4 19:30:00 2026\n\
  Sales_full_20261204T203005.123Z.bak      A     1234  Fri Dec  4 20:30:05 2026\n\
  notes with spaces.txt               N        2  Thu Dec  3 08:00:00 2026\n\
\n\
\t\t65536 blocks of size 1024. 32768 blocks available\n";
    assert_eq!(
        super::status::parse_ls_file_names(output),
        [
            "Sales_full_20261204T203005.123Z.bak",
            "notes with spaces.txt"
        ]
    );
}

#[test]
fn sigpipe_exit_is_a_cut_connection() {
    let exit = ExitStatus::from_raw(libc::SIGPIPE);
    let error = source().failed("dir/a.bak", "fetch", "row 00000012 of page 20479", exit);
    assert!(
        matches!(error, TransferError::Unreachable { .. }),
        "{error:?}"
    );
    assert!(error.is_transient(), "{error}");
    assert!(error.to_string().contains("SIGPIPE"), "{error}");
}

#[test]
fn failed_exit_without_status_text_names_the_exit() {
    let exit = ExitStatus::from_raw(1 << 8);
    let error = source().failed("dir/a.bak", "fetch", "\nsome last line\n", exit);
    assert!(matches!(error, TransferError::Failed { .. }), "{error:?}");
    assert!(!error.is_transient(), "{error}");
    let text = error.to_string();
    assert!(text.contains("exit status: 1"), "{text}");
    assert!(text.contains("some last line"), "{text}");
}
