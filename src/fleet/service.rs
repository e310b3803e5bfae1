//! `[service]` (where bakfleet keeps its data and listens) and `[defaults]` (what
//! instances inherit).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::Diagnostics;
use super::instance::{tls, Tls};
use super::policy::Policy;
use super::raw::{RawDefaults, RawPolicy, RawRetention, RawRetry, RawService};
use super::value;
use crate::retry::RetryPolicy;

/// Settings of the bakfleet process itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// Root of the central backup store; default `bakfleet-data/store` beside fleet.toml.
    pub store_dir: PathBuf,
    /// SQLite catalogue file; default `bakfleet-data/catalog.db` beside fleet.toml.
    pub catalog: PathBuf,
    /// Address of the admin site; default 127.0.0.1:8080. `serve` binds another address
    /// only once the catalogue has an admin user.
    pub listen: SocketAddr,
    /// File of `name = "value"` lines that `password_secret` keys refer to.
    pub secrets_file: Option<PathBuf>,
    /// Lifetime of a job lease; a running job renews it at a third of this. Default 60 s.
    pub lease: Duration,
    /// Maximum number of backup jobs running at once; default 4.
    pub max_parallel_jobs: usize,
    /// Maximum number of jobs running at once on one instance; default 2, so that a
    /// cycle over many databases does not load one SQL Server with parallel backups.
    pub max_jobs_per_instance: usize,
    /// Maximum number of jobs fetching from one staging server (SMB or SFTP host, or
    /// the local folders together) at once; default 2.
    pub max_jobs_per_staging: usize,
    /// Age after which a staged file that a failed or interrupted run left behind is
    /// deleted by `prune` (and the daily prune of `serve`); default 7 days, `None` when
    /// `staged_max_age_days = 0` turns the clean-up off.
    pub staged_max_age: Option<Duration>,
    /// Free bytes the store's file system needs for `/healthz` to report ready; default
    /// [`DEFAULT_MIN_STORE_FREE_BYTES`], 0 turns the check off.
    pub min_store_free_bytes: u64,
    /// Whether the admin site trusts the reverse proxy's `X-Forwarded-Proto` and
    /// `X-Forwarded-For` headers; default false.
    pub trusted_proxy: bool,
    /// Whether the admin site serves `/metrics` without a session; default false.
    pub metrics: bool,
    /// Idle time after which an admin site session ends; default 30 minutes.
    pub session_idle: Duration,
    /// Time after login at which an admin site session ends; default 12 hours.
    pub session_max: Duration,
    /// `service.retry`: how connect, VERIFYONLY and fetch are retried after a transient
    /// fault.
    pub retry: RetryPolicy,
    /// Time a BACKUP may go without progress before its session is killed and the run
    /// fails as stalled; default 10 minutes, `None` when `stall_timeout_seconds = 0`
    /// turns stall detection off.
    pub stall_timeout: Option<Duration>,
    /// Days the log of a succeeded or skipped run is kept; default
    /// [`crate::run_log::KEEP_DAYS`].
    pub run_log_days: u64,
}

/// Default of `service.stall_timeout_seconds`. A BACKUP of a healthy database moves
/// `percent_complete` within minutes; ten of them leave room for a slow share.
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(600);

/// Default of `service.min_store_free_bytes`: 1 GiB. A store with less free space cannot
/// take the next full backup of most production databases.
pub const DEFAULT_MIN_STORE_FREE_BYTES: u64 = 1 << 30;

