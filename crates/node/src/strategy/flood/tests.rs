//! Tests of D3 flooding: dedup, the bounded window, and the c-connected mesh.

use super::*;
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::VecDeque;

fn ids(n: u32) -> Vec<NodeId> {
    (0..n).map(NodeId).collect()
}

fn connected_without(
    mesh: &BTreeMap<NodeId, BTreeSet<NodeId>>,
    removed: &BTreeSet<NodeId>,
) -> bool {
    let alive: Vec<NodeId> = mesh
        .keys()
        .copied()
        .filter(|n| !removed.contains(n))
        .collect();
    let Some(&start) = alive.first() else {
        return true;
    };
    let mut seen = BTreeSet::from([start]);
    let mut queue = VecDeque::from([start]);
    while let Some(v) = queue.pop_front() {
        for &w in &mesh[&v] {
            if !removed.contains(&w) && seen.insert(w) {
                queue.push_back(w);
            }
        }
    }
    seen.len() == alive.len()
}

/// Every subset of `items` of size `size`, in lexicographic order.
fn combinations(items: &[NodeId], size: usize) -> Vec<BTreeSet<NodeId>> {
    if size == 0 {
        return vec![BTreeSet::new()];
    }
    let mut out = Vec::new();
    for (i, &first) in items.iter().enumerate() {
        for mut rest in combinations(&items[i + 1..], size - 1) {
            rest.insert(first);
            out.push(rest);
        }
    }
    out
}

#[test]
fn fresh_blocks_go_to_every_other_neighbour() {
    let mut node = FloodState::new(ids(4), 64);
    assert_eq!(
        node.receive(NodeId(2), 10),
        FloodDecision::Forward(vec![NodeId(0), NodeId(1), NodeId(3)])
    );
    assert_eq!(node.originate(11), FloodDecision::Forward(ids(4)));
    assert_eq!(
        node.receive(NodeId(9), 12),
        FloodDecision::Forward(ids(4)),
        "a former neighbour"
    );
    node.set_neighbours([NodeId(1)]);
    assert_eq!(node.receive(NodeId(1), 13), FloodDecision::Forward(vec![]));
}

#[test]
fn duplicates_and_stale_blocks_are_dropped_and_counted() {
    let mut node = FloodState::new(ids(3), 8);
    node.receive(NodeId(0), 100);
    assert_eq!(node.receive(NodeId(1), 100), FloodDecision::Duplicate);
    assert_eq!(node.receive(NodeId(2), 100), FloodDecision::Duplicate);
    assert!(
        matches!(node.receive(NodeId(1), 95), FloodDecision::Forward(_)),
        "late but inside the window"
    );
    assert_eq!(
        node.receive(NodeId(1), 92),
        FloodDecision::Stale,
        "100 − 8 is out of the window"
    );
    assert!(matches!(
        node.receive(NodeId(1), 93),
        FloodDecision::Forward(_)
    ));
    let stats = node.stats();
    assert_eq!(
        (stats.received, stats.fresh, stats.duplicates, stats.stale),
        (6, 3, 2, 1)
    );
    assert_eq!(stats.copies_sent, 3 * 2);
    assert_eq!(stats.duplicate_factor(), 2.0);
}

#[test]
fn a_jump_ahead_does_not_resurrect_old_seqs() {
    let mut node = FloodState::new(ids(2), 4);
    for seq in 0..4 {
        node.receive(NodeId(0), seq);
    }
    assert!(matches!(
        node.receive(NodeId(0), 1_000),
        FloodDecision::Forward(_)
    ));
    for seq in 0..4 {
        assert_eq!(node.receive(NodeId(1), seq), FloodDecision::Stale);
    }
    assert_eq!(node.receive(NodeId(1), 1_000), FloodDecision::Duplicate);
}

#[test]
fn mesh_gives_every_node_c_neighbours_symmetrically() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for n in [0u32, 1, 2, 3, 5, 8, 13, 40] {
        for c in 0..6 {
            let mesh = c_connected_mesh(&ids(n), c, &mut rng);
            assert_eq!(mesh.len(), n as usize);
            for (v, nbrs) in &mesh {
                assert!(!nbrs.contains(v), "no self-loop");
                assert!(
                    nbrs.len() >= c.min(n as usize - 1),
                    "n={n} c={c}: {v} has {}",
                    nbrs.len()
                );
                assert!(
                    nbrs.len() <= c.max(2) + 1,
                    "Harary graphs are (nearly) c-regular"
                );
                assert!(
                    nbrs.iter().all(|w| mesh[w].contains(v)),
                    "links are symmetric"
                );
            }
        }
    }
}

#[test]
fn mesh_survives_the_loss_of_any_c_minus_1_nodes() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for c in 1..=4usize {
        for n in (c as u32 + 1)..=12 {
            let nodes = ids(n);
            let mesh = c_connected_mesh(&nodes, c, &mut rng);
            for removed in combinations(&nodes, c - 1) {
                assert!(
                    connected_without(&mesh, &removed),
                    "c={c} n={n} without {removed:?}"
                );
            }
        }
    }
}

