//! Restore chains: which catalogued backups of one database restore it to a point in
//! time, and from when to when such a restore is possible. Pure: LSNs and times only.

use std::fmt;

use serde::Serialize;
use time::OffsetDateTime;

use crate::backup::{BackupType, Lsn};
use crate::catalog::BackupRow;

/// The facts of one catalogued backup that chain building reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainBackup {
    /// Catalogue id (`backups.id`).
    pub id: i64,
    pub backup_type: BackupType,
    pub first_lsn: Lsn,
    pub last_lsn: Lsn,
    pub checkpoint_lsn: Lsn,
    pub database_backup_lsn: Lsn,
    pub differential_base_lsn: Option<Lsn>,
    /// `backup_set_guid` of the full a differential is based on, where known.
    pub differential_base_guid: Option<String>,
    pub is_copy_only: bool,
    /// msdb `database_guid`: SQL Server assigns a new one when the database is restored,
    /// so backups taken after a restore carry a different value (a new line of backups).
    pub database_guid: Option<String>,
    pub backup_set_guid: Option<String>,
    /// Finish time in UTC.
    #[serde(with = "time::serde::rfc3339")]
    pub finished_at: OffsetDateTime,
}

impl From<&BackupRow> for ChainBackup {
    fn from(row: &BackupRow) -> Self {
        ChainBackup {
            id: row.id,
            backup_type: row.backup_type,
            first_lsn: row.first_lsn,
            last_lsn: row.last_lsn,
            checkpoint_lsn: row.checkpoint_lsn,
            database_backup_lsn: row.database_backup_lsn,
            differential_base_lsn: row.differential_base_lsn,
            differential_base_guid: row.differential_base_guid.clone(),
            is_copy_only: row.is_copy_only,
            database_guid: row.database_guid.clone(),
            backup_set_guid: row.backup_set_guid.clone(),
            finished_at: row.finished_at,
        }
    }
}

/// The point a restore stops at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// As far as the unbroken log chain reaches, without STOPAT.
    Latest,
    /// This UTC instant, reached with `STOPAT` in the last log.
    At(OffsetDateTime),
}

/// A hole in the log chain: no catalogued log contains the LSNs from `missing_from`
/// (inclusive) up to `missing_to` (exclusive).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Broken {
    /// Id of the last backup before the gap that still restores.
    pub after: i64,
    /// Id of the first log after the gap.
    pub next: i64,
    pub missing_from: Lsn,
    pub missing_to: Lsn,
    /// Finish time of `after`: the latest point this line restores to.
    #[serde(with = "time::serde::rfc3339")]
    pub restorable_until: OffsetDateTime,
}

/// Formats a time for messages: RFC 3339 with the offset, such as `2026-03-01T10:15:00Z`.
pub fn format_time(at: &OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.to_string())
}

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "log chain broken between backup #{} and backup #{}: LSNs {} to {} are in no catalogued log backup",
            self.after, self.next, self.missing_from, self.missing_to
        )
    }
}

/// The backups that restore a database to a target, in the order RESTORE applies them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RestoreChain {
    pub full: ChainBackup,
    pub differential: Option<ChainBackup>,
    pub logs: Vec<ChainBackup>,
    /// The UTC instant for `STOPAT` on the last log; `None` restores everything listed.
    #[serde(with = "time::serde::rfc3339::option")]
    pub stop_at: Option<OffsetDateTime>,
    /// For [`Target::Latest`]: the gap that stopped the log chain, if any.
    pub broken: Option<Broken>,
}

impl RestoreChain {
    /// Returns the backups in restore order: full, differential, logs.
    pub fn members(&self) -> impl Iterator<Item = &ChainBackup> {
        std::iter::once(&self.full)
            .chain(self.differential.iter())
            .chain(self.logs.iter())
    }

    /// Returns the latest UTC instant this chain restores to.
    pub fn restores_to(&self) -> OffsetDateTime {
        self.stop_at.unwrap_or_else(|| {
            self.members()
                .last()
                .map_or(self.full.finished_at, |b| b.finished_at)
        })
    }
}

/// A span of time to which the database can be restored, with the full that starts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RestorableWindow {
    #[serde(with = "time::serde::rfc3339")]
    pub from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub to: OffsetDateTime,
    /// The full backup whose chain reaches `from`.
    pub full_id: i64,
}

