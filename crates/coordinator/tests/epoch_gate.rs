//! Issue 12, Must show 6 (D7, X7): a node from an older epoch is told to
//! register again, and does, keeping its parents; a coordinator that reads a
//! heartbeat of a newer epoch than its own answers where to go (not dropped
//! silently) and orders nothing more.

mod support;

use support::Bus;
use tiercast_coordinator::{CoordEvent, Coordinator, CoordinatorConfig};
use tiercast_proto::{ChannelId, Message, NodeId, NodeRole, Register};

fn config(epoch: u64) -> CoordinatorConfig {
    CoordinatorConfig {
        epoch,
        ..CoordinatorConfig::default()
    }
}

/// Origin 1, relays 11 (tier 1) and 21 (tier 2), viewer 100 watching "live",
/// under a coordinator of epoch 4.
fn cluster() -> Bus {
    let mut bus = Bus::two_tiers(config(4));
    bus.advance(3000);
    bus
}

fn parents(bus: &Bus, node: u32) -> Vec<NodeId> {
    bus.nodes[&NodeId(node)]
        .channel(ChannelId(1))
        .map(|c| c.parents.ids())
        .unwrap_or_default()
}

fn epochs(bus: &Bus) -> Vec<u64> {
    bus.nodes.values().map(|n| n.coordinator_epoch()).collect()
}

#[test]
fn nodes_of_an_older_epoch_are_told_to_register_again_and_keep_their_parents() {
    let mut bus = cluster();
    assert_eq!(epochs(&bus), vec![4; 4], "every node follows epoch 4");
    let before: Vec<Vec<NodeId>> = [11, 21, 100].iter().map(|n| parents(&bus, *n)).collect();
    assert!(
        before.iter().all(|p| !p.is_empty()),
        "relays and viewer fed: {before:?}"
    );
    // A successor of epoch 5 takes over, knowing none of them.
    let now = bus.now;
    bus.coordinator = Coordinator::new(config(5), now);
    bus.advance(3000);
    let told = bus
        .nodes
        .keys()
        .filter(|id| bus.coordinator.registry().is_alive(**id))
        .count();
    assert_eq!(told, 4, "every node registered again with the successor");
    assert_eq!(epochs(&bus), vec![5; 4], "every node follows epoch 5 only");
    let after: Vec<Vec<NodeId>> = [11, 21, 100].iter().map(|n| parents(&bus, *n)).collect();
    assert_eq!(before, after, "nobody's parents changed");
    assert!(
        bus.coordinator.stats().invalid_messages >= 1,
        "the old-epoch heartbeats were refused before the nodes came back"
    );
}

#[test]
fn a_coordinator_hearing_a_newer_epoch_answers_where_to_go_and_orders_nothing_more() {
    let mut bus = cluster();
    let now = bus.now;
    // Relay 11 follows a successor's epoch 6.
    let mut hb = bus.node(11).heartbeat(now);
    hb.epoch = 6;
    let mut old = std::mem::replace(&mut bus.coordinator, Coordinator::new(config(6), now));
    let registered_before = old.registry().len();
    old.handle_message(now, NodeId(11), Message::Heartbeat(hb));
    let answer: Vec<Message> = std::iter::from_fn(|| old.poll_transmit())
        .map(|t| t.into_wire())
        .collect();
    assert_eq!(
        answer,
        vec![Message::ServedElsewhere { leader: None }],
        "answered bare, not as an order of the old epoch"
    );
    assert_eq!(old.superseded_by(), Some(6));
    assert_eq!(old.stats().newer_epoch_heartbeats, 1);
    let events: Vec<CoordEvent> = std::iter::from_fn(|| old.poll_event()).collect();
    assert!(
        events.iter().any(|e| matches!(
            e,
            CoordEvent::Superseded {
                epoch: 6,
                reported_by: NodeId(11)
            }
        )),
        "{events:?}"
    );
    // What it still decides is withheld: a newcomer's registration is booked
    // but no `Registered` leaves.
    old.handle_message(
        now,
        NodeId(30),
        Message::Register(Register {
            role: NodeRole::Relay,
            tier: 1,
            capacity: 10,
            region: String::new(),
            addr: "sim:30".into(),
            http_addr: "sim:30".into(),
            uplink_kbps: 0,
            class: Default::default(),
            incarnation: 1,
            manager_id: 0,
        }),
    );
    assert_eq!(old.registry().len(), registered_before + 1);
    assert!(
        old.poll_transmit().is_none(),
        "no order from a superseded coordinator"
    );
    assert!(old.stats().orders_withheld >= 1);
    // The node reads the answer whatever epoch it follows, and a heartbeat
    // of its own epoch or an older one is read as before.
    let mut fresh = Coordinator::new(config(6), now);
    let hb = bus.node(21).heartbeat(now);
    assert_eq!(hb.epoch, 4);
    fresh.handle_message(now, NodeId(21), Message::Heartbeat(hb));
    assert_eq!(fresh.superseded_by(), None);
    assert_eq!(fresh.stats().newer_epoch_heartbeats, 0);
}
