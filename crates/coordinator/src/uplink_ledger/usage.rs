//! What each channel uses of a shared node, and the periodic lending (C9): the
//! coordinator measures, at its periodic check, what each channel's manager
//! has booked on every node shared by several channels — a peer overlay its
//! member's booked substream children, a VAN the children and viewers it
//! carries on the relay; a peer overlay short of uplink (peers turned away or
//! waiting for a parent) as wanting all it can get — and hands it to the ledger's lending rule
//! ([`super::lending`]); the shares that moved are applied at once (a peer
//! overlay grows or shrinks its member, re-homing children that no longer
//! fit; a VAN reads its share when it places the next viewer).

use crate::coordinator::Coordinator;
use tiercast_proto::{ChannelId, NodeId, NodeRole, Timestamp};

impl Coordinator {
    /// Lends and takes back between the channels of every shared node (when
    /// lending is on), then keeps every overlay within its share.
    pub(crate) fn lend_uplinks(&mut self, now: Timestamp) {
        if !self.uplinks.lends() {
            return;
        }
        let nodes: Vec<NodeId> = self.uplinks.shared_nodes().collect();
        for node in nodes {
            let used: Vec<(ChannelId, u64)> = self
                .uplinks
                .shares(node)
                .map(|(c, _)| {
                    let hungry = self.short_of_uplink(now, c);
                    (
                        c,
                        if hungry {
                            u64::MAX
                        } else {
                            self.channel_use_bps(node, c)
                        },
                    )
                })
                .collect();
            for (channel, share) in self.uplinks.lend(node, &used) {
                self.apply_share(now, channel, node, share);
            }
        }
    }

    /// Whether `channel`'s peer overlay wants more uplink than it has: a peer
    /// turned away for want of room within the last heartbeat interval, an
    /// ejected peer still asking, or a member waiting for a parent. Such a
    /// channel counts as using all it could get: it borrows, never lends (its
    /// booked children alone understate it — admission keeps the overlay under
    /// its members' slots).
    pub(crate) fn short_of_uplink(&self, now: Timestamp, channel: ChannelId) -> bool {
        let window_us = self.cfg.heartbeat_interval_ms.saturating_mul(1000);
        let refused = self
            .unmet_demand
            .get(&channel)
            .is_some_and(|t| now.as_micros().saturating_sub(t.as_micros()) <= window_us);
        refused
            || self
                .peers
                .get(&channel)
                .is_some_and(|o| !o.ejected.is_empty() || !o.pending.is_empty())
    }

    /// What `channel` uses of `node`'s uplink now (bps): the least uplink its
    /// peer overlay needs for the member's booked children, and for a server
    /// the uplink of what the channel's VAN carries there (children and
    /// viewers, at the relay's uplink per child), whichever is more (a
    /// waypoint's peer children are also in its heartbeat's children).
    pub(crate) fn channel_use_bps(&self, node: NodeId, channel: ChannelId) -> u64 {
        let peers = self
            .peers
            .get(&channel)
            .and_then(|o| o.member_need_bps(node))
            .unwrap_or(0);
        let Some(r) = self.registry.get(node) else {
            return peers;
        };
        if r.role == NodeRole::Peer {
            return peers;
        }
        // Rounded up, so the share read back as children (`share_room`) holds them.
        let per_child =
            u128::from(self.server_uplink_bps(node)).div_ceil(u128::from(r.capacity.max(1)));
        let carried = u128::from(self.channel_load(node, channel)) * per_child;
        peers.max(u64::try_from(carried).unwrap_or(u64::MAX))
    }
}