/// Reason that no chain restores to the requested target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("no backups are catalogued")]
    NoBackups,
    #[error("no full backup is catalogued, so nothing can be restored; {differentials} differential and {logs} log backup(s) exist without their full")]
    NoFull { differentials: usize, logs: usize },
    #[error("{} is before the first restorable time; the earliest point to restore to is {} (end of full backup #{full_id})", format_time(target), format_time(earliest))]
    BeforeFirstFull {
        target: OffsetDateTime,
        earliest: OffsetDateTime,
        full_id: i64,
    },
    #[error("cannot restore to {}: {broken}; the latest point before the gap is {}", format_time(target), format_time(&broken.restorable_until))]
    Broken {
        target: OffsetDateTime,
        broken: Broken,
    },
    #[error("cannot restore to {}: the newest catalogued backup that continues the chain ends at {}; {}", format_time(target), format_time(latest), after_last_log_advice(next_chain.as_ref()))]
    AfterLastLog {
        target: OffsetDateTime,
        latest: OffsetDateTime,
        /// The next chain, when a later full starts one. The target then falls between
        /// two restorable windows.
        next_chain: Option<NextChain>,
    },
}

/// The full that starts the first restorable window after a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextChain {
    pub full_id: i64,
    pub from: OffsetDateTime,
}

/// Returns where a restore can go instead of a target past the chain's end.
fn after_last_log_advice(next_chain: Option<&NextChain>) -> String {
    match next_chain {
        Some(next) => format!(
            "choose that time or an earlier one, or a time from {} on, where full backup #{} \
             starts the next restorable window",
            format_time(&next.from),
            next.full_id
        ),
        None => "choose that time or an earlier one, or take a log backup first (a database \
                 in the SIMPLE recovery model has no log backups: it restores only to the end \
                 of a full or differential backup)"
            .to_string(),
    }
}

/// Finds the backups that restore the database to `target`.
///
/// Rules, following "Restore a SQL Server Database to a Point in Time (Full Recovery
/// Model)" and "Apply Transaction Log Backups":
/// - The chain starts at the newest full finished at or before the target. A copy-only
///   full may start a chain. When that full's chain cannot reach the target (a gap, a
///   fork), older fulls are tried, and the first failure is reported.
/// - The differential is the newest one finished at or before the target whose base is
///   that full (see [`is_differential_of`]); a copy-only full is never a base.
/// - Logs are those of [`continuing_logs`], up to and including the first one that
///   finished at or after the target, which is the log STOPAT lands in.
/// - Backups of another `database_guid` (taken after a restore) never join the chain.
///
/// # Errors
/// [`ChainError`]: no full, a target before the first full (with the earliest time), a
/// gap before the target (naming the backups around it), or a target after the last log.
pub fn plan(backups: &[ChainBackup], target: Target) -> Result<RestoreChain, ChainError> {
    let fulls = fulls_newest_first(backups);
    if fulls.is_empty() {
        return Err(no_full_error(backups));
    }

    let log_index = LogIndex::new(backups);
    let at = match target {
        Target::Latest => return Ok(latest_chain(backups, &log_index, fulls[0])),
        Target::At(at) => at,
    };

    let mut first_error = None;
    for full in fulls.iter().filter(|full| full.finished_at <= at) {
        match plan_from_full(backups, &log_index, full, at) {
            Ok(chain) => return Ok(chain),
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    let error = first_error.unwrap_or_else(|| before_first_full(&fulls, at));
    Err(with_next_chain(error, &fulls, at))
}

/// Adds to a target past a chain's end the oldest full that finished after the target,
/// which starts the next restorable window.
fn with_next_chain(error: ChainError, fulls: &[&ChainBackup], at: OffsetDateTime) -> ChainError {
    let ChainError::AfterLastLog { target, latest, .. } = error else {
        return error;
    };
    let next_chain = fulls
        .iter()
        .filter(|full| full.finished_at > at)
        .min_by_key(|full| (full.finished_at, full.id))
        .map(|full| NextChain {
            full_id: full.id,
            from: full.finished_at,
        });
    ChainError::AfterLastLog {
        target,
        latest,
        next_chain,
    }
}

/// Computes the spans of time to which a point-in-time restore is possible, oldest
/// first, with overlapping spans merged.
///
/// Each full contributes the span from its own finish (and each of its differentials
/// from theirs) to the finish of the last log that continues without a gap.
pub fn restorable_windows(backups: &[ChainBackup]) -> Vec<RestorableWindow> {
    let log_index = LogIndex::new(backups);
    let mut spans = Vec::new();
    for full in fulls_newest_first(backups) {
        spans.push(span_from_base(&log_index, full, full));
        for differential in differentials_of(backups, full) {
            spans.push(span_from_base(&log_index, full, differential));
        }
    }
    spans.sort_by_key(|span| (span.from, span.to));

    let mut merged: Vec<RestorableWindow> = Vec::new();
    for span in spans {
        match merged.last_mut() {
            Some(last) if span.from <= last.to => {
                if span.to > last.to {
                    last.to = span.to;
                }
            }
            _ => merged.push(span),
        }
    }
    merged
}

/// Walks the log backups that continue from `base` (a full or differential) in LSN order.
///
/// Rules ("Apply Transaction Log Backups"):
/// - The first log is one with `first_lsn <= base.last_lsn < last_lsn`; its first LSN
///   may lie even before the full's own first LSN, because a log backup starts where the
///   previous log backup ended. A log whose `first_lsn == base.last_lsn` also continues.
/// - Each further log continues when its `first_lsn` equals the previous `last_lsn`. An
///   empty log (`first_lsn == last_lsn`) continues like any other.
/// - Logs already covered (ending at or before the current LSN, such as the same log
///   catalogued twice) are passed over. A log that overlaps the current LSN is applied,
///   as SQL Server accepts any log that contains the next LSN.
/// - A log starting after the current LSN is a gap: the walk stops and reports
///   [`Broken`]; nothing after the gap restores on top of `base`.
/// - Copy-only logs neither extend nor break the chain, and logs of another
///   `database_guid` are ignored.
///
/// `until` stops the walk after the first log that finished at or after it.
pub fn continuing_logs<'a>(
    backups: &'a [ChainBackup],
    base: &ChainBackup,
    until: Option<OffsetDateTime>,
) -> (Vec<&'a ChainBackup>, Option<Broken>) {
    LogIndex::new(backups).walk(base, until)
}

/// The log backups of one database, sorted once so that the many walks of a plan or of
/// the restorable windows do not sort and scan the whole history again.
struct LogIndex<'a> {
    /// Logs that are not copy-only, by first LSN, last LSN, finish time and id.
    logs: Vec<&'a ChainBackup>,
    /// `max_last_lsn[i]` is the highest `last_lsn` of `logs[..=i]`.
    max_last_lsn: Vec<Lsn>,
}

