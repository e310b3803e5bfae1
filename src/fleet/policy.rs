//! Backup policies: `[policy.NAME]` tables and the implicit policy that `[defaults]` keys
//! form. A policy contains the schedules, their time zone, the BACKUP options, retention
//! and the recovery point objectives of the databases it is assigned to.

use std::time::Duration;

use chrono_tz::Tz;
use toml::Spanned;

use super::error::Diagnostics;
use super::raw::{RawEncryption, RawPolicy, RawPolicyDrill, RawRpo};
use super::schedules::{validate_cron, Schedules};
use super::service::Retention;

/// Name of the policy that the `[defaults]` keys form. `[policy.defaults]` is rejected so
/// that the name always means those keys.
pub const IMPLICIT_POLICY: &str = "defaults";

/// Smallest MAXTRANSFERSIZE and the step between valid values: 64 KB. SQL Server's
/// documentation ("BackupRestoreBase.MaxTransferSize Property", SMO) allows multiples of
/// 65536 bytes up to 4194304.
pub const MAX_TRANSFER_SIZE_STEP: u32 = 65_536;

/// Largest MAXTRANSFERSIZE SQL Server accepts: 4 MB.
pub const MAX_TRANSFER_SIZE_LIMIT: u32 = 4_194_304;

/// Maximum number of files one backup can be striped over: a backup is written to 1 to 64
/// backup devices ("Backup Devices (SQL Server)").
pub const MAX_BACKUP_FILES: u32 = 64;

/// Encryption algorithms of `BACKUP ... WITH ENCRYPTION (ALGORITHM = ...)`, as the
/// "New-SqlBackupEncryptionOption" page lists them (Aes128, Aes192, Aes256, TripleDes).
pub const ENCRYPTION_ALGORITHMS: [&str; 4] = ["AES_128", "AES_192", "AES_256", "TRIPLE_DES_3KEY"];

/// The backup settings of a set of databases.
///
/// The scheduler reads when to run from it, the type decision reads whether a DIFF or LOG
/// may become a FULL, and the BACKUP statement takes its options from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The `[policy.NAME]` name, or [`IMPLICIT_POLICY`].
    pub name: String,
    pub schedule: Schedules,
    /// IANA time zone in which the cron expressions are read; default UTC.
    pub time_zone: Tz,
    /// Take a FULL in place of a DIFF or LOG that cannot be restored (no differential
    /// base, a broken log chain). When false, such a run fails instead. Default true.
    pub change_backup_type: bool,
    /// `WITH COMPRESSION`; default true. Left out on Express, which rejects it.
    pub compression: bool,
    /// `WITH CHECKSUM` on BACKUP and RESTORE VERIFYONLY; default true.
    pub checksum: bool,
    /// `BUFFERCOUNT`; SQL Server picks a value when unset.
    pub buffer_count: Option<u32>,
    /// `MAXTRANSFERSIZE` in bytes, a multiple of 64 KB from 64 KB to 4 MB; SQL Server
    /// picks a value when unset.
    pub max_transfer_size: Option<u32>,
    pub encryption: Option<Encryption>,
    pub retention: Retention,
    pub rpo: Rpo,
    /// Files each backup is striped over, 1 to [`MAX_BACKUP_FILES`]; default 1. Striping
    /// spreads a large backup over several writers and files, and RESTORE needs them all.
    pub files: u32,
    /// Restore drills of the databases under this policy; `None` leaves them to the
    /// `[drill]` table's schedule.
    pub drill: Option<PolicyDrill>,
}

/// The `drill` key of a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDrill {
    /// When scheduled drills run (6-field cron, UTC): `None` with `enabled` takes the
    /// `[drill]` table's schedule.
    pub schedule: Option<String>,
    /// False keeps the policy's databases out of scheduled drills.
    pub enabled: bool,
}

