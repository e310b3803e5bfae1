//! `bakfleet import DIR --instance NAME [--copy]`: catalogues backup files that bakfleet
//! did not take, such as an Ola Hallengren backup tree, from their own headers.
//!
//! Without `--copy` the file stays where it is and the catalogue records its absolute
//! path as `store_path`, so an absolute `store_path` marks a file outside the store. With
//! `--copy` the file is copied into the store. The original is never moved or changed.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::inspect::{error_kind, read_file_headers};
use crate::backup::{BackupRecord, BackupType, Lsn};
use crate::catalog::{Catalog, NewRun, RunStats};
use crate::fleet::Fleet;
use crate::job::Phase;
use crate::store::{self, Store};

/// Read buffer for hashing and copying.
const CHUNK: usize = 1 << 20;

/// Settings of one import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Folder walked recursively; every regular file in it is examined.
    pub dir: PathBuf,
    /// Instance name the backups are catalogued under.
    pub instance: String,
    /// Catalogue only backups of this database when set.
    pub database: Option<String>,
    /// Copy each file into the store instead of cataloguing it in place.
    pub copy: bool,
}

/// One file the import catalogued.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    pub path: PathBuf,
    pub backup_id: i64,
    pub record: BackupRecord,
}

/// One file the import left out, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: String,
}

/// Outcome of an import: files catalogued and files left out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportReport {
    pub imported: Vec<Imported>,
    pub skipped: Vec<Skipped>,
}

/// Reason a file was not imported, as the report prints it.
type SkipReason = String;

