//! Unit tests of the overlay's bookkeeping: congestion from heartbeat seqs (C2),
//! the thresholds of full recomputation (C7), the top level's review (D1), and
//! the invariants after many joins and leaves (C4, C6).

use super::overlay::{MemberKind, PeerOverlay};
use super::select::AllowAll;
use crate::config::PeerConfig;
use crate::network_monitor::NetworkMonitor;
use crate::registry::RegionId;
use tiercast_proto::{
    ChannelDesc, ChannelId, ChannelReport, Heartbeat, LinkReport, NodeId, PeerInfo, Timestamp,
};

pub(crate) mod full_cap;

pub(crate) const RATE: u64 = 2_000_000;

pub(crate) fn cfg() -> PeerConfig {
    PeerConfig {
        substreams: 4,
        stream_rate_kbps: 2000,
        repair_link: false,
        ..PeerConfig::default()
    }
}

pub(crate) fn overlay(now: Timestamp) -> PeerOverlay {
    let desc = ChannelDesc {
        id: ChannelId(1),
        name: "live".into(),
        public_key: [0; 32],
    };
    PeerOverlay::new(desc, 4, RATE, 0.0, now)
}

/// A fresh overlay of channel 1 at 2 Mbit/s with `c`'s substreams, headroom and
/// repair share.
pub(crate) fn overlay_with(c: &PeerConfig, t0: Timestamp) -> PeerOverlay {
    let desc = ChannelDesc {
        id: ChannelId(1),
        name: "live".into(),
        public_key: [0; 32],
    };
    let mut o = PeerOverlay::new(desc, c.substreams, RATE, c.uplink_headroom, t0);
    o.top_repair_share = c.top_repair_share;
    o
}

pub(crate) fn info(id: u32) -> PeerInfo {
    PeerInfo {
        id: NodeId(id),
        addr: String::new(),
        http_addr: String::new(),
    }
}

pub(crate) fn join(o: &mut PeerOverlay, now: Timestamp, id: u32, kind: MemberKind, uplink: u64) {
    o.join(now, info(id), RegionId(0), kind, uplink, &cfg(), &AllowAll);
}

/// A peer with no uplink joins `region` as the coordinator joins one: placed,
/// then its class (premium or free, C3) set and placed again if it is premium.
pub(crate) fn join_classed(o: &mut PeerOverlay, id: u32, region: RegionId, premium: bool) {
    let c = cfg();
    o.join(
        Timestamp::ZERO,
        info(id),
        region,
        MemberKind::Peer,
        0,
        &c,
        &AllowAll,
    );
    o.update(NodeId(id), |m| m.premium = premium);
    o.place_premium_now(NodeId(id), &c, &AllowAll);
}

/// The trees `id` has a parent in.
pub(crate) fn placed(o: &PeerOverlay, id: u32) -> usize {
    o.members[&NodeId(id)]
        .parents
        .iter()
        .filter(|p| p.is_some())
        .count()
}

/// Substream links whose child and parent are in different regions.
pub(crate) fn crossing_links(o: &PeerOverlay) -> u64 {
    o.members
        .values()
        .flat_map(|m| m.parents.iter().flatten().map(move |p| (m.region, *p)))
        .filter(|(r, p)| o.members[p].region != *r)
        .count() as u64
}

/// An overlay whose origin (node 1) has `uplink`, under `c`.
pub(crate) fn with_origin(t0: Timestamp, c: &PeerConfig, uplink: u64) -> PeerOverlay {
    let mut o = overlay(t0);
    o.join(
        t0,
        info(1),
        RegionId(0),
        MemberKind::Origin,
        uplink,
        c,
        &AllowAll,
    );
    o
}

/// Peers `ids`, each with `uplink`, joining at `now` under `c`.
pub(crate) fn join_peers(
    o: &mut PeerOverlay,
    now: Timestamp,
    c: &PeerConfig,
    ids: std::ops::Range<u32>,
    uplink: u64,
) {
    for id in ids {
        o.join(
            now,
            info(id),
            RegionId(0),
            MemberKind::Peer,
            uplink,
            c,
            &AllowAll,
        );
    }
}

pub(crate) fn report(
    node: u32,
    parents: &[(u32, Option<u64>)],
    children: &[(u32, Option<u64>)],
) -> Heartbeat {
    let link = |(p, s): &(u32, Option<u64>)| LinkReport {
        peer: NodeId(*p),
        last_seq: *s,
        last_block_time_us: None,
        ..LinkReport::default()
    };
    Heartbeat {
        node: NodeId(node),
        channels: vec![ChannelReport {
            channel: ChannelId(1),
            parents: parents.iter().map(link).collect(),
            children: children.iter().map(link).collect(),
            ..ChannelReport::default()
        }],
        ..Heartbeat::default()
    }
}

