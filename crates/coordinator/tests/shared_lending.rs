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
use tiercast_proto::{ChannelId, DeviceClass, NodeId};

const A: ChannelId = ChannelId(1);
const B: ChannelId = ChannelId(2);
/// The strong peers on both channels (the first id, how many), their uplink.
const STRONG: u32 = 10;
const STRONG_PEERS: u32 = 4;
const STRONG_KBPS: u32 = 12_000;
/// Weak peers (half a stream) on one channel.
const WEAK: u32 = 24;

fn config(lending: bool) -> CoordinatorConfig {
    CoordinatorConfig {
        uplink_lending: lending,
        ..Bus::peers_config()
    }
}

/// An origin (node 1, `origin_kbps` per channel) with channels "a" (1) and "b" (2).
fn start(cfg: CoordinatorConfig, origin_kbps: u32) -> Bus {
    Bus::with_channels(cfg, origin_kbps, &["a", "b"])
}

fn add_peer(bus: &mut Bus, cfg: NodeConfig, channels: &[&str]) {
    bus.add_watching_each(cfg, channels);
}

/// The uplink channel `c`'s overlay books for `id`, if a member.
fn seen(bus: &Bus, c: ChannelId, id: u32) -> Option<u64> {
    bus.overlay_uplink(c, id)
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

/// Strong peers (one per tree) on "a" and "b"; then weak peers (half a
/// stream each) on "b" only, more than b's overlay can carry with half of the
/// strong peers: "a" has the strong peers alone and needs little of them.
/// Returns the bus after the overlays settled.
fn b_needs_more(lending: bool) -> Bus {
    let mut bus = start(config(lending), 6_000);
    for s in STRONG..STRONG + STRONG_PEERS {
        add_peer(&mut bus, Bus::peer_config(s, STRONG_KBPS), &["a", "b"]);
    }
    for i in 0..WEAK {
        add_peer(&mut bus, Bus::peer_config(100 + i, 1000), &["b"]);
        bus.advance(250);
        books_hold(&bus);
    }
    for _ in 0..20 {
        bus.advance(1_000);
        books_hold(&bus);
    }
    bus
}

/// Per strong peer: (a's share, b's share, slots used on b).
fn strong_peers(bus: &Bus) -> Vec<(u64, u64, u32)> {
    let ob = bus.coordinator.peer_overlay(B).unwrap();
    (STRONG..STRONG + STRONG_PEERS)
        .map(|s| {
            (
                seen(bus, A, s).unwrap(),
                seen(bus, B, s).unwrap(),
                ob.members[&NodeId(s)].used,
            )
        })
        .collect()
}

#[test]
fn an_idle_channel_lends_its_share_and_the_other_carries_more() {
    let off = b_needs_more(false);
    let on = b_needs_more(true);
    let half = u64::from(STRONG_KBPS) * 1000 / 2;
    let half_slots = on.coordinator.peer_overlay(B).unwrap().slots_for(half);
    println!(
        "off: fed on b {}/{WEAK} strong (a, b, used on b) {:?}",
        fed(&off, B),
        strong_peers(&off)
    );
    println!(
        "on:  fed on b {}/{WEAK} strong (a, b, used on b) {:?}; half gives {half_slots} slots",
        fed(&on, B),
        strong_peers(&on)
    );
    for (a, b, _) in strong_peers(&off) {
        assert_eq!((a, b), (half, half), "off: the static split");
    }
    for (a, b, _) in strong_peers(&on) {
        assert!(a < half, "a lends: it keeps {a}");
        assert!(b > half, "b borrows: it books {b}");
        assert!(a + b <= 2 * half);
    }
    let ledger = on.coordinator.uplink_ledger();
    assert_eq!(ledger.base_share(NodeId(STRONG), A), Some(half));
    assert!(
        strong_peers(&on)
            .iter()
            .any(|(_, _, used)| *used > half_slots),
        "b uses a loan"
    );
    assert!(fed(&on, B) > fed(&off, B), "b carries more with the loans");
}

#[test]
fn the_lender_takes_its_share_back_when_its_viewers_need_it() {
    let mut bus = b_needs_more(true);
    let half = u64::from(STRONG_KBPS) * 1000 / 2;
    let lent: Vec<u64> = strong_peers(&bus).iter().map(|s| s.0).collect();
    assert!(lent.iter().all(|a| *a < half));
    // Weak peers arrive on "a": a's overlay needs the strong peers' slots there.
    for i in 0..WEAK {
        add_peer(&mut bus, Bus::peer_config(200 + i, 1000), &["a"]);
        bus.advance(250);
        books_hold(&bus);
    }
    for _ in 0..20 {
        bus.advance(1_000);
        books_hold(&bus);
    }
    let after = strong_peers(&bus);
    println!("after a's viewers came: (a, b, used on b) {after:?} (a was {lent:?})");
    let oa = bus.coordinator.peer_overlay(A).unwrap();
    let ob = bus.coordinator.peer_overlay(B).unwrap();
    for (s, (a, b, used_b)) in (STRONG..).zip(after) {
        assert!(a >= half, "{s}: a took its share back: {a}");
        assert!(a + b <= 2 * half);
        assert!(
            used_b <= ob.slots_for(b),
            "{s}: b gave back what it booked past its share"
        );
    }
    let used_a: u32 = (STRONG..STRONG + STRONG_PEERS)
        .map(|s| oa.members[&NodeId(s)].used)
        .sum();
    assert!(used_a > 0, "a uses them");
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
            assert_eq!(
                seen(&bus, c, STRONG),
                Some(share),
                "{c:?} its share at once"
            );
        }
        books_hold(&bus);
    }
}