impl Service {
    /// Reads `[service]`, with relative paths joined to `base_dir`.
    pub(crate) fn from_raw(
        raw: Option<&RawService>,
        base_dir: &Path,
        diagnostics: &mut Diagnostics,
    ) -> Service {
        let mut service = Service {
            store_dir: base_dir.join("bakfleet-data/store"),
            catalog: base_dir.join("bakfleet-data/catalog.db"),
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)),
            secrets_file: None,
            lease: Duration::from_secs(60),
            max_parallel_jobs: 4,
            max_jobs_per_instance: 2,
            max_jobs_per_staging: 2,
            staged_max_age: Some(Duration::from_secs(7 * 86_400)),
            min_store_free_bytes: DEFAULT_MIN_STORE_FREE_BYTES,
            trusted_proxy: false,
            metrics: false,
            session_idle: Duration::from_secs(30 * 60),
            session_max: Duration::from_secs(12 * 3600),
            retry: RetryPolicy::default(),
            stall_timeout: Some(DEFAULT_STALL_TIMEOUT),
            run_log_days: crate::run_log::KEEP_DAYS,
        };
        let Some(raw) = raw else {
            return service;
        };
        if let Some(path) = &raw.store_dir {
            let path = value::local_path(diagnostics, "service.store_dir", path, base_dir);
            service.store_dir = path.unwrap_or(service.store_dir);
        }
        if let Some(path) = &raw.catalog {
            let path = value::local_path(diagnostics, "service.catalog", path, base_dir);
            service.catalog = path.unwrap_or(service.catalog);
        }
        if let Some(path) = &raw.secrets_file {
            service.secrets_file =
                value::local_path(diagnostics, "service.secrets_file", path, base_dir);
        }
        if let Some(listen) = &raw.listen {
            service.listen = listen_address(diagnostics, listen).unwrap_or(service.listen);
        }
        if let Some(lease) = &raw.lease_seconds {
            // Renewal at a third of the lease needs at least whole-second steps.
            let lease = value::seconds(diagnostics, "service.lease_seconds", lease, 3);
            service.lease = lease.unwrap_or(service.lease);
        }
        if let Some(jobs) = &raw.max_parallel_jobs {
            let jobs = value::count(diagnostics, "service.max_parallel_jobs", jobs, 1);
            let jobs = jobs.and_then(|jobs| usize::try_from(jobs).ok());
            service.max_parallel_jobs = jobs.unwrap_or(service.max_parallel_jobs);
        }
        if let Some(jobs) = &raw.max_jobs_per_instance {
            let jobs = value::count(diagnostics, "service.max_jobs_per_instance", jobs, 1);
            let jobs = jobs.and_then(|jobs| usize::try_from(jobs).ok());
            service.max_jobs_per_instance = jobs.unwrap_or(service.max_jobs_per_instance);
        }
        if let Some(days) = &raw.staged_max_age_days {
            let days = value::count(diagnostics, "service.staged_max_age_days", days, 0);
            if let Some(days) = days {
                service.staged_max_age = (days > 0).then(|| Duration::from_secs(days * 86_400));
            }
        }
        if let Some(trusted) = raw.trusted_proxy {
            service.trusted_proxy = trusted;
        }
        if let Some(metrics) = raw.metrics {
            service.metrics = metrics;
        }
        if let Some(minutes) = &raw.session_idle_minutes {
            let minutes = value::count(diagnostics, "service.session_idle_minutes", minutes, 1);
            if let Some(minutes) = minutes {
                service.session_idle = Duration::from_secs(minutes.saturating_mul(60));
            }
        }
        if let Some(hours) = &raw.session_max_hours {
            let hours = value::count(diagnostics, "service.session_max_hours", hours, 1);
            if let Some(hours) = hours {
                service.session_max = Duration::from_secs(hours.saturating_mul(3600));
            }
        }
        if let Some(jobs) = &raw.max_jobs_per_staging {
            let jobs = value::count(diagnostics, "service.max_jobs_per_staging", jobs, 1);
            let jobs = jobs.and_then(|jobs| usize::try_from(jobs).ok());
            service.max_jobs_per_staging = jobs.unwrap_or(service.max_jobs_per_staging);
        }
        if let Some(bytes) = &raw.min_store_free_bytes {
            let bytes = value::count(diagnostics, "service.min_store_free_bytes", bytes, 0);
            service.min_store_free_bytes = bytes.unwrap_or(service.min_store_free_bytes);
        }
        if let Some(retry) = &raw.retry {
            service.retry = retry_policy(retry, diagnostics);
        }
        if let Some(days) = &raw.run_log_days {
            let days = value::count(diagnostics, "service.run_log_days", days, 1);
            // Past a century the logs are kept for good, and the cut-off stays a valid time.
            service.run_log_days = days.map_or(service.run_log_days, |days| days.min(36_500));
        }
        if let Some(seconds) = &raw.stall_timeout_seconds {
            let seconds = value::count(diagnostics, "service.stall_timeout_seconds", seconds, 0);
            if let Some(seconds) = seconds {
                service.stall_timeout = (seconds > 0).then(|| Duration::from_secs(seconds));
            }
        }
        service
    }
}

/// Reads `service.retry` over the default policy.
fn retry_policy(raw: &RawRetry, diagnostics: &mut Diagnostics) -> RetryPolicy {
    let mut policy = RetryPolicy::default();
    if let Some(attempts) = &raw.attempts {
        let attempts = value::count(diagnostics, "service.retry.attempts", attempts, 1);
        let attempts = attempts.and_then(|attempts| u32::try_from(attempts).ok());
        policy.attempts = attempts.unwrap_or(policy.attempts);
    }
    let mut milliseconds = |key: &str, value: &Option<toml::Spanned<i64>>, fallback| {
        let Some(value) = value else {
            return fallback;
        };
        let number = value::count(diagnostics, key, value, 1);
        number.map_or(fallback, Duration::from_millis)
    };
    policy.base_delay = milliseconds(
        "service.retry.base_delay_ms",
        &raw.base_delay_ms,
        policy.base_delay,
    );
    policy.max_delay = milliseconds(
        "service.retry.max_delay_ms",
        &raw.max_delay_ms,
        policy.max_delay,
    );
    if policy.max_delay < policy.base_delay {
        if let Some(value) = &raw.max_delay_ms {
            let message = format!(
                "max_delay_ms {} is below base_delay_ms {}",
                policy.max_delay.as_millis(),
                policy.base_delay.as_millis()
            );
            let hint = "raise max_delay_ms to at least base_delay_ms";
            diagnostics.report(
                value.span().start,
                "service.retry.max_delay_ms",
                message,
                hint,
            );
        }
        policy.max_delay = policy.base_delay;
    }
    policy
}

