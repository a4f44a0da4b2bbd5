//! Servers or peers switching for viewers already placed (C3's `prefer_source`
//! and `traffic_budget`, `policy/source_switch.rs`, `peers/source_moves.rs`) on
//! the real machines over the zero-latency bus: a traffic budget crossing its
//! threshold moves peers from the overlay to relays with room, a bounded number
//! per heartbeat interval, none when no relay has room; a policy apply from
//! servers to peers moves relay-watching peers into the overlay, each keeping
//! its relay until its overlay parents deliver; nothing moves when the choice
//! in force did not change.

mod support;

use support::Bus;
use tiercast_coordinator::policy::Source;
use tiercast_coordinator::{CoordEvent, CoordinatorConfig};
use tiercast_node::Event;
use tiercast_proto::{ChannelId, NodeId, OriginKey};

/// An origin, one relay with room for `relay_capacity` viewers (none: no relay),
/// channel "live"; `share` of the affected peers moved per heartbeat interval.
fn cluster(relay_capacity: Option<u32>, share: f64) -> (Bus, OriginKey) {
    let mut cfg = CoordinatorConfig::default();
    cfg.peers.substreams = 4;
    cfg.peers.stream_rate_kbps = 2000;
    cfg.peers.repair_link = false;
    cfg.source_switch_share = share;
    let mut bus = Bus::new(cfg);
    bus.add_node_with(Bus::origin_config(1, 16_000));
    if let Some(capacity) = relay_capacity {
        bus.add_node_with(Bus::relay_config(11, capacity));
    }
    let key = OriginKey::generate().expect("key");
    bus.node(1).announce("live", key.public_key());
    bus.settle();
    (bus, key)
}

/// `ms` of the stream (a block every 100 ms), `seq` the next block's.
fn stream(bus: &mut Bus, key: &OriginKey, seq: &mut u64, ms: u64) {
    for _ in 0..ms / 100 {
        let payload = bytes::Bytes::from(vec![0u8; 188 * 7]);
        bus.ingest_signed(key, *seq, seq.is_multiple_of(10), payload);
        *seq += 1;
        bus.advance(100);
    }
}

fn in_overlay(bus: &Bus, id: u32) -> bool {
    bus.coordinator
        .peer_overlay(ChannelId(1))
        .is_some_and(|o| o.members.contains_key(&NodeId(id)))
}

/// The node's parents for the channel.
fn parents(bus: &Bus, id: u32) -> Vec<u32> {
    bus.nodes[&NodeId(id)]
        .channel(ChannelId(1))
        .map(|c| c.parents.ids().into_iter().map(|p| p.0).collect())
        .unwrap_or_default()
}

/// (peer, relay, to) of every move so far.
fn moves(bus: &Bus) -> Vec<(u32, u32, Source)> {
    bus.coord_events
        .iter()
        .filter_map(|e| match e {
            CoordEvent::SourceMoved {
                peer, relay, to, ..
            } => Some((peer.0, relay.0, *to)),
            _ => None,
        })
        .collect()
}

fn switches(bus: &Bus) -> usize {
    bus.coord_events
        .iter()
        .filter(|e| matches!(e, CoordEvent::SourceSwitched { .. }))
        .count()
}

/// Peers first in the overlay, then over the budget servers: 0.002 GB is about
/// 8 s of the origin's 2 Mbit/s.
const BUDGET: &str = r#"
[[network.traffic_budget]]
name = "daily"
period = "day"
threshold_gb = 0.002
below = "peers"
above = "servers"
"#;

