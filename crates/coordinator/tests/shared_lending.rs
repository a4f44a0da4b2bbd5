//! C9's lending on the real machines over the zero-latency bus: a strong peer
//! on two channels, one of which needs little of it, lends the unused part of
//! that channel's share to the other (whose overlay then books more of it than
//! the static split gives), and takes it back when the first one's viewers
//! need it — the borrower shrinks, its children re-homed; the two overlays
//! never book more than its uplink at any step. With lending off, the static
//! split holds. The relaying rules' resume gives each channel its share at once.

mod support;

use support::Bus;
use tiercast_coordinator::CoordinatorConfig;
use tiercast_node::NodeConfig;
use tiercast_proto::{ChannelId, DeviceClass, NodeId, NodeRole, OriginKey};

const RATE_KBPS: u32 = 2000;
const A: ChannelId = ChannelId(1);
const B: ChannelId = ChannelId(2);
/// The strong peer on both channels, and its uplink.
const STRONG: u32 = 10;
const STRONG_KBPS: u32 = 12_000;

fn config(lending: bool) -> CoordinatorConfig {
    let mut c = CoordinatorConfig {
        uplink_lending: lending,
        ..CoordinatorConfig::default()
    };
    c.peers.substreams = 4;
    c.peers.stream_rate_kbps = RATE_KBPS;
    c.peers.repair_link = false;
    c
}

/// An origin (node 1, `origin_kbps` per channel) with channels "a" (1) and "b" (2).
fn start(cfg: CoordinatorConfig, origin_kbps: u32) -> Bus {
    let mut bus = Bus::new(cfg);
    bus.add_node_with(NodeConfig {
        id: NodeId(1),
        role: NodeRole::Origin,
        tier: 0,
        uplink_kbps: origin_kbps,
        addr: "sim:1".into(),
        http_addr: "sim:1".into(),
        ..NodeConfig::default()
    });
    for name in ["a", "b"] {
        let key = OriginKey::generate().unwrap();
        bus.node(1).announce(name, key.public_key());
        bus.settle();
    }
    bus
}

fn add_peer(bus: &mut Bus, cfg: NodeConfig, channels: &[&str]) {
    let id = cfg.id.0;
    bus.add_node_with(cfg);
    for name in channels {
        let now = bus.now;
        bus.node(id).watch(now, name);
        bus.settle();
    }
}

/// The uplink channel `c`'s overlay books for `id`, if a member.
fn seen(bus: &Bus, c: ChannelId, id: u32) -> Option<u64> {
    let o = bus.coordinator.peer_overlay(c)?;
    o.members.get(&NodeId(id)).map(|m| m.uplink_bps)
}

/// Members of `c`'s overlay that have a parent in every tree (or are on top).
fn fed(bus: &Bus, c: ChannelId) -> usize {
    let Some(o) = bus.coordinator.peer_overlay(c) else {
        return 0;
    };
    o.members
        .iter()
        .filter(|(id, m)| id.0 >= 10 && (m.top || m.parents.iter().all(Option::is_some)))
        .count()
}

/// Booked once: for every peer, what the overlays book of it fits its uplink,
/// and every overlay's books hold.
fn books_hold(bus: &Bus) {
    for c in [A, B] {
        if let Some(o) = bus.coordinator.peer_overlay(c) {
            o.check().expect("the overlay's books hold");
        }
    }
    for id in bus.nodes.keys().filter(|id| id.0 >= 10) {
        let declared = u64::from(bus.coordinator.registry().get(*id).unwrap().uplink_kbps) * 1000;
        let booked: u64 = [A, B].iter().filter_map(|c| seen(bus, *c, id.0)).sum();
        assert!(booked <= declared, "{id:?}: {booked} booked of {declared}");
        let ledger = bus.coordinator.uplink_ledger();
        assert!(ledger.booked(*id) <= declared);
        for c in [A, B] {
            if let (Some(s), Some(share)) = (seen(bus, c, id.0), ledger.share(*id, c)) {
                assert!(s <= share, "{id:?} on {c:?}: {s} past its share {share}");
            }
        }
    }
}

/// The strong peer on "a" and "b"; then eight weak peers (half a stream each)
/// on "b" only, so that b's overlay needs more of the strong peer than its half:
/// "a" has the strong peer alone and uses none of it. Returns the bus after
/// the overlays settled.
fn b_needs_more(lending: bool) -> Bus {
    let mut bus = start(config(lending), 6_000);
    add_peer(&mut bus, Bus::peer_config(STRONG, STRONG_KBPS), &["a", "b"]);
    for i in 0..8 {
        add_peer(&mut bus, Bus::peer_config(40 + i, 1000), &["b"]);
        bus.advance(500);
        books_hold(&bus);
    }
    for _ in 0..10 {
        bus.advance(1_000);
        books_hold(&bus);
    }
    bus
}

