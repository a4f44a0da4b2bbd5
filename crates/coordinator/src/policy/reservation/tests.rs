//! The reservation book's own tests (C5): soft-state expiry and refresh, release,
//! the cap (a seeded random walk checked against a model), measured mode,
//! partitions (local grants, pool, reclaim, rebalance), cap changes, bounds and
//! bad inputs.

use super::machine::Limits;
use super::*;
use crate::registry::RegionId;
use std::collections::BTreeMap;
use tiercast_proto::{NodeId, Timestamp};

const A: ManagerId = ManagerId(1);
const B: ManagerId = ManagerId(2);

fn ms(v: u64) -> Timestamp {
    Timestamp::from_millis(v)
}

fn link(a: u16, b: u16) -> LinkKey {
    LinkKey::regions(RegionId(a), RegionId(b)).expect("two regions")
}

fn conn(child: u32) -> ConnId {
    ConnId {
        child: NodeId(child),
        parent: NodeId(1000),
        tree: ConnId::WHOLE_STREAM,
    }
}

fn cfg(ttl_ms: u64, measured: bool) -> ReservationConfig {
    ReservationConfig {
        ttl_ms,
        measured,
        ..ReservationConfig::default()
    }
}

/// One link between regions 0 and 1 capped at `cap` bps.
fn book(cfg: ReservationConfig, cap: u64) -> (Reservations, LinkKey) {
    let mut r = Reservations::new(cfg);
    let l = link(0, 1);
    r.set_caps(ms(0), [(l, cap)]);
    (r, l)
}

fn is_full(res: Result<(), Refused>) -> bool {
    matches!(res, Err(Refused::Full { .. }))
}

#[test]
fn unrefreshed_reservation_expires_after_ttl_and_its_bandwidth_goes_to_another_manager() {
    let (mut r, l) = book(ReservationConfig::default(), 1000);
    r.reserve(ms(0), A, l, conn(1), 800).expect("room");
    assert!(is_full(r.reserve(ms(100), B, l, conn(2), 500)));
    assert_eq!(
        r.poll_timeout(),
        Some(ms(3000)),
        "ttl 3000 ms, before the rebalance"
    );
    r.handle_timeout(ms(2999));
    assert_eq!(r.booked(l), 800, "not yet");
    r.handle_timeout(ms(3000));
    assert_eq!(r.booked(l), 0);
    assert_eq!(r.expired_total(), 1);
    assert!(
        !r.refresh(ms(3000), A, l, conn(1), None),
        "expired: unknown"
    );
    // A's partition still holds the 800 until a rebalance; B gets it back anyway.
    r.reserve(ms(3000), B, l, conn(2), 500).expect("freed");
    r.reserve(ms(3000), B, l, conn(3), 500)
        .expect("idle budget reclaimed");
    assert_eq!(r.booked(l), 1000);
    assert_eq!(r.partition(B, l), 1000);
    r.assert_consistent();
}

#[test]
fn refreshed_reservation_does_not_expire() {
    let (mut r, l) = book(ReservationConfig::default(), 1000);
    r.reserve(ms(0), A, l, conn(1), 400).expect("room");
    let mut now = 0;
    while now < 30_000 {
        now += 2000;
        if r.poll_timeout().is_some_and(|t| t <= ms(now)) {
            r.handle_timeout(ms(now));
        }
        assert!(r.refresh(ms(now), A, l, conn(1), None), "alive at {now}");
    }
    assert_eq!(r.expired_total(), 0);
    assert_eq!(r.booked(l), 400);
    assert_eq!(r.poll_timeout().map(|t| t >= ms(now + 1)), Some(true));
    r.assert_consistent();
}

#[test]
fn release_frees_bandwidth_at_once() {
    let (mut r, l) = book(ReservationConfig::default(), 1000);
    r.reserve(ms(0), A, l, conn(1), 1000).expect("room");
    assert!(is_full(r.reserve(ms(1), B, l, conn(2), 1)));
    r.release(B, l, conn(1));
    assert_eq!(r.booked(l), 1000, "only its holder releases it");
    r.release(A, l, conn(1));
    assert_eq!(r.booked(l), 0);
    assert!(r.is_empty());
    r.reserve(ms(1), B, l, conn(2), 1000).expect("free at once");
    assert_eq!(r.expired_total(), 0);
    r.assert_consistent();
}

