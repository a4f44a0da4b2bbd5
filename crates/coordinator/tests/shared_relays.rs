//! C9 (V8) for relays, on the real machines over the zero-latency bus: a relay
//! active for two channels has its capacity booked once in the uplink ledger
//! and shared by the two VAN managers by stream rate (equal rates: half each).
//! One channel's viewers do not go past its share of a relay another channel
//! uses (another relay is activated instead); when the other channel leaves
//! the relay, its share comes back; a relay lost leaves no share behind.

mod support;

use support::Bus;
use tiercast_coordinator::{CoordEvent, CoordinatorConfig};
use tiercast_node::NodeConfig;
use tiercast_proto::{ChannelId, NodeId, NodeRole};

const A: ChannelId = ChannelId(1);
const B: ChannelId = ChannelId(2);
const CAPACITY: u32 = 10;

/// An origin (1), four tier-1 relays (11..=14) of capacity 10, and channel
/// "a" announced; "b" is announced by the test.
fn start() -> Bus {
    let cfg = CoordinatorConfig {
        idle_relay_ms: 5_000,
        ..CoordinatorConfig::default()
    };
    Bus::with_relays(cfg, 11..=14, CAPACITY)
}

fn placed(bus: &Bus, ids: std::ops::RangeInclusive<u32>) -> Vec<u32> {
    ids.map(|v| bus.watching_relay(v).expect("placed"))
        .collect()
}

fn active(bus: &Bus, c: ChannelId) -> Vec<u32> {
    let mut v: Vec<u32> = bus
        .coordinator
        .channel(c)
        .unwrap()
        .active
        .keys()
        .map(|n| n.0)
        .collect();
    v.sort();
    v
}

#[test]
fn a_relay_shared_by_two_channels_gives_each_its_share_and_the_rest_to_others() {
    let mut bus = start();
    assert_eq!(active(&bus, A), vec![11]);
    let ledger = bus.coordinator.uplink_ledger();
    let whole = ledger.declared(NodeId(11)).expect("the VAN booked 11");
    assert_eq!(ledger.share(NodeId(11), A), Some(whole), "alone: all of it");
    // A carries 3 viewers on 11 (alone there: it could take 10).
    bus.add_viewers(100..=102, "a");
    assert_eq!(placed(&bus, 100..=102), vec![11, 11, 11]);
    // B starts: 11 has room, B takes it and the shares split by rate (half).
    bus.node(1).announce("b", [2; 32]);
    bus.settle();
    assert_eq!(active(&bus, B), vec![11]);
    let ledger = bus.coordinator.uplink_ledger();
    assert_eq!(ledger.share(NodeId(11), A), Some(whole / 2));
    assert_eq!(ledger.share(NodeId(11), B), Some(whole / 2));
    assert_eq!(ledger.booked(NodeId(11)), whole);
    // B's viewers: five (its share of 10) go to 11, though the machine has room
    // for seven; the next ones go to a relay B activates.
    bus.add_viewers(200..=206, "b");
    let b = placed(&bus, 200..=206);
    assert_eq!(&b[..5], &[11; 5], "B fills its share of 11: {b:?}");
    assert!(b[5..].iter().all(|r| *r != 11), "not past it: {b:?}");
    assert!(active(&bus, B).len() >= 2, "another relay activated for B");
    // A's next viewers do not go to 11 either: A carries 3 of its 5, but the
    // machine (3 + 5 = 8 of 10) and A's share leave room for two only.
    bus.add_viewers(103..=106, "a");
    let a = placed(&bus, 103..=106);
    assert_eq!(a.iter().filter(|r| **r == 11).count(), 2, "{a:?}");
    let load11 = bus
        .coordinator
        .registry()
        .get(NodeId(11))
        .unwrap()
        .reported_load;
    assert!(load11 <= CAPACITY, "11 carries {load11}");
}

