//! A peer's parents as the coordinator assigns them (C4, C6, D3, D4): a
//! `PeerAssign` lists every parent of the channel with what it pushes on the link
//! (all blocks, some substreams, or a lazy link). New links are logged in to, links
//! whose feed changed are logged in to again with the new feed; a link no longer
//! listed keeps pushing until every new link taking over one of its substreams is
//! connected, then is dropped (connect before disconnect, V9, C7), and its blocks
//! still in flight are taken ([`crate::parents`]).
//! Relays take the same message when they are waypoints of the top-level mesh.

use crate::channel::ChannelState;
use crate::event::Event;
use crate::node::Node;
use crate::parents::{feeds_overlap, ParentState};
use std::collections::BTreeMap;
use tiercast_proto::{ChannelDesc, Message, NodeId, NodeRole, PeerFeed, Timestamp, COORDINATOR_ID};

/// Most parents one assignment may list.
pub const MAX_ASSIGNED_PARENTS: usize = 128;
impl Node {
    pub(crate) fn on_peer_assign(
        &mut self,
        now: Timestamp,
        desc: ChannelDesc,
        parents: Vec<PeerFeed>,
    ) {
        if !matches!(self.cfg.role, NodeRole::Peer | NodeRole::Relay) {
            self.invalid(
                COORDINATOR_ID,
                "peer_assign",
                "only peers and relays take one",
            );
            return;
        }
        let me = self.cfg.id;
        let bad = parents.len() > MAX_ASSIGNED_PARENTS
            || parents
                .iter()
                .any(|p| p.peer.id == me || !p.feed.is_valid());
        if bad {
            self.invalid(COORDINATOR_ID, "peer_assign", "malformed parent list");
            return;
        }
        if !self.channels.contains_key(&desc.id) && self.channels.len() >= self.cfg.max_channels {
            self.invalid(COORDINATOR_ID, "peer_assign", "channel limit reached");
            return;
        }
        let channel = desc.id;
        self.watches.remove(&desc.name);
        self.names.insert(desc.name.clone(), channel);
        let buffer_blocks = self.cfg.buffer_blocks;
        let fresh = !self.channels.contains_key(&channel);
        let ch = self
            .channels
            .entry(channel)
            .or_insert_with(|| ChannelState::new(desc.clone(), u8::MAX, buffer_blocks));
        ch.keep = true;
        ch.logged_in = true;
        if ch.watching_since.is_none() {
            ch.watching_since = Some(now);
        }
        let from_seq = ch.resume_seq();
        // (parent, resume at) for each LOGIN to send.
        let mut logins: Vec<(NodeId, Option<u64>)> = Vec::new();
        for p in &parents {
            let id = p.peer.id;
            let known = ch.parents.contains(id);
            let changed = ch.parents.assign_feed(p.peer.clone(), p.feed);
            // Listed again: no longer one to drop once another delivers.
            ch.parents.keep(id);
            let state = ch.parents.get(id).map(|l| l.state);
            if !known
                || state == Some(ParentState::Assigned)
                || state == Some(ParentState::Disconnecting)
            {
                ch.parents.set_state(id, ParentState::Connecting);
                logins.push((id, from_seq));
            } else if changed {
                // Same parent, other substreams: no backlog, just the new feed.
                logins.push((id, None));
            }
        }
        let gone: Vec<NodeId> = ch
            .parents
            .ids()
            .into_iter()
            .filter(|id| !parents.iter().any(|p| p.peer.id == *id))
            .collect();
        // Connect before disconnect (V9, C7): a parent no longer listed keeps pushing
        // until every new link taking over one of its substreams is connected; one
        // nothing takes over from (a lazy link) goes at once.
        let mut takes_over: BTreeMap<NodeId, Vec<NodeId>> = BTreeMap::new();
        let mut logoffs = Vec::new();
        for g in gone {
            let Some(old) = ch.parents.get(g).map(|l| l.feed) else {
                continue;
            };
            let successors: Vec<NodeId> = logins
                .iter()
                .map(|(id, _)| *id)
                .filter(|id| {
                    ch.parents
                        .get(*id)
                        .is_some_and(|l| feeds_overlap(l.feed, old))
                })
                .collect();
            if successors.is_empty() {
                if let Some(link) = ch.parents.retire(g, now) {
                    if link.state != ParentState::Assigned {
                        logoffs.push(g);
                    }
                }
                continue;
            }
            ch.parents.set_state(g, ParentState::Disconnecting);
            for n in successors {
                takes_over.entry(n).or_default().push(g);
            }
        }
        for (n, mut old) in takes_over {
            // Still waiting to replace others from an earlier assignment: keep them.
            if let Some(l) = ch.parents.get(n) {
                let earlier: Vec<NodeId> = l
                    .replaces
                    .iter()
                    .copied()
                    .filter(|r| !old.contains(r))
                    .collect();
                old.extend(earlier);
            }
            ch.parents.set_replaces(n, old, now);
        }
        if fresh {
            self.events.push_back(Event::Watching {
                channel: desc,
                relay: parents.first().map_or(me, |p| p.peer.id),
            });
        }
        for (p, from) in logins {
            self.send_login(p, channel, from);
        }
        for g in logoffs {
            self.send(g, Message::Logoff { channel });
            self.events
                .push_back(Event::ParentDropped { channel, parent: g });
        }
    }
}
