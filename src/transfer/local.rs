//! Fetches from a directory on this machine, for instances whose backups land on a local
//! disk or on a share the operating system has mounted.

use tokio::io::AsyncReadExt;

use super::{TransferError, FETCH_CHUNK_BYTES};
use crate::store::PendingFile;

const LOCATION: &str = "local";

/// Files on this machine, named by absolute path.
#[derive(Debug, Clone, Default)]
pub struct LocalSource;

impl LocalSource {
    pub(super) async fn size(&self, path: &str) -> Result<u64, TransferError> {
        check_absolute(path)?;
        let metadata = tokio::fs::metadata(path)
            .await
            .map_err(|error| io_error(path, "size", error))?;
        if !metadata.is_file() {
            return Err(not_a_file(path, "size"));
        }
        Ok(metadata.len())
    }

    pub(super) async fn fetch(
        &self,
        path: &str,
        sink: &mut PendingFile,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<u64, TransferError> {
        check_absolute(path)?;
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(|error| io_error(path, "fetch", error))?;
        if !file
            .metadata()
            .await
            .map_err(|error| io_error(path, "fetch", error))?
            .is_file()
        {
            return Err(not_a_file(path, "fetch"));
        }
        let mut buffer = vec![0u8; FETCH_CHUNK_BYTES];
        let mut total = 0u64;
        loop {
            let filled = fill_buffer(&mut file, &mut buffer)
                .await
                .map_err(|error| io_error(path, "fetch", error))?;
            if filled == 0 {
                break;
            }
            sink.write(&buffer[..filled])
                .await
                .map_err(|source| super::store_error(LOCATION, path, source))?;
            total += filled as u64;
            progress(total);
        }
        Ok(total)
    }

    pub(super) async fn remove(&self, path: &str) -> Result<(), TransferError> {
        check_absolute(path)?;
        tokio::fs::remove_file(path)
            .await
            .map_err(|error| io_error(path, "remove", error))
    }
}

/// Reads until `buffer` is full or the file ends, because tokio's file reads return at
/// most a few MiB each and larger store writes cost fewer system calls.
async fn fill_buffer(file: &mut tokio::fs::File, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        let count = file.read(&mut buffer[filled..]).await?;
        if count == 0 {
            break;
        }
        filled += count;
    }
    Ok(filled)
}

fn check_absolute(path: &str) -> Result<(), TransferError> {
    if std::path::Path::new(path).is_absolute() {
        Ok(())
    } else {
        Err(TransferError::InvalidPath {
            location: LOCATION.to_string(),
            path: path.to_string(),
            reason: "local paths must be absolute".to_string(),
        })
    }
}

fn not_a_file(path: &str, operation: &'static str) -> TransferError {
    TransferError::Failed {
        location: LOCATION.to_string(),
        path: path.to_string(),
        operation,
        detail: "not a regular file".to_string(),
    }
}

fn io_error(path: &str, operation: &'static str, source: std::io::Error) -> TransferError {
    let location = LOCATION.to_string();
    let path = path.to_string();
    match source.kind() {
        std::io::ErrorKind::NotFound => TransferError::NotFound { location, path },
        std::io::ErrorKind::PermissionDenied => TransferError::AccessDenied {
            location,
            path,
            operation,
        },
        _ => TransferError::Io {
            location,
            path,
            operation,
            source,
        },
    }
}