#[test]
fn mesh_depends_only_on_the_seed_and_the_node_set() {
    let a = c_connected_mesh(&ids(30), 3, &mut ChaCha8Rng::seed_from_u64(5));
    let mut reversed = ids(30);
    reversed.reverse();
    reversed.push(NodeId(7));
    let b = c_connected_mesh(&reversed, 3, &mut ChaCha8Rng::seed_from_u64(5));
    assert_eq!(a, b);
    assert_ne!(
        a,
        c_connected_mesh(&ids(30), 3, &mut ChaCha8Rng::seed_from_u64(6))
    );
}

/// Floods `blocks` blocks, each entering at a different live node, with
/// `failed` nodes silent. Returns (receptions at live nodes, live nodes that
/// missed some block).
fn flood(
    mesh: &BTreeMap<NodeId, BTreeSet<NodeId>>,
    failed: &BTreeSet<NodeId>,
    blocks: u64,
) -> (u64, usize) {
    let mut states: BTreeMap<NodeId, FloodState> = mesh
        .iter()
        .filter(|(v, _)| !failed.contains(v))
        .map(|(v, nbrs)| (*v, FloodState::new(nbrs.iter().copied(), 256)))
        .collect();
    let live: Vec<NodeId> = states.keys().copied().collect();
    for seq in 0..blocks {
        let entry = live[(seq as usize * 7) % live.len()];
        let mut queue = VecDeque::new();
        let push = |queue: &mut VecDeque<(NodeId, NodeId)>, from: NodeId, d: FloodDecision| {
            if let FloodDecision::Forward(to) = d {
                queue.extend(to.into_iter().map(|t| (from, t)));
            }
        };
        let first = states.get_mut(&entry).expect("live").originate(seq);
        push(&mut queue, entry, first);
        while let Some((from, to)) = queue.pop_front() {
            if let Some(state) = states.get_mut(&to) {
                let d = state.receive(from, seq);
                push(&mut queue, to, d);
            }
        }
    }
    let received = states.values().map(|s| s.stats().received).sum();
    let missed = states.values().filter(|s| s.stats().fresh < blocks).count();
    (received, missed)
}

#[test]
fn flooding_reaches_every_survivor_and_reports_its_duplicate_factor() {
    let (n, blocks) = (100u32, 200u64);
    for c in 2..=4usize {
        let mut rng = ChaCha8Rng::seed_from_u64(c as u64);
        let mesh = c_connected_mesh(&ids(n), c, &mut rng);
        let (received, missed) = flood(&mesh, &BTreeSet::new(), blocks);
        assert_eq!(missed, 0);
        let factor = received as f64 / (f64::from(n) * blocks as f64);
        // c − 1 failures: the survivors of a c-connected mesh still get everything.
        let failed: BTreeSet<NodeId> = (0..c as u32 - 1).map(|i| NodeId(i * 31 + 5)).collect();
        let (received_f, missed_f) = flood(&mesh, &failed, blocks);
        assert_eq!(missed_f, 0, "c={c}: a survivor missed a block");
        let live = f64::from(n) - failed.len() as f64;
        let factor_f = received_f as f64 / (live * blocks as f64);
        eprintln!(
            "flood n={n} c={c}: duplicate_factor {factor:.3} copies/block/node \
             ({factor_f:.3} with {} failed)",
            failed.len()
        );
    }
}

proptest! {
    #[test]
    fn window_matches_a_reference_set(
        window in 1usize..32,
        seqs in proptest::collection::vec(0u64..64, 1..200),
    ) {
        let mut node = FloodState::new(ids(2), window);
        let mut seen = BTreeSet::new();
        let mut highest: Option<u64> = None;
        for seq in seqs {
            let d = node.receive(NodeId(0), seq);
            let stale = highest.is_some_and(|h| seq + window as u64 <= h);
            let expected = if stale {
                FloodDecision::Stale
            } else if !seen.insert(seq) {
                FloodDecision::Duplicate
            } else {
                highest = Some(highest.map_or(seq, |h| h.max(seq)));
                FloodDecision::Forward(vec![NodeId(1)])
            };
            prop_assert_eq!(d, expected);
        }
    }

    #[test]
    fn random_meshes_survive_random_c_minus_1_failures(
        seed in any::<u64>(), n in 2u32..60, c in 1usize..6, pick in any::<u64>(),
    ) {
        let nodes = ids(n);
        let mesh = c_connected_mesh(&nodes, c, &mut ChaCha8Rng::seed_from_u64(seed));
        let mut order = nodes.clone();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(pick));
        let removed: BTreeSet<NodeId> = order.into_iter().take(c - 1).collect();
        prop_assert!(connected_without(&mesh, &removed));
    }
}
