//! C5's measurement-based reservations, on the real machines over the
//! zero-latency bus: two channels from one origin in "eu", each watched by weak
//! peers in "us", share the eu–us cap. Both streams flow, then channel b's
//! encoder stops. With measured reservations b's reservation counts what its
//! links across really carry (nothing, once its stream stands still) and
//! channel a may book the cap b no longer uses; with booked reservations b
//! keeps its booking and a stays where it was. Either way what the ledger counts
//! never passes the cap.

mod support;

use support::Bus;
use tiercast_coordinator::peers::caps::{region_pair, RegionPair};
use tiercast_coordinator::registry::RegionId;
use tiercast_coordinator::reservation::LinkKey;
use tiercast_coordinator::CoordinatorConfig;
use tiercast_node::NodeConfig;
use tiercast_proto::{Block, ChannelId, NodeId, NodeRole, OriginKey, Timestamp};

const A: ChannelId = ChannelId(1);
const B: ChannelId = ChannelId(2);
/// 12 Mbit/s between eu and us: 24 substream links of a 2 Mbit/s stream in 4.
const CAP: &str = r#"
[[network.link_cap]]
name = "atlantic"
regions = ["eu", "us"]
cap_mbps = 12
"#;

fn pair() -> RegionPair {
    region_pair(RegionId(0), RegionId(1)).expect("two regions")
}

fn eu_us() -> LinkKey {
    LinkKey::regions(RegionId(0), RegionId(1)).expect("two regions")
}

struct Run {
    bus: Bus,
    keys: [OriginKey; 2],
    seq: u64,
}

impl Run {
    /// Origin 1 in eu (20 Mbit/s) announces a (1) and b (2); peers 10..=15
    /// watch a and 20..=25 watch b, all in us with too little uplink to feed
    /// one another; the cap is applied.
    fn new(measured: bool) -> Run {
        let cfg = CoordinatorConfig {
            reservations_measured: measured,
            ..Bus::peers_config()
        };
        let mut bus = Bus::new(cfg);
        bus.add_node_with(NodeConfig {
            id: NodeId(1),
            role: NodeRole::Origin,
            region: "eu".into(),
            uplink_kbps: 40_000,
            addr: "sim:1".into(),
            http_addr: "sim:1".into(),
            ..NodeConfig::default()
        });
        let keys = [
            OriginKey::generate().expect("key"),
            OriginKey::generate().expect("key"),
        ];
        for (name, key) in ["a", "b"].iter().zip(&keys) {
            bus.node(1).announce(name, key.public_key());
            bus.settle();
        }
        for (first, name) in [(10, "a"), (20, "b")] {
            for id in first..first + 6 {
                let cfg = NodeConfig {
                    region: "us".into(),
                    ..Bus::peer_config(id, 2000)
                };
                bus.add_watching(cfg, name);
            }
        }
        let now = bus.now;
        bus.coordinator
            .apply_policies(now, CAP)
            .expect("the cap is valid");
        Run { bus, keys, seq: 0 }
    }

    /// `ms` of stream: a block of each flowing channel every 50 ms.
    fn stream(&mut self, ms: u64, channels: &[ChannelId]) {
        for _ in 0..ms / 50 {
            for c in channels {
                let key = &self.keys[(c.0 - 1) as usize];
                let mut b = Block::new(
                    *c,
                    self.seq,
                    Timestamp(self.seq),
                    self.seq.is_multiple_of(20),
                    bytes::Bytes::from_static(&[0u8; 1250]),
                );
                key.sign(&mut b);
                let now = self.bus.now;
                self.bus.node(1).ingest_block(now, b);
            }
            self.seq += 1;
            self.bus.settle();
            self.bus.advance(50);
        }
    }

    /// (reserved, counted) of channel `c` on the cap.
    fn reservation(&self, c: ChannelId) -> (u64, u64) {
        self.bus
            .coordinator
            .channel_reservation(c, eu_us())
            .map_or((0, 0), |r| (r.reserved_bps, r.counted_bps))
    }

    fn booked_across(&self, c: ChannelId) -> u64 {
        let o = self.bus.coordinator.peer_overlay(c).expect("an overlay");
        o.booked_across(pair())
    }

    /// What channel `c`'s manager may book across the cap now.
    fn allowance(&self, c: ChannelId) -> u64 {
        let o = self.bus.coordinator.peer_overlay(c).expect("an overlay");
        o.region_caps().cap(pair()).expect("capped")
    }

    /// `c`'s measurement, if its reservation has one.
    fn measured(&self, c: ChannelId) -> Option<u64> {
        self.bus
            .coordinator
            .channel_reservation(c, eu_us())
            .and_then(|r| r.measured_bps)
    }

    fn counted_within_cap(&self) {
        let counted = self.bus.coordinator.reservations().booked(eu_us());
        assert!(
            counted <= 12_000_000,
            "counted {counted} bit/s over the cap"
        );
    }
}

/// What one run shows: a's allowance across the cap while both streams flow
/// and after b's stopped, and b's reservation (reserved, counted) at the end.
struct Shown {
    a_allowed: (u64, u64),
    b_reservation: (u64, u64),
}

/// Both streams for 15 s, then only a's for 25 s.
fn run(measured: bool) -> Shown {
    let mut r = Run::new(measured);
    r.stream(15_000, &[A, B]);
    r.counted_within_cap();
    let b_booked = r.booked_across(B);
    assert!(r.booked_across(A) > 0 && b_booked > 0, "both cross the cap");
    let a_allowed = r.allowance(A);
    assert_eq!(
        a_allowed,
        12_000_000 - b_booked,
        "a may book what b does not"
    );
    if measured {
        for c in [A, B] {
            let (reserved, counted) = r.reservation(c);
            let m = r.measured(c).expect("measured while its stream flows");
            assert_eq!(counted, m, "the measurement is what counts");
            assert!(
                m.abs_diff(reserved) * 10 <= reserved,
                "{c:?}: links across carry about what they book: {m} of {reserved} bit/s"
            );
        }
    } else {
        assert_eq!(r.measured(A), None, "booked mode measures nothing");
    }
    for _ in 0..5 {
        r.stream(5_000, &[A]);
        r.counted_within_cap();
    }
    Shown {
        a_allowed: (a_allowed, r.allowance(A)),
        b_reservation: r.reservation(B),
    }
}

#[test]
fn a_channel_whose_stream_stopped_leaves_the_cap_to_the_other_only_when_measured() {
    let m = run(true);
    let (b_reserved, b_counted) = m.b_reservation;
    assert!(b_reserved > 0, "b still books its links across");
    assert_eq!(b_counted, 0, "measured: b's links carry nothing");
    assert_eq!(
        m.a_allowed.1, 12_000_000,
        "measured: a may book the whole cap"
    );

    let booked = run(false);
    let (b_reserved, b_counted) = booked.b_reservation;
    assert!(
        b_reserved > 0 && b_counted == b_reserved,
        "booked: b counts what it books"
    );
    assert_eq!(
        booked.a_allowed.1, booked.a_allowed.0,
        "booked: a may book no more than before"
    );
}
