//! The backup origin's rules (D7, issue 12) on the real coordinator and node
//! machines: the refusals (no channel yet, another key, a second backup), the
//! promotion when the primary is lost, and a returning primary taking the
//! channel back while the promoted backup stands by again.

mod support;

use support::Bus;
use tiercast_coordinator::{CoordEvent, CoordinatorConfig};
use tiercast_node::Event;
use tiercast_proto::{NodeId, NodeRole};

const KEY: [u8; 32] = [1; 32];

fn denied(bus: &Bus, node: u32) -> Vec<String> {
    bus.node_events
        .iter()
        .filter_map(|(n, e)| match e {
            Event::AnnounceDenied { reason, .. } if n.0 == node => Some(reason.to_string()),
            _ => None,
        })
        .collect()
}

fn count(bus: &Bus, node: u32, f: impl Fn(&Event) -> bool) -> usize {
    bus.node_events
        .iter()
        .filter(|(n, e)| n.0 == node && f(e))
        .count()
}

fn standbys(bus: &Bus, node: u32) -> usize {
    count(bus, node, |e| matches!(e, Event::StandbyAccepted { .. }))
}

fn readies(bus: &Bus, node: u32) -> usize {
    count(bus, node, |e| matches!(e, Event::ChannelReady { .. }))
}

#[test]
fn a_backup_is_refused_with_its_reason_without_a_channel_with_another_key_or_as_a_second() {
    let mut bus = Bus::new(CoordinatorConfig::default());
    for id in [1, 2, 3, 4] {
        bus.add_node(id, NodeRole::Origin, 0, 100, 0);
    }
    bus.node(2).announce_backup("a", KEY);
    bus.settle();
    assert!(
        denied(&bus, 2)[0].contains("no such channel yet"),
        "{:?}",
        denied(&bus, 2)
    );
    bus.node(1).announce("a", KEY);
    bus.settle();
    bus.node(3).announce_backup("a", [9; 32]);
    bus.settle();
    assert!(denied(&bus, 3)[0].contains("must sign with the channel's key"));
    bus.node(2).announce_backup("a", KEY);
    bus.settle();
    assert_eq!(standbys(&bus, 2), 1, "the backup stands by");
    assert!(bus.node(2).is_standby("a"));
    assert_eq!(readies(&bus, 2), 0, "and is not the origin");
    bus.node(4).announce_backup("a", KEY);
    bus.settle();
    assert!(denied(&bus, 4)[0].contains("live backup origin already"));
    bus.node(1).announce_backup("a", KEY);
    bus.settle();
    assert!(denied(&bus, 1)[0].contains("the channel's origin"));
}

#[test]
fn a_lost_primary_is_replaced_by_its_backup_and_a_returning_primary_takes_it_back() {
    let mut bus = Bus::with_relays(CoordinatorConfig::default(), 10..=11, 10);
    bus.add_node(2, NodeRole::Origin, 0, 100, 0);
    bus.node(2).announce_backup("a", KEY);
    bus.settle();
    assert_eq!(standbys(&bus, 2), 1);
    // The primary (node 1) crashes: silent past the heartbeat timeout.
    bus.nodes.remove(&NodeId(1));
    bus.advance(5_000);
    assert_eq!(readies(&bus, 2), 1, "the backup is the origin now");
    assert!(!bus.node(2).is_standby("a"));
    assert!(bus.coord_events.iter().any(|e| matches!(
        e,
        CoordEvent::OriginReplaced {
            old: NodeId(1),
            new: NodeId(2),
            key_changed: false,
            ..
        }
    )));
    // The primary comes back (a new process) without --backup: it takes the
    // channel back, the backup stands by again.
    bus.add_node(3, NodeRole::Origin, 0, 100, 0);
    bus.node(3).announce("a", KEY);
    bus.settle();
    assert_eq!(readies(&bus, 3), 1, "the returning primary is the origin");
    assert_eq!(standbys(&bus, 2), 2, "the backup stands by again");
    assert!(bus.node(2).is_standby("a"));
    // Lost again: the backup is promoted again.
    bus.nodes.remove(&NodeId(3));
    bus.advance(5_000);
    assert_eq!(readies(&bus, 2), 2);
    // Returning with --backup, the primary stands by for the promoted backup.
    bus.add_node(4, NodeRole::Origin, 0, 100, 0);
    bus.node(4).announce_backup("a", KEY);
    bus.settle();
    assert_eq!(standbys(&bus, 4), 1);
    assert_eq!(readies(&bus, 4), 0);
    assert!(
        !bus.node(2).is_standby("a"),
        "the promoted backup keeps the channel"
    );
}

