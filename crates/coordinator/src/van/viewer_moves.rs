//! Moving the protocol viewers of a relay presumed crashed (V10's crash case for
//! viewers, V2 rules for the new relay): the coordinator keeps which viewer it sent
//! to which relay for which channel (from its `WatchAt`s, and from what relays
//! report as their children in heartbeats, D8), and when a relay is lost it sends
//! each of that relay's viewers a new `WatchAt` — so viewers move within the
//! heartbeat timeout, not the transport's idle timeout.
//!
//! The map is bounded (`max_nodes` entries) and cleaned when a viewer is lost, is
//! moved, or is no longer among its relay's reported children.

use crate::coordinator::Coordinator;
use std::collections::{BTreeMap, BTreeSet};
use tiercast_proto::{ChannelId, Heartbeat, Message, NodeId, NodeRole, Timestamp};

/// Which relay each protocol viewer watches each channel at.
#[derive(Clone, Debug, Default)]
pub struct ViewerMap {
    /// (viewer, channel) → (relay, when the coordinator last placed it there).
    at: BTreeMap<(NodeId, ChannelId), (NodeId, Timestamp)>,
    /// relay → its (viewer, channel) entries.
    by_relay: BTreeMap<NodeId, BTreeSet<(NodeId, ChannelId)>>,
    /// Viewers sent elsewhere because their relay was lost.
    pub moved: u64,
    /// Viewers of a lost relay for which no relay had room (left to their own
    /// silence detection and `Watch` retries).
    pub unplaced: u64,
}

impl ViewerMap {
    pub fn len(&self) -> usize {
        self.at.len()
    }

    pub fn is_empty(&self) -> bool {
        self.at.is_empty()
    }

    /// The relay `viewer` watches `channel` at, as far as the coordinator knows.
    pub fn relay_of(&self, viewer: NodeId, channel: ChannelId) -> Option<NodeId> {
        self.at.get(&(viewer, channel)).map(|(r, _)| *r)
    }

    /// Protocol viewers placed on `channel`.
    pub fn on_channel(&self, channel: ChannelId) -> usize {
        self.at.keys().filter(|(_, c)| *c == channel).count()
    }

    /// `channel` was retired: its viewers' entries go.
    pub(crate) fn forget_channel(&mut self, channel: ChannelId) {
        let keys: Vec<(NodeId, ChannelId)> = self
            .at
            .keys()
            .filter(|(_, c)| *c == channel)
            .copied()
            .collect();
        for k in keys {
            self.forget(k);
        }
    }

    /// The viewers (and channels) placed at `relay`.
    pub fn viewers_of(&self, relay: NodeId) -> Vec<(NodeId, ChannelId)> {
        self.by_relay
            .get(&relay)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }

    fn place(
        &mut self,
        now: Timestamp,
        viewer: NodeId,
        channel: ChannelId,
        relay: NodeId,
        limit: usize,
    ) {
        let key = (viewer, channel);
        if let Some((old, _)) = self.at.get(&key).copied() {
            self.unlink(old, key);
        } else if self.at.len() >= limit {
            return;
        }
        self.at.insert(key, (relay, now));
        self.by_relay.entry(relay).or_default().insert(key);
    }

    fn unlink(&mut self, relay: NodeId, key: (NodeId, ChannelId)) {
        if let Some(s) = self.by_relay.get_mut(&relay) {
            s.remove(&key);
            if s.is_empty() {
                self.by_relay.remove(&relay);
            }
        }
    }

    fn forget(&mut self, key: (NodeId, ChannelId)) {
        if let Some((relay, _)) = self.at.remove(&key) {
            self.unlink(relay, key);
        }
    }

