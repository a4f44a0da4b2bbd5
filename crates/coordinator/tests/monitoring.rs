//! Monitoring of the parent tier (V10) on the real machines: a relay whose link to a
//! parent dies reports LinkDowngrade and is switched to a new parent in the tier
//! above before the coordinator's heartbeat timeout; its viewer keeps receiving.

mod support;

use bytes::Bytes;
use support::Bus;
use tiercast_coordinator::{CoordEvent, CoordinatorConfig};
use tiercast_proto::{ChannelId, NodeId, NodeRole, OriginKey};

fn ingest(bus: &mut Bus, key: &OriginKey, seq: u64) {
    bus.ingest_signed(key, seq, seq == 0, Bytes::from_static(b"ts"));
}

#[test]
fn a_dead_parent_link_is_replaced_by_a_new_parent() {
    let mut bus = Bus::new(CoordinatorConfig::default());
    bus.add_node(1, NodeRole::Origin, 0, 100, 0);
    bus.add_node(11, NodeRole::Relay, 1, 10, 1);
    bus.add_node(12, NodeRole::Relay, 1, 10, 1);
    bus.add_node(21, NodeRole::Relay, 2, 10, 1);
    bus.add_node(100, NodeRole::Viewer, 255, 0, 0);
    let key = OriginKey::generate().unwrap();
    bus.node(1).announce("live", key.public_key());
    bus.settle();
    let now = bus.now;
    bus.node(100).watch(now, "live");
    bus.settle();
    ingest(&mut bus, &key, 0);
    let parents = |bus: &mut Bus| -> Vec<u32> {
        bus.node(21)
            .channel(ChannelId(1))
            .unwrap()
            .parents
            .ids()
            .iter()
            .map(|n| n.0)
            .collect()
    };
    assert_eq!(parents(&mut bus), vec![11]);

    // Relay 11 dies; relay 21's driver sees the link go down.
    bus.nodes.remove(&NodeId(11));
    let now = bus.now;
    bus.node(21).peer_lost(now, NodeId(11));
    bus.settle();
    assert!(bus.coord_events.iter().any(|e| matches!(
        e, CoordEvent::LinkDowngraded { node, parent, .. } if node.0 == 21 && parent.0 == 11
    )));
    assert!(bus
        .coord_events
        .iter()
        .any(|e| matches!(e, CoordEvent::Activated { node, tier: 1, .. } if node.0 == 12)));
    assert_eq!(
        parents(&mut bus),
        vec![12],
        "switched to the newly activated parent"
    );
    assert!(
        bus.coordinator.registry().is_alive(NodeId(11)),
        "no heartbeat timeout was needed"
    );
    // The stream reaches the viewer through the new parent.
    for seq in 1..5 {
        ingest(&mut bus, &key, seq);
    }
    let got = bus.blocks_stored(100);
    assert_eq!(got, vec![0, 1, 2, 3, 4]);
}

#[test]
fn link_downgrade_from_a_stranger_is_dropped() {
    let mut bus = Bus::new(CoordinatorConfig::default());
    bus.add_node(1, NodeRole::Origin, 0, 100, 0);
    bus.add_node(11, NodeRole::Relay, 1, 10, 1);
    bus.node(1).announce("live", [0; 32]);
    bus.settle();
    let now = bus.now;
    bus.coordinator.handle_message(
        now,
        NodeId(77),
        tiercast_proto::Message::LinkDowngrade {
            channel: ChannelId(1),
            parent: NodeId(11),
        },
    );
    bus.settle();
    assert!(bus.coord_events.iter().any(|e| matches!(
        e,
        CoordEvent::Invalid {
            kind: "link_downgrade",
            ..
        }
    )));
}

#[test]
fn a_node_presumed_crashed_registers_again() {
    let mut bus = Bus::new(CoordinatorConfig::default());
    bus.add_node(1, NodeRole::Origin, 0, 100, 0);
    bus.add_node(11, NodeRole::Relay, 1, 10, 1);
    let now = bus.now;
    bus.coordinator.node_lost(now, NodeId(11));
    bus.settle();
    assert!(!bus.coordinator.registry().is_alive(NodeId(11)));
    // Its next heartbeat is refused with "register again", and it does.
    bus.advance(2_500);
    assert!(
        bus.coordinator.registry().is_alive(NodeId(11)),
        "registered again"
    );
}
