//! Damaged and crafted inputs must give an error or a result, never a panic.

mod common;

use std::io::Cursor;

use bakfile::{
    read_headers, verify, BackupSet, BackupWriter, ChecksumMode, VerifyError, WriteOptions,
};

/// Runs both entry points on `bytes`; a panic fails the test, any result is accepted.
fn exercise(bytes: &[u8]) -> (Result<(), VerifyError>, Result<Vec<BackupSet>, VerifyError>) {
    let verified = verify(bytes, ChecksumMode::IfPresent).map(|_| ());
    let headers = read_headers(Cursor::new(bytes));
    (verified, headers)
}

/// Lengths to cut a file to: the start byte by byte, every sector of the first 24 KiB,
/// and points near the end.
fn cut_points(len: usize) -> Vec<usize> {
    let mut points: Vec<usize> = (0..64).collect();
    points.extend((1..48).map(|sector| sector * 512));
    points.extend((1..48).map(|sector| sector * 512 + 22));
    let near_end = [4096, 1024, 512, 100, 1].map(|back| len.saturating_sub(back));
    points.extend(near_end);
    points.push(len / 2);
    points.retain(|&p| p < len);
    points
}

fn check_truncations(name: &str, file: &[u8]) {
    for cut in cut_points(file.len()) {
        let (verified, _) = exercise(&file[..cut]);
        assert!(verified.is_err(), "{name} cut to {cut} bytes verified");
    }
}

/// Bit masks that flip the lowest bit, the highest bit and the whole byte.
const ALL_MASKS: &[u8] = &[0x01, 0x80, 0xFF];

/// Flips bits at `positions`; header reading runs on every damaged copy, verification on
/// every `verify_every`-th one because it reads the whole file.
fn check_flips(
    name: &str,
    file: &[u8],
    positions: impl Iterator<Item = usize>,
    masks: &[u8],
    verify_every: usize,
) {
    let mut damaged = file.to_vec();
    for (count, position) in positions.enumerate() {
        for &mask in masks {
            damaged[position] ^= mask;
            let _ = read_headers(Cursor::new(&damaged));
            if count % verify_every == 0 {
                let _ = verify(&damaged[..], ChecksumMode::IfPresent);
            }
            damaged[position] ^= mask;
        }
    }
    assert_eq!(damaged, file, "{name}: copy restored");
}

fn written_file(compressed: bool) -> Vec<u8> {
    let set = common::sample_set(bakfile::BackupType::Database, true);
    let payload = vec![7u8; 3 * 8192];
    let options = WriteOptions {
        compressed,
        block_size: 512,
    };
    let mut writer = BackupWriter::new(Vec::new(), &set, payload.len() as u64, options).unwrap();
    writer.write_payload(&payload).unwrap();
    writer.finish(&set).unwrap()
}

#[test]
fn truncated_written_files_fail_cleanly() {
    check_truncations("plain", &written_file(false));
    check_truncations("compressed", &written_file(true));
}

/// Returns every byte position of the descriptor blocks before the data, then every 61st.
fn written_flip_positions(len: usize) -> impl Iterator<Item = usize> {
    (0..len.min(0x1400)).chain((0x1400..len).step_by(61))
}

#[test]
fn flipped_written_files_fail_cleanly() {
    let plain = written_file(false);
    check_flips(
        "plain",
        &plain,
        written_flip_positions(plain.len()),
        ALL_MASKS,
        1,
    );
    let compressed = written_file(true);
    check_flips(
        "compressed",
        &compressed,
        written_flip_positions(compressed.len()),
        ALL_MASKS,
        3,
    );
}

#[test]
fn truncated_real_files_fail_cleanly() {
    let Some(dir) = common::fixtures_dir() else {
        return;
    };
    for name in common::REAL_BACKUPS {
        let file = std::fs::read(dir.join(name)).unwrap();
        check_truncations(name, &file);
    }
}

#[test]
fn flipped_real_files_fail_cleanly() {
    let Some(dir) = common::fixtures_dir() else {
        return;
    };
    for name in common::REAL_BACKUPS {
        let file = std::fs::read(dir.join(name)).unwrap();
        let len = file.len();
        if name.ends_with("TutorialDB.bak") {
            // Every decode reads the whole container, so sample positions across it.
            check_flips(name, &file, (0..len).step_by(2003), &[0x01], 8);
            continue;
        }
        // The descriptor blocks before the data and the end-of-set blocks at the tail.
        let head = 0..len.min(0x4000);
        let tail = len.saturating_sub(0x4000).max(0x4000)..len;
        check_flips(name, &file, head.chain(tail).step_by(7), ALL_MASKS, 64);
    }
}

/// Rewrites a DBLK or stream header checksum after a field was changed on purpose.
fn fix_checksum(file: &mut [u8], start: usize, words: usize) {
    let checksum = file[start..start + 2 * words]
        .chunks_exact(2)
        .fold(0u16, |acc, w| acc ^ u16::from_le_bytes([w[0], w[1]]));
    file[start + 2 * words..start + 2 * words + 2].copy_from_slice(&checksum.to_le_bytes());
}

#[test]
fn crafted_lengths_fail_cleanly() {
    let file = written_file(false);
    // 512-byte layout: TAPE 0, SFMB 0x400, SSET 0x600, VOLB 0xA00, MSCI 0xE00; MQCI
    // stream header at MSCI+0x38.
    let cases: &[(&str, usize, usize, &[u8])] = &[
        ("SSET first event 0", 0x600, 8, &[0, 0]),
        ("SSET first event 65535", 0x600, 8, &[0xFF, 0xFF]),
        ("SSET first event 53", 0x600, 8, &[53, 0]),
        ("TAPE block size 0", 0, 64, &[0, 0]),
        ("TAPE block size 65535", 0, 64, &[0xFF, 0xFF]),
    ];
    for (case, block, offset, bytes) in cases {
        let mut crafted = file.clone();
        crafted[block + offset..block + offset + bytes.len()].copy_from_slice(bytes);
        fix_checksum(&mut crafted, *block, 25);
        let (verified, _) = exercise(&crafted);
        assert!(verified.is_err(), "{case} verified");
    }
    let stream = 0xE00 + 0x38;
    for length in [u64::MAX, 1 << 40, 17 << 20, 0, 10] {
        let mut crafted = file.clone();
        crafted[stream + 8..stream + 16].copy_from_slice(&length.to_le_bytes());
        fix_checksum(&mut crafted, stream, 10);
        let (verified, _) = exercise(&crafted);
        assert!(verified.is_err(), "MQCI length {length} verified");
    }
}