/// A 64-bit LCG (Knuth's MMIX constants): deterministic, no dependency.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// What a reservation should be, per the rules, beside the real book.
#[derive(Clone, Copy, Debug)]
struct Model {
    mgr: ManagerId,
    reserved: u64,
    measured: Option<u64>,
    counted: u64,
    expires: Timestamp,
}

/// `steps` random requests, refreshes, releases and timeouts on three links, four
/// managers and 60 connections, checked after every step against a model: the
/// same reservations and bookings, a refusal only when booked + asked > cap, and
/// booked never pushed above the cap by a grant (never above it at all unless
/// measured).
fn random_walk(measured: bool, seed: u64, steps: usize) {
    let ttl = 3000;
    let mut r = Reservations::new(cfg(ttl, measured));
    let caps = [
        (link(0, 1), 1000u64),
        (link(1, 2), 5000),
        (link(0, 2), 20_000),
    ];
    r.set_caps(ms(0), caps);
    let mut rng = Lcg(seed);
    let mut model: BTreeMap<(LinkKey, ConnId), Model> = BTreeMap::new();
    let mut now = ms(0);
    for step in 0..steps {
        let (l, cap) = caps[rng.below(3) as usize];
        let mgr = ManagerId(rng.below(4) as u32);
        let c = ConnId {
            child: NodeId(rng.below(30) as u32),
            parent: NodeId(7),
            tree: rng.below(2) as u8,
        };
        let booked_model = |m: &BTreeMap<(LinkKey, ConnId), Model>, l: LinkKey| -> u64 {
            m.iter()
                .filter(|(k, _)| k.0 == l)
                .map(|(_, v)| v.counted)
                .sum()
        };
        let op = rng.below(100);
        if op < 45 {
            let bps = if rng.below(20) == 0 {
                0
            } else {
                1 + rng.below(cap / 3)
            };
            let old = model.get(&(l, c)).copied();
            let before = booked_model(&model, l);
            let got = r.reserve(now, mgr, l, c, bps);
            if bps == 0 {
                assert_eq!(got, Ok(()), "step {step}: zero bps is a release");
                if old.is_some_and(|o| o.mgr == mgr) {
                    model.remove(&(l, c));
                }
            } else {
                let (measured_kept, counted) = match old {
                    Some(o) if o.mgr == mgr && o.reserved == bps => (o.measured, o.counted),
                    _ => (None, bps),
                };
                let old_counted = old.map_or(0, |o| o.counted);
                let fits = counted <= old_counted || before - old_counted + counted <= cap;
                assert_eq!(
                    got.is_ok(),
                    fits,
                    "step {step}: {got:?}, booked {before} of {cap}"
                );
                if fits {
                    let expires = now.plus_millis(ttl);
                    let entry = Model {
                        mgr,
                        reserved: bps,
                        measured: measured_kept,
                        counted,
                        expires,
                    };
                    model.insert((l, c), entry);
                    if counted > old_counted {
                        assert!(r.booked(l) <= cap, "step {step}: a grant above the cap");
                    }
                }
            }
        } else if op < 62 {
            let m = if rng.below(2) == 0 {
                Some(rng.below(cap / 2))
            } else {
                None
            };
            let held = model.get(&(l, c)).is_some_and(|o| o.mgr == mgr);
            assert_eq!(r.refresh(now, mgr, l, c, m), held, "step {step}: refresh");
            if let Some(o) = model.get_mut(&(l, c)).filter(|_| held) {
                o.expires = now.plus_millis(ttl);
                if let Some(m) = m {
                    o.measured = Some(m);
                    if measured {
                        o.counted = m;
                    }
                }
            }
        } else if op < 72 {
            r.release(mgr, l, c);
            if model.get(&(l, c)).is_some_and(|o| o.mgr == mgr) {
                model.remove(&(l, c));
            }
        } else if op < 97 {
            now = now.plus_millis(rng.below(1500));
            r.handle_timeout(now);
            model.retain(|_, o| o.expires > now);
        } else {
            r.set_caps(now, caps);
        }
        r.assert_consistent();
        assert_eq!(r.len(), model.len(), "step {step}: reservations");
        for (l, cap) in caps {
            let booked = booked_model(&model, l);
            assert_eq!(r.booked(l), booked, "step {step}: booked on {l:?}");
            if !measured {
                assert!(booked <= cap, "step {step}: {booked} above {cap}");
                let parts: u64 = (0..4).map(|m| r.partition(ManagerId(m), l)).sum();
                assert!(parts <= cap, "step {step}: partitions {parts} above {cap}");
            }
        }
        for ((l, c), o) in &model {
            let got = r.reservation(*l, *c).expect("in the book");
            assert_eq!((got.mgr, got.reserved_bps), (o.mgr, o.reserved));
            assert_eq!((got.counted_bps, got.expires), (o.counted, o.expires));
        }
    }
    let g = r.grants();
    assert!(
        g.local > 0 && g.pool > 0 && g.reclaimed > 0 && g.refused > 0,
        "{g:?}"
    );
    assert!(r.expired_total() > 0);
}

