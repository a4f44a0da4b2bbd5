//! A member of a channel's peer overlay as the coordinator keeps it (D2, D4):
//! what it is, its uplink in substream slots and what is booked of them, the
//! tree it is interior in, its parents, its links on the top and middle levels,
//! its history and its bottom cluster (C8), and the memos the overlay keeps with
//! it (depths, leaves; see [`super::overlay`]).

use super::lazy_links::LazyLinks;
use super::per_tree::PerTree;
use crate::registry::RegionId;
use std::cell::Cell;
use std::sync::Arc;
use tiercast_proto::{NodeId, PeerInfo, Timestamp};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum MemberKind {
    Origin,
    /// A relay the operator deployed: a waypoint of the top level (D1).
    Waypoint,
    Peer,
}

#[derive(Clone, Debug)]
pub struct Member {
    /// The registry's record of its ids and addresses (shared, not a copy).
    pub info: Arc<PeerInfo>,
    pub region: RegionId,
    pub kind: MemberKind,
    pub uplink_bps: u64,
    /// Children it can feed, in substreams of rate r/k.
    pub slots: u32,
    pub used: u32,
    /// On the top level: holds the whole stream, feeds any tree.
    pub top: bool,
    /// The bottom tree it may have children in.
    pub interior: Option<u8>,
    pub joined_at: Timestamp,
    /// History (C4): lowered by one in each review period in which a downgrade or
    /// congestion was blamed on it — however many children blamed it: a parent
    /// starved from above is reported by each of its children at once — and
    /// healed by one after a period without blame.
    pub history: i32,
    /// Bottom member: its parent in each substream tree.
    pub parents: PerTree<Option<NodeId>>,
    /// Top member: its push parent on the mesh (None for the origin).
    pub eager: Option<NodeId>,
    /// Lazy links: mesh neighbours (top), or one repair link (bottom).
    pub lazy: LazyLinks,
    /// In its region's middle cluster (D2, D5).
    pub middle: bool,
    /// Middle member: its parent for each of the region's n recovery substreams.
    pub recovery: Vec<Option<NodeId>>,
    /// Last heartbeat's (shards expected, shards received, groups rebuilt);
    /// `None` reads (0, 0, 0). Boxed: only middle members' are not all 0, and
    /// inline they took 24 B of every member (X7's memory per node).
    pub shard_counters: Option<Box<(u64, u64, u64)>>,
    /// Not known to be starving: false only for a peer that asked to join with a
    /// heartbeat showing it unfed on the channel (back from a cut region, its
    /// heartbeat sent right behind its Register), until a heartbeat shows a
    /// pushing link delivering (or it reaches the top level). A parent not proven
    /// comes after every proven one (`select_parent`): a healed region's peers,
    /// all back at once, were placed under one another while none of them was
    /// fed yet. Measured and not kept: every new joiner not proven until its
    /// first fed heartbeat sent a flash crowd's joiners across regions
    /// (peers-static-10k lag p95 946 → 1256 ms), and a member unfed two intervals
    /// after its join demoted (peers-churn-10k 0.99878 → 0.99818, lag p95 2107 →
    /// 2400 ms).
    pub proven: bool,
    /// Per tree: the depth last walked, with the tree's generation then
    /// (`gen << 32 | depth`; generation 0: not known). See [`PeerOverlay::depth`].
    pub(crate) depth_memo: PerTree<Cell<u64>>,
    /// Bit t: it has children in tree t (`PeerOverlay::children`), kept with
    /// the member so a search over many members reads whether each is a leaf
    /// where it reads the member (trees 0..64; see [`PeerOverlay::has_kids`]).
    pub(crate) kid_trees: u64,
    /// Per tree: its children there that are bottom peers without children of
    /// their own (`PeerOverlay::leaf_share`): a member counting none offers no
    /// leaf to `insert_shallow`, which then passes it by unread.
    pub(crate) leaves: PerTree<u32>,
    /// A premium viewer (its registration; [`super::premium`]).
    pub premium: bool,
    /// Its record in the history store (C4, D1; [`super::history_rank`]).
    pub record: crate::history::grade::Grade,
    /// Its network prefix's bucket and the bottom cluster it belongs to (C1,
    /// C8; a peer's, set when it is inserted: [`super::clusters`]).
    pub bucket: u8,
    pub cluster: tiercast_proto::ClusterId,
}

impl Member {
    /// A member just in: nothing booked, no links, no history.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        info: impl Into<Arc<PeerInfo>>,
        region: RegionId,
        kind: MemberKind,
        uplink_bps: u64,
        slots: u32,
        top: bool,
        now: Timestamp,
        k: u8,
    ) -> Self {
        Member {
            info: info.into(),
            region,
            kind,
            uplink_bps,
            slots,
            used: 0,
            top,
            interior: None,
            joined_at: now,
            history: 0,
            parents: PerTree::filled(usize::from(k), None),
            eager: None,
            lazy: LazyLinks::None,
            middle: false,
            recovery: Vec::new(),
            shard_counters: None,
            proven: true,
            depth_memo: PerTree::filled(usize::from(k), Cell::new(0)),
            kid_trees: 0,
            leaves: PerTree::filled(usize::from(k), 0),
            premium: false,
            record: crate::history::grade::Grade::Neutral,
            bucket: 0,
            cluster: tiercast_proto::ClusterId(0),
        }
    }

    pub fn spare(&self) -> u32 {
        self.slots.saturating_sub(self.used)
    }
}