impl Policy {
    /// Returns the cron expression on which this policy's databases are drilled, given
    /// the `[drill]` table's schedule; `None` when they get no scheduled drills.
    pub fn drill_schedule<'a>(&'a self, global: Option<&'a str>) -> Option<&'a str> {
        match &self.drill {
            None => global,
            Some(drill) if !drill.enabled => None,
            Some(drill) => drill.schedule.as_deref().or(global),
        }
    }
}

/// `WITH ENCRYPTION (ALGORITHM = ..., SERVER CERTIFICATE = ...)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encryption {
    /// One of [`ENCRYPTION_ALGORITHMS`], in upper case.
    pub algorithm: String,
    pub encryptor: Encryptor,
}

/// The key in master that protects an encrypted backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Encryptor {
    /// `SERVER CERTIFICATE = name`.
    ServerCertificate(String),
    /// `SERVER ASYMMETRIC KEY = name`.
    ServerAsymmetricKey(String),
}

/// Recovery point objectives: the maximum age of the newest backup of each type, against
/// which [`crate::protection`] reports each database. A type without one gets an RPO
/// derived from its schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rpo {
    pub full: Option<Duration>,
    pub diff: Option<Duration>,
    pub log: Option<Duration>,
}

impl Policy {
    /// Returns the policy of a file without `[defaults]`: weekly full, daily diff, log
    /// every 15 minutes, in UTC, with compression and checksums.
    pub(crate) fn built_in() -> Policy {
        Policy {
            name: IMPLICIT_POLICY.to_string(),
            schedule: Schedules::built_in(),
            time_zone: Tz::UTC,
            change_backup_type: true,
            compression: true,
            checksum: true,
            buffer_count: None,
            max_transfer_size: None,
            encryption: None,
            retention: Retention {
                full_days: 35,
                keep_full: 4,
            },
            rpo: Rpo::default(),
            files: 1,
            drill: None,
        }
    }

    /// Returns this policy with the keys that `raw` sets replaced. Problems are reported
    /// under `key_prefix` (e.g. `policy.critical.`) and the base value is kept for them.
    pub(crate) fn overridden(
        &self,
        raw: &RawPolicy,
        diagnostics: &mut Diagnostics,
        key_prefix: &str,
    ) -> Policy {
        let key = |name: &str| format!("{key_prefix}{name}");
        let mut policy = self.clone();
        policy.schedule = Schedules::merge(
            &self.schedule,
            raw.schedule.as_ref(),
            diagnostics,
            &key("schedule."),
        );
        if let Some(zone) = &raw.time_zone {
            policy.time_zone =
                time_zone(diagnostics, &key("time_zone"), zone).unwrap_or(self.time_zone);
        }
        policy.change_backup_type = raw.change_backup_type.unwrap_or(self.change_backup_type);
        policy.compression = raw.compression.unwrap_or(self.compression);
        policy.checksum = raw.checksum.unwrap_or(self.checksum);
        if let Some(count) = &raw.buffer_count {
            policy.buffer_count = buffer_count(diagnostics, &key("buffer_count"), count);
        }
        if let Some(size) = &raw.max_transfer_size {
            policy.max_transfer_size =
                max_transfer_size(diagnostics, &key("max_transfer_size"), size);
        }
        if let Some(encryption) = &raw.encryption {
            policy.encryption = read_encryption(diagnostics, &key("encryption."), encryption);
        }
        policy.retention = Retention::merge(
            self.retention,
            raw.retention.as_ref(),
            diagnostics,
            &key("retention."),
        );
        if let Some(rpo) = &raw.rpo {
            policy.rpo = read_rpo(self.rpo, rpo, diagnostics, &key("rpo."));
        }
        if let Some(files) = &raw.files {
            policy.files = backup_files(diagnostics, &key("files"), files).unwrap_or(self.files);
        }
        if let Some(drill) = &raw.drill {
            policy.drill = Some(read_drill(diagnostics, &key("drill."), drill.get_ref()));
        }
        policy
    }
}

