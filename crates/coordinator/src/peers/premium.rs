//! Premium viewers before free ones (C3's provider rule `premium_first`, in C6's
//! ejection and admission). With the rule in force for the channel
//! ([`PeerOverlay::set_premium_first`], from the policy store at every tick):
//!
//! - a full recomputation ejects free members before any premium one (weakest
//!   first within each class: `PeerCapacity::protected`), and a premium member
//!   it could not place takes the weakest free member's place (or waits) rather
//!   than being ejected;
//! - a newcomer that does not fit takes the place of the weakest *free* member
//!   only, never a premium one's;
//! - with `preempt = true`, a premium newcomer takes the weakest free member's
//!   place even when that member gives as much as it does.
//!
//! Without the rule a viewer's class changes nothing. A viewer's class is what its
//! node declared at registration (`Register::premium`).

use super::coordinator::READMIT_HOLD_S;
use super::overlay::PeerOverlay;
use crate::registry::RegionId;
use tiercast_proto::{NodeId, Timestamp};

/// How many of the weakest members, beyond the first, are looked at for a leaf.
const LEAF_SCAN: usize = 64;

impl PeerOverlay {
    /// The `premium_first` rule for this channel: `Some(preempt)`, or `None`.
    pub fn set_premium_first(&mut self, rule: Option<bool>) {
        self.premium_first = rule;
    }

    /// Whether `id` is a premium member under a `premium_first` rule.
    pub(crate) fn protected(&self, id: NodeId) -> bool {
        self.premium_first.is_some() && self.members.get(&id).is_some_and(|m| m.premium)
    }

    /// Whether `id` was last ejected less than [`READMIT_HOLD_S`] ago (C6's
    /// scarcity: no peer ejected twice in a minute). Back in, a newcomer
    /// replaces it before that minute is out only when no other member will do
    /// (`tight-strong` seed 41: 13 of 15 double ejections were swap after swap),
    /// and a full recomputation ejects it only after every other member as weak
    /// (`super::rebuild`).
    pub(crate) fn back_within_hold(&self, id: NodeId, now: Timestamp) -> bool {
        self.ejected_at
            .get(&id)
            .is_some_and(|(t, _)| now.saturating_since(*t) < u64::from(READMIT_HOLD_S) * 1_000_000)
    }

    /// The weakest bottom member a newcomer of `region` may replace: in its
    /// group (its region when that is reached only across caps, else any region
    /// that is not), and under a `premium_first` rule a free one.
    pub(crate) fn weakest_replaceable(
        &self,
        region: RegionId,
        now: Timestamp,
    ) -> Option<(u32, NodeId)> {
        // A member back within a minute of its ejection is replaced only when
        // no other is: held outright, strong newcomers waited in a crowd and a
        // recomputation's worst second fell (`full-recompute` seed 33: 0.9999
        // -> 0.9897 for the members then).
        self.weakest_replaceable_held(region, Some(now))
            .or_else(|| self.weakest_replaceable_held(region, None))
    }

    /// [`Self::weakest_replaceable`], passing over the members back within a
    /// minute of their ejection at `now` (`None`: none passed over).
    fn weakest_replaceable_held(
        &self,
        region: RegionId,
        now: Option<Timestamp>,
    ) -> Option<(u32, NodeId)> {
        let plain = !self.region_caps().any() && self.premium_first.is_none();
        let capped = !plain && self.capped_group(region);
        let mut candidates = self.weakest_iter().filter(|(_, id)| {
            if now.is_some_and(|now| self.back_within_hold(*id, now)) {
                return false;
            }
            if plain {
                return true;
            }
            let Some(m) = self.members.get(id) else {
                return false;
            };
            let same_group = if capped {
                m.region == region
            } else {
                !self.capped_group(m.region)
            };
            same_group && !self.protected(*id)
        });
        let first = candidates.next()?;
        // Among the weakest, a leaf goes first: replacing one that feeds
        // children re-homes them in the middle of a flash crowd (`tight-strong`
        // seed 41: 19 such swap-outs around 11 s, the worst second 0.82).
        // A bounded look: the weakest are many and mostly alike.
        let leaf = std::iter::once(first)
            .chain(candidates.take(LEAF_SCAN))
            .take_while(|(slots, _)| *slots == first.0)
            .find(|(_, id)| self.members.get(id).is_some_and(|m| m.used == 0));
        Some(leaf.unwrap_or(first))
    }

