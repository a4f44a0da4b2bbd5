//! Caps on the links between two regions (C3's network policy `link_cap`, pruned
//! by C4's parent selection, booked as assigned like uplink). The coordinator
//! gives the overlay each capped region pair's share of the cap
//! ([`PeerOverlay::set_region_caps`], from the policy store through the
//! reservation ledger, C5); the overlay then:
//!
//! - books every substream link that crosses a capped pair (`r/k` each) as it is
//!   made and unbooks it as it goes ([`PeerOverlay::note_link`], called by
//!   `attach`, `detach`, `release_children`, `clear_children`), and recounts the
//!   top level's push links across it (`r` each) at every tick;
//! - refuses a parent across a pair whose booked rate would pass its cap
//!   ([`PeerOverlay::cap_allows`]: `select_parent`, a rebuild's `may_feed`, its
//!   top-level fall-back), so the child takes one in its own region or waits,
//!   with [`super::select::NoParent::Policy`] as the reason;
//! - sheds links while a pair is over its cap (a lowered cap, or the top level's
//!   links that came after), newest-booked first: each is re-homed without
//!   crossing, or left waiting ([`PeerOverlay::shed_over_caps`]).
//!
//! A bottom member's repair link (pulls, not booked) is never across a capped
//! pair: it takes a top member of its own region or an uncapped one, or none.
//!
//! Without a cap nothing is tracked: a population of a million pays nothing.
//! Top-level links are not refused (the stream must reach a region's top
//! members), only counted; a region whose top level alone passes the cap has
//! every bottom link across it shed.

use super::overlay::PeerOverlay;
use crate::registry::RegionId;
use std::collections::{BTreeMap, BTreeSet};
use tiercast_proto::NodeId;

/// A region pair, smaller id first.
pub type RegionPair = (RegionId, RegionId);

/// The pair of regions `a` and `b` in either order; `None` within one region.
pub fn region_pair(a: RegionId, b: RegionId) -> Option<RegionPair> {
    match a.cmp(&b) {
        std::cmp::Ordering::Less => Some((a, b)),
        std::cmp::Ordering::Greater => Some((b, a)),
        std::cmp::Ordering::Equal => None,
    }
}

/// Share of a cap the overlay books: the rest is left for what a link carries
/// beyond its substream's rate (framing, repair pulls, the overlap of a
/// connect-before-disconnect hand-over). Measured on `region-cap`: booked to
/// the cap itself, 30 of 70 seconds carried 1–4 % over it.
pub const CAP_BOOKABLE_SHARE: f64 = 0.95;

pub(super) fn bookable(cap: u64) -> u64 {
    (cap as f64 * CAP_BOOKABLE_SHARE) as u64
}

/// The overlay's caps and what it booked against them.
#[derive(Clone, Debug, Default)]
pub struct RegionCaps {
    /// Cap per pair (bit/s).
    caps: BTreeMap<RegionPair, u64>,
    /// Bottom links across a capped pair: (child, tree) → (pair, booking order).
    crossing: BTreeMap<(NodeId, u8), (RegionPair, u64)>,
    /// Bottom links per capped pair.
    links: BTreeMap<RegionPair, u64>,
    /// Top-level push links across each capped pair (bit/s), at the last recount.
    top_bps: BTreeMap<RegionPair, u64>,
    /// Booking counter (the order links were made, for shedding newest first).
    next: u64,
    /// Links shed because a pair was over its cap, ever.
    pub shed: u64,
    /// The declared fall-back cap per pair for premium viewers (bit/s;
    /// [`super::cap_fallback`]).
    pub(super) fallback: BTreeMap<RegionPair, u64>,
    /// Pairs in a hand-over after a new or lowered cap: (until, the ceiling
    /// new links across book against, bit/s; [`super::cap_handover`]).
    pub(super) handover: BTreeMap<RegionPair, (tiercast_proto::Timestamp, u64)>,
}

impl RegionCaps {
    /// Whether any pair is capped.
    pub fn any(&self) -> bool {
        !self.caps.is_empty()
    }

    /// The cap on `pair` (bit/s), if any.
    pub fn cap(&self, pair: RegionPair) -> Option<u64> {
        self.caps.get(&pair).copied()
    }

    /// Every capped pair with its cap.
    pub fn caps(&self) -> impl Iterator<Item = (RegionPair, u64)> + '_ {
        self.caps.iter().map(|(p, c)| (*p, *c))
    }
}

