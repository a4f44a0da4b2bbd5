//! What the coordinator keeps for one channel, part by part (C1): a read-only
//! view for operators and tests — after the service manager retired a channel
//! (`retire.rs`) every count is zero.

use crate::coordinator::Coordinator;
use tiercast_proto::ChannelId;

/// A channel's state in each part of the coordinator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChannelFootprint {
    /// Its relays' VAN manager exists.
    pub van_manager: bool,
    /// Its peer overlay exists.
    pub peer_overlay: bool,
    /// The content directory maps a name to it.
    pub named: bool,
    /// Parent-set versions kept (one per node told its parents there).
    pub parent_sets: usize,
    /// Nodes holding an uplink share for it (C9).
    pub uplink_shares: usize,
    /// Capped links its manager holds a reservation on (C5).
    pub reservations: usize,
    /// Protocol viewers placed on it.
    pub protocol_viewers: usize,
    /// Forecast entries (V7).
    pub forecast: usize,
    /// Links measured and lag counts (C2).
    pub network: usize,
    /// Servers-or-peers entries (C3).
    pub source_switches: usize,
    /// Its overlay's last turn-away is remembered (C9's lending).
    pub unmet_demand: bool,
    /// It is unused and on its way to retirement.
    pub retiring: bool,
}

impl ChannelFootprint {
    /// Nothing is kept for the channel anywhere.
    pub fn is_empty(&self) -> bool {
        *self == ChannelFootprint::default()
    }
}

impl Coordinator {
    /// What each part keeps for `channel` (see [`ChannelFootprint`]).
    pub fn channel_footprint(&self, channel: ChannelId) -> ChannelFootprint {
        ChannelFootprint {
            van_manager: self.channels.contains_key(&channel),
            peer_overlay: self.peers.contains_key(&channel),
            named: self.names.values().any(|c| *c == channel),
            parent_sets: self.parent_sets.on_channel(channel),
            uplink_shares: self.uplinks.holders(channel),
            reservations: self.channel_reservations(channel),
            protocol_viewers: self.viewer_map.on_channel(channel),
            forecast: self.forecast.tracked_on(channel),
            network: self.network.on_channel(channel),
            source_switches: self.source_switches.on_channel(channel),
            unmet_demand: self.unmet_demand.contains_key(&channel),
            retiring: self.retiring.unused_since(channel).is_some(),
        }
    }
}
