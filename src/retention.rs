//! Retention: which backups of one database to keep and which to delete, and why.
//! Pure: it counts restorable chains on LSNs and times, as Barman and pgBackRest do.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use time::{Duration, OffsetDateTime};

use crate::backup::BackupType;
use crate::chain::{continuing_logs, is_differential_of, ChainBackup};
use crate::fleet::Retention;

/// Keep or delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Keep,
    Delete,
}

/// The rule that decided a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum Reason {
    /// One of the newest `keep_full` fulls that are not copy-only.
    NewestFulls { count: u32 },
    /// A full younger than `full_days`.
    FullInsideDays { days: u32 },
    /// A differential or log that a kept full's chain applies.
    NeededByChain { full_id: i64 },
    /// The full a kept differential is based on, which a restore through it reads.
    BaseOfDifferential { differential_id: i64 },
    /// A backup finished inside the window, outside any unbroken chain (a segment after
    /// a gap, a copy-only backup).
    InsideWindow,
    /// Finished before the window and needed by no kept chain.
    Expired,
    /// Failed verification, and finished after the oldest kept backup.
    FailedVerification,
    /// Failed verification, and finished before every kept backup.
    FailedVerificationExpired,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::NewestFulls { count } => write!(f, "newest {count} fulls"),
            Reason::FullInsideDays { days } => write!(f, "full inside {days} days"),
            Reason::NeededByChain { full_id } => {
                write!(f, "needed by kept chain of full #{full_id}")
            }
            Reason::BaseOfDifferential { differential_id } => {
                write!(f, "base of kept differential #{differential_id}")
            }
            Reason::InsideWindow => write!(f, "inside the point-in-time window"),
            Reason::Expired => write!(
                f,
                "expired: finished before the kept window, and no kept chain needs it"
            ),
            Reason::FailedVerification => write!(
                f,
                "failed verification; kept until it is older than every kept backup"
            ),
            Reason::FailedVerificationExpired => write!(
                f,
                "failed verification, and finished before every kept backup"
            ),
        }
    }
}

/// The decision for one backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub backup_id: i64,
    pub action: Action,
    pub reason: Reason,
}

/// Decides for the backups of one database that failed verification, which [`evaluate`]
/// does not see, whether to keep or delete them. One is deleted once it finished before
/// every backup that `verdicts` keep among `good`: it cannot restore, and no kept chain
/// reaches it. With no backup kept, all stay, as the only record of the database.
pub fn evaluate_failed(
    failed: &[ChainBackup],
    good: &[ChainBackup],
    verdicts: &[Verdict],
) -> Vec<Verdict> {
    let oldest_kept = good
        .iter()
        .zip(verdicts)
        .filter(|(_, verdict)| verdict.action == Action::Keep)
        .map(|(backup, _)| backup.finished_at)
        .min();
    failed
        .iter()
        .map(|backup| {
            let expired = oldest_kept.is_some_and(|oldest| backup.finished_at < oldest);
            Verdict {
                backup_id: backup.id,
                action: if expired {
                    Action::Delete
                } else {
                    Action::Keep
                },
                reason: if expired {
                    Reason::FailedVerificationExpired
                } else {
                    Reason::FailedVerification
                },
            }
        })
        .collect()
}

