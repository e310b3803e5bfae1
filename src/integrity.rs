//! The store checked against the catalogue in both directions: catalogued backups whose
//! file is missing, changed or unreadable, and files in the store that no backup names.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use crate::catalog::{BackupRow, Catalog, CatalogError, FailureKind};
use crate::store::{path_name, Store};

/// How much of each file is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// Size only: fast, catches missing and truncated files.
    Size,
    /// Size and SHA-256 against the catalogue: catches any changed byte.
    Hash,
    /// Hash, then the backup file's own structure and checksums, as `inspect` reads them.
    Structure,
}

impl Depth {
    /// Tells whether a clean check at this depth may clear a mark of `kind`: only when it
    /// reads what found the problem. A matching size proves nothing about the bytes, so a
    /// size-only check clears no mark, and only a structure check clears an unreadable
    /// or damaged file's mark.
    pub fn clears(self, kind: FailureKind) -> bool {
        match self {
            Depth::Size => false,
            Depth::Hash => kind != FailureKind::Unreadable,
            Depth::Structure => true,
        }
    }
}

/// The part of the catalogue and store to check: everything, one instance, or one database.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub instance: Option<String>,
    pub database: Option<String>,
}

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// A catalogued backup whose file is not there.
    Missing { backup: BackupLabel, path: PathBuf },
    /// A catalogued backup whose file has another size than catalogued.
    SizeMismatch {
        backup: BackupLabel,
        path: PathBuf,
        catalogued: u64,
        found: u64,
    },
    /// A catalogued backup whose file has another SHA-256 than catalogued.
    HashMismatch {
        backup: BackupLabel,
        path: PathBuf,
        catalogued: String,
        found: String,
    },
    /// A file that could not be read, or whose backup structure is damaged.
    Unreadable {
        backup: BackupLabel,
        path: PathBuf,
        reason: String,
    },
    /// A file in the store that no catalogued backup names.
    Orphan { path: PathBuf, size: u64 },
}

impl Finding {
    /// Returns true for findings that mean a catalogued backup cannot be trusted. Orphan
    /// files waste space but endanger no backup.
    pub fn is_critical(&self) -> bool {
        !matches!(self, Finding::Orphan { .. })
    }

    /// Returns the kind of mark the finding leaves on its backup, or `None` for an orphan
    /// file, which is no backup.
    pub fn failure_kind(&self) -> Option<FailureKind> {
        match self {
            Finding::Missing { .. } => Some(FailureKind::Missing),
            Finding::SizeMismatch { .. } => Some(FailureKind::SizeMismatch),
            Finding::HashMismatch { .. } => Some(FailureKind::HashMismatch),
            Finding::Unreadable { .. } => Some(FailureKind::Unreadable),
            Finding::Orphan { .. } => None,
        }
    }

    /// Returns the file the finding is about.
    pub fn path(&self) -> &Path {
        match self {
            Finding::Missing { path, .. }
            | Finding::SizeMismatch { path, .. }
            | Finding::HashMismatch { path, .. }
            | Finding::Unreadable { path, .. }
            | Finding::Orphan { path, .. } => path,
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::Missing { backup, path } => {
                write!(f, "{backup}: file missing: {}", path.display())
            }
            Finding::SizeMismatch {
                backup,
                path,
                catalogued,
                found,
            } => write!(
                f,
                "{backup}: size {found} bytes, catalogued {catalogued}: {}",
                path.display()
            ),
            Finding::HashMismatch {
                backup,
                path,
                catalogued,
                found,
            } => write!(
                f,
                "{backup}: SHA-256 {found}, catalogued {catalogued}: {}",
                path.display()
            ),
            Finding::Unreadable {
                backup,
                path,
                reason,
            } => write!(f, "{backup}: {reason}: {}", path.display()),
            Finding::Orphan { path, size } => write!(
                f,
                "file not in the catalogue ({size} bytes): {}",
                path.display()
            ),
        }
    }
}

/// Names a backup in findings: id, instance, database, type and finish time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupLabel(String);

