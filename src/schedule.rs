//! The scheduler: schedule slots per instance, policy and backup type, read in the
//! policy's time zone, with catch-up after downtime and one run per slot.
//!
//! DST rule: a local time that does not exist (spring forward) runs once, at the first
//! instant after the gap, and slots that fall into one gap share that run. A local time
//! that occurs twice (fall back) runs once, at its first occurrence. So a slot never runs
//! twice and is never skipped. croner applies other rules in its own time zone handling
//! (interval jobs run twice in an overlap, a fixed time in a gap moves to the next match),
//! and tokio-cron-scheduler offers no injected clock. So slots are computed here on
//! croner's wall-clock matches in UTC terms, and a small loop drives them.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{
    DateTime, Duration as ChronoDuration, NaiveDateTime, Offset, TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;
use croner::Cron;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::backup::BackupType;
use crate::fleet::{parse_cron, Fleet, Instance, Policy};
use crate::job::{self, JobContext, JobRequest, Trigger};

/// The maximum gap [`local_instant`] searches past: a day and an hour, so that zones that
/// skipped a whole calendar day (Samoa at the end of 2011) fit.
const MAX_GAP_HOURS: i64 = 25;

/// Windows in which [`Entry::next_slot`] and [`Entry::latest_slot`] look for a slot, from
/// small to large, so that a schedule every few seconds does not list a whole day.
const SEARCH_WINDOWS: [time::Duration; 3] = [
    time::Duration::MINUTE,
    time::Duration::HOUR,
    time::Duration::DAY,
];

/// How many days [`Entry::next_slot`] and [`Entry::latest_slot`] search: a yearly
/// schedule has a slot within this span.
const SEARCH_DAYS: usize = 400;

/// The cron expression could not be read.
#[derive(Debug, thiserror::Error)]
#[error("instance {instance}, policy {policy:?}: {backup_type} schedule {expression:?}: {reason}")]
pub struct ScheduleError {
    pub instance: String,
    pub policy: String,
    pub backup_type: BackupType,
    pub expression: String,
    pub reason: String,
}

/// Returns the schedule slots of `cron` read in `zone` that fall in the UTC interval
/// `(after, until]`, in order, each once, with the DST rule of this module applied.
pub fn slots(
    cron: &Cron,
    zone: Tz,
    after: OffsetDateTime,
    until: OffsetDateTime,
) -> Vec<OffsetDateTime> {
    let after = to_chrono(after);
    let until = to_chrono(until);
    let (first_local, last_local) = wall_clock_bounds(zone, after, until);
    // croner keeps the start's fraction of a second in what it finds, so a scheduler
    // that woke at 10:15:00.676 would name the 10:15 slot 10:15:00.676. Slots are keys:
    // each runs once, across processes too, so they must be the same exact instants.
    let first_local = first_local.with_nanosecond(0).unwrap_or(first_local);
    let mut found: Vec<OffsetDateTime> = Vec::new();
    // croner runs over UTC, which has no DST, so its matches are plain wall-clock times.
    for wall in cron.iter_after(first_local.and_utc()) {
        let wall = wall.naive_utc();
        if wall > last_local {
            break;
        }
        let instant = local_instant(zone, wall);
        if instant <= after || instant > until {
            continue;
        }
        let instant = to_time(instant);
        if found.last() != Some(&instant) {
            found.push(instant);
        }
    }
    found
}

/// Returns the wall-clock times that can map into `(after, until]`: the interval shifted by
/// the smallest and the largest UTC offset in effect during it. Offsets are sampled every
/// 30 minutes, finer than any offset the tz database keeps for less time.
fn wall_clock_bounds(
    zone: Tz,
    after: DateTime<Utc>,
    until: DateTime<Utc>,
) -> (NaiveDateTime, NaiveDateTime) {
    let mut smallest = i64::MAX;
    let mut largest = i64::MIN;
    let mut probe = after;
    loop {
        let offset = zone.offset_from_utc_datetime(&probe.naive_utc()).fix();
        let seconds = i64::from(offset.local_minus_utc());
        smallest = smallest.min(seconds);
        largest = largest.max(seconds);
        if probe >= until {
            break;
        }
        probe = (probe + ChronoDuration::minutes(30)).min(until);
    }
    let slack = ChronoDuration::minutes(1);
    let first = after.naive_utc() + ChronoDuration::seconds(smallest) - slack;
    let last = until.naive_utc() + ChronoDuration::seconds(largest) + slack;
    (first, last)
}

