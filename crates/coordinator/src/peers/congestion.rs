//! The peer overlay's side of C2: which of its links push blocks (only those
//! are compared), and what it does with a congested one. The comparison of sent
//! and received seqs is the network-condition monitor's
//! ([`crate::network_monitor::congestion`]); lagging for
//! `congestion_heartbeats` reports in a row ("rate under the substream rate for N
//! intervals", C6), the child is re-homed in the trees it took from that parent
//! and the parent's history drops. Only push links are compared: a lazy link
//! (D3's mesh, a bottom member's repair link) carries blocks only when asked.

use super::overlay::{Member, PeerOverlay};
use crate::config::PeerConfig;
use crate::network_monitor::NetworkMonitor;
use tiercast_proto::{Heartbeat, NodeId, Timestamp};

impl PeerOverlay {
    /// Whether `parent` pushes blocks to `child` now: its push parent on the top
    /// level, its parent in a bottom tree, or a recovery parent of the middle.
    pub(crate) fn pushes_to(&self, parent: NodeId, child: NodeId) -> bool {
        self.members.get(&child).is_some_and(|m| fed_by(m, parent))
    }

    /// Folds one heartbeat in through the monitor; returns links (parent, child)
    /// found congested.
    pub(crate) fn congestion_from(
        &mut self,
        now: Timestamp,
        monitor: &mut NetworkMonitor,
        hb: &Heartbeat,
        cfg: &PeerConfig,
    ) -> Vec<(NodeId, NodeId)> {
        let channel = self.desc.id;
        // Members gone since the last report: their lag counts start again.
        let departed: Vec<NodeId> = std::mem::take(&mut self.departed).into_iter().collect();
        monitor.forget_members(channel, &departed);
        // The sender's own entry is read once for all its parent links.
        let sender = self.members.get(&hb.node);
        let congested =
            monitor.congested_in(now, channel, hb, cfg.congestion_heartbeats, |p, c| {
                if c == hb.node {
                    sender.is_some_and(|m| fed_by(m, p))
                } else {
                    self.pushes_to(p, c)
                }
            });
        if !congested.is_empty() {
            self.stats.congested_links += congested.len() as u64;
        }
        congested
    }
}

/// Whether `parent` pushes blocks to the member `m` (see [`PeerOverlay::pushes_to`]).
fn fed_by(m: &Member, parent: NodeId) -> bool {
    m.eager == Some(parent)
        || m.parents.contains(&Some(parent))
        || m.recovery.contains(&Some(parent))
}
