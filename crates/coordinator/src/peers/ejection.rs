//! Ejection when the system is infeasible (C6, seed 002): the aggregate uplink
//! of the nodes plus the source must cover the stream rate times the number of
//! nodes; if it does not, the nodes with the lowest uplink are ejected, in
//! increasing order, until it does.
//!
//! Uplink counts in whole substreams (as the multi-tree books it): a node of
//! uplink u supplies floor(u / (r/k)) substream slots and demands k, so a node
//! below r/k is a leaf only. Ejecting a node removes its demand and its supply,
//! freeing k − slots; lowest uplink first frees the most per ejection, so the
//! count is also the least any choice of nodes could achieve. Nodes of uplink
//! ≥ r supply what they demand and are never ejected: once every node below r
//! is gone, the rest is feasible.

use crate::multitree::{substream_slots, validated_order, PeerCapacity, PopulationError};
use tiercast_proto::NodeId;

/// Supply and demand in substream slots (rate r/k each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Feasibility {
    pub supply_slots: u64,
    pub demand_slots: u64,
}

impl Feasibility {
    pub fn is_feasible(&self) -> bool {
        self.supply_slots >= self.demand_slots
    }
    pub fn deficit_slots(&self) -> u64 {
        self.demand_slots.saturating_sub(self.supply_slots)
    }
}

/// The ejection decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ejection {
    /// In ejection order (lowest uplink first); empty when already feasible.
    pub ejected: Vec<NodeId>,
    /// No choice of nodes does with fewer: ceil(deficit / k), each ejection
    /// freeing at most one node's demand.
    pub lower_bound: usize,
    /// The exact least for the aggregate condition, found without choosing
    /// anyone: ejecting node i frees k − s_i slots, so no m nodes free more than
    /// the m largest frees; the least m whose largest frees cover the deficit.
    pub tight_bound: usize,
    pub before: Feasibility,
    pub after: Feasibility,
}

/// Supply and demand of `peers` fed by a source of `source_uplink_bps`.
pub fn feasibility(
    peers: &[PeerCapacity],
    source_uplink_bps: u64,
    stream_rate_bps: u64,
    k: usize,
) -> Result<Feasibility, PopulationError> {
    validated_order(peers, stream_rate_bps, k)?;
    Ok(Feasibility {
        supply_slots: u64::from(substream_slots(source_uplink_bps, stream_rate_bps, k))
            + peers
                .iter()
                .map(|p| u64::from(substream_slots(p.uplink_bps, stream_rate_bps, k)))
                .sum::<u64>(),
        demand_slots: (peers.len() * k) as u64,
    })
}

/// Slots kept free after an ejection (C6 near capacity): k plus 1/256 of the
/// demand. Exactly feasible leaves no slot for a re-home: the first report of a
/// bad link then waits for a parent and the wait triggers a full recomputation —
/// which moved everyone when it rebuilt every link. The reserve is spread over k
/// trees, so it grows with the demand. It was 1/64 while a recomputation moved
/// everyone; since it keeps the links that fit (`peers/rebuild.rs`), 1/64 ejected
/// 9–21 peers where 0–1 had to go (the full recomputation's 1 000 peers, seeds 32
/// and 39), each of them unfed for the rest of the run.
pub fn reserve_slots(demand_slots: u64, k: usize) -> u64 {
    k as u64 + demand_slots / 256
}

/// Slots an ejected node waits for before it is let back in (hysteresis): twice
/// the reserve, so one re-admission does not eat the room an ejection made.
pub fn readmit_reserve_slots(demand_slots: u64, k: usize) -> u64 {
    2 * reserve_slots(demand_slots, k)
}

/// Ejects the lowest-uplink nodes (lowest priority first among equals; protected
/// ones only after every other) until
/// the rest is feasible with [`reserve_slots`] to spare — or until only nodes
/// that supply what they demand are left (ejecting those frees nothing).
pub fn eject_until_feasible(
    peers: &[PeerCapacity],
    source_uplink_bps: u64,
    stream_rate_bps: u64,
    k: usize,
) -> Result<Ejection, PopulationError> {
    eject_weakest_until(peers, source_uplink_bps, stream_rate_bps, k, |f| {
        f.supply_slots >= f.demand_slots + reserve_slots(f.demand_slots, k)
    })
}

/// The exact rule of seed 002, without a reserve: the least ejection that makes
/// the rest feasible (the bounds below are checked against it).
pub fn eject_exactly_until_feasible(
    peers: &[PeerCapacity],
    source_uplink_bps: u64,
    stream_rate_bps: u64,
    k: usize,
) -> Result<Ejection, PopulationError> {
    eject_weakest_until(peers, source_uplink_bps, stream_rate_bps, k, |f| {
        f.is_feasible()
    })
}

