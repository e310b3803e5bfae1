//! SFTP transfers over russh.

use super::{SftpSettings, TransferError};
use crate::store::PendingFile;

/// An SFTP host.
#[derive(Debug)]
pub struct SftpSource {
    settings: SftpSettings,
}

impl SftpSource {
    pub(super) async fn connect(settings: SftpSettings) -> Result<SftpSource, TransferError> {
        Ok(SftpSource { settings })
    }

    pub(super) fn describe(&self) -> String {
        let settings = &self.settings;
        format!(
            "sftp://{}@{}:{}",
            settings.user, settings.host, settings.port
        )
    }

    pub(super) async fn size(&self, path: &str) -> Result<u64, TransferError> {
        Err(self.unbuilt(path))
    }

    pub(super) async fn fetch(
        &self,
        path: &str,
        _sink: &mut PendingFile,
        _progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<u64, TransferError> {
        Err(self.unbuilt(path))
    }

    pub(super) async fn remove(&self, path: &str) -> Result<(), TransferError> {
        Err(self.unbuilt(path))
    }

    fn unbuilt(&self, path: &str) -> TransferError {
        TransferError::Failed {
            location: self.describe(),
            path: path.to_string(),
            operation: "any",
            detail: "SFTP transfers are not built yet".to_string(),
        }
    }
}
