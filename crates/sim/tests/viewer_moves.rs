//! Viewers whose relay dies, in the simulator (issue 10; V10's crash case for
//! protocol viewers, V2 rules for the new relay): an active bottom-tier relay
//! crashes under a few hundred protocol viewers in blocks mode. The coordinator
//! (heartbeat timeout 1.5 intervals) sends each of its viewers a `WatchAt` to
//! another relay, so no viewer goes without a new block for more than two
//! heartbeat intervals — the viewers' own silence backstop (2 s, then a `Watch`)
//! would take longer — and each moved viewer's own accounting counts the blocks it
//! missed across the switch.

use tiercast_proto::{NodeId, NodeRole};
use tiercast_sim::{RunOptions, Scenario, Simulation};

const SCENARIO: &str = r#"
name = "viewer-moves-small"
seed = 5
duration_s = 40
data_plane = "blocks"
playout_deadline_ms = 3000

[stream]
rate_kbps = 1000
block_bytes = 8192

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
count = 2
capacity = 20
uplink_kbps = { kind = "fixed", value = 100000 }

[[node_classes]]
name = "P2_"
role = "relay"
tier = 2
count = 8
capacity = 60
max_threshold = 58
min_threshold = 5
uplink_kbps = { kind = "fixed", value = 100000 }

[[arrivals]]
kind = "flash_crowd"
count = 200
start_s = 2
over_s = 10

[[faults]]
kind = "crash"
class = "P2_"
count = 1
active = true
at_s = 20

[strategy]
heartbeat_interval_ms = 1000
heartbeat_timeout_ms = 1500
"#;

#[test]
fn a_crashed_relays_viewers_are_moved_within_two_heartbeat_intervals() {
    let sc = Scenario::from_toml(SCENARIO).unwrap();
    let hb_ms = sc.strategy.heartbeat_interval_ms;
    let mut sim = Simulation::new(sc, RunOptions::default()).unwrap();
    let m = sim.run().unwrap().metrics;
    assert_eq!(m.invariant_violations, Vec::<String>::new());
    assert_eq!(m.relays_failed, 1);
    let moved = sim.coordinator().viewer_map().moved;
    assert!(
        moved >= 10,
        "the crashed relay's viewers were moved: {moved}"
    );
    let reports: Vec<_> = (0..10_000u32)
        .filter_map(|i| sim.node(NodeId(i)))
        .filter(|n| n.config().role == NodeRole::Viewer)
        .filter_map(|n| n.continuity().get("live").map(|c| c.report()))
        .collect();
    assert!(reports.len() >= 190, "{} viewers", reports.len());
    let switched: Vec<_> = reports.iter().filter(|r| r.relay_switches > 0).collect();
    assert!(
        switched.len() as u64 >= moved,
        "{} viewers switched relay, {moved} moved",
        switched.len()
    );
    let worst_gap = reports.iter().map(|r| r.longest_gap_ms).max().unwrap();
    assert!(
        worst_gap <= 2 * hb_ms,
        "a viewer went {worst_gap} ms without a new block (2 intervals = {} ms)",
        2 * hb_ms
    );
    // What they missed across the switch is counted, and only that.
    for r in &reports {
        assert_eq!(
            r.missing,
            r.last_seq.unwrap() - r.first_seq.unwrap() + 1 - r.received
        );
    }
    let missed: u64 = switched.iter().map(|r| r.missing).sum();
    eprintln!(
        "moved {moved}, switched {}, worst gap {worst_gap} ms, missed {missed} blocks, continuity {}",
        switched.len(),
        m.continuity_index
    );
}
