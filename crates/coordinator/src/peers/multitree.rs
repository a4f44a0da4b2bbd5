//! The bottom-level multi-tree (D4, C10; seeds 002 and 003): the stream is cut
//! into k substreams (block seq mod k) of rate r/k, one tree each. Every node
//! has exactly one parent per substream; it is interior in one tree and a leaf
//! in the others. A node of uplink u can serve floor(u / (r/k)) children in
//! total, so one below r/k is a leaf everywhere.
//!
//! Built greedily, one tree at a time, highest capacity and priority first:
//! 1. interior sets: tree i takes, from the nodes not yet interior anywhere,
//!    nodes until it can serve its N − 1 children (the source feeds the root):
//!    either the largest that still fits the remaining need, and when none
//!    fits the smallest that covers it ([`Fill::Closest`], little stranded
//!    capacity), or the smallest that covers it at once when there is one
//!    ([`Fill::CoverFirst`], which saves the small nodes for the later trees);
//!    nodes left over go to the tree with the least capacity, keeping spare
//!    room for reassignment (C6). [`Fill::Balanced`] does only the latter, for
//!    every node, largest first. All three are tried and the first that needs
//!    the fewest source slots is kept;
//! 2. the source gives each tree one slot, then covers the trees still short;
//!    the rest of its uplink stays spare;
//! 3. placement, per tree, breadth-first (lowest depth first): the tree's
//!    interior nodes by capacity, then everyone else, each taking the
//!    shallowest parent with a free slot, booked as it is taken.
//!
//! Distance is not modelled here: depth stands for it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use tiercast_proto::NodeId;

/// Upper bound on k (a shard index of D5 groups fits a byte too).
pub const MAX_SUBSTREAMS: usize = 255;

/// What the builder needs to know about a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerCapacity {
    pub id: NodeId,
    pub uplink_bps: u64,
    /// Higher is served first when capacities tie (history).
    pub priority: u32,
    /// Ejected only after every unprotected node (a premium viewer under a
    /// `premium_first` rule, `peers/premium.rs`).
    pub protected: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Parent {
    Source,
    Node(NodeId),
}

/// One substream's tree.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubstreamTree {
    pub parent: BTreeMap<NodeId, Parent>,
    /// Hops from the source (the source's children are at depth 1).
    pub depth: BTreeMap<NodeId, u32>,
    /// Nodes allowed children in this tree.
    pub interior: BTreeSet<NodeId>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MultiTree {
    /// `trees[i]` carries the blocks with `seq mod k == i`.
    pub trees: Vec<SubstreamTree>,
    /// Children each node may serve across all trees: floor(u / (r/k)).
    pub slots: BTreeMap<NodeId, u32>,
    /// Children each node serves across all trees.
    pub children: BTreeMap<NodeId, u32>,
    pub source_slots: u32,
    pub source_children: u32,
}

impl MultiTree {
    /// The tree a node is interior in, if any.
    pub fn interior_tree(&self, id: NodeId) -> Option<usize> {
        self.trees.iter().position(|t| t.interior.contains(&id))
    }
    pub fn spare_slots(&self, id: NodeId) -> u32 {
        let booked = self.children.get(&id).copied().unwrap_or(0);
        self.slots
            .get(&id)
            .copied()
            .unwrap_or(0)
            .saturating_sub(booked)
    }
    pub fn max_depth(&self) -> u32 {
        self.trees
            .iter()
            .flat_map(|t| t.depth.values().copied())
            .max()
            .unwrap_or(0)
    }
}

