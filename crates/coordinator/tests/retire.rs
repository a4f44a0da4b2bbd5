//! C1: the service manager retires a channel's managers. On the real machines
//! over the zero-latency bus: a channel with no origin and no viewer for
//! `channel_retire_after_ms` is retired — not before — and every part forgets
//! it (read through `Coordinator::channel_footprint`); a watching peer or a
//! returning origin keeps it; a `/watch` of a retired name is answered as for an
//! unknown one, and a later announce of the name starts a new channel; a relay
//! that carried it is told and forgets it.

mod support;

use support::{Bus, CAPPED_EU_US};
use tiercast_coordinator::{CoordEvent, CoordinatorConfig};
use tiercast_node::{Event, NodeConfig};
use tiercast_proto::viewer_feed::ViewerFeed;
use tiercast_proto::{ChannelId, DenyReason, NodeId, OriginKey};

const RETIRE_MS: u64 = 10_000;
const LIVE: ChannelId = ChannelId(1);

fn config() -> CoordinatorConfig {
    CoordinatorConfig {
        channel_retire_after_ms: RETIRE_MS,
        // The forecast (V7) keeps per-channel counts only when predicting.
        prediction: true,
        ..Bus::peers_config()
    }
}

fn origin(id: u32) -> NodeConfig {
    NodeConfig {
        region: "eu".into(),
        ..Bus::origin_config(id, 16_000)
    }
}

fn add_peer(bus: &mut Bus, id: u32, region: &str, uplink_kbps: u32) {
    let cfg = NodeConfig {
        region: region.into(),
        ..Bus::peer_config(id, uplink_kbps)
    };
    bus.add_watching(cfg, "live");
}

/// Origin 1 announces "live" with `key`; peer 3 of "eu" watches it.
fn start(key: &OriginKey) -> Bus {
    let mut bus = Bus::new(config());
    bus.add_node_with(origin(1));
    bus.node(1).announce("live", key.public_key());
    bus.settle();
    add_peer(&mut bus, 3, "eu", 16_000);
    bus.advance(2_000);
    bus
}

/// The node is gone without a word (the coordinator times it out).
fn crash(bus: &mut Bus, id: u32) {
    bus.nodes.remove(&NodeId(id));
}

fn retired(bus: &Bus, channel: ChannelId) -> bool {
    bus.coord_events
        .iter()
        .any(|e| matches!(e, CoordEvent::ChannelRetired { channel: c, .. } if *c == channel))
}

fn managed(bus: &Bus, channel: ChannelId) -> bool {
    let f = bus.coordinator.channel_footprint(channel);
    f.van_manager && f.peer_overlay && f.named
}

#[test]
fn an_unused_channel_is_retired_after_the_timeout_not_before_and_every_part_forgets_it() {
    let key = OriginKey::generate().expect("key");
    let mut bus = Bus::new(config());
    bus.add_node_with(origin(1));
    bus.add_node_with(NodeConfig {
        region: "eu".into(),
        ..Bus::relay_config(2, 10)
    });
    bus.node(1).announce("live", key.public_key());
    bus.settle();
    add_peer(&mut bus, 3, "eu", 16_000);
    add_peer(&mut bus, 4, "eu", 16_000);
    add_peer(&mut bus, 10, "us", 100);
    let now = bus.now;
    assert_eq!(
        bus.coordinator
            .apply_policies(now, CAPPED_EU_US)
            .map(|_| ()),
        Ok(())
    );
    bus.advance(10_000);
    assert!(bus.node(2).channel(LIVE).is_some(), "the relay carries it");
    let before = bus.coordinator.channel_footprint(LIVE);
    assert!(managed(&bus, LIVE), "{before:?}");
    assert!(before.parent_sets > 0, "{before:?}");
    assert!(before.uplink_shares > 0, "the waypoint's share: {before:?}");
    assert!(before.reservations > 0, "across the cap: {before:?}");
    assert!(before.network > 0, "links measured: {before:?}");
    assert!(before.forecast > 0, "{before:?}");
    assert!(!before.retiring, "{before:?}");

    // The origin and every peer are gone; the relay stays, carrying nobody.
    for id in [1, 3, 4, 10] {
        crash(&mut bus, id);
    }
    bus.advance(RETIRE_MS);
    assert!(!retired(&bus, LIVE), "unused for less than the timeout");
    let waiting = bus.coordinator.channel_footprint(LIVE);
    assert!(managed(&bus, LIVE) && waiting.retiring, "{waiting:?}");

    bus.advance(5_000);
    assert!(retired(&bus, LIVE));
    let after = bus.coordinator.channel_footprint(LIVE);
    assert!(after.is_empty(), "{after:?}");
    assert!(bus.coordinator.channel_by_name("live").is_none());
    assert!(bus.coordinator.peer_overlay(LIVE).is_none());
    assert_eq!(bus.coordinator.managers().count(), 0);
    assert_eq!(bus.coordinator.uplink_ledger().holders(LIVE), 0);
    // The relay was told: it holds nothing of the channel any more.
    assert!(bus.node(2).channel(LIVE).is_none());
    assert!(bus.node(2).channel_id("live").is_none());
}

