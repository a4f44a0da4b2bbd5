//! Unit tests of the top level (D1, D3, D6): preferred peers promoted and
//! demoted, waypoints retired and recalled, blame per review, the push tree kept
//! and kept shallow, the plain tree once calm.

use super::overlay::{MemberKind, PeerOverlay};
use super::select::AllowAll;
use super::tests::{cfg, info, join, join_peers, overlay, with_origin, RATE};
use crate::config::PeerConfig;
use crate::registry::RegionId;
use tiercast_proto::{NodeId, Timestamp};

#[test]
fn strong_stable_peers_are_promoted_to_the_top_level_and_demoted_on_bad_history() {
    let t0 = Timestamp::ZERO;
    let mut o = overlay(t0);
    let c = PeerConfig {
        top_uplink_factor: 4.0,
        stable_ms: 5000,
        history_tolerance: 1,
        ..cfg()
    };
    join(&mut o, t0, 1, MemberKind::Origin, 20 * RATE);
    for i in 0..30u32 {
        let up = if i < 5 { 5 * RATE } else { RATE };
        o.join(
            t0,
            info(10 + i),
            RegionId(0),
            MemberKind::Peer,
            up,
            &c,
            &AllowAll,
        );
    }
    assert!(
        !o.review_top(t0.plus_millis(1000), &c, &AllowAll),
        "not stable yet"
    );
    assert!(o.review_top(t0.plus_millis(6000), &c, &AllowAll));
    let top: Vec<u32> = o.top_order.iter().map(|n| n.0).collect();
    assert_eq!(
        top.len(),
        6,
        "the origin and the five strong peers: {top:?}"
    );
    assert!(o.mesh.values().all(|s| s.len() >= 3), "3-connected");
    o.check().unwrap();
    o.members.get_mut(&NodeId(10)).unwrap().history = -5;
    assert!(o.review_top(t0.plus_millis(12_000), &c, &AllowAll));
    assert!(!o.members[&NodeId(10)].top, "demoted");
    o.check().unwrap();
}

#[test]
fn a_waypoint_retires_once_its_region_has_a_preferred_peer_and_returns_when_it_has_none() {
    let t0 = Timestamp::ZERO;
    let mut o = overlay(t0);
    let c = PeerConfig {
        stable_ms: 5000,
        ..cfg()
    };
    let add = |o: &mut PeerOverlay, id: u32, region: u16, kind: MemberKind, up: u64| {
        o.join(t0, info(id), RegionId(region), kind, up, &c, &AllowAll);
    };
    add(&mut o, 1, 0, MemberKind::Origin, 20 * RATE);
    add(&mut o, 2, 0, MemberKind::Waypoint, 20 * RATE);
    add(&mut o, 3, 1, MemberKind::Waypoint, 20 * RATE);
    // Region 0 gets one strong peer (a preferred node once stable), region 1 none.
    add(&mut o, 10, 0, MemberKind::Peer, 6 * RATE);
    for i in 0..20u32 {
        add(&mut o, 20 + i, (i % 2) as u16, MemberKind::Peer, RATE);
    }
    let t1 = t0.plus_millis(6000);
    assert!(
        !o.review_waypoints(t1, &c, &AllowAll),
        "no region has a preferred peer yet"
    );
    assert!(o.review_top(t1, &c, &AllowAll));
    assert!(o.members[&NodeId(10)].top);
    assert!(o.review_waypoints(t1, &c, &AllowAll));
    assert!(
        !o.members.contains_key(&NodeId(2)),
        "region 0's waypoint retired"
    );
    assert!(o.standby.contains_key(&NodeId(2)));
    assert!(o.members[&NodeId(3)].top, "region 1 has no preferred peer");
    assert_eq!(o.take_retired(), vec![NodeId(2)], "told to drop its links");
    assert!(o.pending.is_empty(), "its children were re-homed");
    o.check().unwrap();
    // The preferred peer leaves: the waypoint comes back.
    o.remove(NodeId(10), &c, &AllowAll);
    assert!(o.review_waypoints(t1.plus_millis(5000), &c, &AllowAll));
    assert!(o.members.get(&NodeId(2)).is_some_and(|m| m.top));
    assert!(o.standby.is_empty());
    assert_eq!(o.stats.waypoints_retired, 1);
    assert_eq!(o.stats.waypoints_recalled, 1);
    o.check().unwrap();
}

