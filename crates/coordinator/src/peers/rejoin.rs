//! Taking a peer back from what it reports (D7, D8, C6; issue 10's partitions and
//! coordinator restarts). A peer the coordinator presumed gone — its region was cut
//! off — or never knew — the coordinator restarted — registers again and keeps
//! streaming; its heartbeats list, per channel, the parents it takes substreams
//! from (with the feed of each link) and the children it feeds. A registered peer
//! that is not a member of a channel's overlay but still receives on a pushing link
//! is adopted: it becomes a bottom member again, interior in the tree most of its
//! children take from it, keeping in every tree the reported parent that can still
//! carry it there (a member, top or interior in that tree, with a spare slot, no
//! cycle); the trees left are placed as for a join (C4, C6). Its `ParentSet` then
//! lists mostly the links it already has, so nothing moves that need not.
//!
//! Parents come back in their own time (a registration backoff), so a peer none of
//! whose pushing parents is a member yet waits for one, and a peer taken back keeps
//! a tree for its reported parent there up to [`ADOPT_WAIT_HEARTBEATS`] heartbeat
//! intervals from its first report ([`super::restore_defer`]): the overlay is taken
//! back from the top down, not rebuilt from the bottom up. A peer no longer fed
//! asks to watch again itself (`Node::rejoined`), a peer ejected (C6) is never
//! taken back this way.

use super::overlay::{Member, MemberKind, PeerOverlay};
use super::restore::Reported;
use super::select::{AllowAll, ParentPolicy};
use crate::client_manager::last_report::ChannelMarks;
use crate::config::PeerConfig;
use crate::coordinator::Coordinator;
use crate::event::CoordEvent;
use crate::registry::RegionId;
use std::cmp::Reverse;
use tiercast_proto::{
    ChannelId, ChannelReport, Feed, Heartbeat, NodeId, NodeRole, PeerInfo, Timestamp,
};

/// Heartbeat intervals a peer waits for its reported parents to be members again.
pub const ADOPT_WAIT_HEARTBEATS: u64 = 2;

/// A link's feed carries substream `tree` of `k`.
pub(crate) fn pushes_tree(feed: &Feed, k: u8, tree: u8) -> bool {
    match feed {
        Feed::All => true,
        Feed::Substreams(s) => s.k == k && s.mask & (1u64 << tree) != 0,
        Feed::Coded(c) => c.k == k && c.mask & (1u64 << tree) != 0,
        Feed::Lazy => false,
    }
}

/// The pushing parents a report lists that delivered within `fresh_us` of the
/// heartbeat (node clock), with their feeds.
/// How lately a pushing link must have delivered for its child to count as fed:
/// two heartbeat intervals.
pub(crate) fn fed_window_us(heartbeat_interval_ms: u64) -> u64 {
    2 * heartbeat_interval_ms.max(1) * 1000
}

pub(crate) fn fed_links(
    r: &ChannelReport,
    local_time_us: u64,
    fresh_us: u64,
) -> Vec<(NodeId, Feed)> {
    let links = r
        .parents
        .iter()
        .map(|l| (l.peer, l.feed, l.last_block_time_us));
    fed_of(links, local_time_us, fresh_us)
}

/// [`fed_links`] of a report as the registry keeps it.
pub(crate) fn fed_marks(
    r: &ChannelMarks,
    local_time_us: u64,
    fresh_us: u64,
) -> Vec<(NodeId, Feed)> {
    let links = r
        .parents
        .iter()
        .map(|l| (l.peer, l.feed(), l.last_block_time_us()));
    fed_of(links, local_time_us, fresh_us)
}

fn fed_of(
    links: impl Iterator<Item = (NodeId, Feed, Option<u64>)>,
    local_time_us: u64,
    fresh_us: u64,
) -> Vec<(NodeId, Feed)> {
    links
        .filter(|(_, feed, _)| *feed != Feed::Lazy)
        .filter(|(_, _, time)| time.is_some_and(|t| local_time_us.saturating_sub(t) <= fresh_us))
        .map(|(peer, feed, _)| (peer, feed))
        .collect()
}

