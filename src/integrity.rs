//! The store checked against the catalogue in both directions: catalogued backups whose
//! file is missing, changed or unreadable, and files in the store that no backup names.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::catalog::{BackupRow, Catalog, CatalogError};
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
    fn of(backup: &BackupRow) -> BackupLabel {
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
/// # Errors
/// [`IntegrityError`] when the catalogue cannot be read or a store folder cannot be listed;
/// problems with single files are findings, not errors.
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
    let mut known = std::collections::HashSet::new();
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
    for backup in &files {
        let path = file_of(store, backup);
        if let Some(finding) = check_backup(backup, &path, depth, &mut report.bytes).await {
            tracing::warn!(backup_id = backup.id, instance = %backup.instance, database = %backup.database, %finding, "store check finding");
            report.findings.push(finding);
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

/// Checks one catalogued backup's file at `depth`, returning what is wrong with it or
/// `None` when it matches the catalogue. The admin site's "verify now" calls it.
pub async fn check_one(store: &Store, backup: &BackupRow, depth: Depth) -> Option<Finding> {
    let path = file_of(store, backup);
    let mut bytes = 0;
    check_backup(backup, &path, depth, &mut bytes).await
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
