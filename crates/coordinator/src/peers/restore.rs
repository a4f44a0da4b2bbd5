//! A channel's peer overlay rebuilt from what its peers report after a coordinator
//! restart (D7, D8; issue 12). The new coordinator has no overlay; the peers keep
//! pushing to each other and register again, each with a heartbeat listing per
//! channel its parents (the feed of each link: `Feed::All` from its push parent for
//! a top member, substreams for a bottom one, lazy links) and its children. The
//! first such heartbeat of a peer fed by the overlay creates the channel's overlay
//! (the origin and the waypoints on its top level, as at a first watch); then every
//! peer is taken back with its links ([`super::rejoin`]) — top down: a top peer
//! whose push parent is not a member yet, or a bottom peer none of whose pushing
//! parents is, waits ([`Rejoins`]) and is taken back the moment one is; a bottom
//! peer taken back before some of its parents keeps each of those links when that
//! parent comes back ([`super::restore_defer`]). So the whole overlay comes back
//! within the round of heartbeats in which its top level does, not one level per
//! interval, and waits across trees (A waits for B in one tree, B for A in another)
//! do not block it.
//!
//! Nothing is reshaped: a peer fed by a top member's `Feed::All` comes back on the
//! top level under that push parent (the mesh rebuilt over the members back), a
//! bottom peer keeps each reported parent that can carry it there and its repair
//! link, the books (slots used, children, depths) follow from those links, and a
//! peer whose links are all kept is told nothing: no `ParentSet` goes out but for
//! what was wrong (a parent gone, a tree without one). A peer waits for its repair
//! link's top member as well as for its pushing parents. A take-back is no change
//! for the full recomputation's count (C7).

use super::lazy_links::LazyLinks;
use super::overlay::PeerOverlay;
use super::rejoin::ADOPT_WAIT_HEARTBEATS;
use super::report_wait::ReportWait;
use super::select::ParentPolicy;
use crate::config::PeerConfig;
use crate::coordinator::Coordinator;
use crate::registry::RegionId;
use std::collections::{BTreeMap, BTreeSet};
use tiercast_proto::{Feed, Heartbeat, NodeId, NodeRole, PeerInfo, Timestamp};

/// What a peer not (yet) a member reported of one channel.
#[derive(Clone, Debug)]
pub(crate) struct Reported {
    pub info: std::sync::Arc<PeerInfo>,
    pub region: RegionId,
    pub uplink_bps: u64,
    /// Its pushing parents that delivered lately, with their feeds.
    pub fed: Vec<(NodeId, Feed)>,
    /// What it pushes to each child.
    pub child_feeds: Vec<Feed>,
    /// Every parent link it has (pushing and lazy): the assignment it follows.
    pub links: Vec<(NodeId, Feed)>,
}

impl Reported {
    /// Pushed the whole stream: it was on the top level.
    pub(crate) fn is_top(&self) -> bool {
        self.fed.iter().any(|(_, f)| *f == Feed::All)
    }

    /// The members it waits for: a top member (pushed `Feed::All`) its pushing
    /// parents that deliver — its lazy links are mesh neighbours, who wait for
    /// theirs; a bottom member those and its repair link.
    pub(crate) fn needs(&self) -> Vec<NodeId> {
        let top = self.is_top();
        let repair = self.links.iter().filter(|(_, f)| !top && *f == Feed::Lazy);
        // Not a link that delivers nothing (one being dropped, to a parent gone).
        self.fed.iter().chain(repair).map(|(p, _)| *p).collect()
    }
}

/// A registered peer still receiving on this overlay's links but not a member.
#[derive(Clone, Debug)]
pub(crate) struct Waiting {
    /// Its reports as a non-member: the wait runs from the first.
    pub clock: ReportWait,
    /// Its last report, while it waits for parents to be members.
    pub report: Option<Reported>,
}

/// Peers waiting to be taken back, and the parents each waits for. Bounded by the
/// registered peers: an entry goes when the peer is taken back, joins or leaves.
#[derive(Clone, Debug, Default)]
pub(crate) struct Rejoins {
    waiting: BTreeMap<NodeId, Waiting>,
    /// (parent not a member yet, peer waiting for it — a member or not).
    pub(super) awaiting: BTreeSet<(NodeId, NodeId)>,
    /// Members taken back before some of their reported parents were
    /// ([`super::restore_defer`]).
    pub(super) deferred: BTreeMap<NodeId, super::restore_defer::Deferred>,
    /// Top members taken back and held untold ([`super::restore_top`]).
    pub(super) top_held: BTreeMap<NodeId, super::restore_top::TopHeld>,
}

