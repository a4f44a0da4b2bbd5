//! A partition healed (issue 10, D7, X5): relays cut off from the coordinator for
//! longer than the heartbeat timeout are presumed gone; when they hear back they
//! register again and their first heartbeat's links are taken back
//! (`adopt.rs`) — the same relays active with the same parents, nobody told to
//! switch — rather than the channel being rebuilt from nothing.

mod support;

use std::collections::BTreeMap;
use support::Bus;
use tiercast_coordinator::{CoordEvent, CoordinatorConfig};
use tiercast_proto::{ChannelId, NodeId, NodeRole, OriginKey};

const CH: ChannelId = ChannelId(1);

fn cfg() -> CoordinatorConfig {
    CoordinatorConfig {
        heartbeat_interval_ms: 1000,
        heartbeat_timeout_ms: 2500,
        parents_per_relay: 2,
        ..CoordinatorConfig::default()
    }
}

/// Active relays of the channel with their parents.
fn active(bus: &Bus) -> BTreeMap<u32, Vec<u32>> {
    let m = bus.coordinator.channel(CH).expect("channel");
    m.active
        .iter()
        .map(|(n, a)| {
            let mut p: Vec<u32> = a.parents.iter().map(|p| p.0).collect();
            p.sort_unstable();
            (n.0, p)
        })
        .collect()
}

#[test]
fn relays_back_from_a_partition_are_adopted_with_the_links_they_report() {
    let mut bus = Bus::new(cfg());
    bus.add_node(1, NodeRole::Origin, 0, 100, 0);
    for id in [11, 12] {
        bus.add_node(id, NodeRole::Relay, 1, 10, 1);
    }
    for id in [21, 22, 23] {
        bus.add_node(id, NodeRole::Relay, 2, 10, 1);
    }
    let key = OriginKey::generate().unwrap();
    bus.node(1).announce("live", key.public_key());
    bus.settle();
    for v in 100..104 {
        bus.add_node(v, NodeRole::Viewer, 255, 0, 0);
        let now = bus.now;
        bus.node(v).watch(now, "live");
        bus.settle();
    }
    bus.advance(1500);
    let before = active(&bus);
    assert!(before.len() >= 3, "a path is active: {before:?}");

    // The relays' region is cut off: they (and their viewers) hear nothing and
    // say nothing; the coordinator presumes them gone.
    let cut: Vec<u32> = vec![11, 12, 21, 22, 23, 100, 101, 102, 103];
    let away: Vec<_> = cut
        .iter()
        .map(|id| bus.nodes.remove_entry(&NodeId(*id)).expect("node"))
        .collect();
    bus.advance(4000);
    assert!(
        active(&bus).is_empty(),
        "every cut relay timed out: {:?}",
        active(&bus)
    );
    for (id, n) in away {
        bus.nodes.insert(id, n);
    }
    let healed = bus.coord_events.len();
    bus.advance(3000);
    for id in [11, 12, 21, 22, 23] {
        assert!(bus.coordinator.registry().is_alive(NodeId(id)), "{id} back");
    }
    assert_eq!(active(&bus), before, "the overlay it kept is taken back");
    let moved: Vec<&CoordEvent> = bus.coord_events[healed..]
        .iter()
        .filter(|e| matches!(e, CoordEvent::Reassigned { .. }))
        .collect();
    assert!(moved.is_empty(), "nobody told to switch: {moved:?}");
}
