//! The central repository of backup files: atomic, durable writes under
//! `{instance}/{database}/{type}/{file}`, and re-hashing of stored files.

mod error;
mod name;
mod pending;
mod sync;

use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

pub use error::StoreError;
pub use name::{
    backup_file_name, backup_rel_path, decode_name, encode_name, family_file_name,
    parse_backup_file_name, path_name,
};
pub use pending::{is_temp_file_name, PendingFile, StoredFile};

/// Read size for re-hashing: large enough that system calls cost little next to SHA-256.
const REHASH_CHUNK_BYTES: usize = 1 << 20;

/// Longest path component, in bytes, that Linux file systems (ext4, xfs, btrfs) and NTFS
/// accept. NTFS counts UTF-16 units, but stored names are ASCII after encoding.
const MAX_COMPONENT_BYTES: usize = 255;

/// The root directory of the store. Cloning is cheap and every clone writes to the same
/// tree.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens the store at `root`, creating the directory (and its parents) when missing.
    ///
    /// # Errors
    /// [`StoreError::OpenRoot`] when the directory cannot be created or is not a directory.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        let open_error = |source| StoreError::OpenRoot {
            path: root.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(root).map_err(open_error)?;
        let metadata = std::fs::metadata(root).map_err(open_error)?;
        if !metadata.is_dir() {
            let source = std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory");
            return Err(open_error(source));
        }
        Ok(Store {
            root: root.to_path_buf(),
        })
    }

    /// Returns the directory the store was opened at.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Joins a `/`-separated relative path to the root, without checking it.
    pub fn absolute(&self, rel_path: &str) -> PathBuf {
        let mut path = self.root.clone();
        path.extend(rel_path.split('/').filter(|part| !part.is_empty()));
        path
    }

    /// Starts a file at `rel_path` (`/`-separated, relative).
    ///
    /// Creates the parent directories (each new one made durable in its parent) and a temp
    /// file beside the final name, named `.{name}.{uuid}.partial`: hidden, unique, and
    /// recognised by [`Store::remove_partial_files`]. Nothing appears under the final name
    /// until [`PendingFile::commit`].
    ///
    /// # Errors
    /// [`StoreError::InvalidPath`] for an absolute path, an empty, `.` or `..` component, a
    /// backslash or NUL, or a component over 255 bytes; [`StoreError::AlreadyExists`] when
    /// the final name is taken; I/O errors naming the directory or temp file.
    pub async fn begin(&self, rel_path: &str) -> Result<PendingFile, StoreError> {
        let components = check_rel_path(rel_path)?;
        let final_path = self.absolute(rel_path);
        let file_name = components
            .last()
            .expect("check_rel_path returns components");
        let temp_path = final_path.with_file_name(pending::temp_file_name(file_name));

        let root = self.root.clone();
        let parents: Vec<String> = components[..components.len() - 1]
            .iter()
            .map(|part| part.to_string())
            .collect();
        sync::run_blocking(move || sync::create_dirs_durably(&root, &parents)).await?;

        PendingFile::create(rel_path.to_string(), temp_path, final_path).await
    }

    /// Re-reads a stored file and returns its size in bytes and its SHA-256 in lower-case
    /// hex, for checks that the stored copy still matches the catalogue.
    ///
    /// # Errors
    /// [`StoreError::InvalidPath`] as for [`Store::begin`]; [`StoreError::Read`] naming the
    /// file when it is missing or unreadable.
    pub async fn rehash(&self, rel_path: &str) -> Result<(u64, String), StoreError> {
        check_rel_path(rel_path)?;
        let path = self.absolute(rel_path);
        sync::run_blocking(move || hash_file(&path)).await
    }

    /// Reads the stored file at `rel_path` once and hashes every byte on the way:
    /// `inspect` reads from the start as far as it needs, then the rest is read. Returns
    /// the size, the SHA-256 in lower-case hex, and what `inspect` returned.
    ///
    /// A check that both re-hashes a file and parses it reads the disk, and decodes a
    /// compressed backup, once instead of twice. A read error inside `inspect` is its
    /// own to report; the same error then usually fails the rest of the read too.
    ///
    /// # Errors
    /// As [`Store::rehash`].
    pub async fn read_back<T, F>(
        &self,
        rel_path: &str,
        inspect: F,
    ) -> Result<(u64, String, T), StoreError>
    where
        F: FnOnce(&mut dyn std::io::Read) -> T + Send + 'static,
        T: Send + 'static,
    {
        check_rel_path(rel_path)?;
        let path = self.absolute(rel_path);
        sync::run_blocking(move || read_back_file(&path, inspect)).await
    }

    /// Removes temp files left by writes that never committed (after a crash or kill) and
    /// returns how many it removed.
    ///
    /// A writer holds an exclusive `flock` on its temp file, which the kernel drops when
    /// the writer dies, so a file whose lock can be taken goes at once. A file still locked
    /// goes only once unmodified for `idle`: file systems where `flock` does not reach
    /// other hosts (some NFS set-ups) would otherwise keep it forever. Callers pass a time
    /// after which a writer has lost its job lease anyway.
    ///
    /// # Errors
    /// [`StoreError::Scan`] naming the directory that could not be listed, or
    /// [`StoreError::RemovePartial`] naming the file that could not be removed.
    pub async fn remove_partial_files(&self, idle: Duration) -> Result<usize, StoreError> {
        let root = self.root.clone();
        let removed = sync::run_blocking(move || remove_partial_files_under(&root, idle)).await?;
        if removed > 0 {
            tracing::warn!(removed, root = %self.root.display(), "removed partial store files");
        }
        Ok(removed)
    }
}

