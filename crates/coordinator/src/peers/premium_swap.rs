//! A premium member a full recomputation left without a parent in some tree
//! takes free members' places (C3's provider rule `premium_first`, C6's
//! ejection): the weakest free member of its group is ejected and the premium
//! member placed again — and when one free member's place is not enough, the
//! next one's, up to k of them, before the premium member goes itself.
//!
//! Why more than one: a free member that is interior in the tree the premium
//! member lacks takes its children's links with it, and they are re-homed
//! first, on the links it freed. `region-cap-premium` seed 39 at 20 s: premium
//! us member 441 lacked tree 0; the weakest free member, 551 (3 slots, interior
//! in tree 0, 3 children there), was ejected, its children took back the 3
//! links across it freed (97 of the hand-over's 97 booked again), and 441 was
//! ejected too — held out for a minute and turned away to the end (premium
//! continuity 0.9847). Each free member out frees its k links less its slots,
//! so k of them free at least k links. A premium member still unplaced then
//! is placed with its links across booked against the cap's usual share
//! rather than a hand-over's lower ceiling (one member's few links fit in the
//! room the ceiling leaves), and only then, still unplaced, ejected as before.
//! After both, `region-cap-premium` seed 39 kept every premium member (1.0000,
//! worst held second 0.94 × the cap).

use super::overlay::PeerOverlay;
use super::select::ParentPolicy;
use crate::config::PeerConfig;
use crate::registry::RegionId;
use tiercast_proto::{NodeId, Timestamp};

impl PeerOverlay {
    /// Premium `id` of `region`, unplaced after a full recomputation, takes
    /// the places of up to k free members of its group, weakest first, until
    /// it is placed; each one ejected is added to `ejected`. Returns whether
    /// `id` was placed.
    pub(crate) fn premium_takes_free_places(
        &mut self,
        id: NodeId,
        region: RegionId,
        now: Timestamp,
        cfg: &PeerConfig,
        policy: &dyn ParentPolicy,
        ejected: &mut Vec<NodeId>,
    ) -> bool {
        for _ in 0..self.k {
            let Some((_, free)) = self.weakest_replaceable(region, now) else {
                break;
            };
            self.eject_member(free, cfg, policy);
            ejected.push(free);
            if self.place(id, false, cfg, policy) {
                return true;
            }
        }
        self.place_past_cap_handover(id, cfg, policy)
    }

    /// Premium `id` placed with new links across booked against the usual
    /// share of each cap rather than a hand-over's lower ceiling
    /// ([`super::cap_handover`]): the ceiling leaves room for the catch-up of
    /// the links kept across, and one member's few links fit in it.
    fn place_past_cap_handover(
        &mut self,
        id: NodeId,
        cfg: &PeerConfig,
        policy: &dyn ParentPolicy,
    ) -> bool {
        let handover = std::mem::take(&mut self.caps.handover);
        let placed = self.place(id, false, cfg, policy);
        self.caps.handover = handover;
        placed
    }
}