impl Rejoins {
    /// `id` reports as a non-member at `now`: its wait so far (begun now, the
    /// first time).
    pub(crate) fn reported_at(&mut self, id: NodeId, now: Timestamp) -> ReportWait {
        let w = self.waiting.entry(id).or_insert(Waiting {
            clock: ReportWait::new(now),
            report: None,
        });
        w.clock.report(now);
        w.clock
    }

    /// `id` waits for `missing` (parents not members yet) with `report`.
    pub(crate) fn wait(&mut self, id: NodeId, report: Reported, missing: &[NodeId]) {
        let old = self.waiting.get_mut(&id).and_then(|w| w.report.take());
        for p in old.iter().flat_map(|r| r.needs()) {
            self.awaiting.remove(&(p, id));
        }
        for p in missing {
            self.awaiting.insert((*p, id));
        }
        if let Some(w) = self.waiting.get_mut(&id) {
            w.report = Some(report);
        }
    }

    /// Forgets `id` as a non-member waiting (taken back, joined, or gone).
    pub(crate) fn remove(&mut self, id: &NodeId) -> Option<Waiting> {
        let w = self.waiting.remove(id)?;
        for p in w.report.iter().flat_map(|r| r.needs()) {
            self.awaiting.remove(&(p, *id));
        }
        Some(w)
    }

    /// Its wait as a non-member, if it waits.
    pub(crate) fn clock(&self, id: NodeId) -> Option<ReportWait> {
        self.waiting.get(&id).map(|w| w.clock)
    }

    /// The peers that waited for `parent` (it is a member now).
    pub(super) fn waited_for(&mut self, parent: NodeId) -> Vec<NodeId> {
        let kids: Vec<NodeId> = self
            .awaiting
            .range((parent, NodeId(0))..=(parent, NodeId(u32::MAX)))
            .map(|(_, c)| *c)
            .collect();
        for c in &kids {
            self.awaiting.remove(&(parent, *c));
        }
        kids
    }

    /// `id`'s report, if it waits with one.
    fn report(&self, id: NodeId) -> Option<&Reported> {
        self.waiting.get(&id)?.report.as_ref()
    }

    /// Peers waiting, members or not.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.waiting.len() + self.deferred.len() + self.top_held.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty() && self.deferred.is_empty() && self.top_held.is_empty()
    }
}

/// `links` sorted by peer, for comparing a report with an assignment.
pub(super) fn sorted(mut links: Vec<(NodeId, Feed)>) -> Vec<(NodeId, Feed)> {
    links.sort_by_key(|(p, _)| *p);
    links
}

impl PeerOverlay {
    /// Takes back `r` (see [`PeerOverlay::take_back`]), keeping its reported
    /// repair link where it still can be one; untold when its links are all kept.
    /// A bottom peer's trees whose reported parent is not a member yet, and its
    /// repair link if that is not, are left for that parent to come back
    /// ([`super::restore_defer`]). False when it is a member already.
    pub(crate) fn take_back_reported(
        &mut self,
        now: Timestamp,
        r: &Reported,
        cfg: &PeerConfig,
        policy: &dyn ParentPolicy,
    ) -> bool {
        let id = r.info.id;
        let clock = self
            .rejoining
            .clock(id)
            .unwrap_or_else(|| ReportWait::new(now));
        let changes = self.changes_since_full;
        let top = r.is_top();
        let (skip, trees, repair) = if top {
            (0, Vec::new(), None)
        } else {
            self.to_defer(r)
        };
        if !self.take_back(
            now,
            r.info.clone(),
            r.region,
            r.uplink_bps,
            &r.fed,
            &r.child_feeds,
            (skip, repair.is_some()),
            cfg,
            policy,
        ) {
            return false;
        }
        if repair.is_none() {
            self.keep_repair_link(id, &r.links);
        }
        let awaited: Vec<NodeId> = trees.iter().map(|(_, p)| *p).chain(repair).collect();
        if skip != 0 || repair.is_some() {
            self.rejoining.defer(
                id,
                super::restore_defer::Deferred {
                    clock,
                    trees,
                    repair,
                    links: r.links.clone(),
                },
            );
        }
        if self.members.get(&id).is_some_and(|m| m.top) {
            // Untold while its mesh neighbours come back (restore_top.rs).
            self.hold_top(id, clock, &r.links);
        } else if top {
            let told = self.assignment(id).unwrap_or_default();
            let now_links = sorted(told.into_iter().map(|f| (f.peer.id, f.feed)).collect());
            if now_links == sorted(r.links.clone()) {
                // Nothing moved: nothing to tell.
                self.dirty.remove(&id);
            }
        } else {
            self.untold_if_kept(id, &r.links, awaited.into_iter());
        }
        // Not a change for C7 to count: a take-back that counted made the
        // restarted coordinator recompute the whole overlay it was taking back
        // (10⁴ peers: every link moved, continuity 0.71 for two seconds).
        self.changes_since_full = changes;
        true
    }

