//! Restarts in the simulator (issue 10's robustness sweep; D7): the shipped
//! scenarios of scenarios/robust/ with their crowd shrunk to 300 viewers. The
//! coordinator restarted with no state serves the channel again within one
//! heartbeat interval and the viewers lose nothing; the origin restarted with its
//! key and seq is played again within 3 s; restarted relays are registered again
//! under their new incarnation within two heartbeat intervals. The restarted
//! coordinator has the next epoch, and every live node follows it (D7, X7).

mod support;

use tiercast_proto::NodeId;
use tiercast_sim::{RunOptions, Scenario, Simulation};

fn shrunk(name: &str) -> Scenario {
    support::edited(&format!("robust/{name}.toml"), |text| {
        let text = text.replace("count = 1500", "count = 300");
        assert!(text.contains("count = 300"), "{name}: the crowd line moved");
        text
    })
}

fn run(name: &str) -> (tiercast_sim::Metrics, u64) {
    let sc = shrunk(name);
    let hb = sc.strategy.heartbeat_interval_ms;
    (support::run(sc), hb)
}

#[test]
fn a_restarted_coordinator_serves_the_channel_again_within_one_interval() {
    let sc = shrunk("restart-coordinator");
    let hb = sc.strategy.heartbeat_interval_ms;
    let mut sim = Simulation::new(sc, RunOptions::default()).unwrap();
    let m = sim.run().unwrap().metrics;
    assert_eq!(
        sim.coordinator().config().epoch,
        2,
        "one restart, one epoch more"
    );
    let epochs: Vec<u64> = (1..10_000)
        .filter_map(|i| sim.node(NodeId(i)))
        .map(|n| n.coordinator_epoch())
        .collect();
    assert!(epochs.len() >= 300, "{} live nodes", epochs.len());
    assert!(
        epochs.iter().all(|e| *e == 2),
        "every live node follows the new epoch: {:?}",
        epochs.iter().filter(|e| **e != 2).count()
    );
    assert_eq!(m.invariant_violations, Vec::<String>::new());
    let r = &m.restarts[0];
    assert_eq!(r.kind, "coordinator_restart");
    assert_eq!(r.not_served, 0, "{r:?}");
    assert!(r.served_again_ms.unwrap() <= hb, "{r:?}");
    let w = &m.fault_windows[0];
    assert!(w.continuity_after.unwrap() >= 0.995, "{w:?}");
    assert!(m.continuity_index >= 0.995, "{}", m.continuity_index);
}

#[test]
fn a_restarted_origin_is_played_again_within_three_seconds() {
    let (m, _) = run("restart-origin");
    assert_eq!(m.invariant_violations, Vec::<String>::new());
    let r = &m.restarts[0];
    assert_eq!((r.kind, r.nodes, r.not_served), ("restart", 1, 0), "{r:?}");
    assert!(r.served_again_ms.unwrap() <= 3000, "{r:?}");
    // The downtime's blocks are lost and counted: continuity is below 1.
    assert!(m.blocks_missed.unwrap() > 0 && m.continuity_index < 1.0);
    assert_eq!(m.rejected_blocks, 0);
}

#[test]
fn restarted_relays_register_again_under_a_new_incarnation() {
    let (m, hb) = run("restart-relays");
    assert_eq!(m.invariant_violations, Vec::<String>::new());
    assert_eq!(m.restarts.len(), 2);
    for r in &m.restarts {
        assert!(r.nodes >= 1 && r.not_served == 0, "{r:?}");
        assert!(r.served_again_ms.unwrap() <= 2 * hb, "{r:?}");
    }
}