#[test]
fn an_idle_channel_lends_its_share_and_the_other_carries_more() {
    let off = b_needs_more(false);
    let on = b_needs_more(true);
    let half = u64::from(STRONG_KBPS) * 1000 / 2;
    assert_eq!(seen(&off, A, STRONG), Some(half), "off: the static split");
    assert_eq!(seen(&off, B, STRONG), Some(half));
    let (a, b) = (seen(&on, A, STRONG).unwrap(), seen(&on, B, STRONG).unwrap());
    println!(
        "strong peer: off a {half} b {half}, fed on b {}/8; on a {a} b {b}, fed on b {}/8",
        fed(&off, B),
        fed(&on, B)
    );
    assert!(a < half, "a lends: it keeps {a}");
    assert!(b > half, "b borrows: it books {b}");
    assert!(a + b <= 2 * half);
    let ledger = on.coordinator.uplink_ledger();
    assert_eq!(ledger.base_share(NodeId(STRONG), A), Some(half));
    assert_eq!(ledger.share(NodeId(STRONG), B), Some(b));
    let used_b = on.coordinator.peer_overlay(B).unwrap().members[&NodeId(STRONG)].used;
    let half_slots = on.coordinator.peer_overlay(B).unwrap().slots_for(half);
    assert!(
        used_b > half_slots,
        "b uses the loan: {used_b} slots, {half_slots} in its half"
    );
    assert!(fed(&on, B) >= fed(&off, B));
}

#[test]
fn the_lender_takes_its_share_back_when_its_viewers_need_it() {
    let mut bus = b_needs_more(true);
    let half = u64::from(STRONG_KBPS) * 1000 / 2;
    let lent_a = seen(&bus, A, STRONG).unwrap();
    assert!(lent_a < half);
    // Weak peers arrive on "a": a's overlay needs the strong peer's slots there.
    for i in 0..8 {
        add_peer(&mut bus, Bus::peer_config(60 + i, 1000), &["a"]);
        bus.advance(500);
        books_hold(&bus);
    }
    for _ in 0..10 {
        bus.advance(1_000);
        books_hold(&bus);
    }
    let (a, b) = (
        seen(&bus, A, STRONG).unwrap(),
        seen(&bus, B, STRONG).unwrap(),
    );
    println!("after a's viewers came: a {a} (was {lent_a}) b {b}");
    assert!(a > lent_a, "a took back: {a}");
    let used_a = bus.coordinator.peer_overlay(A).unwrap().members[&NodeId(STRONG)].used;
    assert!(used_a > 0, "a uses it");
    assert!(a + b <= 2 * half);
    let used_b = bus.coordinator.peer_overlay(B).unwrap().members[&NodeId(STRONG)].used;
    let o = bus.coordinator.peer_overlay(B).unwrap();
    assert!(used_b <= o.slots_for(b), "b gave back what it booked past its share");
}

/// A desktop on both channels inside its `no_relay_hours`: no uplink in
/// either; when its hours end, each overlay books its channel's share of it
/// at once (in the check that saw the hour change, and right away when the
/// rule is removed).
#[test]
fn the_relaying_rules_resume_gives_each_channel_its_share_at_once() {
    const RULES: &str = r#"
[[client.no_relay_hours]]
name = "office-hours"
hours = [9, 17]
device_classes = ["desktop"]
"#;
    for remove_rule in [false, true] {
        let mut cfg = config(true);
        // Timestamp 0 is 16:59 UTC: the hours end a minute in.
        cfg.clock_epoch_unix_s = 17 * 3600 - 60;
        let mut bus = start(cfg, 16_000);
        let now = bus.now;
        assert_eq!(bus.coordinator.apply_policies(now, RULES), Ok(1));
        let desktop = NodeConfig {
            device_class: DeviceClass::Desktop,
            ..Bus::peer_config(STRONG, 8_000)
        };
        add_peer(&mut bus, desktop, &["a", "b"]);
        bus.advance(2_000);
        assert_eq!(seen(&bus, A, STRONG), Some(0), "within its hours");
        assert_eq!(seen(&bus, B, STRONG), Some(0));
        if remove_rule {
            let now = bus.now;
            assert_eq!(bus.coordinator.apply_policies(now, ""), Ok(0));
        } else {
            bus.advance(60_000);
            assert_eq!(bus.coordinator.utc_hour(bus.now), 17);
        }
        let ledger = bus.coordinator.uplink_ledger();
        for c in [A, B] {
            let share = ledger.share(NodeId(STRONG), c).unwrap();
            assert_eq!(share, 4_000_000, "half each: nothing used, nothing lent");
            assert_eq!(seen(&bus, c, STRONG), Some(share), "{c:?} its share at once");
        }
        books_hold(&bus);
    }
}