impl PeerOverlay {
    /// The caps in force on region pairs (bit/s); an absent pair is uncapped.
    /// A change recounts what crosses each capped pair; returns whether the
    /// caps changed.
    pub fn set_region_caps(&mut self, caps: BTreeMap<RegionPair, u64>) -> bool {
        if caps == self.caps.caps {
            return false;
        }
        let shed = self.caps.shed;
        let fallback = std::mem::take(&mut self.caps.fallback);
        let mut handover = std::mem::take(&mut self.caps.handover);
        handover.retain(|p, _| caps.contains_key(p));
        self.caps = RegionCaps {
            caps,
            shed,
            fallback,
            handover,
            ..Default::default()
        };
        if !self.caps.any() {
            return true;
        }
        let links: Vec<(NodeId, u8, NodeId)> = self.bottom_links().collect();
        for (child, tree, parent) in links {
            self.note_link(child, tree, parent, true);
        }
        self.recount_top_links();
        // Repair links (pulls, not booked) leave capped pairs.
        let across: Vec<NodeId> = self
            .members
            .iter()
            .filter(|(_, m)| !m.top)
            .filter(|(_, m)| {
                m.lazy.iter().any(|p| {
                    self.members
                        .get(p)
                        .is_some_and(|pm| self.pair_capped(m.region, pm.region))
                })
            })
            .map(|(id, _)| *id)
            .collect();
        for id in across {
            self.set_repair_link(id);
        }
        true
    }

    /// Whether links between regions `a` and `b` are capped.
    pub(crate) fn pair_capped(&self, a: RegionId, b: RegionId) -> bool {
        self.caps.any() && region_pair(a, b).is_some_and(|p| self.caps.cap(p).is_some())
    }

    /// The caps and their bookings (read-only).
    pub fn region_caps(&self) -> &RegionCaps {
        &self.caps
    }

    /// What the overlay has booked across `pair` (bit/s): its substream links and
    /// the top level's push links.
    pub fn booked_across(&self, pair: RegionPair) -> u64 {
        let links = self.caps.links.get(&pair).copied().unwrap_or(0);
        links * self.sub_rate() + self.caps.top_bps.get(&pair).copied().unwrap_or(0)
    }

    /// The top level's push links across `pair` at the last recount (bit/s).
    pub(super) fn top_bps_across(&self, pair: RegionPair) -> u64 {
        self.caps.top_bps.get(&pair).copied().unwrap_or(0)
    }

    pub(super) fn sub_rate(&self) -> u64 {
        self.rate_bps / u64::from(self.k)
    }

    pub(super) fn pair_of(&self, child: NodeId, parent: NodeId) -> Option<RegionPair> {
        let c = self.members.get(&child)?.region;
        let p = self.members.get(&parent)?.region;
        region_pair(c, p)
    }

    /// Whether one more substream link from `parent` to `child` stays within the
    /// cap of their region pair.
    pub(crate) fn cap_allows(&self, child: NodeId, parent: NodeId) -> bool {
        if !self.caps.any() {
            return true;
        }
        let Some(pair) = self.pair_of(child, parent) else {
            return true;
        };
        self.caps.cap(pair).is_none_or(|cap| {
            self.booked_across(pair) + self.sub_rate() <= self.bookable_on(pair, cap)
        })
    }

    /// A substream link was made (`add`) or dropped.
    pub(crate) fn note_link(&mut self, child: NodeId, tree: u8, parent: NodeId, add: bool) {
        if !self.caps.any() {
            return;
        }
        if let Some((pair, _)) = self.caps.crossing.remove(&(child, tree)) {
            if let Some(n) = self.caps.links.get_mut(&pair) {
                *n = n.saturating_sub(1);
            }
        }
        if !add {
            return;
        }
        let Some(pair) = self.pair_of(child, parent) else {
            return;
        };
        if self.caps.cap(pair).is_none() {
            return;
        }
        self.caps.next += 1;
        self.caps
            .crossing
            .insert((child, tree), (pair, self.caps.next));
        *self.caps.links.entry(pair).or_default() += 1;
    }

    /// Every bottom link was dropped (a rebuild).
    pub(crate) fn forget_bottom_links(&mut self) {
        self.caps.crossing.clear();
        self.caps.links.clear();
    }

