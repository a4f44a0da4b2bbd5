//! The history store fed by the real machines over the zero-latency bus (issue
//! 11 item 5; C1, C4, D1): registrations open sessions, a relay presumed crashed
//! closes its session and comes back in a second one, so its availability falls
//! below its sibling's and the ranking puts it after; the relays feeding a child
//! while blocks flow have achieved uplink measured from their heartbeats.

mod support;

use support::Bus;
use tiercast_coordinator::CoordinatorConfig;
use tiercast_node::NodeConfig;
use tiercast_proto::{NodeId, NodeRole, OriginKey};

fn relay(id: u32, tier: u8) -> NodeConfig {
    NodeConfig {
        id: NodeId(id),
        role: NodeRole::Relay,
        tier,
        capacity: 10,
        max_threshold: 10,
        min_threshold: 1,
        addr: format!("sim:{id}"),
        http_addr: format!("sim:{id}"),
        ..NodeConfig::default()
    }
}

#[test]
fn a_crashed_relay_has_a_second_session_lower_availability_and_ranks_after_its_sibling() {
    let mut bus = Bus::new(CoordinatorConfig::default());
    bus.add_node(1, NodeRole::Origin, 0, 100, 0);
    bus.add_node_with(relay(11, 1));
    bus.add_node_with(relay(12, 1));
    bus.add_node_with(relay(21, 2));
    let key = OriginKey::generate().unwrap();
    bus.node(1).announce("live", key.public_key());
    bus.settle();
    // A viewer, so the relays log in to their parents (V3) and blocks flow.
    bus.add_node_with(NodeConfig {
        id: NodeId(101),
        role: NodeRole::Viewer,
        tier: 255,
        capacity: 0,
        ..NodeConfig::default()
    });
    let now = bus.now;
    bus.node(101).watch(now, "live");
    bus.settle();
    for seq in 0..40u64 {
        bus.ingest_signed(&key, seq, seq.is_multiple_of(8), vec![1u8; 100].into());
        bus.advance(250);
    }
    let h = bus.coordinator.history();
    let fed_21: Vec<u32> = [11, 12]
        .into_iter()
        .filter(|p| {
            h.get(NodeId(*p))
                .is_some_and(|r| r.achieved_uplink_kbps > 0.0)
        })
        .collect();
    assert_eq!(
        fed_21.len(),
        1,
        "the parent of relay 21 achieved uplink: {fed_21:?}"
    );
    assert!(
        h.get(NodeId(21)).unwrap().achieved_uplink_kbps > 0.0,
        "21 feeds the viewer"
    );

    // Relay 12 crashes: its heartbeats stop, the coordinator presumes it gone.
    let gone = bus.nodes.remove(&NodeId(12)).expect("relay 12");
    drop(gone);
    bus.advance(10_000);
    bus.add_node_with(relay(12, 1));
    bus.advance(10_000);
    let now = bus.now;
    let h = bus.coordinator.history();
    let (r11, r12) = (h.get(NodeId(11)).unwrap(), h.get(NodeId(12)).unwrap());
    assert_eq!((r11.sessions, r12.sessions), (1, 2));
    assert_eq!(r11.availability(now), 1.0);
    let a12 = r12.availability(now);
    assert!(
        a12 > 0.5 && a12 < 0.9,
        "relay 12 was away ~10 of ~30 s: {a12}"
    );
    assert_eq!(
        h.rank(now, [NodeId(12), NodeId(11)]),
        vec![NodeId(11), NodeId(12)]
    );
}
