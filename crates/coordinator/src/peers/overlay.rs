//! What the coordinator keeps of one channel's peer overlay (D2, D4): every member
//! with its uplink in substream slots (floor(u·k/r)), the slots booked, the tree it
//! is interior in, its parent per substream, and for each parent its children per
//! tree. An index of spare slots per tree and region serves parent selection (C4,
//! C6: "a priority queue by spare uplink").
//!
//! A member's depth in each tree is remembered once walked (`Member::depth_memo`)
//! and trusted while the tree's generation (`depth_gen`) has not moved: attaching
//! or detaching a member with no children of its own forgets its depth alone;
//! anything that moves a subtree (a link of a member with children, released
//! children, a member on or off the top level, parents rewritten by a rebuild)
//! moves the generation and so forgets every depth in that tree. Parent selection
//! reads the depth of every candidate it looks at, and at 10⁶ peers walking each
//! path up through the member map was most of a join's cost. Kept with the
//! children maps as well: whether a member has children in a tree
//! (`Member::kid_trees`) and how many of its children there are bottom peers
//! without children of their own (`Member::leaves`), which the search for a
//! shallow leaf (`insert_shallow`) reads instead of every child's entries.
//! [`PeerOverlay::check`] compares every remembered depth with a fresh walk and
//! both with the children maps.

pub use super::member::{Member, MemberKind};
use super::middle::RegionPlan;
use crate::multitree::substream_slots;
use crate::registry::RegionId;
use std::cell::Cell;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use tiercast_proto::{ChannelDesc, CodedSet, Feed, NodeId, PeerFeed, SubstreamSet, Timestamp};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerStats {
    pub joins: u64,
    pub leaves: u64,
    pub reassignments: u64,
    pub preemptions: u64,
    pub full_recomputations: u64,
    pub partial_recomputations: u64,
    pub congested_links: u64,
    pub ejected: u64,
    /// Summed over ejections: the least any choice of nodes could have ejected.
    pub ejected_lower_bound: u64,
    /// Of `ejected`: members that gave their place to a newcomer with more
    /// uplink while the overlay was full ([`super::admission`]); the number
    /// carried stays the same, so the lower bound does not count them.
    pub swapped_out: u64,
    /// Joiners placed in a tree short of slots by a top member's slot another
    /// tree lent ([`super::lend`]).
    pub top_slots_lent: u64,
    pub assignments_sent: u64,
    /// D1: waypoints retired because their region has preferred peers, and recalled.
    pub waypoints_retired: u64,
    pub waypoints_recalled: u64,
    /// D3: top members that gave up bottom children so a promoted member could
    /// hang in the push tree.
    pub push_room_bumps: u64,
    /// D6: times the calm top level switched from flooding to a plain tree.
    pub top_tree_switches: u64,
    /// D7: peers taken back from their reported links ([`super::rejoin`]).
    pub adopted: u64,
    /// C8: bottom clusters split and merged, members re-labelled by them, and
    /// `ClusterAssigned` answers sent ([`super::clusters`]).
    pub cluster_splits: u64,
    pub cluster_merges: u64,
    pub cluster_moves: u64,
    pub clusters_told: u64,
}

/// Members with spare slots, most spare first.
pub(crate) type SpareSet = BTreeSet<(Reverse<u32>, NodeId)>;
/// Where a member sits in the spare index: its tree (None: top), region and key.
pub(crate) type IndexKey = (Option<u8>, RegionId, (Reverse<u32>, NodeId));

