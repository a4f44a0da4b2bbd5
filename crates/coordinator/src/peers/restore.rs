//! A channel's peer overlay rebuilt from what its peers report after a coordinator
//! restart (D7, D8; issue 12). The new coordinator has no overlay; the peers keep
//! pushing to each other and register again, each with a heartbeat listing per
//! channel its parents (the feed of each link: `Feed::All` from its push parent for
//! a top member, substreams for a bottom one, lazy links) and its children. The
//! first such heartbeat of a peer fed by the overlay creates the channel's overlay
//! (the origin and the waypoints on its top level, as at a first watch); then every
//! peer is taken back with its links ([`super::rejoin`]) — top down: a peer whose
//! reported parents are not members yet waits ([`Rejoins`]) and is taken back the
//! moment its last parent is, so the whole overlay comes back within the round of
//! heartbeats in which its top level does, not one level per interval.
//!
//! Nothing is reshaped: a peer fed by a top member's `Feed::All` comes back on the
//! top level under that push parent (the mesh rebuilt over the members back), a
//! bottom peer keeps each reported parent that can carry it there and its repair
//! link, the books (slots used, children, depths) follow from those links, and a
//! peer whose links are all kept is told nothing: no `ParentSet` goes out but for
//! what was wrong (a parent gone, a tree without one). A peer waits for its repair
//! link's top member as well as for its pushing parents. A take-back is no change
//! for the full recomputation's count (C7).

use super::overlay::PeerOverlay;
use super::select::ParentPolicy;
use crate::config::PeerConfig;
use crate::coordinator::Coordinator;
use crate::registry::RegionId;
use std::collections::{BTreeMap, BTreeSet};
use tiercast_proto::{Feed, Heartbeat, NodeId, NodeRole, PeerInfo, Timestamp};

/// What a peer not (yet) a member reported of one channel.
#[derive(Clone, Debug)]
pub(crate) struct Reported {
    pub info: PeerInfo,
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
    /// The members it waits for: a top member (pushed `Feed::All`) its pushing
    /// parents that deliver — its lazy links are mesh neighbours, who wait for
    /// theirs; a bottom member those and its repair link.
    pub(crate) fn needs(&self) -> Vec<NodeId> {
        let top = self.fed.iter().any(|(_, f)| *f == Feed::All);
        let repair = self.links.iter().filter(|(_, f)| !top && *f == Feed::Lazy);
        // Not a link that delivers nothing (one being dropped, to a parent gone).
        self.fed.iter().chain(repair).map(|(p, _)| *p).collect()
    }
}

/// A registered peer still receiving on this overlay's links but not a member.
#[derive(Clone, Debug)]
pub(crate) struct Waiting {
    /// Its first report as a non-member.
    pub since: Timestamp,
    /// Its last report, while it waits for parents to be members.
    pub report: Option<Reported>,
}

/// Peers waiting to be taken back, and the parents each waits for. Bounded by the
/// registered peers: an entry goes when the peer is taken back, joins or leaves.
#[derive(Clone, Debug, Default)]
pub(crate) struct Rejoins {
    waiting: BTreeMap<NodeId, Waiting>,
    /// (parent not a member yet, peer waiting for it).
    awaiting: BTreeSet<(NodeId, NodeId)>,
}

