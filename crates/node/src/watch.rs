//! A protocol viewer asks the coordinator where to watch a channel (V2: the
//! coordinator's redirect), logs in at the relay it is given, and asks again
//! after a refusal.

use crate::channel::ChannelState;
use crate::event::Event;
use crate::node::Node;
use crate::parents::ParentState;
use tiercast_proto::{
    ChannelDesc, ChannelId, DenyReason, Message, NodeId, NodeRole, PeerInfo, Timestamp,
    COORDINATOR_ID,
};

impl Node {
    /// Start watching a channel (protocol viewers).
    pub fn watch(&mut self, now: Timestamp, channel_name: &str) {
        let _ = now;
        self.watches.insert(channel_name.to_string(), None);
        if !self.registered {
            // Sent once the coordinator knows us (see `Registered`).
            return;
        }
        let region = self.cfg.region.clone();
        self.send(
            COORDINATOR_ID,
            Message::Watch {
                channel_name: channel_name.to_string(),
                region,
            },
        );
    }

    pub(crate) fn on_watch_at(&mut self, now: Timestamp, desc: ChannelDesc, relay: PeerInfo) {
        if self.cfg.role == NodeRole::Peer && self.names.contains_key(&desc.name) {
            // Ejected from the overlay and sent to a relay (C6): leave the peers.
            self.leave_channel_parents(&desc.name);
            self.watches.insert(desc.name.clone(), None);
        }
        let watcher = matches!(self.cfg.role, NodeRole::Viewer | NodeRole::Peer);
        if !watcher || self.watches.remove(&desc.name).is_none() {
            self.invalid(
                COORDINATOR_ID,
                "watch_at",
                "no watch pending for this channel",
            );
            return;
        }
        let id = desc.id;
        self.names.insert(desc.name.clone(), id);
        let relay_id = relay.id;
        let buffer_blocks = self.cfg.buffer_blocks;
        let ch = self
            .channels
            .entry(id)
            .or_insert_with(|| ChannelState::new(desc.clone(), u8::MAX, buffer_blocks));
        ch.parents.assign(relay);
        ch.parents.set_state(relay_id, ParentState::Connecting);
        ch.logged_in = true;
        ch.keep = true;
        ch.watching_since = Some(now);
        let from_seq = ch.resume_seq();
        self.send_login(relay_id, id, from_seq);
        self.events.push_back(Event::Watching {
            channel: desc,
            relay: relay_id,
        });
    }

    pub(crate) fn on_watch_denied(
        &mut self,
        now: Timestamp,
        name: String,
        reason: DenyReason,
        retry_after_ms: u32,
    ) {
        if self.cfg.role == NodeRole::Peer && self.names.contains_key(&name) {
            // Ejected from the overlay (C6): leave the parents, ask again later.
            self.leave_channel_parents(&name);
            self.watches.insert(name.clone(), None);
        }
        if !self.watches.contains_key(&name) {
            return;
        }
        let retry = (retry_after_ms as u64).max(self.cfg.watch_retry_ms);
        self.watches
            .insert(name.clone(), Some(now.plus_millis(retry)));
        self.events.push_back(Event::WatchDenied {
            channel_name: name,
            reason,
            retry_after_ms,
        });
    }

    pub(crate) fn retry_watches(&mut self, now: Timestamp) {
        let due: Vec<String> = self
            .watches
            .iter()
            .filter(|(_, t)| t.is_some_and(|t| t <= now))
            .map(|(n, _)| n.clone())
            .collect();
        for name in due {
            self.watch(now, &name);
        }
    }

    /// A protocol viewer lost (or was refused by) `parent`: without another working
    /// parent it forgets the channel and asks the coordinator again shortly.
    pub(crate) fn viewer_parent_gone(
        &mut self,
        now: Timestamp,
        channel: ChannelId,
        parent: NodeId,
    ) {
        let Some(ch) = self.channels.get_mut(&channel) else {
            return;
        };
        ch.parents.remove(parent);
        let others_ok = ch
            .parents
            .iter()
            .any(|(_, l)| matches!(l.state, ParentState::Connected | ParentState::Connecting));
        if !others_ok {
            let name = ch.desc.name.clone();
            self.drop_channel(channel);
            self.watches
                .insert(name, Some(now.plus_millis(self.cfg.watch_retry_ms)));
        }
    }

    /// Logs off every parent of a channel and forgets it (a peer leaving the overlay).
    fn leave_channel_parents(&mut self, name: &str) {
        let Some(id) = self.names.get(name).copied() else {
            return;
        };
        if let Some(ch) = self.channels.get(&id) {
            for p in ch.parents.ids() {
                self.send(p, Message::Logoff { channel: id });
            }
        }
        self.drop_channel(id);
    }

    /// Stop watching: log off from the parents and forget the channel.
    pub fn unwatch(&mut self, _now: Timestamp, channel_name: &str) {
        self.watches.remove(channel_name);
        let Some(id) = self.names.get(channel_name).copied() else {
            return;
        };
        if self.cfg.role == NodeRole::Peer {
            // The coordinator re-homes whoever this peer fed (C6).
            self.send(COORDINATOR_ID, Message::Logoff { channel: id });
        }
        self.leave_channel_parents(channel_name);
    }
}