#[test]
fn a_child_behind_what_its_parent_sent_a_second_ago_is_congested_after_n_reports() {
    let t0 = Timestamp::ZERO;
    let mut o = overlay(t0);
    join(&mut o, t0, 1, MemberKind::Origin, 10 * RATE);
    join(&mut o, t0, 2, MemberKind::Peer, RATE);
    let mut log = NetworkMonitor::default();
    let c = cfg();
    let mut found = Vec::new();
    for i in 0..6u64 {
        let t = Timestamp::ZERO.plus_millis(1000 * (i + 1));
        // The origin has sent up to 100·(i+1); the peer is stuck at 50.
        o.congestion_from(
            t,
            &mut log,
            &report(1, &[], &[(2, Some(100 * (i + 1)))]),
            &c,
        );
        let t2 = t.plus_millis(500);
        found.extend(o.congestion_from(t2, &mut log, &report(2, &[(1, Some(50))], &[]), &c));
    }
    assert_eq!(
        found,
        vec![(NodeId(1), NodeId(2))],
        "once, after N lagging reports"
    );
    // A healthy link never is.
    let mut log = NetworkMonitor::default();
    let mut o2 = overlay(t0);
    join(&mut o2, t0, 1, MemberKind::Origin, 10 * RATE);
    join(&mut o2, t0, 2, MemberKind::Peer, RATE);
    for i in 0..6u64 {
        let t = Timestamp::ZERO.plus_millis(1000 * (i + 1));
        o2.congestion_from(
            t,
            &mut log,
            &report(1, &[], &[(2, Some(100 * (i + 1)))]),
            &c,
        );
        let got = o2.congestion_from(
            t.plus_millis(500),
            &mut log,
            &report(2, &[(1, Some(100 * (i + 1) + 10))], &[]),
            &c,
        );
        assert!(got.is_empty());
    }
}

#[test]
fn full_recomputation_waits_for_enough_change_or_its_period() {
    let t0 = Timestamp::ZERO;
    let mut o = overlay(t0);
    let c = PeerConfig {
        full_threshold: 0.5,
        full_recompute_ms: 60_000,
        ..cfg()
    };
    join(&mut o, t0, 1, MemberKind::Origin, 10 * RATE);
    o.changes_since_full = 0;
    o.last_full = t0;
    for i in 0..10 {
        join(&mut o, t0, 10 + i, MemberKind::Peer, 2 * RATE);
    }
    // 10 changes among 11 members: above half, but not within the first second.
    assert!(!o.due_for_full(t0.plus_millis(500), &c));
    assert!(o.due_for_full(t0.plus_millis(1500), &c));
    o.changes_since_full = 1;
    assert!(
        !o.due_for_full(t0.plus_millis(30_000), &c),
        "partial repairs suffice"
    );
    assert!(
        o.due_for_full(t0.plus_millis(60_000), &c),
        "periodic full recomputation"
    );
    // A member waiting for a parent: only once it has waited the grace period,
    // however long ago the last full recomputation was.
    o.pending.insert(NodeId(10));
    o.pending_since = Some(t0.plus_millis(30_000));
    let grace = c.pending_grace_ms;
    assert!(!o.due_for_full(t0.plus_millis(30_000 + grace - 1), &c));
    assert!(o.due_for_full(t0.plus_millis(30_000 + grace), &c));
}

#[test]
fn joins_and_leaves_keep_every_link_booked_once_and_trees_acyclic() {
    let t0 = Timestamp::ZERO;
    let mut o = overlay(t0);
    let c = cfg();
    join(&mut o, t0, 1, MemberKind::Origin, 4 * RATE);
    let ups = [RATE / 2, RATE, 2 * RATE, 3 * RATE];
    for i in 0..200u32 {
        join(&mut o, t0, 10 + i, MemberKind::Peer, ups[i as usize % 4]);
        if i % 7 == 3 {
            o.remove(NodeId(10 + i / 2), &c, &AllowAll);
        }
        o.check().unwrap_or_else(|e| panic!("after step {i}: {e}"));
    }
    let ejected = o.full_recompute(t0.plus_millis(5000), &c, &AllowAll);
    assert!(ejected.is_empty(), "Σ slots exceed the demand");
    o.check().unwrap();
    assert!(o.pending.is_empty());
    for m in o.members.values().filter(|m| !m.top) {
        assert!(m.parents.iter().all(|p| p.is_some()));
    }
}