    /// A bottom member keeps the repair link it reports while that top member can
    /// still be one (not its push parent, a link to spare).
    pub(super) fn keep_repair_link(&mut self, id: NodeId, links: &[(NodeId, Feed)]) {
        let Some(m) = self.members.get(&id).filter(|m| !m.top) else {
            return;
        };
        let Some(q) = links
            .iter()
            .find(|(_, f)| *f == Feed::Lazy)
            .map(|(q, _)| *q)
        else {
            return;
        };
        if m.lazy == [q] || m.parents.contains(&Some(q)) {
            return;
        }
        let current = m.lazy.first().copied();
        let fits = self.members.get(&q).is_some_and(|t| t.top)
            && !self.repair_full(current).contains(&q)
            && !self.pair_capped(m.region, self.members[&q].region);
        if fits {
            self.update(id, |m| m.lazy = LazyLinks::One(q));
            self.dirty.insert(id);
        }
    }

    /// A report of `r.info.id`, registered and fed by this overlay but not a
    /// member: taken back now when it may be ([`Self::ready`]) or when it has
    /// waited [`ADOPT_WAIT_HEARTBEATS`] intervals (at least `interval_us` each,
    /// see [`ReportWait`]) since its first report, else it waits. Returns the peers
    /// taken back (it, and those that waited for it, and so on down).
    pub(crate) fn offer(
        &mut self,
        now: Timestamp,
        r: Reported,
        interval_us: u64,
        cfg: &PeerConfig,
        policy: &dyn ParentPolicy,
    ) -> Vec<NodeId> {
        let id = r.info.id;
        let clock = self.rejoining.reported_at(id, now);
        let waited = clock.waited(now, ADOPT_WAIT_HEARTBEATS, interval_us);
        // The members it waits for.
        let missing: Vec<NodeId> = r
            .needs()
            .into_iter()
            .filter(|p| !self.members.contains_key(p))
            .collect();
        if !missing.is_empty() && !waited && !self.ready(&r) {
            // A parent first: it comes back the moment one is.
            self.rejoining.wait(id, r, &missing);
            return Vec::new();
        }
        if !self.take_back_reported(now, &r, cfg, policy) {
            return Vec::new();
        }
        let more = self.take_back_waiting(now, id, cfg, policy);
        std::iter::once(id).chain(more).collect()
    }

    /// After `first` was taken back: every peer that waited for it and may come
    /// back now ([`Self::ready`]) is taken back too, and so on down; a member that
    /// waited for it takes it back as its parent. Returns those taken back.
    pub(crate) fn take_back_waiting(
        &mut self,
        now: Timestamp,
        first: NodeId,
        cfg: &PeerConfig,
        policy: &dyn ParentPolicy,
    ) -> Vec<NodeId> {
        let mut back = Vec::new();
        let mut work = vec![first];
        while let Some(x) = work.pop() {
            for kid in self.rejoining.waited_for(x) {
                if self.members.contains_key(&kid) {
                    // A member already: it takes `x` back where it reported it.
                    self.parent_back(kid, x, cfg, policy);
                    continue;
                }
                let Some(r) = self.rejoining.report(kid).cloned() else {
                    continue;
                };
                if !self.ready(&r) {
                    continue;
                }
                if self.take_back_reported(now, &r, cfg, policy) {
                    back.push(kid);
                    work.push(kid);
                }
            }
        }
        back
    }
}