#[test]
fn a_parent_blamed_by_many_children_at_once_loses_one_mark_per_review() {
    let t0 = Timestamp::ZERO;
    let mut o = overlay(t0);
    let c = cfg();
    join(&mut o, t0, 1, MemberKind::Origin, 20 * RATE);
    join(&mut o, t0, 2, MemberKind::Peer, 3 * RATE);
    for i in 0..20u32 {
        join(&mut o, t0, 10 + i, MemberKind::Peer, RATE / 2);
    }
    let kids: Vec<NodeId> = o
        .members
        .values()
        .filter(|m| m.parents.contains(&Some(NodeId(2))))
        .map(|m| m.info.id)
        .collect();
    assert!(kids.len() >= 3, "peer 2 feeds several: {kids:?}");
    // Starved from above, it is reported by every child in the same period.
    for k in &kids {
        o.link_bad(*k, NodeId(2), &c, &AllowAll);
    }
    assert_eq!(o.members[&NodeId(2)].history, -1);
    o.review_top(t0.plus_millis(1000), &c, &AllowAll);
    assert_eq!(
        o.members[&NodeId(2)].history,
        -1,
        "blamed this period: not healed"
    );
    o.review_top(t0.plus_millis(2000), &c, &AllowAll);
    assert_eq!(
        o.members[&NodeId(2)].history,
        0,
        "a period without blame heals"
    );
    o.check().unwrap();
}

#[test]
fn the_push_tree_keeps_its_links_when_the_top_level_changes() {
    let t0 = Timestamp::ZERO;
    let c = PeerConfig {
        stable_ms: 0,
        top_per_region: 20,
        ..cfg()
    };
    let mut o = with_origin(t0, &c, 40 * RATE);
    join_peers(&mut o, t0, &c, 10..22, 6 * RATE);
    for i in 0..30u32 {
        o.join(
            t0,
            info(100 + i),
            RegionId(0),
            MemberKind::Peer,
            RATE,
            &c,
            &AllowAll,
        );
    }
    o.review_top(t0.plus_millis(1000), &c, &AllowAll);
    let before: Vec<(NodeId, Option<NodeId>)> = o
        .top_order
        .iter()
        .map(|id| (*id, o.members[id].eager))
        .collect();
    assert!(
        before.len() >= 12,
        "{} on top: {:?}",
        before.len(),
        o.preferred_peers(t0.plus_millis(1000), &c)
    );
    // One more preferred peer: the mesh is rebuilt, the push links stay.
    o.join(
        t0,
        info(50),
        RegionId(0),
        MemberKind::Peer,
        6 * RATE,
        &c,
        &AllowAll,
    );
    assert!(o.review_top(t0.plus_millis(2000), &c, &AllowAll));
    assert!(o.members[&NodeId(50)].top);
    for (id, eager) in before {
        assert_eq!(o.members[&id].eager, eager, "{id} kept its push parent");
    }
    // A top member leaves: only its push children move.
    let gone = o.top_order[1];
    let orphans: Vec<NodeId> = o
        .top_children
        .get(&gone)
        .into_iter()
        .flatten()
        .copied()
        .collect();
    let kept: Vec<(NodeId, Option<NodeId>)> = o
        .top_order
        .iter()
        .filter(|id| **id != gone && !orphans.contains(id))
        .map(|id| (*id, o.members[id].eager))
        .collect();
    o.remove(gone, &c, &AllowAll);
    for (id, eager) in kept {
        assert_eq!(o.members[&id].eager, eager, "{id} kept its push parent");
    }
    for id in orphans {
        assert!(o.members[&id].eager.is_some_and(|p| p != gone));
    }
    o.check().unwrap();
}

/// Hops from `id` up its push parents to the origin; None when the chain ends
/// at a member without a push parent.
fn push_depth(o: &PeerOverlay, mut id: NodeId) -> Option<usize> {
    for d in 0..=o.members.len() {
        let m = &o.members[&id];
        if m.kind == MemberKind::Origin {
            return Some(d);
        }
        id = m.eager?;
    }
    None
}

