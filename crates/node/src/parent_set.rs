//! A node's parents for a channel as the coordinator tells them (C1): one
//! versioned full [`Message::ParentSet`] for relays and peers alike (V2, V9, V10,
//! C4, C6). A set is checked first (at most [`MAX_SET_PARENTS`] parents, never
//! the node itself, well-formed feeds, a placement the node's role can take);
//! one not newer than the last set applied for the channel is ignored and
//! counted as invalid (the coordinator numbers each node's sets per channel from
//! its registration, so a node forgets the numbers when it is registered again).
//! Then the placement: an active relay of a VAN tier ((re)activated, V2, V4, V7,
//! or only re-parented, V9, V10) or a member of the peer overlay (C4, C6, D1);
//! and the parents change by the node's one connect-before-disconnect
//! ([`crate::switch`]), which keeps each link's feed (D3, D4, D5).

use crate::channel::{ChannelState, Phase};
use crate::event::Event;
use crate::node::Node;
use std::collections::BTreeMap;
use tiercast_proto::{
    ChannelDesc, ChannelId, NodeRole, PeerFeed, Placement, Timestamp, COORDINATOR_ID,
    MAX_SET_PARENTS,
};

/// Channels whose last applied set version a node remembers (the oldest
/// channel it no longer carries is forgotten first).
pub const MAX_SET_VERSIONS: usize = 256;

/// The version of the last parent set applied, per channel (bounded).
#[derive(Clone, Debug, Default)]
pub struct SetVersions {
    last: BTreeMap<ChannelId, u64>,
}

impl SetVersions {
    /// Whether a set of `version` for `channel` is not newer than the last applied.
    pub fn is_stale(&self, channel: ChannelId, version: u64) -> bool {
        self.last.get(&channel).is_some_and(|v| version <= *v)
    }

    pub fn last(&self, channel: ChannelId) -> Option<u64> {
        self.last.get(&channel).copied()
    }

    /// Records `version` as applied; at the bound a channel not `carried` is
    /// forgotten first, else the lowest channel id.
    pub fn record(
        &mut self,
        channel: ChannelId,
        version: u64,
        carried: impl Fn(ChannelId) -> bool,
    ) {
        if !self.last.contains_key(&channel) && self.last.len() >= MAX_SET_VERSIONS {
            let victim = self
                .last
                .keys()
                .copied()
                .find(|c| !carried(*c))
                .or_else(|| self.last.keys().next().copied());
            if let Some(v) = victim {
                self.last.remove(&v);
            }
        }
        self.last.insert(channel, version);
    }

    /// A new registration: the coordinator numbers this node's sets afresh.
    pub fn clear(&mut self) {
        self.last.clear();
    }

    pub fn len(&self) -> usize {
        self.last.len()
    }

    pub fn is_empty(&self) -> bool {
        self.last.is_empty()
    }
}

impl Node {
    pub(crate) fn on_parent_set(
        &mut self,
        now: Timestamp,
        desc: ChannelDesc,
        version: u64,
        placement: Placement,
        parents: Vec<PeerFeed>,
    ) {
        let role_fits = match placement {
            Placement::Tier { .. } => self.cfg.role == NodeRole::Relay,
            Placement::Member => matches!(self.cfg.role, NodeRole::Peer | NodeRole::Relay),
        };
        if !role_fits {
            self.invalid(
                COORDINATOR_ID,
                "parent_set",
                "placement not taken in this role",
            );
            return;
        }
        let me = self.cfg.id;
        let bad = parents.len() > MAX_SET_PARENTS
            || parents
                .iter()
                .any(|p| p.peer.id == me || !p.feed.is_valid());
        if bad {
            self.invalid(COORDINATOR_ID, "parent_set", "malformed parent set");
            return;
        }
        let channel = desc.id;
        if self.set_versions.is_stale(channel, version) {
            self.invalid(COORDINATOR_ID, "parent_set", "stale parent set");
            return;
        }
        // Only a current set may change the channel's key (X3).
        self.learn_desc(&desc);
        let carried = self.channels.contains_key(&channel);
        let creates = !matches!(
            placement,
            Placement::Tier {
                activate: false,
                ..
            }
        );
        if !carried && !creates {
            self.invalid(COORDINATOR_ID, "parent_set", "channel not carried");
            return;
        }
        if !carried && self.channels.len() >= self.cfg.max_channels {
            self.invalid(COORDINATOR_ID, "parent_set", "channel limit reached");
            return;
        }
        let channels = &self.channels;
        self.set_versions.record(channel, version, |c| {
            c == channel || channels.contains_key(&c)
        });
        match placement {
            Placement::Tier { tier, activate } => {
                if activate {
                    self.activate(now, desc, tier, &parents);
                }
            }
            Placement::Member => self.join_as_member(now, desc, &parents),
        }
        self.apply_parent_set(now, channel, &parents);
    }

    /// The coordinator made this relay active for a channel in `tier` (V2, V4):
    /// a new expansion phase.
    fn activate(
        &mut self,
        now: Timestamp,
        desc: ChannelDesc,
        tier: tiercast_proto::Tier,
        parents: &[PeerFeed],
    ) {
        self.timing_asked(now, &desc.name);
        let id = desc.id;
        self.names.insert(desc.name.clone(), id);
        let buffer_blocks = self.cfg.buffer_blocks;
        let ch = self
            .channels
            .entry(id)
            .or_insert_with(|| ChannelState::new(desc, tier, buffer_blocks));
        ch.tier = tier;
        ch.phase = Phase::Expanding;
        ch.consolidated = false;
        ch.consolidate_pending = false;
        self.events.push_back(Event::Activated {
            channel: id,
            tier,
            parents: parents.iter().map(|p| p.peer.id).collect(),
        });
    }

    /// A member of the peer overlay (a peer, or a relay on the top mesh): it
    /// wants the stream itself, its links stay logged in without children.
    fn join_as_member(&mut self, now: Timestamp, desc: ChannelDesc, parents: &[PeerFeed]) {
        let channel = desc.id;
        self.timing_asked(now, &desc.name);
        self.watches.remove(&desc.name);
        self.names.insert(desc.name.clone(), channel);
        let buffer_blocks = self.cfg.buffer_blocks;
        let fresh = !self.channels.contains_key(&channel);
        let ch = self
            .channels
            .entry(channel)
            .or_insert_with(|| ChannelState::new(desc.clone(), u8::MAX, buffer_blocks));
        ch.keep = true;
        ch.member = true;
        ch.logged_in = true;
        if ch.watching_since.is_none() {
            ch.watching_since = Some(now);
        }
        // Nothing stored yet and several substream parents: one start for all
        // of them ([`crate::start`]).
        if ch.buffer.is_empty()
            && ch.start_gate.is_none()
            && crate::start::StartGate::needed(parents.iter().map(|p| &p.feed))
        {
            ch.start_gate = Some(crate::start::StartGate::default());
        }
        if fresh {
            let me = self.cfg.id;
            self.events.push_back(Event::Watching {
                channel: desc,
                relay: parents.first().map_or(me, |p| p.peer.id),
            });
        }
    }

    /// The version of the last parent set applied for `channel`, if any.
    pub fn parent_set_version(&self, channel: ChannelId) -> Option<u64> {
        self.set_versions.last(channel)
    }
}

#[cfg(test)]
#[path = "parent_set_tests.rs"]
mod tests;
