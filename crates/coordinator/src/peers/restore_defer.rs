//! A bottom peer taken back before all its reported parents are (D7; issue 12).
//! After a coordinator restart a bottom peer becomes a member again the moment
//! one of its reported pushing parents is one, keeping every reported parent that
//! is a member already; each tree whose reported parent is not back yet is left
//! unplaced — the peer goes on taking that substream from that parent — and the
//! link is kept when that parent comes back (no `ParentSet` for it). Its repair
//! link likewise. Only what did not come back within the wait
//! ([`super::rejoin::ADOPT_WAIT_HEARTBEATS`] intervals from its first report,
//! counted in its own heartbeats where they are further apart than the
//! coordinator's: [`super::report_wait`]) is placed afresh.
//!
//! Why: a peer waiting, as a non-member, for its parents in all k trees formed
//! cycles across trees (A, interior in tree 0, is B's tree-0 parent while B,
//! interior in tree 1, is A's tree-1 parent), so almost every peer timed out of
//! its wait and was re-placed with a new `ParentSet`.
//!
//! A member still waiting for a parent that must be told something anyway has
//! those trees placed first ([`PeerOverlay::settle_told`]): a `ParentSet` lists
//! every link the peer is to keep, and one without the awaited parent would make
//! the peer drop the link it still takes the substream on.

use super::overlay::PeerOverlay;
use super::rejoin::{pushes_tree, ADOPT_WAIT_HEARTBEATS};
use super::report_wait::ReportWait;
use super::restore::{sorted, Rejoins, Reported};
use super::select::ParentPolicy;
use crate::config::PeerConfig;
use tiercast_proto::{Feed, NodeId, Timestamp};

/// (tree, reported parent there) pairs a member waits for.
type TreeWaits = Vec<(u8, NodeId)>;

/// What a member taken back still waits for.
#[derive(Clone, Debug)]
pub(crate) struct Deferred {
    /// Its reports since its first as a non-member: the wait runs from then.
    pub clock: ReportWait,
    /// (tree, its reported parent there, not a member yet).
    pub trees: TreeWaits,
    /// Its reported repair link, not a member yet.
    pub repair: Option<NodeId>,
    /// Every link it reported (what it is not told again when all are kept).
    pub links: Vec<(NodeId, Feed)>,
}

impl Deferred {
    /// The parents it waits for.
    pub(crate) fn parents(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.trees.iter().map(|(_, p)| *p).chain(self.repair)
    }

    fn is_empty(&self) -> bool {
        self.trees.is_empty() && self.repair.is_none()
    }
}

impl Rejoins {
    /// Member `id` waits for the parents `d` lists.
    pub(crate) fn defer(&mut self, id: NodeId, d: Deferred) {
        self.forget_deferred(id);
        for p in d.parents() {
            self.awaiting.insert((p, id));
        }
        self.deferred.insert(id, d);
    }

    /// Forgets what member `id` waits for (placed, or gone); returns it.
    pub(crate) fn forget_deferred(&mut self, id: NodeId) -> Option<Deferred> {
        let d = self.deferred.remove(&id)?;
        for p in d.parents() {
            self.awaiting.remove(&(p, id));
        }
        Some(d)
    }

    /// Member `id` reports at `now`: whether it still waits for a parent and its
    /// wait ran out ([`ReportWait::waited`], intervals of at least `interval_us`).
    pub(crate) fn deferred_report(&mut self, id: NodeId, now: Timestamp, interval_us: u64) -> bool {
        self.deferred.get_mut(&id).is_some_and(|d| {
            d.clock.report(now);
            d.clock.waited(now, ADOPT_WAIT_HEARTBEATS, interval_us)
        })
    }

    /// Members that wait for a parent.
    pub(crate) fn deferred_count(&self) -> usize {
        self.deferred.len()
    }

    /// Every member forgets what it waits for (a full recomputation placed it,
    /// and tells what moved).
    pub(crate) fn clear_deferred(&mut self) {
        let ids: Vec<NodeId> = self.deferred.keys().copied().collect();
        for id in ids {
            self.forget_deferred(id);
        }
        self.top_held.clear();
    }
}

impl PeerOverlay {
    /// Whether non-member `r` may be taken back now: every parent it waits for
    /// is a member, or it is a bottom peer and one of its pushing parents is.
    pub(crate) fn ready(&self, r: &Reported) -> bool {
        let member = |p: &NodeId| self.members.contains_key(p);
        if r.needs().iter().all(member) {
            return true;
        }
        !r.is_top() && r.fed.iter().any(|(p, _)| member(p))
    }

    /// What of bottom report `r` waits for a parent not a member yet: the trees
    /// (bit t: tree t), each with that parent, and its repair link.
    pub(crate) fn to_defer(&self, r: &Reported) -> (u64, Vec<(u8, NodeId)>, Option<NodeId>) {
        let id = r.info.id;
        let away = |p: &NodeId| *p != id && !self.members.contains_key(p);
        let mut skip = 0u64;
        let mut trees = Vec::new();
        for t in 0..self.k {
            let Some(q) = r
                .fed
                .iter()
                .find(|(_, f)| pushes_tree(f, self.k, t))
                .map(|(q, _)| *q)
            else {
                continue;
            };
            if away(&q) {
                skip |= 1u64 << t;
                trees.push((t, q));
            }
        }
        let repair = r
            .links
            .iter()
            .find(|(_, f)| *f == Feed::Lazy)
            .map(|(q, _)| *q)
            .filter(away);
        (skip, trees, repair)
    }

