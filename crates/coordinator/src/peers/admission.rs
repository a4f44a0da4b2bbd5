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
use super::select::ParentPolicy;
use crate::config::PeerConfig;
use crate::registry::RegionId;
use tiercast_proto::{NodeId, Timestamp};

impl PeerOverlay {
    /// Slots the members (and a newcomer of this uplink) have, and the slots
    /// needed to feed every bottom member (and the newcomer) and the top level's
    /// push links.
    pub(crate) fn supply_and_demand(&self, uplink_bps: u64) -> (u64, u64) {
        let k = u64::from(self.k);
        let supply = self.slots_total() + u64::from(self.slots_for(uplink_bps));
        let top_use: u64 = self.top_children.values().map(|s| s.len() as u64 * k).sum();
        let demand = (self.bottom_count() as u64 + 1) * k + top_use;
        (supply, demand)
    }

    /// Whether one more bottom member of this uplink keeps the overlay feasible.
    pub fn fits(&self, uplink_bps: u64) -> bool {
        let (supply, demand) = self.supply_and_demand(uplink_bps);
        supply >= demand + self.reserve(demand)
    }

    /// The slots a full recomputation keeps free ([`crate::ejection::reserve_slots`]):
    /// admitted into them, a peer would be ejected again at the next one.
    pub(crate) fn reserve(&self, demand: u64) -> u64 {
        crate::ejection::reserve_slots(demand, usize::from(self.k))
    }

    /// Whether an ejected peer of this uplink may come back: it fits with a
    /// reserve to spare.
    pub fn would_fit(&self, uplink_bps: u64) -> bool {
        let (supply, demand) = self.supply_and_demand(uplink_bps);
        supply >= demand + crate::ejection::readmit_reserve_slots(demand, usize::from(self.k))
    }

    /// `weak` gives its place to a newcomer ([`Self::replaced_by`]): it leaves
    /// the overlay, its children re-homed, and is ejected (C6).
    pub fn swap_out(&mut self, weak: NodeId, cfg: &PeerConfig, policy: &dyn ParentPolicy) {
        self.eject_member(weak, cfg, policy);
        self.stats.swapped_out += 1;
    }

    /// `id` leaves the overlay as ejected (C6): its children re-homed.
    pub(crate) fn eject_member(&mut self, id: NodeId, cfg: &PeerConfig, policy: &dyn ParentPolicy) {
        if !self.members.contains_key(&id) {
            return;
        }
        self.remove(id, cfg, policy);
        // `remove` counts a leave; this one is an ejection.
        self.stats.leaves -= 1;
        self.stats.ejected += 1;
        self.ejected.insert(id);
    }

    /// Weak members (they give less than they take) still without a parent in
    /// some tree after a full recomputation placed everyone it could: the
    /// overlay cannot carry them though the aggregate says it can (slots come in
    /// whole trees), so they go rather than wait unfed (C6). Returns them.
    pub(crate) fn eject_unplaceable(
        &mut self,
        now: Timestamp,
        cfg: &PeerConfig,
        policy: &dyn ParentPolicy,
    ) -> Vec<NodeId> {
        let (premium, mut stuck): (Vec<NodeId>, Vec<NodeId>) = self
            .pending
            .iter()
            .copied()
            .filter(|id| self.weakest_contains(*id))
            .partition(|id| self.protected(*id));
        for id in &stuck {
            self.eject_member(*id, cfg, policy);
        }
        // Under `premium_first`, a premium member left unplaced takes the
        // weakest free members' places instead, up to k of them, or books
        // past a cap's hand-over ceiling ([`super::premium_swap`]).
        // With no unprotected member left to replace, it goes as any other:
        // waiting, it would leave its own children in that tree unfed (a
        // premium us member of `region-cap-premium` seed 35 starved its subtree
        // for 64 s, neither it nor they ever re-homed).
        for id in premium {
            let region = self.members.get(&id).map_or(RegionId(0), |m| m.region);
            if self.premium_takes_free_places(id, region, now, cfg, policy, &mut stuck) {
                continue;
            }
            self.eject_member(id, cfg, policy);
            stuck.push(id);
        }
        stuck
    }

