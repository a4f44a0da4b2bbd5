//! Tests of [`super`]: startup, stored lag and bytes, measured where the
//! simulator measures them (time passed in).

use super::*;
use crate::test_fixture::{self, feed, registered, CH};
use crate::{Event, Node, NodeConfig};
use bytes::Bytes;
use tiercast_proto::{ChannelDesc, Message, NodeId, NodeRole, PeerInfo, COORDINATOR_ID};

fn at(ms: u64) -> Timestamp {
    Timestamp::from_millis(ms)
}

/// Block `seq` cut by the origin at `origin_ms`, a keyframe when asked.
fn blk(seq: u64, origin_ms: u64, key: bool) -> Block {
    Block::new(
        CH,
        seq,
        at(origin_ms),
        key,
        Bytes::from_static(b"0123456789"),
    )
}

fn on() -> Option<TimingsConfig> {
    Some(TimingsConfig::default())
}

fn relay_info(id: u32) -> PeerInfo {
    PeerInfo {
        id: NodeId(id),
        addr: String::new(),
        http_addr: String::new(),
    }
}

fn stored_seqs(n: &mut Node) -> Vec<u64> {
    std::iter::from_fn(|| n.poll_event())
        .filter_map(|e| match e {
            Event::BlockStored { block } => Some(block.seq),
            _ => None,
        })
        .collect()
}

#[test]
fn startup_counts_from_the_first_ask_to_the_first_block_and_keyframe() {
    let mut t = Timings::new(TimingsConfig::default());
    t.asked(at(100), "live", 8);
    t.asked(at(900), "live", 8); // asking again does not start it over
    t.stored(at(350), "other", &blk(0, 0, true)); // never asked: not measured
    assert!(t.get("other").is_none());
    let c = t.get("live").unwrap();
    assert_eq!((c.startup_ms(), c.startup_playable_ms()), (None, None));
    t.stored(at(350), "live", &blk(7, 300, false));
    t.stored(at(1_200), "live", &blk(25, 1_100, true));
    t.stored(at(1_300), "live", &blk(50, 1_290, true));
    let c = t.get("live").unwrap();
    assert_eq!(c.startup_ms(), Some(250));
    assert_eq!(c.startup_playable_ms(), Some(1_100));
    assert_eq!(c.blocks_stored, 3);
    let frame = tiercast_proto::codec::block_frame_len(&blk(7, 0, false)) as u64;
    assert_eq!(c.delivered_bytes, 3 * frame);
    // Lags 50, 100 and 10 ms (a quantile is its bucket's highest value: 50
    // shares the 2 ms wide bucket 50..=51).
    assert_eq!(c.lag.count(), 3);
    assert_eq!(c.lag.max_ms(), Some(100));
    assert_eq!(c.lag.quantile_ms(0.34), Some(51));
    assert_eq!(c.lag.quantile_ms(0.0), Some(10));
}

#[test]
fn lag_is_taken_on_the_origin_clock_and_never_negative() {
    // The driver's clock started 10 s after the origin's epoch.
    let mut t = Timings::new(TimingsConfig {
        origin_clock_offset_us: 10_000_000,
    });
    t.asked(at(0), "live", 8);
    t.stored(at(500), "live", &blk(1, 10_200, false)); // 300 ms
    t.stored(at(600), "live", &blk(2, 10_900, false)); // cut "after" it came: 0
    let c = t.get("live").unwrap();
    assert_eq!(c.lag.max_ms(), Some(300));
    assert_eq!(c.lag.quantile_ms(0.5), Some(0));
}

#[test]
fn at_most_limit_channels_are_measured() {
    let mut t = Timings::new(TimingsConfig::default());
    for i in 0..5 {
        t.asked(at(0), &format!("c{i}"), 3);
    }
    assert_eq!(t.iter().count(), 3);
}

fn viewer(timings: Option<TimingsConfig>) -> Node {
    let cfg = NodeConfig {
        id: NodeId(100),
        role: NodeRole::Viewer,
        capacity: 0,
        verify_blocks: false,
        viewer_silence_ms: 3000,
        timings,
        ..NodeConfig::default()
    };
    registered(cfg)
}

fn desc() -> ChannelDesc {
    test_fixture::desc()
}

