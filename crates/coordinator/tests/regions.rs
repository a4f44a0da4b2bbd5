//! Regions (V11): tiers are built per region, each region's chain hangs from the
//! origin, and viewers go to relays of their own region (falling back to the default
//! region, then to any region, when theirs has none).

mod support;

use support::Bus;
use tiercast_coordinator::{CoordEvent, CoordinatorConfig};
use tiercast_node::NodeConfig;
use tiercast_proto::{ChannelId, NodeId, NodeRole};

fn relay(id: u32, tier: u8, region: &str) -> NodeConfig {
    NodeConfig {
        id: NodeId(id),
        role: NodeRole::Relay,
        tier,
        region: region.into(),
        capacity: 10,
        min_threshold: 1,
        ..NodeConfig::default()
    }
}

fn viewer(id: u32, region: &str) -> NodeConfig {
    NodeConfig {
        id: NodeId(id),
        role: NodeRole::Viewer,
        tier: 255,
        capacity: 0,
        region: region.into(),
        ..NodeConfig::default()
    }
}

/// An origin and two relay tiers in each of "eu" and "us", the channel announced.
fn two_region_chains() -> Bus {
    let mut bus = Bus::new(CoordinatorConfig::default());
    bus.add_node(1, NodeRole::Origin, 0, 100, 0);
    for (id, tier, region) in [(11, 1, "eu"), (21, 2, "eu"), (12, 1, "us"), (22, 2, "us")] {
        bus.add_node_with(relay(id, tier, region));
    }
    bus.node(1).announce("live", [0; 32]);
    bus.settle();
    bus
}

#[test]
fn viewers_go_to_their_regions_relays() {
    let mut bus = two_region_chains();
    // Each region has its own chain from the origin.
    let parents: Vec<(u32, Vec<u32>)> = bus
        .coord_events
        .iter()
        .filter_map(|e| match e {
            CoordEvent::Activated { node, parents, .. } => {
                Some((node.0, parents.iter().map(|p| p.0).collect()))
            }
            _ => None,
        })
        .collect();
    assert!(
        parents.contains(&(21, vec![11])) && parents.contains(&(22, vec![12])),
        "{parents:?}"
    );
    assert!(
        parents.contains(&(11, vec![1])) && parents.contains(&(12, vec![1])),
        "{parents:?}"
    );

    for (id, region) in [(101, "us"), (102, "eu"), (103, "asia")] {
        bus.add_node_with(viewer(id, region));
        let now = bus.now;
        bus.node(id).watch(now, "live");
        bus.settle();
    }
    assert_eq!(
        bus.watching_relay(101).unwrap(),
        22,
        "a US viewer is sent to the US bottom tier"
    );
    assert_eq!(
        bus.watching_relay(102).unwrap(),
        21,
        "an EU viewer to the EU bottom tier"
    );
    // No "asia" relays and no default-region relays: the first region with relays.
    assert_eq!(bus.watching_relay(103).unwrap(), 21);
    let m = bus.coordinator.channel(ChannelId(1)).unwrap();
    assert_eq!(m.active_in_tier(2).len(), 2);
}

#[test]
fn a_consolidating_relay_sends_its_children_to_its_own_region_only() {
    let mut bus = two_region_chains();
    let tell = |bus: &mut Bus, from: u32, msg: tiercast_proto::Message| {
        let now = bus.now;
        bus.coordinator.handle_message(now, NodeId(from), msg);
        bus.settle();
    };
    let consolidate = tiercast_proto::Message::Consolidate {
        channel: ChannelId(1),
        load: 0,
    };
    // The last active relay of the EU bottom tier: the US one has room, but the
    // EU viewers are not sent across.
    tell(&mut bus, 21, consolidate.clone());
    assert!(
        !bus.coord_events
            .iter()
            .any(|e| matches!(e, CoordEvent::Consolidated { node, .. } if node.0 == 21)),
        "{:?}",
        bus.coord_events
    );
    assert!(bus.coord_events.iter().any(|e| matches!(
        e,
        CoordEvent::ConsolidateIgnored { node, why, .. }
            if node.0 == 21 && why.contains("in its region")
    )));
    // A second EU bottom relay, activated the way an expansion would: now 21
    // consolidates, into it.
    bus.add_node_with(relay(23, 2, "eu"));
    bus.settle();
    let distribute = tiercast_proto::Message::Distribute {
        channel: ChannelId(1),
        load: 10,
    };
    tell(&mut bus, 21, distribute);
    let m = bus.coordinator.channel(ChannelId(1)).unwrap();
    assert!(m.is_active(NodeId(23)), "{:?}", bus.coord_events);
    tell(&mut bus, 21, consolidate);
    assert!(
        bus.coord_events.iter().any(|e| matches!(
            e,
            CoordEvent::Consolidated { node, moved_to, .. } if node.0 == 21 && moved_to.0 == 23
        )),
        "{:?}",
        bus.coord_events
    );
}
