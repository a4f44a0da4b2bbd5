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
use tiercast_proto::{Heartbeat, NodeId, NodeRole, Timestamp};

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
        // the peer overlays first: their parent sets go out before the orders
        // of a relay's adoption, as they always did.
        Peers::on_report(self, now, from, &hb);
        Van::on_report(self, now, from, &hb);
        let r = self.registry.get(from);
        let prev = r.and_then(|r| r.last_heartbeat.as_ref());
        let server = r.is_some_and(|r| matches!(r.role, NodeRole::Relay | NodeRole::Origin));
        let since_us = prev.map(|p| hb.local_time_us.saturating_sub(p.local_time_us));
        let achieved = self
            .history
            .heard(now, prev, &hb, self.cfg.peers.stream_rate_kbps);
        // What a server sent counts against traffic budgets (C3); grades the
        // heartbeat changed, as the parent selection ranks them (C4, D1).
        if let (true, Some(kbps), Some(us)) = (server, achieved, since_us) {
            self.count_server_traffic(now, kbps, us);
        }
        if !self.peers.is_empty() {
            self.regrade_members(&hb);
        }
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
        // A lost origin's backup takes its channels before the relays move.
        self.backup_on_node_lost(now, node);
        self.registry.mark_dead(node);
        self.parent_sets.forget(node);
        self.history.lost(now, node);
        self.network.node_gone(node);
        self.events.push_back(CoordEvent::NodeTimedOut { node });
        Peers::on_leave(self, now, node, None);
        Van::on_leave(self, now, node, None);
    }
}
