use std::path::PathBuf;

use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::*;

const BASE_TIME: OffsetDateTime = datetime!(2026-03-01 00:00 UTC);

/// Builds a synthetic backup: `minute` is its finish time after [`BASE_TIME`].
fn backup(id: i64, backup_type: BackupType, first: u128, last: u128, minute: i64) -> ChainBackup {
    ChainBackup {
        id,
        backup_type,
        first_lsn: Lsn(first),
        last_lsn: Lsn(last),
        checkpoint_lsn: Lsn(first),
        database_backup_lsn: Lsn(0),
        differential_base_lsn: None,
        differential_base_guid: None,
        is_copy_only: false,
        database_guid: Some("line-a".to_string()),
        backup_set_guid: Some(format!("set-{id}")),
        finished_at: at(minute),
    }
}

fn at(minute: i64) -> OffsetDateTime {
    BASE_TIME + Duration::minutes(minute)
}

fn full(id: i64, first: u128, last: u128, minute: i64) -> ChainBackup {
    backup(id, BackupType::Full, first, last, minute)
}

fn diff_of(id: i64, base: &ChainBackup, first: u128, last: u128, minute: i64) -> ChainBackup {
    ChainBackup {
        database_backup_lsn: base.checkpoint_lsn,
        differential_base_lsn: Some(base.checkpoint_lsn),
        ..backup(id, BackupType::Diff, first, last, minute)
    }
}

fn log(id: i64, first: u128, last: u128, minute: i64) -> ChainBackup {
    backup(id, BackupType::Log, first, last, minute)
}

fn ids(chain: &RestoreChain) -> Vec<i64> {
    chain.members().map(|b| b.id).collect()
}

/// Full #1 (LSN 100-110) at minute 0, logs every 10 minutes, diff #3 at minute 15.
fn simple_line() -> Vec<ChainBackup> {
    let full = full(1, 100, 110, 0);
    vec![
        log(2, 90, 120, 10),
        diff_of(3, &full, 125, 130, 15),
        log(4, 120, 140, 20),
        log(5, 140, 160, 30),
        full,
    ]
}

#[test]
fn plan_latest_uses_diff_and_logs() {
    let chain = plan(&simple_line(), Target::Latest).unwrap();
    assert_eq!(ids(&chain), vec![1, 3, 4, 5]);
    assert_eq!(chain.stop_at, None);
    assert_eq!(chain.broken, None);
    assert_eq!(chain.restores_to(), at(30));
}

#[test]
fn plan_at_stops_in_first_later_log() {
    let chain = plan(&simple_line(), Target::At(at(8))).unwrap();
    assert_eq!(ids(&chain), vec![1, 2]);
    assert_eq!(chain.stop_at, Some(at(8)));

    let chain = plan(&simple_line(), Target::At(at(12))).unwrap();
    assert_eq!(
        ids(&chain),
        vec![1, 2, 4],
        "the diff finished after the target"
    );

    let chain = plan(&simple_line(), Target::At(at(25))).unwrap();
    assert_eq!(
        ids(&chain),
        vec![1, 3, 4, 5],
        "log 4 contains the diff's last LSN"
    );
}

#[test]
fn plan_at_full_finish_needs_no_log() {
    let chain = plan(&simple_line(), Target::At(at(0))).unwrap();
    assert_eq!(ids(&chain), vec![1]);
    assert_eq!(chain.stop_at, None);
}

#[test]
fn plan_rejects_target_before_first_full() {
    let error = plan(&simple_line(), Target::At(at(-5))).unwrap_err();
    assert_eq!(
        error,
        ChainError::BeforeFirstFull {
            target: at(-5),
            earliest: at(0),
            full_id: 1
        }
    );
    assert!(error.to_string().contains("earliest point to restore to"));
}

#[test]
fn plan_rejects_target_after_last_log() {
    let error = plan(&simple_line(), Target::At(at(31))).unwrap_err();
    assert_eq!(
        error,
        ChainError::AfterLastLog {
            target: at(31),
            latest: at(30),
            next_chain: None,
        }
    );
}

#[test]
fn plan_between_windows_names_next_full() {
    let mut backups = simple_line();
    // A new full after a gap starts a second window at minute 40.
    let later = full(9, 900, 910, 40);
    backups.push(later);

    let error = plan(&backups, Target::At(at(35))).unwrap_err();

    assert_eq!(
        error,
        ChainError::AfterLastLog {
            target: at(35),
            latest: at(30),
            next_chain: Some(NextChain {
                full_id: 9,
                from: at(40)
            }),
        }
    );
    let text = error.to_string();
    assert!(text.contains("full backup #9"), "{text}");
    assert!(!text.contains("SIMPLE"), "{text}");
}

