//! Tests of the D4/C10 multi-tree builder.

use super::*;
use proptest::prelude::*;

const R: u64 = 1_000_000;

fn peer(id: u32, uplink_bps: u64, priority: u32) -> PeerCapacity {
    PeerCapacity {
        id: NodeId(id),
        uplink_bps,
        priority,
        protected: false,
    }
}

/// The invariants every built multi-tree keeps.
fn check(peers: &[PeerCapacity], source_uplink_bps: u64, rate: u64, k: usize, mt: &MultiTree) {
    let n = peers.len();
    assert_eq!(mt.trees.len(), k);
    let mut booked: BTreeMap<NodeId, u32> = BTreeMap::new();
    let mut source = 0u32;
    for (t, tree) in mt.trees.iter().enumerate() {
        assert_eq!(tree.parent.len(), n, "tree {t}: one parent per node");
        for p in peers {
            let mut at = p.id;
            let mut steps = 0;
            loop {
                match tree.parent[&at] {
                    Parent::Source => break,
                    Parent::Node(up) => {
                        assert!(
                            tree.interior.contains(&up),
                            "tree {t}: parent {up} is interior"
                        );
                        at = up;
                    }
                }
                steps += 1;
                assert!(steps <= n, "tree {t}: cycle above {}", p.id);
            }
            assert_eq!(tree.depth[&p.id], steps as u32 + 1);
        }
        for parent in tree.parent.values() {
            match parent {
                Parent::Source => source += 1,
                Parent::Node(id) => *booked.entry(*id).or_default() += 1,
            }
        }
    }
    for p in peers {
        let children = booked.get(&p.id).copied().unwrap_or(0);
        let slots = substream_slots(p.uplink_bps, rate, k);
        assert!(
            u128::from(children) * u128::from(rate) <= u128::from(p.uplink_bps) * k as u128,
            "{} serves {children} substreams on {} bps",
            p.id,
            p.uplink_bps
        );
        assert_eq!((mt.slots[&p.id], mt.children[&p.id]), (slots, children));
        let interior_in = mt
            .trees
            .iter()
            .filter(|t| t.interior.contains(&p.id))
            .count();
        assert!(
            interior_in <= 1,
            "{} is interior in {interior_in} trees",
            p.id
        );
    }
    assert!(u128::from(source) * u128::from(rate) <= u128::from(source_uplink_bps) * k as u128);
    assert_eq!(source, mt.source_children);
}

#[test]
fn one_substream_is_a_breadth_first_tree() {
    let peers: Vec<_> = (0..7).map(|i| peer(i, 2 * R, 0)).collect();
    let mt = build_multitree(&peers, R, R, 1).expect("feasible");
    check(&peers, R, R, 1, &mt);
    let mut depths: Vec<u32> = mt.trees[0].depth.values().copied().collect();
    depths.sort_unstable();
    assert_eq!(depths, vec![1, 2, 2, 3, 3, 3, 3]);
    assert_eq!(mt.trees[0].parent[&NodeId(0)], Parent::Source);
}

#[test]
fn each_node_is_interior_in_one_tree_and_a_leaf_in_the_others() {
    let k = 4;
    let peers: Vec<_> = (0..40)
        .map(|i| peer(i, R + u64::from(i) * 20_000, 0))
        .collect();
    let mt = build_multitree(&peers, R, R, k).expect("feasible");
    check(&peers, R, R, k, &mt);
    for p in &peers {
        assert!(
            mt.interior_tree(p.id).is_some(),
            "{} has uplink for 4 substreams",
            p.id
        );
    }
    assert_eq!(mt.source_children, 4, "the source feeds one root per tree");
    assert!(mt.max_depth() <= 4, "max depth {}", mt.max_depth());
}

#[test]
fn nodes_below_the_substream_rate_are_leaves_everywhere() {
    let k = 2;
    let mut peers: Vec<_> = (0..10).map(|i| peer(i, 3 * R, 0)).collect();
    peers.push(peer(10, R / 2 - 1, 9));
    let mt = build_multitree(&peers, R, R, k).expect("feasible");
    check(&peers, R, R, k, &mt);
    assert_eq!(mt.slots[&NodeId(10)], 0);
    assert_eq!(mt.interior_tree(NodeId(10)), None);
    assert_eq!(mt.children[&NodeId(10)], 0);
}