#[test]
fn a_lazy_link_is_never_found_congested() {
    let t0 = Timestamp::ZERO;
    let mut o = overlay(t0);
    let c = PeerConfig {
        stable_ms: 0,
        ..cfg()
    };
    join(&mut o, t0, 1, MemberKind::Origin, 20 * RATE);
    join_peers(&mut o, t0, &c, 10..14, 6 * RATE);
    o.review_top(t0.plus_millis(1000), &c, &AllowAll);
    let (child, lazy) = o
        .top_order
        .iter()
        .filter(|t| o.members[t].eager.is_some())
        .find_map(|t| Some((*t, *o.members[t].lazy.first()?)))
        .expect("a top member with a lazy link");
    let eager = o.members[&child].eager.expect("a push parent");
    // Both parents say they sent up to 100·(i+1) (the lazy one: a repair long
    // ago, or pushes on a feed since changed); the child got nothing from either.
    let mut log = NetworkMonitor::default();
    let mut found = Vec::new();
    for i in 0..6u64 {
        let t = t0.plus_millis(1000 * (i + 2));
        for p in [lazy, eager] {
            o.congestion_from(
                t,
                &mut log,
                &report(p.0, &[], &[(child.0, Some(100 * (i + 1)))]),
                &c,
            );
        }
        let hb = report(child.0, &[(lazy.0, None), (eager.0, Some(1))], &[]);
        found.extend(o.congestion_from(t.plus_millis(500), &mut log, &hb, &c));
    }
    assert_eq!(found, vec![(eager, child)], "only the push link");
}

/// Issue 11: the congestion monitor remembers a parent's report only for the
/// links the overlay has — a heartbeat naming a thousand child ids does not grow
/// it, and a link gone is forgotten.
#[test]
fn the_sent_log_keeps_only_links_the_overlay_has() {
    let t0 = Timestamp::ZERO;
    let mut o = overlay(t0);
    join(&mut o, t0, 1, MemberKind::Origin, 10 * RATE);
    join(&mut o, t0, 2, MemberKind::Peer, RATE);
    let c = cfg();
    let mut log = NetworkMonitor::default();
    let strangers: Vec<(u32, Option<u64>)> = (100..1100).map(|i| (i, Some(5))).collect();
    o.congestion_from(t0, &mut log, &report(1, &[], &strangers), &c);
    assert!(
        (log.sent_links() == 0),
        "no such links: {}",
        log.sent_links()
    );
    o.congestion_from(t0, &mut log, &report(1, &[], &[(2, Some(5))]), &c);
    assert_eq!(log.sent_links(), 1, "the origin feeds peer 2");
    // Peer 2 gone from the origin's trees: the next report forgets the link.
    o.remove(NodeId(2), &c, &AllowAll);
    o.congestion_from(t0, &mut log, &report(1, &[], &[(2, Some(6))]), &c);
    assert!((log.sent_links() == 0));
}

/// A wave of joiners (a region back from a partition) is not chained: the members
/// with the most spare uplink are the newest joiners themselves, and picking among
/// them put each one under the one before (seed 40 of the peer partition: depth
/// 23 against 6 before the cut). A parent deeper than ⌈log₂ members⌉ is taken
/// only when no shallower one has room.
#[test]
fn a_wave_of_joiners_is_not_chained() {
    let t0 = Timestamp::ZERO;
    let c = cfg();
    let mut o = with_origin(t0, &c, 8 * RATE);
    join_peers(&mut o, t0, &c, 10..300, 2 * RATE);
    // A second wave of strong peers, each bringing more room than any member has.
    join_peers(&mut o, t0, &c, 300..500, 6 * RATE);
    o.check().expect("booked once, acyclic");
    let bound = usize::BITS - o.members.len().leading_zeros();
    let deepest = o
        .members
        .keys()
        .flat_map(|id| (0..o.k).map(move |t| (*id, t)))
        .map(|(id, t)| o.depth(id, t))
        .max()
        .expect("members");
    assert!(deepest <= bound + 1, "deepest {deepest}, bound {bound}");
}

/// The deepest placed member in any tree (one waiting for a parent is not).
fn deepest(o: &PeerOverlay) -> u32 {
    o.members
        .keys()
        .flat_map(|id| (0..o.k).map(move |t| (*id, t)))
        .map(|(id, t)| o.depth(id, t))
        .filter(|d| *d < 1024)
        .max()
        .expect("members")
}

