//! Opens the backup devices a RESTORE names and reads the media set on them: one file,
//! or every family of a striped media set, checked to belong together.

use std::fs::File;
use std::io::{self, BufReader};

use bakfile::{BackupSet, ChecksumMode, VerifyError};

use super::messages::{self, Msg};
use super::paths::{self, Device};
use super::restore_messages;
use super::Instance;

/// A backup device as the server names it and where it lands on this machine.
#[derive(Debug, Clone)]
pub struct BackupDevice {
    /// Full server path, as messages name the device.
    pub name: String,
    pub device: Device,
}

/// The backup sets of a media set, read from its first family.
#[derive(Debug, Clone)]
pub struct MediaSet {
    pub devices: Vec<BackupDevice>,
    pub sets: Vec<BackupSet>,
}

impl MediaSet {
    /// Returns the set at `FILE = position` (1 by default), or error 4038.
    pub fn set_at(&self, position: Option<u32>) -> Result<&BackupSet, Msg> {
        let position = position.unwrap_or(1);
        self.sets
            .iter()
            .find(|set| u32::from(set.position) == position)
            .ok_or_else(|| messages::file_not_found_on_device(position, &self.devices[0].name))
    }
}

/// Resolves a device path as BACKUP and RESTORE do: a bare name lands in the default
/// backup directory, and only mapped paths exist.
pub fn resolve(instance: &Instance, server_path: &str) -> BackupDevice {
    let info = &instance.info;
    let default_directory = info.default_backup_directory();
    BackupDevice {
        name: paths::full_path(server_path, info.platform, &default_directory),
        device: paths::resolve(
            server_path,
            info.platform,
            &instance.config.path_maps,
            &default_directory,
        ),
    }
}

/// Opens a device for reading: a missing file is operating system error 2, a missing or
/// unmapped directory error 3, a directory error 5 (error 3201).
pub fn open(device: &BackupDevice) -> Result<File, Msg> {
    let name = &device.name;
    let path = match &device.device {
        Device::File(path) => path,
        Device::Null | Device::Unreachable => {
            return Err(messages::cannot_open_device(
                name,
                messages::OS_PATH_NOT_FOUND,
            ));
        }
    };
    if !path.parent().is_some_and(|parent| parent.is_dir()) {
        return Err(messages::cannot_open_device(
            name,
            messages::OS_PATH_NOT_FOUND,
        ));
    }
    if path.is_dir() {
        return Err(messages::cannot_open_device(
            name,
            messages::OS_ACCESS_DENIED,
        ));
    }
    File::open(path).map_err(|error| {
        let os_error = if error.kind() == io::ErrorKind::NotFound {
            messages::OS_FILE_NOT_FOUND
        } else {
            messages::OS_ACCESS_DENIED
        };
        messages::cannot_open_device(name, os_error)
    })
}

/// Maps each way a file fails to read or verify to the SQL Server error.
pub fn read_error(error: &VerifyError, device: &str) -> Msg {
    match error {
        VerifyError::NotABackup { .. } => messages::not_a_backup(device),
        VerifyError::MalformedMedia { .. } => messages::malformed_media(device),
        VerifyError::DamagedBackupSet { .. } => messages::damaged_backup(),
        VerifyError::NoChecksums => messages::no_checksums(),
        VerifyError::Truncated { .. } => messages::incomplete_backup(device),
        VerifyError::Io(error) if error.kind() == io::ErrorKind::UnexpectedEof => {
            messages::incomplete_backup(device)
        }
        VerifyError::Io(_) => messages::read_failed(device, messages::OS_HANDLE_EOF),
    }
}

/// Reads the headers of the backup sets on one device.
pub fn read_headers(device: &BackupDevice) -> Result<Vec<BackupSet>, Msg> {
    let file = open(device)?;
    bakfile::read_headers(BufReader::with_capacity(1 << 16, file))
        .map_err(|error| read_error(&error, &device.name))
}

/// Reads the media set on `paths` for a statement that needs every family (RESTORE
/// DATABASE, RESTORE LOG). With `verify`, every device is read whole first, so damage
/// fails the restore with the error RESTORE VERIFYONLY would raise.
///
/// # Errors
/// 3201 and the read errors of [`read_error`]; 3132 when fewer devices than families
/// are given, 3231 when more are, and 3258 when a device contains another media set.
pub fn read_media_set(
    instance: &Instance,
    paths: &[String],
    verify: Option<ChecksumMode>,
) -> Result<MediaSet, Msg> {
    let devices: Vec<BackupDevice> = paths.iter().map(|path| resolve(instance, path)).collect();
    let mut families = Vec::new();
    for device in &devices {
        if let Some(mode) = verify {
            let file = open(device)?;
            bakfile::verify(BufReader::with_capacity(1 << 20, file), mode)
                .map_err(|error| read_error(&error, &device.name))?;
        }
        families.push(read_headers(device)?);
    }
    check_families(&devices, &families)?;
    let sets = families.into_iter().next().unwrap_or_default();
    Ok(MediaSet { devices, sets })
}

/// Checks that the devices contain every family of one media set (Media Sets, Media
/// Families, and Backup Sets (SQL Server)).
fn check_families(devices: &[BackupDevice], families: &[Vec<BackupSet>]) -> Result<(), Msg> {
    let Some(first) = families.first().and_then(|sets| sets.first()) else {
        return Ok(());
    };
    let expected = usize::from(first.family_count.max(1));
    if devices.len() > expected {
        return Err(restore_messages::media_family_count(
            &devices[0].name,
            first.family_count,
            devices.len(),
        ));
    }
    for (device, sets) in devices.iter().zip(families).skip(1) {
        let same = sets
            .first()
            .is_some_and(|set| set.media_set_guid == first.media_set_guid);
        if !same {
            return Err(restore_messages::not_in_media_set(&device.name));
        }
    }
    if devices.len() < expected {
        return Err(restore_messages::missing_media_families(
            first.family_count,
            devices.len(),
        ));
    }
    Ok(())
}
