use std::collections::BTreeSet;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use time::macros::datetime;

use super::*;
use crate::backup::Lsn;
use crate::chain::{plan, restorable_windows, Target};

const START: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);

const RETENTION: Retention = Retention {
    full_days: 14,
    keep_full: 2,
};

fn backup(id: i64, backup_type: BackupType, first: u128, last: u128, hours: i64) -> ChainBackup {
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
        database_guid: Some("line-0".to_string()),
        backup_set_guid: None,
        finished_at: START + Duration::hours(hours),
    }
}

/// Tells whether a rule other than the window keeps a backup.
fn kept_by_rule(reason: Reason) -> bool {
    !matches!(reason, Reason::Expired | Reason::InsideWindow)
}

fn verdict_of(verdicts: &[Verdict], id: i64) -> Verdict {
    *verdicts.iter().find(|v| v.backup_id == id).unwrap()
}

#[test]
fn evaluate_keeps_newest_fulls_and_chain() {
    // Fulls on days 0, 7, 14, 21; a log every day up to day 24; now is day 40.
    let mut backups = Vec::new();
    let mut lsn = 100;
    for day in 0..25 {
        let hours = day * 24;
        if day % 7 == 0 {
            backups.push(backup(
                1000 + day,
                BackupType::Full,
                lsn + 1,
                lsn + 2,
                hours,
            ));
        }
        backups.push(backup(day, BackupType::Log, lsn, lsn + 10, hours + 1));
        lsn += 10;
    }
    let now = START + Duration::days(40);
    let verdicts = evaluate(&backups, RETENTION, now);

    assert_eq!(
        verdict_of(&verdicts, 1021).reason,
        Reason::NewestFulls { count: 2 }
    );
    assert_eq!(
        verdict_of(&verdicts, 1014).reason,
        Reason::NewestFulls { count: 2 }
    );
    assert_eq!(verdict_of(&verdicts, 1007).reason, Reason::Expired);
    assert_eq!(verdict_of(&verdicts, 1000).action, Action::Delete);
    assert_eq!(
        verdict_of(&verdicts, 14).reason,
        Reason::NeededByChain { full_id: 1014 },
        "the log after the oldest kept full"
    );
    assert_eq!(verdict_of(&verdicts, 24).action, Action::Keep);
    assert_eq!(verdict_of(&verdicts, 13).reason, Reason::Expired);
    assert_eq!(
        Reason::NeededByChain { full_id: 12 }.to_string(),
        "needed by kept chain of full #12"
    );
}

#[test]
fn evaluate_keeps_young_fulls_and_gap_segment() {
    let mut copy_only = backup(3, BackupType::Full, 300, 301, 30 * 24);
    copy_only.is_copy_only = true;
    let backups = vec![
        backup(1, BackupType::Full, 101, 102, 0),
        backup(2, BackupType::Log, 100, 200, 24),
        copy_only,
        backup(4, BackupType::Log, 250, 290, 31 * 24),
    ];
    let retention = Retention {
        full_days: 7,
        keep_full: 1,
    };
    let verdicts = evaluate(&backups, retention, START + Duration::days(32));
    assert_eq!(
        verdict_of(&verdicts, 1).reason,
        Reason::NewestFulls { count: 1 }
    );
    assert_eq!(
        verdict_of(&verdicts, 3).reason,
        Reason::FullInsideDays { days: 7 }
    );
    assert_eq!(
        verdict_of(&verdicts, 2).reason,
        Reason::NeededByChain { full_id: 1 }
    );
    assert_eq!(
        verdict_of(&verdicts, 4).reason,
        Reason::InsideWindow,
        "after the gap at 200"
    );
}

#[test]
fn evaluate_without_full_uses_days() {
    let backups = vec![
        backup(1, BackupType::Log, 100, 200, 0),
        backup(2, BackupType::Log, 200, 300, 20 * 24),
    ];
    let verdicts = evaluate(&backups, RETENTION, START + Duration::days(21));
    assert_eq!(verdict_of(&verdicts, 1).action, Action::Delete);
    assert_eq!(verdict_of(&verdicts, 2).reason, Reason::InsideWindow);
}

/// Builds a random history of one database: weekly fulls, daily differentials, logs
/// every six hours, with missing logs (gaps), copy-only backups and restores that start
/// a new `database_guid` line.
fn random_history(rng: &mut StdRng, days: i64) -> Vec<ChainBackup> {
    let mut backups = Vec::new();
    let mut lsn: u128 = 1_000;
    let mut log_position: Option<u128> = None;
    let mut base_checkpoint: Option<u128> = None;
    let mut line = 0;
    let mut next_id = 1;
    let mut push = |backups: &mut Vec<ChainBackup>, mut b: ChainBackup, line: i32| {
        b.id = next_id;
        b.database_guid = Some(format!("line-{line}"));
        next_id += 1;
        backups.push(b);
    };

    for step in 0..days * 4 {
        let hours = step * 6;
        lsn += 10;
        if rng.random_bool(0.01) {
            line += 1;
            log_position = None;
            base_checkpoint = None;
        }
        let day_start = step % 4 == 0;
        if day_start && (step % 28 == 0 || base_checkpoint.is_none()) {
            let full = backup(0, BackupType::Full, lsn + 1, lsn + 2, hours);
            base_checkpoint = Some(lsn + 1);
            log_position.get_or_insert(lsn);
            push(&mut backups, full, line);
            lsn += 2;
        } else if day_start {
            let mut diff = backup(0, BackupType::Diff, lsn + 1, lsn + 2, hours);
            diff.database_backup_lsn = Lsn(base_checkpoint.unwrap());
            push(&mut backups, diff, line);
            lsn += 2;
        }
        if rng.random_bool(0.05) {
            let mut copy_only = backup(0, BackupType::Full, lsn + 1, lsn + 2, hours);
            copy_only.is_copy_only = true;
            push(&mut backups, copy_only, line);
            lsn += 2;
        }
        let Some(position) = log_position else {
            continue;
        };
        lsn += 5;
        if rng.random_bool(0.04) {
            log_position = Some(lsn);
            continue;
        }
        let mut log = backup(0, BackupType::Log, position, lsn, hours + 3);
        if rng.random_bool(0.03) {
            log.is_copy_only = true;
        } else {
            log_position = Some(lsn);
        }
        push(&mut backups, log, line);
    }
    backups
}