fn listen_address(
    diagnostics: &mut Diagnostics,
    value: &toml::Spanned<String>,
) -> Option<SocketAddr> {
    let key = "service.listen";
    let offset = value.span().start;
    let text = value.get_ref();
    let Ok(address) = text.parse::<SocketAddr>() else {
        let message = format!("invalid listen address {text:?}");
        let hint = "write an IP address and port, e.g. \"127.0.0.1:8080\" or \"[::1]:8080\"";
        diagnostics.report(offset, key, message, hint);
        return None;
    };
    Some(address)
}

/// How long backups are kept; `bakfleet prune` and the daily prune of `serve` apply it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Minimum age in days before a full backup (and the chain that depends on it) may
    /// be deleted.
    pub full_days: u32,
    /// Minimum number of full backups kept per database, whatever their age.
    pub keep_full: u32,
}

impl Retention {
    /// Returns `base` with the keys that `raw` sets replaced; `key_prefix` is e.g.
    /// `defaults.retention.`.
    pub(crate) fn merge(
        base: Retention,
        raw: Option<&RawRetention>,
        diagnostics: &mut Diagnostics,
        key_prefix: &str,
    ) -> Retention {
        let Some(raw) = raw else {
            return base;
        };
        let mut read = |name: &str, value: &Option<toml::Spanned<i64>>, fallback: u32| {
            let Some(value) = value else {
                return fallback;
            };
            let key = format!("{key_prefix}{name}");
            let number = value::count(diagnostics, &key, value, 1);
            number
                .and_then(|number| u32::try_from(number).ok())
                .unwrap_or(fallback)
        };
        Retention {
            full_days: read("full_days", &raw.full_days, base.full_days),
            keep_full: read("keep_full", &raw.keep_full, base.keep_full),
        }
    }
}

/// Values that every instance inherits unless it sets its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Defaults {
    /// The policy that the `[defaults]` policy keys form over the built-in values, named
    /// `defaults`; every `[policy.NAME]` starts from it.
    pub policy: Policy,
    /// `defaults.policy`: the `[policy.NAME]` that instances without a `policy` key use;
    /// `None` means [`Defaults::policy`].
    pub policy_name: Option<String>,
    /// Time allowed for the TCP connect, TLS handshake and login; default 15 s.
    pub connect_timeout: Duration,
    /// A fetch fails when no bytes arrive for this long; default 120 s.
    pub transfer_timeout: Duration,
    /// `defaults.tls`: the TLS settings instances start from.
    pub tls: Tls,
}

impl Defaults {
    /// Reads `[defaults]` over the built-in values.
    pub(crate) fn from_raw(
        raw: Option<&RawDefaults>,
        base_dir: &Path,
        diagnostics: &mut Diagnostics,
    ) -> Defaults {
        let built_in = Defaults {
            policy: Policy::built_in(),
            policy_name: None,
            connect_timeout: Duration::from_secs(15),
            transfer_timeout: Duration::from_secs(120),
            tls: Tls::default(),
        };
        let Some(raw) = raw else {
            return built_in;
        };
        let policy_keys = RawPolicy {
            schedule: raw.schedule.clone(),
            time_zone: raw.time_zone.clone(),
            change_backup_type: raw.change_backup_type,
            compression: raw.compression,
            checksum: raw.checksum,
            buffer_count: raw.buffer_count.clone(),
            max_transfer_size: raw.max_transfer_size.clone(),
            encryption: raw.encryption.clone(),
            retention: raw.retention.clone(),
            rpo: raw.rpo.clone(),
            files: raw.files.clone(),
            drill: raw.drill.clone(),
        };
        let timeouts = built_in.timeouts_overridden(raw, diagnostics, "defaults.");
        Defaults {
            policy: built_in
                .policy
                .overridden(&policy_keys, diagnostics, "defaults."),
            policy_name: raw.policy.as_ref().map(|name| name.get_ref().clone()),
            connect_timeout: timeouts.0,
            transfer_timeout: timeouts.1,
            tls: tls(
                raw.tls.as_ref(),
                &built_in.tls,
                base_dir,
                diagnostics,
                "defaults.",
            )
            .unwrap_or_default(),
        }
    }

    /// Returns the connect and transfer timeouts with the keys that `raw` sets replaced.
    /// Instances use this with an empty `key_prefix`, `[defaults]` with `defaults.`.
    pub(crate) fn timeouts_overridden(
        &self,
        raw: &RawDefaults,
        diagnostics: &mut Diagnostics,
        key_prefix: &str,
    ) -> (Duration, Duration) {
        let mut timeout = |name: &str, value: &Option<toml::Spanned<i64>>, fallback| {
            let Some(value) = value else {
                return fallback;
            };
            let key = format!("{key_prefix}{name}");
            value::seconds(diagnostics, &key, value, 1).unwrap_or(fallback)
        };
        let connect_timeout = timeout(
            "connect_timeout_secs",
            &raw.connect_timeout_secs,
            self.connect_timeout,
        );
        let transfer_timeout = timeout(
            "transfer_timeout_secs",
            &raw.transfer_timeout_secs,
            self.transfer_timeout,
        );
        (connect_timeout, transfer_timeout)
    }
}
