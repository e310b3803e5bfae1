//! Files written by `BackupWriter` verify and read back with the values written.

mod common;

use std::io::Cursor;

use bakfile::{
    read_headers, verify, BackupSet, BackupType, BackupWriter, ChecksumMode, RecoveryModel,
    VerifyError, WriteOptions,
};

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
                    let set = common::sample_set(backup_type, has_checksums);
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
    let set = common::sample_set(BackupType::Database, true);
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
    let set = common::sample_set(BackupType::Log, false);
    let file = write_file(
        &set,
        &sample_payload(2),
        WriteOptions {
            compressed: false,
            block_size: 4096,
        },
    );
    for dblk in [0usize, 0x1000, 0x2000, 0x2400, 0x2800] {
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
    let set = common::sample_set(BackupType::Database, false);
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
    let set = common::sample_set(BackupType::Database, true);
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

/// Offsets and types of the descriptor blocks of a plain file, found by following each
/// block's stream chain to its SPAD (an SFMB fills one physical block).
fn block_offsets(file: &[u8], block_size: usize) -> Vec<(usize, String)> {
    let u16_at = |at: usize| usize::from(u16::from_le_bytes([file[at], file[at + 1]]));
    let u64_at = |at: usize| u64::from_le_bytes(file[at..at + 8].try_into().unwrap()) as usize;
    let mut blocks = Vec::new();
    let mut offset = 0;
    while offset < file.len() {
        let kind = String::from_utf8_lossy(&file[offset..offset + 4]).into_owned();
        blocks.push((offset, kind.clone()));
        if kind == "SFMB" {
            offset += block_size;
            continue;
        }
        let mut stream = offset + u16_at(offset + 8);
        loop {
            let end = stream + 22 + u64_at(stream + 8);
            if &file[stream..stream + 4] == b"SPAD" {
                offset = end;
                break;
            }
            stream = end.next_multiple_of(4);
        }
    }
    blocks
}

#[test]
fn writer_places_blocks_like_sql_server() {
    let set = common::sample_set(BackupType::Database, true);
    // Offsets of TAPE, SFMB, SSET, VOLB and MSCI in SQL Server's files of each layout.
    let layouts = [
        (512usize, [0usize, 0x400, 0x600, 0xA00, 0xE00], 1024usize),
        (4096, [0, 0x1000, 0x2000, 0x2400, 0x2800], 2048),
    ];
    for (block_size, leading, first_page) in layouts {
        let options = WriteOptions {
            compressed: false,
            block_size: block_size as u32,
        };
        let payload = sample_payload(3);
        let file = write_file(&set, &payload, options);
        let blocks = block_offsets(&file, block_size);
        let kinds: Vec<&str> = blocks.iter().map(|(_, kind)| kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "TAPE", "SFMB", "SSET", "VOLB", "MSCI", "MSDA", "MSTL", "MSLS", "SFMB", "ESET",
                "SFMB"
            ],
            "block size {block_size}"
        );
        let offsets: Vec<usize> = blocks.iter().take(5).map(|(offset, _)| *offset).collect();
        assert_eq!(offsets, leading, "block size {block_size}");
        let msda = blocks[5].0;
        assert_eq!(
            &file[msda + first_page..msda + first_page + 8192],
            &payload[..8192],
            "block size {block_size}"
        );
        let sset = blocks[2].0;
        for (offset, kind) in &blocks[2..8] {
            let address = u64::from_le_bytes(file[offset + 20..offset + 28].try_into().unwrap());
            assert_eq!(
                address as usize,
                (offset - sset) / 1024,
                "{kind} at {offset:#x}"
            );
        }
        for (offset, kind) in &blocks[8..] {
            assert_eq!(offset % block_size, 0, "{kind} at {offset:#x}");
        }
        assert_eq!(file.len() % block_size, 0, "block size {block_size}");
    }
}

/// Returns `set` as the leading header copy would have it before the backup ends: no
/// finish date and a guessed size.
fn provisional_values(set: &BackupSet) -> BackupSet {
    BackupSet {
        backup_finish_date: None,
        backup_size: 1,
        ..set.clone()
    }
}

/// Writes a set whose leading header copy contains `leading` and whose trailing copy
/// contains `final_set`.
fn write_with_final_values(
    leading: &BackupSet,
    final_set: &BackupSet,
    options: WriteOptions,
) -> Vec<u8> {
    let payload = sample_payload(6);
    let mut writer = BackupWriter::new(Vec::new(), leading, payload.len() as u64, options).unwrap();
    writer.write_payload(&payload).unwrap();
    writer.finish(final_set).unwrap()
}