    /// Whether `id`, never ejected, is let in now: a member already (asking
    /// again), one that gives what it takes, or one that fits.
    pub fn admits_newcomer(&self, id: NodeId, uplink_bps: u64) -> bool {
        self.members.contains_key(&id)
            || self.slots_for(uplink_bps) >= u32::from(self.k)
            || self.fits(uplink_bps)
    }

    /// An ejected peer turned away once more: how many times since its ejection
    /// (its retry wait doubles with each).
    pub(crate) fn turned_away_again(&mut self, peer: NodeId) -> u32 {
        let n = self.turned_away.entry(peer).or_insert(0);
        *n = n.saturating_add(1);
        *n
    }

    /// `peer` was ejected at `now`: when, and how many times it was.
    pub(crate) fn ejected_again(&mut self, now: Timestamp, peer: NodeId) {
        let e = self.ejected_at.entry(peer).or_insert((now, 0));
        *e = (now, e.1.saturating_add(1));
    }

    /// Whether `peer`, ejected, is held out at `now` after `times` ejections.
    pub(crate) fn held_out(&self, now: Timestamp, peer: NodeId, times: u32, hold_us: u64) -> bool {
        self.ejected_at
            .get(&peer)
            .is_some_and(|(t, n)| *n >= times && now.saturating_since(*t) < hold_us)
    }

    /// `peer` is let in: no longer counted as ejected or turned away.
    pub(crate) fn let_in(&mut self, peer: NodeId) {
        self.ejected.remove(&peer);
        self.turned_away.remove(&peer);
    }

    /// `peer` is gone from every channel: its standby waypoint and its
    /// ejections are forgotten.
    pub(crate) fn forget_refusals(&mut self, peer: NodeId) {
        self.standby.remove(&peer);
        self.ejected.remove(&peer);
        self.turned_away.remove(&peer);
        self.ejected_at.remove(&peer);
    }
}

#[cfg(test)]
mod tests {
    use crate::config::PeerConfig;
    use crate::peers::overlay::{MemberKind, PeerOverlay};
    use crate::peers::select::AllowAll;
    use crate::peers::tests::info;
    use crate::registry::RegionId;
    use tiercast_proto::{NodeId, Timestamp};

    const RATE: u64 = 2_000_000;

    #[test]
    fn a_weak_newcomer_waits_while_the_slots_are_short_a_stronger_one_takes_the_weakest_place() {
        let cfg = PeerConfig::default();
        let t0 = Timestamp(0);
        let mut o = crate::peers::tests::overlay_with(&cfg, t0);
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
        // A newcomer at the rate gives 3 slots of 4: it takes the place of the
        // weakest member (1 slot), the number carried unchanged.
        let members = o.members.len();
        let (_, weakest) = o.weakest_replaceable(r, t0).expect("weak members");
        assert_eq!(o.replaced_by(RATE, false, r, t0), Some(weakest));
        assert_eq!(
            o.replaced_by(weak, false, r, t0),
            None,
            "never for one as weak"
        );
        o.swap_out(weakest, &cfg, &AllowAll);
        join(&mut o, id, MemberKind::Peer, RATE);
        assert_eq!(o.members.len(), members);
        assert!(o.ejected.contains(&weakest) && !o.members.contains_key(&weakest));
        assert_eq!((o.stats.ejected, o.stats.swapped_out), (1, 1));
        o.check().expect("counted slots in step");
        join(&mut o, 200, MemberKind::Peer, 4 * RATE);
        assert!(
            o.admits_newcomer(NodeId(id + 1), weak),
            "room brought by the strong one"
        );
        o.check().expect("counted slots in step");
    }
}
