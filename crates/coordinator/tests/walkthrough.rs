//! The walk-throughs of seed 001 on the real coordinator and node machines:
//! Figure 2 (expansion, V2–V4) and Figure 4 (consolidation, V3, V5).

mod support;

use support::Bus;
use tiercast_coordinator::{CoordEvent, CoordinatorConfig};
use tiercast_node::Event;
use tiercast_proto::{ChannelId, NodeId, NodeRole};

const S: u32 = 1;
const P11: u32 = 11;
const P21: u32 = 21;
const P22: u32 = 22;
const P31: u32 = 31;
const P32: u32 = 32;
const P33: u32 = 33;

/// (relay activated, its parents).
type Activation = (u32, Vec<u32>);

fn u(i: u32) -> u32 {
    100 + i
}

/// Figure 1(b): S, tiers of P11..P13, P21..P23, P31..P33 (capacity 3), viewers u1..u7.
fn figure_1b() -> Bus {
    let mut bus = Bus::new(CoordinatorConfig::default());
    bus.add_node(S, NodeRole::Origin, 0, 1000, 0);
    for tier in 1..=3u32 {
        for j in 1..=3u32 {
            bus.add_node(tier * 10 + j, NodeRole::Relay, tier as u8, 3, 2);
        }
    }
    for i in 1..=7 {
        bus.add_node(u(i), NodeRole::Viewer, 255, 0, 0);
    }
    bus.node(S).announce("live", [0; 32]);
    bus.settle();
    bus
}

/// Runs Figure 2: returns the bus in the state of Figure 2(d).
fn figure_2(bus: &mut Bus) -> Vec<(u32, Vec<Activation>)> {
    let mut per_arrival = Vec::new();
    for i in 1..=7 {
        let since = bus.coord_events.len();
        {
            let now = bus.now;
            bus.node(u(i)).watch(now, "live")
        };
        bus.settle();
        per_arrival.push((i, bus.activated_since(since)));
    }
    per_arrival
}

#[test]
fn figure_2_expansion() {
    let mut bus = figure_1b();
    // Start-up (V2): one relay per tier forms the path S -> P11 -> P21 -> P31.
    assert_eq!(
        bus.activated_since(0),
        vec![(P11, vec![S]), (P21, vec![P11]), (P31, vec![P21])]
    );

    let arrivals = figure_2(&mut bus);
    let expected: Vec<(u32, Vec<Activation>)> = vec![
        (1, vec![]),
        (2, vec![]),
        (3, vec![(P32, vec![P21])]), // P31 reaches 3: DISTRIBUTE, P32 activated under P21
        (4, vec![]),
        (5, vec![]),
        (6, vec![(P33, vec![P21])]), // P32 reaches 3: P33 activated
        (7, vec![(P22, vec![P11])]), // P33 logs in at P21, which reaches 3: P22 in tier 2
    ];
    assert_eq!(arrivals, expected);

    // Redirection followed the entry relay: u1-u3 at P31, u4-u6 at P32, u7 at P33.
    let homes: Vec<u32> = (1..=7).map(|i| bus.watching_relay(u(i)).unwrap()).collect();
    assert_eq!(homes, vec![P31, P31, P31, P32, P32, P32, P33]);

    // The relays log in at their parents lazily (V3): P21 feeds P31, P32, P33.
    let ch = ChannelId(1);
    let p21: Vec<u32> = bus
        .node(P21)
        .channel(ch)
        .unwrap()
        .children
        .nodes
        .keys()
        .map(|n| n.0)
        .collect();
    assert_eq!(p21, vec![P31, P32, P33]);
    let p11: Vec<u32> = bus
        .node(P11)
        .channel(ch)
        .unwrap()
        .children
        .nodes
        .keys()
        .map(|n| n.0)
        .collect();
    assert_eq!(
        p11,
        vec![P21],
        "P22 has no children yet, so it has not logged in"
    );
    assert_eq!(bus.coordinator.stats().distribute_events, 3);
}

