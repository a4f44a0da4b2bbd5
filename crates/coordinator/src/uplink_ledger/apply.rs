//! The coordinator's use of the uplink ledger (C9): a peer's share is booked
//! when it joins a channel's overlay and released when it leaves it; every
//! other channel whose share moved sees it at once. A periodic check makes sure
//! no overlay books more than its share of a shared node (e.g. after the
//! relaying rules gave a node its declared uplink back, `policy/relay_rules.rs`).

use crate::coordinator::Coordinator;
use crate::peers::MemberKind;
use crate::policy::parent_rules::parent_policy;
use tiercast_proto::{ChannelId, NodeId, Timestamp};

impl Coordinator {
    /// The ledger of shared uplinks (read-only).
    pub fn uplink_ledger(&self) -> &super::UplinkLedger {
        &self.uplinks
    }

    /// A channel's weight in the split: its stream rate (bps).
    pub(super) fn channel_weight(&self, channel: ChannelId) -> u64 {
        self.peers.get(&channel).map_or_else(
            || u64::from(self.cfg.peers.stream_rate_kbps) * 1000,
            |o| o.rate_bps,
        )
    }

    /// The uplink `channel`'s overlay would see for `peer` (declared
    /// `declared_bps`) if it joined now: all of it when on no other channel.
    pub(crate) fn uplink_quote(&self, channel: ChannelId, peer: NodeId, declared_bps: u64) -> u64 {
        let weight = self.channel_weight(channel);
        self.uplinks.quote(peer, channel, declared_bps, weight)
    }

    /// Books `peer`'s share for `channel` (it joins that overlay now); the other
    /// channels' shares that shrank are applied to their overlays at once.
    /// Returns the share (0 when the ledger is full: it relays nothing there).
    pub(crate) fn book_uplink(
        &mut self,
        now: Timestamp,
        channel: ChannelId,
        peer: NodeId,
        declared_bps: u64,
    ) -> u64 {
        let weight = self.channel_weight(channel);
        let Ok(grant) = self.uplinks.acquire(peer, channel, declared_bps, weight) else {
            return 0;
        };
        for (other, share) in grant.changed {
            self.apply_share(now, other, peer, share);
        }
        grant.share_bps
    }

    /// `peer` is out of `channel`'s overlay: its share goes back and its other
    /// channels' shares grow at once.
    pub(crate) fn release_uplink(&mut self, now: Timestamp, channel: ChannelId, peer: NodeId) {
        for (other, share) in self.uplinks.release(peer, channel) {
            self.apply_share(now, other, peer, share);
        }
    }

    /// `channel` was retired: every node's share in it goes back, and the
    /// other channels' shares that grew are applied to their overlays at once.
    pub(crate) fn release_channel_uplinks(&mut self, now: Timestamp, channel: ChannelId) {
        for (peer, other, share) in self.uplinks.release_channel(channel) {
            self.apply_share(now, other, peer, share);
        }
    }

    /// `peer` is out of every overlay (crashed, or gone).
    pub(crate) fn forget_uplink(&mut self, peer: NodeId) {
        self.uplinks.forget(peer);
    }

    /// Periodic: shares lent and taken back (`usage.rs`), then no overlay books
    /// more of a shared node than its share.
    pub(crate) fn enforce_uplink_shares(&mut self, now: Timestamp) {
        self.lend_uplinks(now);
        let nodes: Vec<NodeId> = self.uplinks.shared_nodes().collect();
        for peer in nodes {
            let shares: Vec<(ChannelId, u64)> = self.uplinks.shares(peer).collect();
            for (channel, share) in shares {
                let over = self
                    .peers
                    .get(&channel)
                    .and_then(|o| o.member_uplink(peer))
                    .is_some_and(|(_, uplink)| uplink > share);
                if over {
                    self.apply_share(now, channel, peer, share);
                }
            }
        }
    }

    /// `channel`'s overlay sees `share` as `peer`'s uplink. A node that may not
    /// relay now keeps none (the relaying rules give it back). Grown or shrunk in
    /// place while its booked children fit; else it is placed again with the
    /// share and its children re-homed (C6), its premium, history and fed state
    /// kept. The members whose parents changed are told. A waypoint relay
    /// (`relays.rs`) is treated alike; the relaying rules are the peers'.
    pub(super) fn apply_share(
        &mut self,
        now: Timestamp,
        channel: ChannelId,
        peer: NodeId,
        share: u64,
    ) {
        let waypoint = self
            .peers
            .get(&channel)
            .and_then(|o| o.member_uplink(peer))
            .is_some_and(|(kind, _)| kind == MemberKind::Waypoint);
        let uplink = if waypoint || self.may_relay(now, peer) {
            share
        } else {
            0
        };
        let rules = self.parent_rules.clone();
        let policy = parent_policy(&rules);
        let pc = self.cfg.peers.clone();
        let Some(o) = self.peers.get_mut(&channel) else {
            return;
        };
        // (A waypoint on standby comes back with its share of today.)
        if !o.set_member_uplink(now, peer, uplink, share, &pc, policy) {
            return;
        }
        self.flush_peers(now, channel);
    }
}