    /// Whether member `q` can take `child` in `tree` now: top, or interior
    /// there, with a slot to spare, and not below `child` in that tree.
    pub(crate) fn can_carry(&self, child: NodeId, tree: u8, q: NodeId) -> bool {
        let fits = self
            .members
            .get(&q)
            .is_some_and(|m| q != child && (m.top || m.interior == Some(tree)) && m.spare() > 0);
        fits && !self.is_ancestor(child, q, tree)
    }

    /// Member `id` is not told anything when its links are the ones it reported
    /// but for those to parents it still waits for (`awaited`) or not members.
    pub(crate) fn untold_if_kept(
        &mut self,
        id: NodeId,
        links: &[(NodeId, Feed)],
        awaited: impl Iterator<Item = NodeId>,
    ) {
        let awaited: Vec<NodeId> = awaited.collect();
        let expected: Vec<(NodeId, Feed)> = links
            .iter()
            .filter(|(p, _)| self.members.contains_key(p) && !awaited.contains(p))
            .copied()
            .collect();
        let told = self.assignment(id).unwrap_or_default();
        let now_links = sorted(told.into_iter().map(|f| (f.peer.id, f.feed)).collect());
        if now_links == sorted(expected) {
            self.dirty.remove(&id);
        }
    }

    /// `parent` is a member now: member `id`, which waited for it, takes it
    /// back in the trees it reported it in (placed afresh where it cannot carry
    /// it) and as its repair link.
    pub(crate) fn parent_back(
        &mut self,
        id: NodeId,
        parent: NodeId,
        cfg: &PeerConfig,
        policy: &dyn ParentPolicy,
    ) {
        let Some(mut d) = self.rejoining.forget_deferred(id) else {
            return;
        };
        let told = self.dirty.contains(&id);
        let changes = self.changes_since_full;
        let (now_back, rest): (TreeWaits, TreeWaits) =
            d.trees.iter().partition(|(_, q)| *q == parent);
        d.trees = rest;
        let (mut afresh, mut choose_repair) = (false, false);
        for (t, q) in now_back {
            if self.members[&id].parents[usize::from(t)].is_some() {
                continue;
            }
            if self.can_carry(id, t, q) {
                self.attach(id, t, q);
            } else {
                afresh = true;
            }
        }
        if d.repair == Some(parent) {
            d.repair = None;
            self.keep_repair_link(id, &d.links);
            // It cannot be the repair link: one is chosen as for a join.
            choose_repair = cfg.repair_link && self.members[&id].lazy != [parent];
        }
        if afresh || choose_repair {
            // The trees still awaited stay as they are, and a repair link kept
            // or awaited too.
            let skip = d.trees.iter().fold(0u64, |s, (t, _)| s | 1u64 << t);
            self.place_but(id, false, cfg, policy, skip, !choose_repair);
        }
        if !told {
            self.untold_if_kept(id, &d.links, d.parents());
        }
        if !d.is_empty() {
            self.rejoining.defer(id, d);
        }
        // Not a change for C7 to count (see `take_back_reported`).
        self.changes_since_full = changes;
    }

    /// Member `id` stops waiting: what it waited for is placed afresh (its wait
    /// ran out, or it is told something). False when it waited for nothing.
    pub(crate) fn end_deferral(
        &mut self,
        id: NodeId,
        cfg: &PeerConfig,
        policy: &dyn ParentPolicy,
    ) -> bool {
        let Some(d) = self.rejoining.forget_deferred(id) else {
            return false;
        };
        if !self.members.contains_key(&id) {
            return false;
        }
        let changes = self.changes_since_full;
        self.place_but(id, false, cfg, policy, 0, d.repair.is_none());
        self.changes_since_full = changes;
        true
    }

    /// Before members are told their parents: one still waiting for a parent
    /// has what it waits for placed afresh first, so that what it is told is
    /// whole.
    pub(crate) fn settle_told(&mut self, cfg: &PeerConfig, policy: &dyn ParentPolicy) {
        if self.rejoining.deferred_count() == 0 && self.rejoining.top_held.is_empty() {
            return;
        }
        let waiting: Vec<NodeId> = self
            .dirty
            .iter()
            .copied()
            .filter(|id| self.rejoining.deferred.contains_key(id))
            .collect();
        for id in waiting {
            self.end_deferral(id, cfg, policy);
        }
        // A top member held untold and told now is held no more.
        let held: Vec<NodeId> = self
            .dirty
            .iter()
            .copied()
            .filter(|id| self.rejoining.top_held.contains_key(id))
            .collect();
        for id in held {
            self.rejoining.top_held.remove(&id);
        }
    }
}