#[test]
fn booked_never_exceeds_the_cap_over_random_steps() {
    for seed in [1, 2, 3, 0xC5] {
        random_walk(false, seed, 6000);
    }
}

#[test]
fn measured_mode_never_grants_above_the_cap_over_random_steps() {
    for seed in [4, 5, 0xC5] {
        random_walk(true, seed, 6000);
    }
}

#[test]
fn measured_mode_admits_more_connections_when_usage_is_below_the_reservation() {
    let admitted = |measured: bool| {
        let (mut r, l) = book(cfg(3000, measured), 1000);
        let mut n = 0;
        for i in 0..4 {
            r.reserve(ms(0), A, l, conn(i), 250)
                .expect("four of 250 in 1000");
            n += 1;
        }
        for i in 0..4 {
            assert!(
                r.refresh(ms(500), A, l, conn(i), Some(100)),
                "uses 100 of 250"
            );
        }
        while r.reserve(ms(600), A, l, conn(n), 250).is_ok() {
            n += 1;
        }
        (n, r.booked(l))
    };
    assert_eq!(admitted(false), (4, 1000), "reserved bps are booked");
    // 4 × 100 measured + 2 new × 250 not yet measured = 900; a third would be 1150.
    assert_eq!(admitted(true), (6, 900));
}

#[test]
fn partition_is_granted_locally_and_rebalanced_by_usage() {
    let (mut r, l) = book(cfg(60_000, false), 1000);
    r.reserve(ms(0), A, l, conn(1), 300).expect("room");
    r.reserve(ms(0), B, l, conn(2), 100).expect("room");
    assert_eq!(
        (r.partition(A, l), r.partition(B, l)),
        (300, 100),
        "grown from the pool"
    );
    assert_eq!(r.grants().pool, 2);
    assert_eq!(r.poll_timeout(), Some(ms(10_000)), "the rebalance");
    r.handle_timeout(ms(10_000));
    // Remainder 600 shared 3:1 by usage.
    assert_eq!((r.partition(A, l), r.partition(B, l)), (750, 250));
    assert_eq!(r.poll_timeout(), Some(ms(20_000)));
    assert_eq!(r.grant_path(A, l, 400), Some(GrantPath::Local));
    r.reserve(ms(10_001), A, l, conn(3), 400)
        .expect("within A's partition");
    assert_eq!(r.grants().local, 1);
    assert_eq!(r.grant_path(B, l, 200), Some(GrantPath::Reclaimed));
    r.reserve(ms(10_002), B, l, conn(4), 200)
        .expect("A's idle 50 taken back");
    assert_eq!(r.grants().reclaimed, 1);
    assert_eq!((r.partition(A, l), r.partition(B, l)), (700, 300));
    assert_eq!(r.grant_path(A, l, 1), None, "the link is full");
    assert!(!r.would_fit(B, l, 1));
    r.assert_consistent();
}

#[test]
fn rebalance_shares_equally_when_nobody_uses_the_link_then_drops_idle_partitions() {
    let (mut r, l) = book(cfg(60_000, false), 1000);
    r.reserve(ms(0), A, l, conn(1), 300).expect("room");
    r.reserve(ms(0), B, l, conn(2), 100).expect("room");
    r.release(A, l, conn(1));
    r.release(B, l, conn(2));
    r.handle_timeout(ms(10_000));
    assert_eq!((r.partition(A, l), r.partition(B, l)), (500, 500));
    r.handle_timeout(ms(20_000));
    assert_eq!(
        (r.partition(A, l), r.partition(B, l)),
        (0, 0),
        "idle twice: dropped"
    );
    assert_eq!(r.poll_timeout(), None, "nothing left to time");
    r.assert_consistent();
}

