//! Property test: random and mutated inputs never make the reader or the verifier panic.
//!
//! Mutations repair the XOR checksums of descriptor block and stream headers afterwards,
//! so damaged lengths, offsets and SCIN fields reach the parsers behind those checks.

mod common;

use std::io::Cursor;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use bakfile::{read_headers, verify, BackupType, BackupWriter, ChecksumMode, WriteOptions};

/// Cases per input family; the whole test stays within [`TIME_LIMIT`].
const CASES: u64 = 1500;
/// Upper bound on the test's run time; cases stop early when it is reached.
const TIME_LIMIT: Duration = Duration::from_secs(60);

const DBLK_TAGS: [&[u8; 4]; 9] = [
    b"TAPE", b"SSET", b"VOLB", b"MSCI", b"MSDA", b"MSTL", b"MSLS", b"ESET", b"SFMB",
];
const STREAM_TAGS: [&[u8; 4]; 7] = [
    b"MQCI", b"SPAD", b"RAID", b"MQDA", b"MQTL", b"CSUM", b"APAD",
];

/// Xorshift64 generator: deterministic per seed, so a failing case can be replayed.
struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound.max(1) as u64) as usize
    }
}

fn xor_words(bytes: &[u8]) -> u16 {
    bytes
        .chunks_exact(2)
        .fold(0, |acc, w| acc ^ u16::from_le_bytes([w[0], w[1]]))
}

/// Recomputes the checksum of every 52-byte block header and 22-byte stream header whose
/// tag appears at an even offset.
fn repair_checksums(bytes: &mut [u8]) {
    let mut offset = 0;
    while offset + 52 <= bytes.len() {
        let tag = &bytes[offset..offset + 4];
        if DBLK_TAGS.iter().any(|t| &t[..] == tag) {
            let sum = xor_words(&bytes[offset..offset + 50]);
            bytes[offset + 50..offset + 52].copy_from_slice(&sum.to_le_bytes());
        } else if STREAM_TAGS.iter().any(|t| &t[..] == tag) {
            let sum = xor_words(&bytes[offset..offset + 20]);
            bytes[offset + 20..offset + 22].copy_from_slice(&sum.to_le_bytes());
        }
        offset += 2;
    }
}

/// Offsets of stream headers, for mutations that target their length fields.
fn stream_offsets(bytes: &[u8]) -> Vec<usize> {
    (0..bytes.len().saturating_sub(22))
        .step_by(2)
        .filter(|&o| STREAM_TAGS.iter().any(|t| t[..] == bytes[o..o + 4]))
        .collect()
}

fn mutate(base: &[u8], rng: &mut Xorshift) -> Vec<u8> {
    let mut bytes = base.to_vec();
    match rng.below(5) {
        0 => {
            for _ in 0..=rng.below(8) {
                let at = rng.below(bytes.len());
                bytes[at] ^= 1 << rng.below(8);
            }
        }
        1 => bytes.truncate(rng.below(bytes.len())),
        2 => {
            let streams = stream_offsets(&bytes);
            if let Some(&at) = streams.get(rng.below(streams.len())) {
                let length = match rng.below(3) {
                    0 => rng.next(),
                    1 => rng.next() % 4096,
                    _ => u64::MAX - rng.next() % 16,
                };
                bytes[at + 8..at + 16].copy_from_slice(&length.to_le_bytes());
            }
        }
        3 => {
            let at = rng.below(bytes.len());
            let run = rng.below(64).min(bytes.len() - at);
            for byte in &mut bytes[at..at + run] {
                *byte = rng.next() as u8;
            }
        }
        _ => {
            // Damage around the SCIN record, where SQL Server's own fields are parsed.
            if let Some(scin) = bytes.windows(4).position(|w| w == b"SCIN") {
                for _ in 0..=rng.below(6) {
                    let at = (scin + rng.below(0x200)).min(bytes.len() - 1);
                    bytes[at] = rng.next() as u8;
                }
            }
        }
    }
    if rng.below(4) != 0 {
        repair_checksums(&mut bytes);
    }
    bytes
}

fn random_input(rng: &mut Xorshift) -> Vec<u8> {
    let len = rng.below(8192);
    let mut bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
    let prefix: &[u8] = match rng.below(3) {
        0 => b"TAPE",
        1 => b"MSSQLBAK",
        _ => b"",
    };
    let cut = prefix.len().min(bytes.len());
    bytes[..cut].copy_from_slice(&prefix[..cut]);
    bytes
}

fn sample_file(backup_type: BackupType, compressed: bool, block_size: u32) -> Vec<u8> {
    let set = common::sample_set(backup_type, true);
    let payload: Vec<u8> = (0..3 * 8192).map(|i| (i * 7 % 251) as u8).collect();
    let options = WriteOptions {
        compressed,
        block_size,
    };
    let mut writer = BackupWriter::new(Vec::new(), &set, payload.len() as u64, options).unwrap();
    writer.write_payload(&payload).unwrap();
    writer.finish(&set).unwrap()
}

/// Runs both entry points and fails with the case's seed when either panics.
fn exercise(bytes: &[u8], family: &str, seed: u64) {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let _ = read_headers(Cursor::new(bytes));
        let _ = verify(bytes, ChecksumMode::IfPresent);
    }));
    assert!(
        outcome.is_ok(),
        "{family} case with seed {seed:#x} ({} bytes) panicked",
        bytes.len()
    );
}

#[test]
fn fuzz_inputs_never_panic() {
    let started = Instant::now();
    let bases = [
        ("plain 512", sample_file(BackupType::Database, false, 512)),
        (
            "plain 4096",
            sample_file(BackupType::Differential, false, 4096),
        ),
        ("compressed", sample_file(BackupType::Log, true, 512)),
    ];
    let mut cases = 0u64;
    for seed in 1..=CASES {
        if started.elapsed() > TIME_LIMIT {
            break;
        }
        let mut rng = Xorshift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        exercise(&random_input(&mut rng), "random", seed);
        for (family, base) in &bases {
            exercise(&mutate(base, &mut rng), family, seed);
        }
        cases += 4;
    }
    assert!(
        cases >= 1000,
        "only {cases} cases ran within {TIME_LIMIT:?}"
    );
}

#[test]
fn fuzz_real_backups_never_panic() {
    let Some(dir) = common::fixtures_dir() else {
        return;
    };
    let started = Instant::now();
    for name in [
        "SQL2008_dbOrphanUsers_LOG_20170518_041837.trn",
        "RestoreTimeClean2_1.trn",
    ] {
        let base = std::fs::read(dir.join(name)).unwrap();
        for seed in 1..=300u64 {
            if started.elapsed() > TIME_LIMIT {
                return;
            }
            let mut rng = Xorshift(seed.wrapping_mul(0xD134_2543_DE82_EF95) | 1);
            exercise(&mutate(&base, &mut rng), name, seed);
        }
    }
}