/// Ejects the weakest first until `enough` holds of the rest, or until only nodes
/// that supply what they demand are left (ejecting those frees nothing).
fn eject_weakest_until(
    peers: &[PeerCapacity],
    source_uplink_bps: u64,
    stream_rate_bps: u64,
    k: usize,
    enough: impl Fn(&Feasibility) -> bool,
) -> Result<Ejection, PopulationError> {
    let before = feasibility(peers, source_uplink_bps, stream_rate_bps, k)?;
    let mut weakest = peers.to_vec();
    weakest.sort_by_key(|p| (p.protected, p.uplink_bps, p.priority, p.id));
    let mut after = before;
    let mut ejected = Vec::new();
    for p in &weakest {
        if enough(&after) {
            break;
        }
        let slots = u64::from(substream_slots(p.uplink_bps, stream_rate_bps, k));
        if slots >= k as u64 {
            // It supplies what it demands: ejecting it frees nothing (the rest of
            // its class are as strong; protected weak ones may follow).
            continue;
        }
        after.supply_slots -= slots;
        after.demand_slots -= k as u64;
        ejected.push(p.id);
    }
    assert!(after.is_feasible(), "an empty population is feasible");
    finish(peers, stream_rate_bps, k, before, after, ejected)
}

fn finish(
    peers: &[PeerCapacity],
    stream_rate_bps: u64,
    k: usize,
    before: Feasibility,
    after: Feasibility,
    ejected: Vec<NodeId>,
) -> Result<Ejection, PopulationError> {
    Ok(Ejection {
        ejected,
        lower_bound: before.deficit_slots().div_ceil(k as u64) as usize,
        tight_bound: {
            let mut frees: Vec<u64> = peers
                .iter()
                .map(|p| {
                    (k as u64).saturating_sub(u64::from(substream_slots(
                        p.uplink_bps,
                        stream_rate_bps,
                        k,
                    )))
                })
                .collect();
            frees.sort_unstable_by(|a, b| b.cmp(a));
            let deficit = before.deficit_slots();
            let mut covered = 0u64;
            frees
                .iter()
                .take_while(|f| {
                    let short = covered < deficit;
                    covered += **f;
                    short
                })
                .count()
        },
        before,
        after,
    })
}

#[cfg(test)]
mod tests {
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

    fn without(peers: &[PeerCapacity], ejected: &[NodeId]) -> Vec<PeerCapacity> {
        peers
            .iter()
            .filter(|p| !ejected.contains(&p.id))
            .copied()
            .collect()
    }

    /// The raw bound of the issue: ceil((N·r − u_s − Σu) / r).
    fn raw_bound(peers: &[PeerCapacity], source: u64, rate: u64) -> u64 {
        let supply = source + peers.iter().map(|p| p.uplink_bps).sum::<u64>();
        (peers.len() as u64 * rate)
            .saturating_sub(supply)
            .div_ceil(rate)
    }

    #[test]
    fn a_feasible_system_ejects_nobody() {
        let peers = vec![peer(1, R, 0), peer(2, 0, 0)];
        let e = eject_exactly_until_feasible(&peers, R, R, 4).expect("valid");
        assert!(e.ejected.is_empty());
        assert_eq!(e.lower_bound, 0);
        assert_eq!(
            e.before,
            Feasibility {
                supply_slots: 8,
                demand_slots: 8
            }
        );
    }

    #[test]
    fn lowest_uplink_goes_first_then_lowest_priority() {
        // Supply r/4 + 3r/4 + 2r (the source) = 3r against a demand of 5r.
        let peers = vec![
            peer(1, R / 4, 0),
            peer(2, 0, 3),
            peer(3, 0, 1),
            peer(4, 0, 2),
            peer(5, 3 * R / 4, 0),
        ];
        let e = eject_exactly_until_feasible(&peers, 2 * R, R, 4).expect("valid");
        assert_eq!(e.ejected, vec![NodeId(3), NodeId(4)]);
        assert_eq!(e.lower_bound, 2);
        assert_eq!(raw_bound(&peers, 2 * R, R), 2);
        assert!(e.after.is_feasible());
    }

    #[test]
    fn protected_nodes_go_only_after_every_unprotected_one_strong_ones_never() {
        // Nodes 3 and 4 protected (premium under a `premium_first` rule): as weak
        // as node 2 and of lower priority, yet node 2 goes; node 6 (slots ≥ k)
        // never does.
        let mut peers = vec![
            peer(1, R / 4, 0),
            peer(2, 0, 3),
            peer(3, 0, 1),
            peer(4, 0, 2),
            peer(5, 3 * R / 4, 0),
            peer(6, 2 * R, 0),
        ];
        peers[2].protected = true;
        peers[3].protected = true;
        let e = eject_exactly_until_feasible(&peers, 2 * R, R, 4).expect("valid");
        assert_eq!(e.ejected, vec![NodeId(2)]);
        assert!(e.after.is_feasible());
        // Protected ones go when nothing else is left to eject.
        peers[0].protected = true;
        peers[1].protected = true;
        peers[4].protected = true;
        let e = eject_exactly_until_feasible(&peers, R, R, 4).expect("valid");
        assert!(e.ejected.iter().all(|id| [1, 2, 3, 4, 5].contains(&id.0)));
        assert!(!e.ejected.contains(&NodeId(6)));
        assert!(e.after.is_feasible());
    }

