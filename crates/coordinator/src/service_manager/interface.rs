//! One read-only interface over the managers of both overlay strategies (C1):
//! the relays' VAN manager and the peer overlay each show the channel they manage,
//! their strategy and how many nodes they carry, so drivers and the HTTP status
//! read every manager alike ([`crate::Coordinator::managers`]) without reaching
//! into either one's fields. What the router hands the managers to do is the
//! other half of the interface, [`super::verbs`].

use crate::coordinator::Coordinator;
use crate::manager::ChannelManager;
use crate::peers::PeerOverlay;
use tiercast_proto::ChannelDesc;

/// The overlay strategy a manager runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Tiers of relays, expanded and contracted (V1–V11).
    Van,
    /// Viewers' own uplinks: three levels, multi-tree, mesh (D1–D6, C2–C10).
    Peers,
}

impl Strategy {
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Van => "van",
            Strategy::Peers => "peers",
        }
    }
}

/// What every manager shows, whatever its strategy.
pub trait ManagerView {
    /// The channel it manages.
    fn channel(&self) -> &ChannelDesc;
    fn strategy(&self) -> Strategy;
    /// Nodes it carries now: active relays, or the overlay's members (the
    /// origin and waypoints included).
    fn carried(&self) -> usize;
}

impl ManagerView for ChannelManager {
    fn channel(&self) -> &ChannelDesc {
        &self.desc
    }

    fn strategy(&self) -> Strategy {
        Strategy::Van
    }

    fn carried(&self) -> usize {
        self.active.len()
    }
}

impl ManagerView for PeerOverlay {
    fn channel(&self) -> &ChannelDesc {
        &self.desc
    }

    fn strategy(&self) -> Strategy {
        Strategy::Peers
    }

    fn carried(&self) -> usize {
        self.members.len()
    }
}

impl Coordinator {
    /// Every manager, in channel order, the VAN's before the peer overlay's.
    pub fn managers(&self) -> impl Iterator<Item = &dyn ManagerView> {
        self.channels.iter().flat_map(move |(id, van)| {
            let peers = self.peers.get(id).map(|o| o as &dyn ManagerView);
            std::iter::once(van as &dyn ManagerView).chain(peers)
        })
    }
}