/// Ten peers in the overlay below the budget, then the stream for 30 s: the
/// budget is crossed; (moves so far, the relay's reported load) every 100 ms.
fn budget_run(bus: &mut Bus, key: &OriginKey) -> Vec<(u64, usize, u32)> {
    let now = bus.now;
    assert_eq!(bus.coordinator.apply_policies(now, BUDGET), Ok(1));
    for id in 20..30 {
        bus.add_watching(Bus::peer_config(id, 4000), "live");
    }
    assert!((20..30).all(|id| in_overlay(bus, id)), "below: peers");
    assert!(moves(bus).is_empty());
    let mut seq = 0;
    let mut samples = Vec::new();
    for step in 0..300u64 {
        stream(bus, key, &mut seq, 100);
        let load = bus
            .coordinator
            .registry()
            .get(NodeId(11))
            .map_or(0, |r| r.reported_load);
        samples.push((step * 100, moves(bus).len(), load));
    }
    let used = bus
        .coordinator
        .server_traffic_gb(bus.now, tiercast_coordinator::policy::Period::Day);
    assert!(used >= 0.002, "the budget was crossed: {used} GB");
    samples
}

#[test]
fn a_budget_crossing_its_threshold_moves_overlay_peers_to_relays_with_room_a_few_per_interval() {
    // 20 % of 10 affected peers: at most 2 per heartbeat interval.
    let (mut bus, key) = cluster(Some(12), 0.2);
    let samples = budget_run(&mut bus, &key);
    let moved = moves(&bus);
    assert_eq!(moved.len(), 10, "{moved:?}");
    assert!(moved
        .iter()
        .all(|(_, r, to)| *r == 11 && *to == Source::Servers));
    for (p, ..) in &moved {
        assert!(!in_overlay(&bus, *p), "{p} left the overlay");
        assert_eq!(parents(&bus, *p), vec![11], "{p} watches at the relay");
    }
    // Never more than 2 within one heartbeat interval (passes are 0.9 s apart),
    // and never past the relay's capacity.
    for (i, (t0, n0, _)) in samples.iter().enumerate() {
        for (t1, n1, _) in &samples[i..] {
            if t1 - t0 < 900 {
                assert!(n1 - n0 <= 2, "{} moves in {} ms", n1 - n0, t1 - t0);
            }
        }
    }
    assert!(
        samples.iter().any(|(_, n, _)| *n == 2),
        "gradual: {samples:?}"
    );
    assert!(
        samples.iter().all(|(_, _, load)| *load <= 12),
        "{samples:?}"
    );
    assert_eq!(bus.coordinator.stats().source_moves_to_servers, 10);

    // A relay full (its 8 slots taken by the overlay it feeds as a waypoint):
    // the budget switches all the same, nobody moves, nobody is left with nothing.
    let (mut bus, key) = cluster(Some(8), 0.2);
    let samples = budget_run(&mut bus, &key);
    assert_eq!(switches(&bus), 2, "servers for free and premium viewers");
    assert!(moves(&bus).is_empty(), "{:?}", moves(&bus));
    assert!((20..30).all(|id| in_overlay(&bus, id)));
    assert_eq!(samples.last().map(|s| s.2), Some(8), "the relay is full");

    // No relay at all: the same.
    let (mut bus, key) = cluster(None, 0.2);
    budget_run(&mut bus, &key);
    assert_eq!(switches(&bus), 2);
    assert!(moves(&bus).is_empty());
    assert!((20..30).all(|id| in_overlay(&bus, id)));
}

const SERVERS: &str = r#"
[[provider.prefer_source]]
name = "on-servers"
channels = ["live"]
prefer = "servers"
"#;

const PEERS: &str = r#"
[[provider.prefer_source]]
name = "on-peers"
channels = ["live"]
prefer = "peers"
"#;