    /// Counts the top level's push links across each capped pair again.
    pub(crate) fn recount_top_links(&mut self) {
        if !self.caps.any() {
            return;
        }
        let mut top: BTreeMap<RegionPair, u64> = BTreeMap::new();
        for id in &self.top_order {
            let Some(m) = self.members.get(id) else {
                continue;
            };
            let Some(parent) = m.eager.and_then(|p| self.members.get(&p)) else {
                continue;
            };
            if let Some(pair) = region_pair(m.region, parent.region) {
                if self.caps.cap(pair).is_some() {
                    *top.entry(pair).or_default() += self.rate_bps;
                }
            }
        }
        self.caps.top_bps = top;
    }

    pub(super) fn top_regions(&self) -> BTreeSet<RegionId> {
        self.top_order
            .iter()
            .filter_map(|id| Some(self.members.get(id)?.region))
            .collect()
    }

    /// Substream slots the caps let into region `r` from the regions with top
    /// members (after the top level's own links across); `None` when `r` has
    /// top members, or a way in that no cap bounds.
    pub(super) fn slots_across(
        &self,
        r: RegionId,
        top_regions: &BTreeSet<RegionId>,
        premium: bool,
    ) -> Option<u64> {
        if top_regions.contains(&r) || top_regions.is_empty() {
            return None;
        }
        let sub = self.sub_rate().max(1);
        top_regions.iter().try_fold(0u64, |acc, t| {
            let pair = region_pair(r, *t)?;
            let cap = self.caps.cap(pair)?;
            // A declared premium fall-back, else the usual share (or a
            // hand-over's ceiling, [`super::cap_handover`]).
            let cap = match self.fallback_cap(pair).filter(|_| premium) {
                Some(f) => bookable(f),
                None => self.bookable_on(pair, cap),
            };
            let top = self.caps.top_bps.get(&pair).copied().unwrap_or(0);
            Some(acc + cap.saturating_sub(top) / sub)
        })
    }

    /// Whether one more bottom member of this uplink in `region` keeps the
    /// region feasible when only capped links lead into it: its members' slots
    /// and what the caps let across cover their k each, with the reserve a full
    /// recomputation keeps (`readmit`: the larger one an ejected peer needs).
    /// True when no cap bounds the region. Cost: O(members) under a cap.
    pub fn region_fits(&self, region: RegionId, uplink_bps: u64, readmit: bool) -> bool {
        self.region_fits_as(region, uplink_bps, readmit, false)
    }

    /// As [`Self::region_fits`], for a premium newcomer when `premium`: the
    /// caps' slots counted with their premium fall-backs ([`super::cap_fallback`]).
    pub fn region_fits_as(
        &self,
        region: RegionId,
        uplink_bps: u64,
        readmit: bool,
        premium: bool,
    ) -> bool {
        let Some((supply, n)) = self.capped_group_books_as(region, premium) else {
            return true;
        };
        let supply = supply + u64::from(self.slots_for(uplink_bps));
        let demand = (n + 1) * u64::from(self.k);
        let reserve = if readmit {
            crate::ejection::readmit_reserve_slots(demand, usize::from(self.k))
        } else {
            crate::ejection::reserve_slots(demand, usize::from(self.k))
        };
        supply >= demand + reserve
    }

    /// Whether `region` is reached only across caps (a rebuild's group of its own).
    pub(crate) fn capped_group(&self, region: RegionId) -> bool {
        self.caps.any()
            && self
                .slots_across(region, &self.top_regions(), false)
                .is_some()
    }

    /// A capped group's books: the slots its bottom members have plus what its
    /// caps let across, and how many bottom members it has; `None` when
    /// `region` is not reached only across caps. O(members).
    pub(crate) fn capped_group_books(&self, region: RegionId) -> Option<(u64, u64)> {
        if !self.caps.any() {
            return None;
        }
        self.capped_group_books_as(region, false)
    }

    /// As [`Self::capped_group_books`], the caps' slots counted with the
    /// premium fall-back caps when `premium`.
    pub(crate) fn capped_group_books_as(
        &self,
        region: RegionId,
        premium: bool,
    ) -> Option<(u64, u64)> {
        if !self.caps.any() {
            return None;
        }
        let across = self.slots_across(region, &self.top_regions(), premium)?;
        let (mut supply, mut n) = (across, 0u64);
        for m in self
            .members
            .values()
            .filter(|m| m.region == region && !m.top)
        {
            supply += u64::from(m.slots);
            n += 1;
        }
        Some((supply, n))
    }