pub struct PeerOverlay {
    pub desc: ChannelDesc,
    pub k: u8,
    pub rate_bps: u64,
    /// Fraction of each uplink left unbooked (PeerConfig::uplink_headroom).
    pub headroom: f64,
    /// Fraction of a top member's booked uplink kept for repairs.
    pub top_repair_share: f64,
    /// Child links a peer accepts (PeerConfig::peer_link_cap), and the links a
    /// top member keeps for its mesh neighbours ([`super::links`]).
    pub link_cap: u32,
    pub mesh_links: u32,
    pub members: super::member_map::MemberMap,
    /// Per tree: parent → children (bottom trees; top members feed any tree).
    pub children: Vec<BTreeMap<NodeId, BTreeSet<NodeId>>>,
    /// Top push tree: parent → children (each takes k slots).
    pub top_children: BTreeMap<NodeId, BTreeSet<NodeId>>,
    /// Top members in mesh order (the origin first).
    pub top_order: Vec<NodeId>,
    /// The c-connected mesh of the top level.
    pub mesh: BTreeMap<NodeId, BTreeSet<NodeId>>,
    /// Per tree, per region: interior members with spare slots, most spare first.
    pub(crate) spare: Vec<BTreeMap<RegionId, SpareSet>>,
    /// Per region: top members with spare slots (they feed any tree).
    pub(crate) top_spare: BTreeMap<RegionId, SpareSet>,
    /// Top member → the bottom members whose repair link it is (their `lazy`),
    /// kept with the spare index so a join never scans every member.
    pub(crate) repair_of: BTreeMap<NodeId, BTreeSet<NodeId>>,
    /// Slots of every member, and how many members are on the top level, kept
    /// with the spare index: the admission check of every join reads them.
    pub(crate) slots_total: u64,
    pub(crate) top_members: usize,
    /// Bottom peers that give less than they take (slots < k), weakest first:
    /// the one a stronger newcomer replaces when the overlay is full.
    pub(crate) weakest: BTreeSet<(u32, NodeId)>,
    /// Slots of the interior members of each tree.
    pub tree_capacity: Vec<u64>,
    /// Members still missing a parent in some tree.
    pub pending: BTreeSet<NodeId>,
    /// Since when `pending` has not been empty (set at the periodic retry).
    pub pending_since: Option<Timestamp>,
    /// Peers turned away because the overlay cannot carry them (C6).
    pub ejected: BTreeSet<NodeId>,
    /// Ejected peers turned away since they were ejected (their retry wait doubles).
    pub turned_away: BTreeMap<NodeId, u32>,
    /// When each peer ejected more than once was last ejected, and how many times
    /// it was (held out for a minute after its second ejection on).
    pub ejected_at: BTreeMap<NodeId, (Timestamp, u32)>,
    /// Members whose parent list changed and must be told.
    pub(crate) dirty: BTreeSet<NodeId>,
    pub changes_since_full: u64,
    /// The deepest a link has been made since the last full recomputation: a
    /// child's depth in its tree when attached ([`super::rebuild`]'s depth
    /// trigger). Moves of a subtree deepen it unseen until the next attach below.
    pub deepest_link: u32,
    /// `deepest_link` right after the last full recomputation: as deep as the
    /// population's own best build goes.
    pub built_depth: u32,
    pub last_full: Timestamp,
    pub last_top_review: Timestamp,
    pub stats: PeerStats,
    /// Members removed since the last heartbeat compared (C2): the network
    /// monitor forgets their links' lag counts before the next comparison.
    pub(crate) departed: BTreeSet<NodeId>,
    /// Members blamed (history lowered) since the last review.
    pub(crate) blamed: BTreeSet<NodeId>,
    /// D6: the top level runs its push tree alone (no lazy links); it has been
    /// calm since `top_calm_since`; `top_disturbed` marks a change since the
    /// last review ([`super::top_algorithm`]).
    pub top_tree: bool,
    pub(crate) top_calm_since: Timestamp,
    pub(crate) top_disturbed: bool,
    /// Per region: the middle level's redundancy and measured loss (D5, D6).
    pub plans: BTreeMap<RegionId, RegionPlan>,
    /// Recovery substreams: top member → (middle member, recovery index).
    pub recovery_children: BTreeMap<NodeId, BTreeSet<(NodeId, u8)>>,
    /// D1: waypoints out of the overlay while their region has preferred peers.
    pub standby: BTreeMap<NodeId, super::waypoints::StandbyWaypoint>,
    /// Waypoints just retired, to be told to drop their links.
    pub(crate) retired: Vec<NodeId>,
    /// C7: members a full recomputation moved, told in batches ([`super::batches`]).
    pub held: super::batches::HeldAssignments,
    /// Registered peers still receiving on links of this overlay but not members,
    /// since when, with what they reported: waiting to be taken back
    /// ([`super::rejoin`], [`super::restore`]).
    pub(crate) rejoining: super::restore::Rejoins,
    /// Per tree: the generation a remembered depth must carry to be trusted
    /// (never 0; see [`Self::depth`]).
    pub(crate) depth_gen: Vec<u32>,
    /// Caps on region pairs and the links booked against them ([`super::caps`]).
    pub(crate) caps: super::caps::RegionCaps,
    /// Per region reached only across caps: when its join bucket was last
    /// counted and the bits left in it ([`super::cap_joins`]).
    pub(crate) cap_joins: BTreeMap<RegionId, (Timestamp, f64)>,
    /// The `premium_first` rule in force for this channel: `Some(preempt)`
    /// ([`super::premium`]).
    pub(crate) premium_first: Option<bool>,
    /// The bottom clusters' directory and when they split and merge (C1, C8;
    /// [`super::clusters`]).
    pub(crate) clusters: crate::content_directory::clusters::ClusterDirectory,
    pub(crate) cluster_rules: crate::content_directory::clusters::ClusterRules,
}