impl<'a> LogIndex<'a> {
    fn new(backups: &'a [ChainBackup]) -> LogIndex<'a> {
        let mut logs: Vec<&ChainBackup> = backups
            .iter()
            .filter(|b| b.backup_type == BackupType::Log && !b.is_copy_only)
            .collect();
        logs.sort_by_key(|b| (b.first_lsn, b.last_lsn, b.finished_at, b.id));
        let max_last_lsn = logs
            .iter()
            .scan(None, |max: &mut Option<Lsn>, log| {
                let next = max.map_or(log.last_lsn, |max| max.max(log.last_lsn));
                *max = Some(next);
                Some(next)
            })
            .collect();
        LogIndex { logs, max_last_lsn }
    }

    /// Walks the logs that continue from `base` under the rules of [`continuing_logs`].
    fn walk(
        &self,
        base: &ChainBackup,
        until: Option<OffsetDateTime>,
    ) -> (Vec<&'a ChainBackup>, Option<Broken>) {
        // Every log before `start` ends before the base does, so the walk would pass
        // over it as covered; starting at `start` gives the same chain.
        let start = self
            .max_last_lsn
            .partition_point(|max| *max < base.last_lsn);

        let mut chain = Vec::new();
        let mut current = base.last_lsn;
        let mut previous = base;
        for &log in &self.logs[start..] {
            if !same_line(log, base) {
                continue;
            }
            if until.is_some_and(|until| previous.finished_at >= until) && !chain.is_empty() {
                break;
            }
            let continues_here = log.first_lsn == current;
            let covered = log.last_lsn < current || (log.last_lsn == current && !continues_here);
            if covered {
                continue;
            }
            if log.first_lsn > current {
                let broken = Broken {
                    after: previous.id,
                    next: log.id,
                    missing_from: current,
                    missing_to: log.first_lsn,
                    restorable_until: previous.finished_at,
                };
                return (chain, Some(broken));
            }
            chain.push(log);
            current = log.last_lsn;
            previous = log;
        }
        (chain, None)
    }
}

/// Tells whether `differential` is based on `full`.
///
/// With both GUIDs known, `differential_base_guid` must equal the full's
/// `backup_set_guid`. Otherwise the differential's `database_backup_lsn` must equal the
/// full's `checkpoint_lsn`. A known `differential_base_lsn` must equal the full's first
/// or checkpoint LSN, which are equal for most fulls, so either is accepted. A copy-only
/// full is never a base ("Copy-Only Backups").
pub fn is_differential_of(differential: &ChainBackup, full: &ChainBackup) -> bool {
    if full.is_copy_only || !same_line(differential, full) {
        return false;
    }
    if let (Some(base_guid), Some(full_guid)) =
        (&differential.differential_base_guid, &full.backup_set_guid)
    {
        return base_guid.eq_ignore_ascii_case(full_guid);
    }
    let base_lsn_matches = differential
        .differential_base_lsn
        .is_none_or(|lsn| lsn == full.first_lsn || lsn == full.checkpoint_lsn);
    differential.database_backup_lsn == full.checkpoint_lsn && base_lsn_matches
}

/// Tells whether two backups may share a chain: same `database_guid`, or one unknown
/// (backups imported from files without it are matched by LSNs alone).
fn same_line(a: &ChainBackup, b: &ChainBackup) -> bool {
    match (&a.database_guid, &b.database_guid) {
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        _ => true,
    }
}

fn fulls_newest_first(backups: &[ChainBackup]) -> Vec<&ChainBackup> {
    let mut fulls: Vec<&ChainBackup> = backups
        .iter()
        .filter(|b| b.backup_type == BackupType::Full)
        .collect();
    fulls.sort_by_key(|b| std::cmp::Reverse((b.finished_at, b.last_lsn, b.id)));
    fulls
}

/// Returns the differentials based on `full`, newest first.
fn differentials_of<'a>(backups: &'a [ChainBackup], full: &ChainBackup) -> Vec<&'a ChainBackup> {
    let mut differentials: Vec<&ChainBackup> = backups
        .iter()
        .filter(|b| b.backup_type == BackupType::Diff && is_differential_of(b, full))
        .collect();
    differentials.sort_by_key(|b| std::cmp::Reverse((b.finished_at, b.last_lsn, b.id)));
    differentials
}