#[test]
fn random_chains_keep_every_needed_member() {
    let mut reasons_seen = std::collections::HashSet::new();
    for seed in 0..300 {
        let mut rng = StdRng::seed_from_u64(seed);
        let days = rng.random_range(5..90);
        let backups = random_history(&mut rng, days);
        let retention = Retention {
            full_days: rng.random_range(0..30),
            keep_full: rng.random_range(0..5),
        };
        let now = START + Duration::days(days);
        let verdicts = evaluate(&backups, retention, now);
        assert_eq!(verdicts.len(), backups.len(), "seed {seed}");
        for verdict in &verdicts {
            reasons_seen.insert(std::mem::discriminant(&verdict.reason));
        }

        let kept: BTreeSet<i64> = verdicts
            .iter()
            .filter(|v| v.action == Action::Keep)
            .map(|v| v.backup_id)
            .collect();
        let kept_backups: Vec<ChainBackup> = backups
            .iter()
            .filter(|b| kept.contains(&b.id))
            .cloned()
            .collect();
        let kept_fulls: Vec<&ChainBackup> = kept_backups
            .iter()
            .filter(|b| b.backup_type == BackupType::Full)
            .filter(|b| {
                let reason = verdict_of(&verdicts, b.id).reason;
                !matches!(reason, Reason::BaseOfDifferential { .. })
            })
            .collect();

        // No kept chain loses a member, and no kept differential its base.
        for full in &kept_fulls {
            for member in chain_members(&backups, full) {
                assert!(
                    kept.contains(&member.id),
                    "seed {seed}: backup #{} of the chain of kept full #{} deleted",
                    member.id,
                    full.id
                );
            }
        }

        for differential in kept_backups
            .iter()
            .filter(|b| b.backup_type == BackupType::Diff)
        {
            for base in backups
                .iter()
                .filter(|b| is_differential_of(differential, b))
            {
                assert!(
                    kept.contains(&base.id),
                    "seed {seed}: base #{} of kept differential #{} deleted",
                    base.id,
                    differential.id
                );
            }
        }

        // Expired backups are deleted: every delete is older than the window, and
        // every backup older than the window and outside kept chains is deleted.
        let window_start = kept_fulls.iter().map(|b| b.finished_at).min();
        for verdict in &verdicts {
            let backup = backups.iter().find(|b| b.id == verdict.backup_id).unwrap();
            let expected_delete = match window_start {
                Some(start) => backup.finished_at < start && !kept_by_rule(verdict.reason),
                None => {
                    let cutoff = now - Duration::days(i64::from(retention.full_days));
                    backup.finished_at < cutoff && !kept_by_rule(verdict.reason)
                }
            };
            assert_eq!(
                verdict.action == Action::Delete,
                expected_delete,
                "seed {seed}: backup #{} {:?}",
                backup.id,
                verdict
            );
        }

        // Every point in time that was restorable inside the window still is.
        let Some(window_start) = window_start else {
            continue;
        };
        for window in restorable_windows(&backups) {
            let from = window.from.max(window_start);
            if from > window.to {
                continue;
            }
            let span = (window.to - from).whole_minutes();
            for step in 0..=4 {
                let target = from + Duration::minutes(span * step / 4);
                let chain = plan(&kept_backups, Target::At(target));
                assert!(
                    chain.is_ok(),
                    "seed {seed}: {target} no longer restorable: {chain:?}"
                );
            }
        }
    }
    // The histories exercise every rule, so the checks above are not vacuous.
    assert_eq!(reasons_seen.len(), 6, "rules seen: {}", reasons_seen.len());
}

#[test]
fn failed_backups_expire_behind_kept_ones() {
    let good = [
        backup(1, BackupType::Full, 100, 200, 0),
        backup(3, BackupType::Full, 300, 400, 48),
    ];
    let verdicts = [
        Verdict {
            backup_id: 1,
            action: Action::Delete,
            reason: Reason::Expired,
        },
        Verdict {
            backup_id: 3,
            action: Action::Keep,
            reason: Reason::NewestFulls { count: 1 },
        },
    ];
    let failed = [
        backup(2, BackupType::Full, 200, 300, 24),
        backup(4, BackupType::Log, 400, 500, 72),
    ];

    let decided = evaluate_failed(&failed, &good, &verdicts);

    assert_eq!(decided[0].action, Action::Delete);
    assert_eq!(decided[0].reason, Reason::FailedVerificationExpired);
    assert_eq!(decided[1].action, Action::Keep);
    assert_eq!(decided[1].reason, Reason::FailedVerification);
}

#[test]
fn failed_backups_stay_without_kept_ones() {
    let failed = [backup(1, BackupType::Full, 100, 200, 0)];

    let decided = evaluate_failed(&failed, &[], &[]);

    assert_eq!(decided[0].action, Action::Keep);
}
