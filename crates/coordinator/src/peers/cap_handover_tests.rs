//! Tests of a cap's hand-over (C3, C5, C6): new links across book only to its
//! ceiling while it runs, premium members keep what they need, and it ends.

use super::{CAP_HANDOVER_MS, CAP_HANDOVER_SHARE};
use crate::peers::caps::{bookable, region_pair, CAP_BOOKABLE_SHARE};
use crate::peers::overlay::{MemberKind, PeerOverlay};
use crate::peers::select::AllowAll;
use crate::peers::tests::{
    cfg, crossing_links, info, join_classed, join_peers, placed, with_origin, RATE,
};
use crate::registry::RegionId;
use std::collections::BTreeMap;
use tiercast_proto::{NodeId, Timestamp};

const EU: RegionId = RegionId(0);
const US: RegionId = RegionId(1);
const SUB: u64 = RATE / 4;

/// A cap whose usual share books exactly `links` substream links.
fn cap_for(links: u64) -> u64 {
    ((links * SUB) as f64 / CAP_BOOKABLE_SHARE).ceil() as u64
}

/// EU has the origin and strong peers; US peers 10..30 give nothing, so each
/// of their 80 links crosses the pair before any cap; `premium` of them are
/// premium, under a `premium_first` rule.
fn uncapped(premium: u32) -> PeerOverlay {
    let t0 = Timestamp::ZERO;
    let c = cfg();
    let mut o = with_origin(t0, &c, 4 * RATE);
    join_peers(&mut o, t0, &c, 2..6, 8 * RATE);
    o.set_premium_first(Some(true));
    for id in 10..30 {
        if id < 10 + premium {
            join_classed(&mut o, id, US, true);
        } else {
            o.join(t0, info(id), US, MemberKind::Peer, 0, &c, &AllowAll);
        }
    }
    o
}

#[test]
fn a_cap_below_what_crosses_books_new_links_only_to_its_hand_over_ceiling_until_it_ends() {
    let mut o = uncapped(0);
    let pair = region_pair(EU, US).expect("two regions");
    assert_eq!(crossing_links(&o), 80, "uncapped: every link crosses");
    let cap = cap_for(20);
    let t = Timestamp::ZERO.plus_millis(20_000);
    o.set_region_caps(BTreeMap::from([(pair, cap)]));
    o.begin_cap_handovers(t);
    let ceiling = o.cap_handover_ceiling(pair).expect("a hand-over runs");
    assert_eq!(ceiling, (cap as f64 * CAP_HANDOVER_SHARE) as u64);

    // The recomputation the new cap brings builds within the ceiling (with
    // the usual share alone it books 16 links: 4 members and the reserve).
    o.full_recompute(t, &cfg(), &AllowAll);
    let booked = o.booked_across(pair);
    assert!(booked > 0, "the capped region is still fed across");
    assert!(
        booked <= ceiling,
        "{} links booked across, the ceiling is {:.2}",
        booked / SUB,
        ceiling as f64 / SUB as f64
    );
    o.check().expect("invariants");

    // Its time up, new links may book the usual share again.
    o.end_cap_handovers(t.plus_millis(CAP_HANDOVER_MS - 1));
    assert_eq!(o.cap_handover_ceiling(pair), Some(ceiling));
    o.end_cap_handovers(t.plus_millis(CAP_HANDOVER_MS));
    assert_eq!(o.cap_handover_ceiling(pair), None);
    assert_eq!(o.bookable_on(pair, cap), bookable(cap));
}

#[test]
fn a_cap_above_what_crosses_brings_no_hand_over() {
    let mut o = uncapped(0);
    let pair = region_pair(EU, US).expect("two regions");
    o.set_region_caps(BTreeMap::from([(pair, cap_for(80))]));
    o.begin_cap_handovers(Timestamp::ZERO);
    assert_eq!(o.cap_handover_ceiling(pair), None);
}