#[test]
fn capacity_then_priority_sit_nearest_the_source() {
    let peers = vec![
        peer(1, 2 * R, 0),
        peer(2, 2 * R, 5),
        peer(3, 3 * R, 0),
        peer(4, 0, 1),
    ];
    let mt = build_multitree(&peers, R, R, 1).expect("feasible");
    let tree = &mt.trees[0];
    assert_eq!(
        tree.parent[&NodeId(3)],
        Parent::Source,
        "highest capacity is the root"
    );
    assert_eq!(
        tree.parent[&NodeId(2)],
        Parent::Node(NodeId(3)),
        "priority breaks the tie"
    );
    assert_eq!(tree.parent[&NodeId(1)], Parent::Node(NodeId(3)));
    assert_eq!(tree.parent[&NodeId(4)], Parent::Node(NodeId(3)));
}

#[test]
fn the_source_covers_what_peers_cannot() {
    let peers: Vec<_> = (0..5).map(|i| peer(i, 0, 0)).collect();
    let mt = build_multitree(&peers, 5 * R, R, 3).expect("the source alone suffices");
    check(&peers, 5 * R, R, 3, &mt);
    assert_eq!(mt.source_children, 15);
    assert_eq!(mt.max_depth(), 1);
}

#[test]
fn infeasible_names_the_nodes_left_without_a_parent() {
    let peers = vec![peer(1, R, 0), peer(2, R / 2, 0), peer(3, R / 5, 0)];
    assert_eq!(
        build_multitree(&peers, R, R, 1),
        Err(MultiTreeError::Infeasible {
            unplaced: BTreeSet::from([NodeId(3)])
        })
    );
    assert!(matches!(
        build_multitree(&peers, R - 1, R, 1),
        Err(MultiTreeError::Infeasible { unplaced }) if unplaced.len() == 3
    ));
}

#[test]
fn bad_input_is_rejected() {
    let peers = vec![peer(1, R, 0), peer(1, 2 * R, 0)];
    let bad = |e: PopulationError| Err(MultiTreeError::Population(e));
    assert_eq!(
        build_multitree(&peers, R, R, 2),
        bad(PopulationError::DuplicateNode(NodeId(1)))
    );
    assert_eq!(
        build_multitree(&[], R, R, 0),
        bad(PopulationError::BadSubstreamCount(0))
    );
    assert_eq!(
        build_multitree(&[], R, R, 256),
        bad(PopulationError::BadSubstreamCount(256))
    );
    assert_eq!(
        build_multitree(&[], R, 0, 2),
        bad(PopulationError::ZeroRate)
    );
    let empty = build_multitree(&[], 0, R, 3).expect("nobody to place");
    assert_eq!(empty.trees.len(), 3);
}

#[test]
fn ten_thousand_heterogeneous_peers() {
    // Uplinks cycle through 0.3r .. 2.4r (mean 1.35r); k = 8.
    let (n, k) = (10_000u32, 8);
    let peers: Vec<_> = (0..n)
        .map(|i| peer(i, R * 3 / 10 + u64::from(i * 7919 % 1000) * 2_100, i % 3))
        .collect();
    let mt = build_multitree(&peers, 2 * R, R, k).expect("feasible");
    check(&peers, 2 * R, R, k, &mt);
    let depths: Vec<u32> = mt
        .trees
        .iter()
        .flat_map(|t| t.depth.values().copied())
        .collect();
    let mean = f64::from(depths.iter().sum::<u32>()) / depths.len() as f64;
    let interior = peers
        .iter()
        .filter(|p| mt.interior_tree(p.id).is_some())
        .count();
    eprintln!(
        "multitree n={n} k={k}: max depth {}, mean depth {mean:.2}, {interior} interior nodes, \
         source serves {}/{} slots",
        mt.max_depth(),
        mt.source_children,
        mt.source_slots
    );
}