#[test]
fn read_headers_prefers_trailing_copy() {
    let final_set = common::sample_set(BackupType::Log, true);
    let leading = provisional_values(&final_set);
    for compressed in [false, true] {
        let options = WriteOptions {
            compressed,
            block_size: 512,
        };
        let file = write_with_final_values(&leading, &final_set, options);
        let headers = read_headers(Cursor::new(&file)).unwrap();
        assert_eq!(
            headers,
            vec![expected(&final_set, options)],
            "compressed={compressed}"
        );
    }
}

#[test]
fn read_headers_falls_back_to_leading_copy() {
    let final_set = common::sample_set(BackupType::Database, false);
    let leading = provisional_values(&final_set);
    for compressed in [false, true] {
        let options = WriteOptions {
            compressed,
            block_size: 4096,
        };
        let file = write_with_final_values(&leading, &final_set, options);
        // Cut inside the data, well before the trailing copy: for a compressed file, after
        // the first record, which holds the blocks up to the start of the data.
        let cut_at = if compressed {
            let tag = u32::from_le_bytes(file[0x1E0..0x1E4].try_into().unwrap());
            0x1E0 + 28 + (tag >> 16) as usize
        } else {
            file.len() / 2
        };
        let cut = &file[..cut_at];
        let headers = read_headers(Cursor::new(cut)).unwrap();
        let want = BackupSet {
            provisional: true,
            ..expected(&leading, options)
        };
        assert_eq!(headers, vec![want], "compressed={compressed}");
        let verified = verify(cut, ChecksumMode::IfPresent);
        assert!(
            matches!(verified, Err(VerifyError::Truncated { .. })),
            "{verified:?}"
        );
    }
}

#[test]
fn writer_round_trips_set_options() {
    let cases = [
        (RecoveryModel::Simple, true),
        (RecoveryModel::BulkLogged, false),
        (RecoveryModel::Full, true),
    ];
    for (recovery_model, is_copy_only) in cases {
        let set = BackupSet {
            recovery_model,
            is_copy_only,
            time_zone: -32,
            position: 3,
            backup_name: String::new(),
            ..common::sample_set(BackupType::Database, false)
        };
        let options = WriteOptions {
            compressed: false,
            block_size: 512,
        };
        let file = write_file(&set, &sample_payload(1), options);
        let headers = read_headers(Cursor::new(&file)).unwrap();
        assert_eq!(
            headers,
            vec![set],
            "{recovery_model:?} copy_only={is_copy_only}"
        );
    }
}

#[test]
fn read_headers_reads_appended_sets() {
    let first = common::sample_set(BackupType::Database, true);
    let second = BackupSet {
        position: 2,
        backup_set_guid: uuid::Uuid::from_u128(42),
        ..common::sample_set(BackupType::Log, true)
    };
    let options = WriteOptions {
        compressed: false,
        block_size: 512,
    };
    let mut file = write_file(&first, &sample_payload(2), options);
    let appended = write_file(&second, &sample_payload(1), options);
    // A set appended WITH NOINIT follows the previous one without a second TAPE block.
    file.extend_from_slice(&appended[0x400..]);
    let headers = read_headers(Cursor::new(&file)).unwrap();
    assert_eq!(headers, vec![first.clone(), second.clone()]);
    let report = verify(&file[..], ChecksumMode::Require).unwrap();
    assert_eq!(report.sets, vec![first, second]);
}

#[test]
fn writer_rejects_wrong_payload_length() {
    let set = common::sample_set(BackupType::Database, true);
    let options = WriteOptions {
        compressed: false,
        block_size: 512,
    };
    let mut writer = BackupWriter::new(Vec::new(), &set, 100, options).unwrap();
    let too_long = writer.write_payload(&[0u8; 101]).unwrap_err();
    assert_eq!(too_long.kind(), std::io::ErrorKind::InvalidInput);
    writer.write_payload(&[0u8; 99]).unwrap();
    let too_short = writer.finish(&set).unwrap_err();
    assert_eq!(too_short.kind(), std::io::ErrorKind::InvalidInput);
    let bad_block = BackupWriter::new(
        Vec::new(),
        &set,
        0,
        WriteOptions {
            compressed: false,
            block_size: 1024,
        },
    );
    assert!(bad_block.is_err());
}

#[test]
fn read_headers_reads_stripe_layout() {
    for (family_count, family_sequence) in [(2, 1), (2, 2), (4, 3)] {
        let set = BackupSet {
            family_count,
            family_sequence,
            ..common::sample_set(BackupType::Database, false)
        };
        let options = WriteOptions {
            compressed: false,
            block_size: 4096,
        };
        let file = write_file(&set, &sample_payload(2), options);
        let headers = read_headers(Cursor::new(&file)).unwrap();
        assert_eq!(headers.len(), 1);
        assert_eq!(headers[0].family_count, family_count);
        assert_eq!(headers[0].family_sequence, family_sequence);
        assert_eq!(headers[0], set);
    }
}