impl BackupLabel {
    pub fn of(backup: &BackupRow) -> BackupLabel {
        BackupLabel(format!(
            "backup {} ({} backup of [{}] on {}, finished {})",
            backup.id,
            backup.backup_type,
            backup.database,
            backup.instance,
            crate::chain::format_time(&backup.finished_at)
        ))
    }
}

impl fmt::Display for BackupLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The outcome of a check: counts and findings.
#[derive(Debug, Default)]
pub struct Report {
    /// Catalogued backups checked.
    pub backups: usize,
    /// Bytes of the files checked.
    pub bytes: u64,
    /// Files found in the store, catalogued or not.
    pub store_files: usize,
    pub findings: Vec<Finding>,
    /// Backups whose failed-verification mark this check removed, because every file of
    /// each now matches the catalogue.
    pub cleared: Vec<ClearedMark>,
    /// Marked backups whose files matched, but at a depth that does not read what found
    /// the problem, so they keep their mark (see [`Depth::clears`]).
    pub kept_marks: usize,
}

/// A failed-verification mark that a check removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClearedMark {
    pub backup: BackupLabel,
    /// When a check first found the problem that is now gone.
    pub found_at: OffsetDateTime,
}

impl Report {
    pub fn critical(&self) -> usize {
        self.findings.iter().filter(|f| f.is_critical()).count()
    }

    pub fn orphans(&self) -> usize {
        self.findings.len() - self.critical()
    }
}