/// Maps a wall-clock time in `zone` to the instant it runs at: the first occurrence of a
/// repeated time, and the first instant after the gap for a time that does not exist.
fn local_instant(zone: Tz, wall: NaiveDateTime) -> DateTime<Utc> {
    if let Some(instant) = zone.from_local_datetime(&wall).earliest() {
        return instant.with_timezone(&Utc);
    }
    // The tz database has whole-minute offsets since 1970, so the first existing minute
    // after the gap is the instant the clocks jumped.
    let mut probe = wall.with_second(0).unwrap_or(wall);
    for _ in 0..(MAX_GAP_HOURS * 60) {
        probe += ChronoDuration::minutes(1);
        if let Some(instant) = zone.from_local_datetime(&probe).earliest() {
            return instant.with_timezone(&Utc);
        }
    }
    // Unreachable with the tz database: no gap lasts this long.
    Utc.from_utc_datetime(&wall)
}

fn to_chrono(at: OffsetDateTime) -> DateTime<Utc> {
    let nanos = at.unix_timestamp_nanos();
    let seconds = nanos.div_euclid(1_000_000_000) as i64;
    let subsec = nanos.rem_euclid(1_000_000_000) as u32;
    Utc.timestamp_opt(seconds, subsec)
        .single()
        .expect("a time in years 0-9999 is a valid chrono time")
}

fn to_time(at: DateTime<Utc>) -> OffsetDateTime {
    let nanos =
        i128::from(at.timestamp()) * 1_000_000_000 + i128::from(at.timestamp_subsec_nanos());
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .expect("a chrono time from a time value converts back")
}

/// The time source of the scheduler loop, so that a test can play a day in seconds.
pub trait Clock: Send + Sync {
    /// Returns the current time.
    fn now(&self) -> OffsetDateTime;
    /// Completes at or after `at`.
    fn sleep_until(&self, at: OffsetDateTime) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
    /// Returns true for a clock whose sleeps end at once. The loop then lets started
    /// cycles finish before it sleeps, as real time would pass while they run.
    fn jumps(&self) -> bool {
        false
    }
}

/// Finds the first slot of `cron` in `zone` after `after`, looking up to [`SEARCH_DAYS`]
/// ahead; `None` for an expression with no slot in that time.
pub fn next_slot(cron: &Cron, zone: Tz, after: OffsetDateTime) -> Option<OffsetDateTime> {
    for window in SEARCH_WINDOWS {
        if let Some(first) = slots(cron, zone, after, after + window).first() {
            return Some(*first);
        }
    }
    let mut from = after + time::Duration::DAY;
    for _ in 0..SEARCH_DAYS {
        let until = from + time::Duration::DAY;
        if let Some(first) = slots(cron, zone, from, until).first() {
            return Some(*first);
        }
        from = until;
    }
    None
}

/// Wall-clock time.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    fn sleep_until(&self, at: OffsetDateTime) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            // Sleep in steps of at most a minute, so that a wall-clock change (NTP, a
            // resumed virtual machine) delays a slot by a minute at most.
            loop {
                let left = at - OffsetDateTime::now_utc();
                if left <= time::Duration::ZERO {
                    return;
                }
                let step = left.min(time::Duration::MINUTE);
                tokio::time::sleep(step.unsigned_abs()).await;
            }
        })
    }
}

/// A clock for tests: sleeping jumps straight to the wake-up time while it is at or
/// before the end, and waits forever past it, reporting through [`SimulatedClock::parked`].
pub struct SimulatedClock {
    now: Mutex<OffsetDateTime>,
    end: OffsetDateTime,
    parked: watch::Sender<bool>,
}

impl SimulatedClock {
    /// Starts at `start`; the scheduler runs every slot up to `end`.
    pub fn new(start: OffsetDateTime, end: OffsetDateTime) -> SimulatedClock {
        SimulatedClock {
            now: Mutex::new(start),
            end,
            parked: watch::channel(false).0,
        }
    }

    /// Completes once the scheduler waits for a time past the end: every slot up to the
    /// end has run.
    pub async fn parked(&self) {
        let mut parked = self.parked.subscribe();
        // The sender lives as long as the clock, so waiting cannot fail.
        let _ = parked.wait_for(|parked| *parked).await;
    }
}

impl Clock for SimulatedClock {
    fn now(&self) -> OffsetDateTime {
        *self.now.lock().expect("clock lock")
    }

    fn jumps(&self) -> bool {
        true
    }

    fn sleep_until(&self, at: OffsetDateTime) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            if at > self.end {
                self.parked.send_replace(true);
                std::future::pending::<()>().await;
            }
            let mut now = self.now.lock().expect("clock lock");
            *now = (*now).max(at);
        })
    }
}

