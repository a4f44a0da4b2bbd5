//! Issue 11, "must show 6" (C1, C2, D8): a heartbeat is checked against the
//! coordinator's books before any field is used. One naming another node, or
//! links the sender cannot have, changes nothing and is counted as invalid; the
//! maps keyed by reported ids stay bounded under a flood of invented ones.

mod support;

use support::Bus;
use tiercast_coordinator::{CoordEvent, CoordinatorConfig};
use tiercast_proto::{
    ChannelId, ChannelReport, Heartbeat, LinkReport, Message, NodeId, NodeRole, Register,
};

/// Origin 1, relays 11 (tier 1) and 21 (tier 2), viewer 100 watching "live"; the
/// coordinator predicts (V7), so a heartbeat's loads feed its forecast.
fn cluster() -> Bus {
    let cfg = CoordinatorConfig {
        prediction: true,
        ..CoordinatorConfig::default()
    };
    let mut bus = Bus::two_tiers(cfg);
    // Past the window in which a new coordinator takes reports naming nodes it
    // has not met yet (heartbeat_timeout_ms).
    bus.advance(5000);
    bus
}

fn link(id: u32) -> LinkReport {
    LinkReport {
        peer: NodeId(id),
        last_seq: Some(3),
        ..LinkReport::default()
    }
}

/// A heartbeat in `node`'s name for channel 1 with these links and a full load.
fn report(node: u32, parents: &[u32], children: &[u32]) -> Heartbeat {
    Heartbeat {
        node: NodeId(node),
        seq: 99,
        load: 10,
        capacity: 10,
        channels: vec![ChannelReport {
            channel: ChannelId(1),
            parents: parents.iter().map(|p| link(*p)).collect(),
            children: children.iter().map(|c| link(*c)).collect(),
            ..ChannelReport::default()
        }],
        ..Heartbeat::default()
    }
}

/// What a heartbeat could change, for before/after comparisons.
#[derive(Debug, PartialEq)]
struct Books {
    load: u32,
    last_heartbeat: Option<tiercast_coordinator::last_report::LastReport>,
    heartbeats: u64,
    forecast_entries: usize,
    active: Vec<NodeId>,
}

fn books(bus: &Bus, node: u32) -> Books {
    let c = &bus.coordinator;
    let r = c.registry().get(NodeId(node)).expect("registered");
    Books {
        load: r.reported_load,
        last_heartbeat: r.last_heartbeat.clone(),
        heartbeats: c.stats().heartbeats,
        forecast_entries: c.forecast().tracked(),
        active: c
            .channel(ChannelId(1))
            .expect("channel")
            .active
            .keys()
            .copied()
            .collect(),
    }
}

/// Sends `hb` on `from`'s link; returns the `why` of every Invalid event it caused
/// and whether it caused any other event.
fn send(bus: &mut Bus, from: u32, hb: Heartbeat) -> (Vec<&'static str>, bool) {
    let since = bus.coord_events.len();
    let now = bus.now;
    bus.coordinator
        .handle_message(now, NodeId(from), Message::Heartbeat(hb));
    bus.settle();
    let mut why = Vec::new();
    let mut other = false;
    for e in &bus.coord_events[since..] {
        match e {
            CoordEvent::Invalid { why: w, .. } => why.push(*w),
            _ => other = true,
        }
    }
    (why, other)
}

#[test]
fn a_heartbeat_in_another_relays_name_changes_nothing() {
    let mut bus = cluster();
    let (before, invalid) = (books(&bus, 11), bus.coordinator.stats().invalid_messages);
    // Relay 21 says, in relay 11's name, that 11 is full and feeds 21 and viewer 100.
    let (why, other) = send(&mut bus, 21, report(11, &[1], &[21, 100]));
    assert_eq!(why, vec!["node id does not match the link"]);
    assert!(!other, "nothing decided on it");
    assert_eq!(bus.coordinator.stats().invalid_messages, invalid + 1);
    assert_eq!(books(&bus, 11), before);
}