/// What is wrong with a population handed to the builder or the ejection rule.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PopulationError {
    #[error("a multi-tree needs between 1 and {MAX_SUBSTREAMS} substreams, not {0}")]
    BadSubstreamCount(usize),
    #[error("the stream rate must be positive")]
    ZeroRate,
    #[error("node {0} is listed twice")]
    DuplicateNode(NodeId),
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MultiTreeError {
    #[error(transparent)]
    Population(#[from] PopulationError),
    #[error("{} node(s) found no parent with spare uplink in some substream", unplaced.len())]
    Infeasible { unplaced: BTreeSet<NodeId> },
}

/// Children a node of `uplink_bps` can serve at substream rate r/k: floor(u·k / r).
pub fn substream_slots(uplink_bps: u64, stream_rate_bps: u64, k: usize) -> u32 {
    assert!(stream_rate_bps > 0, "the stream rate is validated first");
    let slots = u128::from(uplink_bps) * k as u128 / u128::from(stream_rate_bps);
    slots.min(u128::from(u32::MAX)) as u32
}

/// The part of `uplink_bps` a node can book when it accepts at most `link_cap`
/// children: each child link carries at least one substream, so more than
/// `link_cap` substreams of uplink would need more links than the node accepts
/// (a node of 14× the rate and a cap of 8 serves 8 substreams, not 56).
pub fn uplink_within_links(uplink_bps: u64, stream_rate_bps: u64, k: usize, link_cap: u32) -> u64 {
    let per_slot = stream_rate_bps.div_ceil(k.max(1) as u64).max(1);
    let most = u128::from(link_cap) * u128::from(per_slot);
    u128::from(uplink_bps).min(most) as u64
}

/// Checks k, the rate and duplicate ids; returns the nodes best first:
/// (uplink, priority) descending, then id.
pub(crate) fn validated_order(
    peers: &[PeerCapacity],
    stream_rate_bps: u64,
    k: usize,
) -> Result<Vec<PeerCapacity>, PopulationError> {
    if k == 0 || k > MAX_SUBSTREAMS {
        return Err(PopulationError::BadSubstreamCount(k));
    }
    if stream_rate_bps == 0 {
        return Err(PopulationError::ZeroRate);
    }
    let mut seen = BTreeSet::new();
    if let Some(dup) = peers.iter().find(|p| !seen.insert(p.id)) {
        return Err(PopulationError::DuplicateNode(dup.id));
    }
    let mut order = peers.to_vec();
    order.sort_by(|a, b| (b.uplink_bps, b.priority, a.id).cmp(&(a.uplink_bps, a.priority, b.id)));
    Ok(order)
}

/// Builds k substream trees over `peers` fed by a source of `source_uplink_bps`.
pub fn build_multitree(
    peers: &[PeerCapacity],
    source_uplink_bps: u64,
    stream_rate_bps: u64,
    k: usize,
) -> Result<MultiTree, MultiTreeError> {
    let order = validated_order(peers, stream_rate_bps, k)?;
    let n = order.len();
    let slots: Vec<u32> = order
        .iter()
        .map(|p| substream_slots(p.uplink_bps, stream_rate_bps, k))
        .collect();
    let (interior_of, capacity) = [Fill::Closest, Fill::CoverFirst, Fill::Balanced]
        .into_iter()
        .map(|rule| choose_interior(&slots, n, k, rule))
        .min_by_key(|(_, capacity)| source_need(capacity, n))
        .expect("three rules");
    let source_slots = substream_slots(source_uplink_bps, stream_rate_bps, k);
    let source_share = share_source(source_slots, &capacity, n);

    let mut trees = vec![SubstreamTree::default(); k];
    let mut children = vec![0u32; n];
    let mut unplaced = BTreeSet::new();
    for (t, tree) in trees.iter_mut().enumerate() {
        let interior_first = (0..n)
            .filter(|&r| interior_of[r] == Some(t))
            .chain((0..n).filter(|&r| interior_of[r] != Some(t)));
        // (parent rank or None for the source, its depth, free slots)
        let mut open: VecDeque<(Option<usize>, u32, u32)> = VecDeque::new();
        open.push_back((None, 0, source_share[t]));
        for rank in interior_first {
            while open.front().is_some_and(|(_, _, free)| *free == 0) {
                open.pop_front();
            }
            let id = order[rank].id;
            let Some((parent, depth, free)) = open.front_mut() else {
                unplaced.insert(id);
                continue;
            };
            *free -= 1;
            let (parent, depth) = (*parent, *depth + 1);
            tree.parent.insert(
                id,
                parent.map_or(Parent::Source, |p| Parent::Node(order[p].id)),
            );
            tree.depth.insert(id, depth);
            if let Some(p) = parent {
                children[p] += 1;
            }
            if interior_of[rank] == Some(t) {
                tree.interior.insert(id);
                open.push_back((Some(rank), depth, slots[rank]));
            }
        }
    }
    if !unplaced.is_empty() {
        return Err(MultiTreeError::Infeasible { unplaced });
    }
    let source_children = trees
        .iter()
        .flat_map(|t| t.parent.values())
        .filter(|p| **p == Parent::Source)
        .count() as u32;
    Ok(MultiTree {
        trees,
        slots: order.iter().map(|p| p.id).zip(slots).collect(),
        children: order.iter().map(|p| p.id).zip(children).collect(),
        source_slots,
        source_children,
    })
}

/// How a tree picks its next interior node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fill {
    /// The largest that fits the remaining need, else the smallest that covers it.
    Closest,
    /// The smallest that covers the remaining need, else the largest.
    CoverFirst,
    /// No tree-at-a-time phase: each node, largest first, to the emptiest tree.
    Balanced,
}