impl Coordinator {
    /// A heartbeat from a registered peer fed, on a channel this coordinator
    /// knows, by the origin or another peer while the channel has no overlay here
    /// (a restarted coordinator): the overlay is created, so that its members can
    /// be taken back from their reports.
    pub(super) fn peers_restore(&mut self, now: Timestamp, from: NodeId, hb: &Heartbeat) {
        let peer = self
            .registry
            .get(from)
            .is_some_and(|r| r.alive && r.role == NodeRole::Peer);
        if !peer {
            return;
        }
        let fresh_us = super::rejoin::fed_window_us(self.cfg.heartbeat_interval_ms);
        for c in &hb.channels {
            if self.peers.contains_key(&c.channel) {
                continue;
            }
            let Some(origin) = self.channels.get(&c.channel).map(|m| m.origin) else {
                continue;
            };
            let fed = super::rejoin::fed_links(c, hb.local_time_us, fresh_us);
            let by_overlay = fed.iter().any(|(p, _)| {
                *p == origin
                    || self
                        .registry
                        .get(*p)
                        .is_some_and(|r| r.role == NodeRole::Peer)
            });
            if by_overlay {
                self.start_peer_overlay(now, c.channel);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::overlay::PeerOverlay;
    use super::super::select::AllowAll;
    use super::super::tests::{cfg, info, join_peers, with_origin, RATE};
    use super::Reported;
    use tiercast_proto::{Feed, NodeId, Timestamp};

    /// What member `id` of `o` would report: every link of its assignment.
    fn report_of(o: &PeerOverlay, id: u32) -> Reported {
        let m = &o.members[&NodeId(id)];
        let links: Vec<(NodeId, Feed)> = o
            .assignment(NodeId(id))
            .expect("member")
            .into_iter()
            .map(|f| (f.peer.id, f.feed))
            .collect();
        let kids = (0..o.k)
            .flat_map(|t| {
                let n = o.children[usize::from(t)]
                    .get(&NodeId(id))
                    .map_or(0, |s| s.len());
                std::iter::repeat_n(
                    Feed::Substreams(tiercast_proto::SubstreamSet::single(o.k, t).expect("t < k")),
                    n,
                )
            })
            .collect();
        Reported {
            info: info(id).into(),
            region: m.region,
            uplink_bps: m.uplink_bps,
            fed: links
                .iter()
                .filter(|(_, f)| *f != Feed::Lazy)
                .copied()
                .collect(),
            child_feeds: kids,
            links,
        }
    }

    /// The coordinator's heartbeat interval, 1 s: the wait for reported parents
    /// is two of them (or two of the peer's own, when longer).
    const INTERVAL_US: u64 = 1_000_000;

    /// An overlay rebuilt from its members' reports, given in `order` within
    /// one wait, each taken back as [`PeerOverlay::offer`] decides.
    /// The first of peers 2..30 whose tree-0 parent is a peer (not the
    /// origin), with that parent; `leaf`: one with no children of its own.
    fn under_a_peer(o: &PeerOverlay, leaf: bool) -> (u32, u32) {
        (2..30u32)
            .filter_map(|id| {
                let p = o.members[&NodeId(id)].parents[0]?;
                let childless = o.children.iter().all(|t| !t.contains_key(&NodeId(id)));
                (p != NodeId(1) && (childless || !leaf)).then_some((id, p.0))
            })
            .next()
            .expect("a peer under a peer")
    }

    fn rebuilt(o: &PeerOverlay, order: &[u32]) -> PeerOverlay {
        let c = cfg();
        let mut n = with_origin(Timestamp(0), &c, 4 * RATE);
        let now = Timestamp(10_000_000);
        for id in order {
            n.offer(now, report_of(o, *id), INTERVAL_US, &c, &AllowAll);
        }
        n
    }

    /// Every peer of `o` in `ids` has the same parents, interior tree, booked
    /// slots and repair link in `n`.
    fn same_places(o: &PeerOverlay, n: &PeerOverlay, ids: std::ops::Range<u32>) {
        for id in ids {
            let (a, b) = (&o.members[&NodeId(id)], &n.members[&NodeId(id)]);
            assert_eq!(a.parents, b.parents, "peer {id} kept its parents");
            // Interior where it has children (a childless one reports none).
            if a.kid_trees != 0 {
                assert_eq!(a.interior, b.interior, "peer {id} interior");
            }
            assert_eq!(a.used, b.used, "peer {id} books the same slots");
            assert_eq!(a.lazy, b.lazy, "peer {id} keeps its repair link");
        }
    }

    #[test]
    fn an_overlay_rebuilt_from_reports_in_any_order_keeps_every_link_and_tells_nobody() {
        let c = cfg();
        let now = Timestamp(0);
        let mut o = with_origin(now, &c, 4 * RATE);
        join_peers(&mut o, now, &c, 2..40, 3 * RATE);
        join_peers(&mut o, now, &c, 40..60, RATE / 2);
        o.check().expect("booked once, acyclic");
        // Deepest first: every peer waits for its parents, then comes back.
        let mut order: Vec<u32> = (2..60).collect();
        order.reverse();
        let mut n = rebuilt(&o, &order);
        assert!(
            n.rejoining.is_empty(),
            "{} still waiting",
            n.rejoining.len()
        );
        same_places(&o, &n, 2..60);
        n.check().expect("booked once, acyclic");
        assert!(n.pending.is_empty());
        assert!(n.take_dirty().is_empty(), "nobody is told anything");
        let origin_only = with_origin(now, &c, 4 * RATE).changes_since_full;
        assert_eq!(
            n.changes_since_full, origin_only,
            "no change for C7 to count"
        );
    }

    #[test]
    fn peers_that_are_each_others_parents_in_two_trees_are_taken_back_with_both_links() {
        let c = cfg();
        let now = Timestamp(0);
        let mut o = with_origin(now, &c, 4 * RATE);
        join_peers(&mut o, now, &c, 2..40, 3 * RATE);
        join_peers(&mut o, now, &c, 40..60, RATE / 2);
        // A, interior in tree 0, becomes B's tree-0 parent; B, interior in
        // tree 1, becomes A's tree-1 parent: a cycle across trees, none within one.
        let bottom_interior = |t: u8| {
            (2..40u32)
                .find(|id| {
                    let m = &o.members[&NodeId(*id)];
                    !m.top && m.interior == Some(t) && m.spare() > 0
                })
                .map(NodeId)
                .expect("a bottom peer interior in the tree")
        };
        let (a, b) = (bottom_interior(0), bottom_interior(1));
        o.detach(a, 1);
        o.detach(b, 0);
        assert!(o.members[&a].spare() > 0 && o.members[&b].spare() > 0);
        o.attach(a, 1, b);
        o.attach(b, 0, a);
        o.check().expect("booked once, acyclic in every tree");
        let mut ids: Vec<u32> = (2..60).collect();
        // Deepest first, and top down: either way each waits for the other.
        for order in [ids.iter().rev().copied().collect::<Vec<u32>>(), {
            ids.sort_by_key(|id| (0..4).map(|t| o.depth(NodeId(*id), t)).max());
            ids.clone()
        }] {
            let mut n = rebuilt(&o, &order);
            assert!(
                n.rejoining.is_empty(),
                "{} still waiting",
                n.rejoining.len()
            );
            same_places(&o, &n, 2..60);
            assert_eq!(n.members[&a].parents[1], Some(b));
            assert_eq!(n.members[&b].parents[0], Some(a));
            n.check().expect("booked once, acyclic");
            assert!(n.pending.is_empty());
            assert!(n.take_dirty().is_empty(), "nobody is told anything");
        }
    }

    #[test]
    fn a_top_level_taken_back_in_any_order_keeps_its_mesh_and_tells_nobody() {
        let c = crate::config::PeerConfig {
            stable_ms: 0,
            ..cfg()
        };
        let now = Timestamp(0);
        let mut o = with_origin(now, &c, 4 * RATE);
        join_peers(&mut o, now, &c, 2..8, 6 * RATE);
        o.review_top(now.plus_millis(1000), &c, &AllowAll);
        join_peers(&mut o, now, &c, 8..40, 3 * RATE);
        assert!(o.top_order.len() >= 5, "{:?}", o.top_order);
        o.check().expect("booked once, acyclic");
        let forward: Vec<u32> = (2..40).collect();
        let backward: Vec<u32> = (2..40).rev().collect();
        for order in [forward, backward] {
            let mut n = rebuilt(&o, &order);
            assert!(
                n.rejoining.is_empty(),
                "{} still waiting",
                n.rejoining.len()
            );
            same_places(&o, &n, 2..40);
            for id in 2..40u32 {
                let (a, b) = (&o.members[&NodeId(id)], &n.members[&NodeId(id)]);
                assert_eq!((a.top, a.eager), (b.top, b.eager), "peer {id}");
            }
            assert_eq!(n.mesh, o.mesh);
            n.check().expect("booked once, acyclic");
            assert!(n.take_dirty().is_empty(), "nobody is told anything");
        }
    }

    #[test]
    fn a_peer_whose_parent_did_not_come_back_is_told_its_new_parent_only() {
        let c = cfg();
        let now = Timestamp(0);
        let mut o = with_origin(now, &c, 4 * RATE);
        join_peers(&mut o, now, &c, 2..30, 3 * RATE);
        // A leaf whose tree-0 parent is a peer that will not come back.
        let (leaf, gone) = under_a_peer(&o, true);
        let order: Vec<u32> = (2..30).filter(|id| *id != gone).collect();
        let mut n = rebuilt(&o, &order);
        let was = o.members[&NodeId(leaf)].parents.clone();
        // A member with every other parent, its trees under `gone` left for
        // `gone` to come back, and told nothing meanwhile.
        let m = &n.members[&NodeId(leaf)];
        for (t, p) in was.iter().enumerate() {
            let expected = p.filter(|p| p.0 != gone);
            assert_eq!(m.parents[t], expected, "tree {t}");
        }
        assert!(n.take_dirty().is_empty(), "nobody is told while waiting");
        // Its wait runs out at its second heartbeat of 1 s: the trees under
        // `gone` are placed afresh.
        let next = Timestamp(10_000_000 + INTERVAL_US);
        assert!(!n.rejoining.deferred_report(NodeId(leaf), next, INTERVAL_US));
        let later = Timestamp(10_000_000 + 2 * INTERVAL_US);
        assert!(n
            .rejoining
            .deferred_report(NodeId(leaf), later, INTERVAL_US));
        assert!(n.end_deferral(NodeId(leaf), &c, &AllowAll));
        let m = &n.members[&NodeId(leaf)];
        assert!(
            m.parents[0].is_some_and(|p| p.0 != gone),
            "placed anew in tree 0"
        );
        for (t, p) in was.iter().enumerate().skip(1) {
            if p.is_some_and(|p| p.0 != gone) {
                assert_eq!(m.parents[t], *p, "tree {t} kept");
            }
        }
        n.check().expect("booked once, acyclic");
        let told: Vec<NodeId> = n.take_dirty().into_iter().map(|(id, _)| id).collect();
        assert!(told.contains(&NodeId(leaf)), "{told:?}");
    }

    #[test]
    fn a_waiting_member_told_something_else_is_told_a_whole_set() {
        let c = cfg();
        let now = Timestamp(0);
        let mut o = with_origin(now, &c, 4 * RATE);
        join_peers(&mut o, now, &c, 2..30, 3 * RATE);
        let (leaf, gone) = under_a_peer(&o, false);
        let order: Vec<u32> = (2..30).filter(|id| *id != gone).collect();
        let mut n = rebuilt(&o, &order);
        assert!(n.members[&NodeId(leaf)].parents[0].is_none());
        // Something else about it is to be told: its tree 0 is placed first.
        n.dirty.insert(NodeId(leaf));
        n.settle_told(&c, &AllowAll);
        let told = n.take_dirty();
        let set = &told
            .iter()
            .find(|(id, _)| *id == NodeId(leaf))
            .expect("told")
            .1;
        let m = &n.members[&NodeId(leaf)];
        assert!(m.parents.iter().all(|p| p.is_some()), "{:?}", m.parents);
        assert!(set.iter().all(|f| f.peer.id.0 != gone));
        n.check().expect("booked once, acyclic");
    }

    #[test]
    fn a_peer_heartbeating_every_two_seconds_keeps_a_parent_back_after_two_coordinator_intervals() {
        let c = cfg();
        let now = Timestamp(0);
        let mut o = with_origin(now, &c, 4 * RATE);
        join_peers(&mut o, now, &c, 2..30, 3 * RATE);
        let (leaf, late) = under_a_peer(&o, true);
        let order: Vec<u32> = (2..30).filter(|id| *id != late).collect();
        let mut n = rebuilt(&o, &order);
        let was = o.members[&NodeId(leaf)].parents.clone();
        // The leaf heartbeats every 2 s: its second report, two coordinator
        // intervals after its first, does not end its wait.
        let second = Timestamp(10_000_000 + 2 * INTERVAL_US);
        assert!(!n
            .rejoining
            .deferred_report(NodeId(leaf), second, INTERVAL_US));
        // Its parent's first report comes 0.4 s later: the link is kept.
        let back = Timestamp(10_000_000 + 2 * INTERVAL_US + 400_000);
        n.offer(back, report_of(&o, late), INTERVAL_US, &c, &AllowAll);
        assert_eq!(n.members[&NodeId(leaf)].parents, was, "every parent kept");
        let told: Vec<NodeId> = n.take_dirty().into_iter().map(|(id, _)| id).collect();
        assert!(!told.contains(&NodeId(leaf)), "not told: {told:?}");
        n.check().expect("booked once, acyclic");
    }
}