/// What [`PeerOverlay::depth`] adds for a member whose path does not reach the
/// top level (cut off, or not placed yet).
pub(crate) const UNLINKED_DEPTH: u32 = 1024;

impl PeerOverlay {
    pub fn new(desc: ChannelDesc, k: u8, rate_bps: u64, headroom: f64, now: Timestamp) -> Self {
        let trees = usize::from(k.max(1));
        PeerOverlay {
            desc,
            k: k.max(1),
            rate_bps: rate_bps.max(1),
            headroom: headroom.clamp(0.0, 0.9),
            top_repair_share: 0.0,
            link_cap: u32::MAX,
            mesh_links: 0,
            members: super::member_map::MemberMap::new(),
            children: vec![BTreeMap::new(); trees],
            top_children: BTreeMap::new(),
            top_order: Vec::new(),
            mesh: BTreeMap::new(),
            spare: vec![BTreeMap::new(); trees],
            top_spare: BTreeMap::new(),
            repair_of: BTreeMap::new(),
            slots_total: 0,
            top_members: 0,
            weakest: BTreeSet::new(),
            tree_capacity: vec![0; trees],
            pending: BTreeSet::new(),
            ejected: BTreeSet::new(),
            turned_away: BTreeMap::new(),
            ejected_at: BTreeMap::new(),
            dirty: BTreeSet::new(),
            changes_since_full: 0,
            deepest_link: 0,
            built_depth: 0,
            pending_since: None,
            last_full: now,
            last_top_review: now,
            stats: PeerStats::default(),
            departed: BTreeSet::new(),
            blamed: BTreeSet::new(),
            top_tree: false,
            top_calm_since: now,
            top_disturbed: false,
            plans: BTreeMap::new(),
            recovery_children: BTreeMap::new(),
            standby: BTreeMap::new(),
            retired: Vec::new(),
            held: Default::default(),
            rejoining: Default::default(),
            depth_gen: vec![1; trees],
            caps: Default::default(),
            cap_joins: BTreeMap::new(),
            premium_first: None,
            clusters: Default::default(),
            cluster_rules: crate::content_directory::clusters::ClusterRules {
                split_above: 0,
                merge_below: 0,
                ways: 2,
            },
        }
    }

    /// Substream children an uplink can feed, after the headroom.
    pub fn slots_for(&self, uplink_bps: u64) -> u32 {
        substream_slots(self.usable(uplink_bps), self.rate_bps, usize::from(self.k))
            .min(self.link_cap)
    }

    /// Substream children of a member on the top level (repairs keep a share).
    pub fn top_slots_for(&self, uplink_bps: u64) -> u32 {
        let u = (self.usable(uplink_bps) as f64 * (1.0 - self.top_repair_share)) as u64;
        substream_slots(u, self.rate_bps, usize::from(self.k)).min(self.top_link_slots())
    }

    /// Slots of a member as it is now (top or bottom).
    pub(crate) fn slots_of(&self, top: bool, uplink_bps: u64) -> u32 {
        if top {
            self.top_slots_for(uplink_bps)
        } else {
            self.slots_for(uplink_bps)
        }
    }

