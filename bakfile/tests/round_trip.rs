//! Files written by `BackupWriter` verify and read back with the values written.

use std::io::Cursor;

use bakfile::{
    read_headers, verify, BackupSet, BackupType, BackupWriter, ChecksumMode, Lsn, RecoveryModel,
    VerifyError, WriteOptions,
};
use time::macros::datetime;
use uuid::Uuid;

fn sample_set(backup_type: BackupType, has_checksums: bool) -> BackupSet {
    let differential = backup_type == BackupType::Differential;
    BackupSet {
        backup_type,
        position: 1,
        database_name: "Sales".into(),
        server_name: "SQLHOST\\PROD".into(),
        machine_name: "SQLHOST".into(),
        user_name: "CORP\\svc_backup".into(),
        backup_name: "Sales-Full Database Backup".into(),
        backup_description: "written by the round-trip test".into(),
        software_major: 16,
        software_minor: 0,
        software_build: 4135,
        database_version: 957,
        compatibility_level: 160,
        first_lsn: Lsn {
            vlf: 41,
            block: 1200,
            slot: 37,
        },
        last_lsn: Lsn {
            vlf: 41,
            block: 1800,
            slot: 1,
        },
        checkpoint_lsn: Lsn {
            vlf: 41,
            block: 1200,
            slot: 37,
        },
        database_backup_lsn: Lsn {
            vlf: 40,
            block: 300,
            slot: 37,
        },
        database_creation_date: datetime!(2023-01-05 09:30:00),
        backup_start_date: datetime!(2024-06-01 02:00:00),
        backup_finish_date: Some(datetime!(2024-06-01 02:00:07)),
        time_zone: 8,
        backup_size: 123_456,
        has_checksums,
        is_copy_only: false,
        compressed: false,
        backup_set_guid: Uuid::from_u128(0x1b0e9401_d8eb_40e3_a8d4_57594c8795cd),
        differential_base_guid: differential
            .then(|| Uuid::from_u128(0x41a43d77_6a7a_4403_983f_5ab7e68a087b)),
        family_guid: Uuid::from_u128(0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10),
        binding_id: Uuid::from_u128(0x1112_1314_1516_1718_191a_1b1c_1d1e_1f20),
        recovery_fork_id: Uuid::from_u128(0x2122_2324_2526_2728_292a_2b2c_2d2e_2f30),
        recovery_model: RecoveryModel::Full,
        media_set_guid: Uuid::from_u128(0x3132_3334_3536_3738_393a_3b3c_3d3e_3f40),
        family_count: 1,
        family_sequence: 1,
        provisional: false,
    }
}

/// Pages that look like a database's: mostly zeros with a header and a few rows.
fn sample_payload(pages: usize) -> Vec<u8> {
    let mut payload = vec![0u8; pages * 8192];
    for (index, page) in payload.chunks_mut(8192).enumerate() {
        page[0] = 1;
        page[1] = 1;
        page[4..8].copy_from_slice(&(index as u32).to_le_bytes());
        for (i, byte) in page[96..600].iter_mut().enumerate() {
            *byte = (i * 31 + index) as u8;
        }
    }
    payload
}

fn write_file(set: &BackupSet, payload: &[u8], options: WriteOptions) -> Vec<u8> {
    let mut writer = BackupWriter::new(Vec::new(), set, payload.len() as u64, options).unwrap();
    for chunk in payload.chunks(5000) {
        writer.write_payload(chunk).unwrap();
    }
    writer.finish(set).unwrap()
}

fn expected(set: &BackupSet, options: WriteOptions) -> BackupSet {
    BackupSet {
        compressed: options.compressed,
        ..set.clone()
    }
}

#[test]
fn writer_round_trips_every_layout() {
    for backup_type in [
        BackupType::Database,
        BackupType::Differential,
        BackupType::Log,
    ] {
        for has_checksums in [false, true] {
            for compressed in [false, true] {
                for block_size in [512, 4096] {
                    let set = sample_set(backup_type, has_checksums);
                    let options = WriteOptions {
                        compressed,
                        block_size,
                    };
                    let case = format!("{backup_type:?} checksums={has_checksums} {options:?}");
                    let file = write_file(&set, &sample_payload(20), options);

                    let report = verify(&file[..], ChecksumMode::IfPresent)
                        .unwrap_or_else(|e| panic!("{case}: {e}"));
                    assert_eq!(report.sets, vec![expected(&set, options)], "{case}");
                    assert_eq!(report.checksums_checked, has_checksums, "{case}");

                    let headers =
                        read_headers(Cursor::new(&file)).unwrap_or_else(|e| panic!("{case}: {e}"));
                    assert_eq!(headers, vec![expected(&set, options)], "{case}");
                }
            }
        }
    }
}

#[test]
fn verify_rejects_flipped_payload_byte() {
    let set = sample_set(BackupType::Database, true);
    let payload = sample_payload(4);
    let options = WriteOptions {
        compressed: false,
        block_size: 512,
    };
    let file = write_file(&set, &payload, options);
    let position = file
        .windows(8)
        .position(|w| w == &payload[96..104])
        .unwrap()
        + 3;
    let mut damaged = file.clone();
    damaged[position] ^= 0x20;
    let result = verify(&damaged[..], ChecksumMode::IfPresent);
    assert!(
        matches!(result, Err(VerifyError::DamagedBackupSet { .. })),
        "{result:?}"
    );
    let skipped = verify(&damaged[..], ChecksumMode::Skip);
    assert!(skipped.is_ok(), "{skipped:?}");
}

#[test]
fn verify_rejects_flipped_header_byte() {
    let set = sample_set(BackupType::Log, false);
    let file = write_file(
        &set,
        &sample_payload(2),
        WriteOptions {
            compressed: false,
            block_size: 4096,
        },
    );
    for dblk in [0usize, 0x1000, 0x2000, 0x3000] {
        let mut damaged = file.clone();
        damaged[dblk + 20] ^= 0x01;
        let result = verify(&damaged[..], ChecksumMode::IfPresent);
        assert!(
            matches!(result, Err(VerifyError::MalformedMedia { .. })),
            "DBLK at {dblk:#x}: {result:?}"
        );
    }
}

#[test]
fn verify_require_rejects_no_checksums() {
    let set = sample_set(BackupType::Database, false);
    let file = write_file(
        &set,
        &sample_payload(1),
        WriteOptions {
            compressed: false,
            block_size: 512,
        },
    );
    let result = verify(&file[..], ChecksumMode::Require);
    assert!(
        matches!(result, Err(VerifyError::NoChecksums)),
        "{result:?}"
    );
}

#[test]
fn verify_reports_truncated_file() {
    let set = sample_set(BackupType::Database, true);
    let file = write_file(
        &set,
        &sample_payload(8),
        WriteOptions {
            compressed: false,
            block_size: 512,
        },
    );
    let result = verify(&file[..file.len() - 1024], ChecksumMode::IfPresent);
    assert!(
        matches!(result, Err(VerifyError::Truncated { .. })),
        "{result:?}"
    );
}
