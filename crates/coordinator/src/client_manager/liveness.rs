//! Heartbeats (D8) keep the coordinator's view current (loads, links, buffers); a
//! relay silent for `heartbeat_timeout_ms`, or whose link the driver saw die, is
//! presumed crashed: it leaves every VAN, its child relays get new parents
//! (connecting before disconnecting), empty tiers are refilled, and its protocol
//! viewers are sent to another relay ([`crate::viewer_moves`]) (V10's crash case).
//! A heartbeat is used only once [`crate::heartbeat_gate`] let it in (issue 11).

use crate::coordinator::Coordinator;
use crate::event::CoordEvent;
use tiercast_proto::{ChannelId, Heartbeat, NodeId, NodeRole, Timestamp};

impl Coordinator {
    pub(crate) fn on_heartbeat(&mut self, now: Timestamp, from: NodeId, hb: Heartbeat) {
        // Checked before any field is read; a refused report changes nothing.
        if let Some(fault) = self.heartbeat_fault(now, from, &hb) {
            self.invalid(from, "heartbeat", fault.why());
            return;
        }
        self.forecast_heartbeat(from, &hb);
        let registry = &self.registry;
        self.network
            .record_heartbeat(now, &hb, |id| registry.get(id).map(|r| r.region_id));
        if !self.peers.is_empty() {
            self.peer_heartbeat(now, &hb);
        }
        for c in &hb.channels {
            if let (Some(m), Some(last)) = (self.channels.get_mut(&c.channel), c.last_seq) {
                m.highest_seq = Some(m.highest_seq.map_or(last, |h| h.max(last)));
            }
        }
        self.adopt_reported(now, from, &hb);
        if !self.peers.is_empty() {
            self.peers_reported(now, from, &hb);
        }
        self.viewers_reported(now, from, &hb);
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
        let Some(r) = self.registry.get_mut(node) else {
            return;
        };
        if !r.alive {
            return;
        }
        self.registry.mark_dead(node);
        self.history.lost(now, node);
        self.network.node_gone(node);
        self.events.push_back(CoordEvent::NodeTimedOut { node });
        if !self.peers.is_empty() {
            self.peer_left(now, node, None);
        }
        let channels: Vec<ChannelId> = self.channels.keys().copied().collect();
        for channel in channels {
            let m = self.channels.get_mut(&channel).expect("listed above");
            let was_active = m.remove_active(node).is_some();
            let orphans = m.children_of(node);
            if !was_active && orphans.is_empty() {
                continue;
            }
            for c in orphans {
                let Some(a) = self.channels[&channel].active.get(&c) else {
                    continue;
                };
                let old = a.parents.clone();
                let tier = a.tier;
                let mut new: Vec<NodeId> = old.iter().copied().filter(|p| *p != node).collect();
                for p in self.choose_parents(now, channel, tier, c) {
                    if new.len() >= self.cfg.parents_per_relay {
                        break;
                    }
                    if !new.contains(&p) {
                        new.push(p);
                    }
                }
                self.set_parents(channel, c, new, old);
            }
            self.ensure_chain(now, channel);
        }
        self.move_viewers_of(now, node);
    }
}