#[test]
fn set_caps_drops_reservations_on_links_no_longer_capped() {
    let mut r = Reservations::new(ReservationConfig::default());
    let (kept, gone) = (link(0, 1), link(1, 2));
    r.set_caps(ms(0), [(kept, 1000), (gone, 1000)]);
    r.reserve(ms(0), A, kept, conn(1), 100).expect("room");
    r.reserve(ms(0), A, gone, conn(1), 100).expect("room");
    r.reserve(ms(0), B, gone, conn(2), 100).expect("room");
    r.set_caps(ms(1), [(kept, 1000)]);
    assert!(!r.is_capped(gone));
    assert_eq!(r.cap(gone), None);
    assert_eq!(r.dropped_total(), 2);
    assert_eq!(r.len(), 1);
    assert_eq!(r.reserve(ms(1), A, gone, conn(1), 100), Err(Refused::NoCap));
    assert!(!r.refresh(ms(1), A, gone, conn(1), None));
    assert_eq!(r.links().collect::<Vec<_>>(), vec![(kept, 1000, 100)]);
    r.assert_consistent();
}

#[test]
fn lowered_cap_keeps_reservations_refuses_new_ones_and_reports_excess() {
    let (mut r, l) = book(ReservationConfig::default(), 1000);
    r.reserve(ms(0), A, l, conn(1), 600).expect("room");
    r.reserve(ms(0), B, l, conn(2), 300).expect("room");
    r.set_caps(ms(1), [(l, 500)]);
    assert_eq!((r.cap(l), r.booked(l), r.excess(l)), (Some(500), 900, 400));
    assert_eq!(
        r.reserve(ms(1), A, l, conn(3), 1),
        Err(Refused::Full {
            link: l,
            cap_bps: 500,
            booked_bps: 900,
            asked_bps: 1
        })
    );
    r.reserve(ms(2), A, l, conn(1), 200)
        .expect("shrinking is always allowed");
    assert_eq!((r.booked(l), r.excess(l)), (500, 0));
    assert!(is_full(r.reserve(ms(2), A, l, conn(3), 1)));
    r.release(B, l, conn(2));
    r.reserve(ms(3), B, l, conn(2), 300).expect("room again");
    r.set_caps(ms(4), [(l, 2000)]);
    r.reserve(ms(4), B, l, conn(4), 1500).expect("raised cap");
    r.assert_consistent();
}

#[test]
fn re_reserving_a_connection_replaces_its_bps_and_may_move_it_to_another_manager() {
    let (mut r, l) = book(ReservationConfig::default(), 1000);
    r.reserve(ms(0), A, l, conn(1), 400).expect("room");
    r.reserve(ms(1), A, l, conn(1), 900)
        .expect("replaces, not 1300");
    assert_eq!(r.booked(l), 900);
    r.reserve(ms(2), A, l, conn(1), 900)
        .expect("the same again");
    assert_eq!(r.booked(l), 900);
    assert!(is_full(r.reserve(ms(3), A, l, conn(1), 1001)));
    assert_eq!(
        r.reservation(l, conn(1)).map(|x| x.reserved_bps),
        Some(900),
        "kept"
    );
    r.reserve(ms(4), B, l, conn(1), 900).expect("moves to B");
    assert_eq!(r.booked(l), 900);
    assert!(
        !r.refresh(ms(5), A, l, conn(1), None),
        "A no longer holds it"
    );
    assert!(r.refresh(ms(5), B, l, conn(1), None));
    assert_eq!(
        r.poll_timeout(),
        Some(ms(3005)),
        "one expiry, the latest refresh"
    );
    r.assert_consistent();
}