fn latest_chain(backups: &[ChainBackup], log_index: &LogIndex, full: &ChainBackup) -> RestoreChain {
    let differential = differentials_of(backups, full).into_iter().next();
    let base = differential.unwrap_or(full);
    let (logs, broken) = log_index.walk(base, None);
    RestoreChain {
        full: full.clone(),
        differential: differential.cloned(),
        logs: logs.into_iter().cloned().collect(),
        stop_at: None,
        broken,
    }
}

/// Builds the chain from one full to `at`, trying its differentials newest first and
/// then the full alone.
fn plan_from_full(
    backups: &[ChainBackup],
    log_index: &LogIndex,
    full: &ChainBackup,
    at: OffsetDateTime,
) -> Result<RestoreChain, ChainError> {
    let differentials = differentials_of(backups, full)
        .into_iter()
        .filter(|d| d.finished_at <= at);
    let bases = differentials.map(Some).chain(std::iter::once(None));

    let mut first_error = None;
    for differential in bases {
        let base = differential.unwrap_or(full);
        match logs_to(log_index, base, at) {
            Ok(logs) => {
                return Ok(RestoreChain {
                    full: full.clone(),
                    differential: differential.cloned(),
                    stop_at: (!logs.is_empty()).then_some(at),
                    logs,
                    broken: None,
                })
            }
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    Err(first_error.expect("the full alone is always tried"))
}

/// Returns the logs that bring `base` forward to `at`: none when `base` itself finished
/// at `at`, else up to the first log that finished at or after `at`.
fn logs_to(
    log_index: &LogIndex,
    base: &ChainBackup,
    at: OffsetDateTime,
) -> Result<Vec<ChainBackup>, ChainError> {
    if base.finished_at == at {
        return Ok(Vec::new());
    }
    let (logs, broken) = log_index.walk(base, Some(at));
    let reaches = logs.last().is_some_and(|log| log.finished_at >= at);
    if reaches {
        return Ok(logs.into_iter().cloned().collect());
    }
    if let Some(broken) = broken {
        return Err(ChainError::Broken { target: at, broken });
    }
    let latest = logs.last().map_or(base.finished_at, |log| log.finished_at);
    Err(ChainError::AfterLastLog {
        target: at,
        latest,
        next_chain: None,
    })
}

fn span_from_base(
    log_index: &LogIndex,
    full: &ChainBackup,
    base: &ChainBackup,
) -> RestorableWindow {
    let (logs, _) = log_index.walk(base, None);
    let to = logs.last().map_or(base.finished_at, |log| log.finished_at);
    RestorableWindow {
        from: base.finished_at,
        to: to.max(base.finished_at),
        full_id: full.id,
    }
}

fn no_full_error(backups: &[ChainBackup]) -> ChainError {
    if backups.is_empty() {
        return ChainError::NoBackups;
    }
    let count = |backup_type| {
        backups
            .iter()
            .filter(|b| b.backup_type == backup_type)
            .count()
    };
    ChainError::NoFull {
        differentials: count(BackupType::Diff),
        logs: count(BackupType::Log),
    }
}

fn before_first_full(fulls: &[&ChainBackup], at: OffsetDateTime) -> ChainError {
    let earliest = fulls
        .iter()
        .min_by_key(|full| (full.finished_at, full.id))
        .expect("called with at least one full");
    ChainError::BeforeFirstFull {
        target: at,
        earliest: earliest.finished_at,
        full_id: earliest.id,
    }
}

#[cfg(test)]
mod tests;
