//! The relays' side of the uplink ledger (C9, V8): a relay active for several
//! channels has its uplink booked once, in the same books as the peers', and
//! each channel's VAN manager sees only its channel's share.
//!
//! - A channel's VAN takes a share when it activates the relay (`activate`,
//!   `adopt`) and gives it back when the relay leaves that channel (idled,
//!   consolidated, migrated: `move_children`) unless the channel's peer overlay
//!   still has it as a waypoint; a relay lost gives every share back.
//! - The share is the peers' rule, ⌊U·rᶜ/Σr⌋ over the channels holding one,
//!   with U the relay's server uplink (`server_uplink_bps`). The VAN counts
//!   children, so a share is read as `capacity · share / U` children of that
//!   channel; a channel's room on the relay is that less what the channel
//!   carries there (its last report's children and local viewers, or the relays
//!   booked under it, whichever is more, plus the viewers sent to the machine
//!   since: conservative), and never more than the machine-wide room.
//! - A relay no other channel holds a share of has no share limit: on one
//!   channel the VAN decides exactly as before.
//! - The channel's share is one budget for both of its managers: a waypoint
//!   joins the channel's peer overlay with it (`service_manager`), and a share
//!   that moved is applied to that overlay at once (`apply_share`).

use crate::coordinator::Coordinator;
use tiercast_proto::{ChannelId, NodeId, Timestamp};

impl Coordinator {
    /// `channel`'s VAN activates `relay`: the channel takes its share; the
    /// other channels' shares that shrank are applied to their peer overlays
    /// (where the relay is a waypoint). A full ledger books nothing: the relay
    /// is then limited by its machine-wide room only.
    pub(crate) fn book_relay(&mut self, now: Timestamp, channel: ChannelId, relay: NodeId) {
        let declared = self.server_uplink_bps(relay);
        let weight = self.channel_weight(channel);
        let Ok(grant) = self.uplinks.acquire(relay, channel, declared, weight) else {
            return;
        };
        for (other, share) in grant.changed {
            self.apply_share(now, other, relay, share);
        }
    }

    /// `relay` left `channel`'s VAN: the share goes back (the other channels'
    /// grow at once), unless the channel's peer overlay still has it as a
    /// waypoint (then the share is that overlay's until the relay is lost).
    pub(crate) fn release_relay(&mut self, now: Timestamp, channel: ChannelId, relay: NodeId) {
        let waypoint = self.peers.get(&channel).is_some_and(|o| o.holds(relay));
        if waypoint {
            return;
        }
        self.release_uplink(now, channel, relay);
    }

    /// `relay` was lost: every share it held goes.
    pub(crate) fn relay_shares_lost(&mut self, relay: NodeId) {
        self.forget_uplink(relay);
    }

    /// Children of `channel` the relay's share still has room for; `u32::MAX`
    /// when no other channel holds a share of it (no limit beyond the
    /// machine-wide room). A channel not holding one yet is quoted the share it
    /// would get.
    pub(crate) fn share_room(&self, relay: NodeId, channel: ChannelId) -> u32 {
        let shared = self.uplinks.shares(relay).any(|(c, _)| c != channel);
        if !shared {
            return u32::MAX;
        }
        let Some(r) = self.registry.get(relay) else {
            return 0;
        };
        let declared = self.server_uplink_bps(relay);
        let share_bps = self.uplinks.share(relay, channel).unwrap_or_else(|| {
            self.uplinks
                .quote(relay, channel, declared, self.channel_weight(channel))
        });
        let children = u128::from(r.capacity) * u128::from(share_bps) / u128::from(declared.max(1));
        let children = u32::try_from(children).unwrap_or(u32::MAX);
        children.saturating_sub(self.channel_load(relay, channel))
    }

    /// What `channel` carries on `relay` as the coordinator books it: its last
    /// report's children and local viewers or the relays booked under it,
    /// whichever is more, plus the viewers sent to the machine since.
    pub(crate) fn channel_load(&self, relay: NodeId, channel: ChannelId) -> u32 {
        let Some(r) = self.registry.get(relay) else {
            return u32::MAX;
        };
        let reported = r.last_heartbeat.as_ref().map_or(0, |hb| {
            hb.channel(channel).map_or(0, |c| {
                u32::try_from(c.children().len())
                    .unwrap_or(u32::MAX)
                    .saturating_add(c.local_viewers)
            })
        });
        let booked = self
            .channels
            .get(&channel)
            .map_or(0, |m| m.relay_children_of(relay));
        reported.max(booked).saturating_add(r.pending)
    }

    /// `node` has room for one more child of `channel`: machine-wide, and
    /// within the channel's share when the node is shared.
    pub(crate) fn has_room_for(&self, node: NodeId, channel: ChannelId) -> bool {
        self.has_room(node) && self.share_room(node, channel) > 0
    }

    /// Room left in `node` for `channel`: the machine-wide room, at most the
    /// channel's share's.
    pub(crate) fn room_for(&self, node: NodeId, channel: ChannelId) -> u32 {
        self.room_of(node).min(self.share_room(node, channel))
    }
}
