//! Honest metrics (X5, X6; issue 10 must-show 4, simulator side): every shipped
//! scenario, shrunk to CI size, reports an efficiency of at most 1 and an origin
//! upload within its uplink in every second of the timeline; a gap planted across a
//! relay switch is counted as missed blocks.

use std::path::Path;
use tiercast_sim::report::Metrics;
use tiercast_sim::{Plant, RunOptions, Scenario, Simulation};

/// Viewers (or peers) per arrival process at CI size.
const CI_VIEWERS: i64 = 600;

/// A shipped scenario with every arrival process capped at `CI_VIEWERS` (the rest —
/// relays, uplink mixes, faults, durations — as shipped).
fn shrunk(path: &Path) -> Scenario {
    let text = std::fs::read_to_string(path).expect("scenario file");
    let mut v: toml::Value = toml::from_str(&text).expect("toml");
    if let Some(arr) = v.get_mut("arrivals").and_then(|a| a.as_array_mut()) {
        for a in arr {
            for key in ["count", "population"] {
                if let Some(n) = a.get_mut(key) {
                    let x = n.as_integer().expect("an integer");
                    *n = toml::Value::Integer(x.min(CI_VIEWERS));
                }
            }
        }
    }
    Scenario::from_toml(&toml::to_string(&v).expect("toml")).expect("valid scenario")
}

fn run(sc: Scenario, plant: Option<Plant>) -> Metrics {
    let mut sim = Simulation::new(sc, RunOptions::default()).unwrap();
    if let Some(p) = plant {
        sim.plant(p).unwrap();
    }
    sim.run().unwrap().metrics
}

#[test]
fn every_shipped_scenario_stays_within_its_bounds() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 8, "{} scenarios", files.len());
    for p in files {
        let m = run(shrunk(&p), None);
        eprintln!(
            "{}: efficiency {:?} continuity {:.5} origin max {:.0} / uplink {:?} bit/s",
            m.scenario,
            m.efficiency,
            m.continuity_index,
            m.origin_upload_bps_max,
            m.origin_uplink_bps
        );
        if let Some(e) = m.efficiency {
            assert!(e <= 1.0, "{}: efficiency {e}", m.scenario);
            assert!(
                e >= m.continuity_index - 1e-9,
                "{}: the bound is at most the rate",
                m.scenario
            );
        }
        if let Some(up) = m.origin_uplink_bps {
            assert!(
                m.origin_upload_bps_max <= up * (1.0 + 1e-9),
                "{}: origin sent {} bit/s in one second over a {up} bit/s uplink",
                m.scenario,
                m.origin_upload_bps_max
            );
        }
        assert!(
            m.origin_upload_bps_max > 0.0,
            "{}: the origin sent",
            m.scenario
        );
        for v in &m.invariant_violations {
            assert!(
                !v.starts_with("efficiency_above_one")
                    && !v.starts_with("origin_upload_over_uplink"),
                "{}: {v}",
                m.scenario
            );
        }
        assert_eq!(m.loss_modelled, m.data_plane == "blocks");
        assert!(!m.per_region.is_empty());
        // A player starts at a keyframe: never before the first block, and only
        // the blocks plane carries keyframes.
        if m.data_plane == "blocks" {
            let (first, playable) = (m.startup_delay_ms_p50, m.startup_playable_ms_p50);
            assert!(
                playable.is_some_and(|p| first.is_some_and(|f| p >= f)),
                "{}: playable startup {playable:?} before the first block {first:?}",
                m.scenario
            );
        } else {
            assert_eq!(m.startup_playable_ms_p50, None, "{}", m.scenario);
        }
    }
}

const SWITCH: &str = r#"
name = "gap-across-a-switch"
# Viewers on two bottom relays; one crashes at 15 s, its viewers go to the other.
seed = 5
duration_s = 40
data_plane = "blocks"
playout_deadline_ms = 3000

[stream]
rate_kbps = 1000
block_bytes = 8192

[latency]
matrix_ms = [[5]]

[[node_classes]]
name = "S"
role = "origin"
capacity = 4
uplink_kbps = { kind = "fixed", value = 100000 }

[[node_classes]]
name = "P"
role = "relay"
tier = 1
count = 3
capacity = 30
uplink_kbps = { kind = "fixed", value = 100000 }

[[arrivals]]
kind = "flash_crowd"
count = 50
start_s = 1
over_s = 3

[[faults]]
kind = "crash"
tier = 1
count = 1
active = true
at_s = 15
"#;

#[test]
fn a_gap_across_a_relay_switch_is_counted() {
    const GAP: u32 = 40;
    let sc = || Scenario::from_toml(SWITCH).unwrap();
    let base = run(sc(), None);
    let gap = run(sc(), Some(Plant::GapAfterSwitch(GAP)));
    eprintln!(
        "base: expected {:?} missed {:?} continuity {}; planted: missed {:?} notes {:?}",
        base.blocks_expected,
        base.blocks_missed,
        base.continuity_index,
        gap.blocks_missed,
        gap.notes
    );
    assert!(
        gap.notes.iter().any(|n| n.starts_with("planted gap")),
        "a viewer switched relays"
    );
    // The run is the same; only the accounting lost the blocks after the switch.
    assert_eq!(gap.blocks_expected, base.blocks_expected);
    assert_eq!(
        gap.blocks_missed.unwrap(),
        base.blocks_missed.unwrap() + u64::from(GAP),
        "every block of the gap counts as missed"
    );
    let window = gap.fault_windows.first().expect("the crash has a window");
    let base_window = base.fault_windows.first().unwrap();
    assert!(
        window.continuity_after.unwrap() < base_window.continuity_after.unwrap(),
        "the gap falls in the crash's after-window"
    );
    assert_eq!(window.kind, "crash");
    assert!(
        window.orphans > 0,
        "the crashed relay's viewers were orphaned"
    );
}