#[test]
fn figure_4_consolidation() {
    let mut bus = figure_1b();
    figure_2(&mut bus);
    let ch = ChannelId(1);
    let since = bus.coord_events.len();

    // u4 leaves P32 (3 -> 2: not below the min threshold of 2).
    {
        let now = bus.now;
        bus.node(u(4)).unwatch(now, "live")
    };
    bus.settle();
    assert!(!bus.coord_events[since..]
        .iter()
        .any(|e| matches!(e, CoordEvent::Consolidated { .. })));

    // u2 then u3 leave P31: its load falls to 1 and it asks to CONSOLIDATE.
    {
        let now = bus.now;
        bus.node(u(2)).unwatch(now, "live")
    };
    bus.settle();
    {
        let now = bus.now;
        bus.node(u(3)).unwatch(now, "live")
    };
    bus.settle();

    let consolidated: Vec<_> = bus.coord_events[since..]
        .iter()
        .filter_map(|e| match e {
            CoordEvent::Consolidated { node, moved_to, .. } => Some((node.0, moved_to.0)),
            _ => None,
        })
        .collect();
    // P31 consolidates into the most recently activated relay of tier 3: P33.
    assert_eq!(consolidated, vec![(P31, P33)]);

    // u1 moved to P33 (logged in there, logged off from P31).
    let u1_parents: Vec<u32> = bus
        .node(u(1))
        .channel(ch)
        .unwrap()
        .parents
        .ids()
        .iter()
        .map(|n| n.0)
        .collect();
    assert_eq!(u1_parents, vec![P33]);
    let p33: Vec<u32> = bus
        .node(P33)
        .channel(ch)
        .unwrap()
        .children
        .nodes
        .keys()
        .map(|n| n.0)
        .collect();
    assert_eq!(p33, vec![u(1), u(7)]);

    // P31, now empty, logged off from P21 and left the channel.
    assert!(bus.node(P31).channel(ch).is_none());
    let p21: Vec<u32> = bus
        .node(P21)
        .channel(ch)
        .unwrap()
        .children
        .nodes
        .keys()
        .map(|n| n.0)
        .collect();
    assert_eq!(p21, vec![P32, P33]);
    assert_eq!(
        bus.coordinator.channel(ch).unwrap().active_in_tier(3),
        vec![NodeId(P33), NodeId(P32)]
    );
}

#[test]
fn consolidate_is_ignored_for_the_last_relay_of_a_tier() {
    // One relay per tier: P31 fills up (DISTRIBUTE finds no idle relay), then empties.
    let mut bus = Bus::new(CoordinatorConfig::default());
    bus.add_node(S, NodeRole::Origin, 0, 1000, 0);
    for tier in 1..=3u32 {
        bus.add_node(tier * 10 + 1, NodeRole::Relay, tier as u8, 3, 2);
    }
    for i in 1..=3 {
        bus.add_node(u(i), NodeRole::Viewer, 255, 0, 0);
    }
    bus.node(S).announce("live", [0; 32]);
    bus.settle();
    for i in 1..=3 {
        {
            let now = bus.now;
            bus.node(u(i)).watch(now, "live")
        };
        bus.settle();
    }
    assert!(bus
        .coord_events
        .iter()
        .any(|e| matches!(e, CoordEvent::DistributeUnmet { tier: 3, .. })));
    for i in 1..=2 {
        {
            let now = bus.now;
            bus.node(u(i)).unwatch(now, "live")
        };
        bus.settle();
    }
    assert!(bus.coord_events.iter().any(|e| matches!(
        e,
        CoordEvent::ConsolidateIgnored { node, why, .. } if node.0 == P31 && why.contains("last")
    )));
    assert!(!bus
        .coord_events
        .iter()
        .any(|e| matches!(e, CoordEvent::Consolidated { .. })));
    assert_eq!(
        bus.coordinator
            .channel(ChannelId(1))
            .unwrap()
            .active_in_tier(3),
        vec![NodeId(P31)]
    );
    // The remaining viewer still has its relay.
    assert_eq!(bus.node(P31).channel(ChannelId(1)).unwrap().load(), 1);
}

#[test]
fn a_full_tier_refuses_viewers_with_a_reason() {
    let mut bus = Bus::new(CoordinatorConfig::default());
    bus.add_node(S, NodeRole::Origin, 0, 1000, 0);
    bus.add_node(P11, NodeRole::Relay, 1, 2, 1);
    bus.node(S).announce("live", [0; 32]);
    bus.settle();
    for i in 1..=3 {
        bus.add_node(u(i), NodeRole::Viewer, 255, 0, 0);
        {
            let now = bus.now;
            bus.node(u(i)).watch(now, "live")
        };
        bus.settle();
    }
    let denied: Vec<_> = bus
        .node_events
        .iter()
        .filter_map(|(n, e)| match e {
            Event::WatchDenied { reason, .. } => Some((n.0, reason.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(denied, vec![(u(3), tiercast_proto::DenyReason::TierFull)]);
    let unknown = bus.coordinator.watch(bus.now, "nope");
    assert_eq!(
        unknown.unwrap_err(),
        tiercast_proto::DenyReason::UnknownChannel
    );
}