impl Rejoins {
    /// When `id` first reported as a non-member (now, the first time).
    pub(crate) fn since(&mut self, id: NodeId, now: Timestamp) -> Timestamp {
        self.waiting
            .entry(id)
            .or_insert(Waiting {
                since: now,
                report: None,
            })
            .since
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

    /// Forgets `id` (taken back, joined, or gone).
    pub(crate) fn remove(&mut self, id: &NodeId) -> Option<Waiting> {
        let w = self.waiting.remove(id)?;
        for p in w.report.iter().flat_map(|r| r.needs()) {
            self.awaiting.remove(&(p, *id));
        }
        Some(w)
    }

    /// The peers that waited for `parent` (it is a member now).
    fn waited_for(&mut self, parent: NodeId) -> Vec<NodeId> {
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

    /// Peers waiting.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }
}

/// `links` sorted by peer, for comparing a report with an assignment.
fn sorted(mut links: Vec<(NodeId, Feed)>) -> Vec<(NodeId, Feed)> {
    links.sort_by_key(|(p, _)| *p);
    links
}

impl PeerOverlay {
    /// Takes back `r` (see [`PeerOverlay::take_back`]), keeping its reported
    /// repair link where it still can be one; untold when its links are all kept.
    /// False when it is a member already.
    pub(crate) fn take_back_reported(
        &mut self,
        now: Timestamp,
        r: &Reported,
        cfg: &PeerConfig,
        policy: &dyn ParentPolicy,
    ) -> bool {
        let id = r.info.id;
        let changes = self.changes_since_full;
        if !self.take_back(
            now,
            r.info.clone(),
            r.region,
            r.uplink_bps,
            &r.fed,
            &r.child_feeds,
            cfg,
            policy,
        ) {
            return false;
        }
        self.keep_repair_link(id, &r.links);
        let told = self.assignment(id).unwrap_or_default();
        let now_links = sorted(told.into_iter().map(|f| (f.peer.id, f.feed)).collect());
        if now_links == sorted(r.links.clone()) {
            // Nothing moved: nothing to tell.
            self.dirty.remove(&id);
        }
        // Not a change for C7 to count: a take-back that counted made the
        // restarted coordinator recompute the whole overlay it was taking back
        // (10⁴ peers: every link moved, continuity 0.71 for two seconds).
        self.changes_since_full = changes;
        true
    }

    /// A bottom member keeps the repair link it reports while that top member can
    /// still be one (not its push parent, a link to spare).
    fn keep_repair_link(&mut self, id: NodeId, links: &[(NodeId, Feed)]) {
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
            self.update(id, |m| m.lazy = vec![q]);
            self.dirty.insert(id);
        }
    }

    /// After `first` was taken back: every peer that waited for it and has all its
    /// reported parents back now is taken back too, and so on down. Returns those.
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
                let Some(r) = self.rejoining.report(kid).cloned() else {
                    continue;
                };
                if !r.needs().iter().all(|p| self.members.contains_key(p)) {
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
            info: info(id),
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

    /// An overlay rebuilt from its members' reports, given in `order`, the
    /// waiting ones taken back as their parents come.
    fn rebuilt(o: &PeerOverlay, order: &[u32]) -> PeerOverlay {
        let c = cfg();
        let mut n = with_origin(Timestamp(0), &c, 4 * RATE);
        let now = Timestamp(10_000_000);
        for id in order {
            let r = report_of(o, *id);
            let missing: Vec<NodeId> = r
                .needs()
                .into_iter()
                .filter(|p| !n.members.contains_key(p))
                .collect();
            n.rejoining.since(NodeId(*id), now);
            if missing.is_empty() {
                assert!(n.take_back_reported(now, &r, &c, &AllowAll));
                n.take_back_waiting(now, NodeId(*id), &c, &AllowAll);
            } else {
                n.rejoining.wait(NodeId(*id), r, &missing);
            }
        }
        n
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
        for id in 2..60u32 {
            let (a, b) = (&o.members[&NodeId(id)], &n.members[&NodeId(id)]);
            assert_eq!(a.parents, b.parents, "peer {id} kept its parents");
            // Interior where it has children (a childless one reports none).
            if a.kid_trees != 0 {
                assert_eq!(a.interior, b.interior, "peer {id} interior");
            }
            assert_eq!(a.used, b.used, "peer {id} books the same slots");
            assert_eq!(a.lazy, b.lazy, "peer {id} keeps its repair link");
        }
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
    fn a_peer_whose_parent_did_not_come_back_is_told_its_new_parent_only() {
        let c = cfg();
        let now = Timestamp(0);
        let mut o = with_origin(now, &c, 4 * RATE);
        join_peers(&mut o, now, &c, 2..30, 3 * RATE);
        // A leaf whose tree-0 parent is a peer that will not come back.
        let (leaf, gone) = (2..30u32)
            .filter_map(|id| {
                let p = o.members[&NodeId(id)].parents[0]?;
                (p != NodeId(1) && o.children.iter().all(|t| !t.contains_key(&NodeId(id))))
                    .then_some((id, p.0))
            })
            .next()
            .expect("a leaf under a peer");
        let order: Vec<u32> = (2..30).filter(|id| *id != gone).collect();
        let mut n = rebuilt(&o, &order);
        // It waited for `gone`; its wait runs out: taken back with what it has.
        let r = report_of(&o, leaf);
        let back: Vec<bool> = (0..4)
            .map(|t| {
                let p = o.members[&NodeId(leaf)].parents[t].expect("placed");
                n.members.contains_key(&p)
            })
            .collect();
        n.rejoining.remove(&NodeId(leaf));
        assert!(n.take_back_reported(Timestamp(20_000_000), &r, &c, &AllowAll));
        let m = &n.members[&NodeId(leaf)];
        assert!(
            m.parents[0].is_some_and(|p| p.0 != gone),
            "placed anew in tree 0"
        );
        for t in (1..4).filter(|t| back[*t]) {
            assert_eq!(
                m.parents[t],
                o.members[&NodeId(leaf)].parents[t],
                "tree {t} kept"
            );
        }
        n.check().expect("booked once, acyclic");
        let told: Vec<NodeId> = n.take_dirty().into_iter().map(|(id, _)| id).collect();
        assert!(told.contains(&NodeId(leaf)), "{told:?}");
    }
}
