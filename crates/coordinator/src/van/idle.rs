//! Idling empty relays (V5, "when the load falls to zero the server becomes idle"):
//! a relay activated ahead of load (a farm, a prediction) or emptied while still
//! expanding never asks to CONSOLIDATE, so the coordinator idles it itself once its
//! heartbeats have shown no child for `idle_relay_ms` — unless it is its tier's
//! entry, the tier's last active relay, or a parent of another relay. This keeps the
//! relays in use close to the lower bound Σ ceil(children / capacity).

use crate::coordinator::Coordinator;
use crate::event::CoordEvent;
use tiercast_proto::{ChannelId, NodeId, Timestamp};

impl Coordinator {
    pub(super) fn idle_empty_relays(&mut self, now: Timestamp) {
        let after_us = self.cfg.idle_relay_ms.saturating_mul(1000);
        if after_us == 0 {
            return;
        }
        let mut idle: Vec<(ChannelId, NodeId, NodeId)> = Vec::new();
        for (channel, m) in &self.channels {
            for (n, a) in &m.active {
                if now.saturating_since(a.activated_at) <= after_us {
                    continue;
                }
                let Some(r) = self.registry.get(*n) else {
                    continue;
                };
                let empty = r.pending == 0
                    && r.last_heartbeat.as_ref().is_some_and(|hb| {
                        hb.channel(*channel)
                            .is_none_or(|c| c.children().is_empty() && c.local_viewers == 0)
                    });
                if !empty || m.active_count_in(a.region, a.tier) < 2 {
                    continue;
                }
                let entry = self.entry_of_tier(*channel, a.region, a.tier);
                if entry == Some(*n) || !m.children_of(*n).is_empty() {
                    continue;
                }
                let Some(other) = m.newest_in(a.region, a.tier).find(|o| o != n) else {
                    continue;
                };
                idle.push((*channel, *n, other));
            }
        }
        for (channel, node, other) in idle {
            // It has no children: the order only makes it leave the channel.
            self.move_children(now, channel, node, other);
            self.stats.consolidate_events += 1;
            self.events.push_back(CoordEvent::Idled { channel, node });
        }
    }
}
