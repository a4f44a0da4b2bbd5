//! Fuzz target (C3, X3): operator policy files (`crates/coordinator/src/policy/check.rs`),
//! checked with and without lists of known regions and channels; also the
//! network emulation file of the links (`crates/net/src/link/emulate.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tiercast_coordinator::policy::{check, Known};
use tiercast_net::link::NetEmulation;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = check(text, &Known::default());
    let known = Known {
        regions: Some(["eu", "us"].iter().map(|s| s.to_string()).collect()),
        channels: Some(["live"].iter().map(|s| s.to_string()).collect()),
    };
    if let Err(e) = check(text, &known) {
        assert!(
            e.line >= 1 && e.line <= text.lines().count().max(1) + 1,
            "line {} out of the file",
            e.line
        );
    }
    let _ = NetEmulation::parse(text);
});
