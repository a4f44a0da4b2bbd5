//! The relays' VAN manager behind the routed verbs (C1; V1–V11): what the router
//! hands it ([`ManagerVerbs`]) — a viewer's watch (V2, V11), a lost node's
//! relays re-homed and its viewers moved (V10), a heartbeat's report (seqs,
//! the forecast V7, a relay's links adopted D7, where viewers watch), a
//! LinkDowngrade (V10), the tick (idle relays, V5), a relay registered (the
//! tiers' chains filled, V2) and DISTRIBUTE / CONSOLIDATE (V4, V5).

use super::manager::ChannelManager;
use crate::coordinator::Coordinator;
use crate::service_manager::verbs::{LoadAsk, ManagerVerbs};
use tiercast_proto::{ChannelId, Heartbeat, NodeId, NodeRole, Timestamp};

impl ManagerVerbs for ChannelManager {
    fn on_watch(
        co: &mut Coordinator,
        now: Timestamp,
        from: NodeId,
        channel_name: String,
        region: String,
    ) {
        co.on_watch(now, from, channel_name, region);
    }

    /// Relays leave a channel by CONSOLIDATE (or are idled); only a node lost
    /// leaves the VANs here.
    fn on_leave(co: &mut Coordinator, now: Timestamp, node: NodeId, channel: Option<ChannelId>) {
        if channel.is_none() {
            co.relay_lost(now, node);
        }
    }

    fn on_report(co: &mut Coordinator, now: Timestamp, from: NodeId, hb: &Heartbeat) {
        co.forecast_heartbeat(from, hb);
        for c in &hb.channels {
            if let (Some(m), Some(last)) = (co.channels.get_mut(&c.channel), c.last_seq) {
                m.saw_seq(last);
            }
        }
        co.adopt_reported(now, from, hb);
        co.viewers_reported(now, from, hb);
    }

    fn on_link_downgrade(
        co: &mut Coordinator,
        now: Timestamp,
        from: NodeId,
        channel: ChannelId,
        parent: NodeId,
    ) -> bool {
        co.on_link_downgrade(now, from, channel, parent);
        true
    }

    fn on_tick(co: &mut Coordinator, now: Timestamp) {
        co.idle_empty_relays(now);
    }

    /// A relay back from a cut is not activated afresh: its first heartbeat says
    /// what it carries, and that is taken back (see `adopt`).
    fn on_registered(co: &mut Coordinator, now: Timestamp, node: NodeId, role: NodeRole) {
        if role == NodeRole::Relay && !co.awaiting_adoption(node) {
            let chans: Vec<ChannelId> = co.channels.keys().copied().collect();
            for c in chans {
                co.ensure_chain(now, c);
            }
        }
    }

    fn on_load(
        co: &mut Coordinator,
        now: Timestamp,
        from: NodeId,
        channel: ChannelId,
        load: u32,
        ask: LoadAsk,
    ) -> bool {
        match ask {
            LoadAsk::Distribute => co.on_distribute(now, from, channel, load),
            LoadAsk::Consolidate => co.on_consolidate(now, from, channel, load),
        }
        true
    }
}

impl Coordinator {
    /// `node` is gone: it leaves every VAN, its child relays get new parents
    /// (connecting before disconnecting), empty tiers are refilled, and its
    /// protocol viewers are sent to another relay (V10's crash case).
    fn relay_lost(&mut self, now: Timestamp, node: NodeId) {
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
        self.relay_shares_lost(node);
    }
}