    /// The rebuild's groups: each region with bottom members, no top member,
    /// and only capped pairs to the regions that have top members, is a group
    /// of its own whose source is what its caps let across (in substream
    /// slots, at most the top level's); the rest is one group with what is left
    /// of the top level's `source_slots`. Without caps: one group.
    pub(crate) fn cap_groups(
        &self,
        bottom: Vec<crate::multitree::PeerCapacity>,
        source_slots: u64,
    ) -> Vec<(Vec<crate::multitree::PeerCapacity>, u64)> {
        if !self.caps.any() {
            return vec![(bottom, source_slots)];
        }
        let top_regions = self.top_regions();
        let mut by_region: BTreeMap<RegionId, Vec<crate::multitree::PeerCapacity>> =
            BTreeMap::new();
        for p in bottom {
            let r = self.members.get(&p.id).map_or(RegionId(0), |m| m.region);
            by_region.entry(r).or_default().push(p);
        }
        let mut capped = Vec::new();
        let mut rest = Vec::new();
        for (r, members) in by_region {
            match self.slots_across(r, &top_regions, false) {
                Some(slots) => capped.push((members, slots)),
                None => rest.extend(members),
            }
        }
        // The uncapped group keeps what it lacks of the top level's slots (its
        // members' own slots short of their k each, with the reserve; at least
        // one per tree), the capped groups share the rest in region order.
        let k = u64::from(self.k);
        let sub = self.sub_rate().max(1);
        let own: u64 = rest.iter().map(|p| p.uplink_bps / sub).sum();
        let demand = rest.len() as u64 * k;
        let need = (demand + crate::ejection::reserve_slots(demand, usize::from(self.k)))
            .saturating_sub(own)
            .max(k);
        let mut left = source_slots.saturating_sub(need);
        let mut groups = Vec::new();
        for (members, slots) in capped {
            let slots = slots.min(left);
            left -= slots;
            groups.push((members, slots));
        }
        let left = source_slots - groups.iter().map(|(_, s)| s).sum::<u64>();
        groups.insert(0, (rest, left));
        groups
    }

    /// Sheds substream links across every pair over its cap, newest first: each
    /// is re-homed without crossing, or its child waits. Returns the links shed.
    pub(crate) fn shed_over_caps(
        &mut self,
        cfg: &crate::config::PeerConfig,
        policy: &dyn super::select::ParentPolicy,
    ) -> u64 {
        self.recount_top_links();
        let over: Vec<RegionPair> = self
            .caps
            .caps()
            .filter(|(p, cap)| self.booked_across(*p) > bookable(*cap))
            .map(|(p, _)| p)
            .collect();
        let mut shed = 0;
        for pair in over {
            let mut links: Vec<(u64, NodeId, u8)> = self
                .caps
                .crossing
                .iter()
                .filter(|(_, (p, _))| *p == pair)
                .map(|((c, t), (_, order))| (*order, *c, *t))
                .collect();
            links.sort_unstable_by(|a, b| b.cmp(a));
            let cap = self.caps.cap(pair).map_or(u64::MAX, bookable);
            // Premium links within a declared fall-back stay; free ones go
            // until what they book is within the cap ([`super::cap_fallback`]).
            let mut keep = self.fallback_keep(pair, &links);
            for (_, child, tree) in links {
                if self.booked_across(pair) <= cap || keep.within(self, pair, cap) {
                    break;
                }
                if keep.keeps(self, child, pair) {
                    continue;
                }
                keep.shed(self, child);
                let old = self.detach(child, tree);
                shed += 1;
                self.stats.reassignments += 1;
                let avoid: Vec<NodeId> = old.into_iter().collect();
                match self.select_parent(child, tree, &avoid, cfg.candidates, policy) {
                    Ok(p) => self.attach(child, tree, p),
                    Err(_) => {
                        self.pending.insert(child);
                    }
                }
            }
        }
        self.caps.shed += shed;
        shed
    }
}