    /// A viewer is gone: forget every channel it watched.
    fn forget_viewer(&mut self, viewer: NodeId) {
        let keys: Vec<(NodeId, ChannelId)> = self
            .at
            .range((viewer, ChannelId(0))..=(viewer, ChannelId(u32::MAX)))
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            self.forget(k);
        }
    }

    /// A relay is gone: its entries, taken out of the map.
    fn take_relay(&mut self, relay: NodeId) -> Vec<(NodeId, ChannelId)> {
        let keys: Vec<(NodeId, ChannelId)> = self
            .by_relay
            .remove(&relay)
            .map(|s| s.into_iter().collect())
            .unwrap_or_default();
        for k in &keys {
            self.at.remove(k);
        }
        keys
    }
}

impl Coordinator {
    /// The protocol viewers the coordinator knows where they watch.
    pub fn viewer_map(&self) -> &ViewerMap {
        &self.viewer_map
    }

    fn is_viewer(&self, id: NodeId) -> bool {
        self.registry
            .get(id)
            .is_some_and(|r| r.alive && r.role == NodeRole::Viewer)
    }

    /// A `WatchAt` went to `viewer`: remember where.
    pub(crate) fn viewer_placed(
        &mut self,
        now: Timestamp,
        viewer: NodeId,
        channel: ChannelId,
        relay: NodeId,
    ) {
        if self.is_viewer(viewer) {
            let limit = self.cfg.max_nodes;
            self.viewer_map.place(now, viewer, channel, relay, limit);
        }
    }

    /// A relay's heartbeat lists its children: viewers among them are at that relay
    /// (they may have come by a Redirect, V5); entries of that relay it no longer
    /// lists are dropped once they are older than the heartbeat timeout (a viewer
    /// just sent there may not have logged in yet).
    pub(super) fn viewers_reported(&mut self, now: Timestamp, relay: NodeId, hb: &Heartbeat) {
        if self.registry.get(relay).map(|r| r.role) != Some(NodeRole::Relay) {
            return;
        }
        let limit = self.cfg.max_nodes;
        let mut listed = BTreeSet::new();
        for c in &hb.channels {
            for child in &c.children {
                if self.is_viewer(child.peer) {
                    listed.insert((child.peer, c.channel));
                }
            }
        }
        for (viewer, channel) in &listed {
            if self.viewer_map.relay_of(*viewer, *channel) != Some(relay) {
                self.viewer_map.place(now, *viewer, *channel, relay, limit);
            }
        }
        let grace_us = self.cfg.heartbeat_timeout_ms.saturating_mul(1000);
        let stale: Vec<(NodeId, ChannelId)> = self
            .viewer_map
            .viewers_of(relay)
            .into_iter()
            .filter(|k| !listed.contains(k))
            .filter(|k| {
                self.viewer_map
                    .at
                    .get(k)
                    .is_some_and(|(_, t)| now.saturating_since(*t) > grace_us)
            })
            .collect();
        for k in stale {
            self.viewer_map.forget(k);
        }
    }

    /// `node` was presumed crashed (called from `node_lost`, after its channels
    /// were re-homed): a viewer is forgotten; a relay's viewers get a new `WatchAt`
    /// (the V2 choice of relay, in the viewer's region).
    pub(crate) fn move_viewers_of(&mut self, now: Timestamp, node: NodeId) {
        self.viewer_map.forget_viewer(node);
        for (viewer, channel) in self.viewer_map.take_relay(node) {
            if !self.is_viewer(viewer) {
                continue;
            }
            let Some(name) = self.channel_name(channel) else {
                continue;
            };
            let region = self
                .registry
                .get(viewer)
                .map(|r| r.region.clone())
                .unwrap_or_default();
            match self.watch_in(now, &name, &region) {
                Ok((desc, relay)) => {
                    self.viewer_map.moved += 1;
                    self.viewer_placed(now, viewer, channel, relay.id);
                    self.send(
                        viewer,
                        Message::WatchAt {
                            channel: desc,
                            relay,
                        },
                    );
                }
                Err(_) => self.viewer_map.unplaced += 1,
            }
        }
    }
}