#[test]
fn a_heartbeat_with_invented_children_changes_nothing() {
    let mut bus = cluster();
    let (before, invalid) = (books(&bus, 11), bus.coordinator.stats().invalid_messages);
    let invented: Vec<u32> = (5000..5010).collect();
    let (why, other) = send(&mut bus, 11, report(11, &[1], &invented));
    assert_eq!(
        why,
        vec!["a link names a node the coordinator does not know"]
    );
    assert!(!other, "no DISTRIBUTE, no activation on a made-up load");
    assert_eq!(bus.coordinator.stats().invalid_messages, invalid + 1);
    assert_eq!(books(&bus, 11), before);
    // The same report with its real links is taken.
    let (why, _) = send(&mut bus, 11, report(11, &[1], &[21]));
    assert!(why.is_empty(), "{why:?}");
    assert_eq!(books(&bus, 11).load, 10);
}

#[test]
fn links_a_node_cannot_have_are_refused() {
    let mut bus = cluster();
    let before = books(&bus, 21);
    let cases = [
        (report(21, &[100], &[]), "a parent that is a viewer"),
        (report(21, &[11], &[1]), "a child that is an origin"),
        (report(21, &[11], &[21]), "a link names the sender itself"),
    ];
    for (hb, expected) in cases {
        let (why, other) = send(&mut bus, 21, hb);
        assert_eq!(why, vec![expected]);
        assert!(!other);
    }
    let mut twice = report(21, &[11], &[]);
    twice.channels.push(twice.channels[0].clone());
    assert_eq!(
        send(&mut bus, 21, twice).0,
        vec!["a channel reported twice"]
    );
    assert_eq!(books(&bus, 21), before);
}

/// A coordinator that has just (re)started has not met every node yet (D7): a
/// report naming one is taken, as before, during its first heartbeat timeout.
#[test]
fn a_new_coordinator_takes_reports_naming_nodes_it_has_not_met() {
    let mut bus = Bus::new(CoordinatorConfig::default());
    bus.add_node(1, NodeRole::Origin, 0, 100, 0);
    bus.add_node(11, NodeRole::Relay, 1, 10, 1);
    let (why, _) = send(&mut bus, 11, report(11, &[1], &[7777]));
    assert!(why.is_empty(), "{why:?}");
    assert_eq!(bus.coordinator.stats().heartbeats, 1);
    bus.advance(4000);
    let (why, _) = send(&mut bus, 11, report(11, &[1], &[7777]));
    assert_eq!(
        why,
        vec!["a link names a node the coordinator does not know"]
    );
}

#[test]
fn maps_keyed_by_reported_ids_stay_bounded_under_a_flood() {
    let mut bus = cluster();
    let forecast = bus.coordinator.forecast().tracked();
    let invalid = bus.coordinator.stats().invalid_messages;
    for round in 0..100u32 {
        // Invented channels (no links: not refused, a restarted coordinator meets
        // channels after nodes) and invented children.
        let mut hb = report(11, &[1], &[]);
        for k in 0..50 {
            hb.channels.push(ChannelReport {
                channel: ChannelId(10_000 + round * 50 + k),
                local_viewers: 3,
                ..ChannelReport::default()
            });
        }
        send(&mut bus, 11, hb);
        let children: Vec<u32> = (0..50).map(|k| 100_000 + round * 50 + k).collect();
        send(&mut bus, 11, report(11, &[1], &children));
    }
    assert_eq!(
        bus.coordinator.forecast().tracked(),
        forecast,
        "only known channels are forecast"
    );
    assert_eq!(bus.coordinator.stats().invalid_messages, invalid + 100);
    // Registrations naming ever new regions: interned up to the limit, then refused.
    let limit = tiercast_coordinator::registry::MAX_REGIONS;
    for i in 0..(limit as u32 + 50) {
        let now = bus.now;
        bus.coordinator.handle_message(
            now,
            NodeId(1_000_000 + i),
            Message::Register(Register {
                role: NodeRole::Viewer,
                tier: 255,
                region: format!("r{i}"),
                capacity: 0,
                addr: String::new(),
                http_addr: String::new(),
                uplink_kbps: 0,
                class: Default::default(),
                incarnation: 1,
                manager_id: 0,
            }),
        );
        while bus.coordinator.poll_transmit().is_some() {}
        while bus.coordinator.poll_event().is_some() {}
    }
    assert_eq!(bus.coordinator.registry().region_count(), limit);
}
