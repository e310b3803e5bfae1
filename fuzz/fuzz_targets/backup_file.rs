//! Bytes that claim to be a backup file. The header reader and the verifier return an
//! error for malformed input; a panic fails the target.
#![no_main]

use std::io::Cursor;

use bakfile::ChecksumMode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = bakfile::read_headers(Cursor::new(data));
    let _ = bakfile::verify(Cursor::new(data), ChecksumMode::IfPresent);
});
