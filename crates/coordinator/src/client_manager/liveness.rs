//! Heartbeats (D8) keep the coordinator's view current (loads, links, buffers); a
//! node silent for `heartbeat_timeout_ms`, or whose link the driver saw die, is
//! presumed crashed (C1, D8): the client manager marks it, the history and the
//! network monitor forget its session and links, and every manager is told it
//! left (the routed verb `on_leave`, `service_manager/verbs.rs`): the peer
//! overlays re-home its children, the VANs re-home its child relays and move its
//! protocol viewers (V10's crash case). A heartbeat is used only once
//! [`crate::heartbeat_gate`] let it in (issue 11), then handed to the network
//! monitor, the managers (`on_report`), the history and the registry.

use crate::coordinator::Coordinator;
use crate::event::CoordEvent;
use crate::service_manager::verbs::{ManagerVerbs, Peers, Van};
use tiercast_proto::{Heartbeat, NodeId, Timestamp};

impl Coordinator {
    pub(crate) fn on_heartbeat(&mut self, now: Timestamp, from: NodeId, hb: Heartbeat) {
        // Checked before any field is read; a refused report changes nothing.
        if let Some(fault) = self.heartbeat_fault(now, from, &hb) {
            self.invalid(from, "heartbeat", fault.why());
            return;
        }
        let registry = &self.registry;
        self.network
            .record_heartbeat(now, &hb, |id| registry.get(id).map(|r| r.region_id));
        // The managers read it after the monitor (C2 compares with its books),
        // the peer overlays first: their PeerAssigns go out before the orders
        // of a relay's adoption, as they always did.
        Peers::on_report(self, now, from, &hb);
        Van::on_report(self, now, from, &hb);
        let prev = self
            .registry
            .get(from)
            .and_then(|r| r.last_heartbeat.as_ref());
        self.history
            .heard(now, prev, &hb, self.cfg.peers.stream_rate_kbps);
        self.registry.heard(now, hb);
        self.stats.heartbeats += 1;
    }

    pub(crate) fn check_liveness(&mut self, now: Timestamp) {
        let timeout = self.cfg.heartbeat_timeout_ms * 1000;
        // Viewers only receive; they may not heartbeat and are never presumed crashed.
        let dead: Vec<NodeId> = self
            .registry
            .heartbeaters()
            .filter(|(_, r)| r.alive && now.saturating_since(r.last_heard) > timeout)
            .map(|(id, _)| *id)
            .collect();
        for n in dead {
            self.node_lost(now, n);
        }
    }

    /// A node is gone (heartbeat timeout, or its link died): re-home what it fed.
    pub fn node_lost(&mut self, now: Timestamp, node: NodeId) {
        if !self.registry.is_alive(node) {
            return;
        }
        self.registry.mark_dead(node);
        self.history.lost(now, node);
        self.network.node_gone(node);
        self.events.push_back(CoordEvent::NodeTimedOut { node });
        Peers::on_leave(self, now, node, None);
        Van::on_leave(self, now, node, None);
    }
}
