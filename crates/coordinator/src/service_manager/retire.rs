//! Retiring a channel's managers (C1; seed 002's service manager creates the
//! managers and takes them down when their content is gone). A channel is
//! *unused* when it has no origin — its origin left or timed out and no origin
//! took it over (`content_directory/announce.rs`) — and no viewer: no peer in
//! its overlay, and no viewer at its relays (the HTTP players and the protocol
//! viewers or relay-placed peers their heartbeats report, and the protocol
//! viewers the coordinator placed). Unused for `channel_retire_after_ms`
//! without a break, it is retired at the tick: both managers (the VAN's and
//! the peer overlay's) leave their maps, the content directory forgets the
//! name, and every part drops what it kept for the channel — parent-set
//! versions, uplink shares (C9; the other channels' shares grow at once),
//! reservations on capped links (C5), protocol viewers' places, forecasts (V7),
//! links measured (C2), the servers-or-peers rules' entries (C3), unmet demand.
//! A `CoordEvent::ChannelRetired` is logged; a later announce of the name starts
//! a new channel, and a `/watch` of it meanwhile is answered as for an unknown
//! channel. Every registered node that may still hold the channel — told its
//! parents there, or reporting it in its last heartbeat — gets
//! `Message::ChannelRetired`: it logs off the channel's parents and forgets it
//! (`node/src/retired.rs`).

use crate::coordinator::Coordinator;
use crate::event::CoordEvent;
use crate::peers::MemberKind;
use std::collections::{BTreeMap, BTreeSet};
use tiercast_proto::{ChannelId, Message, NodeId, NodeRole, Timestamp};

/// Since when each unused channel has been unused (one entry per channel at
/// most, so bounded by `max_channels`).
#[derive(Clone, Debug, Default)]
pub struct Retiring {
    unused_since: BTreeMap<ChannelId, Timestamp>,
}

impl Retiring {
    /// Since when `channel` has been unused, if it is.
    pub fn unused_since(&self, channel: ChannelId) -> Option<Timestamp> {
        self.unused_since.get(&channel).copied()
    }
}

impl Coordinator {
    /// The tick's check: channels unused for `channel_retire_after_ms` are retired.
    pub(crate) fn retire_unused_channels(&mut self, now: Timestamp) {
        let after_us = self.cfg.channel_retire_after_ms.saturating_mul(1000);
        if after_us == 0 {
            return;
        }
        let channels: Vec<ChannelId> = self.channels.keys().copied().collect();
        let mut due = Vec::new();
        for c in channels {
            if self.channel_in_use(c) {
                self.retiring.unused_since.remove(&c);
                continue;
            }
            let since = *self.retiring.unused_since.entry(c).or_insert(now);
            if now.saturating_since(since) >= after_us {
                due.push(c);
            }
        }
        for c in due {
            self.retire_channel(now, c);
        }
    }

    /// Whether `channel` has an origin or a viewer (see the module docs).
    fn channel_in_use(&self, channel: ChannelId) -> bool {
        let Some(m) = self.channels.get(&channel) else {
            return false;
        };
        if self.registry.is_alive(m.origin) {
            return true;
        }
        let peers = self.peers.get(&channel).is_some_and(|o| {
            o.members
                .values()
                .any(|member| member.kind == MemberKind::Peer)
        });
        peers
            || m.active
                .keys()
                .any(|relay| self.relay_has_viewers(*relay, channel))
            || self.viewer_map.on_channel(channel) > 0
    }

    /// `relay`'s last heartbeat shows viewers of `channel`: HTTP players, or
    /// children that only watch (protocol viewers, peers placed on relays).
    fn relay_has_viewers(&self, relay: NodeId, channel: ChannelId) -> bool {
        let Some(r) = self.registry.get(relay).filter(|r| r.alive) else {
            return false;
        };
        let Some(report) = r.last_heartbeat.as_ref().and_then(|hb| hb.channel(channel)) else {
            return false;
        };
        report.local_viewers > 0
            || report.children().iter().any(|child| {
                self.registry
                    .get(child.peer)
                    .is_some_and(|c| c.alive && matches!(c.role, NodeRole::Viewer | NodeRole::Peer))
            })
    }

    /// Takes `channel`'s managers down and every part's state for it.
    fn retire_channel(&mut self, now: Timestamp, channel: ChannelId) {
        self.retiring.unused_since.remove(&channel);
        let Some(van) = self.channels.remove(&channel) else {
            return;
        };
        let overlay = self.peers.remove(&channel);
        let name = van.desc.name.clone();
        if self.names.get(&name) == Some(&channel) {
            self.names.remove(&name);
        }
        self.unmet_demand.remove(&channel);
        self.tell_retired(channel);
        self.parent_sets.forget_channel(channel);
        self.viewer_map.forget_channel(channel);
        self.forecast.forget_channel(channel);
        self.network.forget_channel(channel);
        self.source_switches.forget_channel(channel);
        self.release_channel_reservations(channel);
        self.release_channel_uplinks(now, channel);
        self.events.push_back(CoordEvent::ChannelRetired {
            channel,
            name,
            relays: van.active.len(),
            members: overlay.map_or(0, |o| o.members.len()),
        });
    }

    /// `ChannelRetired` to every live node that may hold `channel`: told its
    /// parents there, or naming it in its last heartbeat.
    fn tell_retired(&mut self, channel: ChannelId) {
        let mut holders: BTreeSet<NodeId> = self.parent_sets.nodes_on(channel).collect();
        holders.extend(self.registry.iter().filter_map(|(id, r)| {
            r.last_heartbeat
                .as_ref()
                .filter(|hb| hb.channels.iter().any(|c| c.channel == channel))
                .map(|_| *id)
        }));
        for node in holders {
            if self.registry.is_alive(node) {
                self.send(node, Message::ChannelRetired { channel });
            }
        }
    }
}