/// A population whose usable uplink, in whole substreams, is at least 1.2·k·N
/// slots (so Σu ≥ 1.2·N·r), no node holding more than N/5 slots.
fn population() -> impl Strategy<Value = (Vec<PeerCapacity>, u64, u64, usize)> {
    (1usize..=8, 300_000u64..6_000_000)
        .prop_flat_map(|(k, rate)| {
            let cap = (10 * k..=240).prop_flat_map(move |n| {
                let hi = (n as u64 / 5 + 1) * rate / k as u64;
                proptest::collection::vec((0..hi, 0u32..4), n)
            });
            (Just(k), Just(rate), rate..=3 * rate, cap)
        })
        .prop_map(|(k, rate, source, raw)| {
            let n = raw.len() as u64;
            let hi = (n / 5 + 1) * rate / k as u64;
            let mut peers: Vec<_> = raw
                .into_iter()
                .enumerate()
                .map(|(i, (u, prio))| peer(i as u32, u, prio))
                .collect();
            let slots = |ps: &[PeerCapacity]| -> u64 {
                ps.iter()
                    .map(|p| u64::from(substream_slots(p.uplink_bps, rate, k)))
                    .sum()
            };
            let mut i = 0;
            while 5 * slots(&peers) < 6 * k as u64 * n {
                peers[i].uplink_bps = hi - 1;
                i += 1;
            }
            (peers, source, rate, k)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_node_gets_one_parent_per_substream((peers, source, rate, k) in population()) {
        let total: u128 = peers.iter().map(|p| u128::from(p.uplink_bps)).sum();
        prop_assert!(5 * total >= 6 * peers.len() as u128 * u128::from(rate));
        let mt = build_multitree(&peers, source, rate, k);
        prop_assert!(mt.is_ok(), "{:?}", mt.err());
        check(&peers, source, rate, k, &mt.expect("checked"));
    }

    #[test]
    fn any_population_gets_a_valid_multitree_or_a_named_shortfall(
        k in 1usize..6,
        source in 0u64..3 * R,
        raw in proptest::collection::vec((0u64..4 * R, 0u32..3), 0..60),
    ) {
        let peers: Vec<_> = raw.iter().enumerate().map(|(i, (u, p))| peer(i as u32, *u, *p)).collect();
        let supply: u64 = peers.iter().map(|p| u64::from(substream_slots(p.uplink_bps, R, k))).sum::<u64>()
            + u64::from(substream_slots(source, R, k));
        match build_multitree(&peers, source, R, k) {
            Ok(mt) => {
                prop_assert!(supply >= (k * peers.len()) as u64);
                check(&peers, source, R, k, &mt);
            }
            Err(MultiTreeError::Infeasible { unplaced }) => {
                prop_assert!(!unplaced.is_empty());
                prop_assert!(unplaced.iter().all(|id| peers.iter().any(|p| p.id == *id)));
            }
            Err(e) => prop_assert!(false, "unexpected {e}"),
        }
    }
}

/// Whether some choice of one interior tree per node (the source filling the
/// rest) serves everyone: tree t then needs max(1, N − C_t) source slots.
fn strict_multitree_exists(peers: &[PeerCapacity], source: u64, rate: u64, k: usize) -> bool {
    let n = peers.len() as u64;
    let source_slots = u64::from(substream_slots(source, rate, k));
    let caps: Vec<u64> = peers
        .iter()
        .map(|p| u64::from(substream_slots(p.uplink_bps, rate, k)))
        .filter(|c| *c > 0)
        .collect();
    (0..k.pow(caps.len() as u32)).any(|mut code| {
        let mut capacity = vec![0u64; k];
        for cap in &caps {
            capacity[code % k] += cap;
            code /= k;
        }
        capacity
            .iter()
            .map(|c| n.saturating_sub(*c).max(1))
            .sum::<u64>()
            <= source_slots
    })
}

#[test]
fn greedy_finds_a_multitree_whenever_one_exists_on_small_populations() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let populations = (
        1usize..6,
        0u64..3 * R,
        proptest::collection::vec((0u64..3 * R, 0u32..3), 1..8),
    );
    let (mut built, mut none_exists) = (0, 0);
    for _ in 0..500 {
        let (k, source, raw) = populations
            .new_tree(&mut runner)
            .expect("generates")
            .current();
        let peers: Vec<_> = raw
            .iter()
            .enumerate()
            .map(|(i, (u, p))| peer(i as u32, *u, *p))
            .collect();
        let exists = strict_multitree_exists(&peers, source, R, k);
        match build_multitree(&peers, source, R, k) {
            Ok(mt) => {
                assert!(exists);
                check(&peers, source, R, k, &mt);
                built += 1;
            }
            Err(e) => {
                assert!(!exists, "k={k} source={source} {peers:?}: {e}");
                none_exists += 1;
            }
        }
    }
    eprintln!("multitree exhaustive check: {built} built, {none_exists} with no strict multi-tree");
}