    #[test]
    fn leaf_only_nodes_count_as_no_supply() {
        // 10 nodes of 0.9r with k = 1 supply nothing: uplink below r/k.
        let peers: Vec<_> = (0..10).map(|i| peer(i, 9 * R / 10, 0)).collect();
        let e = eject_exactly_until_feasible(&peers, 3 * R, R, 1).expect("valid");
        assert_eq!(e.ejected.len(), 7, "only the source's 3 remain served");
        assert_eq!(e.lower_bound, 7);
        assert_eq!(raw_bound(&peers, 3 * R, R), 0, "raw uplink hides the waste");
        let fine = eject_exactly_until_feasible(&peers, 3 * R, R, 10).expect("valid");
        assert!(fine.ejected.is_empty(), "0.9r is 9 of 10 substreams");
    }

    #[test]
    fn bad_input_is_rejected() {
        let peers = vec![peer(1, R, 0), peer(1, R, 0)];
        assert_eq!(
            eject_exactly_until_feasible(&peers, R, R, 2),
            Err(PopulationError::DuplicateNode(NodeId(1)))
        );
        assert_eq!(
            eject_exactly_until_feasible(&[], R, 0, 2),
            Err(PopulationError::ZeroRate)
        );
    }

    #[test]
    fn a_thousand_viewers_with_a_weak_tail() {
        // A third of the viewers at 0.2r, the rest at 1.1r; the source at 20r.
        let peers: Vec<_> = (0..1000u32)
            .map(|i| peer(i, if i % 3 == 0 { R / 5 } else { R * 11 / 10 }, i % 2))
            .collect();
        let e = eject_exactly_until_feasible(&peers, 20 * R, R, 8).expect("valid");
        eprintln!(
            "ejection n=1000 k=8: ejected {} (slot bound {}, raw bound {}), deficit {} slots",
            e.ejected.len(),
            e.lower_bound,
            raw_bound(&peers, 20 * R, R),
            e.before.deficit_slots()
        );
        assert!(e.ejected.len() >= e.lower_bound);
        assert!(e.after.is_feasible());
    }

    /// The fewest nodes whose removal makes `peers` feasible, by brute force.
    fn brute_force_minimum(peers: &[PeerCapacity], source: u64, rate: u64, k: usize) -> usize {
        (0u32..1 << peers.len())
            .filter(|mask| {
                let rest: Vec<_> = (0..peers.len())
                    .filter(|i| mask & (1 << i) == 0)
                    .map(|i| peers[i])
                    .collect();
                feasibility(&rest, source, rate, k)
                    .expect("valid")
                    .is_feasible()
            })
            .map(u32::count_ones)
            .min()
            .expect("ejecting everyone is feasible") as usize
    }

    fn population(max: usize) -> impl Strategy<Value = (Vec<PeerCapacity>, u64, usize)> {
        (
            proptest::collection::vec((0u64..3 * R, 0u32..3), 0..max),
            0u64..4 * R,
            1usize..9,
        )
            .prop_map(|(raw, source, k)| {
                let peers = raw
                    .into_iter()
                    .enumerate()
                    .map(|(i, (u, p))| peer(i as u32, u, p))
                    .collect();
                (peers, source, k)
            })
    }

    proptest! {
        #[test]
        fn ejection_reaches_feasibility_and_no_earlier_stop_would(
            (peers, source, k) in population(120),
        ) {
            let e = eject_exactly_until_feasible(&peers, source, R, k).expect("valid");
            let rest = without(&peers, &e.ejected);
            prop_assert!(feasibility(&rest, source, R, k).expect("valid").is_feasible());
            prop_assert_eq!(e.after, feasibility(&rest, source, R, k).expect("valid"));
            if let Some((&last, earlier)) = e.ejected.split_last() {
                let one_fewer = without(&peers, earlier);
                prop_assert!(one_fewer.iter().any(|p| p.id == last));
                prop_assert!(!feasibility(&one_fewer, source, R, k).expect("valid").is_feasible());
            }
            prop_assert!(e.ejected.len() >= e.lower_bound);
            prop_assert!(e.ejected.len() >= e.tight_bound);
            prop_assert!(e.ejected.len() as u64 >= raw_bound(&peers, source, R));
            for id in &e.ejected {
                let p = peers.iter().find(|p| p.id == *id).expect("a listed node");
                prop_assert!(p.uplink_bps < R, "{} has the stream rate", id);
            }
        }

        #[test]
        fn lowest_uplink_first_ejects_the_fewest_possible(
            (peers, source, k) in population(11),
        ) {
            let e = eject_exactly_until_feasible(&peers, source, R, k).expect("valid");
            prop_assert_eq!(e.ejected.len(), brute_force_minimum(&peers, source, R, k));
        }
    }
}