/// The catalogue could not be read, or the store could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum IntegrityError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("cannot record the verification result of {backup} in the catalogue: {source}; check that the catalogue file is writable and run the check again")]
    Record {
        backup: BackupLabel,
        /// Boxed, because a catalogue error would make every result of this module large.
        #[source]
        source: Box<CatalogError>,
    },
    #[error("cannot list the store folder {path}: {source}")]
    Scan {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Checks every catalogued backup in `scope` against its file, then lists the files in
/// the scope's part of the store that no catalogued backup names.
///
/// A backup with a critical finding gets a failed-verification mark in the catalogue
/// (see [`record_result`]). A marked backup whose files all match again loses its mark
/// when `depth` reads what found the problem (see [`Depth::clears`]). Orphan files are no
/// backups and get no mark.
///
/// # Errors
/// [`IntegrityError`] when the catalogue cannot be read or written, or a store folder
/// cannot be listed; problems with single files are findings, not errors.
pub async fn check(
    catalog: &Catalog,
    store: &Store,
    scope: &Scope,
    depth: Depth,
) -> Result<Report, IntegrityError> {
    let all = catalog
        .backups_in_scope_with_pruned(scope.instance.as_deref(), scope.database.as_deref())
        .await?;
    // A pruned backup's file is gone, or about to go when the prune was cut off: neither
    // is a finding, and a file still there is no orphan.
    // Each file of a striped backup is checked as a backup of its own, with its own size
    // and hash.
    let mut known = HashSet::new();
    let mut files = Vec::new();
    let mut backups = 0;
    for (backup, pruned) in &all {
        for family in catalog.backup_families(backup).await? {
            let file = backup.for_family(&family);
            known.insert(file_of(store, &file));
            if !pruned {
                files.push(file);
            }
        }
        if !pruned {
            backups += 1;
        }
    }
    let mut report = Report {
        backups,
        ..Report::default()
    };
    // Marks are few, so the check reads them once and writes only where a mark changes.
    let mut marked: HashMap<i64, FailureKind> = catalog
        .failed_backups(scope.instance.as_deref(), scope.database.as_deref())
        .await?
        .into_iter()
        .map(|failed| (failed.backup.id, failed.failure.finding))
        .collect();
    let mut failed: HashSet<i64> = HashSet::new();
    for backup in &files {
        let path = file_of(store, backup);
        if let Some(finding) = check_backup(backup, &path, depth, &mut report.bytes).await {
            tracing::warn!(backup_id = backup.id, instance = %backup.instance, database = %backup.database, %finding, "store check finding");
            // The first failed family of a striped backup names its mark.
            if failed.insert(backup.id) {
                record_result(catalog, backup, Some(&finding), depth).await?;
                marked.remove(&backup.id);
            }
            report.findings.push(finding);
        }
    }
    for (backup, pruned) in &all {
        let Some(&kind) = marked.get(&backup.id) else {
            continue;
        };
        if *pruned || failed.contains(&backup.id) {
            continue;
        }
        if !depth.clears(kind) {
            report.kept_marks += 1;
            continue;
        }
        if let Some(cleared) = record_result(catalog, backup, None, depth).await? {
            report.cleared.push(cleared);
        }
    }
    let scan_root = scope_dir(store, scope);
    let files = tokio::task::spawn_blocking(move || list_files(&scan_root))
        .await
        .expect("store listing does not panic")?;
    report.store_files = files.len();
    for (path, size) in files {
        if !known.contains(&path) {
            report.findings.push(Finding::Orphan { path, size });
        }
    }
    Ok(report)
}

/// Checks every file of one catalogued backup at `depth`, and records the result as
/// [`check`] does: a critical finding marks the backup as failed verification, and a
/// backup whose files all match loses its mark when `depth` clears it. Returns the first finding, or `None`
/// when every file matches the catalogue. The admin site's "verify now" calls it.
///
/// # Errors
/// [`IntegrityError`] when the catalogue cannot be read or written.
pub async fn check_one(
    catalog: &Catalog,
    store: &Store,
    backup: &BackupRow,
    depth: Depth,
) -> Result<Option<Finding>, IntegrityError> {
    let mut bytes = 0;
    let mut finding = None;
    // Each file of a striped backup has its own size and hash.
    for family in catalog.backup_families(backup).await? {
        let file = backup.for_family(&family);
        let path = file_of(store, &file);
        finding = check_backup(&file, &path, depth, &mut bytes).await;
        if finding.is_some() {
            break;
        }
    }
    record_result(catalog, backup, finding.as_ref(), depth).await?;
    Ok(finding)
}

/// Records the result of checking `backup` at `depth` in the catalogue, and logs each
/// mark set or cleared. A critical `finding` marks the backup as failed verification, or
/// updates its mark. `None` removes a mark that `depth` clears (see [`Depth::clears`])
/// and returns it.
///
/// # Errors
/// [`IntegrityError::Record`] when the catalogue read or write fails.
pub async fn record_result(
    catalog: &Catalog,
    backup: &BackupRow,
    finding: Option<&Finding>,
    depth: Depth,
) -> Result<Option<ClearedMark>, IntegrityError> {
    let record_error = |source| IntegrityError::Record {
        backup: BackupLabel::of(backup),
        source: Box::new(source),
    };
    let Some((finding, kind)) = finding.and_then(|f| f.failure_kind().map(|kind| (f, kind))) else {
        let mark = catalog
            .verification_failure(backup.id)
            .await
            .map_err(record_error)?;
        match mark {
            None => return Ok(None),
            Some(mark) if !depth.clears(mark.finding) => {
                tracing::info!(
                    backup_id = backup.id,
                    instance = %backup.instance,
                    database = %backup.database,
                    finding = mark.finding.as_str(),
                    "failed-verification mark kept: this check does not read what found it"
                );
                return Ok(None);
            }
            Some(_) => {}
        }
        let cleared = catalog
            .clear_verification_failure(backup.id)
            .await
            .map_err(record_error)?;
        let Some(cleared) = cleared else {
            return Ok(None);
        };
        tracing::info!(
            backup_id = backup.id,
            instance = %backup.instance,
            database = %backup.database,
            path = %backup.store_path,
            found_at = %crate::chain::format_time(&cleared.found_at),
            "failed-verification mark cleared"
        );
        return Ok(Some(ClearedMark {
            backup: BackupLabel::of(backup),
            found_at: cleared.found_at,
        }));
    };

    let mark = catalog
        .record_verification_failure(
            backup.id,
            kind,
            &finding.to_string(),
            OffsetDateTime::now_utc(),
        )
        .await
        .map_err(record_error)?;
    // An earlier mark keeps the time it was first found.
    if mark.found_at == mark.checked_at {
        tracing::warn!(
            backup_id = backup.id,
            instance = %backup.instance,
            database = %backup.database,
            path = %finding.path().display(),
            finding = kind.as_str(),
            "backup marked as failed verification"
        );
    } else {
        tracing::debug!(
            backup_id = backup.id,
            instance = %backup.instance,
            database = %backup.database,
            path = %finding.path().display(),
            finding = kind.as_str(),
            "backup still fails verification"
        );
    }
    Ok(None)
}

/// Returns the file of a backup. Store paths are relative to the store root, except that
/// `bakfleet import` without `--copy` catalogues absolute paths.
fn file_of(store: &Store, backup: &BackupRow) -> PathBuf {
    let path = Path::new(&backup.store_path);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        store.absolute(&backup.store_path)
    }
}

