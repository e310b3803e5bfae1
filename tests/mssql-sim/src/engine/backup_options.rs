//! Checks of the BACKUP transfer options (BUFFERCOUNT, MAXTRANSFERSIZE, BLOCKSIZE) and
//! of WITH ENCRYPTION against the instance's certificates and asymmetric keys
//! (BACKUP (Transact-SQL)). NOTE: an encrypted backup is recorded as such in msdb but its
//! file is written unencrypted.

use sha2::{Digest, Sha256};

use super::history::BackupEncryptionRecord;
use super::messages::Msg;
use super::restore_messages as msg;
use super::sql::ast::{BackupEncryption, BackupOptions, Encryptor};
use crate::config::InstanceConfig;

/// MAXTRANSFERSIZE is a multiple of 64 KiB from 64 KiB to 4 MiB.
const TRANSFER_UNIT: u64 = 65_536;
const MAX_TRANSFER_SIZE: u64 = 4_194_304;
/// BLOCKSIZE is a power of 2 from 512 bytes to 64 KiB.
const BLOCK_SIZES: std::ops::RangeInclusive<u64> = 512..=65_536;
/// Algorithms ENCRYPTION (ALGORITHM = ...) accepts.
const ALGORITHMS: &[&str] = &["AES_128", "AES_192", "AES_256", "TRIPLE_DES_3KEY"];

/// Checks the option values and resolves the encryptor.
///
/// # Errors
/// 3250 for a value out of range, 3253 for a block size that is no power of 2, 3217 for
/// an unknown algorithm and 15151 for an encryptor the instance does not have.
pub fn check(
    config: &InstanceConfig,
    options: &BackupOptions,
) -> Result<Option<BackupEncryptionRecord>, Msg> {
    if let Some(size) = options.max_transfer_size {
        // NOTE: a size in range that is no multiple of 64 KiB also gets 3250, because no
        // doc page found names the error SQL Server raises for it.
        if !(TRANSFER_UNIT..=MAX_TRANSFER_SIZE).contains(&size) || size % TRANSFER_UNIT != 0 {
            return Err(msg::option_out_of_range(size, "MAXTRANSFERSIZE"));
        }
    }
    if options.buffer_count == Some(0) {
        return Err(msg::option_out_of_range(0, "BUFFERCOUNT"));
    }
    if let Some(size) = options.block_size {
        if !size.is_power_of_two() {
            return Err(msg::block_size_not_power_of_two());
        }
        if !BLOCK_SIZES.contains(&size) {
            return Err(msg::option_out_of_range(size, "BLOCKSIZE"));
        }
    }
    options
        .encryption
        .as_ref()
        .map(|encryption| encryptor(config, encryption))
        .transpose()
}

fn encryptor(
    config: &InstanceConfig,
    encryption: &BackupEncryption,
) -> Result<BackupEncryptionRecord, Msg> {
    if !ALGORITHMS.contains(&encryption.algorithm.as_str()) {
        // NOTE: 3217 for an unknown algorithm is a guess from its text.
        return Err(Msg {
            number: 3217,
            state: 1,
            class: 16,
            text: "Invalid value specified for ALGORITHM parameter.".into(),
        });
    }
    let (name, kind, known, encryptor_type) = match &encryption.encryptor {
        Encryptor::Certificate(name) => (name, "certificate", &config.certificates, "CERTIFICATE"),
        Encryptor::AsymmetricKey(name) => (
            name,
            "asymmetric key",
            &config.asymmetric_keys,
            "ASYMMETRIC KEY",
        ),
    };
    if !known.iter().any(|known| known.eq_ignore_ascii_case(name)) {
        return Err(msg::encryptor_not_found(kind, name));
    }
    Ok(BackupEncryptionRecord {
        algorithm: encryption.algorithm.to_ascii_lowercase(),
        thumbprint: thumbprint(&config.name, name),
        encryptor_type,
    })
}

/// Derives a stable 20-byte stand-in for the encryptor's SHA-1 thumbprint from the
/// instance and encryptor names, because the simulator has no certificate.
fn thumbprint(instance: &str, encryptor: &str) -> [u8; 20] {
    let digest = Sha256::digest(format!("{instance}\0{encryptor}").as_bytes());
    let mut thumbprint = [0u8; 20];
    thumbprint.copy_from_slice(&digest[..20]);
    thumbprint
}
