//! Retries with exponential backoff and full jitter, for the faults of a night on the
//! network: a refused or reset connection, a dropped TDS session, an unreachable share.

use std::fmt;
use std::time::Duration;

use rand::Rng;

use crate::mssql::{ConnectSettings, Connection, MssqlError};
use crate::shutdown::Shutdown;
use crate::transfer::TransferError;

/// How often and how patiently an operation is tried; `[service] retry` in fleet.toml.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; 1 turns retries off. Default 3.
    pub attempts: u32,
    /// Ceiling of the first delay; each later retry doubles it. Default 2 s.
    pub base_delay: Duration,
    /// Largest ceiling of any delay. Default 60 s.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// Three attempts spread over up to 6 s: enough for a failover or a restarted
    /// listener, short enough that a dead host fails the run within minutes.
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            base_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Returns the upper bound of the delay before retry number `retry` (1 for the first
    /// retry): `base_delay * 2^(retry - 1)`, capped at `max_delay`.
    pub fn delay_ceiling(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        self.base_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }

    /// Draws the delay before retry number `retry` uniformly from zero to its ceiling
    /// ("full jitter"), so that jobs failing together do not retry together.
    pub fn delay(&self, retry: u32, rng: &mut impl Rng) -> Duration {
        let ceiling = self.delay_ceiling(retry);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rng.random_range(0..=nanos))
    }
}

/// Whether trying the same operation again may succeed without a change of settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transience {
    Transient,
    Permanent,
}

/// Errors that know whether they are transient.
pub trait Classify {
    fn transience(&self) -> Transience;
}

/// SQL Server errors worth another try: 1205, the session was chosen as deadlock
/// victim, and 3023, a backup or file operation on the same database was running and
/// the statement must be serialized with it.
const TRANSIENT_SERVER_ERRORS: &[u32] = &[1205, 3023];

impl Classify for MssqlError {
    /// Refused, reset and timed-out connections and dropped sessions are transient. A
    /// failed login (18456), a certificate problem and any server error outside
    /// [`TRANSIENT_SERVER_ERRORS`] (4208 LOG under SIMPLE, 3201 cannot open the backup
    /// device, permission errors) are permanent.
    fn transience(&self) -> Transience {
        let transient = match self {
            MssqlError::Connect { reason, .. } => {
                !reason.contains("error 18456") && !reason.contains("error 18452")
            }
            MssqlError::Timeout { .. } | MssqlError::Session { .. } => true,
            MssqlError::Server { number, .. } => TRANSIENT_SERVER_ERRORS.contains(number),
            MssqlError::Certificate { .. } | MssqlError::Reply { .. } => false,
        };
        if transient {
            Transience::Transient
        } else {
            Transience::Permanent
        }
    }
}

impl Classify for TransferError {
    /// Unreachable hosts (SMB NT_STATUS_CONNECTION_*, SSH disconnects), timeouts, cut
    /// transfers and busy files are transient; authentication, access and host-key
    /// errors are permanent.
    fn transience(&self) -> Transience {
        if self.is_transient() {
            Transience::Transient
        } else {
            Transience::Permanent
        }
    }
}

/// The instance, database and phase being retried, named in the log line of each attempt.
#[derive(Debug, Clone, Copy)]
pub struct RetryScope<'a> {
    pub instance: &'a str,
    pub database: &'a str,
    /// The job phase (`connect`, `verify`, `fetch`).
    pub phase: &'a str,
}

/// The attempts of one operation. Call [`Retry::next`] with each result until it
/// returns the final one:
///
/// ```ignore
/// let mut retry = Retry::new(&policy, scope);
/// let value = loop {
///     if let Some(result) = retry.next(operation().await).await {
///         break result;
///     }
/// };
/// ```
pub struct Retry<'a> {
    policy: &'a RetryPolicy,
    scope: RetryScope<'a>,
    attempt: u32,
    /// The process's stop state; its cancellation ends a backoff sleep at once.
    stop: Option<&'a Shutdown>,
    stopped: bool,
}

