//! Redundant parents (V9) and a crashed parent (V10's crash case), on the real
//! machines with signed blocks: a relay with two parents keeps its viewer whole
//! when one parent dies, and the coordinator re-homes it to a new second parent.

mod support;

use bytes::Bytes;
use support::Bus;
use tiercast_coordinator::{CoordEvent, CoordinatorConfig};
use tiercast_proto::{Block, ChannelId, NodeId, NodeRole, OriginKey, Timestamp};

fn ingest(bus: &mut Bus, key: &OriginKey, seq: u64) {
    bus.ingest_signed(
        key,
        seq,
        seq.is_multiple_of(5),
        Bytes::from(vec![seq as u8; 100]),
    );
}

#[test]
fn two_parents_lose_nothing_when_one_dies() {
    let mut bus = Bus::new(CoordinatorConfig {
        parents_per_relay: 2,
        ..CoordinatorConfig::default()
    });
    let key = OriginKey::generate().unwrap();
    bus.add_node(1, NodeRole::Origin, 0, 1000, 0);
    for id in [11, 12, 13] {
        bus.add_node(id, NodeRole::Relay, 1, 10, 1);
    }
    bus.add_node(21, NodeRole::Relay, 2, 10, 1);
    bus.add_node(100, NodeRole::Viewer, 255, 0, 0);
    bus.node(1).announce("live", key.public_key());
    bus.settle();
    let now = bus.now;
    bus.node(100).watch(now, "live");
    bus.settle();

    let parents: Vec<u32> = bus
        .node(21)
        .channel(ChannelId(1))
        .unwrap()
        .parents
        .ids()
        .iter()
        .map(|n| n.0)
        .collect();
    assert_eq!(
        parents,
        vec![11, 12],
        "the bottom relay takes two parents from tier 1"
    );

    for seq in 0..10 {
        ingest(&mut bus, &key, seq);
    }
    // Parent 11 crashes: its messages are lost from now on and the coordinator notices.
    bus.nodes.remove(&NodeId(11));
    for seq in 10..15 {
        ingest(&mut bus, &key, seq);
    }
    let now = bus.now;
    bus.coordinator.node_lost(now, NodeId(11));
    bus.settle();
    for seq in 15..30 {
        ingest(&mut bus, &key, seq);
    }

    assert_eq!(
        bus.blocks_stored(100),
        (0..30).collect::<Vec<_>>(),
        "the viewer got every block once, in order"
    );
    assert_eq!(
        bus.node(21)
            .channel(ChannelId(1))
            .unwrap()
            .buffer
            .missing_total(),
        0
    );
    assert!(
        bus.node(21)
            .channel(ChannelId(1))
            .unwrap()
            .buffer
            .duplicates()
            >= 20,
        "both parents fed it"
    );
    // The coordinator gave relay 21 a new second parent (13) in place of 11.
    assert!(bus.coord_events.iter().any(|e| matches!(
        e,
        CoordEvent::Reassigned { node, added, removed, .. }
            if node.0 == 21 && added == &vec![NodeId(13)] && removed == &vec![NodeId(11)]
    )));
    let parents: Vec<u32> = bus
        .node(21)
        .channel(ChannelId(1))
        .unwrap()
        .parents
        .ids()
        .iter()
        .map(|n| n.0)
        .collect();
    assert_eq!(parents, vec![12, 13]);
}

#[test]
fn forged_blocks_are_rejected() {
    let mut bus = Bus::new(CoordinatorConfig::default());
    let key = OriginKey::generate().unwrap();
    bus.add_node(1, NodeRole::Origin, 0, 1000, 0);
    bus.add_node(11, NodeRole::Relay, 1, 10, 1);
    bus.add_node(100, NodeRole::Viewer, 255, 0, 0);
    bus.node(1).announce("live", key.public_key());
    bus.settle();
    let now = bus.now;
    bus.node(100).watch(now, "live");
    bus.settle();
    ingest(&mut bus, &key, 0);
    // The origin emits a block signed with another key (as a forging relay would).
    let other = OriginKey::generate().unwrap();
    let mut b = Block::new(
        ChannelId(1),
        1,
        Timestamp(1),
        false,
        Bytes::from_static(b"forged"),
    );
    other.sign(&mut b);
    let now = bus.now;
    bus.node(1).ingest_block(now, b);
    bus.settle();
    assert_eq!(bus.blocks_stored(100), vec![0]);
    assert_eq!(
        bus.node(11).channel(ChannelId(1)).unwrap().rejected_blocks,
        1
    );
}
