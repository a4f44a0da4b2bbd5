//! Shared by the simulator's integration tests: a shipped scenario read from
//! `scenarios/`, and a scenario's run to its metrics as JSON.

use std::path::Path;
use tiercast_sim::{RunOptions, Scenario, Simulation};

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
