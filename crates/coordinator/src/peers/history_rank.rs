//! The history store's record on the overlay's members (C4's "rank by history",
//! D1's "good history"): each member carries its [`Grade`] (one byte), set when it
//! joins and refreshed when a heartbeat changes it — the sender's own (uplink
//! achieved) or its parents' (their children's stall reports): the history store
//! says which grades the heartbeat changed, so an unchanged one costs nothing.
//! `select_parent` ranks a better grade first among the candidates of a region
//! at the same depth (a tie-breaker after the depth bound, proven-fed, recent
//! blame and depth, before spare: a cheap comparison of a byte; ranked before
//! depth it made tight-strong's lag p95 worse, `docs/BENCHMARKS.md`), and `preferred_peers` takes no newcomer with a bad record onto the top
//! level. A node the store does not know is neutral. Only with
//! `PeerConfig::history_rank` (off by default: measured worse under partitions
//! and flash crowds); off, every member stays neutral.

use super::overlay::PeerOverlay;
use crate::coordinator::Coordinator;
use crate::history::grade::Grade;
use tiercast_proto::{ChannelId, Heartbeat, NodeId, Timestamp};

impl PeerOverlay {
    /// Sets a member's record (no index depends on it).
    pub(crate) fn set_record(&mut self, id: NodeId, grade: Grade) {
        if let Some(m) = self.members.get_mut(&id) {
            m.record = grade;
        }
    }
}

impl Coordinator {
    /// A member's record from the history store, after it joined `channel`.
    pub(crate) fn grade_member(&mut self, now: Timestamp, channel: ChannelId, id: NodeId) {
        if !self.cfg.peers.history_rank {
            return;
        }
        let grade = self.history.grade(now, id, self.cfg.peers.stream_rate_kbps);
        if let Some(o) = self.peers.get_mut(&channel) {
            o.set_record(id, grade);
        }
    }

    /// After the history store read `hb`: the grades it changed (the sender's,
    /// its parents'; usually none) set on the overlays of `hb`'s channels.
    pub(crate) fn regrade_members(&mut self, hb: &Heartbeat) {
        if !self.cfg.peers.history_rank || self.history.regraded().is_empty() {
            return;
        }
        let changed = self.history.regraded().to_vec();
        for c in &hb.channels {
            let Some(o) = self.peers.get_mut(&c.channel) else {
                continue;
            };
            for (id, grade) in &changed {
                o.set_record(*id, *grade);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::history::grade::Grade;
    use crate::peers::overlay::{MemberKind, PeerOverlay};
    use crate::peers::select::AllowAll;
    use crate::peers::tests::{cfg, info, with_origin, RATE};
    use crate::registry::RegionId;
    use tiercast_proto::{NodeId, Timestamp};

    /// The origin and two peers under it in every tree, both then given the same
    /// slots in tree 0: equal candidates for a joiner (same depth, same spare).
    fn two_equal() -> PeerOverlay {
        let t0 = Timestamp::ZERO;
        let c = cfg();
        let mut o = with_origin(t0, &c, 16 * RATE);
        for id in [2, 3] {
            o.join(
                t0,
                info(id),
                RegionId(0),
                MemberKind::Peer,
                0,
                &c,
                &AllowAll,
            );
        }
        for id in [2u32, 3] {
            o.update(NodeId(id), |m| {
                m.uplink_bps = 2 * RATE;
                m.slots = 8;
                m.interior = Some(0);
            });
        }
        o
    }

    #[test]
    fn of_two_equal_candidates_the_one_with_a_bad_record_is_chosen_last() {
        let mut o = two_equal();
        let (a, b) = (&o.members[&NodeId(2)], &o.members[&NodeId(3)]);
        assert_eq!((a.spare(), a.parents[0]), (b.spare(), b.parents[0]));
        o.join(
            Timestamp::ZERO,
            info(20),
            RegionId(0),
            MemberKind::Peer,
            0,
            &cfg(),
            &AllowAll,
        );
        let pick = |o: &PeerOverlay| {
            o.select_parent(NodeId(20), 0, &[], 4, &AllowAll)
                .expect("a parent")
        };
        let first = pick(&o);
        assert!([NodeId(2), NodeId(3)].contains(&first), "{first:?}");
        let other = if first == NodeId(2) {
            NodeId(3)
        } else {
            NodeId(2)
        };
        // The first choice gets a bad record: the other one is taken.
        o.set_record(first, Grade::Bad);
        assert_eq!(pick(&o), other);
        // Neutral (no history) ranks above bad, good above neutral.
        o.set_record(first, Grade::Neutral);
        o.set_record(other, Grade::Good);
        assert_eq!(pick(&o), other);
        o.set_record(other, Grade::Bad);
        assert_eq!(pick(&o), first);
    }
}