/// For each node (by rank), the one tree it is interior in (None for nodes
/// without a slot), and each tree's capacity. Trees are filled one at a time
/// to N − 1 children.
fn choose_interior(
    slots: &[u32],
    n: usize,
    k: usize,
    rule: Fill,
) -> (Vec<Option<usize>>, Vec<u64>) {
    let mut interior_of = vec![None; slots.len()];
    // (slots, usize::MAX − rank): the greatest key of a capacity is its best rank.
    let mut pool: BTreeSet<(u32, usize)> = slots
        .iter()
        .enumerate()
        .filter(|(_, s)| **s > 0)
        .map(|(rank, s)| (*s, usize::MAX - rank))
        .collect();
    let mut capacity = vec![0u64; k];
    let need = n.saturating_sub(1) as u64;
    let one_at_a_time = if rule == Fill::Balanced { 0 } else { k };
    for (t, tree_capacity) in capacity.iter_mut().enumerate().take(one_at_a_time) {
        while *tree_capacity < need {
            let missing = u32::try_from(need - *tree_capacity).unwrap_or(u32::MAX);
            let fits = pool.range(..=(missing, usize::MAX)).next_back().copied();
            let cover = || {
                let (smallest_cover, _) = *pool.range((missing, 0)..).next()?;
                pool.range(..=(smallest_cover, usize::MAX))
                    .next_back()
                    .copied()
            };
            let pick = match rule {
                Fill::Closest => fits.or_else(cover),
                Fill::CoverFirst | Fill::Balanced => cover().or(fits),
            };
            let Some(key) = pick else { break };
            pool.remove(&key);
            interior_of[usize::MAX - key.1] = Some(t);
            *tree_capacity += u64::from(key.0);
        }
    }
    // Left-overs, largest first, to the tree with the least capacity.
    while let Some(key) = pool.pop_last() {
        let t = (0..k).min_by_key(|&t| (capacity[t], t)).expect("k >= 1");
        interior_of[usize::MAX - key.1] = Some(t);
        capacity[t] += u64::from(key.0);
    }
    (interior_of, capacity)
}

/// Source slots the trees need: one per root, plus what their interior nodes lack.
fn source_need(capacity: &[u64], n: usize) -> u64 {
    if n == 0 {
        return 0;
    }
    capacity
        .iter()
        .map(|c| (n as u64).saturating_sub(*c).max(1))
        .sum()
}

/// The source's slots per tree: one for each root, then the shortfalls, in
/// tree order; the rest stays spare.
fn share_source(source_slots: u32, capacity: &[u64], n: usize) -> Vec<u32> {
    let mut left = source_slots;
    let mut share = vec![0u32; capacity.len()];
    if n == 0 {
        return share;
    }
    for s in share.iter_mut() {
        let give = left.min(1);
        *s += give;
        left -= give;
    }
    for (t, s) in share.iter_mut().enumerate() {
        let short = (n as u64).saturating_sub(capacity[t] + u64::from(*s));
        let give = u32::try_from(short).unwrap_or(u32::MAX).min(left);
        *s += give;
        left -= give;
    }
    share
}

#[cfg(test)]
mod tests;