/// Splits `rel_path` into components after checking each one can only name a file below
/// the root.
fn check_rel_path(rel_path: &str) -> Result<Vec<&str>, StoreError> {
    let invalid = |reason: &str| StoreError::InvalidPath {
        rel_path: rel_path.to_string(),
        reason: reason.to_string(),
    };
    if rel_path.starts_with('/') {
        return Err(invalid(
            "it is absolute; store paths are relative to the root",
        ));
    }
    if rel_path.contains(['\\', '\0']) {
        return Err(invalid("it contains a backslash or NUL"));
    }
    let components: Vec<&str> = rel_path.split('/').collect();
    for component in &components {
        if component.is_empty() || *component == "." || *component == ".." {
            return Err(invalid("it has an empty, `.` or `..` component"));
        }
        if component.len() > MAX_COMPONENT_BYTES {
            return Err(invalid("a component is longer than 255 bytes"));
        }
    }
    if pending::is_temp_file_name(components.last().expect("split returns one item")) {
        return Err(invalid("its file name has the form of a temp file"));
    }
    Ok(components)
}

/// Reads a file anywhere and returns its size and lower-case hex SHA-256. Blocking: call
/// it from a blocking task.
///
/// # Errors
/// [`StoreError::Read`] naming the file when it is missing or unreadable.
pub fn hash_file_at(path: &Path) -> Result<(u64, String), StoreError> {
    hash_file(path)
}

fn hash_file(path: &Path) -> Result<(u64, String), StoreError> {
    let (size, sha256, ()) = read_back_file(path, |_| ())?;
    Ok((size, sha256))
}

/// Opens `path`, lets `inspect` read from the start, reads the rest, and hashes all.
fn read_back_file<T>(
    path: &Path,
    inspect: impl FnOnce(&mut dyn std::io::Read) -> T,
) -> Result<(u64, String, T), StoreError> {
    use std::io::Read;

    let read_error = |source| StoreError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut reader = HashingReader {
        inner: file,
        hasher: Sha256::new(),
        size: 0,
    };
    let inspected = inspect(&mut reader);
    let mut buffer = vec![0u8; REHASH_CHUNK_BYTES];
    while reader.read(&mut buffer).map_err(read_error)? > 0 {}
    Ok((
        reader.size,
        hex::encode(reader.hasher.finalize()),
        inspected,
    ))
}

/// Hashes and counts every byte read through it.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    size: u64,
}

impl<R: std::io::Read> std::io::Read for HashingReader<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let count = self.inner.read(buffer)?;
        self.hasher.update(&buffer[..count]);
        self.size += count as u64;
        Ok(count)
    }
}

fn remove_partial_files_under(dir: &Path, idle: Duration) -> Result<usize, StoreError> {
    let scan_error = |source| StoreError::Scan {
        path: dir.to_path_buf(),
        source,
    };
    let mut removed = 0;
    for entry in std::fs::read_dir(dir).map_err(scan_error)? {
        let entry = entry.map_err(scan_error)?;
        // `file_type` does not follow symbolic links, so a link out of the store is never
        // entered.
        let file_type = entry.file_type().map_err(scan_error)?;
        let path = entry.path();
        if file_type.is_dir() {
            removed += remove_partial_files_under(&path, idle)?;
        } else if file_type.is_file()
            && pending::is_temp_file_name(entry.file_name())
            && (pending::is_abandoned_temp_file(&path) || unmodified_for(&entry, idle))
        {
            std::fs::remove_file(&path).map_err(|source| StoreError::RemovePartial {
                path: path.clone(),
                source,
            })?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// True when the file was last modified `idle` ago or earlier; false when unknown.
fn unmodified_for(entry: &std::fs::DirEntry, idle: Duration) -> bool {
    entry
        .metadata()
        .and_then(|metadata| metadata.modified())
        .ok()
        .and_then(|modified| modified.elapsed().ok())
        .is_some_and(|elapsed| elapsed >= idle)
}

#[cfg(test)]
mod tests;