/// Returns the fixed offset of `instance` within a spread window: whole seconds below
/// `spread`, taken from SHA-256 of the name. It depends on nothing else, so every process
/// and every restart gives an instance the same start times, and slots stay keys.
pub fn spread_offset(instance: &str, spread: std::time::Duration) -> time::Duration {
    let window = spread.as_secs();
    if window == 0 {
        return time::Duration::ZERO;
    }
    let digest = Sha256::digest(instance.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let seconds = u64::from_be_bytes(first) % window;
    time::Duration::seconds(i64::try_from(seconds).unwrap_or(0))
}

/// One schedule: an instance, one of its policies and one backup type.
///
/// Its slots are the cron expression's times plus the instance's [`spread_offset`]: a
/// run is due, and records as its slot, the shifted time.
#[derive(Debug, Clone)]
pub struct Entry {
    pub instance: Instance,
    pub policy: Policy,
    pub backup_type: BackupType,
    cron: Cron,
    offset: time::Duration,
}

impl Entry {
    /// Lists the slots of this entry in `(after, until]`.
    pub fn slots(&self, after: OffsetDateTime, until: OffsetDateTime) -> Vec<OffsetDateTime> {
        let zone = self.policy.time_zone;
        slots(&self.cron, zone, after - self.offset, until - self.offset)
            .into_iter()
            .map(|slot| slot + self.offset)
            .collect()
    }

    /// Finds the first slot after `after`, looking up to [`SEARCH_DAYS`] ahead.
    fn next_slot(&self, after: OffsetDateTime) -> Option<OffsetDateTime> {
        next_slot(&self.cron, self.policy.time_zone, after - self.offset)
            .map(|slot| slot + self.offset)
    }

    /// Finds the newest slot at or before `now`, looking back up to [`SEARCH_DAYS`].
    fn latest_slot(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        for window in SEARCH_WINDOWS {
            if let Some(last) = self.slots(now - window, now).last() {
                return Some(*last);
            }
        }
        let mut until = now - time::Duration::DAY;
        for _ in 0..SEARCH_DAYS {
            let after = until - time::Duration::DAY;
            if let Some(last) = self.slots(after, until).last() {
                return Some(*last);
            }
            until = after;
        }
        None
    }
}

/// One slot to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub instance: String,
    pub policy: String,
    pub backup_type: BackupType,
    pub slot: OffsetDateTime,
}

/// Lists one entry per instance, distinct policy and enabled backup type.
///
/// # Errors
/// [`ScheduleError`] for an expression croner rejects; fleet.toml checks make this rare.
pub fn entries(fleet: &Fleet) -> Result<Vec<Entry>, ScheduleError> {
    let mut entries = Vec::new();
    for instance in &fleet.instances {
        for policy in instance.policies() {
            for backup_type in BackupType::ALL {
                let Some(expression) = policy.schedule.for_type(backup_type) else {
                    continue;
                };
                let cron = parse_cron(expression).map_err(|reason| ScheduleError {
                    instance: instance.name.clone(),
                    policy: policy.name.clone(),
                    backup_type,
                    expression: expression.to_string(),
                    reason,
                })?;
                entries.push(Entry {
                    instance: instance.clone(),
                    policy: policy.clone(),
                    backup_type,
                    cron,
                    offset: spread_offset(&instance.name, policy.schedule.spread),
                });
            }
        }
    }
    Ok(entries)
}

/// A started scheduler loop; [`Scheduler::shutdown`] stops it.
pub struct Scheduler {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Scheduler {
    /// Runs the catch-up, then every slot of every entry as wall-clock time reaches it.
    ///
    /// # Errors
    /// [`ScheduleError`] naming the instance, policy and expression croner rejected.
    pub async fn start(ctx: JobContext) -> Result<Scheduler, ScheduleError> {
        Self::start_with(ctx, Arc::new(SystemClock), true).await
    }

    /// Like [`Scheduler::start`] with the time source given, and the catch-up optional.
    ///
    /// # Errors
    /// [`ScheduleError`] naming the instance, policy and expression croner rejected.
    pub async fn start_with(
        ctx: JobContext,
        clock: Arc<dyn Clock>,
        catch_up: bool,
    ) -> Result<Scheduler, ScheduleError> {
        // The sender is dropped at once, so this context stays in force for good.
        let (_, contexts) = watch::channel(ctx);
        Self::start_reloading(contexts, clock, catch_up).await
    }

    /// Like [`Scheduler::start_with`], taking each context that `contexts` publishes for
    /// the slots after it: a reloaded fleet file changes schedules, instances and policies
    /// of the next runs, while jobs already started keep the context they started with.
    ///
    /// # Errors
    /// [`ScheduleError`] naming the instance, policy and expression croner rejected.
    pub async fn start_reloading(
        mut contexts: watch::Receiver<JobContext>,
        clock: Arc<dyn Clock>,
        catch_up: bool,
    ) -> Result<Scheduler, ScheduleError> {
        let ctx = contexts.borrow_and_update().clone();
        let entries = entries(&ctx.fleet)?;
        log_entries(&entries);
        let (stop, stopped) = watch::channel(false);
        let schedule = Schedule { ctx, entries };
        let task = tokio::spawn(run_loop(schedule, contexts, clock, catch_up, stopped));
        Ok(Scheduler { stop, task })
    }