/// Checks the number of files a backup is striped over: 1 to [`MAX_BACKUP_FILES`].
fn backup_files(diagnostics: &mut Diagnostics, key: &str, value: &Spanned<i64>) -> Option<u32> {
    let number = *value.get_ref();
    let valid = u32::try_from(number)
        .ok()
        .filter(|files| (1..=MAX_BACKUP_FILES).contains(files));
    if valid.is_none() {
        let message = format!("files = {number} is invalid");
        let hint = format!(
            "use 1 to {MAX_BACKUP_FILES}: SQL Server's BACKUP accepts at most \
             {MAX_BACKUP_FILES} devices, and 1 writes one file"
        );
        diagnostics.report(value.span().start, key, message, &hint);
    }
    valid
}

/// Reads a policy's `drill` table. An invalid schedule is reported and leaves the
/// policy's databases without scheduled drills, so a typo never drills more often.
fn read_drill(
    diagnostics: &mut Diagnostics,
    key_prefix: &str,
    raw: &RawPolicyDrill,
) -> PolicyDrill {
    let mut enabled = raw.enabled.unwrap_or(true);
    let mut schedule = None;
    if let Some(value) = &raw.schedule {
        let expression = value.get_ref().trim();
        if expression.eq_ignore_ascii_case("off") {
            enabled = false;
        } else {
            match validate_cron(expression) {
                Ok(()) => schedule = Some(expression.to_string()),
                Err(reason) => {
                    let message = format!("invalid cron expression {expression:?}: {reason}");
                    let hint = "write 6 fields: second minute hour day-of-month month \
                                day-of-week, e.g. \"0 0 3 * * Sat\" for 03:00 every Saturday";
                    let key = format!("{key_prefix}schedule");
                    diagnostics.report(value.span().start, &key, message, hint);
                    enabled = false;
                }
            }
        }
    }
    PolicyDrill { schedule, enabled }
}

fn time_zone(diagnostics: &mut Diagnostics, key: &str, value: &Spanned<String>) -> Option<Tz> {
    let text = value.get_ref().trim();
    match text.parse::<Tz>() {
        Ok(zone) => Some(zone),
        Err(_) => {
            let message = format!("unknown time zone {text:?}");
            let hint = "write an IANA time zone name such as \"UTC\", \"Europe/Paris\" or \
                        \"America/New_York\"";
            diagnostics.report(value.span().start, key, message, hint);
            None
        }
    }
}

fn buffer_count(diagnostics: &mut Diagnostics, key: &str, value: &Spanned<i64>) -> Option<u32> {
    let number = *value.get_ref();
    match u32::try_from(number) {
        Ok(count) if count >= 1 => Some(count),
        _ => {
            let message = format!("buffer count {number} is invalid");
            let hint = "use a positive number of I/O buffers, or remove the key to let SQL \
                        Server choose";
            diagnostics.report(value.span().start, key, message, hint);
            None
        }
    }
}

/// Checks MAXTRANSFERSIZE: multiples of 65536 bytes up to 4194304.
fn max_transfer_size(
    diagnostics: &mut Diagnostics,
    key: &str,
    value: &Spanned<i64>,
) -> Option<u32> {
    let number = *value.get_ref();
    let valid = u32::try_from(number).ok().filter(|size| {
        (MAX_TRANSFER_SIZE_STEP..=MAX_TRANSFER_SIZE_LIMIT).contains(size)
            && size % MAX_TRANSFER_SIZE_STEP == 0
    });
    if valid.is_none() {
        let message = format!("max_transfer_size {number} is invalid");
        let hint = "use a multiple of 65536 bytes from 65536 (64 KB) to 4194304 (4 MB)";
        diagnostics.report(value.span().start, key, message, hint);
    }
    valid
}

