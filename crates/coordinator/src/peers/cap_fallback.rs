//! A cap between two regions with a declared fall-back (C3: "a bandwidth cap
//! ignored for a premium viewer who would otherwise get nothing"; C4). A
//! `regions` `link_cap` whose `fallback` names a cap covering premium viewers
//! gives the overlay a second, premium-only cap on the pair
//! ([`PeerOverlay::set_region_cap_fallbacks`], from `policy/link_caps.rs`):
//!
//! - `select_parent` refuses a parent across the pair by the strict cap; when
//!   that leaves a **premium** child with no parent at all, it searches again
//!   with the fall-back cap ([`PeerOverlay::cap_fallback_allows`]) — a free
//!   child waits (`NoParent::Policy`);
//! - a premium joiner left waiting is placed again at once, so the fall-back is
//!   taken at its join, not at the next tick ([`PeerOverlay::place_premium_now`]);
//! - shedding keeps a premium child's link across while the pair is within its
//!   fall-back cap, and sheds free children's until theirs are within the cap
//!   ([`FallbackKeep`]);
//! - a premium newcomer into a region reached only across caps is admitted by
//!   the fall-back caps' slots (`region_fits_as`).
//!
//! Not covered: a full recomputation sizes a capped region's group by the strict
//! caps (its premium members left waiting take the fall-back at the next
//! retry); the reservation ledger (C5) partitions the strict caps only.

use super::caps::{bookable, RegionPair};
use super::overlay::PeerOverlay;
use super::select::ParentPolicy;
use crate::config::PeerConfig;
use std::collections::BTreeMap;
use tiercast_proto::NodeId;

impl PeerOverlay {
    /// The premium fall-back caps in force per pair (bit/s); returns whether
    /// they changed. A fall-back lower than the pair's cap counts as the cap.
    pub fn set_region_cap_fallbacks(&mut self, fallback: BTreeMap<RegionPair, u64>) -> bool {
        if fallback == self.caps.fallback {
            return false;
        }
        self.caps.fallback = fallback;
        true
    }

    /// The premium fall-back cap on `pair`, never below the pair's cap.
    pub(crate) fn fallback_cap(&self, pair: RegionPair) -> Option<u64> {
        let f = *self.caps.fallback.get(&pair)?;
        Some(self.caps.cap(pair).map_or(f, |c| f.max(c)))
    }

    /// Whether `child` may look again with the fall-back caps: premium, and
    /// some pair has one.
    pub(crate) fn may_cross_on_fallback(&self, child: NodeId) -> bool {
        !self.caps.fallback.is_empty() && self.members.get(&child).is_some_and(|m| m.premium)
    }

    /// As `cap_allows`, with the pair's fall-back cap where it has one.
    pub(crate) fn cap_fallback_allows(&self, child: NodeId, parent: NodeId) -> bool {
        let Some(pair) = self.pair_of(child, parent) else {
            return true;
        };
        match self.fallback_cap(pair) {
            Some(f) => self.booked_across(pair) + self.sub_rate() <= bookable(f),
            None => self.cap_allows(child, parent),
        }
    }

    fn is_premium(&self, id: NodeId) -> bool {
        self.members.get(&id).is_some_and(|m| m.premium)
    }

    /// What shedding over `pair`'s cap keeps, given its links across
    /// (`(order, child, tree)`): premium links while within the fall-back.
    pub(crate) fn fallback_keep(
        &self,
        pair: RegionPair,
        links: &[(u64, NodeId, u8)],
    ) -> FallbackKeep {
        let Some(f) = self.fallback_cap(pair) else {
            return FallbackKeep::default();
        };
        let premium = links.iter().filter(|(_, c, _)| self.is_premium(*c)).count() as u64;
        FallbackKeep {
            fallback: Some(bookable(f)),
            premium_bps: premium * self.sub_rate(),
        }
    }
}

/// A shedding pass's view of a pair's fall-back: its bookable cap and what
/// premium children book across.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FallbackKeep {
    fallback: Option<u64>,
    premium_bps: u64,
}

impl FallbackKeep {
    fn within_fallback(&self, o: &PeerOverlay, pair: RegionPair) -> bool {
        self.fallback.is_some_and(|f| o.booked_across(pair) <= f)
    }

    /// The pair is within its fall-back and its free links within `cap`.
    pub(crate) fn within(&self, o: &PeerOverlay, pair: RegionPair, cap: u64) -> bool {
        self.within_fallback(o, pair)
            && o.booked_across(pair).saturating_sub(self.premium_bps) <= cap
    }

    /// `child`'s link stays: a premium child while within the fall-back.
    pub(crate) fn keeps(&self, o: &PeerOverlay, child: NodeId, pair: RegionPair) -> bool {
        o.is_premium(child) && self.within_fallback(o, pair)
    }

    /// `child`'s link is about to be shed.
    pub(crate) fn shed(&mut self, o: &PeerOverlay, child: NodeId) {
        if self.fallback.is_some() && o.is_premium(child) {
            self.premium_bps = self.premium_bps.saturating_sub(o.sub_rate());
        }
    }
}

impl PeerOverlay {
    /// A premium member just in and left waiting: placed again now that its
    /// class is known (its join searched as a free viewer's) — on the caps'
    /// fall-back, or revoking a free member's link (`super::premium_preempt`).
    pub(crate) fn place_premium_now(
        &mut self,
        id: NodeId,
        cfg: &PeerConfig,
        policy: &dyn ParentPolicy,
    ) {
        if self.pending.contains(&id) && (self.may_cross_on_fallback(id) || self.preempts_free(id))
        {
            self.place(id, false, cfg, policy);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::peers::caps::region_pair;
    use crate::peers::select::{AllowAll, NoParent};
    use crate::peers::tests::full_cap::{full_cap, join, EU, US};
    use crate::peers::tests::{cfg, placed, RATE};
    use tiercast_proto::NodeId;

    #[test]
    fn with_the_cap_full_a_premium_viewer_crosses_only_on_a_declared_fallback_a_free_one_waits() {
        let pair = region_pair(EU, US).expect("two regions");
        // No fall-back declared: free and premium alike wait, with the reason.
        let mut o = full_cap(None);
        join(&mut o, 20, false);
        join(&mut o, 21, true);
        assert_eq!((placed(&o, 20), placed(&o, 21)), (0, 0));
        assert_eq!(
            o.select_parent(NodeId(21), 0, &[], 4, &AllowAll),
            Err(NoParent::Policy)
        );

        // A fall-back of 9 links for premium viewers: the free one still waits,
        // the premium one takes its 4 parents across the cap.
        let mut o = full_cap(Some(9));
        join(&mut o, 20, false);
        assert_eq!(placed(&o, 20), 0, "a free viewer waits");
        assert_eq!(
            o.select_parent(NodeId(20), 0, &[], 4, &AllowAll),
            Err(NoParent::Policy)
        );
        join(&mut o, 21, true);
        assert_eq!(placed(&o, 21), 4, "the premium viewer is placed across");
        assert_eq!(o.booked_across(pair), 9 * (RATE / 4));
        o.check().expect("invariants");

        // Shedding keeps the premium links (within the fall-back) and the
        // free ones within the cap: nothing is over either.
        let c = cfg();
        assert_eq!(o.shed_over_caps(&c, &AllowAll), 0);
        assert_eq!(placed(&o, 21), 4);
        // The fall-back cap is full too: a second premium viewer waits.
        join(&mut o, 22, true);
        assert_eq!(placed(&o, 22), 0);
    }
}