impl PeerOverlay {
    /// Makes `info` a bottom member again with the parents it reports
    /// (`reported`: parent and feed; `child_feeds`: what it pushes to each child).
    /// The trees in `skip` (bit t: tree t) and, with `keep_repair`, its repair
    /// link are left unplaced: their reported parent is still to come back
    /// ([`super::restore_defer`]). False when it already is a member.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn take_back(
        &mut self,
        now: Timestamp,
        info: impl Into<std::sync::Arc<PeerInfo>>,
        region: RegionId,
        uplink_bps: u64,
        reported: &[(NodeId, Feed)],
        child_feeds: &[Feed],
        (skip, keep_repair): (u64, bool),
        cfg: &PeerConfig,
        policy: &dyn ParentPolicy,
    ) -> bool {
        let info = info.into();
        let id = info.id;
        if self.members.contains_key(&id) {
            return false;
        }
        self.set_link_cap(cfg);
        self.rejoining.remove(&id);
        self.stats.adopted += 1;
        self.changes_since_full += 1;
        // Pushed the whole stream by a top member: it was on the top level, and
        // comes back there under that push parent (the mesh rebuilt around it).
        let push_parent = reported
            .iter()
            .find(|(q, f)| {
                *f == Feed::All && *q != id && self.members.get(q).is_some_and(|m| m.top)
            })
            .map(|(q, _)| *q);
        let top = push_parent.is_some();
        let slots = if top {
            self.top_slots_for(uplink_bps)
        } else {
            self.slots_for(uplink_bps)
        };
        let mut member = Member::new(
            info,
            region,
            MemberKind::Peer,
            uplink_bps,
            slots,
            top,
            now,
            self.k,
        );
        if let Some(q) = push_parent {
            member.eager = Some(q);
            self.insert_member(member);
            self.rebuild_top(usize::from(cfg.mesh_c));
            return true;
        }
        // Taken back because it reported being fed.
        member.proven = true;
        self.insert_member(member);
        self.middle_on_join(id, cfg);
        let k = self.k;
        if slots > 0 {
            let fed = |t: &u8| child_feeds.iter().filter(|f| pushes_tree(f, k, *t)).count();
            if let Some(t) = (0..k)
                .filter(|t| fed(t) > 0)
                .max_by_key(|t| (fed(t), Reverse(*t)))
            {
                self.update(id, |m| m.interior = Some(t));
            }
        }
        for t in 0..k {
            let Some(q) = reported
                .iter()
                .find(|(_, f)| pushes_tree(f, k, t))
                .map(|(q, _)| *q)
            else {
                continue;
            };
            let carries = self
                .members
                .get(&q)
                .is_some_and(|m| q != id && (m.top || m.interior == Some(t)) && m.spare() > 0);
            if carries && !self.is_ancestor(id, q, t) {
                self.attach(id, t, q);
            }
        }
        self.place_but(id, false, cfg, policy, skip, keep_repair);
        true
    }
}

