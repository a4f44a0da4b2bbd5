//! Channel announcement and origin identity (X1, X3, D7): an origin announces its
//! channel with its key, and announces it again at every registration (after its
//! own restart or the coordinator's). The rules:
//!
//! - a new name becomes a channel, keeping the id the origin proposes when it is
//!   free (a restarted coordinator gives the channel back the id every node
//!   already uses for it);
//! - the channel's own origin, or an origin holding the channel's key, takes the
//!   channel (a restarted origin gets a new node id; the old one is dropped as if
//!   it crashed, so its tier-1 children move to the new one at once);
//! - an origin with another key is refused while the channel's origin is alive
//!   (`DenyReason::ChannelLive`); once that origin is gone it takes the channel
//!   over, and every node carrying it is sent the new key (`ChannelUpdate`);
//! - the answer carries `next_seq`, one above the highest seq any node reported,
//!   so a restarted origin that lost its state still never reuses a seq.
//!
//! Re-registration: a `Register` from a live node id with the same incarnation is
//! a retry (answered again), with another incarnation the node restarted.

use crate::coordinator::Coordinator;
use crate::event::CoordEvent;
use tiercast_proto::{ChannelDesc, ChannelId, DenyReason, Message, NodeId, NodeRole, Timestamp};

impl Coordinator {
    pub(crate) fn on_announce(
        &mut self,
        now: Timestamp,
        from: NodeId,
        name: String,
        public_key: [u8; 32],
        proposed: Option<ChannelId>,
    ) {
        if self.registry.get(from).map(|r| r.role) != Some(NodeRole::Origin) {
            self.invalid(from, "announce", "only an origin announces channels");
            return;
        }
        if !tiercast_proto::ids::valid_channel_name(&name) {
            self.invalid(
                from,
                "announce",
                "channel name must be 1-64 chars of A-Za-z0-9_-",
            );
            return;
        }
        let id = match self.names.get(&name).copied() {
            Some(id) => {
                if !self.take_channel(now, from, id, public_key) {
                    return;
                }
                id
            }
            None => {
                if self.channels.len() >= self.cfg.max_channels {
                    self.invalid(from, "announce", "channel limit reached");
                    return;
                }
                let id = match proposed {
                    Some(p) if p.0 > 0 && !self.channels.contains_key(&p) => p,
                    _ => ChannelId(self.next_free_channel_id()),
                };
                self.next_channel = self.next_channel.max(id.0.saturating_add(1));
                let desc = ChannelDesc {
                    id,
                    name: name.clone(),
                    public_key,
                };
                self.start_van_manager(desc, from);
                self.names.insert(name.clone(), id);
                self.events.push_back(CoordEvent::ChannelStarted {
                    channel: id,
                    name,
                    origin: from,
                });
                id
            }
        };
        let m = &self.channels[&id];
        let desc = m.desc.clone();
        let next_seq = m.highest_seq.map_or(0, |s| s.saturating_add(1));
        // The keys first: the origin checks its publishers once announced.
        self.send_publish_keys(from, &desc.name);
        self.send(
            from,
            Message::Announced {
                channel: desc,
                next_seq,
            },
        );
        self.ensure_chain(now, id);
    }

    fn next_free_channel_id(&self) -> u32 {
        let mut id = self.next_channel.max(1);
        while self.channels.contains_key(&ChannelId(id)) {
            id = id.wrapping_add(1).max(1);
        }
        id
    }

    /// An origin announces a channel that exists: refused (false) when another
    /// live origin signs it with another key; otherwise it becomes the channel's.
    fn take_channel(
        &mut self,
        now: Timestamp,
        from: NodeId,
        id: ChannelId,
        public_key: [u8; 32],
    ) -> bool {
        let key_changed = self.channels[&id].desc.public_key != public_key;
        if !key_changed && self.primary_returns(now, from, id) {
            return true;
        }
        let m = self.channels.get(&id).expect("names and channels agree");
        let old = m.origin;
        if old != from && key_changed && self.registry.is_alive(old) {
            let reason = DenyReason::ChannelLive { origin: old };
            self.stats.denied += 1;
            self.events.push_back(CoordEvent::AnnounceDenied {
                channel_name: m.desc.name.clone(),
                from,
                reason: reason.clone(),
            });
            let channel_name = m.desc.name.clone();
            self.send(
                from,
                Message::AnnounceDenied {
                    channel_name,
                    reason,
                },
            );
            return false;
        }
        let m = self
            .channels
            .get_mut(&id)
            .expect("names and channels agree");
        m.origin = from;
        m.desc.public_key = public_key;
        if old != from {
            self.events.push_back(CoordEvent::OriginReplaced {
                channel: id,
                old,
                new: from,
                key_changed,
            });
            // Same key, new process: the old one is gone (or is about to be); its
            // children move to the new origin now, not at its heartbeat timeout.
            self.node_lost(now, old);
        }
        if key_changed {
            self.send_channel_update(id);
        }
        true
    }

    /// Every node carrying the channel (active relays, peers) learns its new key.
    fn send_channel_update(&mut self, id: ChannelId) {
        let m = &self.channels[&id];
        let desc = m.desc.clone();
        let mut to: Vec<NodeId> = m.active.keys().copied().collect();
        if let Some(o) = self.peers.get(&id) {
            to.extend(o.members.keys().copied().filter(|n| *n != m.origin));
        }
        for n in to {
            self.send(
                n,
                Message::ChannelUpdate {
                    channel: desc.clone(),
                },
            );
        }
    }

    /// A `Register` from an id the registry holds alive: a retry of the same
    /// process is answered again (false: nothing more to do); another incarnation
    /// is the node restarted, its old state dropped (true: register it anew).
    pub(crate) fn reregister(&mut self, now: Timestamp, from: NodeId, incarnation: u64) -> bool {
        let same = self
            .registry
            .get(from)
            .is_some_and(|r| r.incarnation == incarnation);
        if same {
            let heartbeat_interval_ms = self.cfg.heartbeat_interval_ms.min(u32::MAX as u64) as u32;
            self.send(
                from,
                Message::Registered {
                    heartbeat_interval_ms,
                },
            );
            return false;
        }
        self.node_lost(now, from);
        true
    }
}