/// Runs the command: imports, then prints one line per file and a summary.
pub(crate) async fn execute(fleet_path: &Path, options: ImportOptions) -> anyhow::Result<ExitCode> {
    let fleet = Fleet::load(fleet_path)?;
    if !fleet.instances.iter().any(|i| i.name == options.instance) {
        // Backups of a retired server are worth cataloguing, so this is only a warning.
        eprintln!(
            "warning: instance {} is not defined in {}; its backups are catalogued under that \
             name anyway",
            options.instance,
            fleet.source.display()
        );
    }
    let catalog = Catalog::open(&fleet.service.catalog).await?;
    let store = Store::open(&fleet.service.store_dir)?;
    let report = import_backups(&catalog, &store, &options).await?;
    for imported in &report.imported {
        let record = &imported.record;
        println!(
            "imported {} as backup #{}: [{}] {} LSN {}..{} at {}",
            imported.path.display(),
            imported.backup_id,
            record.database,
            record.backup_type,
            record.first_lsn,
            record.last_lsn,
            record.store_path
        );
    }
    for skipped in &report.skipped {
        println!("skipped  {}: {}", skipped.path.display(), skipped.reason);
    }
    println!(
        "{} file(s) imported, {} skipped",
        report.imported.len(),
        report.skipped.len()
    );
    // Files left out by design (other files, other databases, copies already catalogued)
    // are no problem. A damaged, truncated or unreadable backup is one the DBA must see.
    let problems = report
        .skipped
        .iter()
        .filter(|skipped| {
            PROBLEM_REASONS
                .iter()
                .any(|problem| skipped.reason.starts_with(problem))
        })
        .count();
    Ok(if problems == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Start of the reason of a file skipped because the catalogue already contains its bytes.
const ALREADY_CATALOGUED: &str = "already catalogued";

/// Starts of the skip reasons that make `import` exit with 1.
const PROBLEM_REASONS: [&str; 5] = [
    "damaged",
    "truncated",
    "unreadable",
    "copy into the store failed",
    "the file changed",
];

/// Imports every backup file under `options.dir` into the catalogue, in path order.
///
/// Each imported file gets its own run with trigger `import`, completed together with
/// its backup row. A file is imported only when its headers read, it verifies as RESTORE
/// VERIFYONLY would (see [`bakfile::verify_file`]), it contains exactly one complete backup
/// set of a full, differential or log backup, and no catalogued backup has its SHA-256.
///
/// # Errors
/// Only failures that stop the whole import: a folder that cannot be listed or a
/// catalogue that cannot be written. Problems with one file are reported as skipped.
pub async fn import_backups(
    catalog: &Catalog,
    store: &Store,
    options: &ImportOptions,
) -> anyhow::Result<ImportReport> {
    let mut files = Vec::new();
    collect_files(&options.dir, &mut files)?;
    files.sort();

    let mut report = ImportReport::default();
    for path in files {
        match import_file(catalog, store, options, &path).await? {
            Ok((backup_id, record)) => {
                tracing::info!(path = %path.display(), backup_id, "backup imported");
                report.imported.push(Imported {
                    path,
                    backup_id,
                    record: *record,
                });
            }
            Err(reason) => {
                tracing::info!(path = %path.display(), %reason, "file skipped");
                report.skipped.push(Skipped { path, reason });
            }
        }
    }
    Ok(report)
}

/// Lists regular files under `dir`, descending into subfolders. Symbolic links are not
/// followed, so a link loop cannot make the walk endless.
fn collect_files(dir: &Path, files: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let entries = std::fs::read_dir(dir)
        .map_err(|error| anyhow::anyhow!("listing folder {} failed: {error}", dir.display()))?;
    for entry in entries {
        let entry = entry
            .map_err(|error| anyhow::anyhow!("listing folder {} failed: {error}", dir.display()))?;
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            collect_files(&entry.path(), files)?;
        } else if file_type.is_file() {
            files.push(entry.path());
        }
    }
    Ok(())
}

/// Imports one file. The outer error stops the import; the inner one skips the file.
async fn import_file(
    catalog: &Catalog,
    store: &Store,
    options: &ImportOptions,
    path: &Path,
) -> anyhow::Result<Result<(i64, Box<BackupRecord>), SkipReason>> {
    let started = Instant::now();
    let owned = path.to_path_buf();
    let examined = tokio::task::spawn_blocking(move || examine(&owned)).await?;
    let examined = match examined {
        Ok(examined) => examined,
        Err(reason) => return Ok(Err(reason)),
    };
    let set = &examined.set;
    if let Some(database) = &options.database {
        if !set.database_name.eq_ignore_ascii_case(database) {
            return Ok(Err(format!(
                "database [{}] does not match --database {database}",
                set.database_name
            )));
        }
    }
    let existing = catalog.backups_with_sha256(&examined.sha256).await?;
    if let Some(backup) = existing.first() {
        return Ok(Err(format!(
            "{ALREADY_CATALOGUED} as backup #{} ({}) with the same SHA-256",
            backup.id, backup.store_path
        )));
    }

    let store_path = if options.copy {
        match copy_into_store(store, options, &examined, path).await {
            Ok(rel_path) => rel_path,
            Err(reason) => return Ok(Err(reason)),
        }
    } else {
        absolute_path(path)
    };
    let record = build_record(options, &examined, path, store_path, started);
    match catalog_record(catalog, &record, started).await {
        Ok(backup_id) => Ok(Ok((backup_id, Box::new(record)))),
        Err(error) => {
            if options.copy {
                // The copy is not catalogued, so it would only take space in the store.
                let copy = store.absolute(&record.store_path);
                if let Err(remove_error) = std::fs::remove_file(&copy) {
                    tracing::error!(path = %copy.display(), error = %remove_error, "could not remove an uncatalogued copy");
                }
            }
            Err(error)
        }
    }
}

/// A file that passed every check of its own content.
struct Examined {
    set: bakfile::BackupSet,
    backup_type: BackupType,
    size: u64,
    sha256: String,
}

/// Reads the headers, then verifies the structure and hashes the file in one pass.
fn examine(path: &Path) -> Result<Examined, SkipReason> {
    let sets =
        read_file_headers(path).map_err(|error| format!("{}: {error}", error_kind(&error)))?;
    let (size, sha256) = verify_and_hash(path)?;
    let [set] = <[bakfile::BackupSet; 1]>::try_from(sets).map_err(|sets| {
        format!(
            "holds {} backup sets; import catalogues files with exactly one",
            sets.len()
        )
    })?;
    if set.family_count > 1 {
        return Err(format!(
            "stripe {} of {} of a striped backup; it cannot be restored without the other files",
            set.family_sequence, set.family_count
        ));
    }
    let backup_type = match set.backup_type {
        bakfile::BackupType::Database => BackupType::Full,
        bakfile::BackupType::Differential => BackupType::Diff,
        bakfile::BackupType::Log => BackupType::Log,
        other => {
            return Err(format!(
                "{other:?} backups (type {}) are not catalogued",
                other.msdb_letter()
            ))
        }
    };
    Ok(Examined {
        set,
        backup_type,
        size,
        sha256,
    })
}

/// Verifies the file as RESTORE VERIFYONLY would and hashes it in the same read.
fn verify_and_hash(path: &Path) -> Result<(u64, String), SkipReason> {
    let unreadable = |error: std::io::Error| format!("unreadable: {error}");
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let mut reader = HashingReader {
        inner: std::io::BufReader::with_capacity(CHUNK, file),
        hasher: Sha256::new(),
        size: 0,
    };
    if let Err(error) = bakfile::verify(&mut reader, bakfile::ChecksumMode::IfPresent) {
        return Err(format!("{}: {error}", error_kind(&error)));
    }
    // The verifier may stop at the final filemark, so bytes after it still need hashing.
    std::io::copy(&mut reader, &mut std::io::sink()).map_err(unreadable)?;
    Ok((reader.size, hex::encode(reader.hasher.finalize())))
}

/// A reader that hashes and counts the bytes it passes on.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    size: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buffer)?;
        self.hasher.update(&buffer[..read]);
        self.size += read as u64;
        Ok(read)
    }
}

