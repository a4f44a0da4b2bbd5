//! The backup origin's rules (D7, issue 12) on the real coordinator and node
//! machines: the refusals (no channel yet, another key, a second backup), the
//! promotion when the primary is lost, and a returning primary taking the
//! channel back while the promoted backup stands by again.

mod support;

use support::Bus;
use tiercast_coordinator::{CoordEvent, CoordinatorConfig};
use tiercast_node::Event;
use tiercast_proto::{NodeId, NodeRole};

const KEY: [u8; 32] = [1; 32];

fn denied(bus: &Bus, node: u32) -> Vec<String> {
    bus.node_events
        .iter()
        .filter_map(|(n, e)| match e {
            Event::AnnounceDenied { reason, .. } if n.0 == node => Some(reason.to_string()),
            _ => None,
        })
        .collect()
}

fn count(bus: &Bus, node: u32, f: impl Fn(&Event) -> bool) -> usize {
    bus.node_events
        .iter()
        .filter(|(n, e)| n.0 == node && f(e))
        .count()
}

fn standbys(bus: &Bus, node: u32) -> usize {
    count(bus, node, |e| matches!(e, Event::StandbyAccepted { .. }))
}

fn readies(bus: &Bus, node: u32) -> usize {
    count(bus, node, |e| matches!(e, Event::ChannelReady { .. }))
}

#[test]
fn a_backup_is_refused_with_its_reason_without_a_channel_with_another_key_or_as_a_second() {
    let mut bus = Bus::new(CoordinatorConfig::default());
    for id in [1, 2, 3, 4] {
        bus.add_node(id, NodeRole::Origin, 0, 100, 0);
    }
    bus.node(2).announce_backup("a", KEY);
    bus.settle();
    assert!(
        denied(&bus, 2)[0].contains("no such channel yet"),
        "{:?}",
        denied(&bus, 2)
    );
    bus.node(1).announce("a", KEY);
    bus.settle();
    bus.node(3).announce_backup("a", [9; 32]);
    bus.settle();
    assert!(denied(&bus, 3)[0].contains("must sign with the channel's key"));
    bus.node(2).announce_backup("a", KEY);
    bus.settle();
    assert_eq!(standbys(&bus, 2), 1, "the backup stands by");
    assert!(bus.node(2).is_standby("a"));
    assert_eq!(readies(&bus, 2), 0, "and is not the origin");
    bus.node(4).announce_backup("a", KEY);
    bus.settle();
    assert!(denied(&bus, 4)[0].contains("live backup origin already"));
    bus.node(1).announce_backup("a", KEY);
    bus.settle();
    assert!(denied(&bus, 1)[0].contains("the channel's origin"));
}

#[test]
fn a_lost_primary_is_replaced_by_its_backup_and_a_returning_primary_takes_it_back() {
    let mut bus = Bus::with_relays(CoordinatorConfig::default(), 10..=11, 10);
    bus.add_node(2, NodeRole::Origin, 0, 100, 0);
    bus.node(2).announce_backup("a", KEY);
    bus.settle();
    assert_eq!(standbys(&bus, 2), 1);
    // The primary (node 1) crashes: silent past the heartbeat timeout.
    bus.nodes.remove(&NodeId(1));
    bus.advance(5_000);
    assert_eq!(readies(&bus, 2), 1, "the backup is the origin now");
    assert!(!bus.node(2).is_standby("a"));
    assert!(bus.coord_events.iter().any(|e| matches!(
        e,
        CoordEvent::OriginReplaced {
            old: NodeId(1),
            new: NodeId(2),
            key_changed: false,
            ..
        }
    )));
    // The primary comes back (a new process) without --backup: it takes the
    // channel back, the backup stands by again.
    bus.add_node(3, NodeRole::Origin, 0, 100, 0);
    bus.node(3).announce("a", KEY);
    bus.settle();
    assert_eq!(readies(&bus, 3), 1, "the returning primary is the origin");
    assert_eq!(standbys(&bus, 2), 2, "the backup stands by again");
    assert!(bus.node(2).is_standby("a"));
    // Lost again: the backup is promoted again.
    bus.nodes.remove(&NodeId(3));
    bus.advance(5_000);
    assert_eq!(readies(&bus, 2), 2);
    // Returning with --backup, the primary stands by for the promoted backup.
    bus.add_node(4, NodeRole::Origin, 0, 100, 0);
    bus.node(4).announce_backup("a", KEY);
    bus.settle();
    assert_eq!(standbys(&bus, 4), 1);
    assert_eq!(readies(&bus, 4), 0);
    assert!(
        !bus.node(2).is_standby("a"),
        "the promoted backup keeps the channel"
    );
}