#[test]
fn log_starting_at_diff_last_lsn_continues() {
    let full = full(1, 100, 110, 0);
    let diff = diff_of(2, &full, 120, 130, 10);
    let backups = vec![full, diff, log(3, 130, 150, 20)];
    let chain = plan(&backups, Target::At(at(20))).unwrap();
    assert_eq!(ids(&chain), vec![1, 2, 3]);
}

#[test]
fn log_covered_by_diff_is_passed_over() {
    let full = full(1, 100, 110, 0);
    let diff = diff_of(2, &full, 120, 130, 10);
    let backups = vec![full, log(3, 105, 130, 9), diff, log(4, 130, 150, 20)];
    let chain = plan(&backups, Target::Latest).unwrap();
    assert_eq!(
        ids(&chain),
        vec![1, 2, 4],
        "log 3 ends at the diff's last LSN"
    );
}

#[test]
fn empty_log_continues_chain() {
    let backups = vec![
        full(1, 100, 110, 0),
        log(2, 90, 120, 10),
        log(3, 120, 120, 11),
    ];
    let chain = plan(&backups, Target::Latest).unwrap();
    assert_eq!(ids(&chain), vec![1, 2, 3]);
    assert_eq!(chain.broken, None);
}

#[test]
fn gap_breaks_chain_from_gap_on() {
    let backups = vec![
        full(1, 100, 110, 0),
        log(2, 90, 120, 10),
        log(3, 130, 140, 20),
        log(4, 140, 150, 30),
    ];
    let broken = Broken {
        after: 2,
        next: 3,
        missing_from: Lsn(120),
        missing_to: Lsn(130),
        restorable_until: at(10),
    };

    let latest = plan(&backups, Target::Latest).unwrap();
    assert_eq!(ids(&latest), vec![1, 2], "latest stops before the gap");
    assert_eq!(latest.broken, Some(broken.clone()));

    let before_gap = plan(&backups, Target::At(at(8))).unwrap();
    assert_eq!(ids(&before_gap), vec![1, 2]);

    let error = plan(&backups, Target::At(at(25))).unwrap_err();
    assert_eq!(
        error,
        ChainError::Broken {
            target: at(25),
            broken
        }
    );
    let message = error.to_string();
    assert!(message.contains("backup #2 and backup #3"), "{message}");
}

#[test]
fn copy_only_log_neither_breaks_nor_extends() {
    let mut copy_only = log(3, 120, 125, 15);
    copy_only.is_copy_only = true;
    let mut far_copy_only = log(5, 200, 210, 40);
    far_copy_only.is_copy_only = true;
    let backups = vec![
        full(1, 100, 110, 0),
        log(2, 90, 120, 10),
        copy_only,
        log(4, 120, 130, 20),
        far_copy_only,
    ];
    let chain = plan(&backups, Target::Latest).unwrap();
    assert_eq!(ids(&chain), vec![1, 2, 4]);
    assert_eq!(chain.broken, None);
}

#[test]
fn copy_only_full_newest_starts_chain() {
    let mut copy_only = full(5, 125, 128, 15);
    copy_only.is_copy_only = true;
    let backups = vec![
        full(1, 100, 110, 0),
        log(2, 90, 120, 10),
        copy_only,
        log(3, 120, 130, 20),
    ];
    let chain = plan(&backups, Target::Latest).unwrap();
    assert_eq!(ids(&chain), vec![5, 3]);
    let chain = plan(&backups, Target::At(at(16))).unwrap();
    assert_eq!(ids(&chain), vec![5, 3]);
    let chain = plan(&backups, Target::At(at(12))).unwrap();
    assert_eq!(ids(&chain), vec![1, 2, 3]);
}

#[test]
fn diff_of_copy_only_full_unused() {
    let mut copy_only = full(1, 100, 110, 0);
    copy_only.is_copy_only = true;
    let diff = diff_of(2, &copy_only, 120, 130, 10);
    assert!(!is_differential_of(&diff, &copy_only));
    let backups = vec![copy_only, diff, log(3, 105, 140, 20)];
    let chain = plan(&backups, Target::Latest).unwrap();
    assert_eq!(
        ids(&chain),
        vec![1, 3],
        "the full and its log, without the diff"
    );
}

#[test]
fn diff_base_guid_decides_when_known() {
    let full_one = full(1, 100, 110, 0);
    let mut diff = diff_of(2, &full_one, 120, 130, 10);
    diff.differential_base_guid = Some("SET-1".to_string());
    assert!(
        is_differential_of(&diff, &full_one),
        "GUIDs compare case-blind"
    );
    diff.differential_base_guid = Some("set-9".to_string());
    assert!(!is_differential_of(&diff, &full_one));
}

