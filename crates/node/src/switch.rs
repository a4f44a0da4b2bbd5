//! Changing parents without losing a block (V9): the new parent is logged in to
//! (resuming at the next seq this node needs) before the old one is logged off
//! (or after a timeout, see [`crate::parents`]); the old one's blocks still in
//! flight are taken.
//! Used for SwitchToParent from the coordinator (V10), for a parent's Redirect
//! (consolidation, V5) and for re-activation with other parents.

use crate::event::Event;
use crate::node::Node;
use crate::parents::ParentState;
use tiercast_proto::{ChannelDesc, ChannelId, DenyReason, Message, NodeId, PeerInfo, Timestamp};

impl Node {
    pub(crate) fn switch_parents(
        &mut self,
        now: Timestamp,
        channel: ChannelId,
        add: Vec<PeerInfo>,
        remove: Vec<NodeId>,
    ) {
        let Some(ch) = self.channels.get_mut(&channel) else {
            self.invalid(
                tiercast_proto::COORDINATOR_ID,
                "switch_to_parent",
                "channel not carried",
            );
            return;
        };
        let from_seq = ch.parent_resume_seq();
        let mut logins = Vec::new();
        let adding_any = add.iter().any(|p| !ch.parents.contains(p.id));
        for p in add {
            let id = p.id;
            let known = ch.parents.contains(id);
            ch.parents.assign(p);
            ch.parents.keep(id);
            if ch.parents.get(id).map(|l| l.state) == Some(ParentState::Disconnecting) {
                // Named again while it waited to be replaced: it stays, as it is.
                ch.parents.set_state(id, ParentState::Connected);
            }
            if ch.logged_in
                && (!known
                    || ch
                        .parents
                        .get(id)
                        .is_some_and(|l| l.state == ParentState::Assigned))
            {
                ch.parents.logging_in(id, now);
                logins.push(id);
            }
        }
        let mut logoffs = Vec::new();
        if ch.logged_in && adding_any && !logins.is_empty() {
            // Make before break: the first new parent to deliver drops the old ones.
            let keep: Vec<NodeId> = remove
                .iter()
                .copied()
                .filter(|r| ch.parents.contains(*r))
                .collect();
            for r in &keep {
                ch.parents.set_state(*r, ParentState::Disconnecting);
            }
            for l in &logins {
                ch.parents.set_replaces(*l, keep.clone(), now);
            }
        } else {
            for r in remove {
                if let Some(link) = ch.parents.retire(r, now) {
                    if link.state != ParentState::Assigned {
                        logoffs.push(r);
                    }
                }
            }
        }
        for l in logins {
            self.send_login(l, channel, from_seq);
        }
        for r in logoffs {
            self.send(r, Message::Logoff { channel });
            self.events
                .push_back(Event::ParentDropped { channel, parent: r });
        }
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
        self.switch_parents(now, channel, vec![to], vec![from]);
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
