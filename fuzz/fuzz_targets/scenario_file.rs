//! Fuzz target (X3): simulator scenario files, the main simulator's and the
//! locality simulator's (`crates/sim/src/scenario/`, `locality/scenario.rs`):
//! parsed and validated, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tiercast_sim::locality::LocalityScenario;
use tiercast_sim::Scenario;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Scenario::from_toml(text);
    let _ = LocalityScenario::from_toml(text);
});