#[cfg(test)]
mod tests {
    use super::region_pair;
    use crate::peers::overlay::{MemberKind, PeerOverlay};
    use crate::peers::select::{AllowAll, NoParent};
    use crate::peers::tests::{cfg, crossing_links, info, join_peers, with_origin, RATE};
    use crate::registry::RegionId;
    use std::collections::BTreeMap;
    use tiercast_proto::{NodeId, Timestamp};

    /// A cap that books exactly `links` substream links.
    fn cap_for(links: u64) -> u64 {
        ((links * (RATE / 4)) as f64 / super::CAP_BOOKABLE_SHARE).ceil() as u64
    }

    const EU: RegionId = RegionId(0);
    const US: RegionId = RegionId(1);

    /// Region 0 (the origin's) has strong peers 2..6; region 1's peers 10.. give
    /// nothing, so every one of their substream links crosses the pair.
    fn two_regions(us_peers: std::ops::Range<u32>) -> PeerOverlay {
        let t0 = Timestamp::ZERO;
        let c = cfg();
        let mut o = with_origin(t0, &c, 4 * RATE);
        join_peers(&mut o, t0, &c, 2..6, 8 * RATE);
        for id in us_peers {
            o.join(t0, info(id), US, MemberKind::Peer, 0, &c, &AllowAll);
        }
        o
    }

    #[test]
    fn a_cap_between_two_regions_bounds_the_links_across_and_the_rest_wait_with_a_reason() {
        let uncapped = two_regions(10..16);
        let sub = RATE / 4;
        assert_eq!(
            crossing_links(&uncapped),
            6 * 4,
            "unrestricted: all 24 links cross"
        );

        let mut o = two_regions(10..10);
        let pair = region_pair(EU, US).expect("two regions");
        o.set_region_caps(BTreeMap::from([(pair, cap_for(5))]));
        let c = cfg();
        for id in 10..16 {
            o.join(
                Timestamp::ZERO,
                info(id),
                US,
                MemberKind::Peer,
                0,
                &c,
                &AllowAll,
            );
        }
        assert_eq!(crossing_links(&o), 5, "never more than the cap carries");
        assert_eq!(o.booked_across(pair), 5 * sub);
        assert!(!o.pending.is_empty(), "the others wait");
        let waiting = *o.pending.iter().next().expect("one waits");
        let tree = (0..4u8)
            .find(|t| o.members[&waiting].parents[usize::from(*t)].is_none())
            .expect("a tree without a parent");
        assert_eq!(
            o.select_parent(waiting, tree, &[], 4, &AllowAll),
            Err(NoParent::Policy),
            "the reason is the policy"
        );
        o.check().expect("invariants");
    }

    #[test]
    fn a_lowered_cap_sheds_the_newest_links_and_a_lifted_one_lets_the_waiting_in() {
        let mut o = two_regions(10..14);
        let pair = region_pair(EU, US).expect("two regions");
        let sub = RATE / 4;
        assert_eq!(crossing_links(&o), 16);
        o.set_region_caps(BTreeMap::from([(pair, cap_for(7))]));
        assert_eq!(
            o.booked_across(pair),
            16 * sub,
            "a new cap counts what is there"
        );
        let c = cfg();
        let shed = o.shed_over_caps(&c, &AllowAll);
        assert_eq!(shed, 9);
        assert_eq!(crossing_links(&o), 7);
        assert_eq!(o.region_caps().shed, 9);
        assert!(
            o.pending.contains(&NodeId(13)),
            "the newest joiner lost links first"
        );
        o.check().expect("invariants");

        o.set_region_caps(BTreeMap::new());
        o.retry_pending(Timestamp::ZERO, &c, &AllowAll);
        assert_eq!(crossing_links(&o), 16, "without the cap every link is back");
        assert!(o.pending.is_empty());
    }

    #[test]
    fn a_full_recomputation_keeps_within_the_cap() {
        let mut o = two_regions(10..20);
        let pair = region_pair(EU, US).expect("two regions");
        let sub = RATE / 4;
        o.set_region_caps(BTreeMap::from([(pair, cap_for(12))]));
        let c = cfg();
        o.shed_over_caps(&c, &AllowAll);
        o.full_recompute(Timestamp::ZERO.plus_millis(30_000), &c, &AllowAll);
        assert!(
            crossing_links(&o) <= 12,
            "{} links across",
            crossing_links(&o)
        );
        assert_eq!(o.booked_across(pair), crossing_links(&o) * sub);
        o.check().expect("invariants");
    }
}