fn read_encryption(
    diagnostics: &mut Diagnostics,
    key_prefix: &str,
    raw: &Spanned<RawEncryption>,
) -> Option<Encryption> {
    let table = raw.get_ref();
    let algorithm_text = table.algorithm.get_ref().trim().to_ascii_uppercase();
    let algorithm = ENCRYPTION_ALGORITHMS.contains(&algorithm_text.as_str());
    if !algorithm {
        let message = format!(
            "unknown encryption algorithm {:?}",
            table.algorithm.get_ref()
        );
        let hint = format!("use one of {}", ENCRYPTION_ALGORITHMS.join(", "));
        let key = format!("{key_prefix}algorithm");
        diagnostics.report(table.algorithm.span().start, &key, message, &hint);
    }
    let encryptor = match (&table.server_certificate, &table.server_asymmetric_key) {
        (Some(name), None) => non_empty(diagnostics, key_prefix, "server_certificate", name)
            .map(Encryptor::ServerCertificate),
        (None, Some(name)) => non_empty(diagnostics, key_prefix, "server_asymmetric_key", name)
            .map(Encryptor::ServerAsymmetricKey),
        _ => {
            let message = "encryption needs exactly one of server_certificate and \
                           server_asymmetric_key"
                .to_string();
            let hint = "name the certificate in master that protects the backup, e.g. \
                        server_certificate = \"BackupCert\"";
            let key = key_prefix.trim_end_matches('.');
            diagnostics.report(raw.span().start, key, message, hint);
            None
        }
    };
    Some(Encryption {
        algorithm: algorithm.then_some(algorithm_text)?,
        encryptor: encryptor?,
    })
}

fn non_empty(
    diagnostics: &mut Diagnostics,
    key_prefix: &str,
    name: &str,
    value: &Spanned<String>,
) -> Option<String> {
    super::value::text(diagnostics, &format!("{key_prefix}{name}"), value)
}

fn read_rpo(base: Rpo, raw: &RawRpo, diagnostics: &mut Diagnostics, key_prefix: &str) -> Rpo {
    let mut read = |name: &str, value: &Option<Spanned<String>>, fallback: Option<Duration>| {
        let Some(value) = value else {
            return fallback;
        };
        match parse_duration(value.get_ref()) {
            Ok(duration) => Some(duration),
            Err(reason) => {
                let message = format!("invalid duration {:?}: {reason}", value.get_ref());
                let hint = "write a number and a unit (s, m, h, d, w), e.g. \"30m\", \"8d\" \
                            or \"1h30m\"";
                let key = format!("{key_prefix}{name}");
                diagnostics.report(value.span().start, &key, message, hint);
                fallback
            }
        }
    };
    Rpo {
        full: read("full", &raw.full, base.full),
        diff: read("diff", &raw.diff, base.diff),
        log: read("log", &raw.log, base.log),
    }
}

/// Parses a duration written as numbers with units: `s`, `m`, `h`, `d` (24 h), `w` (7 d),
/// e.g. `30m`, `8d`, `1h30m`. The total must be positive.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("it is empty".to_string());
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for character in text.chars() {
        if character.is_ascii_digit() {
            digits.push(character);
            continue;
        }
        let unit_seconds = match character {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            'w' => 604_800,
            other => return Err(format!("unknown unit {other:?}")),
        };
        let number: u64 = digits
            .parse()
            .map_err(|_| format!("unit {character:?} has no number before it"))?;
        digits.clear();
        let seconds = number
            .checked_mul(unit_seconds)
            .and_then(|seconds| total.checked_add(seconds));
        total = seconds.ok_or_else(|| "it is too large".to_string())?;
    }
    if !digits.is_empty() {
        return Err(format!("{digits} has no unit"));
    }
    if total == 0 {
        return Err("it is zero".to_string());
    }
    Ok(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_parses_units_and_sums() {
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1_800)));
        assert_eq!(parse_duration("8d"), Ok(Duration::from_secs(8 * 86_400)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse_duration("2w"), Ok(Duration::from_secs(14 * 86_400)));
    }

    #[test]
    fn duration_rejects_bad_forms() {
        for text in ["", "30", "m", "5x", "0m", "1h30"] {
            assert!(parse_duration(text).is_err(), "{text}");
        }
    }
}