#[test]
fn a_hand_over_leaves_the_capped_regions_premium_members_what_they_need_across() {
    // 4 premium members with no uplink need 16 links, the reserve (4) and one
    // member's more (4): 24, the cap's whole usual share, above the
    // hand-over's 18.
    let mut o = uncapped(4);
    let pair = region_pair(EU, US).expect("two regions");
    let cap = cap_for(24);
    let t = Timestamp::ZERO.plus_millis(20_000);
    o.set_region_caps(BTreeMap::from([(pair, cap)]));
    o.begin_cap_handovers(t);
    assert_eq!(o.cap_handover_ceiling(pair), Some(bookable(cap)));
    o.full_recompute(t, &cfg(), &AllowAll);
    for id in 10..14 {
        assert!(o.members.contains_key(&NodeId(id)), "premium {id} kept");
        assert_eq!(
            placed(&o, id),
            4,
            "premium member {id} is fed in every tree"
        );
    }
    assert!(o.booked_across(pair) <= bookable(cap));
    o.check().expect("invariants");
}

#[test]
fn a_hand_over_keeps_its_ceiling_when_the_premium_members_need_more_than_the_cap() {
    // 24 links needed, 20 without one member's more, 19 bookable: they cannot
    // all be carried anyway.
    let mut o = uncapped(4);
    let pair = region_pair(EU, US).expect("two regions");
    let cap = cap_for(19);
    o.set_region_caps(BTreeMap::from([(pair, cap)]));
    o.begin_cap_handovers(Timestamp::ZERO);
    assert_eq!(
        o.cap_handover_ceiling(pair),
        Some((cap as f64 * CAP_HANDOVER_SHARE) as u64)
    );
}

#[test]
fn a_hand_over_gives_premium_members_the_usual_share_when_it_carries_them_without_the_margin() {
    // 24 links with the margin, 20 without, 21 bookable: the whole usual
    // share, not the hand-over's 15.
    let mut o = uncapped(4);
    let pair = region_pair(EU, US).expect("two regions");
    let cap = cap_for(21);
    o.set_region_caps(BTreeMap::from([(pair, cap)]));
    o.begin_cap_handovers(Timestamp::ZERO);
    assert_eq!(o.cap_handover_ceiling(pair), Some(bookable(cap)));
}

#[test]
fn the_premium_ceiling_is_the_need_the_usual_share_or_nothing() {
    use super::premium_ceiling;
    assert_eq!(premium_ceiling(90, 4, 100), 90, "the need, with its margin");
    assert_eq!(premium_ceiling(100, 4, 100), 100);
    assert_eq!(premium_ceiling(103, 4, 100), 100, "the margin cut short");
    assert_eq!(premium_ceiling(104, 4, 100), 100);
    assert_eq!(
        premium_ceiling(105, 4, 100),
        0,
        "not carried even without it"
    );
    assert_eq!(premium_ceiling(0, 4, 100), 0, "no premium member");
}

#[test]
fn a_premium_member_left_unplaced_by_the_hand_over_ceiling_is_placed_within_the_usual_share() {
    // A hand-over's ceiling of 20 links, the usual share 24: five premium us
    // members with no uplink fill the ceiling, the sixth finds no link
    // across and no free member to take one from. Placed past the ceiling
    // (within the usual share) rather than ejected.
    let c = cfg();
    let t = Timestamp::ZERO;
    let mut o = with_origin(t, &c, 4 * RATE);
    join_peers(&mut o, t, &c, 2..6, 8 * RATE);
    o.set_premium_first(Some(true));
    let pair = region_pair(EU, US).expect("two regions");
    let cap = cap_for(24);
    o.set_region_caps(BTreeMap::from([(pair, cap)]));
    o.caps
        .handover
        .insert(pair, (t.plus_millis(CAP_HANDOVER_MS), 20 * SUB));
    for id in 10..16 {
        join_classed(&mut o, id, US, true);
    }
    assert_eq!(o.booked_across(pair), 20 * SUB, "the ceiling is full");
    assert!(placed(&o, 15) < 4, "the sixth is short of a parent");
    let mut out = Vec::new();
    assert!(o.premium_takes_free_places(NodeId(15), US, t, &c, &AllowAll, &mut out));
    assert!(out.is_empty(), "no free member to eject");
    assert_eq!(placed(&o, 15), 4);
    assert_eq!(o.booked_across(pair), 24 * SUB);
    assert_eq!(
        o.cap_handover_ceiling(pair),
        Some(20 * SUB),
        "the ceiling holds for the others"
    );
    o.check().expect("invariants");
}