    /// Stops the loop from starting further slots, and cycles still waiting for their turn
    /// from starting. Jobs of cycles under way keep running: the process's stop handling
    /// gives them their grace time and then cancels them safely, and the loop ends after
    /// them. A process that exits at once (the demo) leaves them to be marked interrupted
    /// at the next start.
    pub async fn shutdown(self) {
        self.stop.send_replace(true);
        drop(self.task);
    }
}

fn log_entries(entries: &[Entry]) {
    for entry in entries {
        tracing::info!(
            instance = %entry.instance.name,
            policy = %entry.policy.name,
            backup_type = %entry.backup_type,
            time_zone = %entry.policy.time_zone,
            "scheduled"
        );
    }
}

/// The job context in force and the schedule entries built from its fleet.
struct Schedule {
    ctx: JobContext,
    entries: Vec<Entry>,
}

impl Schedule {
    /// Takes the newest context of `contexts`. A fleet whose schedules do not build
    /// leaves the current schedule in force; the reloader checks them before publishing.
    fn update(&mut self, contexts: &mut watch::Receiver<JobContext>) {
        let ctx = contexts.borrow_and_update().clone();
        match entries(&ctx.fleet) {
            Ok(entries) => {
                log_entries(&entries);
                self.ctx = ctx;
                self.entries = entries;
            }
            Err(error) => {
                tracing::error!(%error, "reloaded schedules rejected; the previous ones stay");
            }
        }
    }
}

async fn run_loop(
    mut schedule: Schedule,
    mut contexts: watch::Receiver<JobContext>,
    clock: Arc<dyn Clock>,
    catch_up: bool,
    mut stopped: watch::Receiver<bool>,
) {
    let mut checked = clock.now();
    let mut cycles = Cycles::new(stopped.clone());
    if catch_up {
        let due = catch_up_slots(&schedule.ctx, &schedule.entries, checked).await;
        cycles.start(&schedule.ctx, &schedule.entries, due);
    }
    // Once the sender is gone no context follows, and `changed` would fail at once.
    let mut reloads_open = true;
    loop {
        cycles.reap();
        if clock.jumps() {
            cycles.finish().await;
        }
        // A reload published during a cycle applies before the next slot is chosen.
        if reloads_open && contexts.has_changed().unwrap_or(false) {
            schedule.update(&mut contexts);
        }
        let next = schedule
            .entries
            .iter()
            .filter_map(|e| e.next_slot(checked))
            .min();
        let wake = async {
            match next {
                Some(next) => clock.sleep_until(next).await,
                None => std::future::pending().await,
            }
        };
        if next.is_none() {
            tracing::info!(
                "no schedule has a future slot; the scheduler waits for a reload or shutdown"
            );
        }
        tokio::select! {
            biased;
            _ = stopped.wait_for(|stop| *stop) => break,
            changed = contexts.changed(), if reloads_open => {
                match changed {
                    Ok(()) => schedule.update(&mut contexts),
                    Err(_) => reloads_open = false,
                }
                continue;
            }
            () = wake => {}
        }
        let now = clock.now();
        let due = due_slots(&schedule.entries, checked, now);
        checked = now;
        cycles.start(&schedule.ctx, &schedule.entries, due);
    }
    cycles.finish().await;
}

/// Lists the slots in `(after, until]` in time order, keeping only the newest of each
/// entry: a run late by more than one slot covers the missed ones, as one log backup
/// covers all log since the previous one.
pub fn due_slots(entries: &[Entry], after: OffsetDateTime, until: OffsetDateTime) -> Vec<Due> {
    let mut due: Vec<Due> = Vec::new();
    for entry in entries {
        let slots = entry.slots(after, until);
        let Some(newest) = slots.last() else {
            continue;
        };
        if slots.len() > 1 {
            tracing::warn!(
                instance = %entry.instance.name,
                backup_type = %entry.backup_type,
                missed = slots.len() - 1,
                "schedule is late; running only the newest slot"
            );
        }
        due.push(Due {
            instance: entry.instance.name.clone(),
            policy: entry.policy.name.clone(),
            backup_type: entry.backup_type,
            slot: *newest,
        });
    }
    due.sort_by_key(|due| (due.backup_type, due.slot));
    due
}

/// Lists the slots to catch up at start: per entry, the newest slot before `now` when no
/// run serves it and no run of that type on the instance started after it. So downtime
/// costs one run per type, not one per missed slot. The list runs full first, then diff,
/// then log, whatever the slots' times, so that a caught-up diff or log follows the
/// caught-up full instead of being promoted to a full of its own.
pub async fn catch_up_slots(ctx: &JobContext, entries: &[Entry], now: OffsetDateTime) -> Vec<Due> {
    let mut due = Vec::new();
    for entry in entries {
        let Some(slot) = entry.latest_slot(now) else {
            continue;
        };
        let name = &entry.instance.name;
        // NOTE: both checks look at every database of the instance, so with several
        // policies on one instance a run of one policy can hide a missed slot of another.
        let has_run = ctx
            .catalog
            .slot_has_run(name, entry.backup_type, slot)
            .await;
        let newest = ctx.catalog.newest_run_start(name, entry.backup_type).await;
        let (has_run, newest) = match (has_run, newest) {
            (Ok(has_run), Ok(newest)) => (has_run, newest),
            (Err(error), _) | (_, Err(error)) => {
                tracing::error!(instance = %name, %error, "catch-up could not read the runs");
                continue;
            }
        };
        if has_run || newest.is_some_and(|started| started >= slot) {
            continue;
        }
        tracing::info!(instance = %name, backup_type = %entry.backup_type, %slot, "catching up a missed slot");
        due.push(Due {
            instance: name.clone(),
            policy: entry.policy.name.clone(),
            backup_type: entry.backup_type,
            slot,
        });
    }
    due.sort_by_key(|due| (due.backup_type, due.slot));
    due
}

/// Instance and policy names. The cycles of one key run one after the other.
type TurnKey = (String, String);

/// Cycles the loop started and has not seen finish, and the turns that order them.
///
/// The loop does not wait for a slot's cycles before it sleeps until the next slot, so a
/// FULL that takes hours on one instance delays no other instance's slots.
struct Cycles {
    tasks: JoinSet<()>,
    turns: Arc<Turns>,
    /// Stop signal of the scheduler. A cycle still waiting for its turn then does not start.
    stopped: watch::Receiver<bool>,
}

/// Queues per instance and policy, so that a FULL and a LOG of one database never race
/// for its lease, and the newest slot started per entry.
#[derive(Default)]
struct Turns {
    queues: Mutex<HashMap<TurnKey, Arc<TurnQueue>>>,
    newest: Mutex<HashMap<(TurnKey, BackupType), OffsetDateTime>>,
}

/// Queue of the cycles of one instance and policy. Each takes a ticket in
/// [`Cycles::start`] and runs when `serving` reaches that ticket.
struct TurnQueue {
    issued: AtomicU64,
    serving: watch::Sender<u64>,
}

impl Default for TurnQueue {
    fn default() -> TurnQueue {
        TurnQueue {
            issued: AtomicU64::new(0),
            serving: watch::channel(0).0,
        }
    }
}

/// Guard that passes the turn to the next ticket when its cycle ends, even by a panic.
struct TurnGuard(Arc<TurnQueue>);

impl Drop for TurnGuard {
    fn drop(&mut self) {
        self.0.serving.send_modify(|serving| *serving += 1);
    }
}

/// Waits until `ticket` is served and returns the guard that passes the turn on.
async fn wait_for_turn(queue: Arc<TurnQueue>, ticket: u64) -> TurnGuard {
    let mut serving = queue.serving.subscribe();
    // `queue` owns the sender and lives until this function returns, so `wait_for`
    // cannot see a closed channel.
    let _ = serving.wait_for(|serving| *serving == ticket).await;
    TurnGuard(queue)
}

impl Turns {
    fn queue_of(&self, key: &TurnKey) -> Arc<TurnQueue> {
        let mut queues = self.queues.lock().expect("turn queues");
        queues.entry(key.clone()).or_default().clone()
    }