impl<'a> Retry<'a> {
    /// Starts before the first attempt.
    pub fn new(policy: &'a RetryPolicy, scope: RetryScope<'a>) -> Retry<'a> {
        Retry {
            policy,
            scope,
            attempt: 1,
            stop: None,
            stopped: false,
        }
    }

    /// Ends the retries when `shutdown` cancels running jobs: a backoff sleep in progress
    /// stops at once and [`Retry::next`] returns the last error, so a stop signal does not
    /// wait for a delay of up to `max_delay`.
    pub fn stop_on(mut self, shutdown: &'a Shutdown) -> Retry<'a> {
        self.stop = Some(shutdown);
        self
    }

    /// Checks whether the retries ended because running jobs were cancelled, in which case
    /// the last error is not the reason the operation gave up.
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// Returns the number of the attempt that produced the last result passed to
    /// [`Retry::next`] (or of the next attempt before the first call).
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// Decides what follows an attempt. A success, a permanent error, the last allowed
    /// attempt or a cancellation (see [`Retry::stop_on`]) ends the loop with `Some`. After
    /// a transient error it logs the attempt, sleeps for the backoff delay and returns
    /// `None`.
    pub async fn next<T, E>(&mut self, result: Result<T, E>) -> Option<Result<T, E>>
    where
        E: Classify + fmt::Display,
    {
        let error = match result {
            Ok(value) => {
                if self.attempt > 1 {
                    tracing::info!(
                        instance = self.scope.instance,
                        database = self.scope.database,
                        phase = self.scope.phase,
                        attempt = self.attempt,
                        "succeeded after a retry"
                    );
                }
                return Some(Ok(value));
            }
            Err(error) => error,
        };
        let transient = error.transience() == Transience::Transient;
        if !transient || self.attempt >= self.policy.attempts.max(1) {
            tracing::warn!(
                instance = self.scope.instance,
                database = self.scope.database,
                phase = self.scope.phase,
                attempt = self.attempt,
                attempts = self.policy.attempts,
                transient,
                %error,
                "attempt failed; giving up"
            );
            return Some(Err(error));
        }
        let delay = self.policy.delay(self.attempt, &mut rand::rng());
        tracing::warn!(
            instance = self.scope.instance,
            database = self.scope.database,
            phase = self.scope.phase,
            attempt = self.attempt,
            attempts = self.policy.attempts,
            delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            %error,
            "attempt failed with a transient error; retrying"
        );
        if !self.sleep_unless_stopped(delay).await {
            tracing::warn!(
                instance = self.scope.instance,
                database = self.scope.database,
                phase = self.scope.phase,
                attempt = self.attempt,
                "retry abandoned: running jobs were cancelled"
            );
            self.stopped = true;
            return Some(Err(error));
        }
        self.attempt += 1;
        None
    }

    /// Sleeps for `delay`; returns false, at once, when the stop state cancels running
    /// jobs first.
    async fn sleep_unless_stopped(&self, delay: Duration) -> bool {
        let Some(stop) = self.stop else {
            tokio::time::sleep(delay).await;
            return true;
        };
        tokio::select! {
            () = tokio::time::sleep(delay) => !stop.is_cancelled(),
            () = stop.cancelled() => false,
        }
    }
}