#[test]
fn forks_never_mix_database_guids() {
    let first_line = full(1, 100, 110, 0);
    let mut restored = full(10, 100, 115, 30);
    restored.database_guid = Some("line-b".to_string());
    let mut fork_log = log(11, 115, 130, 40);
    fork_log.database_guid = Some("line-b".to_string());
    let backups = vec![
        first_line,
        log(2, 90, 120, 10),
        log(3, 120, 140, 20),
        restored,
        fork_log,
        log(4, 140, 160, 50),
    ];

    let latest = plan(&backups, Target::Latest).unwrap();
    assert_eq!(ids(&latest), vec![10, 11], "the newest full's line only");

    let old_line = plan(&backups, Target::At(at(15))).unwrap();
    assert_eq!(ids(&old_line), vec![1, 2, 3]);

    // The fork's line ends at minute 40; the old line's log of minute 50 reaches 45,
    // from the old full, without the fork's backups.
    let old_line_after_fork = plan(&backups, Target::At(at(45))).unwrap();
    assert_eq!(ids(&old_line_after_fork), vec![1, 2, 3, 4]);

    let old_line_late = plan(&backups, Target::At(at(38))).unwrap();
    assert_eq!(ids(&old_line_late), vec![10, 11], "fork line reaches 38");
}

#[test]
fn plan_without_full_is_rejected() {
    let backups = vec![log(1, 10, 20, 0)];
    let error = plan(&backups, Target::Latest).unwrap_err();
    assert_eq!(
        error,
        ChainError::NoFull {
            differentials: 0,
            logs: 1
        }
    );
    assert_eq!(
        plan(&[], Target::Latest).unwrap_err(),
        ChainError::NoBackups
    );
}

#[test]
fn windows_merge_and_split_at_gap() {
    let backups = vec![
        full(1, 100, 110, 0),
        log(2, 90, 120, 10),
        log(3, 130, 140, 20),
        full(4, 135, 138, 25),
        log(5, 140, 150, 30),
    ];
    let windows = restorable_windows(&backups);
    assert_eq!(
        windows,
        vec![
            RestorableWindow {
                from: at(0),
                to: at(10),
                full_id: 1
            },
            RestorableWindow {
                from: at(25),
                to: at(30),
                full_id: 4
            },
        ]
    );
}

#[test]
fn windows_bridge_gap_with_diff() {
    let full = full(1, 100, 110, 0);
    let diff = diff_of(3, &full, 125, 130, 15);
    let backups = vec![full, log(2, 90, 120, 10), diff, log(4, 130, 140, 20)];
    let windows = restorable_windows(&backups);
    assert_eq!(windows.len(), 2, "{windows:?}");
    assert_eq!((windows[0].from, windows[0].to), (at(0), at(10)));
    assert_eq!((windows[1].from, windows[1].to), (at(15), at(20)));
    let chain = plan(&backups, Target::At(at(18))).unwrap();
    assert_eq!(ids(&chain), vec![1, 3, 4]);
}

// Real backups written by SQL Server, read with the bakfile crate.

fn fixtures_dir() -> PathBuf {
    let dir = std::env::var_os("BAKFLEET_FIXTURES_BAK").expect("checked by fixtures_missing");
    PathBuf::from(dir)
}

/// Returns true (after saying why) when `BAKFLEET_FIXTURES_BAK` is unset, so the fixture
/// test returns early; with `CI=true` it panics instead, so CI never passes without them.
fn fixtures_missing() -> bool {
    if std::env::var_os("BAKFLEET_FIXTURES_BAK").is_some() {
        return false;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("BAKFLEET_FIXTURES_BAK is not set; point it at the folder of real .bak fixtures");
    }
    eprintln!(
        "fixture test did not run: set BAKFLEET_FIXTURES_BAK to the folder of real .bak fixtures"
    );
    true
}

fn fixture(id: i64, name: &str) -> ChainBackup {
    let path = fixtures_dir().join(name);
    let file = std::fs::File::open(&path)
        .unwrap_or_else(|error| panic!("failed to open {}: {error}", path.display()));
    let sets = bakfile::read_headers(file)
        .unwrap_or_else(|error| panic!("failed to read {}: {error}", path.display()));
    let set = &sets[0];
    let offset = set.utc_offset().expect("fixture has a time zone");
    let finish = set.backup_finish_date.expect("fixture has a finish date");
    let backup_type = match set.backup_type.msdb_letter() {
        'D' => BackupType::Full,
        'I' => BackupType::Diff,
        _ => BackupType::Log,
    };
    ChainBackup {
        id,
        backup_type,
        first_lsn: Lsn(set.first_lsn.to_numeric()),
        last_lsn: Lsn(set.last_lsn.to_numeric()),
        checkpoint_lsn: Lsn(set.checkpoint_lsn.to_numeric()),
        database_backup_lsn: Lsn(set.database_backup_lsn.to_numeric()),
        differential_base_lsn: None,
        differential_base_guid: set.differential_base_guid.map(|guid| guid.to_string()),
        is_copy_only: set.is_copy_only,
        database_guid: None,
        backup_set_guid: Some(set.backup_set_guid.to_string()),
        finished_at: finish.assume_offset(offset).to_offset(time::UtcOffset::UTC),
    }
}

