//! Stages 6 and 7: pull the staged files into the store, hashing while they stream, then
//! make each durable and check the stored bytes against the hash of what was read.

use std::time::{Duration, Instant};

use time::OffsetDateTime;

use super::backup::StagedFile;
use super::{AtPhase, JobContext, JobEventKind, JobRequest, Phase, StageError};
use crate::fleet::{Fleet, Instance, Secrets, Staging};
use crate::retry::{Classify, Retry, RetryScope, Transience};
use crate::store::{self, PendingFile, StoredFile};
use crate::transfer::{SftpSettings, SmbSettings, Source, TransferError};

/// The files of one backup, complete and fsynced in the store, with where they came from.
pub(crate) struct Fetched {
    pub(crate) source: Source,
    /// One stored file per staged file, in family order.
    pub(crate) stored: Vec<StoredFile>,
    /// The backup sets that verifying each stored file read from it, in the same order.
    pub(crate) sets: Vec<Vec<bakfile::BackupSet>>,
    pub(crate) fetched_at: OffsetDateTime,
    pub(crate) elapsed: Duration,
}

/// Fetches every staged file over one transfer, stores each durably, and re-reads each
/// stored file to compare hashes. When any file fails, the files already stored are
/// removed, so the store never contains part of a striped backup.
pub(crate) async fn pull(
    ctx: &JobContext,
    request: &JobRequest,
    run_id: i64,
    staged: &[StagedFile],
) -> Result<Fetched, StageError> {
    let started = Instant::now();
    let mut source = open_with_retry(ctx, request).await?;
    let mut stored = Vec::with_capacity(staged.len());
    let mut sets = Vec::with_capacity(staged.len());
    for file in staged {
        match pull_one(ctx, request, run_id, &source, file).await {
            Ok((one, one_sets, reopened)) => {
                stored.push(one);
                sets.push(one_sets);
                // A retry's connection replaces the one that was cut, for the next
                // files and for deleting the staged files afterwards.
                if let Some(reopened) = reopened {
                    source = reopened;
                }
            }
            Err(error) => {
                for done in &stored {
                    remove_stored(ctx, &done.rel_path).await;
                }
                return Err(error);
            }
        }
    }
    Ok(Fetched {
        source,
        stored,
        sets,
        fetched_at: OffsetDateTime::now_utc(),
        elapsed: started.elapsed(),
    })
}

/// Fetches one staged file, commits it and checks the stored copy. Returns the stored
/// file, the backup sets its verification read and, when a retry opened a new connection, that connection.
async fn pull_one(
    ctx: &JobContext,
    request: &JobRequest,
    run_id: i64,
    source: &Source,
    staged: &StagedFile,
) -> Result<(StoredFile, Vec<bakfile::BackupSet>, Option<Source>), StageError> {
    let started = Instant::now();
    // Cancelling drops the transfer, which removes the store's temp file and kills any
    // smbclient child. The staged file stays on the share for the next run.
    let transferred = tokio::select! {
        transferred = transfer(ctx, request, run_id, source, staged) => transferred?,
        () = ctx.shutdown.cancelled() => {
            return Err(super::interrupt::interrupted(ctx, Phase::Fetch));
        }
    };
    let Transferred {
        pending,
        bytes,
        total,
        reopened,
    } = transferred;
    if bytes != total {
        return Err(StageError {
            phase: Phase::Fetch,
            cause: format!(
                "fetched {bytes} bytes of {} from {} but the file has {total}; it changed \
                 while it was read",
                staged.fetch_path,
                source.describe()
            ),
        });
    }

    let stored = pending.commit().await.at(Phase::Store)?;
    let sets = match check_stored_copy(ctx, &stored).await {
        Ok(sets) => sets,
        Err(error) => {
            remove_stored(ctx, &stored.rel_path).await;
            return Err(error);
        }
    };

    let elapsed = started.elapsed();
    tracing::info!(
        store_path = %stored.rel_path,
        family = staged.family_number,
        size = stored.size,
        sha256 = %stored.sha256,
        elapsed_ms = elapsed.as_millis() as u64,
        mb_per_sec = throughput_mb(stored.size, elapsed),
        "backup fetched and stored"
    );
    Ok((stored, sets, reopened))
}

/// A staged file streamed into the store's temp file, not yet committed.
struct Transferred {
    pending: PendingFile,
    bytes: u64,
    total: u64,
    /// The connection a retry opened, which replaces the one that was cut.
    reopened: Option<Source>,
}

