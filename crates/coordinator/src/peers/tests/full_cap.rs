//! Test fixture of the cap tests (C3, C4, C6): an overlay whose cap between two
//! regions is full of free links — shared by `premium_preempt.rs` and
//! `cap_fallback.rs`.

use super::{cfg, info, join_classed, join_peers, with_origin, RATE};
use crate::peers::caps::{region_pair, CAP_BOOKABLE_SHARE};
use crate::peers::overlay::{MemberKind, PeerOverlay};
use crate::peers::select::AllowAll;
use crate::registry::RegionId;
use std::collections::BTreeMap;
use tiercast_proto::Timestamp;

pub(crate) const EU: RegionId = RegionId(0);
pub(crate) const US: RegionId = RegionId(1);

/// The cap that books `links` substream links (a quarter of the stream each).
pub(crate) fn cap_for(links: u64) -> u64 {
    ((links * (RATE / 4)) as f64 / CAP_BOOKABLE_SHARE).ceil() as u64
}

/// EU has the origin and strong peers; US peers 10 and 11 (free) give
/// nothing, so each of their links crosses; the cap carries 5 links and is
/// full. With `fallback_links`, a premium fall-back of that many links.
pub(crate) fn full_cap(fallback_links: Option<u64>) -> PeerOverlay {
    let t0 = Timestamp::ZERO;
    let c = cfg();
    let mut o = with_origin(t0, &c, 4 * RATE);
    join_peers(&mut o, t0, &c, 2..6, 8 * RATE);
    let pair = region_pair(EU, US).expect("two regions");
    o.set_region_caps(BTreeMap::from([(pair, cap_for(5))]));
    if let Some(f) = fallback_links {
        o.set_region_cap_fallbacks(BTreeMap::from([(pair, cap_for(f))]));
    }
    for id in 10..12 {
        o.join(t0, info(id), US, MemberKind::Peer, 0, &c, &AllowAll);
    }
    assert_eq!(o.booked_across(pair), 5 * (RATE / 4), "the cap is full");
    o
}

/// A peer with no uplink joins US, premium or free.
pub(crate) fn join(o: &mut PeerOverlay, id: u32, premium: bool) {
    join_classed(o, id, US, premium);
}