fn orphan_users() -> Vec<ChainBackup> {
    vec![
        fixture(1, "SQL2008_dbOrphanUsers_FULL_20170518_041740.bak"),
        fixture(2, "SQL2008_dbOrphanUsers_DIFF_20170518_041819.bak"),
        fixture(3, "SQL2008_dbOrphanUsers_LOG_20170518_041831.trn"),
        fixture(4, "SQL2008_dbOrphanUsers_LOG_20170518_041837.trn"),
    ]
}

#[test]
fn fixture_orphan_users_full_diff_logs() {
    if fixtures_missing() {
        return;
    }
    let backups = orphan_users();
    assert!(is_differential_of(&backups[1], &backups[0]));
    assert!(
        backups[2].first_lsn < backups[0].first_lsn,
        "the first log starts before the full"
    );

    let latest = plan(&backups, Target::Latest).unwrap();
    assert_eq!(ids(&latest), vec![1, 2, 3, 4]);
    assert_eq!(latest.broken, None);

    // 04:18:35 server time, UTC+2: after log 041831, so STOPAT lands in the empty log.
    let chain = plan(&backups, Target::At(datetime!(2017-05-18 02:18:35 UTC))).unwrap();
    assert_eq!(ids(&chain), vec![1, 2, 3, 4]);
    assert_eq!(chain.logs[1].first_lsn, chain.logs[1].last_lsn);

    // 04:18:25 server time: after the diff, inside log 041831.
    let chain = plan(&backups, Target::At(datetime!(2017-05-18 02:18:25 UTC))).unwrap();
    assert_eq!(ids(&chain), vec![1, 2, 3]);
}

#[test]
fn fixture_orphan_users_without_diff() {
    if fixtures_missing() {
        return;
    }
    let mut backups = orphan_users();
    backups.remove(1);
    let chain = plan(&backups, Target::At(datetime!(2017-05-18 02:18:30 UTC))).unwrap();
    assert_eq!(
        ids(&chain),
        vec![1, 3],
        "log 041831 continues from the full"
    );
}

#[test]
fn fixture_restore_time_clean_has_no_full() {
    if fixtures_missing() {
        return;
    }
    let backups = vec![
        fixture(1, "RestoreTimeClean_1.trn"),
        fixture(2, "RestoreTimeClean2.bak"),
        fixture(3, "RestoreTimeClean2_1.trn"),
    ];
    let error = plan(&backups, Target::Latest).unwrap_err();
    assert_eq!(
        error,
        ChainError::NoFull {
            differentials: 1,
            logs: 2
        }
    );
    assert!(restorable_windows(&backups).is_empty());
}

#[test]
fn fixture_stop_at_logs_link_by_lsn() {
    if fixtures_missing() {
        return;
    }
    // StopAt_22.trn was never published, yet StopAt_21's LastLSN equals StopAt_23's
    // FirstLSN: by LSNs the two logs continue each other, so no gap is reported.
    let log21 = fixture(2, "StopAt_21.trn");
    let log23 = fixture(3, "StopAt_23.trn");
    assert_eq!(log21.last_lsn, log23.first_lsn);

    // A full whose last LSN falls inside StopAt_21 makes the pair a chain.
    let mut full = log21.clone();
    full.id = 1;
    full.backup_type = BackupType::Full;
    full.first_lsn = Lsn(log21.first_lsn.0 + 1);
    full.last_lsn = Lsn(log21.first_lsn.0 + 2);
    full.finished_at = log21.finished_at - Duration::minutes(1);
    let backups = vec![full, log21, log23.clone()];
    let chain = plan(&backups, Target::At(log23.finished_at)).unwrap();
    assert_eq!(ids(&chain), vec![1, 2, 3]);

    // Without StopAt_21 the gap is found and named.
    let backups = vec![chain.full.clone(), log23.clone()];
    let error = plan(&backups, Target::At(log23.finished_at)).unwrap_err();
    let ChainError::Broken { broken, .. } = error else {
        panic!("expected a gap, got {error:?}");
    };
    assert_eq!((broken.after, broken.next), (1, 3));
    assert_eq!(broken.missing_to, log23.first_lsn);
}