    fn note_slot(&self, key: &TurnKey, backup_type: BackupType, slot: OffsetDateTime) {
        let mut newest = self.newest.lock().expect("newest slots");
        let known = newest.entry((key.clone(), backup_type)).or_insert(slot);
        *known = (*known).max(slot);
    }

    /// Returns whether a newer slot of the same entry waits behind this one. A run late
    /// by more than one slot lets the newest run instead, because one log backup covers
    /// all log since the previous one.
    fn superseded(&self, key: &TurnKey, backup_type: BackupType, slot: OffsetDateTime) -> bool {
        let newest = self.newest.lock().expect("newest slots");
        newest
            .get(&(key.clone(), backup_type))
            .is_some_and(|newest| *newest > slot)
    }
}

impl Cycles {
    fn new(stopped: watch::Receiver<bool>) -> Cycles {
        Cycles {
            tasks: JoinSet::new(),
            turns: Arc::default(),
            stopped,
        }
    }

    /// Starts due slots without waiting for them. Each instance and policy takes its
    /// turn in the order of the calls, so a caught-up FULL runs before a later slot's
    /// LOG, and runs its slots one after the other in the order of `due`.
    fn start(&mut self, ctx: &JobContext, entries: &[Entry], due: Vec<Due>) {
        let mut by_turn: Vec<(TurnKey, Vec<(Entry, OffsetDateTime)>)> = Vec::new();
        for item in due {
            let entry = entries.iter().find(|entry| {
                entry.instance.name == item.instance
                    && entry.policy.name == item.policy
                    && entry.backup_type == item.backup_type
            });
            let Some(entry) = entry else {
                continue;
            };
            let key = (item.instance, item.policy);
            self.turns.note_slot(&key, item.backup_type, item.slot);
            match by_turn.iter_mut().find(|(known, _)| *known == key) {
                Some((_, items)) => items.push((entry.clone(), item.slot)),
                None => by_turn.push((key, vec![(entry.clone(), item.slot)])),
            }
        }
        for (key, items) in by_turn {
            let ctx = ctx.clone();
            let turns = self.turns.clone();
            let stopped = self.stopped.clone();
            let queue = turns.queue_of(&key);
            let ticket = queue.issued.fetch_add(1, Ordering::SeqCst);
            self.tasks.spawn(async move {
                let _turn = wait_for_turn(queue, ticket).await;
                for (entry, slot) in items {
                    if *stopped.borrow() {
                        tracing::info!(
                            instance = %entry.instance.name,
                            backup_type = %entry.backup_type,
                            %slot,
                            "the scheduler is stopping; the cycle does not start"
                        );
                        break;
                    }
                    if turns.superseded(&key, entry.backup_type, slot) {
                        tracing::warn!(
                            instance = %entry.instance.name,
                            backup_type = %entry.backup_type,
                            %slot,
                            "schedule is late; a newer slot waits and runs instead"
                        );
                        continue;
                    }
                    run_cycle(&ctx, &entry, slot).await;
                }
            });
        }
    }

