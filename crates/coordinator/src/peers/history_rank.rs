//! The history store's record on the overlay's members (C4's "rank by history",
//! D1's "good history"): each member carries its [`Grade`] (one byte), set when it
//! joins and refreshed by every heartbeat that can change it — the sender's own
//! (sessions, uplink achieved) and its parents' (their children's stall reports).
//! `select_parent` ranks a better grade first among the candidates of a region
//! (after the depth bound and proven-fed, before depth: a cheap comparison of a
//! byte), and `preferred_peers` takes no newcomer with a bad record onto the top
//! level. A node the store does not know is neutral.

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
        let grade = self
            .history
            .grade(now, id, self.cfg.peers.stream_rate_kbps);
        if let Some(o) = self.peers.get_mut(&channel) {
            o.set_record(id, grade);
        }
    }

    /// After the history store read `hb`: the sender's record and its parents',
    /// on every channel's overlay it is a member of. O(parents) lookups.
    pub(crate) fn regrade_members(&mut self, now: Timestamp, hb: &Heartbeat) {
        let rate = self.cfg.peers.stream_rate_kbps;
        for c in &hb.channels {
            let Some(o) = self.peers.get_mut(&c.channel) else {
                continue;
            };
            if !o.members.contains_key(&hb.node) {
                continue;
            }
            o.set_record(hb.node, self.history.grade(now, hb.node, rate));
            for p in &c.parents {
                if o.members.contains_key(&p.peer) {
                    o.set_record(p.peer, self.history.grade(now, p.peer, rate));
                }
            }
        }
    }
}