/// Copies the file into the store through a pending file, and checks that the copy has
/// the hash the file had when it was examined.
async fn copy_into_store(
    store: &Store,
    options: &ImportOptions,
    examined: &Examined,
    path: &Path,
) -> Result<String, SkipReason> {
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "backup".to_string());
    let rel_path = store::backup_rel_path(
        &options.instance,
        &examined.set.database_name,
        examined.backup_type,
        &file_name,
    );
    let mut pending = store
        .begin(&rel_path)
        .await
        .map_err(|error| format!("copy into the store failed: {error}"))?;
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|error| format!("unreadable: {error}"))?;
    let mut buffer = vec![0u8; CHUNK];
    loop {
        let read = tokio::io::AsyncReadExt::read(&mut file, &mut buffer)
            .await
            .map_err(|error| format!("unreadable: {error}"))?;
        if read == 0 {
            break;
        }
        pending
            .write(&buffer[..read])
            .await
            .map_err(|error| format!("copy into the store failed: {error}"))?;
    }
    let stored = pending
        .commit()
        .await
        .map_err(|error| format!("copy into the store failed: {error}"))?;
    if stored.sha256 != examined.sha256 {
        let copy = store.absolute(&stored.rel_path);
        let _ = std::fs::remove_file(&copy);
        return Err(format!(
            "the file changed while it was imported (SHA-256 {} then {}); the copy was removed",
            examined.sha256, stored.sha256
        ));
    }
    Ok(stored.rel_path)
}