#[test]
fn a_policy_apply_from_servers_to_peers_moves_relay_watching_peers_into_the_overlay() {
    let (mut bus, key) = cluster(Some(10), 0.05);
    let now = bus.now;
    assert_eq!(bus.coordinator.apply_policies(now, SERVERS), Ok(1));
    let peers: Vec<u32> = (20..24).collect();
    for id in &peers {
        bus.add_watching(Bus::peer_config(*id, 4000), "live");
    }
    let mut seq = 0;
    stream(&mut bus, &key, &mut seq, 3000);
    for id in &peers {
        assert!(!in_overlay(&bus, *id));
        assert_eq!(parents(&bus, *id), vec![11], "{id} watches at the relay");
    }
    assert_eq!(bus.coordinator.source_switches().on_servers_len(), 4);
    let now = bus.now;
    assert_eq!(bus.coordinator.apply_policies(now, PEERS), Ok(1));
    let from = seq;
    // 5 % of 4: one per heartbeat interval.
    stream(&mut bus, &key, &mut seq, 1000);
    assert_eq!(moves(&bus).len(), 1, "{:?}", moves(&bus));
    stream(&mut bus, &key, &mut seq, 8000);
    let moved = moves(&bus);
    assert_eq!(moved.len(), 4, "{moved:?}");
    assert!(moved
        .iter()
        .all(|(_, r, to)| *r == 11 && *to == Source::Peers));
    for id in &peers {
        assert!(in_overlay(&bus, *id), "{id} joined the overlay");
        let o = bus.coordinator.peer_overlay(ChannelId(1)).expect("overlay");
        let m = &o.members[&NodeId(*id)];
        assert!(m.parents.iter().all(|p| p.is_some()), "{id}: {m:?}");
        // Off the relay as a viewer: the relay gave way to overlay parents
        // (it may still be one of them, as a waypoint of the top level).
        let relay_viewer = bus.node_events.iter().any(|(n, e)| {
            n.0 == *id && matches!(e, Event::ParentDropped { parent, .. } if parent.0 == 11)
        });
        assert!(
            relay_viewer || o.members.contains_key(&NodeId(11)),
            "{id} dropped its relay"
        );
        // Connect before disconnect: no block missed across the move.
        let got = bus.blocks_stored(*id);
        for s in from..seq - 5 {
            assert!(got.contains(&s), "{id} missed block {s}");
        }
    }
    assert_eq!(bus.coordinator.stats().source_moves_to_peers, 4);
    assert_eq!(bus.coordinator.source_switches().on_servers_len(), 0);
}

#[test]
fn nothing_moves_when_the_source_in_force_did_not_change() {
    let (mut bus, key) = cluster(Some(2), 0.5);
    let now = bus.now;
    assert_eq!(bus.coordinator.apply_policies(now, SERVERS), Ok(1));
    for id in 20..24 {
        bus.add_watching(Bus::peer_config(id, 4000), "live");
    }
    // Two on the relay, two in the overlay (the relay was full: the fall-back).
    assert!(in_overlay(&bus, 22) && in_overlay(&bus, 23));
    assert!(!in_overlay(&bus, 20) && !in_overlay(&bus, 21));
    let mut seq = 0;
    stream(&mut bus, &key, &mut seq, 3000);
    let switched = switches(&bus);
    // The same choice applied again (another file, servers still): no switch.
    let same = format!("{SERVERS}\n[[provider.prefer_source]]\nname = \"other\"\nchannels = [\"live\"]\nprefer = \"servers\"\n");
    let now = bus.now;
    assert_eq!(bus.coordinator.apply_policies(now, &same), Ok(2));
    // A viewer on the relay leaves: room there, but the fall-back peers stay.
    let now = bus.now;
    bus.node(20).unwatch(now, "live");
    bus.settle();
    stream(&mut bus, &key, &mut seq, 10_000);
    assert_eq!(switches(&bus), switched, "no switch");
    assert!(moves(&bus).is_empty(), "{:?}", moves(&bus));
    assert!(in_overlay(&bus, 22) && in_overlay(&bus, 23));
    assert_eq!(bus.coordinator.stats().source_moves_to_servers, 0);
    // The unwatched peer is forgotten, the other still on the relay is kept.
    assert_eq!(bus.coordinator.source_switches().on_servers_len(), 1);
    // Then a change: the one left on the relay moves.
    let now = bus.now;
    assert_eq!(bus.coordinator.apply_policies(now, PEERS), Ok(1));
    stream(&mut bus, &key, &mut seq, 3000);
    assert_eq!(moves(&bus), vec![(21, 11, Source::Peers)]);
}