#[test]
fn joiners_after_a_tight_recomputation_take_shallow_leaves_places() {
    // A tight population rebuilt by a full recomputation has no spare slot near
    // the top: only the joiners that follow bring room. Placed under the one
    // before, each wave was chained 40 deep (issue 10's full recomputation).
    let t0 = Timestamp::ZERO;
    let c = cfg();
    let mut o = with_origin(t0, &c, 4 * RATE);
    // The scenario's mix over two regions: 2, 4, 6 and 10 substreams' worth of
    // uplink (1, 3, 5, 9 slots after the 5 % headroom).
    let mix = |id: u32| [RATE / 2, RATE, 3 * RATE / 2, 5 * RATE / 2][id as usize % 4] * 95 / 100;
    let add = |o: &mut PeerOverlay, now: Timestamp, ids: std::ops::Range<u32>| {
        for id in ids {
            let region = RegionId((id / 4 % 2) as u16);
            o.join(
                now,
                info(id),
                region,
                MemberKind::Peer,
                mix(id),
                &c,
                &AllowAll,
            );
        }
    };
    add(&mut o, t0, 10..500);
    o.full_recompute(t0.plus_millis(5000), &c, &AllowAll);
    add(&mut o, t0.plus_millis(6000), 500..1000);
    o.check().expect("booked once, acyclic");
    let bound = usize::BITS - o.members.len().leading_zeros();
    let deepest = deepest(&o);
    assert!(deepest <= bound + 1, "deepest {deepest}, bound {bound}");
    // Without the insertion no joiner takes a leaf's place (and none is strong).
    assert!(
        o.stats.preemptions > 0,
        "no joiner took a shallow leaf's place"
    );
}

/// An origin and 40 peers at the rate, 2 substreams, no periodic or threshold
/// recomputation: every join keeps to the depth bound.
fn forty_peers_on_two_trees() -> (PeerConfig, PeerOverlay) {
    let c = PeerConfig {
        substreams: 2,
        uplink_headroom: 0.0,
        top_repair_share: 0.0,
        repair_link: false,
        full_threshold: 1e9,
        full_recompute_ms: 0,
        ..PeerConfig::default()
    };
    let t0 = Timestamp::ZERO;
    let mut o = overlay_with(&c, t0);
    o.join(
        t0,
        info(1),
        RegionId(0),
        MemberKind::Origin,
        2 * RATE,
        &c,
        &AllowAll,
    );
    for id in 10..50 {
        o.join(
            t0,
            info(id),
            RegionId(0),
            MemberKind::Peer,
            RATE,
            &c,
            &AllowAll,
        );
    }
    (c, o)
}

#[test]
fn a_tree_grown_past_twice_the_depth_bound_brings_a_full_recomputation_once() {
    let (c, mut o) = forty_peers_on_two_trees();
    o.check().expect("books kept");
    assert!(o.pending.is_empty(), "all placed: {:?}", o.pending);
    // The deepest link made is the deepest member.
    let deepest = o
        .members
        .keys()
        .flat_map(|id| (0..2).map(|t| o.depth(*id, t)))
        .max();
    assert_eq!(Some(o.deepest_link), deepest);
    assert!(!o.too_deep(), "joins keep to the bound: {}", o.deepest_link);
    // Moves of whole subtrees (re-homing, lent slots) deepen it past twice the bound.
    let bound = super::select::depth_bound(o.len());
    o.deepest_link = 2 * bound + 1;
    assert!(o.too_deep());
    // Not at once (a crowd's joins make their own recomputations), after 5 s.
    assert!(!o.due_for_full(Timestamp::from_millis(4_000), &c));
    let t = Timestamp::from_millis(5_000);
    assert!(o.due_for_full(t, &c));
    o.full_recompute(t, &c, &AllowAll);
    assert!(
        o.built_depth < 2 * bound,
        "{} against {bound}",
        o.built_depth
    );
    assert!(!o.due_for_full(Timestamp::from_millis(60_000), &c));
    // A population its own best build carries deep is not rebuilt over and
    // over: the limit is the build's depth plus the bound.
    o.built_depth = 3 * bound;
    o.deepest_link = 3 * bound + 1;
    assert!(!o.too_deep());
    o.deepest_link = 4 * bound + 1;
    assert!(o.too_deep());
}

#[test]
fn a_member_moved_with_its_subtree_counts_the_depth_of_its_deepest_descendant() {
    let (_, mut o) = forty_peers_on_two_trees();
    let ids: Vec<NodeId> = o.members.keys().copied().collect();
    let under = |o: &PeerOverlay, mut n: NodeId, x: NodeId| {
        while let Some(p) = o.members.get(&n).and_then(|m| m.parents[0]) {
            if p == x {
                return true;
            }
            n = p;
        }
        false
    };
    // A member with children in tree 0, moved under the deepest member not
    // in its own subtree: the link is one hop deeper than that member, its
    // descendants deeper still.
    let x = *ids
        .iter()
        .find(|id| {
            o.members[*id].parents[0].is_some()
                && o.children[0].get(*id).is_some_and(|c| !c.is_empty())
        })
        .expect("an interior member");
    let to = *ids
        .iter()
        .filter(|id| **id != x && !under(&o, **id, x))
        .max_by_key(|id| o.depth(**id, 0))
        .expect("a member outside its subtree");
    o.detach(x, 0);
    o.deepest_link = 0;
    o.attach(x, 0, to);
    let deepest = ids.iter().map(|id| o.depth(*id, 0)).max().unwrap();
    assert!(deepest > o.depth(x, 0), "x brought its subtree along");
    assert_eq!(o.deepest_link, deepest);
}
