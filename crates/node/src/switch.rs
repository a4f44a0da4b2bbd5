//! Changing parents without losing a block (V9, C1): the one make-before-break of
//! the node, for relays, peers and protocol viewers alike. New parents are logged
//! in to first (each LOGIN resuming where this node needs its feed); a parent no
//! longer wanted keeps pushing until every new link taking over one of its
//! substreams is connected, then is logged off (or after the timeout, see
//! [`crate::parents`]), and its blocks still in flight are taken. A parent whose
//! substreams nothing new takes over (a lazy link, or no new parent at all) goes
//! at once. Links whose feed changed are logged in to again with the new feed.
//! Used for the coordinator's [`Message::ParentSet`] ([`crate::parent_set`], V10,
//! C4, C6), for a parent's Redirect (consolidation, V5) and for a protocol viewer
//! moved to another relay (V10).

use crate::event::Event;
use crate::node::Node;
use crate::parents::{feeds_overlap, ParentState};
use std::collections::BTreeMap;
use tiercast_proto::{
    ChannelDesc, ChannelId, DenyReason, Feed, Message, NodeId, PeerFeed, PeerInfo, Timestamp,
};

impl Node {
    /// Applies a change of this node's parents for `channel`: `listed` are
    /// parents it is to have (with their feeds), `drop` those it is to lose — for
    /// a full parent set, every current parent not listed. Parents in neither are
    /// left as they are.
    pub(crate) fn change_parents(
        &mut self,
        now: Timestamp,
        channel: ChannelId,
        listed: &[PeerFeed],
        drop: &[NodeId],
    ) {
        let Some(ch) = self.channels.get_mut(&channel) else {
            self.invalid(
                tiercast_proto::COORDINATOR_ID,
                "parent_set",
                "channel not carried",
            );
            return;
        };
        // (parent, resume at) for each LOGIN to send.
        let mut logins: Vec<(NodeId, Option<u64>)> = Vec::new();
        for p in listed {
            let id = p.peer.id;
            let known = ch.parents.contains(id);
            let changed = ch.parents.assign_feed(p.peer.clone(), p.feed);
            ch.foreign.forget(id);
            // Listed again: no longer one to drop once another delivers.
            ch.parents.keep(id);
            let state = ch.parents.get(id).map(|l| l.state);
            if !ch.logged_in {
                // Nothing is logged in yet (a relay without children): the
                // LOGINs go with the first child ([`Node::ensure_logged_in`]).
                if state == Some(ParentState::Disconnecting) {
                    ch.parents.set_state(id, ParentState::Connected);
                }
                continue;
            }
            if !known
                || state == Some(ParentState::Assigned)
                || state == Some(ParentState::Disconnecting)
            {
                ch.parents.logging_in(id, now);
                logins.push((id, ch.login_resume_seq(&p.feed)));
            } else if changed {
                // Same parent, other substreams: no backlog, just the new feed.
                logins.push((id, None));
            }
        }
        // Connect before disconnect (V9, C7): a parent to drop keeps pushing until
        // every new link taking over one of its substreams is connected; one
        // nothing takes over from goes at once.
        let mut takes_over: BTreeMap<NodeId, Vec<NodeId>> = BTreeMap::new();
        let mut logoffs = Vec::new();
        for g in drop {
            let g = *g;
            if listed.iter().any(|p| p.peer.id == g) {
                continue;
            }
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
            // Still waiting to replace others from an earlier change: keep them.
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
        for (p, from) in logins {
            self.send_login(p, channel, from);
        }
        for g in logoffs {
            self.send(g, Message::Logoff { channel });
            self.events
                .push_back(Event::ParentDropped { channel, parent: g });
        }
    }

    /// Applies a full parent set: every current parent not in `set` is dropped
    /// (connect before disconnect, [`Node::change_parents`]).
    pub(crate) fn apply_parent_set(
        &mut self,
        now: Timestamp,
        channel: ChannelId,
        set: &[PeerFeed],
    ) {
        let drop: Vec<NodeId> = self
            .channels
            .get(&channel)
            .map(|c| c.parents.ids())
            .unwrap_or_default()
            .into_iter()
            .filter(|id| !set.iter().any(|p| p.peer.id == *id))
            .collect();
        self.change_parents(now, channel, set, &drop);
    }

    /// Our parent was consolidated and tells us to go to `to`.
    pub(crate) fn on_redirect(
        &mut self,
        now: Timestamp,
        from: NodeId,
        desc: ChannelDesc,
        to: PeerInfo,
    ) {
        let channel = desc.id;
        let is_parent = self
            .channels
            .get(&channel)
            .is_some_and(|c| c.parents.contains(from));
        if !is_parent {
            self.invalid(from, "redirect", "sender is not a parent");
            return;
        }
        let to = PeerFeed {
            peer: to,
            feed: Feed::All,
        };
        self.change_parents(now, channel, &[to], &[from]);
    }

    pub(crate) fn on_login_accepted(&mut self, now: Timestamp, from: NodeId, channel: ChannelId) {
        let Some(ch) = self.channels.get_mut(&channel) else {
            return;
        };
        if !ch.parents.contains(from) {
            return;
        }
        let dropped = ch.parents.connected(from, now);
        for d in &dropped {
            ch.parents.retire(*d, now);
        }
        self.events.push_back(Event::ParentConnected {
            channel,
            parent: from,
        });
        for d in dropped {
            self.send(d, Message::Logoff { channel });
            self.events
                .push_back(Event::ParentDropped { channel, parent: d });
        }
    }

    /// Replacements that never connected: the parents they replace go now.
    pub(crate) fn drop_overdue_parents(&mut self, now: Timestamp) {
        let mut out = Vec::new();
        for (id, ch) in self.channels.iter_mut() {
            for d in ch.parents.overdue(now) {
                ch.parents.retire(d, now);
                out.push((*id, d));
            }
        }
        for (channel, d) in out {
            self.send(d, Message::Logoff { channel });
            self.events
                .push_back(Event::ParentDropped { channel, parent: d });
        }
    }

    pub(crate) fn on_login_denied(
        &mut self,
        now: Timestamp,
        from: NodeId,
        channel: ChannelId,
        reason: DenyReason,
    ) {
        let full = reason == DenyReason::Full;
        self.events.push_back(Event::LoginDenied {
            channel,
            by: from,
            reason,
        });
        let interval = self.cfg.heartbeat_interval_ms;
        let Some(ch) = self
            .channels
            .get_mut(&channel)
            .filter(|c| c.parents.contains(from))
        else {
            return;
        };
        ch.parents.denied(from, now, interval, full);
        match self.cfg.role {
            // A parent that refuses us (full, or no longer carrying the channel) is a
            // bad link: the coordinator finds another (V10).
            tiercast_proto::NodeRole::Relay => self.report_downgrade(channel, from),
            // A peer's parents are the coordinator's to replace too (C6).
            tiercast_proto::NodeRole::Peer => self.report_downgrade(channel, from),
            // A protocol viewer with no working parent asks the coordinator again.
            tiercast_proto::NodeRole::Viewer => self.viewer_parent_gone(now, channel, from),
            tiercast_proto::NodeRole::Origin => {}
        }
    }
}

impl Node {
    /// The link to `peer` died. A child is logged off; a parent is marked lost (the
    /// coordinator re-homes relays, V10); a protocol viewer left without a working
    /// parent asks the coordinator again.
    pub fn peer_lost(&mut self, now: Timestamp, peer: NodeId) {
        self.child_lost(now, peer);
        let chans: Vec<ChannelId> = self
            .channels
            .iter()
            .filter(|(_, c)| c.parents.contains(peer))
            .map(|(id, _)| *id)
            .collect();
        for channel in chans {
            let Some(ch) = self.channels.get_mut(&channel) else {
                continue;
            };
            if self.cfg.role == tiercast_proto::NodeRole::Viewer {
                self.viewer_parent_gone(now, channel, peer);
            } else {
                let was_live = ch
                    .parents
                    .get(peer)
                    .is_some_and(|l| l.state != ParentState::Assigned);
                ch.parents.set_state(peer, ParentState::Assigned);
                let reports = matches!(
                    self.cfg.role,
                    tiercast_proto::NodeRole::Relay | tiercast_proto::NodeRole::Peer
                );
                if was_live && reports {
                    self.report_downgrade(channel, peer);
                }
            }
            self.events.push_back(Event::ParentDropped {
                channel,
                parent: peer,
            });
        }
    }
}

#[cfg(test)]
#[path = "switch_tests.rs"]
mod tests;
