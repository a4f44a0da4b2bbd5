//! C9's lending for relays, on the real machines over the zero-latency bus: a
//! relay active for two channels, one of which carries little there, lends the
//! rest of that channel's share to the other — whose VAN then places more of
//! its viewers on the relay than the static split allows — and the lender takes
//! it back when its own viewers need it (the borrower gets no new viewers
//! there; the one it carries stay, as with a share that shrank). With lending
//! off the static split holds. The machine never carries more than its
//! capacity.

mod support;

use support::Bus;
use tiercast_coordinator::CoordinatorConfig;
use tiercast_proto::{ChannelId, NodeId};

const A: ChannelId = ChannelId(1);
const B: ChannelId = ChannelId(2);
const CAPACITY: u32 = 10;

/// An origin (1), four tier-1 relays (11..=14) of capacity 10 (100 Mb/s
/// each), channels "a" and "b" both on relay 11.
fn start(lending: bool) -> Bus {
    let cfg = CoordinatorConfig {
        idle_relay_ms: 60_000,
        uplink_lending: lending,
        ..CoordinatorConfig::default()
    };
    let mut bus = Bus::with_relays(cfg, 11..=14, CAPACITY);
    bus.node(1).announce("b", [2; 32]);
    bus.settle();
    bus
}

/// How many of `ids` were placed on relay 11.
fn on_11(bus: &Bus, ids: std::ops::RangeInclusive<u32>) -> usize {
    ids.filter(|v| bus.watching_relay(*v) == Some(11)).count()
}

fn load_11(bus: &Bus) -> u32 {
    bus.coordinator
        .registry()
        .get(NodeId(11))
        .unwrap()
        .reported_load
}

/// A carries one viewer on 11; B fills its half, then asks for more.
fn b_asks_for_more(lending: bool) -> Bus {
    let mut bus = start(lending);
    bus.add_viewers(100..=100, "a");
    assert_eq!(on_11(&bus, 100..=100), 1);
    bus.add_viewers(200..=204, "b");
    assert_eq!(on_11(&bus, 200..=204), 5, "B's half of 11");
    bus.advance(1_000);
    bus.add_viewers(205..=208, "b");
    bus
}

#[test]
fn a_relay_channel_carrying_little_lends_to_the_other_and_takes_back() {
    let off = b_asks_for_more(false);
    assert_eq!(on_11(&off, 205..=208), 0, "off: B stays within its half");
    let ledger = off.coordinator.uplink_ledger();
    let whole = ledger.declared(NodeId(11)).unwrap();
    assert_eq!(ledger.share(NodeId(11), B), Some(whole / 2));

    let mut bus = b_asks_for_more(true);
    let ledger = bus.coordinator.uplink_ledger();
    let (a, b) = (
        ledger.share(NodeId(11), A).unwrap(),
        ledger.share(NodeId(11), B).unwrap(),
    );
    println!("on: 11's shares a {a} b {b} of {whole}");
    assert!(a < whole / 2 && b > whole / 2, "A lends to B: {a} {b}");
    assert!(a + b <= whole);
    let more = on_11(&bus, 205..=208);
    assert!(more >= 1, "B places more of its viewers on 11: {more}");
    assert!(load_11(&bus) <= CAPACITY);

    // A's viewers come: A takes its share back, B gets no new viewer on 11.
    bus.add_viewers(101..=104, "a");
    bus.advance(2_000);
    let ledger = bus.coordinator.uplink_ledger();
    let a_back = ledger.share(NodeId(11), A).unwrap();
    println!(
        "after A's viewers: a {a_back} b {}, A on 11: {}",
        ledger.share(NodeId(11), B).unwrap(),
        on_11(&bus, 100..=104)
    );
    assert!(a_back > a, "A took back: {a_back} > {a}");
    assert!(on_11(&bus, 100..=104) >= 2, "A places viewers on 11 again");
    assert!(ledger.booked(NodeId(11)) <= whole);
    assert!(load_11(&bus) <= CAPACITY);
    bus.add_viewers(209..=209, "b");
    assert!(load_11(&bus) <= CAPACITY);
}
