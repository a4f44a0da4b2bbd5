//! Relays that feed nobody are made idle (V5): a relay activated for viewers who
//! never came (they were redirected but never logged in) does not stay active
//! forever; the tier's entry relay and its last relay stay.

mod support;

use support::Bus;
use tiercast_coordinator::{CoordEvent, CoordinatorConfig};
use tiercast_node::NodeConfig;
use tiercast_proto::{ChannelId, NodeId, NodeRole};

#[test]
fn relays_activated_for_viewers_who_never_came_are_made_idle() {
    let cfg = CoordinatorConfig {
        idle_relay_ms: 5_000,
        ..CoordinatorConfig::default()
    };
    let mut bus = Bus::new(cfg);
    bus.add_node(1, NodeRole::Origin, 0, 1000, 0);
    for id in 11..=13 {
        bus.add_node_with(NodeConfig {
            id: NodeId(id),
            role: NodeRole::Relay,
            tier: 1,
            capacity: 1,
            min_threshold: 1,
            ..NodeConfig::default()
        });
    }
    bus.node(1).announce("live", [0; 32]);
    bus.settle();
    bus.add_node(100, NodeRole::Viewer, 255, 0, 0);
    let now = bus.now;
    bus.node(100).watch(now, "live");
    bus.settle();
    // Relay 11 is full and asked for help: 12 is active. Two more viewers are sent
    // out (to 12, then to 13, activated for it) but never log in.
    let now = bus.now;
    let a = bus.coordinator.watch(now, "live").unwrap().1.id;
    let b = bus.coordinator.watch(now, "live").unwrap().1.id;
    assert_eq!((a.0, b.0), (12, 13));
    bus.settle();
    let active = |bus: &Bus| -> Vec<u32> {
        let mut v: Vec<u32> = bus
            .coordinator
            .channel(ChannelId(1))
            .unwrap()
            .active_in_tier(1)
            .iter()
            .map(|n| n.0)
            .collect();
        v.sort();
        v
    };
    assert_eq!(active(&bus), vec![11, 12, 13]);
    bus.advance(10_000);
    let idled: Vec<u32> = bus
        .coord_events
        .iter()
        .filter_map(|e| match e {
            CoordEvent::Idled { node, .. } => Some(node.0),
            _ => None,
        })
        .collect();
    assert_eq!(idled, vec![12], "the empty non-entry relay is made idle");
    assert_eq!(
        active(&bus),
        vec![11, 13],
        "11 feeds a viewer, 13 is the entry"
    );
    assert!(
        bus.node(12).channel(ChannelId(1)).is_none(),
        "relay 12 left the channel"
    );
}