    /// The part of an uplink the overlay books.
    pub fn usable(&self, uplink_bps: u64) -> u64 {
        let u = (uplink_bps as f64 * (1.0 - self.headroom)) as u64;
        crate::multitree::uplink_within_links(u, self.rate_bps, usize::from(self.k), self.link_cap)
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn bottom_count(&self) -> usize {
        self.members.len() - self.top_members
    }

    /// Slots of every member (top and bottom).
    pub(crate) fn slots_total(&self) -> u64 {
        self.slots_total
    }

    pub(crate) fn is_weak(&self, m: &Member) -> bool {
        !m.top && m.kind == MemberKind::Peer && m.slots < u32::from(self.k)
    }

    /// Whether `id` is a bottom peer that gives less than it takes.
    pub(crate) fn weakest_contains(&self, id: NodeId) -> bool {
        self.members
            .get(&id)
            .is_some_and(|m| self.weakest.contains(&(m.slots, id)))
    }

    /// Every substream link of the bottom trees: (child, tree, parent).
    pub(crate) fn bottom_links(&self) -> impl Iterator<Item = (NodeId, u8, NodeId)> + '_ {
        self.members.iter().flat_map(|(id, m)| {
            m.parents
                .iter()
                .enumerate()
                .filter_map(move |(t, p)| Some((*id, t as u8, (*p)?)))
        })
    }

