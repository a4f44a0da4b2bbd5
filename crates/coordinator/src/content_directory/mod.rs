//! The content directory (C1, seed 002): the channels the coordinator knows —
//! names, ids, origins and their keys — and where a channel is managed.
//!
//! - [`announce`] — channel announcement, origin identity and takeover,
//!   re-registration (X1, X3, D7).
//! - [`backup`] — the channel's hot-standby origin, promoted when the primary
//!   is lost (D7, issue 12).
//! - [`clusters`] — (channel, region, network prefix) → the manager of a bottom
//!   cluster of the peer overlay; clusters split and merge by size (C1, C8).
//! - [`origin_probe`] — a reported origin is probed; unanswered, it is lost.
//! - [`ingest_health`] — the last ingest report of each channel's origin; a
//!   stalled encoder and its resumption are events (X1, issue 17).
//! - [`publish_keys`] — the channels' publish keys (digests) an operator keeps
//!   here, sent to each channel's origin and standby (X1, X3, issue 17).
//!
//! One manager per channel for its relays (a `van::manager::ChannelManager`) and
//! one for its peers (a `peers::PeerOverlay`), whose bottom level is managed per
//! (region, network-prefix range) cluster ([`clusters`], C8). When the service manager
//! retires a channel's managers (`service_manager/retire.rs`: no origin and no
//! viewer for `channel_retire_after_ms`) its name goes too: a watch of it is
//! answered as for a name never announced, and the next announce of the name
//! starts a new channel.

pub mod announce;
pub mod backup;
pub mod clusters;
pub mod ingest_health;
pub mod origin_probe;
pub mod publish_keys;

use crate::coordinator::Coordinator;
use crate::service_manager::ManagerView;
use tiercast_proto::ChannelId;

impl Coordinator {
    /// The channel announced under `name`.
    pub(crate) fn channel_named(&self, name: &str) -> Option<ChannelId> {
        self.names.get(name).copied()
    }

    /// The name `channel` was announced under (its VAN manager's description).
    pub(crate) fn channel_name(&self, channel: ChannelId) -> Option<String> {
        self.channels
            .get(&channel)
            .map(|m| m.channel().name.clone())
    }

    /// Whether some channel has a peer overlay yet (created at a first peer watch).
    pub(crate) fn has_peer_overlays(&self) -> bool {
        !self.peers.is_empty()
    }
}