fn absolute_path(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

fn build_record(
    options: &ImportOptions,
    examined: &Examined,
    path: &Path,
    store_path: String,
    started: Instant,
) -> BackupRecord {
    let set = &examined.set;
    let lsn = |value: bakfile::Lsn| Lsn(value.to_numeric());
    let differential = examined.backup_type == BackupType::Diff;
    BackupRecord {
        instance: options.instance.clone(),
        database: set.database_name.clone(),
        backup_type: examined.backup_type,
        store_path,
        staged_path: absolute_path(path),
        size_bytes: examined.size,
        sha256: examined.sha256.clone(),
        first_lsn: lsn(set.first_lsn),
        last_lsn: lsn(set.last_lsn),
        checkpoint_lsn: lsn(set.checkpoint_lsn),
        database_backup_lsn: lsn(set.database_backup_lsn),
        // msdb's differential_base_lsn of a differential is its base full's checkpoint
        // LSN, which the header stores as DatabaseBackupLSN.
        differential_base_lsn: differential.then(|| lsn(set.database_backup_lsn)),
        differential_base_guid: set
            .differential_base_guid
            .filter(|_| differential)
            .map(|guid| guid.to_string()),
        backup_set_guid: Some(set.backup_set_guid.to_string()),
        // TODO: the header's database GUID position is not known, so imports leave it out.
        database_guid: None,
        backup_start: set.backup_start_date,
        backup_finish: set.backup_finish_date.unwrap_or(set.backup_start_date),
        time_zone: Some(i16::from(set.time_zone)),
        server_version: Some(format!(
            "{}.{}.{}",
            set.software_major, set.software_minor, set.software_build
        )),
        recovery_model: Some(
            match set.recovery_model {
                bakfile::RecoveryModel::Full => "FULL",
                bakfile::RecoveryModel::BulkLogged => "BULK_LOGGED",
                bakfile::RecoveryModel::Simple => "SIMPLE",
            }
            .to_string(),
        ),
        has_checksums: set.has_checksums,
        is_copy_only: set.is_copy_only,
        compressed: set.compressed,
        backup_size: Some(set.backup_size),
        compressed_size: Some(examined.size),
        fetched_at: OffsetDateTime::now_utc(),
        fetch_ms: started.elapsed().as_millis() as u64,
        // TODO: read the file list from the backup as RESTORE FILELISTONLY does, so that
        // restore scripts of imported backups can write MOVE clauses.
        files: None,
        // Import rejects a family of a striped backup, so the file is the whole backup.
        families: Vec::new(),
    }
}

/// Starts a run with trigger `import` and completes it with the backup row; a run whose
/// completion fails is marked failed in phase `catalog`.
async fn catalog_record(
    catalog: &Catalog,
    record: &BackupRecord,
    started: Instant,
) -> anyhow::Result<i64> {
    let run = NewRun {
        instance: record.instance.clone(),
        database: record.database.clone(),
        backup_type: record.backup_type,
        trigger: "import".to_string(),
        started_at: OffsetDateTime::now_utc(),
        host: gethostname::gethostname().to_string_lossy().into_owned(),
        pid: std::process::id(),
        slot: None,
    };
    let run_id = catalog.start_run(&run).await?;
    let elapsed = started.elapsed();
    let stats = RunStats {
        finished_at: OffsetDateTime::now_utc(),
        duration_ms: elapsed.as_millis() as u64,
        bytes: record.size_bytes,
        throughput_bps: record.size_bytes as f64 / elapsed.as_secs_f64().max(1e-6),
    };
    // Runs of the pipeline complete in phase `catalog`, and listings show imports alike.
    let completed = match catalog.set_run_phase(run_id, Phase::Catalog.as_str()).await {
        Ok(()) => catalog.complete_run(run_id, record, &stats).await,
        Err(error) => Err(error),
    };
    match completed {
        Ok(backup_id) => Ok(backup_id),
        Err(error) => {
            let cause = error.to_string();
            if let Err(fail_error) = catalog
                .fail_run(run_id, Phase::Catalog.as_str(), &cause)
                .await
            {
                tracing::error!(run_id, error = %fail_error, "could not record the failed import run");
            }
            Err(error.into())
        }
    }
}