#[test]
fn when_one_channel_leaves_a_shared_relay_the_other_gets_its_whole_capacity() {
    let mut bus = start();
    bus.node(1).announce("b", [2; 32]);
    bus.settle();
    assert_eq!((active(&bus, A), active(&bus, B)), (vec![11], vec![11]));
    // A: five on 11 (its share), the sixth on a relay A activates (its entry).
    bus.add_viewers(100..=105, "a");
    let a = placed(&bus, 100..=105);
    assert_eq!(&a[..5], &[11; 5], "{a:?}");
    assert_ne!(a[5], 11);
    // A's load leaves 11: its viewers there stop watching; 11 is no longer A's
    // entry, so it is idled for A and A's share goes back.
    for v in 100..=104 {
        let now = bus.now;
        bus.node(v).unwatch(now, "a");
    }
    bus.settle();
    bus.advance(10_000);
    assert!(
        bus.coord_events.iter().any(
            |e| matches!(e, CoordEvent::Idled { channel, node } if *channel == A && node.0 == 11)
        ),
        "11 idled for A"
    );
    let ledger = bus.coordinator.uplink_ledger();
    let whole = ledger.declared(NodeId(11)).unwrap();
    assert_eq!(ledger.share(NodeId(11), A), None);
    assert_eq!(ledger.share(NodeId(11), B), Some(whole));
    // B can now use all of 11: eight viewers all go there.
    bus.add_viewers(200..=207, "b");
    assert_eq!(placed(&bus, 200..=207), vec![11; 8]);
}

#[test]
fn a_lost_relay_gives_back_every_share() {
    let mut bus = start();
    bus.node(1).announce("b", [2; 32]);
    bus.settle();
    bus.add_viewers(100..=101, "a");
    bus.add_viewers(200..=201, "b");
    assert_eq!(
        bus.coordinator.uplink_ledger().shares(NodeId(11)).count(),
        2
    );
    assert!(bus
        .coordinator
        .uplink_ledger()
        .shared_nodes()
        .any(|n| n == NodeId(11)));
    bus.nodes.remove(&NodeId(11));
    bus.advance(20_000);
    let ledger = bus.coordinator.uplink_ledger();
    assert_eq!(ledger.declared(NodeId(11)), None, "no share of 11 is left");
    assert_eq!(ledger.shares(NodeId(11)).count(), 0);
    assert!(ledger.shared_nodes().all(|n| n != NodeId(11)));
    // The channels carry on with the other relays, each booked in the ledger.
    for c in [A, B] {
        let act = active(&bus, c);
        assert!(!act.is_empty() && !act.contains(&11), "{c:?}: {act:?}");
        for n in act {
            assert!(ledger.share(NodeId(n), c).is_some(), "{c:?} booked {n}");
        }
    }
}

/// A peer (id) watching `channel`.
fn peer(bus: &mut Bus, id: u32, channel: &str) {
    bus.add_watching(Bus::peer_config(id, 4000), channel);
}

#[test]
fn a_waypoint_joins_each_peer_overlay_with_its_channel_share() {
    let mut cfg = CoordinatorConfig::default();
    cfg.peers.substreams = 4;
    cfg.peers.stream_rate_kbps = 2000;
    cfg.peers.repair_link = false;
    let mut bus = Bus::new(cfg);
    bus.add_node_with(NodeConfig {
        id: NodeId(1),
        role: NodeRole::Origin,
        tier: 0,
        uplink_kbps: 20_000,
        addr: "sim:1".into(),
        http_addr: "sim:1".into(),
        ..NodeConfig::default()
    });
    bus.add_node_with(NodeConfig {
        id: NodeId(11),
        role: NodeRole::Relay,
        tier: 1,
        capacity: 20,
        uplink_kbps: 40_000,
        addr: "sim:11".into(),
        http_addr: "sim:11".into(),
        ..NodeConfig::default()
    });
    bus.node(1).announce("a", [1; 32]);
    bus.settle();
    peer(&mut bus, 20, "a");
    let uplink = |bus: &Bus, c: ChannelId| {
        let o = bus.coordinator.peer_overlay(c)?;
        o.members.get(&NodeId(11)).map(|m| m.uplink_bps)
    };
    assert_eq!(uplink(&bus, A), Some(40_000_000), "alone on a: all of it");
    bus.node(1).announce("b", [2; 32]);
    bus.settle();
    assert_eq!(active(&bus, B), vec![11]);
    // The VAN took b's share: a's overlay sees its waypoint shrink at once.
    assert_eq!(uplink(&bus, A), Some(20_000_000));
    peer(&mut bus, 21, "b");
    assert_eq!(
        uplink(&bus, B),
        Some(20_000_000),
        "b's share, not all of it"
    );
    let ledger = bus.coordinator.uplink_ledger();
    assert_eq!(ledger.booked(NodeId(11)), 40_000_000);
    bus.advance(3_000);
    for c in [A, B] {
        let o = bus.coordinator.peer_overlay(c).unwrap();
        o.check().expect("the overlay's books hold");
        assert!(o.members[&NodeId(11)].uplink_bps <= 20_000_000);
    }
}
