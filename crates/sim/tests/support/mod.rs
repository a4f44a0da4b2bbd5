//! Shared by the simulator's integration tests: a shipped scenario read from
//! `scenarios/` (as text, or edited and parsed), and a scenario's run to its
//! metrics (as they are, or as JSON). Each test binary uses some of them.
#![allow(dead_code)]

use std::path::Path;
use tiercast_sim::{Metrics, RunOptions, Scenario, Simulation};

/// The text of `scenarios/<dir>/<file>`.
pub fn scenario_text(dir: &str, file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scenarios")
        .join(dir)
        .join(file);
    std::fs::read_to_string(&path).expect("scenario file")
}

/// Runs `text` with the default options; its metrics as JSON.
pub fn metrics_json(text: &str) -> serde_json::Value {
    let sc = Scenario::from_toml(text).expect("valid scenario");
    let m = Simulation::new(sc, RunOptions::default())
        .expect("simulation")
        .run()
        .expect("run")
        .metrics;
    serde_json::to_value(&m).expect("json")
}

/// `scenarios/<path>` with `edit` applied to its text, parsed.
pub fn edited(path: &str, edit: impl Fn(String) -> String) -> Scenario {
    let full = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scenarios")
        .join(path);
    let text = std::fs::read_to_string(&full).expect("scenario file");
    Scenario::from_toml(&edit(text)).expect("valid scenario")
}

/// Runs `sc` with the default options; its metrics.
pub fn run(sc: Scenario) -> Metrics {
    Simulation::new(sc, RunOptions::default())
        .expect("simulation")
        .run()
        .expect("run")
        .metrics
}