#[test]
fn a_watching_peer_keeps_an_originless_channel_until_it_leaves() {
    let key = OriginKey::generate().expect("key");
    let mut bus = start(&key);
    crash(&mut bus, 1);
    bus.advance(3 * RETIRE_MS);
    assert!(!retired(&bus, LIVE), "peer 3 still watches");
    assert!(managed(&bus, LIVE));
    assert!(!bus.coordinator.channel_footprint(LIVE).retiring);

    crash(&mut bus, 3);
    bus.advance(RETIRE_MS + 5_000);
    assert!(retired(&bus, LIVE));
    assert!(bus.coordinator.channel_footprint(LIVE).is_empty());
}

/// `start`, then the origin and the peer are gone and `ms` pass.
fn abandoned(key: &OriginKey, ms: u64) -> Bus {
    let mut bus = start(key);
    crash(&mut bus, 1);
    crash(&mut bus, 3);
    bus.advance(ms);
    bus
}

#[test]
fn an_origin_taking_the_channel_over_keeps_it() {
    let key = OriginKey::generate().expect("key");
    let mut bus = abandoned(&key, RETIRE_MS / 2);
    assert!(bus.coordinator.channel_footprint(LIVE).retiring);
    // A new origin process with the channel's key takes it over.
    bus.add_node_with(origin(5));
    bus.node(5).announce("live", key.public_key());
    bus.settle();
    bus.advance(3 * RETIRE_MS);
    assert!(!retired(&bus, LIVE));
    assert!(bus.coordinator.channel_footprint(LIVE).van_manager);
    let m = bus
        .coordinator
        .channel_by_name("live")
        .expect("still announced");
    assert_eq!((m.desc.id, m.origin), (LIVE, NodeId(5)));
    assert!(!bus.coordinator.channel_footprint(LIVE).retiring);
}

#[test]
fn a_retired_name_is_unknown_to_watchers_and_starts_afresh_at_its_next_announce() {
    let key = OriginKey::generate().expect("key");
    let mut bus = abandoned(&key, RETIRE_MS + 5_000);
    assert!(retired(&bus, LIVE));

    // A viewer's /watch: the same answer as for a name never announced.
    let now = bus.now;
    let retired_answer = bus
        .coordinator
        .watch_feed(now, "live", "eu", ViewerFeed::LIVE)
        .map(|_| ());
    let unknown_answer = bus
        .coordinator
        .watch_feed(now, "never-announced", "eu", ViewerFeed::LIVE)
        .map(|_| ());
    assert_eq!(retired_answer, Err(DenyReason::UnknownChannel));
    assert_eq!(retired_answer, unknown_answer);
    // A peer's Watch: denied as unknown.
    add_peer(&mut bus, 6, "eu", 16_000);
    assert!(bus.node_events.iter().any(|(n, e)| n.0 == 6
        && matches!(
            e,
            Event::WatchDenied {
                reason: DenyReason::UnknownChannel,
                ..
            }
        )));
    assert!(!bus.coordinator.channel_footprint(LIVE).peer_overlay);

    // Another origin, another key: a new channel under the old name.
    let other = OriginKey::generate().expect("key");
    bus.add_node_with(origin(7));
    bus.node(7).announce("live", other.public_key());
    bus.settle();
    let started = bus
        .coord_events
        .iter()
        .filter(|e| matches!(e, CoordEvent::ChannelStarted { name, .. } if name == "live"))
        .count();
    assert_eq!(started, 2, "announced afresh");
    let m = bus.coordinator.channel_by_name("live").expect("announced");
    let (id, origin_now) = (m.desc.id, m.origin);
    assert_eq!(origin_now, NodeId(7));
    assert_eq!(m.desc.public_key, other.public_key());
    add_peer(&mut bus, 8, "eu", 16_000);
    bus.advance(2_000);
    let o = bus.coordinator.peer_overlay(id).expect("a new overlay");
    let fed = o
        .members
        .get(&NodeId(8))
        .map_or(0, |m| m.parents.iter().flatten().count());
    assert_eq!(fed, 4, "the new channel's peer has a parent per substream");
}