    /// Collects the cycles that have finished, logging any that panicked.
    fn reap(&mut self) {
        while let Some(result) = self.tasks.try_join_next() {
            log_cycle_end(result);
        }
    }

    /// Waits for every started cycle.
    async fn finish(&mut self) {
        while let Some(result) = self.tasks.join_next().await {
            log_cycle_end(result);
        }
    }
}

fn log_cycle_end(result: Result<(), tokio::task::JoinError>) {
    if let Err(error) = result {
        tracing::error!(%error, "a scheduled cycle ended abnormally");
    }
}

/// Backs up, for one slot, every selected database of an instance whose policy is the
/// entry's.
pub async fn run_cycle(ctx: &JobContext, entry: &Entry, slot: OffsetDateTime) {
    let instance = &entry.instance;
    let databases = match job::select_and_record_databases(ctx, instance).await {
        Ok(databases) => databases,
        Err(error) => {
            tracing::error!(instance = %instance.name, %error, "scheduled cycle could not list databases");
            return;
        }
    };
    let requests = databases
        .into_iter()
        .filter(|database| *instance.policy_for(&database.name) == entry.policy)
        .map(|database| JobRequest {
            instance: instance.clone(),
            database: database.name,
            backup_type: entry.backup_type,
            trigger: Trigger::Schedule,
            slot: Some(slot),
        })
        .collect();
    let results = job::run_batch(ctx, requests, ctx.fleet.service.max_parallel_jobs).await;
    for (request, result) in &results {
        // A job that fails before its run exists (the lease is held elsewhere, or another
        // process already runs this slot) has no run row, so the log is its only record.
        if let Err(failure) = result {
            if failure.run_id.is_none() {
                tracing::warn!(
                    instance = %instance.name,
                    database = %request.database,
                    backup_type = %entry.backup_type,
                    %slot,
                    phase = %failure.phase,
                    cause = %failure.cause,
                    "scheduled job did not start"
                );
            }
        }
    }
    let failed = results.iter().filter(|(_, result)| result.is_err()).count();
    tracing::info!(
        instance = %instance.name,
        policy = %entry.policy.name,
        backup_type = %entry.backup_type,
        %slot,
        jobs = results.len(),
        failed,
        "cycle finished"
    );
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn cron(expression: &str) -> Cron {
        parse_cron(expression).expect("valid expression")
    }

    #[test]
    fn slots_utc_every_six_hours() {
        let found = slots(
            &cron("0 0 */6 * * *"),
            Tz::UTC,
            datetime!(2026-06-01 00:00 UTC),
            datetime!(2026-06-02 00:00 UTC),
        );
        assert_eq!(
            found,
            vec![
                datetime!(2026-06-01 06:00 UTC),
                datetime!(2026-06-01 12:00 UTC),
                datetime!(2026-06-01 18:00 UTC),
                datetime!(2026-06-02 00:00 UTC),
            ]
        );
    }

    #[test]
    fn slots_are_whole_seconds_whatever_the_bounds() {
        let found = slots(
            &cron("0 */15 * * * *"),
            Tz::UTC,
            datetime!(2026-06-01 10:14:59.676 UTC),
            datetime!(2026-06-01 10:30:00.5 UTC),
        );
        assert_eq!(
            found,
            vec![
                datetime!(2026-06-01 10:15 UTC),
                datetime!(2026-06-01 10:30 UTC)
            ]
        );
    }

    #[test]
    fn slots_follow_zone_offset() {
        let found = slots(
            &cron("0 30 1 * * *"),
            chrono_tz::Europe::Paris,
            datetime!(2026-06-01 00:00 UTC),
            datetime!(2026-06-02 00:00 UTC),
        );
        assert_eq!(found, vec![datetime!(2026-06-01 23:30 UTC)]);
    }

    #[test]
    fn paris_spring_gap_runs_once_after() {
        // 2026-03-29: 02:00 CET becomes 03:00 CEST at 01:00 UTC.
        let daily = slots(
            &cron("0 30 2 * * *"),
            chrono_tz::Europe::Paris,
            datetime!(2026-03-28 12:00 UTC),
            datetime!(2026-03-30 12:00 UTC),
        );
        assert_eq!(
            daily,
            vec![
                datetime!(2026-03-29 01:00 UTC),
                datetime!(2026-03-30 00:30 UTC),
            ]
        );
        let quarter_hours = slots(
            &cron("0 */15 * * * *"),
            chrono_tz::Europe::Paris,
            datetime!(2026-03-29 00:30 UTC),
            datetime!(2026-03-29 01:30 UTC),
        );
        assert_eq!(
            quarter_hours,
            vec![
                datetime!(2026-03-29 00:45 UTC),
                datetime!(2026-03-29 01:00 UTC),
                datetime!(2026-03-29 01:15 UTC),
                datetime!(2026-03-29 01:30 UTC),
            ],
            "the four gap slots 02:00-02:45 share the run at 03:00 CEST"
        );
    }

    #[test]
    fn paris_autumn_overlap_runs_first() {
        // 2026-10-25: 03:00 CEST becomes 02:00 CET at 01:00 UTC; 02:xx occurs twice.
        let daily = slots(
            &cron("0 30 2 * * *"),
            chrono_tz::Europe::Paris,
            datetime!(2026-10-24 12:00 UTC),
            datetime!(2026-10-25 12:00 UTC),
        );
        assert_eq!(daily, vec![datetime!(2026-10-25 00:30 UTC)]);
        let hourly = slots(
            &cron("0 0 * * * *"),
            chrono_tz::Europe::Paris,
            datetime!(2026-10-24 22:30 UTC),
            datetime!(2026-10-25 03:30 UTC),
        );
        assert_eq!(
            hourly,
            vec![
                datetime!(2026-10-24 23:00 UTC),
                datetime!(2026-10-25 00:00 UTC),
                datetime!(2026-10-25 02:00 UTC),
                datetime!(2026-10-25 03:00 UTC),
            ],
            "02:00 runs at its first occurrence (00:00 UTC) only; 03:00 CET is 02:00 UTC"
        );
    }

    #[test]
    fn new_york_transitions_keep_one_run() {
        // 2026-03-08: 02:00 EST becomes 03:00 EDT at 07:00 UTC.
        let spring = slots(
            &cron("0 30 2 * * *"),
            chrono_tz::America::New_York,
            datetime!(2026-03-07 12:00 UTC),
            datetime!(2026-03-09 12:00 UTC),
        );
        assert_eq!(
            spring,
            vec![
                datetime!(2026-03-08 07:00 UTC),
                datetime!(2026-03-09 06:30 UTC),
            ]
        );
        // 2026-11-01: 02:00 EDT becomes 01:00 EST at 06:00 UTC; 01:xx occurs twice.
        let autumn = slots(
            &cron("0 30 1 * * *"),
            chrono_tz::America::New_York,
            datetime!(2026-10-31 12:00 UTC),
            datetime!(2026-11-02 12:00 UTC),
        );
        assert_eq!(
            autumn,
            vec![
                datetime!(2026-11-01 05:30 UTC),
                datetime!(2026-11-02 06:30 UTC),
            ]
        );
    }

    #[test]
    fn samoa_skipped_day_runs_once() {
        // Apia skipped 2011-12-30: 2011-12-29 23:59:59 -10:00 was followed by
        // 2011-12-31 00:00:00 +14:00, at 10:00 UTC.
        let found = slots(
            &cron("0 0 12 * * *"),
            chrono_tz::Pacific::Apia,
            datetime!(2011-12-29 12:00 UTC),
            datetime!(2011-12-31 12:00 UTC),
        );
        assert_eq!(
            found,
            vec![
                datetime!(2011-12-29 22:00 UTC),
                datetime!(2011-12-30 10:00 UTC),
                datetime!(2011-12-30 22:00 UTC),
            ],
            "the skipped 12:00 of 2011-12-30 runs at the first instant after the jump"
        );
    }

    #[test]
    fn entry_finds_next_and_latest() {
        let fleet = crate::fleet::Fleet::parse(
            "[defaults]\nschedule.full = \"0 0 1 * * Sun\"\n\
             [[instance]]\nname = \"a\"\nhost = \"h\"\n\
             auth = { kind = \"sql\", user = \"u\", password_env = \"P\" }\n\
             staging = { local = { server_path = \"/b\", dir = \"/b\" } }\n",
            std::path::Path::new("fleet.toml"),
        )
        .expect("fleet");
        let all = entries(&fleet).expect("entries");
        let full = all
            .iter()
            .find(|entry| entry.backup_type == BackupType::Full)
            .expect("full entry");
        // 2026-06-03 is a Wednesday.
        let now = datetime!(2026-06-03 12:00 UTC);
        assert_eq!(full.next_slot(now), Some(datetime!(2026-06-07 01:00 UTC)));
        assert_eq!(full.latest_slot(now), Some(datetime!(2026-05-31 01:00 UTC)));
        let log = all
            .iter()
            .find(|entry| entry.backup_type == BackupType::Log)
            .expect("log entry");
        assert_eq!(log.next_slot(now), Some(datetime!(2026-06-03 12:15 UTC)));
        assert_eq!(log.latest_slot(now), Some(now));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn turns_follow_ticket_order() {
        let queue = Arc::new(TurnQueue::default());
        let tickets: Vec<u64> = (0..4)
            .map(|_| queue.issued.fetch_add(1, Ordering::SeqCst))
            .collect();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = JoinSet::new();
        // Spawned last ticket first, as a scheduler may poll them.
        for ticket in tickets.into_iter().rev() {
            let queue = queue.clone();
            let order = order.clone();
            tasks.spawn(async move {
                let _turn = wait_for_turn(queue, ticket).await;
                tokio::task::yield_now().await;
                order.lock().expect("order").push(ticket);
            });
        }
        while let Some(result) = tasks.join_next().await {
            result.expect("turn task");
        }
        assert_eq!(*order.lock().expect("order"), vec![0, 1, 2, 3]);
    }

    fn fleet_with_spread(spread: &str) -> Fleet {
        let text = format!(
            "[defaults]\nschedule = {{ full = \"off\", diff = \"off\", spread = \"{spread}\" }}\n\
             [[instance]]\nname = \"a\"\nhost = \"h\"\n\
             auth = {{ kind = \"sql\", user = \"u\", password_env = \"P\" }}\n\
             staging = {{ local = {{ server_path = \"/b\", dir = \"/b\" }} }}\n"
        );
        Fleet::parse(&text, std::path::Path::new("fleet.toml")).expect("fleet")
    }

    #[test]
    fn spread_offset_stable_within_window() {
        let window = std::time::Duration::from_secs(600);
        let mut distinct = std::collections::BTreeSet::new();
        for index in 0..200 {
            let name = format!("sql-{index:03}");
            let offset = spread_offset(&name, window);
            assert_eq!(offset, spread_offset(&name, window), "{name}");
            assert!(offset >= time::Duration::ZERO, "{name}");
            assert!(offset < time::Duration::seconds(600), "{name}");
            assert_eq!(
                offset.subsec_nanoseconds(),
                0,
                "whole seconds keep slots exact"
            );
            distinct.insert(offset);
        }
        assert!(
            distinct.len() > 150,
            "offsets spread out: {}",
            distinct.len()
        );
        assert_eq!(
            spread_offset("sql-001", std::time::Duration::ZERO),
            time::Duration::ZERO
        );
    }

    #[test]
    fn spread_shifts_instance_slots() {
        let fleet = fleet_with_spread("10m");
        let log = &entries(&fleet).expect("entries")[0];
        let offset = spread_offset("a", std::time::Duration::from_secs(600));
        assert!(offset > time::Duration::ZERO, "pick a name with an offset");
        let now = datetime!(2026-06-03 12:00 UTC);
        assert_eq!(
            log.next_slot(now + offset),
            Some(datetime!(2026-06-03 12:15 UTC) + offset)
        );
        assert_eq!(
            log.latest_slot(now + offset),
            Some(now + offset),
            "a slot plus its offset is due"
        );
        assert_eq!(
            log.slots(now, now + time::Duration::minutes(30)),
            vec![
                datetime!(2026-06-03 12:00 UTC) + offset,
                datetime!(2026-06-03 12:15 UTC) + offset,
            ],
            "offsets under 10 minutes keep two slots in the half hour"
        );
        let unspread = &entries(&fleet_with_spread("off")).expect("entries")[0];
        assert_eq!(unspread.latest_slot(now), Some(now));
    }

    #[test]
    fn slots_interval_excludes_start() {
        let found = slots(
            &cron("0 0 1 * * *"),
            Tz::UTC,
            datetime!(2026-06-01 01:00 UTC),
            datetime!(2026-06-02 01:00 UTC),
        );
        assert_eq!(found, vec![datetime!(2026-06-02 01:00 UTC)]);
    }
}
