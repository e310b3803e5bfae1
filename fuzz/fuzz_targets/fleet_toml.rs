//! fleet.toml text of any shape: the loader returns a fleet or a diagnostic, and a panic
//! fails the target.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(error) = bakfleet::fleet::Fleet::parse(text, Path::new("/etc/bakfleet/fleet.toml")) {
        // Rendering the diagnostics runs the code that slices the text around a line.
        let _ = error.to_string();
    }
});
