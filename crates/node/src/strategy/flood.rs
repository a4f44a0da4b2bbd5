//! Flooding with duplicate elimination on a c-connected mesh (D3, seed 003): a
//! node that receives a block it has not seen from neighbour N sends a copy to
//! each neighbour but N, and drops the copies it has seen. On a c-connected mesh
//! every block reaches every node even when c−1 nodes fail at once.
//!
//! [`FloodState`] is one node's side (a bounded seen-window and its counters);
//! [`c_connected_mesh`] builds the top-level mesh as a Harary graph H(c, n)
//! over a shuffled order, which is c-connected by construction.

use rand::seq::SliceRandom;
use rand::Rng;
use std::collections::{BTreeMap, BTreeSet};
use tiercast_proto::NodeId;

/// What to do with a block that reached this node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FloodDecision {
    /// First copy: keep it and send it to these neighbours.
    Forward(Vec<NodeId>),
    /// Seen already: drop it.
    Duplicate,
    /// Older than the seen-window: drop it (it cannot be told from a duplicate).
    Stale,
}

/// Counters of one node's flooding, for the `duplicate_factor` metric.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FloodStats {
    /// Copies received from neighbours or originated here.
    pub received: u64,
    /// Distinct blocks accepted.
    pub fresh: u64,
    pub duplicates: u64,
    pub stale: u64,
    /// Copies this node sent on.
    pub copies_sent: u64,
}

impl FloodStats {
    /// Copies received per distinct block (1.0 when nothing was ever duplicated).
    pub fn duplicate_factor(&self) -> f64 {
        if self.fresh == 0 {
            return 0.0;
        }
        self.received as f64 / self.fresh as f64
    }
}

/// One node's flooding state: its mesh neighbours and the seqs it has seen.
#[derive(Debug)]
pub struct FloodState {
    neighbours: BTreeSet<NodeId>,
    /// Slot `seq % len` holds the last seq seen there; a seq inside the window
    /// maps to a slot no other seq of the window shares.
    seen: Vec<Option<u64>>,
    highest: Option<u64>,
    stats: FloodStats,
}

impl FloodState {
    /// `window`: how many seqs back duplicates are still recognised (> 0).
    pub fn new(neighbours: impl IntoIterator<Item = NodeId>, window: usize) -> Self {
        assert!(window > 0, "the seen-window must hold at least one seq");
        FloodState {
            neighbours: neighbours.into_iter().collect(),
            seen: vec![None; window],
            highest: None,
            stats: FloodStats::default(),
        }
    }

    pub fn neighbours(&self) -> &BTreeSet<NodeId> {
        &self.neighbours
    }
    pub fn set_neighbours(&mut self, neighbours: impl IntoIterator<Item = NodeId>) {
        self.neighbours = neighbours.into_iter().collect();
    }
    pub fn stats(&self) -> FloodStats {
        self.stats
    }

    /// A block `seq` arrived from `from` (a neighbour, or a former one).
    pub fn receive(&mut self, from: NodeId, seq: u64) -> FloodDecision {
        self.accept(Some(from), seq)
    }

    /// A block enters the mesh at this node (from the origin): every neighbour gets it.
    pub fn originate(&mut self, seq: u64) -> FloodDecision {
        self.accept(None, seq)
    }

    fn accept(&mut self, from: Option<NodeId>, seq: u64) -> FloodDecision {
        self.stats.received += 1;
        let window = self.seen.len() as u64;
        if self
            .highest
            .is_some_and(|h| seq.saturating_add(window) <= h)
        {
            self.stats.stale += 1;
            return FloodDecision::Stale;
        }
        let slot = (seq % window) as usize;
        if self.seen[slot] == Some(seq) {
            self.stats.duplicates += 1;
            return FloodDecision::Duplicate;
        }
        self.seen[slot] = Some(seq);
        self.highest = Some(self.highest.map_or(seq, |h| h.max(seq)));
        self.stats.fresh += 1;
        let to: Vec<NodeId> = self
            .neighbours
            .iter()
            .copied()
            .filter(|n| Some(*n) != from)
            .collect();
        self.stats.copies_sent += to.len() as u64;
        FloodDecision::Forward(to)
    }
}

/// A mesh over `nodes` where each node has at least `c` neighbours (all others
/// when there are no more than c+1 nodes) and which stays connected after any
/// c−1 nodes are removed: the Harary graph H(c, n) over a shuffled order. c = 1
/// gets a ring (2-connected), since H(1, n) would be a mere path.
pub fn c_connected_mesh<R: Rng + ?Sized>(
    nodes: &[NodeId],
    c: usize,
    rng: &mut R,
) -> BTreeMap<NodeId, BTreeSet<NodeId>> {
    let mut order: Vec<NodeId> = nodes
        .iter()
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    order.shuffle(rng);
    let n = order.len();
    let mut mesh: BTreeMap<NodeId, BTreeSet<NodeId>> =
        order.iter().map(|&id| (id, BTreeSet::new())).collect();
    if c == 0 || n < 2 {
        return mesh;
    }
    let mut link = |a: usize, b: usize| {
        let (a, b) = (order[a % n], order[b % n]);
        if a != b {
            mesh.get_mut(&a).expect("node of the mesh").insert(b);
            mesh.get_mut(&b).expect("node of the mesh").insert(a);
        }
    };
    if c + 1 >= n {
        for a in 0..n {
            for b in a + 1..n {
                link(a, b);
            }
        }
        return mesh;
    }
    let c = c.max(2);
    for i in 0..n {
        for d in 1..=c / 2 {
            link(i, i + d);
        }
    }
    if c % 2 == 1 {
        // Harary's odd case: vertex i also joins the one ⌈n/2⌉ ahead, for the
        // first ⌈n/2⌉ vertices (diameters for even n; vertex 0 gets one more
        // link for odd n).
        let half = n.div_ceil(2);
        for i in 0..half {
            link(i, i + half);
        }
    }
    mesh
}

#[cfg(test)]
mod tests;
