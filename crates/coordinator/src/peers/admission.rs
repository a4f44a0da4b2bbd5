//! Admission near capacity (C6): whether the overlay can carry one more bottom
//! member, counted in substream slots as the ejection rule counts them (each
//! uplink less its headroom, within its link cap). A newcomer that gives at least
//! what it takes (k slots) is always let in; a weaker one only while the members'
//! slots cover everyone's k and the top level's push links with it — otherwise
//! it would be fed by taking from the members until the next full recomputation
//! ejected someone, and in a flash crowd every member's stream fell behind
//! meanwhile (a tight population's admitted continuity 0.97). An ejected peer
//! comes back only with a reserve to spare (hysteresis). O(top members): the
//! slots and the top level's size are kept with the spare index.

use super::overlay::PeerOverlay;
use tiercast_proto::NodeId;

impl PeerOverlay {
    /// Slots the members (and a newcomer of this uplink) have, and the slots
    /// needed to feed every bottom member (and the newcomer) and the top level's
    /// push links.
    fn supply_and_demand(&self, uplink_bps: u64) -> (u64, u64) {
        let k = u64::from(self.k);
        let supply = self.slots_total() + u64::from(self.slots_for(uplink_bps));
        let top_use: u64 = self.top_children.values().map(|s| s.len() as u64 * k).sum();
        let demand = (self.bottom_count() as u64 + 1) * k + top_use;
        (supply, demand)
    }

    /// Whether one more bottom member of this uplink keeps the overlay feasible.
    pub fn fits(&self, uplink_bps: u64) -> bool {
        let (supply, demand) = self.supply_and_demand(uplink_bps);
        supply >= demand
    }

    /// Whether an ejected peer of this uplink may come back: it fits with a
    /// reserve to spare.
    pub fn would_fit(&self, uplink_bps: u64) -> bool {
        let (supply, demand) = self.supply_and_demand(uplink_bps);
        supply >= demand + crate::ejection::readmit_reserve_slots(demand, usize::from(self.k))
    }

    /// Whether `id`, never ejected, is let in now: a member already (asking
    /// again), one that gives what it takes, or one that fits.
    pub fn admits_newcomer(&self, id: NodeId, uplink_bps: u64) -> bool {
        self.members.contains_key(&id)
            || self.slots_for(uplink_bps) >= u32::from(self.k)
            || self.fits(uplink_bps)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::PeerConfig;
    use crate::peers::overlay::{MemberKind, PeerOverlay};
    use crate::peers::select::AllowAll;
    use crate::peers::tests::info;
    use crate::registry::RegionId;
    use tiercast_proto::{ChannelDesc, ChannelId, NodeId, Timestamp};

    const RATE: u64 = 2_000_000;

    #[test]
    fn a_weak_newcomer_waits_while_the_slots_are_short_and_comes_in_once_a_strong_peer_brings_room()
    {
        let cfg = PeerConfig::default();
        let desc = ChannelDesc {
            id: ChannelId(1),
            name: "live".into(),
            public_key: [0; 32],
        };
        let t0 = Timestamp(0);
        let mut o = PeerOverlay::new(desc, cfg.substreams, RATE, cfg.uplink_headroom, t0);
        let r = RegionId(0);
        let join = |o: &mut PeerOverlay, id: u32, kind, up: u64| {
            o.join(t0, info(id), r, kind, up, &cfg, &AllowAll);
        };
        // The origin's uplink carries two full streams (its top share aside).
        join(&mut o, 1, MemberKind::Origin, 3 * RATE);
        let weak = RATE / 2;
        let mut id = 10;
        while o.admits_newcomer(NodeId(id), weak) {
            join(&mut o, id, MemberKind::Peer, weak);
            id += 1;
            assert!(id < 100, "the slots never ran short");
        }
        o.check().expect("counted slots in step");
        assert!(!o.fits(weak), "turned away only when it does not fit");
        assert!(
            o.admits_newcomer(NodeId(10), weak),
            "a member asking again is let in"
        );
        assert!(
            o.admits_newcomer(NodeId(id), 4 * RATE),
            "one that gives what it takes always is"
        );
        join(&mut o, 200, MemberKind::Peer, 4 * RATE);
        assert!(
            o.admits_newcomer(NodeId(id), weak),
            "room brought by the strong one"
        );
        o.check().expect("counted slots in step");
    }
}