/// Streams the staged file into a new temp file in the store, hashing it on the way. A
/// transient transfer fault (an unreachable host, a cut connection) starts the transfer
/// again under `service.retry`, over a newly opened staging connection, and the new
/// attempt resumes after the bytes the temp file holds, once they are durable.
async fn transfer(
    ctx: &JobContext,
    request: &JobRequest,
    run_id: i64,
    source: &Source,
    staged: &StagedFile,
) -> Result<Transferred, StageError> {
    let rel_path = store::backup_rel_path(
        &request.instance.name,
        &request.database,
        request.backup_type,
        &staged.file_name,
    );
    let mut pending = ctx.store.begin(&rel_path).await.at(Phase::Store)?;
    let mut retry =
        Retry::new(&ctx.fleet.service.retry, fetch_scope(request)).stop_on(&ctx.shutdown);
    let mut resumed_at = None;
    let mut reopened = None;
    let mut first_attempt = true;
    let result = loop {
        let result = if first_attempt {
            transfer_once(ctx, request, run_id, source, staged, &mut pending).await
        } else {
            // A cut connection leaves the source unusable, so a retry opens a new one.
            match open_source(&ctx.fleet, &ctx.secrets, &request.instance).await {
                Ok(fresh) => {
                    let fresh = reopened.insert(fresh);
                    resume(
                        ctx,
                        request,
                        run_id,
                        fresh,
                        staged,
                        &mut pending,
                        &mut resumed_at,
                    )
                    .await
                }
                Err(error) => Err(AttemptError::Open(error)),
            }
        };
        first_attempt = false;
        if let Some(result) = retry.next(result).await {
            break result;
        }
    };
    if retry.attempts() > 1 {
        let mut note = format!(
            "fetch of {} took {} attempts",
            staged.file_name,
            retry.attempts()
        );
        if let Some(offset) = resumed_at {
            note.push_str(&format!("; resumed at byte {offset}"));
        }
        ctx.catalog.add_run_note(run_id, &note).await.ok();
    }
    let (bytes, total) = result.map_err(|error| match error {
        AttemptError::Open(_) | AttemptError::Transfer(_) => StageError {
            phase: Phase::Fetch,
            cause: error.to_string(),
        },
        AttemptError::Store(stage) => stage,
    })?;
    Ok(Transferred {
        pending,
        bytes,
        total,
        reopened,
    })
}

/// Makes the bytes an earlier attempt stored durable, cut to what `source` vouches for,
/// and fetches the rest. `resumed_at` keeps the last offset resumed from.
async fn resume(
    ctx: &JobContext,
    request: &JobRequest,
    run_id: i64,
    source: &Source,
    staged: &StagedFile,
    pending: &mut PendingFile,
    resumed_at: &mut Option<u64>,
) -> Result<(u64, u64), AttemptError> {
    let keep = source.resume_offset(pending.bytes_written());
    let offset = cut_to(pending, keep).await?;
    if offset > 0 {
        tracing::info!(
            file = %staged.file_name,
            offset,
            "resuming the fetch after the bytes already stored"
        );
        *resumed_at = Some(offset);
    }
    transfer_once(ctx, request, run_id, source, staged, pending).await
}
/// Opens the staging location, retrying transient faults under `service.retry`.
async fn open_with_retry(ctx: &JobContext, request: &JobRequest) -> Result<Source, StageError> {
    let mut retry =
        Retry::new(&ctx.fleet.service.retry, fetch_scope(request)).stop_on(&ctx.shutdown);
    loop {
        let result = open_source(&ctx.fleet, &ctx.secrets, &request.instance)
            .await
            .map_err(AttemptError::Open);
        if let Some(result) = retry.next(result).await {
            return super::interrupt::unless_cancelled(ctx, Phase::Fetch, result);
        }
    }
}

fn fetch_scope(request: &JobRequest) -> RetryScope<'_> {
    RetryScope {
        instance: &request.instance.name,
        database: &request.database,
        phase: Phase::Fetch.as_str(),
    }
}

/// Why one transfer attempt failed: the staging side, which may be retried, or the
/// store, which is not.
enum AttemptError {
    /// Opening the staging location failed; transient when the cause is.
    Open(anyhow::Error),
    Transfer(TransferError),
    Store(StageError),
}

impl Classify for AttemptError {
    fn transience(&self) -> Transience {
        match self {
            AttemptError::Open(error) => error
                .downcast_ref::<TransferError>()
                .map_or(Transience::Permanent, Classify::transience),
            AttemptError::Transfer(error) => error.transience(),
            AttemptError::Store(_) => Transience::Permanent,
        }
    }
}

impl std::fmt::Display for AttemptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttemptError::Open(error) => write!(f, "{error:#}"),
            AttemptError::Transfer(error) => error.fmt(f),
            AttemptError::Store(error) => f.write_str(&error.cause),
        }
    }
}

/// Makes the first `keep` bytes of `pending` durable, drops the rest, and returns the
/// offset a fetch resumes from.
async fn cut_to(pending: &mut PendingFile, keep: u64) -> Result<u64, AttemptError> {
    pending
        .resume_point(keep)
        .await
        .at(Phase::Store)
        .map_err(AttemptError::Store)
}