/// Decides for every backup of one database whether to keep or delete it.
///
/// Rules:
/// - Keep the newest `keep_full` fulls that are not copy-only, whatever their age, and
///   every full (copy-only included) finished less than `full_days` before `now`.
/// - The window starts at the oldest kept full. Keep every differential and log that
///   the chain of a kept full applies (see [`continuing_logs`]), so a point-in-time
///   restore works anywhere from the oldest kept full to the newest log.
/// - Keep every other backup finished inside the window, such as logs after a gap,
///   while it is inside the window. With no kept full the window is the last
///   `full_days` days.
/// - Keep the base full of every kept differential. This matters when the window starts
///   at a copy-only full, after which differentials still use an older base.
/// - Delete the rest.
///
/// Verdicts come in the order of `backups`.
pub fn evaluate(
    backups: &[ChainBackup],
    retention: Retention,
    now: OffsetDateTime,
) -> Vec<Verdict> {
    let mut kept: BTreeMap<i64, Reason> = kept_fulls(backups, retention, now);
    let window_start = backups
        .iter()
        .filter(|b| kept.contains_key(&b.id))
        .map(|b| b.finished_at)
        .min()
        .unwrap_or(now - Duration::days(i64::from(retention.full_days)));

    let kept_full_ids: Vec<i64> = kept.keys().copied().collect();
    for full_id in kept_full_ids {
        let full = backups
            .iter()
            .find(|b| b.id == full_id)
            .expect("kept ids come from backups");
        for member in chain_members(backups, full) {
            kept.entry(member.id)
                .or_insert(Reason::NeededByChain { full_id });
        }
    }

    let reason_of = |backup: &ChainBackup| match kept.get(&backup.id) {
        Some(reason) => *reason,
        None if backup.finished_at >= window_start => Reason::InsideWindow,
        None => Reason::Expired,
    };
    let mut bases = BTreeMap::new();
    for differential in backups.iter().filter(|b| b.backup_type == BackupType::Diff) {
        if reason_of(differential) == Reason::Expired {
            continue;
        }
        let base = backups
            .iter()
            .find(|b| b.backup_type == BackupType::Full && is_differential_of(differential, b));
        if let Some(base) = base.filter(|base| reason_of(base) == Reason::Expired) {
            bases.entry(base.id).or_insert(Reason::BaseOfDifferential {
                differential_id: differential.id,
            });
        }
    }
    kept.extend(bases);

    backups
        .iter()
        .map(|backup| {
            let reason = match kept.get(&backup.id) {
                Some(reason) => *reason,
                None if backup.finished_at >= window_start => Reason::InsideWindow,
                None => Reason::Expired,
            };
            let action = if reason == Reason::Expired {
                Action::Delete
            } else {
                Action::Keep
            };
            Verdict {
                backup_id: backup.id,
                action,
                reason,
            }
        })
        .collect()
}

/// Returns the fulls that the full rules keep, by id, with the rule.
fn kept_fulls(
    backups: &[ChainBackup],
    retention: Retention,
    now: OffsetDateTime,
) -> BTreeMap<i64, Reason> {
    let mut fulls: Vec<&ChainBackup> = backups
        .iter()
        .filter(|b| b.backup_type == BackupType::Full)
        .collect();
    fulls.sort_by_key(|b| std::cmp::Reverse((b.finished_at, b.id)));

    let mut kept = BTreeMap::new();
    let newest = fulls.iter().filter(|full| !full.is_copy_only);
    for full in newest.take(retention.keep_full as usize) {
        kept.insert(
            full.id,
            Reason::NewestFulls {
                count: retention.keep_full,
            },
        );
    }
    let young_since = now - Duration::days(i64::from(retention.full_days));
    for full in fulls.iter().filter(|full| full.finished_at >= young_since) {
        kept.entry(full.id).or_insert(Reason::FullInsideDays {
            days: retention.full_days,
        });
    }
    kept
}

/// Returns the differentials and logs that any restore from `full` may apply: every
/// differential based on it and the unbroken logs after the full and after each of them.
pub fn chain_members<'a>(backups: &'a [ChainBackup], full: &ChainBackup) -> Vec<&'a ChainBackup> {
    let mut members = Vec::new();
    let (logs, _) = continuing_logs(backups, full, None);
    members.extend(logs);
    for differential in backups
        .iter()
        .filter(|b| b.backup_type == BackupType::Diff && is_differential_of(b, full))
    {
        members.push(differential);
        let (logs, _) = continuing_logs(backups, differential, None);
        members.extend(logs);
    }
    members
}

#[cfg(test)]
mod tests;