/// Origin 1 and its backup 2 (same key), relays 11 (tier 1) and 21 (tier 2),
/// viewer 101 watching "live"; blocks every 100 ms for 2 s. Returns the key.
fn streaming_with_a_backup() -> (Bus, tiercast_proto::OriginKey) {
    let mut bus = Bus::new(CoordinatorConfig::default());
    bus.add_node(1, NodeRole::Origin, 0, 100, 0);
    bus.add_node(11, NodeRole::Relay, 1, 10, 0);
    bus.add_node(21, NodeRole::Relay, 2, 10, 0);
    let key = tiercast_proto::OriginKey::generate().expect("a key");
    bus.node(1).announce("live", key.public_key());
    bus.settle();
    bus.add_node(2, NodeRole::Origin, 0, 100, 0);
    bus.node(2).announce_backup("live", key.public_key());
    bus.settle();
    assert_eq!(standbys(&bus, 2), 1);
    bus.add_node(101, NodeRole::Viewer, 255, 0, 0);
    let now = bus.now;
    bus.node(101).watch(now, "live");
    bus.settle();
    for seq in 0..20u64 {
        bus.ingest_signed(&key, seq, seq.is_multiple_of(10), vec![1u8; 100].into());
        bus.advance(100);
    }
    (bus, key)
}

/// When (ms after `from`) the backup became the origin, stepping 10 ms up to `for_ms`.
fn promoted_within(bus: &mut Bus, for_ms: u64) -> Option<u64> {
    for step in 1..=for_ms / 10 {
        bus.advance(10);
        if readies(bus, 2) > 0 {
            return Some(step * 10);
        }
    }
    None
}

#[test]
fn a_tier1_relays_report_of_its_silent_origin_promotes_the_backup_when_the_probe_goes_unanswered() {
    let (mut bus, _key) = streaming_with_a_backup();
    // The primary dies right after its last block (it sends nothing more).
    bus.nodes.remove(&NodeId(1));
    let promoted = promoted_within(&mut bus, 5_000).expect("the backup is promoted");
    // Relay 11 reports after origin_silence_ms of silence, the probe runs out
    // origin_probe_ms later; the last heartbeat of the primary was at most 1 s
    // before: no 1.5-interval shortcut is needed.
    let cfg = CoordinatorConfig::default();
    let silence = tiercast_node::NodeConfig::default().origin_silence_ms;
    assert!(
        promoted <= silence + cfg.origin_probe_ms + 100,
        "promoted {promoted} ms after the last block"
    );
    assert!(
        promoted < cfg.heartbeat_timeout_ms,
        "well before the heartbeat timeout"
    );
    assert_eq!(
        count(&bus, 11, |e| matches!(
            e,
            Event::LinkDowngradeSent {
                parent: NodeId(1),
                ..
            }
        )),
        1,
        "the tier-1 relay reported its only parent"
    );
    assert!(bus.coord_events.iter().any(|e| matches!(
        e,
        CoordEvent::OriginReplaced {
            old: NodeId(1),
            new: NodeId(2),
            ..
        }
    )));
    // The tier-1 relay is re-homed to the backup.
    let ch = tiercast_proto::ChannelId(1);
    let parents = bus.node(11).channel(ch).expect("carried").parents.ids();
    assert_eq!(parents, vec![NodeId(2)]);
}

#[test]
fn a_live_origin_whose_stream_paused_answers_the_probe_and_keeps_its_channel() {
    let (mut bus, key) = streaming_with_a_backup();
    // The encoder pauses 3 s; the origin process lives (it heartbeats, and
    // answers the probe the relay's report causes).
    assert_eq!(promoted_within(&mut bus, 3_000), None, "no promotion");
    assert_eq!(
        count(&bus, 11, |e| matches!(e, Event::LinkDowngradeSent { .. })),
        1,
        "the relay did report the silence"
    );
    assert!(!bus
        .coord_events
        .iter()
        .any(|e| matches!(e, CoordEvent::OriginReplaced { .. })));
    // The stream resumes; the relay reports the next silence again, and again
    // the live origin keeps the channel.
    for seq in 20..25u64 {
        bus.ingest_signed(&key, seq, false, vec![1u8; 100].into());
        bus.advance(100);
    }
    assert_eq!(promoted_within(&mut bus, 2_000), None);
    assert_eq!(
        count(&bus, 11, |e| matches!(e, Event::LinkDowngradeSent { .. })),
        2
    );
    assert!(bus.node(2).is_standby("live"));
}

#[test]
fn a_relays_report_alone_does_not_flip_the_channel_nor_one_from_a_relay_not_in_it() {
    let (mut bus, _key) = streaming_with_a_backup();
    let ch = tiercast_proto::ChannelId(1);
    let lie = tiercast_proto::Message::LinkDowngrade {
        channel: ch,
        parent: NodeId(1),
    };
    // A relay that lies about a live origin: probed, it answers.
    let now = bus.now;
    bus.coordinator.handle_message(now, NodeId(11), lie.clone());
    bus.settle();
    assert_eq!(promoted_within(&mut bus, 1_000), None);
    assert_eq!(
        count(&bus, 11, |e| matches!(e, Event::LinkDowngradeSent { .. })),
        1,
        "relay 11 reported the pause itself too, once"
    );
    // A registered relay not active in the channel is not heard on it: no
    // probe. The origin crashes now; relay 11 reported this silence already,
    // so the backup waits for the primary's heartbeat timeout.
    bus.add_node(12, NodeRole::Relay, 1, 10, 0);
    bus.nodes.remove(&NodeId(1));
    let now = bus.now;
    bus.coordinator.handle_message(now, NodeId(12), lie);
    bus.settle();
    let promoted = promoted_within(&mut bus, 5_000).expect("promoted");
    assert!(
        promoted > 1_000,
        "not on relay 12's word: at the heartbeat timeout ({promoted} ms)"
    );
}