impl Coordinator {
    /// A heartbeat from a registered peer: every channel it still receives on but
    /// is not a member of is taken back (see the module docs).
    pub(super) fn peers_reported(&mut self, now: Timestamp, from: NodeId, hb: &Heartbeat) {
        let Some(r) = self
            .registry
            .get(from)
            .filter(|r| r.alive && r.role == NodeRole::Peer)
        else {
            return;
        };
        let (region, uplink) = (r.region_id, u64::from(r.uplink_kbps) * 1000);
        // The wait, counted in intervals of at least the coordinator's (a peer
        // heartbeating less often waits in its own: report_wait.rs).
        let interval_us = self.cfg.heartbeat_interval_ms.max(1) * 1000;
        let fresh_us = fed_window_us(self.cfg.heartbeat_interval_ms);
        let pc = self.cfg.peers.clone();
        let mut adopted: Vec<(ChannelId, NodeId)> = Vec::new();
        let mut placed: Vec<ChannelId> = Vec::new();
        for c in &hb.channels {
            let Some(o) = self.peers.get_mut(&c.channel) else {
                continue;
            };
            if o.members.contains_key(&from) {
                // A member taken back still waiting for a parent: when its wait
                // ran out, what it waits for is placed afresh (restore_defer.rs).
                if o.rejoining.deferred_report(from, now, interval_us)
                    && o.end_deferral(from, &pc, &AllowAll)
                {
                    placed.push(c.channel);
                }
                // A top member held untold (restore_top.rs): told what it has.
                if o.rejoining.top_held_report(from, now, interval_us) && o.end_top_hold(from) {
                    placed.push(c.channel);
                }
                continue;
            }
            if o.ejected.contains(&from) {
                continue;
            }
            // Sent to a relay by the servers rule (C3): fed by that relay as a
            // viewer, even when it is a waypoint of the overlay too.
            if self.source_switches.on_servers(c.channel, from) {
                continue;
            }
            let fed = fed_links(c, hb.local_time_us, fresh_us);
            // Fed by the overlay (a member or a peer), not by a relay it was sent to.
            let from_overlay = fed.iter().any(|(p, _)| {
                o.members.contains_key(p)
                    || self
                        .registry
                        .get(*p)
                        .is_some_and(|r| r.role == NodeRole::Peer)
            });
            if fed.is_empty() || !from_overlay {
                continue;
            }
            let report = Reported {
                info: r.info.clone(),
                region,
                uplink_bps: uplink,
                fed,
                child_feeds: c.children.iter().map(|l| l.feed).collect(),
                links: c.parents.iter().map(|l| (l.peer, l.feed)).collect(),
            };
            let back = o.offer(now, report, interval_us, &pc, &AllowAll);
            adopted.extend(back.into_iter().map(|p| (c.channel, p)));
        }
        let channels: std::collections::BTreeSet<ChannelId> =
            adopted.iter().map(|(c, _)| *c).chain(placed).collect();
        for (channel, peer) in adopted {
            self.events
                .push_back(CoordEvent::PeerAdopted { channel, peer });
        }
        for channel in channels {
            self.flush_peers(now, channel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::overlay::PeerOverlay;
    use super::super::select::AllowAll;
    use super::super::tests::{cfg, info, join_peers, with_origin, RATE};
    use crate::registry::RegionId;
    use tiercast_proto::{Feed, NodeId, SubstreamSet, Timestamp};

    /// The origin (node 1, 4·r) and peers `peers` of `uplink`.
    fn overlay_of(peers: std::ops::RangeInclusive<u32>, uplink: u64) -> PeerOverlay {
        let (now, c) = (Timestamp(0), cfg());
        let mut o = with_origin(now, &c, 4 * RATE);
        join_peers(&mut o, now, &c, *peers.start()..*peers.end() + 1, uplink);
        o
    }

    /// Peer `id` (uplink 3·r) taken back with `rep` and its children's `kids`.
    fn take_back(
        o: &mut PeerOverlay,
        now: Timestamp,
        id: u32,
        rep: &[(NodeId, Feed)],
        kids: &[Feed],
    ) -> bool {
        let c = cfg();
        o.take_back(
            now,
            info(id),
            RegionId(0),
            3 * RATE,
            rep,
            kids,
            (0, false),
            &c,
            &AllowAll,
        )
    }

    /// What `id` would report: its parent per tree, as substream feeds.
    fn reported(o: &PeerOverlay, id: u32) -> Vec<(NodeId, Feed)> {
        let m = &o.members[&NodeId(id)];
        m.parents
            .iter()
            .enumerate()
            .map(|(t, p)| {
                let s = SubstreamSet::single(4, t as u8).expect("t < 4");
                (p.expect("placed"), Feed::Substreams(s))
            })
            .collect()
    }

    #[test]
    fn a_peer_taken_back_keeps_the_parents_it_reports_where_they_can_carry_it() {
        let c = cfg();
        let mut o = overlay_of(2..=12, 3 * RATE);
        // Placed afresh, 12 takes peers (the origin comes last)...
        let fresh = o.members[&NodeId(12)].parents.clone();
        assert!(fresh.iter().all(|p| p.is_some_and(|p| p != NodeId(1))));
        // ...but it was fed by the origin on every substream when it was cut off.
        o.remove(NodeId(12), &c, &AllowAll);
        let all = Feed::Substreams(SubstreamSet::all(4).expect("k = 4"));
        let now = Timestamp(10_000_000);
        let rep = [(NodeId(1), all)];
        assert!(take_back(&mut o, now, 12, &rep, &[]));
        assert_eq!(o.members[&NodeId(12)].parents[..], vec![Some(NodeId(1)); 4]);
        assert!(o.pending.is_empty());
        o.check().expect("booked once, acyclic");
        // A member already: nothing to take back.
        assert!(!take_back(&mut o, now, 12, &rep, &[]));
    }

    #[test]
    fn a_reported_parent_that_is_gone_or_full_is_replaced_and_the_rest_kept() {
        let c = cfg();
        let mut o = overlay_of(2..=12, 3 * RATE);
        let mut rep = reported(&o, 12);
        o.remove(NodeId(12), &c, &AllowAll);
        // Tree 0's parent is not a member (it never came back); tree 1 came
        // from the origin, which a fresh placement would not pick.
        rep[0].0 = NodeId(99);
        rep[1].0 = NodeId(1);
        let now = Timestamp(10_000_000);
        assert!(take_back(&mut o, now, 12, &rep, &[]));
        let m = &o.members[&NodeId(12)];
        assert!(m.parents[0].is_some_and(|p| p != NodeId(99)), "placed anew");
        for (t, (p, _)) in rep.iter().enumerate().skip(1) {
            assert_eq!(m.parents[t], Some(*p), "tree {t} kept");
        }
        o.check().expect("booked once, acyclic");
    }

    #[test]
    fn a_peer_taken_back_is_interior_in_the_tree_its_children_take_from_it() {
        let c = cfg();
        let mut o = overlay_of(2..=6, 3 * RATE);
        let rep = reported(&o, 6);
        // Not the tree it was interior in (the one a fresh placement refills).
        let was = o.members[&NodeId(6)].interior.expect("has slots");
        let other = (was + 1) % 4;
        o.remove(NodeId(6), &c, &AllowAll);
        let kids = [Feed::Substreams(SubstreamSet::single(4, other).expect("< 4")); 3];
        let now = Timestamp(10_000_000);
        assert!(take_back(&mut o, now, 6, &rep, &kids));
        assert_eq!(o.members[&NodeId(6)].interior, Some(other));
    }
}
