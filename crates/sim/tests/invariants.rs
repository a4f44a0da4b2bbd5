//! The invariant checks catch planted bugs (X5): a node that sends faster than its
//! uplink, a block counted twice at a viewer, a viewer left out of the served /
//! joining / starving count. Each violation lands in metrics.json.

use tiercast_sim::{Plant, RunOptions, Scenario, Simulation};

const SCENARIO: &str = r#"
name = "plant"
seed = 3
duration_s = 8
data_plane = "blocks"

[stream]
rate_kbps = 1000
block_bytes = 4096

[[node_classes]]
name = "S"
role = "origin"
capacity = 8
uplink_kbps = { kind = "fixed", value = 20000 }

[[node_classes]]
name = "P"
role = "relay"
tier = 1
count = 4
capacity = 10
uplink_kbps = { kind = "fixed", value = 20000 }

[[arrivals]]
kind = "flash_crowd"
count = 20
start_s = 1
over_s = 2

[strategy]
parents_per_relay = 2
"#;

fn run(plant: Option<Plant>) -> tiercast_sim::Metrics {
    let dir = std::env::temp_dir().join(format!(
        "tiercast-plant-{}-{}",
        plant.as_ref().map_or("none".into(), |p| format!("{p:?}")
            .replace(['(', ')', '"'], "")),
        std::process::id()
    ));
    let mut sc = Scenario::from_toml(SCENARIO).unwrap();
    sc.output.plots = false;
    let mut sim = Simulation::new(
        sc,
        RunOptions {
            out_dir: Some(dir.clone()),
            ..RunOptions::default()
        },
    )
    .unwrap();
    if let Some(p) = plant {
        sim.plant(p).unwrap();
    }
    let m = sim.run().unwrap().metrics;
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(
        json["invariant_violation_count"].as_u64().unwrap(),
        m.invariant_violation_count,
        "metrics.json records the violations"
    );
    let _ = std::fs::remove_dir_all(&dir);
    m
}

fn kinds(m: &tiercast_sim::Metrics) -> Vec<String> {
    let mut k: Vec<String> = m
        .invariant_violations
        .iter()
        .map(|v| v.split(':').next().unwrap().to_string())
        .collect();
    k.dedup();
    k
}

#[test]
fn a_clean_run_has_no_violation() {
    let m = run(None);
    assert_eq!(
        m.invariant_violation_count, 0,
        "{:?}",
        m.invariant_violations
    );
    assert!(m.continuity_index > 0.99);
}

#[test]
fn an_origin_sending_faster_than_its_uplink_is_caught() {
    let m = run(Some(Plant::UplinkBypass("S".into())));
    assert!(m.invariant_violation_count > 0);
    assert_eq!(kinds(&m), vec!["uplink_overrun"]);
    assert!(
        m.invariant_violations[0].contains("n1"),
        "{:?}",
        m.invariant_violations
    );
}

#[test]
fn a_block_counted_twice_is_caught() {
    let m = run(Some(Plant::DoubleCount));
    assert_eq!(m.invariant_violation_count, 1);
    assert_eq!(kinds(&m), vec!["duplicate_block"]);
}

#[test]
fn a_viewer_left_out_of_the_path_census_is_caught() {
    let m = run(Some(Plant::SkipStarving));
    assert!(m.invariant_violation_count > 0);
    assert_eq!(kinds(&m), vec!["unclassified_viewer"]);
}

#[test]
fn planting_on_an_unknown_node_is_an_error() {
    let sc = Scenario::from_toml(SCENARIO).unwrap();
    let mut sim = Simulation::new(sc, RunOptions::default()).unwrap();
    assert!(sim.plant(Plant::UplinkBypass("nope".into())).is_err());
}
