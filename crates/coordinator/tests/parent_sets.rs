//! The one way a node is told its parents (C1) on the real machines over the
//! zero-latency bus: the VAN (activation, re-parenting after a crash; V2, V10)
//! and the peer overlay (C4, C6) both send versioned full parent sets; every
//! node ends with the version the coordinator last sent it and, for a relay, the
//! parents the coordinator booked; no set is refused as stale; a node's numbers
//! go when it leaves.

mod support;

use support::Bus;
use tiercast_coordinator::CoordinatorConfig;
use tiercast_node::parents::ParentState;
use tiercast_proto::{ChannelId, NodeId, NodeRole};

const CH: ChannelId = ChannelId(1);

/// The node's version is the coordinator's, and it refused no set.
fn in_step(bus: &Bus, id: u32) -> u64 {
    let node = &bus.nodes[&NodeId(id)];
    let v = node.parent_set_version(CH);
    assert!(v.is_some(), "node {id} was sent a set");
    assert_eq!(
        v,
        bus.coordinator.parent_set_version(NodeId(id), CH),
        "node {id}"
    );
    let refused: Vec<String> = bus
        .node_events
        .iter()
        .filter(|(n, e)| {
            n.0 == id
                && matches!(
                    e,
                    tiercast_node::Event::Invalid {
                        kind: "parent_set",
                        ..
                    }
                )
        })
        .map(|(_, e)| format!("{e:?}"))
        .collect();
    assert!(refused.is_empty(), "node {id} refused a set: {refused:?}");
    v.unwrap_or(0)
}

/// A relay's live parents (not leaving) are those the coordinator booked for it.
fn relay_parents_match(bus: &Bus, id: u32) {
    let node = &bus.nodes[&NodeId(id)];
    let mut live: Vec<NodeId> = node
        .channel(CH)
        .expect("carried")
        .parents
        .iter()
        .filter(|(_, l)| l.state != ParentState::Disconnecting)
        .map(|(p, _)| *p)
        .collect();
    live.sort();
    let m = bus.coordinator.channel(CH).expect("channel");
    let mut booked = m.active[&NodeId(id)].parents.clone();
    booked.sort();
    assert_eq!(live, booked, "relay {id}");
}

#[test]
fn the_van_activates_and_re_parents_relays_by_versioned_parent_sets() {
    // Figure 1(b): S, three tiers of three relays (capacity 3), viewers.
    let mut bus = Bus::new(CoordinatorConfig::default());
    bus.add_node(1, NodeRole::Origin, 0, 1000, 0);
    for tier in 1..=3u32 {
        for j in 1..=3u32 {
            bus.add_node(tier * 10 + j, NodeRole::Relay, tier as u8, 3, 2);
        }
    }
    for i in 1..=7 {
        bus.add_node(100 + i, NodeRole::Viewer, 255, 0, 0);
    }
    bus.node(1).announce("live", [0; 32]);
    bus.settle();
    for i in 1..=7 {
        let now = bus.now;
        bus.node(100 + i).watch(now, "live");
        bus.settle();
    }
    let active: Vec<u32> = bus
        .coordinator
        .channel(CH)
        .expect("channel")
        .active
        .keys()
        .map(|n| n.0)
        .collect();
    assert_eq!(active, vec![11, 21, 22, 31, 32, 33]);
    for r in &active {
        in_step(&bus, *r);
        relay_parents_match(&bus, *r);
    }
    // P21, the parent of the tier-3 relays, crashes: they are re-parented by
    // a newer set, connect to the new parent and drop P21.
    let before: Vec<u64> = [31, 32, 33].iter().map(|r| in_step(&bus, *r)).collect();
    bus.nodes.remove(&NodeId(21));
    let now = bus.now;
    bus.coordinator.node_lost(now, NodeId(21));
    bus.settle();
    assert_eq!(bus.coordinator.parent_set_version(NodeId(21), CH), None);
    for (i, r) in [31, 32, 33].into_iter().enumerate() {
        assert!(in_step(&bus, r) > before[i], "relay {r} got a newer set");
        relay_parents_match(&bus, r);
        let parents = &bus.nodes[&NodeId(r)].channel(CH).unwrap().parents;
        assert!(!parents.contains(NodeId(21)), "relay {r} dropped P21");
    }
}

#[test]
fn the_peer_overlay_sends_versioned_parent_sets_and_forgets_a_peer_that_left() {
    let mut cfg = CoordinatorConfig::default();
    cfg.peers.substreams = 4;
    cfg.peers.stream_rate_kbps = 2000;
    cfg.peers.repair_link = false;
    let mut bus = Bus::new(cfg);
    bus.add_node_with(Bus::origin_config(1, 8000));
    bus.node(1).announce("live", [0; 32]);
    bus.settle();
    let uplinks = [1000, 2000, 4000, 8000];
    for i in 0..12u32 {
        bus.add_watching(Bus::peer_config(10 + i, uplinks[i as usize % 4]), "live");
    }
    for i in 0..12u32 {
        in_step(&bus, 10 + i);
    }
    // The peer feeding the most others leaves: those it fed are re-homed by
    // newer sets; its numbers go.
    let peers: Vec<u32> = (10..22).collect();
    let fed_by = |bus: &Bus, p: u32| {
        peers
            .iter()
            .filter(|c| {
                bus.nodes[&NodeId(**c)]
                    .channel(CH)
                    .is_some_and(|ch| ch.parents.contains(NodeId(p)))
            })
            .count()
    };
    let gone = *peers
        .iter()
        .max_by_key(|p| (fed_by(&bus, **p), u32::MAX - **p))
        .expect("peers");
    assert!(fed_by(&bus, gone) > 0, "peer {gone} feeds others");
    let stay: Vec<u32> = peers.iter().copied().filter(|p| *p != gone).collect();
    let before: Vec<u64> = stay.iter().map(|p| in_step(&bus, *p)).collect();
    bus.nodes.remove(&NodeId(gone));
    let now = bus.now;
    bus.coordinator.node_lost(now, NodeId(gone));
    bus.settle();
    bus.advance(3000);
    assert_eq!(bus.coordinator.parent_set_version(NodeId(gone), CH), None);
    let mut moved = 0;
    for (j, p) in stay.iter().enumerate() {
        let v = in_step(&bus, *p);
        assert!(v >= before[j]);
        moved += usize::from(v > before[j]);
        let parents = &bus.nodes[&NodeId(*p)].channel(CH).unwrap().parents;
        assert!(!parents.contains(NodeId(gone)), "peer {p} dropped {gone}");
    }
    assert!(
        moved > 0,
        "the peers {gone} fed were told their new parents"
    );
}