#[test]
fn bad_inputs_are_handled_without_panics() {
    assert_eq!(LinkKey::regions(RegionId(3), RegionId(3)), None);
    assert_eq!(LinkKey::nodes(NodeId(5), NodeId(5)), None);
    assert_eq!(link(2, 1), link(1, 2));
    assert_eq!(
        LinkKey::nodes(NodeId(9), NodeId(4)),
        Some(LinkKey::Nodes(NodeId(4), NodeId(9)))
    );
    let mut r = Reservations::new(cfg(3000, true));
    let self_link = LinkKey::Regions(RegionId(1), RegionId(1));
    let backwards = LinkKey::Regions(RegionId(1), RegionId(0));
    r.set_caps(ms(0), [(self_link, 10), (backwards, u64::MAX)]);
    assert_eq!(r.caps_ignored(), 1);
    assert!(!r.is_capped(self_link));
    assert!(r.is_capped(link(0, 1)), "stored sorted");
    assert_eq!(
        r.reserve(ms(0), A, self_link, conn(1), 5),
        Err(Refused::NoCap)
    );
    assert_eq!(
        r.reserve(ms(0), A, link(5, 6), conn(1), 5),
        Err(Refused::NoCap)
    );
    assert_eq!(
        r.reserve(ms(0), A, backwards, conn(1), 0),
        Ok(()),
        "zero bps"
    );
    assert!(r.is_empty());
    assert!(r.would_fit(A, backwards, 0) && r.would_fit(A, link(5, 6), 1 << 40));
    // Huge numbers: sums do not overflow; measurements rising past the cap are
    // booked (and shown as excess) but let nothing more in.
    for i in 0..4 {
        r.reserve(ms(0), ManagerId(i), backwards, conn(i), u64::MAX / 8)
            .expect("room");
    }
    for i in 0..4 {
        assert!(r.refresh(ms(1), ManagerId(i), backwards, conn(i), Some(u64::MAX)));
    }
    assert_eq!(r.booked(backwards), u64::MAX, "saturated view");
    assert_eq!(
        r.excess(backwards),
        u64::MAX,
        "3 × MAX above the cap, saturated too"
    );
    assert!(is_full(r.reserve(ms(1), A, backwards, conn(9), 1)));
    r.handle_timeout(ms(10_000));
    // Unknown manager, connection, link.
    assert!(!r.refresh(ms(2), ManagerId(77), backwards, conn(1), None));
    assert!(!r.refresh(ms(2), A, backwards, conn(77), None));
    assert!(!r.refresh(ms(2), A, link(5, 6), conn(1), None));
    r.release(ManagerId(77), backwards, conn(1));
    r.release(A, link(5, 6), conn(1));
    assert_eq!(r.partition(ManagerId(77), backwards), 0);
    assert_eq!(r.booked(link(5, 6)), 0);
    assert_eq!(r.excess(self_link), 0);
    r.assert_consistent();
    assert_eq!(
        ReservationConfig {
            ttl_ms: 0,
            ..ReservationConfig::default()
        }
        .validate(),
        Err(ReservationConfigError::ZeroTtl)
    );
    assert_eq!(ReservationConfig::default().validate(), Ok(()));
}

#[test]
fn bounds_refuse_beyond_the_limits() {
    let limits = Limits {
        caps: 2,
        links: 1,
        per_link: 3,
        total: 3,
    };
    let mut r = Reservations::with_limits(ReservationConfig::default(), limits);
    let (l1, l2, l3) = (link(0, 1), link(0, 2), link(0, 3));
    r.set_caps(ms(0), [(l1, 1000), (l2, 1000), (l3, 1000)]);
    assert_eq!(
        (r.links().count(), r.caps_ignored()),
        (2, 1),
        "two caps kept"
    );
    for i in 0..3 {
        r.reserve(ms(0), A, l1, conn(i), 10).expect("within bounds");
    }
    assert!(is_full(r.reserve(ms(0), A, l1, conn(3), 10)), "per link");
    r.reserve(ms(0), A, l1, conn(0), 20)
        .expect("re-reserving is not one more");
    assert!(
        is_full(r.reserve(ms(0), A, l2, conn(0), 10)),
        "links holding reservations"
    );
    assert!(!r.would_fit(A, l2, 10));
    for i in 0..3 {
        r.release(A, l1, conn(i));
    }
    r.reserve(ms(0), A, l2, conn(0), 10)
        .expect("l1 holds none now");
    r.assert_consistent();
}

#[test]
fn many_reservations_expire_in_order() {
    let (mut r, l) = book(cfg(3000, false), u64::MAX);
    let n = 50_000u32;
    for i in 0..n {
        let c = ConnId {
            child: NodeId(i),
            parent: NodeId(0),
            tree: 0,
        };
        r.reserve(ms(u64::from(i % 1000)), A, l, c, 1)
            .expect("room");
    }
    r.handle_timeout(ms(3499));
    assert_eq!(r.expired_total(), 25_000, "those reserved before 500 ms");
    assert_eq!(r.poll_timeout(), Some(ms(3500)));
    r.handle_timeout(ms(4000));
    assert_eq!((r.expired_total(), r.booked(l)), (u64::from(n), 0));
    r.assert_consistent();
}