/// A protocol viewer: asked at 1 s, placed at 1.2 s, first block at 1.5 s (not
/// a keyframe), first keyframe at 2.1 s; each block's lag is origin → stored.
/// Dropped for silence and watched again, its startup is not taken again.
#[test]
fn a_protocol_viewer_reports_its_startup_and_lag() {
    let mut n = viewer(on());
    n.watch(at(1_000), "live");
    n.handle_message(
        at(1_200),
        COORDINATOR_ID,
        Message::WatchAt {
            channel: desc(),
            relay: relay_info(21),
        },
    );
    n.handle_message(
        at(1_210),
        NodeId(21),
        Message::LoginAccepted { channel: CH },
    );
    // Blocks 7..=30 every 40 ms, keyframes every 25 seqs, each 120 ms old.
    for s in 7..=30u64 {
        let t = 1_500 + (s - 7) * 40;
        n.handle_message(
            at(t),
            NodeId(21),
            Message::Block(blk(s, t - 120, s % 25 == 0)),
        );
    }
    // A duplicate is not stored: not counted.
    n.handle_message(at(2_500), NodeId(21), Message::Block(blk(30, 2_000, false)));
    assert_eq!(stored_seqs(&mut n).len(), 24);
    let c = n.timings().unwrap().get("live").unwrap();
    assert_eq!(c.startup_ms(), Some(500));
    assert_eq!(c.startup_playable_ms(), Some(1_500 + 18 * 40 - 1_000));
    assert_eq!(c.lag.count(), 24);
    assert_eq!(c.lag.quantile_ms(0.95), Some(120));
    assert_eq!(c.blocks_stored, 24);

    // Silent past its relay's deadline: dropped, asked again, placed again.
    n.handle_timeout(at(6_000));
    n.handle_timeout(at(6_600));
    assert!(n.channel(CH).is_none(), "dropped after the silence");
    n.handle_message(
        at(6_700),
        COORDINATOR_ID,
        Message::WatchAt {
            channel: desc(),
            relay: relay_info(22),
        },
    );
    n.handle_message(
        at(6_710),
        NodeId(22),
        Message::LoginAccepted { channel: CH },
    );
    n.handle_message(at(7_000), NodeId(22), Message::Block(blk(31, 6_000, false)));
    let c = n.timings().unwrap().get("live").unwrap();
    assert_eq!(c.startup_ms(), Some(500), "once per channel over the run");
    assert_eq!(c.lag.count(), 25);
    assert_eq!(c.lag.max_ms(), Some(1_000));
}

#[test]
fn nothing_is_measured_unless_asked() {
    let mut n = viewer(None);
    n.watch(at(0), "live");
    assert!(n.timings().is_none());
}

/// A peer with two substream parents: its first blocks are held by its start
/// gate; its startup is when the gate lets the first one be stored (the
/// simulator's `first_at` is its first `BlockStored` too).
#[test]
fn a_peer_starts_when_its_start_gate_opens() {
    let cfg = NodeConfig {
        id: NodeId(9),
        role: NodeRole::Peer,
        verify_blocks: false,
        timings: on(),
        ..NodeConfig::default()
    };
    let mut n = registered(cfg);
    n.watch(at(100), "live");
    test_fixture::assign(&mut n, at(300), vec![feed(5, &[0, 1]), feed(6, &[2, 3])]);
    for p in [5, 6] {
        n.handle_message(at(300), NodeId(p), Message::LoginAccepted { channel: CH });
    }
    // Parent 5's substreams at 400 ms, parent 6's at 700 ms: the gate opens then.
    for s in [40u64, 41] {
        n.handle_message(at(400), NodeId(5), Message::Block(blk(s, 350, s == 40)));
    }
    assert!(stored_seqs(&mut n).is_empty(), "held by the start gate");
    assert_eq!(n.timings().unwrap().get("live").unwrap().startup_ms(), None);
    for s in [42u64, 43] {
        n.handle_message(at(700), NodeId(6), Message::Block(blk(s, 360, false)));
    }
    assert_eq!(stored_seqs(&mut n), vec![40, 41, 42, 43]);
    let c = n.timings().unwrap().get("live").unwrap();
    assert_eq!(c.startup_ms(), Some(600));
    assert_eq!(c.startup_playable_ms(), Some(600));
    assert_eq!(c.lag.max_ms(), Some(350));
}

/// A relay's startup counts from when it was placed on the channel.
#[test]
fn a_relay_starts_when_placed() {
    let mut cfg = test_fixture::relay_cfg();
    cfg.timings = on();
    let mut n = Node::new(cfg, Timestamp::ZERO);
    let activate = tiercast_proto::Placement::Tier {
        tier: 2,
        activate: true,
    };
    test_fixture::set(&mut n, at(2_000), 1, activate, vec![test_fixture::all(11)]);
    n.handle_message(
        at(2_010),
        NodeId(11),
        Message::LoginAccepted { channel: CH },
    );
    n.handle_message(at(2_250), NodeId(11), Message::Block(blk(3, 2_200, true)));
    let c = n.timings().unwrap().get("live").unwrap();
    assert_eq!(
        (c.startup_ms(), c.startup_playable_ms()),
        (Some(250), Some(250))
    );
}
