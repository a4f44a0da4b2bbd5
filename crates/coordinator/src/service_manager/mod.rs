//! The service manager (C1, seed 002: "if no DCM is currently responsible for the
//! content, service manager configures a DCM"): it creates the managers and
//! retires them, and is the only part that adds one to the coordinator's maps
//! or removes one ([`ManagerMap`]'s `insert` and `remove` are visible here alone).
//!
//! One manager per channel and overlay strategy today — not yet one per
//! (channel, region): the relays' VAN manager (`van::manager::ChannelManager`)
//! when the channel is announced, the peer overlay (`peers::PeerOverlay`) at its
//! first peer's watch, with the origin and the waypoint relays on its top level
//! (a waypoint with its channel's share of its uplink, C9: `uplink_ledger`).
//! Both are retired together when the channel has had no origin and no viewer
//! for `channel_retire_after_ms` ([`retire`]); managers split and merged per
//! region (C8) are issue 12's.
//!
//! - [`managers`] — the map of managers of one kind, by channel.
//! - [`interface`] — one read-only view over the managers of both strategies.
//! - [`verbs`] — the routed verbs: the one interface through which the router
//!   hands messages and ticks to the managers of both strategies.
//! - [`retire`] — unused channels' managers retired, every part's state for
//!   them dropped.
//! - [`footprint`] — what each part keeps for a channel (read-only).

pub mod footprint;
pub mod interface;
pub mod managers;
pub mod retire;
pub mod verbs;

pub use footprint::ChannelFootprint;
pub use interface::{ManagerView, Strategy};
pub use managers::ManagerMap;

use crate::coordinator::Coordinator;
use crate::manager::ChannelManager;
use crate::peers::{MemberKind, PeerOverlay};
use crate::policy::parent_rules::parent_policy;
use tiercast_proto::{ChannelDesc, ChannelId, NodeId, NodeRole, Timestamp};

impl Coordinator {
    /// A new channel's relays get their VAN manager (V1–V11).
    pub(crate) fn start_van_manager(&mut self, desc: ChannelDesc, origin: NodeId) {
        let id = desc.id;
        self.channels.insert(id, ChannelManager::new(desc, origin));
    }

    /// The uplink a server (origin, waypoint relay) gives the peer overlay.
    pub(crate) fn server_uplink_bps(&self, id: NodeId) -> u64 {
        let declared = self.registry.get(id).map_or(0, |r| r.uplink_kbps);
        let kbps = if declared > 0 {
            declared
        } else {
            self.cfg.peers.default_server_uplink_kbps
        };
        u64::from(kbps) * 1000
    }

    /// The channel's peer overlay, created at its first peer's watch with the
    /// origin and the waypoints on its top level. False: no such channel.
    pub(crate) fn start_peer_overlay(&mut self, now: Timestamp, channel: ChannelId) -> bool {
        if self.peers.contains_key(&channel) {
            return true;
        }
        let rules = self.parent_rules.clone();
        let policy = parent_policy(&rules);
        let Some(m) = self.channels.get(&channel) else {
            return false;
        };
        let desc = m.desc.clone();
        let origin = m.origin;
        let pc = self.cfg.peers.clone();
        let mut o = PeerOverlay::new(
            desc,
            pc.substreams,
            u64::from(pc.stream_rate_kbps) * 1000,
            pc.uplink_headroom,
            now,
        );
        o.top_repair_share = pc.top_repair_share.clamp(0.0, 0.9);
        o.cluster_rules = pc.cluster_rules();
        let mut servers = vec![(origin, MemberKind::Origin)];
        servers.extend(
            self.registry
                .iter()
                .filter(|(_, r)| r.alive && r.role == NodeRole::Relay && r.tier == 1)
                .map(|(id, _)| (*id, MemberKind::Waypoint)),
        );
        for (id, kind) in servers {
            let Some(r) = self.registry.get(id).filter(|r| r.alive) else {
                continue;
            };
            let (info, region) = (r.info.clone(), r.region_id);
            let declared = self.server_uplink_bps(id);
            // C9: a waypoint serves this channel with its share of its uplink
            // (all of it when no other channel holds one); the origin's is
            // the channel's own.
            let uplink = match kind {
                MemberKind::Waypoint => self.book_uplink(now, channel, id, declared),
                _ => declared,
            };
            o.join(now, info, region, kind, uplink, &pc, policy);
        }
        self.peers.insert(channel, o);
        true
    }
}
