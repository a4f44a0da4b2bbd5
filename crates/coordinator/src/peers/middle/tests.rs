//! The middle level's bookkeeping (D2, D5, D6): who is in each region's cluster,
//! coded links with the region's n, n following the measured loss per region, and
//! recovery parents re-homed when the top level changes.

use super::Algorithm;
use crate::config::PeerConfig;
use crate::peers::overlay::{MemberKind, PeerOverlay};
use crate::peers::select::AllowAll;
use crate::peers::tests::{info, RATE};
use crate::registry::RegionId;
use tiercast_proto::redundancy::redundancy_for_loss;
use tiercast_proto::{ChannelDesc, ChannelId, Feed, NodeId, Timestamp};

fn cfg() -> PeerConfig {
    PeerConfig {
        middle_per_region: 3,
        ..crate::peers::tests::cfg()
    }
}

/// An origin and a waypoint in each of two regions; in each region peers 1·r,
/// 2·r and 3·r (ids 100+, 200+).
fn two_regions() -> PeerOverlay {
    let t0 = Timestamp::ZERO;
    let desc = ChannelDesc {
        id: ChannelId(1),
        name: "live".into(),
        public_key: [0; 32],
    };
    let mut o = PeerOverlay::new(desc, 4, RATE, 0.0, t0);
    let c = cfg();
    let mut add = |id: u32, region: u16, kind: MemberKind, up: u64| {
        o.join(t0, info(id), RegionId(region), kind, up, &c, &AllowAll);
    };
    add(1, 0, MemberKind::Origin, 20 * RATE);
    add(2, 0, MemberKind::Waypoint, 30 * RATE);
    add(3, 1, MemberKind::Waypoint, 30 * RATE);
    for (base, region) in [(100u32, 0u16), (200, 1)] {
        for i in 0..12u32 {
            let up = RATE * u64::from(1 + i % 3);
            add(base + i, region, MemberKind::Peer, up);
        }
    }
    o
}

fn middle(o: &PeerOverlay, region: u16) -> Vec<NodeId> {
    o.middle_of(RegionId(region)).collect()
}

/// Every middle member of `region` reports `loss` of 1000 more shards.
fn report_loss(o: &mut PeerOverlay, region: u16, loss: f64) {
    for id in middle(o, region) {
        let (e, r, b) = o.members[&id]
            .shard_counters
            .as_deref()
            .copied()
            .unwrap_or_default();
        let got = (1000.0 * (1.0 - loss)).round() as u64;
        o.middle_report(id, e + 1000, r + got, b + 1);
    }
}

#[test]
fn each_region_keeps_a_cluster_of_its_strongest_peers_on_coded_links() {
    let o = two_regions();
    o.check().unwrap();
    for region in [0u16, 1] {
        let m = middle(&o, region);
        assert_eq!(m.len(), 3, "middle_per_region");
        for id in &m {
            let member = &o.members[id];
            assert_eq!(member.region, RegionId(region));
            assert!(member.uplink_bps >= 2 * RATE && !member.top);
            // n = 0 until loss is measured: coded links with the originals only.
            let feeds = o.assignment(*id).unwrap();
            let mut union = 0u64;
            for f in &feeds {
                let Feed::Coded(c) = f.feed else {
                    panic!("{id}: middle member on a {:?} link", f.feed)
                };
                assert_eq!((c.k, c.n), (4, 0));
                union |= c.mask;
            }
            assert_eq!(union, 0b1111, "{id}: one parent per substream");
        }
        assert_eq!(
            o.algorithms(RegionId(region), &cfg())[1],
            Algorithm::MultiTree { k: 4 }
        );
    }
    // Bottom peers keep plain substream links.
    let weak = o
        .members
        .values()
        .find(|m| !m.top && !m.middle)
        .map(|m| m.info.id)
        .unwrap();
    assert!(o
        .assignment(weak)
        .unwrap()
        .iter()
        .all(|f| matches!(f.feed, Feed::Substreams(_))));
}

#[test]
fn the_redundancy_of_each_region_follows_its_measured_loss() {
    let mut o = two_regions();
    let c = cfg();
    report_loss(&mut o, 0, 0.0);
    report_loss(&mut o, 1, 0.05);
    o.review_middle(&c);
    o.check().unwrap();
    let want = redundancy_for_loss(0.05, 4, c.target_group_loss).min(4) as u8;
    assert!(want >= 2);
    assert_eq!(
        o.region_n(RegionId(0)),
        0,
        "a clean region stays a plain multi-tree"
    );
    assert_eq!(o.region_n(RegionId(1)), want);
    assert_eq!(
        o.algorithms(RegionId(1), &c)[1],
        Algorithm::Erasure { k: 4, n: want }
    );
    assert!((o.plans[&RegionId(1)].loss.unwrap() - 0.05).abs() < 1e-9);
    for id in middle(&o, 1) {
        let m = &o.members[&id];
        assert_eq!(m.recovery.len(), usize::from(want));
        for p in m.recovery.iter() {
            let p = p.expect("every recovery substream has a parent");
            assert!(o.members[&p].top);
        }
        let recovery_bits: u32 = o
            .assignment(id)
            .unwrap()
            .iter()
            .filter_map(|f| f.feed.coded().map(|c| c.recovery().count() as u32))
            .sum();
        assert_eq!(recovery_bits, u32::from(want));
    }
    // The loss goes away: n back to 0, the recovery links unbooked.
    let used_before: u32 = o.members.values().filter(|m| m.top).map(|m| m.used).sum();
    report_loss(&mut o, 1, 0.0);
    o.review_middle(&c);
    o.check().unwrap();
    assert_eq!(o.region_n(RegionId(1)), 0);
    let used_after: u32 = o.members.values().filter(|m| m.top).map(|m| m.used).sum();
    assert_eq!(used_before - used_after, 3 * u32::from(want));
    assert!(o.recovery_children.is_empty());
}

#[test]
fn recovery_parents_follow_the_top_level_through_leaves_and_full_recomputation() {
    let mut o = two_regions();
    let c = cfg();
    report_loss(&mut o, 1, 0.05);
    o.review_middle(&c);
    let n = usize::from(o.region_n(RegionId(1)));
    // The busiest recovery parent leaves.
    let busiest = o
        .recovery_children
        .iter()
        .max_by_key(|(_, kids)| kids.len())
        .map(|(p, _)| *p)
        .unwrap();
    o.remove(busiest, &c, &AllowAll);
    o.check().unwrap();
    for id in middle(&o, 1) {
        let m = &o.members[&id];
        assert_eq!(m.recovery.len(), n);
        assert!(m.recovery.iter().all(|p| p.is_some_and(|p| p != busiest)));
    }
    // A middle member leaves: its recovery slots are freed, the cluster refills.
    let gone = middle(&o, 1)[0];
    o.remove(gone, &c, &AllowAll);
    o.review_middle(&c);
    o.check().unwrap();
    assert_eq!(middle(&o, 1).len(), 3);
    assert!(!middle(&o, 1).contains(&gone));
    let now = Timestamp::ZERO.plus_millis(60_000);
    o.full_recompute(now, &c, &AllowAll);
    o.check().unwrap();
    for id in middle(&o, 1) {
        assert!(o.members[&id].recovery.iter().all(Option::is_some));
    }
}