    /// The member a newcomer of this uplink (and class) replaces when it is not
    /// let in otherwise: the weakest replaceable bottom peer, if it gives less
    /// than the newcomer — or, for a premium newcomer under a pre-empting
    /// `premium_first` rule, whatever it gives — and the overlay fits with the
    /// newcomer in its place. A full recomputation ejects the weakest first; a
    /// flash crowd let in weak peers first come and turned away stronger ones
    /// later (seed 33: 588 members carried at the end where ejection had kept
    /// 684).
    pub fn replaced_by(
        &self,
        uplink_bps: u64,
        premium: bool,
        region: RegionId,
        now: Timestamp,
    ) -> Option<NodeId> {
        let (weak_slots, weak) = self.weakest_replaceable(region, now)?;
        let new = self.slots_for(uplink_bps);
        // Out goes the weak member's demand (k) and its slots; in comes the
        // newcomer's demand and slots — counted in the newcomer's group when
        // its region is reached only across caps.
        let k = u64::from(self.k);
        let (supply, demand) = match self.capped_group_books(region) {
            Some((supply, n)) => (supply + u64::from(new), (n + 1) * k),
            None => self.supply_and_demand(uplink_bps),
        };
        let after = supply - u64::from(weak_slots);
        let preempts = premium && self.premium_first == Some(true);
        let fits = after >= demand - k + self.reserve(demand - k);
        ((weak_slots < new || preempts) && fits).then_some(weak)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::PeerConfig;
    use crate::peers::overlay::{MemberKind, PeerOverlay};
    use crate::peers::select::AllowAll;
    use crate::peers::tests::{info, RATE};
    use crate::registry::RegionId;
    use tiercast_proto::{NodeId, Timestamp};

    /// An overlay filled with weak peers until a weak newcomer no longer fits;
    /// peers 10.. joined in order, the even ones premium.
    fn full(cfg: &PeerConfig) -> (PeerOverlay, u32) {
        let t0 = Timestamp(0);
        let mut o = crate::peers::tests::overlay_with(cfg, t0);
        let r = RegionId(0);
        o.join(t0, info(1), r, MemberKind::Origin, 8 * RATE, cfg, &AllowAll);
        let weak = RATE / 2;
        let mut id = 10;
        while o.admits_newcomer(NodeId(id), weak) {
            o.join(t0, info(id), r, MemberKind::Peer, weak, cfg, &AllowAll);
            let premium = id % 2 == 0;
            o.update(NodeId(id), |m| m.premium = premium);
            id += 1;
        }
        (o, id)
    }

    #[test]
    fn under_premium_first_a_newcomer_never_replaces_a_premium_member_and_a_premium_one_may_preempt(
    ) {
        let cfg = PeerConfig::default();
        let t0 = Timestamp(0);
        let (mut o, next) = full(&cfg);
        let weak = RATE / 2;
        let r = RegionId(0);
        // Without the rule: the weakest member (the lowest id among equals) goes
        // for a stronger newcomer; an equal one replaces nobody.
        let weakest = o
            .replaced_by(RATE, false, r, t0)
            .expect("a stronger newcomer replaces");
        assert_eq!(
            o.replaced_by(weak, true, r, t0),
            None,
            "no rule: a class changes nothing"
        );
        // premium_first without pre-emption: only a free member is replaced.
        o.set_premium_first(Some(false));
        let free = o
            .replaced_by(RATE, false, r, t0)
            .expect("a free member to replace");
        assert!(!o.members[&free].premium, "{free:?} is free");
        assert!(o.members[&weakest].premium == (weakest.0 % 2 == 0));
        assert_eq!(
            o.replaced_by(weak, true, r, t0),
            None,
            "no pre-emption declared"
        );
        // With pre-emption, a premium newcomer as weak as the weakest free one
        // takes its place; a free one does not.
        o.set_premium_first(Some(true));
        let taken = o
            .replaced_by(weak, true, r, t0)
            .expect("a premium newcomer pre-empts");
        assert!(!o.members[&taken].premium);
        assert_eq!(o.replaced_by(weak, false, r, t0), None);
        // Every free member gone: nobody left to replace.
        let free_ids: Vec<NodeId> = o
            .members
            .iter()
            .filter(|(_, m)| m.kind == MemberKind::Peer && !m.premium)
            .map(|(id, _)| *id)
            .collect();
        for id in free_ids {
            o.swap_out(id, &cfg, &AllowAll);
        }
        assert_eq!(
            o.replaced_by(weak, true, r, t0),
            None,
            "premium members are never replaced"
        );
        assert!(next > 14, "{next}: several weak peers fit");
    }

    #[test]
    fn among_the_weakest_a_leaf_is_replaced_before_a_member_that_feeds_children() {
        let cfg = PeerConfig::default();
        let t0 = Timestamp(0);
        let (o, _) = full(&cfg);
        let r = RegionId(0);
        let replaced = o
            .replaced_by(RATE, false, r, t0)
            .expect("a stronger newcomer replaces");
        assert_eq!(o.members[&replaced].used, 0, "{replaced:?} feeds nobody");
        let (slots, _) = o.weakest_iter().next().expect("weak members");
        assert_eq!(
            o.members[&replaced].slots, slots,
            "still one of the weakest"
        );
        // A weakest member that feeds children exists, or the test shows nothing.
        let feeding = o
            .weakest_iter()
            .take_while(|(s, _)| *s == slots)
            .find(|(_, id)| o.members[id].used > 0);
        let (_, feeding) = feeding.expect("a weakest member with children");
        assert!(
            feeding < replaced,
            "{feeding:?} comes first by id and was passed over for a leaf"
        );
    }

    #[test]
    fn a_member_back_within_a_minute_of_its_ejection_is_not_replaced_before_the_minute_is_out() {
        let cfg = PeerConfig::default();
        let (mut o, _) = full(&cfg);
        let r = RegionId(0);
        let t = Timestamp(0).plus_millis(10_000);
        let first = o
            .replaced_by(RATE, false, r, t)
            .expect("a weak member to replace");
        // It had been ejected 5 s ago and came back.
        o.ejected_at
            .insert(first, (Timestamp(0).plus_millis(5_000), 1));
        let other = o
            .replaced_by(RATE, false, r, t)
            .expect("another weak member");
        assert_ne!(other, first, "held for the minute after its ejection");
        let later = Timestamp(0).plus_millis(65_000);
        assert_eq!(
            o.replaced_by(RATE, false, r, later),
            Some(first),
            "replaceable again"
        );
    }
}
