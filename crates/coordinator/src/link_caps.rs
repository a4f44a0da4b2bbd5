//! From the policy store to the managers (C3 → C4, C5): the network policy's caps
//! on links between regions, in the registry's region ids, handed to every peer
//! overlay at each tick and right after policies are installed — so a changed cap
//! is in force within one heartbeat interval — and the links over a cap shed.
//!
//! Caps apply to viewers of the free class (every peer, until viewers carry a
//! class); a cap declared for premium viewers only does not bind them.

use crate::coordinator::Coordinator;
use crate::peers::caps::{region_pair, RegionPair};
use crate::policy::ViewerClass;
use crate::registry::RegionId;
use std::collections::BTreeMap;
use tiercast_proto::{ChannelId, Timestamp};

impl Coordinator {
    /// The caps in force between every two regions the registry knows (bit/s).
    pub fn region_caps_bps(&self) -> BTreeMap<RegionPair, u64> {
        let mut caps = BTreeMap::new();
        let names: Vec<(RegionId, &str)> = self
            .registry
            .region_names()
            .enumerate()
            .map(|(i, n)| (RegionId(i as u16), n))
            .collect();
        for (i, (a, an)) in names.iter().enumerate() {
            for (b, bn) in &names[i + 1..] {
                let Some(pair) = region_pair(*a, *b) else {
                    continue;
                };
                if let Some(cap) = self
                    .policy
                    .policies
                    .region_link_cap(an, bn, ViewerClass::Free)
                {
                    caps.insert(pair, (cap.mbps * 1e6).round().max(0.0) as u64);
                }
            }
        }
        caps
    }

    /// Every peer overlay takes the caps in force and sheds what is over them.
    pub(crate) fn enforce_link_caps(&mut self, now: Timestamp) {
        let caps = self.region_caps_bps();
        let pc = self.cfg.peers.clone();
        let chans: Vec<ChannelId> = self.peers.keys().copied().collect();
        for c in chans {
            let Some(o) = self.peers.get_mut(&c) else {
                continue;
            };
            if caps.is_empty() && !o.region_caps().any() {
                continue;
            }
            o.set_region_caps(caps.clone());
            let shed = o.shed_over_caps(&pc, &crate::peers::select::AllowAll);
            if shed > 0 {
                self.flush_peers(now, c);
            }
        }
    }
}
