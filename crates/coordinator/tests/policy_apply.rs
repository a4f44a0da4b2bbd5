//! The policy store and geo blocks on the real machines over the zero-latency
//! bus (C3, C4's reason; issue 11 items 2, 3 and must show 7): a file is checked
//! against the regions and channels the coordinator knows and installed whole,
//! or refused with the line and the reason while the running policies stay; a
//! geo block refuses a protocol viewer and a peer of that region with
//! `WatchDenied { GeoBlocked }`, and the HTTP path (`watch_in`) with the same
//! reason; the event log records the rule. Other regions and channels still watch.

mod support;

use support::Bus;
use tiercast_coordinator::{CoordEvent, CoordinatorConfig};
use tiercast_node::{Event, NodeConfig};
use tiercast_proto::{DenyReason, NodeId, NodeRole};

const GEO: &str = r#"
[[provider.geo_block]]
name = "live-rights"
regions = ["cn"]
channels = ["live"]
reason = "live rights do not cover this region"
"#;

fn node(id: u32, role: NodeRole, tier: u8, region: &str) -> NodeConfig {
    NodeConfig {
        id: NodeId(id),
        role,
        tier,
        region: region.into(),
        capacity: if role == NodeRole::Viewer { 0 } else { 10 },
        min_threshold: 1,
        uplink_kbps: if role == NodeRole::Peer { 4000 } else { 0 },
        addr: format!("sim:{id}"),
        http_addr: format!("sim:{id}"),
        ..NodeConfig::default()
    }
}

/// An origin, one relay in "eu" and one in "cn", channel "live" announced.
fn cluster() -> Bus {
    let mut bus = Bus::new(CoordinatorConfig::default());
    bus.add_node(1, NodeRole::Origin, 0, 100, 0);
    bus.add_node_with(node(11, NodeRole::Relay, 1, "eu"));
    bus.add_node_with(node(12, NodeRole::Relay, 1, "cn"));
    bus.node(1).announce("live", [0; 32]);
    bus.settle();
    bus
}

fn denied(bus: &Bus, id: u32) -> Option<DenyReason> {
    bus.node_events.iter().find_map(|(n, e)| match e {
        Event::WatchDenied { reason, .. } if n.0 == id => Some(reason.clone()),
        _ => None,
    })
}

#[test]
fn a_policy_file_is_installed_whole_or_refused_with_the_line_and_the_running_one_stays() {
    let mut bus = cluster();
    let now = bus.now;
    assert_eq!(bus.coordinator.apply_policies(now, GEO), Ok(1));
    assert_eq!(bus.coordinator.installed_policies().source, GEO);
    // Unknown region, unknown channel, a file that does not parse: refused, line named.
    let unknown_region = GEO.replace("\"cn\"", "\"mars\"");
    let e = bus
        .coordinator
        .apply_policies(now, &unknown_region)
        .unwrap_err();
    assert_eq!(e.line, 4, "{e}");
    assert!(e.reason.contains("mars"), "{e}");
    let unknown_channel = GEO.replace("[\"live\"]", "[\"other\"]");
    let e = bus
        .coordinator
        .apply_policies(now, &unknown_channel)
        .unwrap_err();
    assert_eq!(e.line, 5, "{e}");
    assert!(e.reason.contains("other"), "{e}");
    let e = bus
        .coordinator
        .apply_policies(now, "[[provider.geo_block]]\nname = \n")
        .unwrap_err();
    assert_eq!(e.line, 2, "{e}");
    // The first file is still in force.
    assert_eq!(bus.coordinator.installed_policies().source, GEO);
    assert_eq!(bus.coordinator.policies().rule_count(), 1);
    bus.settle();
    let installs: Vec<&CoordEvent> = bus
        .coord_events
        .iter()
        .filter(|e| {
            matches!(
                e,
                CoordEvent::PoliciesInstalled { .. } | CoordEvent::PoliciesRefused { .. }
            )
        })
        .collect();
    assert_eq!(installs.len(), 4, "{installs:?}");
    assert_eq!(installs[0], &CoordEvent::PoliciesInstalled { rules: 1 });
}

#[test]
fn a_restored_file_is_checked_but_not_against_names_not_yet_registered_again() {
    let mut bus = Bus::new(CoordinatorConfig::default());
    let now = bus.now;
    // A fresh coordinator knows no region yet: `apply` refuses, `restore` takes it.
    assert!(bus.coordinator.apply_policies(now, GEO).is_err());
    assert_eq!(bus.coordinator.restore_policies(now, GEO), Ok(1));
    assert!(bus.coordinator.restore_policies(now, "not toml [").is_err());
    assert_eq!(bus.coordinator.policies().rule_count(), 1);
}

#[test]
fn a_geo_blocked_viewer_and_peer_are_told_why_and_the_event_log_names_the_rule() {
    let mut bus = cluster();
    let now = bus.now;
    // Before the policy, a viewer in "cn" watches from the "cn" relay.
    bus.add_node_with(node(101, NodeRole::Viewer, 255, "cn"));
    bus.node(101).watch(now, "live");
    bus.settle();
    assert_eq!(bus.watching_relay(101), Some(12));
    assert_eq!(bus.coordinator.apply_policies(now, GEO), Ok(1));

    bus.add_node_with(node(102, NodeRole::Viewer, 255, "cn"));
    bus.node(102).watch(now, "live");
    bus.add_node_with(node(103, NodeRole::Viewer, 255, "eu"));
    bus.node(103).watch(now, "live");
    bus.add_node_with(node(104, NodeRole::Peer, 0, "cn"));
    bus.node(104).watch(now, "live");
    bus.settle();
    let blocked = DenyReason::GeoBlocked {
        reason: "live rights do not cover this region".into(),
    };
    assert_eq!(
        denied(&bus, 102),
        Some(blocked.clone()),
        "protocol viewer in cn"
    );
    assert_eq!(denied(&bus, 104), Some(blocked.clone()), "peer in cn");
    assert_eq!(denied(&bus, 103), None);
    assert_eq!(bus.watching_relay(103), Some(11), "eu still watches");
    assert_eq!(bus.watching_relay(102), None);
    let peer_joined = bus
        .coord_events
        .iter()
        .any(|e| matches!(e, CoordEvent::PeerJoined { peer, .. } if peer.0 == 104));
    assert!(!peer_joined, "a blocked peer does not join the overlay");
    // The HTTP path: the same answer, region from `?region=`; none given, not blocked.
    let now = bus.now;
    assert_eq!(
        bus.coordinator.watch_in(now, "live", "cn").unwrap_err(),
        blocked
    );
    assert!(bus.coordinator.watch_in(now, "live", "").is_ok());
    assert!(bus.coordinator.watch_in(now, "live", "eu").is_ok());
    bus.settle();
    let logged: Vec<(&str, &str)> = bus
        .coord_events
        .iter()
        .filter_map(|e| match e {
            CoordEvent::GeoBlocked { region, rule, .. } => Some((region.as_str(), rule.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(logged, vec![("cn", "live-rights"); 3]);

    // An empty policy file lifts the block.
    assert_eq!(bus.coordinator.apply_policies(now, ""), Ok(0));
    assert!(bus.coordinator.watch_in(now, "live", "cn").is_ok());
}
