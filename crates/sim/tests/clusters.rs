//! C8 in the simulator (issue 12 Must show 4; issue 11's managers per
//! (channel, region)): `scenarios/peers-cluster-split.toml` — a flash crowd
//! outgrows its regions' bottom clusters, which split by network prefix, and
//! merge back when most peers leave. A split or a merge moves members between
//! managers, not between parents (`peers::clusters::tests` shows no link
//! moves), and the run loses no more than the same run without clusters.

mod support;

use tiercast_coordinator::CoordEvent;
use tiercast_sim::{RunOptions, Simulation};

fn run(split: bool, seed: u64) -> tiercast_sim::Report {
    let sc = support::edited("peers-cluster-split.toml", |t| {
        let t = t.replace("seed = 31", &format!("seed = {seed}"));
        if split {
            t
        } else {
            t.replace("cluster_split_above = 250", "cluster_split_above = 0")
        }
    });
    let opts = RunOptions {
        keep_events: true,
        ..RunOptions::default()
    };
    Simulation::new(sc, opts)
        .expect("simulation")
        .run()
        .expect("run")
}

#[test]
fn clusters_split_as_the_crowd_grows_and_merge_as_it_leaves_without_moving_a_link() {
    let on = run(true, 31);
    let m = &on.metrics;
    let peers = m.peers.as_ref().expect("a peer scenario");
    let c = &peers.clusters;
    assert!(c.splits >= 2, "both regions split: {c:?}");
    assert!(c.merges >= 2, "and merge back: {c:?}");
    assert!(c.most >= 4, "{c:?}");
    assert!(c.members_moved > 0);
    // Every peer is told its first cluster, and moved ones their new one.
    assert!(c.told >= m.viewers, "{c:?}");

    let changes: Vec<(u64, u64)> = on
        .coord_events
        .iter()
        .filter_map(|(t, e)| match e {
            CoordEvent::ClustersChanged { members_moved, .. } => Some((*t, *members_moved)),
            _ => None,
        })
        .collect();
    assert_eq!(changes.len() as u64, c.splits + c.merges);
    assert_eq!(changes.iter().map(|(_, n)| n).sum::<u64>(), c.members_moved);

    // The same crowd without clusters: the splits and merges lose nothing more
    // than the overlay does anyway.
    let off = run(false, 31);
    let off_c = &off.metrics.peers.as_ref().unwrap().clusters;
    assert_eq!(off_c.splits + off_c.merges, 0);
    eprintln!(
        "continuity with clusters {:.6} ({:?} missed), without {:.6} ({:?} missed)",
        m.continuity_index,
        m.blocks_missed,
        off.metrics.continuity_index,
        off.metrics.blocks_missed
    );
    assert!(m.continuity_index >= 0.9999, "{}", m.continuity_index);
    assert!(
        m.continuity_index >= off.metrics.continuity_index - 0.0001,
        "with {} against without {}",
        m.continuity_index,
        off.metrics.continuity_index
    );
}
