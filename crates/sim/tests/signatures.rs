//! Simulated nodes check blocks as real ones do (X3; issue 13, Must show 2):
//! the simulated origin signs, every node checks before storing or forwarding.
//! A tier-1 relay that alters every block it sends (the `tamper` fault) has
//! them rejected by its children — none reaches a viewer — and the viewers keep
//! playing from their relay's other parent; with checking off, the altered
//! blocks reach viewers (so the check, not luck, is what stops them).

mod support;

use tiercast_sim::Scenario;

const SCENARIO: &str = r#"
name = "tamper-small"
seed = 17
duration_s = 40
data_plane = "blocks"
playout_deadline_ms = 3000

[stream]
rate_kbps = 500
block_bytes = 4096

[latency]
matrix_ms = [[5]]
jitter_ms = 2

[[node_classes]]
name = "S"
role = "origin"
capacity = 8
uplink_kbps = { kind = "fixed", value = 100000 }

[[node_classes]]
name = "P1_"
role = "relay"
tier = 1
count = 3
capacity = 20
uplink_kbps = { kind = "fixed", value = 100000 }

[[node_classes]]
name = "P2_"
role = "relay"
tier = 2
count = 6
capacity = 30
max_threshold = 28
min_threshold = 3
uplink_kbps = { kind = "fixed", value = 100000 }

[[arrivals]]
kind = "flash_crowd"
count = 60
start_s = 2
over_s = 5

[[faults]]
kind = "tamper"
tier = 1
count = 1
active = true
at_s = 15

[strategy]
parents_per_relay = 2
heartbeat_interval_ms = 1000
heartbeat_timeout_ms = 1500
"#;

#[test]
fn blocks_altered_by_a_relay_are_rejected_and_never_reach_a_viewer() {
    let m = support::run(Scenario::from_toml(SCENARIO).unwrap());
    assert_eq!(m.invariant_violations, Vec::<String>::new());
    assert!(m.blocks_verified);
    assert!(
        m.rejected_blocks > 0,
        "the tampering relay's children rejected its blocks"
    );
    assert_eq!(m.tampered_blocks_viewed, 0, "no altered block was played");
    assert!(
        m.continuity_index >= 0.99,
        "viewers kept playing from the other parent: {}",
        m.continuity_index
    );
}

#[test]
fn without_the_check_altered_blocks_reach_the_viewers() {
    let text = SCENARIO.replace(
        "playout_deadline_ms = 3000",
        "playout_deadline_ms = 3000\nverify_blocks = false",
    );
    let m = support::run(Scenario::from_toml(&text).unwrap());
    assert!(!m.blocks_verified);
    assert_eq!(m.rejected_blocks, 0);
    assert!(
        m.tampered_blocks_viewed > 0,
        "unchecked, the altered blocks are played"
    );
}

/// Two of the three tier-1 relays lie: a tier-2 relay under both gets no
/// genuine block from anyone, which reads as a stalled stream — unless a run
/// of forged blocks is itself reported (`parents::FORGED_RUN_REPORTED`).
/// Before that rule its viewers starved for the rest of the run (continuity
/// 0.34 on seeds 1..3).
#[test]
fn relays_whose_parents_all_lie_report_them_and_are_moved_to_an_honest_one() {
    let text = SCENARIO.replace(
        "kind = \"tamper\"\ntier = 1\ncount = 1",
        "kind = \"tamper\"\ntier = 1\ncount = 2",
    );
    assert_ne!(text, SCENARIO, "two liars");
    let m = support::run(Scenario::from_toml(&text).unwrap());
    assert_eq!(m.invariant_violations, Vec::<String>::new());
    assert!(m.rejected_blocks > 0);
    assert_eq!(m.tampered_blocks_viewed, 0);
    assert!(
        m.continuity_index >= 0.99,
        "moved off the liars: {}",
        m.continuity_index
    );
}
