//! Backup history in msdb: backupset, backupmediaset and backupmediafamily rows that
//! every successful BACKUP inserts.

use bakfile::{BackupType, Lsn, RecoveryModel as FileRecoveryModel};
use time::PrimitiveDateTime;
use uuid::Uuid;

use super::catalog::DatabaseFile;

/// One msdb.dbo.backupset row.
#[derive(Debug, Clone)]
pub struct BackupSetRecord {
    pub backup_set_id: i32,
    pub backup_set_uuid: Uuid,
    pub media_set_id: i32,
    pub position: i32,
    pub name: Option<String>,
    pub description: Option<String>,
    pub user_name: String,
    pub software_major: u8,
    pub software_minor: u8,
    pub software_build: u16,
    /// Offset from UTC in 15-minute units.
    pub time_zone: i16,
    pub first_lsn: Lsn,
    pub last_lsn: Lsn,
    pub checkpoint_lsn: Lsn,
    pub database_backup_lsn: Lsn,
    pub database_creation_date: PrimitiveDateTime,
    pub backup_start_date: PrimitiveDateTime,
    pub backup_finish_date: PrimitiveDateTime,
    pub backup_type: BackupType,
    pub compatibility_level: u8,
    pub database_version: i32,
    pub backup_size: u64,
    pub compressed_backup_size: u64,
    pub database_name: String,
    pub server_name: String,
    pub machine_name: String,
    pub recovery_model: FileRecoveryModel,
    pub has_backup_checksums: bool,
    pub is_copy_only: bool,
    pub begins_log_chain: bool,
    pub is_readonly: bool,
    pub database_guid: Uuid,
    pub family_guid: Uuid,
    pub recovery_fork_guid: Uuid,
    pub differential_base_lsn: Option<Lsn>,
    pub differential_base_guid: Option<Uuid>,
    pub encryption: Option<BackupEncryptionRecord>,
}

/// How a backup set was encrypted (backupset key_algorithm, encryptor_thumbprint,
/// encryptor_type).
#[derive(Debug, Clone)]
pub struct BackupEncryptionRecord {
    /// e.g. `aes_256`, as msdb stores it.
    pub algorithm: String,
    /// SHA-1 thumbprint of the certificate or asymmetric key.
    pub thumbprint: [u8; 20],
    /// `CERTIFICATE` or `ASYMMETRIC KEY`.
    pub encryptor_type: &'static str,
}

/// One msdb.dbo.backupmediaset row.
#[derive(Debug, Clone)]
pub struct MediaSetRecord {
    pub media_set_id: i32,
    pub media_uuid: Uuid,
    pub family_count: u8,
    pub is_compressed: bool,
    pub is_encrypted: bool,
}

/// One msdb.dbo.backupmediafamily row.
#[derive(Debug, Clone)]
pub struct MediaFamilyRecord {
    pub media_set_id: i32,
    pub family_sequence_number: u8,
    pub media_family_id: Uuid,
    pub physical_device_name: String,
    pub physical_block_size: i32,
}

/// One msdb.dbo.backupfile row: a data or log file of the database as it was when the
/// backup was taken.
#[derive(Debug, Clone)]
pub struct BackupFileRecord {
    pub backup_set_id: i32,
    pub file: DatabaseFile,
    /// Pages of this file the backup carries.
    pub backed_up_pages: u64,
    /// The file's contents are in the backup set (`is_present`).
    pub is_present: bool,
    pub differential_base_lsn: Option<Lsn>,
    pub differential_base_guid: Option<Uuid>,
}

/// All history of one instance.
#[derive(Debug, Clone, Default)]
pub struct History {
    pub sets: Vec<BackupSetRecord>,
    pub media_sets: Vec<MediaSetRecord>,
    pub families: Vec<MediaFamilyRecord>,
    pub files: Vec<BackupFileRecord>,
}

impl History {
    pub fn next_media_set_id(&self) -> i32 {
        self.media_sets
            .iter()
            .map(|media| media.media_set_id)
            .max()
            .unwrap_or(0)
            + 1
    }

    pub fn next_backup_set_id(&self) -> i32 {
        self.sets
            .iter()
            .map(|set| set.backup_set_id)
            .max()
            .unwrap_or(0)
            + 1
    }
}

/// msdb `backupset.type` letter.
pub fn type_letter(backup_type: BackupType) -> &'static str {
    match backup_type {
        BackupType::Database => "D",
        BackupType::Differential => "I",
        BackupType::Log => "L",
        BackupType::File => "F",
        BackupType::FileDifferential => "G",
        BackupType::Partial => "P",
        BackupType::PartialDifferential => "Q",
    }
}

/// msdb `backupset.recovery_model` text, which spells BULK-LOGGED with a hyphen.
pub fn recovery_text(model: FileRecoveryModel) -> &'static str {
    match model {
        FileRecoveryModel::Full => "FULL",
        FileRecoveryModel::BulkLogged => "BULK-LOGGED",
        FileRecoveryModel::Simple => "SIMPLE",
    }
}
