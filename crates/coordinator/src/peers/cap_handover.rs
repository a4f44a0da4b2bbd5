//! The hand-over after a new or lowered cap between two regions (C3's network
//! policy `link_cap`, C5's booking, C6, C7): for [`CAP_HANDOVER_MS`] after a
//! cap comes into force below what the overlay has across the pair, new links
//! across are booked against a lower ceiling — [`CAP_HANDOVER_SHARE`] of the
//! cap, raised to what the capped region's premium members need across
//! ([`super::cap_rebuild`]'s per-tree share carries them), never above the
//! usual bookable share ([`premium_ceiling`]). A premium member a full
//! recomputation leaves unplaced may book past the ceiling
//! ([`super::premium_swap`]). A full recomputation in that window builds the capped
//! region's group with the ceiling as its source; after it, new links may book
//! up to the usual share again. Links already booked are not shed down to the
//! ceiling (only above the usual share, [`PeerOverlay::shed_over_caps`]).
//!
//! Why: the links across that stay carry more than their substream's rate for
//! the seconds after the cap. Measured on `region-cap` seed 31 with the
//! per-tree share (a debug count of every block across the pair): in seconds
//! 21–23 exactly the 114 booked links cross (no old link, no repair pull),
//! but 70, 39 and 12 of them carry more than 0.6 Mbit/s — 13.5, 6.3 and
//! 1.9 Mbit over the 57 booked, blocks 0.5–2 s behind the live edge: the other
//! region's members, relieved of the ~900 links across the cap removed, catch
//! up and forward their backlog. Up to 1.26 × what is booked; so 0.75 of the
//! cap leaves room for the catch-up, the usual 0.95 does not.

use super::caps::{bookable, RegionPair};
use super::overlay::PeerOverlay;
use crate::registry::RegionId;
use tiercast_proto::Timestamp;

/// Share of a cap new links across may book during its hand-over.
pub const CAP_HANDOVER_SHARE: f64 = 0.75;

/// How long the hand-over's ceiling holds after the cap comes into force.
pub const CAP_HANDOVER_MS: u64 = 5_000;

/// The hand-over's ceiling premium members raise it to (bit/s; 0: they do
/// not): their `need` across with its `margin` of one member's k more, when
/// the `usual` share carries it; else the usual share itself when it carries
/// their need without the margin; else nothing (they cannot all be carried
/// anyway, the lower ceiling stays). `region-cap-premium` seed 35: need 115
/// slots with the margin, 111 without, 114 in the usual share — kept at the
/// lower ceiling (90 slots) 6 premium members were ejected at 20 s (premium
/// continuity 0.92), with the usual share 2 (0.97, worst held second 0.98 ×
/// the cap).
pub(crate) fn premium_ceiling(need: u64, margin: u64, usual: u64) -> u64 {
    if need <= usual {
        need
    } else if need.saturating_sub(margin) <= usual {
        usual
    } else {
        0
    }
}

impl PeerOverlay {
    /// Starts a hand-over on every capped pair that has more booked across it
    /// than its cap's usual share (a cap new or lowered below what crosses):
    /// until `now` + [`CAP_HANDOVER_MS`], new links across book against the
    /// hand-over ceiling. Call after [`Self::set_region_caps`], before the
    /// recomputation the change brings.
    pub fn begin_cap_handovers(&mut self, now: Timestamp) {
        let until = now.plus_millis(CAP_HANDOVER_MS);
        let over: Vec<(RegionPair, u64)> = self
            .region_caps()
            .caps()
            .filter(|(p, cap)| self.booked_across(*p) > bookable(*cap))
            .collect();
        for (pair, cap) in over {
            let low = (cap as f64 * CAP_HANDOVER_SHARE) as u64;
            // Premium members' need, when the cap can carry it.
            let premium = premium_ceiling(
                self.premium_need_across(pair),
                u64::from(self.k) * self.sub_rate(),
                bookable(cap),
            );
            let ceiling = low.max(premium).min(bookable(cap));
            self.caps.handover.insert(pair, (until, ceiling));
        }
    }

    /// Ends the hand-overs whose time is up (each tick).
    pub fn end_cap_handovers(&mut self, now: Timestamp) {
        self.caps.handover.retain(|_, (until, _)| now < *until);
    }

    /// What new links across `pair` (capped at `cap`) may book in all (bit/s):
    /// the usual share, or the hand-over's ceiling while one runs.
    pub(crate) fn bookable_on(&self, pair: RegionPair, cap: u64) -> u64 {
        let usual = bookable(cap);
        self.caps
            .handover
            .get(&pair)
            .map_or(usual, |(_, c)| usual.min(*c))
    }

    /// The hand-over's ceiling on `pair` while one runs (bit/s).
    pub fn cap_handover_ceiling(&self, pair: RegionPair) -> Option<u64> {
        self.caps.handover.get(&pair).map(|(_, c)| *c)
    }

    /// With `premium_first` in force: what the premium bottom members of the
    /// region of `pair` reached only across caps need across it (bit/s, with the top level's links across):
    /// their k substreams each, the rebuild's reserve and one member's k more,
    /// less their own slots. The k more: with the reserve alone 1–2 premium
    /// members were left unplaceable in the per-tree share on 5 of 12 seeds of
    /// `region-cap-premium` (34, 35, 39, 40, 42) and ejected.
    fn premium_need_across(&self, pair: RegionPair) -> u64 {
        if self.premium_first.is_none() {
            // Without the rule premium members are ejected like any other.
            return 0;
        }
        let top = self.top_regions();
        let capped: Vec<RegionId> = [pair.0, pair.1]
            .into_iter()
            .filter(|r| !top.contains(r) && !top.is_empty())
            .collect();
        let k = u64::from(self.k);
        let (mut n, mut own) = (0u64, 0u64);
        for m in self
            .members
            .values()
            .filter(|m| m.premium && !m.top && capped.contains(&m.region))
        {
            n += 1;
            own += u64::from(m.slots);
        }
        if n == 0 {
            return 0;
        }
        let demand = n * k;
        let reserve = crate::ejection::reserve_slots(demand, usize::from(self.k));
        let slots = (demand + reserve + k).saturating_sub(own);
        slots * self.sub_rate() + self.top_bps_across(pair)
    }
}

#[cfg(test)]
#[path = "cap_handover_tests.rs"]
mod tests;
