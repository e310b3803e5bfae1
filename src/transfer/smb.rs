//! SMB transfers through Samba's `smbclient`.

use super::{SmbSettings, TransferError};
use crate::store::PendingFile;

/// An SMB share.
#[derive(Debug)]
pub struct SmbSource {
    settings: SmbSettings,
}

impl SmbSource {
    pub(super) async fn new(settings: SmbSettings) -> Result<SmbSource, TransferError> {
        Ok(SmbSource { settings })
    }

    pub(super) fn describe(&self) -> String {
        let settings = &self.settings;
        format!(
            "smb://{}:{}/{}",
            settings.host, settings.port, settings.share
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
            detail: "SMB transfers are not built yet".to_string(),
        }
    }
}