#[test]
fn members_promoted_together_hang_shallow_when_the_top_is_full_of_bottom_children() {
    let t0 = Timestamp::ZERO;
    let c = PeerConfig {
        stable_ms: 0,
        top_per_region: 20,
        ..cfg()
    };
    let mut o = with_origin(t0, &c, 2 * RATE);
    join_peers(&mut o, t0, &c, 10..14, 6 * RATE);
    o.review_top(t0.plus_millis(1000), &c, &AllowAll);
    assert_eq!(o.top_order.len(), 5);
    // Peers that upload nothing take every free slot of the top level, six
    // strong peers join (short of a tree, they borrow top slots: `peers/lend.rs`),
    // and more of the first kind take the top level's slots again.
    let mut id = 100;
    let mut fill = |o: &mut PeerOverlay| {
        while o.top_order.iter().any(|t| o.members[t].spare() > 0) {
            join_peers(o, t0, &c, id..id + 1, RATE / 8);
            id += 1;
        }
    };
    fill(&mut o);
    join_peers(&mut o, t0, &c, 20..26, 6 * RATE);
    fill(&mut o);
    // The six become preferred at once: none of the old top members has room
    // for a push child.
    assert!(o.review_top(t0.plus_millis(2000), &c, &AllowAll));
    assert_eq!(o.top_order.len(), 11);
    let depths: Vec<(NodeId, Option<usize>)> = o
        .top_order
        .iter()
        .map(|t| (*t, push_depth(&o, *t)))
        .collect();
    assert!(
        depths.iter().all(|(_, d)| d.is_some_and(|d| d <= 3)),
        "every top member is fed from the origin within three hops (not a chain of the promoted): {depths:?}"
    );
    // (Before lent slots, the room came from bumping the old members' bottom
    // children, `make_push_room`; now the promoted members held top slots of
    // their own, freed as they go up, and no bump is needed here.)
    o.check().unwrap();
    // Whoever waits finds a parent among the promoted members.
    for p in o.pending.clone() {
        o.place(p, false, &c, &AllowAll);
    }
    assert!(o.pending.is_empty(), "{:?} still wait", o.pending);
    o.check().unwrap();
}

#[test]
fn a_calm_top_level_runs_a_plain_tree_and_floods_again_when_it_changes() {
    use super::Algorithm;
    let t0 = Timestamp::ZERO;
    let t = |ms| t0.plus_millis(ms);
    let mut o = overlay(t0);
    let c = PeerConfig {
        stable_ms: 0,
        top_tree_after_ms: 10_000,
        ..cfg()
    };
    join(&mut o, t0, 1, MemberKind::Origin, 20 * RATE);
    join_peers(&mut o, t0, &c, 10..16, 6 * RATE);
    let lazy_links =
        |o: &PeerOverlay| -> usize { o.top_order.iter().map(|id| o.members[id].lazy.len()).sum() };
    o.review_top_algorithm(t(1000), &c);
    o.review_top(t(1000), &c, &AllowAll);
    assert_eq!(o.top_order.len(), 7);
    assert!(lazy_links(&o) > 0, "the mesh's lazy links");
    o.take_dirty();
    // The promotion disturbed the top level: calm from the next review on.
    o.review_top_algorithm(t(2000), &c);
    o.review_top_algorithm(t(11_000), &c);
    assert!(!o.top_tree, "not calm for 10 s yet");
    o.review_top_algorithm(t(12_000), &c);
    assert!(o.top_tree);
    assert_eq!(lazy_links(&o), 0, "the push tree alone");
    assert_eq!(o.algorithms(RegionId(0), &c)[0], Algorithm::Tree);
    assert_eq!(o.stats.top_tree_switches, 1);
    assert!(
        !o.take_dirty().is_empty(),
        "members are told to drop their lazy links"
    );
    o.check().unwrap();
    // A top member leaves: the tree is rebuilt with the mesh's lazy links.
    o.remove(o.top_order[2], &c, &AllowAll);
    assert!(!o.top_tree);
    assert!(lazy_links(&o) > 0);
    assert_eq!(
        o.algorithms(RegionId(0), &c)[0],
        Algorithm::Flood { c: c.mesh_c }
    );
    o.review_top_algorithm(t(13_000), &c);
    o.review_top_algorithm(t(22_000), &c);
    assert!(!o.top_tree, "calm again only 10 s after the change");
    o.review_top_algorithm(t(23_000), &c);
    assert!(o.top_tree);
    // Off by default: it always floods.
    let mut o2 = overlay(t0);
    join(&mut o2, t0, 1, MemberKind::Origin, 20 * RATE);
    o2.review_top_algorithm(t(1_000_000), &cfg());
    assert!(!o2.top_tree);
}