/// Opens a session, retrying transient failures under `policy` until `stop`, when given,
/// cancels running jobs. Returns the session and the number of attempts it took.
///
/// # Errors
/// The last attempt's error, or the first permanent one (a failed login, a rejected
/// certificate). After a cancellation it is the last error seen, and the caller checks
/// `stop` to tell the two apart.
pub async fn open_connection(
    settings: &ConnectSettings,
    policy: &RetryPolicy,
    database: &str,
    stop: Option<&Shutdown>,
) -> Result<(Connection, u32), MssqlError> {
    let scope = RetryScope {
        instance: &settings.instance,
        database,
        phase: "connect",
    };
    let mut retry = Retry::new(policy, scope);
    if let Some(stop) = stop {
        retry = retry.stop_on(stop);
    }
    loop {
        let result = Connection::open(settings).await;
        if let Some(result) = retry.next(result).await {
            return result.map(|connection| (connection, retry.attempts()));
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(500),
        }
    }

    #[test]
    fn delay_ceiling_doubles_to_max() {
        let policy = policy();
        let ceilings: Vec<u128> = (1..=6)
            .map(|retry| policy.delay_ceiling(retry).as_millis())
            .collect();
        assert_eq!(ceilings, [100, 200, 400, 500, 500, 500]);
    }

    #[test]
    fn delay_ceiling_survives_overflow() {
        let policy = policy();
        assert_eq!(policy.delay_ceiling(200), Duration::from_millis(500));
    }

    #[test]
    fn delay_stays_within_ceiling() {
        let policy = policy();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for retry in 1..=6 {
            let ceiling = policy.delay_ceiling(retry);
            let delays: Vec<Duration> = (0..200).map(|_| policy.delay(retry, &mut rng)).collect();
            assert!(
                delays.iter().all(|delay| *delay <= ceiling),
                "retry {retry}"
            );
            let below_half = delays.iter().filter(|delay| **delay < ceiling / 2).count();
            assert!(
                below_half > 0,
                "retry {retry}: full jitter draws from zero up"
            );
        }
    }

    fn server_error(number: u32) -> MssqlError {
        MssqlError::Server {
            instance: "sql01".to_string(),
            statement: "BACKUP".to_string(),
            number,
            state: 1,
            class: 16,
            message: String::new(),
        }
    }

    #[test]
    fn classify_server_errors() {
        for number in [18456, 4208, 3201, 262] {
            let transience = server_error(number).transience();
            assert_eq!(transience, Transience::Permanent, "error {number}");
        }
        for number in [1205, 3023] {
            let transience = server_error(number).transience();
            assert_eq!(transience, Transience::Transient, "error {number}");
        }
    }

    #[test]
    fn classify_connect_failures() {
        let refused = MssqlError::Connect {
            instance: "sql01".to_string(),
            address: "sql01:1433".to_string(),
            reason: "Connection refused (os error 111)".to_string(),
        };
        assert_eq!(refused.transience(), Transience::Transient);

        let login = MssqlError::Connect {
            instance: "sql01".to_string(),
            address: "sql01:1433".to_string(),
            reason: "error 18456: Login failed for user 'x'.".to_string(),
        };
        assert_eq!(login.transience(), Transience::Permanent);

        let certificate = MssqlError::Certificate {
            instance: "sql01".to_string(),
            problem: "certificate of instance sql01 is not signed".to_string(),
            reason: "UnknownIssuer".to_string(),
        };
        assert_eq!(certificate.transience(), Transience::Permanent);
    }

    #[derive(Debug)]
    struct Flaky(Transience);

    impl fmt::Display for Flaky {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{:?}", self.0)
        }
    }

    impl Classify for Flaky {
        fn transience(&self) -> Transience {
            self.0
        }
    }

    /// Runs an operation that fails with `errors` in turn, then succeeds; returns the
    /// final result and the attempts made. The delays are at most 4 ms.
    async fn run_flaky(errors: &[Transience]) -> (Result<(), Flaky>, u32) {
        let policy = &RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(4),
        };
        let scope = RetryScope {
            instance: "sql01",
            database: "Sales",
            phase: "connect",
        };
        let mut retry = Retry::new(policy, scope);
        let mut calls = 0;
        let result = loop {
            let result = match errors.get(calls) {
                Some(transience) => Err(Flaky(*transience)),
                None => Ok(()),
            };
            calls += 1;
            if let Some(result) = retry.next(result).await {
                break result;
            }
        };
        (result, u32::try_from(calls).unwrap())
    }

    #[tokio::test]
    async fn retry_recovers_from_transient_errors() {
        let (result, calls) = run_flaky(&[Transience::Transient, Transience::Transient]).await;
        assert!(result.is_ok());
        assert_eq!(calls, 3);
    }

    #[tokio::test]
    async fn retry_stops_at_permanent_error() {
        let (result, calls) = run_flaky(&[Transience::Transient, Transience::Permanent]).await;
        assert!(result.is_err());
        assert_eq!(calls, 2);
    }

    #[tokio::test]
    async fn retry_honours_attempt_limit() {
        let errors = [Transience::Transient; 10];
        let (result, calls) = run_flaky(&errors).await;
        assert!(result.is_err());
        assert_eq!(calls, 5);
    }

    #[tokio::test]
    async fn retry_sleep_ends_on_cancel() {
        let policy = &RetryPolicy {
            attempts: 3,
            base_delay: Duration::from_secs(600),
            max_delay: Duration::from_secs(600),
        };
        let scope = RetryScope {
            instance: "sql01",
            database: "Sales",
            phase: "connect",
        };
        let shutdown = Shutdown::new();
        let canceller = shutdown.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            canceller.cancel("stopped by SIGTERM".to_string());
        });
        let mut retry = Retry::new(policy, scope).stop_on(&shutdown);
        let started = std::time::Instant::now();
        // Each delay is drawn from up to 600 s, so the cancellation ends a sleep.
        let result: Result<(), Flaky> = loop {
            if let Some(result) = retry.next(Err(Flaky(Transience::Transient))).await {
                break result;
            }
        };
        let elapsed = started.elapsed();
        assert!(result.is_err());
        assert!(retry.stopped(), "the retry records the cancellation");
        assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    }
}
