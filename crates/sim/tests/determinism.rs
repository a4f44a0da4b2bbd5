//! Same scenario, same seed, same bytes (X5): a run with every source of randomness
//! in play — jitter, loss, random capacities, churn with random sessions, a leave
//! wave, a random crash, a link cut and a partition — gives an identical
//! metrics.json (but for the wall-clock fields), events.log and timeline.csv.

use std::path::PathBuf;
use tiercast_sim::{RunOptions, Scenario, Simulation, WALL_CLOCK_FIELDS};

const SCENARIO: &str = r#"
name = "determinism"
seed = 42
duration_s = 40
data_plane = "blocks"
playout_deadline_ms = 3000

[stream]
rate_kbps = 800
block_bytes = 4096

[[regions]]
name = "a"
[[regions]]
name = "b"

[latency]
matrix_ms = [[4, 35], [35, 6]]
jitter_ms = 5

[network]
loss = 0.01
link_timeout_ms = 3000

[[node_classes]]
name = "S"
role = "origin"
region = "a"
capacity = 8
uplink_kbps = { kind = "fixed", value = 50000 }

[[node_classes]]
name = "A"
role = "relay"
tier = 1
count = 4
region_weights = { a = 1, b = 1 }
capacity = 10
uplink_kbps = { kind = "uniform", min = 20000, max = 60000 }

[[node_classes]]
name = "B"
role = "relay"
tier = 2
count = 10
region_weights = { a = 1, b = 2 }
capacity = 12
max_threshold = 11
min_threshold = 3
uplink_kbps = { kind = "normal", mean = 20000, sd = 5000, min = 9000 }

[[arrivals]]
kind = "churn"
population = 60
ramp_s = 5
session_s = { kind = "exponential", mean = 15, max = 60 }
region_weights = { a = 1, b = 1 }

[[arrivals]]
kind = "leave_wave"
fraction = 0.3
at_s = 25
over_s = 3

[[faults]]
kind = "crash"
tier = 2
count = 1
active = true
at_s = 15

[[faults]]
kind = "link_cut"
a = "A"
b = "B"
at_s = 18
until_s = 22

[[faults]]
kind = "partition"
regions = ["b"]
at_s = 30
until_s = 32

[strategy]
parents_per_relay = 2
"#;

fn run(seed: u64, tag: &str) -> (serde_json::Value, String, String) {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("tiercast-det-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut sc = Scenario::from_toml(SCENARIO).unwrap();
    sc.seed = seed;
    sc.output.plots = false;
    let mut sim = Simulation::new(
        sc,
        RunOptions {
            out_dir: Some(dir.clone()),
            ..RunOptions::default()
        },
    )
    .unwrap();
    let report = sim.run().unwrap();
    assert_eq!(report.metrics.invariant_violations, Vec::<String>::new());
    let mut metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("metrics.json")).unwrap()).unwrap();
    for k in WALL_CLOCK_FIELDS {
        assert!(metrics.as_object_mut().unwrap().remove(k).is_some(), "{k}");
    }
    let log = std::fs::read_to_string(dir.join("events.log")).unwrap();
    let timeline = std::fs::read_to_string(dir.join("timeline.csv")).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    (metrics, log, timeline)
}

#[test]
fn same_seed_same_outputs() {
    let a = run(42, "a");
    let b = run(42, "b");
    assert_eq!(a.0, b.0, "metrics.json differs");
    assert!(a.1 == b.1, "events.log differs");
    assert!(a.2 == b.2, "timeline.csv differs");
    // The run exercised what it claims to.
    let m = &a.0;
    assert!(
        m["viewers"].as_u64().unwrap() > 60,
        "churn replaced leavers"
    );
    assert!(m["retransmissions"].as_u64().unwrap() > 0, "loss happened");
    assert_eq!(m["relays_failed"], 1);
    assert!(m["dropped"]["partitioned"].as_u64().unwrap() > 0);
    assert!(m["dropped"]["link_cut"].as_u64().unwrap() > 0);
}

#[test]
fn another_seed_gives_another_run() {
    assert_ne!(run(42, "c").1, run(43, "d").1);
}
