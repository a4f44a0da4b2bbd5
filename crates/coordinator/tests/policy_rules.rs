//! Client rules on the real machines over the zero-latency bus (C3 → C4, issue
//! 11 must show 2): a desktop inside its `no_relay_hours` and a phone whose class
//! may not relay are given no children — their children re-homed when the hours
//! begin — and a device class refused the channel is told why.

mod support;

use support::Bus;
use tiercast_coordinator::{CoordEvent, CoordinatorConfig};
use tiercast_node::{Event, NodeConfig};
use tiercast_proto::{ChannelId, DenyReason, DeviceClass, NodeId, NodeRole, OriginKey};

const POLICIES: &str = r#"
[[client.no_relay_hours]]
name = "office-hours"
hours = [9, 17]
device_classes = ["desktop"]

[[client.device_class]]
name = "phones-do-not-relay"
classes = ["mobile"]
deny = "relay"

[[client.device_class]]
name = "no-tv"
classes = ["tv"]
deny = "watch"
"#;

fn add_peer(bus: &mut Bus, id: u32, uplink_kbps: u32, device_class: DeviceClass) {
    let cfg = NodeConfig {
        device_class,
        ..Bus::peer_config(id, uplink_kbps)
    };
    bus.add_watching(cfg, "live");
}

/// Whether `id` feeds anyone in the overlay (a substream or a push link).
fn feeds_anyone(bus: &Bus, id: u32) -> bool {
    let o = bus.coordinator.peer_overlay(ChannelId(1)).expect("overlay");
    o.members
        .values()
        .any(|m| m.parents.contains(&Some(NodeId(id))) || m.eager == Some(NodeId(id)))
}

#[test]
fn no_relay_hours_and_denied_classes_give_no_children_and_rehome_them_when_the_hours_begin() {
    let mut cfg = CoordinatorConfig::default();
    cfg.peers.substreams = 4;
    cfg.peers.stream_rate_kbps = 2000;
    cfg.peers.repair_link = false;
    // Timestamp 0 is 08:59 UTC: the office hours begin a minute in.
    cfg.clock_epoch_unix_s = 9 * 3600 - 60;
    let mut bus = Bus::new(cfg);
    bus.add_node_with(NodeConfig {
        id: NodeId(1),
        role: NodeRole::Origin,
        tier: 0,
        uplink_kbps: 16_000,
        addr: "sim:1".into(),
        http_addr: "sim:1".into(),
        ..NodeConfig::default()
    });
    let key = OriginKey::generate().unwrap();
    bus.node(1).announce("live", key.public_key());
    bus.settle();
    let now = bus.now;
    assert_eq!(bus.coordinator.utc_hour(now), 8);
    assert_eq!(bus.coordinator.apply_policies(now, POLICIES), Ok(3));
    add_peer(&mut bus, 2, 8000, DeviceClass::Desktop);
    add_peer(&mut bus, 3, 8000, DeviceClass::Mobile);
    for id in 4..8 {
        add_peer(&mut bus, id, 1000, DeviceClass::Unspecified);
    }
    bus.advance(5_000);
    assert!(feeds_anyone(&bus, 2), "before its hours the desktop relays");
    assert!(!feeds_anyone(&bus, 3), "a phone never relays");
    let slots = |bus: &Bus, id: u32| {
        bus.coordinator
            .peer_overlay(ChannelId(1))
            .expect("overlay")
            .members[&NodeId(id)]
            .slots
    };
    assert_eq!(slots(&bus, 3), 0, "its uplink is not counted");
    bus.advance(60_000);
    assert_eq!(bus.coordinator.utc_hour(bus.now), 9);
    assert!(
        !feeds_anyone(&bus, 2),
        "within its hours the desktop feeds no one"
    );
    assert_eq!(slots(&bus, 2), 0);
    let o = bus.coordinator.peer_overlay(ChannelId(1)).expect("overlay");
    for id in 2..8 {
        let m = &o.members[&NodeId(id)];
        assert!(
            m.top || m.parents.iter().all(Option::is_some),
            "peer {id} re-homed: {:?}",
            m.parents
        );
    }
    // The TV may not watch: told why, and the event log names the rule.
    add_peer(&mut bus, 9, 1000, DeviceClass::Tv);
    let told = bus.node_events.iter().find_map(|(n, e)| match e {
        Event::WatchDenied { reason, .. } if n.0 == 9 => Some(reason.clone()),
        _ => None,
    });
    assert!(
        matches!(&told, Some(DenyReason::PolicyRefused { reason }) if reason.contains("tv")),
        "{told:?}"
    );
    assert!(bus.coord_events.iter().any(|e| matches!(
        e,
        CoordEvent::WatchRefused { rule, device_class, .. } if rule == "no-tv" && device_class == "tv"
    )));
    assert!(!bus
        .coordinator
        .peer_overlay(ChannelId(1))
        .expect("overlay")
        .members
        .contains_key(&NodeId(9)));
}
