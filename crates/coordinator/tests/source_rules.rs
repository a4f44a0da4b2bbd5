//! Servers or peers (C3's `provider.prefer_source` and `network.traffic_budget`,
//! `policy/source_rules.rs`) on the real machines over the zero-latency bus: a
//! peer's `Watch` goes to a relay while servers are preferred and a relay has
//! room, into the peer overlay when peers are preferred (or no relay has room:
//! the fall-back); a traffic budget switches from servers to peers once the
//! servers' traffic counted from their heartbeats passes its threshold.

mod support;

use support::Bus;
use tiercast_coordinator::policy::Period;
use tiercast_coordinator::{CoordEvent, CoordinatorConfig};
use tiercast_node::Event;
use tiercast_proto::{ChannelId, NodeId, OriginKey};

/// An origin, one relay with room for `relay_capacity` viewers, channel "live".
fn cluster(relay_capacity: u32) -> (Bus, OriginKey) {
    let mut cfg = CoordinatorConfig::default();
    cfg.peers.substreams = 4;
    cfg.peers.stream_rate_kbps = 2000;
    cfg.peers.repair_link = false;
    let mut bus = Bus::new(cfg);
    bus.add_node_with(Bus::origin_config(1, 16_000));
    bus.add_node_with(Bus::relay_config(11, relay_capacity));
    let key = OriginKey::generate().expect("key");
    bus.node(1).announce("live", key.public_key());
    bus.settle();
    (bus, key)
}

fn add_peer(bus: &mut Bus, id: u32) {
    bus.add_watching(Bus::peer_config(id, 4000), "live");
}

/// Watching on the relay as its viewer (`WatchAt`), not as a member of the
/// overlay (where the relay may be a waypoint parent too).
fn on_relay(bus: &Bus, id: u32) -> bool {
    !in_overlay(bus, id)
        && bus
            .node_events
            .iter()
            .any(|(n, e)| n.0 == id && matches!(e, Event::Watching { relay, .. } if relay.0 == 11))
}

fn in_overlay(bus: &Bus, id: u32) -> bool {
    bus.coordinator
        .peer_overlay(ChannelId(1))
        .is_some_and(|o| o.members.contains_key(&NodeId(id)))
}

fn placed_by(bus: &Bus, id: u32) -> Option<String> {
    bus.coord_events.iter().find_map(|e| match e {
        CoordEvent::PlacedOnServers { peer, rule, .. } if peer.0 == id => Some(rule.clone()),
        _ => None,
    })
}

#[test]
fn prefer_servers_sends_peers_to_relays_while_they_have_room_then_to_the_peers() {
    let (mut bus, _key) = cluster(2);
    let now = bus.now;
    let file = r#"
[[provider.prefer_source]]
name = "live-on-servers"
channels = ["live"]
prefer = "servers"
"#;
    assert_eq!(bus.coordinator.apply_policies(now, file), Ok(1));
    add_peer(&mut bus, 20);
    add_peer(&mut bus, 21);
    for id in [20, 21] {
        assert!(on_relay(&bus, id), "peer {id} is on the relay");
        assert!(!in_overlay(&bus, id));
        assert_eq!(placed_by(&bus, id).as_deref(), Some("live-on-servers"));
    }
    // The relay is full: the fall-back is the peers, not a refusal.
    add_peer(&mut bus, 22);
    assert!(!on_relay(&bus, 22));
    assert!(
        in_overlay(&bus, 22),
        "no relay has room: the peers carry it"
    );
    assert_eq!(placed_by(&bus, 22), None);
}

#[test]
fn prefer_peers_or_no_rule_puts_a_peer_in_the_overlay_though_the_relay_has_room() {
    for file in [
        "",
        "[[provider.prefer_source]]\nname = \"p\"\nprefer = \"peers\"\n",
    ] {
        let (mut bus, _key) = cluster(10);
        let now = bus.now;
        bus.coordinator.apply_policies(now, file).expect("valid");
        add_peer(&mut bus, 20);
        assert!(in_overlay(&bus, 20), "{file:?}");
        assert!(!on_relay(&bus, 20), "{file:?}");
    }
}

#[test]
fn a_traffic_budget_prefers_servers_until_their_traffic_passes_the_threshold_then_peers() {
    let (mut bus, key) = cluster(10);
    let now = bus.now;
    // 0.002 GB = 2 MB: at 2 Mbit/s to one viewer, 8 seconds of the stream.
    // A stricter `prefer_source` for peers would win; this one is looser.
    let file = r#"
[[network.traffic_budget]]
name = "daily-servers"
period = "day"
threshold_gb = 0.002
below = "servers"
above = "peers"
strictness = 7

[[provider.prefer_source]]
name = "looser"
prefer = "peers"
strictness = 3
"#;
    assert_eq!(bus.coordinator.apply_policies(now, file), Ok(2));
    add_peer(&mut bus, 20);
    assert!(on_relay(&bus, 20), "under the budget: servers");
    assert_eq!(placed_by(&bus, 20).as_deref(), Some("daily-servers"));
    // The stream flows through the relay to the peer for a while.
    let mut seq = 0;
    let mut traffic = Vec::new();
    for s in 0..20 {
        for _ in 0..10 {
            bus.ingest_signed(
                &key,
                seq,
                seq % 10 == 0,
                bytes::Bytes::from(vec![0u8; 188 * 7]),
            );
            seq += 1;
            bus.advance(100);
        }
        traffic.push((s, bus.coordinator.server_traffic_gb(bus.now, Period::Day)));
    }
    let used = bus.coordinator.server_traffic_gb(bus.now, Period::Day);
    assert!(
        used >= 0.002,
        "the servers' traffic passed the threshold: {traffic:?}"
    );
    // About the relay's one viewer and the origin's one relay at 2 Mbit/s for 20 s
    // (10 MB); counted from heartbeats, never more than that.
    assert!((0.008..=0.0101).contains(&used), "{used} GB");
    add_peer(&mut bus, 21);
    assert!(in_overlay(&bus, 21), "over the budget: peers");
    assert!(!on_relay(&bus, 21));
}
