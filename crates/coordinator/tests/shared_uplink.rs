//! C9 on the real machines over the zero-latency bus: a peer watching two
//! channels has its uplink booked once — each channel's overlay sees its share,
//! and the slots it has across both never exceed what its uplink gives; leaving
//! one channel gives the other its whole uplink back; a peer on one channel is
//! booked exactly as before.

mod support;

use support::Bus;
use tiercast_coordinator::CoordinatorConfig;
use tiercast_proto::{ChannelId, Message, NodeId};

const A: ChannelId = ChannelId(1);
const B: ChannelId = ChannelId(2);

fn config() -> CoordinatorConfig {
    Bus::peers_config()
}

/// An origin (node 1) with channels "a" (1) and "b" (2).
fn start() -> Bus {
    let bus = Bus::with_channels(config(), 20_000, &["a", "b"]);
    assert_eq!(
        bus.coordinator.channel_by_name("a").map(|m| m.desc.id),
        Some(A)
    );
    assert_eq!(
        bus.coordinator.channel_by_name("b").map(|m| m.desc.id),
        Some(B)
    );
    bus
}

fn add_peer(bus: &mut Bus, id: u32, uplink_kbps: u32, channels: &[&str]) {
    bus.add_watching_each(Bus::peer_config(id, uplink_kbps), channels);
}

/// The uplink channel `c`'s overlay books for `id`, if a member.
fn seen(bus: &Bus, c: ChannelId, id: u32) -> Option<u64> {
    bus.overlay_uplink(c, id)
}

/// Every peer's slots across both overlays fit its declared uplink, and the
/// shares the overlays see add up to no more than it.
fn books_hold(bus: &Bus) {
    let oa = bus.coordinator.peer_overlay(A).expect("overlay a");
    oa.check().expect("a's books hold");
    let ob = bus.coordinator.peer_overlay(B);
    if let Some(ob) = ob {
        ob.check().expect("b's books hold");
    }
    let peers = bus.nodes.keys().filter(|id| id.0 >= 10);
    for id in peers {
        let declared = u64::from(bus.coordinator.registry().get(*id).unwrap().uplink_kbps) * 1000;
        let members = [Some(oa), ob]
            .into_iter()
            .flatten()
            .filter_map(|o| o.members.get(id).map(|m| (o, m)));
        let (mut slots, mut uplink) = (0u32, 0u64);
        for (o, m) in members {
            assert!(m.used <= m.slots, "{id:?} books past its slots");
            let given = if m.top {
                o.top_slots_for(m.uplink_bps)
            } else {
                o.slots_for(m.uplink_bps)
            };
            assert!(m.slots <= given, "{id:?}: slots past its share");
            slots += m.slots;
            uplink += m.uplink_bps;
        }
        assert!(uplink <= declared, "{id:?}: {uplink} booked of {declared}");
        assert!(
            slots <= oa.slots_for(declared),
            "{id:?}: {slots} slots across both channels, its uplink gives {}",
            oa.slots_for(declared)
        );
        assert!(bus.coordinator.uplink_ledger().booked(*id) <= declared);
    }
}

#[test]
fn a_peer_on_two_channels_has_its_uplink_shared_and_gets_it_back_when_it_leaves_one() {
    let mut bus = start();
    add_peer(&mut bus, 10, 8000, &["a"]);
    assert_eq!(seen(&bus, A, 10), Some(8_000_000), "alone on a: all of it");
    for i in 0..10 {
        add_peer(&mut bus, 20 + i, 1000, &["a"]);
        add_peer(&mut bus, 40 + i, 1000, &["b"]);
        books_hold(&bus);
    }
    bus.advance(3000);
    books_hold(&bus);
    let used_before = bus.coordinator.peer_overlay(A).unwrap().members[&NodeId(10)].used;
    let half_slots = bus
        .coordinator
        .peer_overlay(A)
        .unwrap()
        .slots_for(4_000_000);
    assert!(
        used_before > half_slots,
        "its children on a ({used_before}) do not fit half its uplink ({half_slots}): \
         the shrink re-homes them"
    );

    // Peer 10 watches b as well: each channel sees half of its uplink.
    let now = bus.now;
    bus.node(10).watch(now, "b");
    bus.settle();
    assert_eq!(seen(&bus, A, 10), Some(4_000_000));
    assert_eq!(seen(&bus, B, 10), Some(4_000_000));
    books_hold(&bus);
    let m = &bus.coordinator.peer_overlay(A).unwrap().members[&NodeId(10)];
    assert!(m.used <= half_slots, "placed again within its share");
    // Peers on both channels come and go; the books hold at every step.
    for i in 0..6 {
        add_peer(&mut bus, 60 + i, 4000, &["a", "b"]);
        assert_eq!(seen(&bus, A, 60 + i), Some(2_000_000));
        assert_eq!(seen(&bus, B, 60 + i), Some(2_000_000));
        books_hold(&bus);
    }
    bus.advance(5000);
    books_hold(&bus);
    assert!(bus.coordinator.peer_overlay(B).unwrap().members[&NodeId(10)].used > 0);

    // Peer 10 leaves b: its share goes back to a at once.
    let now = bus.now;
    bus.coordinator
        .handle_message(now, NodeId(10), Message::Logoff { channel: B });
    bus.settle();
    assert_eq!(seen(&bus, B, 10), None);
    assert_eq!(seen(&bus, A, 10), Some(8_000_000));
    let ledger = bus.coordinator.uplink_ledger();
    assert_eq!(ledger.share(NodeId(10), B), None);
    assert_eq!(ledger.share(NodeId(10), A), Some(8_000_000));
    books_hold(&bus);

    // A peer on one channel only is booked exactly as it declared.
    // (A weak newcomer may still be waiting for room: it is booked nowhere.)
    let mut members = 0;
    for i in 0..10 {
        for (c, id) in [(A, 20 + i), (B, 40 + i)] {
            if let Some(u) = seen(&bus, c, id) {
                assert_eq!(u, 1_000_000, "peer {id} on one channel");
                assert_eq!(
                    bus.coordinator.uplink_ledger().share(NodeId(id), c),
                    Some(u)
                );
                members += 1;
            }
        }
    }
    assert!(members >= 10, "{members} single-channel peers are members");
    bus.advance(3000);
    books_hold(&bus);
}

#[test]
fn a_crashed_peer_leaves_no_share_behind() {
    let mut bus = start();
    add_peer(&mut bus, 10, 8000, &["a", "b"]);
    add_peer(&mut bus, 11, 1000, &["a"]);
    assert_eq!(bus.coordinator.uplink_ledger().len(), 2);
    assert_eq!(
        bus.coordinator.uplink_ledger().booked(NodeId(10)),
        8_000_000
    );
    bus.nodes.remove(&NodeId(10));
    bus.advance(20_000);
    assert_eq!(seen(&bus, A, 10), None);
    assert_eq!(seen(&bus, B, 10), None);
    let ledger = bus.coordinator.uplink_ledger();
    assert_eq!(ledger.declared(NodeId(10)), None);
    assert_eq!(ledger.len(), 1, "only the live peer keeps an entry");
    assert_eq!(ledger.shared_nodes().count(), 0);
}