    /// Bottom peers that give less than they take, weakest first.
    pub(crate) fn weakest_iter(&self) -> impl Iterator<Item = (u32, NodeId)> + '_ {
        self.weakest.iter().copied()
    }

    /// Adds a member (not placed yet).
    pub(crate) fn insert_member(&mut self, mut m: Member) {
        let id = m.info.id;
        m.depth_memo = super::per_tree::PerTree::filled(usize::from(self.k), Cell::new(0));
        m.kid_trees = 0;
        m.leaves = super::per_tree::PerTree::filled(usize::from(self.k), 0);
        if m.kind == MemberKind::Peer {
            m.bucket = crate::content_directory::clusters::prefix_bucket(&m.info.addr);
            m.cluster = self.clusters.join(m.region, m.bucket);
        }
        if let Some(old) = self.members.insert(id, m) {
            self.leave_cluster(&old);
        }
        self.index(id);
    }

    /// Takes a member out of the indexes, the map and its cluster.
    pub(crate) fn remove_member(&mut self, id: NodeId) -> Option<Member> {
        self.unindex(id);
        let m = self.members.remove(&id)?;
        self.leave_cluster(&m);
        Some(m)
    }

    fn leave_cluster(&mut self, m: &Member) {
        if m.kind == MemberKind::Peer {
            self.clusters.leave(m.region, m.bucket);
        }
    }

    /// Changes a member's booking (or slots, top flag, interior tree, repair
    /// link) keeping the indexes in step: a bottom member's `lazy` is changed
    /// here only, never in place.
    pub(crate) fn update(&mut self, id: NodeId, f: impl FnOnce(&mut Member)) {
        self.unindex(id);
        let before = self.members.get(&id).map(|m| (m.interior, m.slots, m.top));
        let mut moved = None;
        if let Some(m) = self.members.get_mut(&id) {
            let (kind, top, parents) = (m.kind, m.top, m.parents.clone());
            f(m);
            if m.kind != kind || m.top != top || m.parents != parents {
                moved = Some((kind, top, parents));
            }
        }
        if let Some((kind, top, parents)) = moved {
            // On or off the top level, or parents rewritten (a rebuild): every
            // depth below it may change, and its share in its parents' leaves.
            self.forget_all_depths();
            for t in 0..self.k {
                let was = parents.get(usize::from(t)).copied().flatten();
                let kids = self
                    .members
                    .get(&id)
                    .is_some_and(|m| self.has_kids(id, m, t));
                if let Some(p) = was.filter(|_| kind == MemberKind::Peer && !top && !kids) {
                    self.add_leaf(p, t, false);
                }
                self.leaf_share(id, t, true);
            }
        }
        let after = self.members.get(&id).map(|m| (m.interior, m.slots, m.top));
        if before != after {
            if let Some((Some(t), slots, false)) = before {
                self.tree_capacity[usize::from(t)] -= u64::from(slots);
            }
            if let Some((Some(t), slots, false)) = after {
                self.tree_capacity[usize::from(t)] += u64::from(slots);
            }
        }
        self.index(id);
    }

    // ---- links ----

    /// `child` takes `parent` in `tree` (books one slot).
    pub(crate) fn attach(&mut self, child: NodeId, tree: u8, parent: NodeId) {
        // A parent not yet linked to the top level (a rebuild attaching its
        // subtree first) has no depth yet: its sentinel (1024 +) is not counted.
        let depth = self.depth(parent, tree).saturating_add(1);
        if depth < UNLINKED_DEPTH {
            self.note_link_depth(child, tree, depth);
        }
        self.moving(child, tree);
        self.update(parent, |m| m.used += 1);
        let added = self.children[usize::from(tree)]
            .entry(parent)
            .or_default()
            .insert(child);
        if added {
            self.mark_kids(parent, tree, true);
        }
        self.leaf_share(child, tree, false);
        if let Some(m) = self.members.get_mut(&child) {
            m.parents[usize::from(tree)] = Some(parent);
        }
        self.leaf_share(child, tree, true);
        self.note_link(child, tree, parent, true);
        self.dirty.insert(child);
    }

    /// `child` drops its parent in `tree` (frees the slot).
    pub(crate) fn detach(&mut self, child: NodeId, tree: u8) -> Option<NodeId> {
        if self.members.get(&child).is_some_and(|m| {
            m.parents
                .get(usize::from(tree))
                .copied()
                .flatten()
                .is_some()
        }) {
            self.moving(child, tree);
        }
        self.leaf_share(child, tree, false);
        let parent = self
            .members
            .get_mut(&child)?
            .parents
            .get_mut(usize::from(tree))?
            .take()?;
        self.note_link(child, tree, parent, false);
        if let Some(set) = self.children[usize::from(tree)].get_mut(&parent) {
            set.remove(&child);
            if set.is_empty() {
                self.children[usize::from(tree)].remove(&parent);
                self.mark_kids(parent, tree, false);
            }
        }
        self.update(parent, |m| m.used = m.used.saturating_sub(1));
        self.dirty.insert(child);
        Some(parent)
    }

    /// Whether `id` (whose entry `m` the caller holds) has children in `tree`.
    pub(crate) fn has_kids(&self, id: NodeId, m: &Member, tree: u8) -> bool {
        match 1u64.checked_shl(u32::from(tree)) {
            Some(bit) => m.kid_trees & bit != 0,
            None => self.children[usize::from(tree)].contains_key(&id),
        }
    }

    /// Keeps `Member::kid_trees` with `children` (a first child, the last gone).
    /// A leaf no more, or again: its share in its parent's leaves follows.
    fn mark_kids(&mut self, id: NodeId, tree: u8, any: bool) {
        self.leaf_share(id, tree, false);
        if let Some(bit) = 1u64.checked_shl(u32::from(tree)) {
            if let Some(m) = self.members.get_mut(&id) {
                if any {
                    m.kid_trees |= bit;
                } else {
                    m.kid_trees &= !bit;
                }
            }
        }
        self.leaf_share(id, tree, true);
    }

    /// Whether `id` (entry `m`) is one of its parent's `Member::leaves` in
    /// `tree`: a bottom peer without children there.
    pub(crate) fn counts_as_leaf(&self, id: NodeId, m: &Member, tree: u8) -> bool {
        m.kind == MemberKind::Peer && !m.top && !self.has_kids(id, m, tree)
    }

    /// Adds (`add`) or takes back `id`'s share in its parent's leaves in `tree`:
    /// called around every change of its parent there, its children there, or
    /// its kind or top flag.
    fn leaf_share(&mut self, id: NodeId, tree: u8, add: bool) {
        let Some(m) = self.members.get(&id) else {
            return;
        };
        let Some(p) = m.parents.get(usize::from(tree)).copied().flatten() else {
            return;
        };
        if self.counts_as_leaf(id, m, tree) {
            self.add_leaf(p, tree, add);
        }
    }

    fn add_leaf(&mut self, parent: NodeId, tree: u8, add: bool) {
        if let Some(n) = self
            .members
            .get_mut(&parent)
            .and_then(|m| m.leaves.get_mut(usize::from(tree)))
        {
            *n = if add { *n + 1 } else { n.saturating_sub(1) };
        }
    }

    /// Every bottom tree emptied (a rebuild; parents are cleared by the caller).
    pub(crate) fn clear_children(&mut self) {
        for c in self.children.iter_mut() {
            c.clear();
        }
        self.forget_bottom_links();
        for m in self.members.values_mut_unordered() {
            m.kid_trees = 0;
            m.leaves.iter_mut().for_each(|n| *n = 0);
        }
        self.forget_all_depths();
        // Members still linked (none after a rebuild's clearing) count again.
        let linked: Vec<(NodeId, u8)> = self.bottom_links().map(|(c, t, _)| (c, t)).collect();
        for (id, t) in linked {
            self.leaf_share(id, t, true);
        }
    }

    /// Takes `id`'s children out of every tree (their parent in that tree is
    /// cleared, nothing is unbooked: `id` is leaving its place); returns them with
    /// the tree each must be re-homed in.
    pub(crate) fn release_children(&mut self, id: NodeId) -> Vec<(NodeId, u8)> {
        let mut orphans = Vec::new();
        for t in 0..self.k {
            let Some(kids) = self.children[usize::from(t)].remove(&id) else {
                continue;
            };
            self.forget_depths(t);
            for c in kids {
                self.leaf_share(c, t, false);
                if let Some(cm) = self.members.get_mut(&c) {
                    cm.parents[usize::from(t)] = None;
                }
                self.note_link(c, t, id, false);
                orphans.push((c, t));
            }
            self.mark_kids(id, t, false);
        }
        orphans
    }

    /// Takes top member `id` off its push parent, freeing the k slots it booked.
    pub(crate) fn drop_push_link(&mut self, id: NodeId) {
        let Some(parent) = self.members.get(&id).and_then(|m| m.eager) else {
            return;
        };
        if self
            .top_children
            .get_mut(&parent)
            .is_some_and(|s| s.remove(&id))
        {
            let k = u32::from(self.k);
            self.update(parent, |m| m.used = m.used.saturating_sub(k));
        }
    }

    /// The parent list a member is told (its `ParentSet`, C1).
    pub fn assignment(&self, id: NodeId) -> Option<Vec<PeerFeed>> {
        let m = self.members.get(&id)?;
        let mut feeds: BTreeMap<NodeId, Feed> = BTreeMap::new();
        if m.top {
            if let Some(e) = m.eager {
                feeds.insert(e, Feed::All);
            }
        } else {
            // Substream t from parents[t]; a middle member's links are coded and
            // also carry its recovery substreams k+j (D5) — coded even with n = 0,
            // so it measures the loss n is chosen from.
            let n = m.recovery.len() as u8;
            let originals = m.parents.iter().enumerate().map(|(t, p)| (t as u8, *p));
            let recovery = m.recovery.iter().enumerate();
            let links = originals.chain(recovery.map(|(j, p)| (self.k + j as u8, *p)));
            for (i, p) in links {
                let Some(p) = p else { continue };
                let feed = match feeds.get(&p) {
                    Some(Feed::Coded(c)) => Feed::Coded(c.with(i)),
                    Some(Feed::Substreams(s)) => Feed::Substreams(s.with(i)),
                    _ if m.middle => Feed::Coded(
                        CodedSet::empty(self.k, n)
                            .unwrap_or(CodedSet {
                                k: self.k,
                                n: 0,
                                mask: 0,
                            })
                            .with(i),
                    ),
                    _ => Feed::Substreams(SubstreamSet::single(self.k, i).expect("t < k ≤ 64")),
                };
                feeds.insert(p, feed);
            }
        }
        for l in &m.lazy {
            feeds.entry(*l).or_insert(Feed::Lazy);
        }
        Some(
            feeds
                .into_iter()
                .filter_map(|(p, feed)| {
                    let info = tiercast_proto::PeerInfo::clone(&self.members.get(&p)?.info);
                    Some(PeerFeed { peer: info, feed })
                })
                .collect(),
        )
    }

    /// Members told their parents since the last call, with their assignment.
    pub(crate) fn take_dirty(&mut self) -> Vec<(NodeId, Vec<PeerFeed>)> {
        let dirty = std::mem::take(&mut self.dirty);
        dirty
            .into_iter()
            .filter(|id| {
                self.members
                    .get(id)
                    .is_some_and(|m| m.kind != MemberKind::Origin)
            })
            .filter_map(|id| Some((id, self.assignment(id)?)))
            .collect()
    }
}
