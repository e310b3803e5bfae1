//! Fetches from a directory on this machine, for instances whose backups land on a local
//! disk or on a share the operating system has mounted.

use std::time::Duration;

use super::copy::{ChunkCopy, CopyFailure};
use super::TransferError;
use crate::store::PendingFile;

const LOCATION: &str = "local";

/// Maximum wait for one read. A local disk completes a read in milliseconds, but a hung network
/// mount can block a read for good. The fetch then fails after this time, while the pool
/// thread blocked in the read stays blocked until the kernel returns.
const LOCAL_STALL_TIMEOUT: Duration = Duration::from_secs(300);

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

    pub(super) async fn list_files(&self, path: &str) -> Result<Vec<String>, TransferError> {
        check_absolute(path)?;
        let mut entries = tokio::fs::read_dir(path)
            .await
            .map_err(|error| io_error(path, "list", error))?;
        let mut names = Vec::new();
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(|error| io_error(path, "list", error))?
        {
            let is_file = entry.file_type().await.is_ok_and(|kind| kind.is_file());
            if let (true, Some(name)) = (is_file, entry.file_name().to_str()) {
                names.push(name.to_string());
            }
        }
        Ok(names)
    }

    pub(super) async fn check_folder(&self, path: &str) -> Result<(), TransferError> {
        check_absolute(path)?;
        let mut entries = tokio::fs::read_dir(path)
            .await
            .map_err(|error| io_error(path, "list", error))?;
        entries
            .next_entry()
            .await
            .map_err(|error| io_error(path, "list", error))?;
        Ok(())
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
        let offset = sink.bytes_written();
        if offset > 0 {
            use tokio::io::AsyncSeekExt;

            file.seek(std::io::SeekFrom::Start(offset))
                .await
                .map_err(|error| io_error(path, "fetch", error))?;
        }
        let mut copy = ChunkCopy::resuming_at(offset);
        let copied = copy
            .run(&mut file, sink, progress, Some(LOCAL_STALL_TIMEOUT))
            .await;
        match copied {
            Ok(()) => Ok(copy.streamed),
            Err(CopyFailure::Store(source)) => Err(super::store_error(LOCATION, path, source)),
            Err(CopyFailure::Read(error)) => Err(io_error(path, "fetch", error)),
            Err(CopyFailure::Stalled) => Err(TransferError::TimedOut {
                location: LOCATION.to_string(),
                path: path.to_string(),
                operation: "fetch",
                timeout: LOCAL_STALL_TIMEOUT,
            }),
        }
    }

    pub(super) async fn remove(&self, path: &str) -> Result<(), TransferError> {
        check_absolute(path)?;
        tokio::fs::remove_file(path)
            .await
            .map_err(|error| io_error(path, "remove", error))
    }
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
