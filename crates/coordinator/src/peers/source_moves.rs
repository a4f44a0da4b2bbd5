//! One peer moved because the servers-or-peers rule in force changed (C3's
//! `prefer_source` / `traffic_budget`, C6, C7; when and how many:
//! `policy/source_switch.rs`):
//!
//! - **to servers**: a member of the overlay goes to a relay with room the way a
//!   new `Watch` with servers in force does (`WatchAt`, the relay booked, its
//!   LOGIN there); it leaves the overlay as on a LOGOFF, each child it fed
//!   re-homed (C6). No relay with room: it stays. The node drops its overlay
//!   parents and children when the `WatchAt` comes (as an ejected peer sent to a
//!   relay does, `node/src/watch.rs`), then logs in at the relay.
//! - **to peers**: a peer the servers rule sent to a relay joins the overlay when
//!   the overlay has room for it (the admission of a new `Watch`, never taking a
//!   member's place) and a parent in every tree is found; it is sent its parents
//!   (`ParentSet`). Connect before disconnect: the node keeps its relay link,
//!   still pushing, until every new parent link taking over from it is
//!   connected, then logs off the relay (`node/src/switch.rs`). A peer the overlay
//!   could place only in part is taken out again and keeps its relay.

use super::coordinator::Joiner;
use crate::coordinator::Coordinator;
use crate::event::CoordEvent;
use crate::policy::file::Source;
use crate::policy::parent_rules::parent_policy;
use tiercast_proto::{ChannelId, Message, NodeId, NodeRole, Timestamp};

/// What became of one move.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Move {
    Done,
    /// Not this peer (gone, ejected, already there): the next may move.
    NotThis,
    /// Nowhere has room: nobody else moves this interval.
    NoRoom,
}

impl Coordinator {
    /// `peer` leaves `channel`'s overlay (its children re-homed as on a leave)
    /// and its uplink share goes back.
    fn out_of_overlay(&mut self, now: Timestamp, channel: ChannelId, peer: NodeId) {
        let rules = self.parent_rules.clone();
        let policy = parent_policy(&rules);
        let pc = self.cfg.peers.clone();
        if let Some(o) = self.peers.get_mut(&channel) {
            o.remove(peer, &pc, policy);
        }
        self.release_uplink(now, channel, peer);
    }

    /// Servers now in force: `peer`, a member of `channel`'s overlay, goes to a
    /// relay with room.
    pub(crate) fn move_to_servers(
        &mut self,
        now: Timestamp,
        channel: ChannelId,
        peer: NodeId,
        rule: &str,
    ) -> Move {
        let Some(name) = self.channel_name(channel) else {
            return Move::NotThis;
        };
        let Some(region) = self.registry.get(peer).map(|r| r.region.clone()) else {
            return Move::NotThis;
        };
        if !self
            .peers
            .get(&channel)
            .is_some_and(|o| o.members.contains_key(&peer))
        {
            return Move::NotThis;
        }
        let has_relays = self
            .registry
            .iter()
            .any(|(_, r)| r.alive && r.role == NodeRole::Relay);
        if !has_relays {
            return Move::NoRoom;
        }
        let Ok((desc, relay)) = self.choose_viewer_relay(now, &name, &region) else {
            return Move::NoRoom;
        };
        self.redirected(channel, relay.id);
        self.out_of_overlay(now, channel, peer);
        self.stats.source_moves_to_servers += 1;
        self.events.push_back(CoordEvent::SourceMoved {
            channel,
            peer,
            relay: relay.id,
            to: Source::Servers,
            rule: rule.to_string(),
        });
        self.flush_peers(now, channel);
        let limit = self.cfg.max_nodes;
        self.source_switches
            .placed(now, channel, peer, relay.id, limit);
        self.send(
            peer,
            Message::WatchAt {
                channel: desc,
                relay,
            },
        );
        Move::Done
    }

    /// Peers now in force: `peer`, sent to `relay` by the servers rule, joins
    /// `channel`'s overlay when it has room.
    pub(crate) fn move_to_peers(
        &mut self,
        now: Timestamp,
        channel: ChannelId,
        peer: NodeId,
        relay: NodeId,
        rule: &str,
    ) -> Move {
        let Some(r) = self.registry.get(peer).filter(|r| r.alive) else {
            return Move::NotThis;
        };
        let (info, region, premium) = (r.info.clone(), r.region_id, r.premium);
        let declared = u64::from(r.uplink_kbps) * 1000;
        let uplink = if self.may_relay(now, peer) {
            self.uplink_quote(channel, peer, declared)
        } else {
            0
        };
        let Some(o) = self.overlay_for(now, channel) else {
            return Move::NotThis;
        };
        if o.members.contains_key(&peer) || o.ejected.contains(&peer) {
            return Move::NotThis;
        }
        let room = o.cap_join_allowed(now, region)
            && o.admits_newcomer(peer, uplink)
            && o.region_fits_as(region, uplink, false, premium);
        if !room {
            return Move::NoRoom;
        }
        let kept = self.source_switches.placement(channel, peer);
        let joiner = Joiner {
            info,
            region,
            uplink,
            declared,
            premium,
            unfed: false,
            member: false,
        };
        if !self.admit_peer(now, channel, joiner) {
            // Not a parent in every tree: told only some, it would drop its
            // relay once they connected and miss the rest. It stays there.
            self.out_of_overlay(now, channel, peer);
            self.events
                .push_back(CoordEvent::PeerLeft { channel, peer });
            self.flush_peers(now, channel);
            if let Some((relay, at)) = kept {
                let limit = self.cfg.max_nodes;
                self.source_switches.placed(at, channel, peer, relay, limit);
            }
            return Move::NoRoom;
        }
        self.source_switches.forget(channel, peer);
        self.stats.source_moves_to_peers += 1;
        self.events.push_back(CoordEvent::SourceMoved {
            channel,
            peer,
            relay,
            to: Source::Peers,
            rule: rule.to_string(),
        });
        self.flush_peers(now, channel);
        Move::Done
    }
}
