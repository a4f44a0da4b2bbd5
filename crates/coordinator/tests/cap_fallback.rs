//! A cap between two regions with a declared fall-back for premium viewers (C3,
//! `peers/cap_fallback.rs`, `policy/link_caps.rs`) on the real machines over the
//! zero-latency bus: region "us" is reached only across the capped pair and its
//! peers give nothing; with the cap's room spent, a free peer waits, a premium one
//! is placed across only when the cap declares a premium fall-back.

mod support;

use support::{Bus, CAPPED_EU_US};
use tiercast_node::{Event, NodeConfig};
use tiercast_proto::{ChannelId, NodeId, NodeRole, OriginKey};

/// 10 substream links of 0.5 Mbit/s within 95 % of 5.3 Mbit/s; 16 within 8.5.
const CAPPED: &str = CAPPED_EU_US;

const CAPPED_WITH_FALLBACK: &str = r#"
[[network.link_cap]]
name = "atlantic"
regions = ["eu", "us"]
cap_mbps = 5.3
fallback = "atlantic-premium"

[[network.link_cap]]
name = "atlantic-premium"
regions = ["eu", "us"]
cap_mbps = 8.5
viewers = "premium"
"#;

fn add_peer(bus: &mut Bus, id: u32, region: &str, uplink_kbps: u32, premium: bool) {
    let cfg = NodeConfig {
        region: region.into(),
        premium,
        ..Bus::peer_config(id, uplink_kbps)
    };
    bus.add_watching(cfg, "live");
}

/// Substream parents the overlay gave `id` (0 when not a member).
fn parents(bus: &Bus, id: u32) -> usize {
    bus.coordinator
        .peer_overlay(ChannelId(1))
        .and_then(|o| o.members.get(&NodeId(id)))
        .map_or(0, |m| m.parents.iter().flatten().count())
}

fn refused(bus: &Bus, id: u32) -> bool {
    bus.node_events
        .iter()
        .any(|(n, e)| n.0 == id && matches!(e, Event::WatchDenied { .. }))
}

/// Origin and strong peers in "eu", one peer in "us" (10) whose uplink (0.1 Mbit/s) is less than one substream, the
/// policies applied, then a free (11) and a premium (12) peer of "us".
fn run(file: &str) -> Bus {
    let mut bus = Bus::new(Bus::peers_config());
    bus.add_node_with(NodeConfig {
        id: NodeId(1),
        role: NodeRole::Origin,
        tier: 0,
        uplink_kbps: 16_000,
        region: "eu".into(),
        addr: "sim:1".into(),
        http_addr: "sim:1".into(),
        ..NodeConfig::default()
    });
    let key = OriginKey::generate().expect("key");
    bus.node(1).announce("live", key.public_key());
    bus.settle();
    for id in 2..6 {
        add_peer(&mut bus, id, "eu", 16_000, false);
    }
    add_peer(&mut bus, 10, "us", 100, false);
    let now = bus.now;
    assert_eq!(
        bus.coordinator.apply_policies(now, file).map(|_| ()),
        Ok(())
    );
    bus.advance(10_000);
    assert_eq!(parents(&bus, 10), 4, "the first us peer fits under the cap");
    add_peer(&mut bus, 11, "us", 100, false);
    // Joins into a region reached only across caps are paced (`cap_joins.rs`).
    bus.advance(10_000);
    add_peer(&mut bus, 12, "us", 100, true);
    bus
}

#[test]
fn with_the_cap_spent_a_free_peer_waits_and_a_premium_one_crosses_only_on_a_declared_fallback() {
    let bus = run(CAPPED);
    assert!(bus.coordinator.region_cap_fallbacks_bps().is_empty());
    assert_eq!(parents(&bus, 11), 0);
    assert!(refused(&bus, 11), "the free peer is told to come back");
    assert_eq!(parents(&bus, 12), 0, "no fall-back: premium waits too");
    assert!(refused(&bus, 12));

    let bus = run(CAPPED_WITH_FALLBACK);
    assert_eq!(
        bus.coordinator
            .region_cap_fallbacks_bps()
            .into_values()
            .collect::<Vec<_>>(),
        vec![8_500_000]
    );
    assert_eq!(parents(&bus, 11), 0);
    assert!(refused(&bus, 11), "the free peer still waits");
    assert_eq!(parents(&bus, 12), 4, "the premium peer is placed across");
    assert!(!refused(&bus, 12));
}
