//! Viewers whose relay dies (issue 10, V10's crash case for protocol viewers, V2
//! rules for the new relay): the coordinator knows where it sent each viewer, and
//! when a relay is presumed crashed it sends each of that relay's viewers a
//! `WatchAt` to another relay of the entry tier — within two heartbeat intervals of
//! the crash (virtual time), with no help from the transport or the viewer.

mod support;

use bytes::Bytes;
use support::Bus;
use tiercast_coordinator::CoordinatorConfig;
use tiercast_proto::{ChannelId, NodeId, NodeRole, OriginKey};

const VIEWERS: std::ops::Range<u32> = 100..106;

fn cfg() -> CoordinatorConfig {
    CoordinatorConfig {
        heartbeat_interval_ms: 1000,
        heartbeat_timeout_ms: 1500,
        ..CoordinatorConfig::default()
    }
}

/// Origin 1, relays 11 and 12 (one tier, capacity 10), six viewers on relay 11.
fn setup() -> (Bus, OriginKey) {
    let mut bus = Bus::new(cfg());
    bus.add_node(1, NodeRole::Origin, 0, 100, 0);
    bus.add_node(11, NodeRole::Relay, 1, 10, 1);
    bus.add_node(12, NodeRole::Relay, 1, 10, 1);
    let key = OriginKey::generate().unwrap();
    bus.node(1).announce("live", key.public_key());
    bus.settle();
    for v in VIEWERS {
        bus.add_node(v, NodeRole::Viewer, 255, 0, 0);
        let now = bus.now;
        bus.node(v).watch(now, "live");
        bus.settle();
    }
    for v in VIEWERS {
        assert_eq!(bus.watching_relay(v), Some(11), "viewer {v} starts on 11");
    }
    (bus, key)
}

#[test]
fn a_crashed_relays_viewers_are_moved_within_two_heartbeat_intervals() {
    let (mut bus, key) = setup();
    for seq in 0..5 {
        bus.ingest_signed(&key, seq, seq == 0, Bytes::from_static(b"ts"));
    }
    assert_eq!(bus.coordinator.viewer_map().viewers_of(NodeId(11)).len(), 6);
    bus.advance(300);
    // Relay 11 crashes: it says nothing more, and nobody's link reports it.
    bus.nodes.remove(&NodeId(11));
    let crashed_at = bus.now;
    let interval = cfg().heartbeat_interval_ms;
    let mut moved_after_ms = None;
    for _ in 1..=60 {
        bus.advance(50);
        if VIEWERS.clone().all(|v| bus.watching_relay(v) == Some(12)) {
            moved_after_ms = Some(bus.now.saturating_since(crashed_at) / 1000);
            break;
        }
    }
    let after = moved_after_ms.expect("every viewer moved to relay 12");
    assert!(
        after <= 2 * interval,
        "moved {after} ms after the crash (2 intervals = {} ms)",
        2 * interval
    );
    assert!(!bus.coordinator.registry().is_alive(NodeId(11)));
    assert_eq!(bus.coordinator.viewer_map().moved, 6);
    assert_eq!(bus.coordinator.viewer_map().viewers_of(NodeId(11)), vec![]);
    assert_eq!(bus.coordinator.viewer_map().viewers_of(NodeId(12)).len(), 6);
    // The viewers resume on relay 12 at the next seq they need.
    for seq in 5..10 {
        bus.ingest_signed(&key, seq, seq == 5, Bytes::from_static(b"ts"));
    }
    for v in VIEWERS {
        let r = bus
            .node(v)
            .continuity()
            .get("live")
            .expect("tracked")
            .report();
        assert_eq!((r.first_seq, r.last_seq), (Some(0), Some(9)), "viewer {v}");
        assert_eq!(r.missing, 0, "nothing was produced while they moved");
        assert_eq!(r.relay_switches, 1);
        let parents = bus.node(v).channel(ChannelId(1)).unwrap().parents.ids();
        assert_eq!(parents, vec![NodeId(12)], "viewer {v}");
    }
}

#[test]
fn a_viewer_that_left_is_forgotten_once_its_relay_stops_listing_it() {
    let (mut bus, _key) = setup();
    let now = bus.now;
    bus.node(100).unwatch(now, "live");
    bus.settle();
    bus.nodes.remove(&NodeId(100));
    // Relay 11's heartbeats no longer list viewer 100; after the heartbeat timeout
    // (a just-placed viewer's grace) it leaves the map.
    bus.advance(4000);
    let at_11 = bus.coordinator.viewer_map().viewers_of(NodeId(11));
    assert_eq!(at_11.len(), 5, "{at_11:?}");
    assert!(at_11.iter().all(|(v, _)| v.0 != 100));
}