/// Fetches the staged file into `pending`, after the bytes it already contains, and
/// returns the byte count it then contains and the staged file's size.
async fn transfer_once(
    ctx: &JobContext,
    request: &JobRequest,
    run_id: i64,
    source: &Source,
    staged: &StagedFile,
    pending: &mut PendingFile,
) -> Result<(u64, u64), AttemptError> {
    let total = source
        .size(&staged.fetch_path)
        .await
        .map_err(AttemptError::Transfer)?;
    if pending.bytes_written() > total {
        // The staged file shrank since the last attempt, so what is stored is not its
        // start. The fetch begins again, and the checks after it reject a changed file.
        cut_to(pending, 0).await?;
    }
    let mut progress = |bytes: u64| {
        ctx.emit(
            request,
            run_id,
            JobEventKind::Fetched {
                bytes,
                total: Some(total),
            },
        );
    };
    let bytes = source
        .fetch(&staged.fetch_path, pending, &mut progress)
        .await
        .map_err(AttemptError::Transfer)?;
    Ok((bytes, total))
}

/// Removes the stored files of a backup that will not be catalogued, so the store never
/// contains a file the catalogue does not list. The staged files are still on the share, so
/// nothing is lost.
pub(crate) async fn discard(ctx: &JobContext, fetched: &Fetched) {
    for stored in &fetched.stored {
        remove_stored(ctx, &stored.rel_path).await;
    }
}

async fn remove_stored(ctx: &JobContext, rel_path: &str) {
    let path = ctx.store.absolute(rel_path);
    match tokio::fs::remove_file(&path).await {
        // An earlier stage may have removed it already.
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Ok(()) => {
            tracing::warn!(path = %path.display(), "removed the stored copy of a backup that was not catalogued")
        }
        Err(error) => {
            tracing::error!(path = %path.display(), %error, "could not remove the stored copy of a backup that was not catalogued")
        }
    }
}

/// Checks the durable copy before anything relies on it: its bytes hash as they did while
/// streaming, and its structure verifies as RESTORE VERIFYONLY's would. VERIFYONLY ran on
/// the staged file, so this catches a file that changed between the two. Both checks
/// share one read of the file, and the backup sets that verification read are returned
/// for the header check.
async fn check_stored_copy(
    ctx: &JobContext,
    stored: &StoredFile,
) -> Result<Vec<bakfile::BackupSet>, StageError> {
    let (size, sha256, verified) = ctx
        .store
        .read_back(&stored.rel_path, |reader| {
            let buffered = std::io::BufReader::with_capacity(VERIFY_BUFFER_BYTES, reader);
            bakfile::verify(buffered, bakfile::ChecksumMode::IfPresent)
        })
        .await
        .at(Phase::Store)?;
    // A copy that reads back different is a disk fault, whatever the verification reported.
    if size != stored.size || sha256 != stored.sha256 {
        return Err(StageError {
            phase: Phase::Store,
            cause: format!(
                "stored file {} reads back as {size} bytes with SHA-256 {sha256}, but {} bytes \
                 with SHA-256 {} were written; check the store's disk",
                stored.rel_path, stored.size, stored.sha256
            ),
        });
    }
    match verified {
        Ok(report) => {
            tracing::debug!(checksums = report.checksums_checked, "stored copy verified");
            Ok(report.sets)
        }
        Err(error) => Err(StageError {
            phase: Phase::Store,
            cause: format!(
                "the stored copy {} fails verification ({error}), although RESTORE \
                 VERIFYONLY passed on the server: the staged file changed after it was \
                 verified, or was damaged in transit; it stays on the share",
                stored.rel_path
            ),
        }),
    }
}

/// Read size of the stored copy's verification, as `bakfile::verify_file` uses.
const VERIFY_BUFFER_BYTES: usize = 1 << 20;

fn throughput_mb(bytes: u64, elapsed: Duration) -> f64 {
    let seconds = elapsed.as_secs_f64().max(1e-6);
    (bytes as f64 / 1_000_000.0 / seconds * 10.0).round() / 10.0
}

/// Opens the transfer that reads this instance's staging location.
pub async fn open_source(
    fleet: &Fleet,
    secrets: &Secrets,
    instance: &Instance,
) -> Result<Source, anyhow::Error> {
    match &instance.staging {
        Staging::Smb {
            host,
            share,
            port,
            credential,
            ..
        } => {
            let credential_entry = fleet.credentials.get(credential).ok_or_else(|| {
                anyhow::anyhow!(
                    "instance {}: staging credential {credential:?} is not defined in [credentials]",
                    instance.name
                )
            })?;
            let context = format!("credential {credential}");
            let password = secrets.resolve(&credential_entry.password, &context)?;
            let settings = SmbSettings {
                host: host.clone(),
                port: *port,
                share: share.clone(),
                user: credential_entry.user.clone(),
                password: password.expose().to_string(),
                domain: credential_entry.domain.clone(),
                timeout: instance.transfer_timeout,
            };
            Ok(Source::smb(settings).await?)
        }
        Staging::Sftp {
            host,
            port,
            user,
            key_file,
            known_hosts,
            ..
        } => {
            let settings = SftpSettings {
                host: host.clone(),
                port: *port,
                user: user.clone(),
                key_file: key_file.clone(),
                known_hosts: known_hosts.clone(),
                timeout: instance.transfer_timeout,
            };
            Ok(Source::sftp(settings).await?)
        }
        Staging::Local { .. } => Ok(Source::local()),
    }
}