/// Returns the store folder that contains the scope's files: `{instance}/{database}` as
/// the store names them.
fn scope_dir(store: &Store, scope: &Scope) -> PathBuf {
    let mut dir = store.root().to_path_buf();
    if let Some(instance) = &scope.instance {
        dir.push(path_name(instance));
        if let Some(database) = &scope.database {
            dir.push(path_name(database));
        }
    }
    dir
}

async fn check_backup(
    backup: &BackupRow,
    path: &Path,
    depth: Depth,
    bytes: &mut u64,
) -> Option<Finding> {
    let label = BackupLabel::of(backup);
    let size = match tokio::fs::metadata(path).await {
        Ok(metadata) => metadata.len(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Some(Finding::Missing {
                backup: label,
                path: path.to_path_buf(),
            });
        }
        Err(error) => {
            return Some(Finding::Unreadable {
                backup: label,
                path: path.to_path_buf(),
                reason: format!("cannot read the file's metadata: {error}"),
            });
        }
    };
    *bytes += size;
    if size != backup.size_bytes {
        return Some(Finding::SizeMismatch {
            backup: label,
            path: path.to_path_buf(),
            catalogued: backup.size_bytes,
            found: size,
        });
    }
    if depth == Depth::Size {
        return None;
    }
    let owned = path.to_path_buf();
    let hashed = tokio::task::spawn_blocking(move || crate::store::hash_file_at(&owned))
        .await
        .expect("hashing does not panic");
    let sha256 = match hashed {
        Ok((_, sha256)) => sha256,
        Err(error) => {
            return Some(Finding::Unreadable {
                backup: label,
                path: path.to_path_buf(),
                reason: error.to_string(),
            });
        }
    };
    if sha256 != backup.sha256 {
        return Some(Finding::HashMismatch {
            backup: label,
            path: path.to_path_buf(),
            catalogued: backup.sha256.clone(),
            found: sha256,
        });
    }
    if depth == Depth::Structure {
        return check_structure(label, path).await;
    }
    None
}

/// Reads the backup file as RESTORE VERIFYONLY would read its structure: MTF blocks,
/// stream checksums and, where the backup has them, page checksums.
async fn check_structure(label: BackupLabel, path: &Path) -> Option<Finding> {
    let owned = path.to_path_buf();
    let verified = tokio::task::spawn_blocking(move || {
        bakfile::verify_file(&owned, bakfile::ChecksumMode::IfPresent)
    })
    .await
    .expect("verifying does not panic");
    verified.err().map(|error| Finding::Unreadable {
        backup: label,
        path: path.to_path_buf(),
        reason: format!("the backup file is damaged: {error}"),
    })
}

/// Lists regular files under `dir` with their sizes, skipping the temp files of writes in
/// progress. A missing folder has no files. Symbolic links are not followed.
fn list_files(dir: &Path) -> Result<Vec<(PathBuf, u64)>, IntegrityError> {
    let mut files = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let scan_error = |source| IntegrityError::Scan {
            path: folder.clone(),
            source,
        };
        let entries = match std::fs::read_dir(&folder) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => return Err(scan_error(error)),
        };
        for entry in entries {
            let entry = entry.map_err(scan_error)?;
            let file_type = entry.file_type().map_err(scan_error)?;
            if file_type.is_dir() {
                folders.push(entry.path());
            } else if file_type.is_file() && !crate::store::is_temp_file_name(entry.file_name()) {
                let size = entry.metadata().map_err(scan_error)?.len();
                files.push((entry.path(), size));
            }
        }
    }
    files.sort();
    Ok(files)
}
