//! Tests of the one connect-before-disconnect parent sets go through
//! ([`crate::switch`], V9, C1): a peer's substream links handed over without a
//! gap, a child resuming from a peer's buffer, a peer back at a reregistration,
//! and a relay's change of parents taking the same path as a peer's.

use crate::parents::{ParentState, RETIRED_GRACE_MS};
use crate::test_fixture::{all, assign, block, feed, logoffs, parent_state, peer, relay, set, CH};
use crate::{Node, NodeConfig};
use bytes::Bytes;
use tiercast_proto::{
    Block, Feed, Message, NodeId, NodeRole, Placement, Timestamp, COORDINATOR_ID,
};

#[test]
fn a_child_far_behind_gets_the_last_second_of_backlog_one_near_all_it_asks() {
    let mut n = peer();
    // 5 s of blocks, 10 a second (origin time seq·100 ms).
    for s in 0..50u64 {
        let t = Timestamp::from_millis(s * 100);
        let b = Block::new(CH, s, t, s % 10 == 0, Bytes::from_static(b"x"));
        let from = if s % 4 < 2 { 5 } else { 6 };
        n.handle_message(t, NodeId(from), Message::Block(b));
    }
    let _ = std::iter::from_fn(|| n.poll_transmit()).count();
    let resume = |n: &mut Node, child: u32, from: u64| -> Vec<u64> {
        n.handle_message(
            Timestamp::from_millis(5000),
            NodeId(child),
            Message::Login {
                channel: CH,
                from_seq: Some(from),
                feed: Feed::All,
            },
        );
        std::iter::from_fn(|| n.poll_transmit())
            .filter_map(|t| match t.msg {
                Message::Block(b) if t.to == NodeId(child) => Some(b.seq),
                _ => None,
            })
            .collect()
    };
    // 4.9 s behind (cut off): older blocks would only hold back the live ones.
    let gap = crate::watch::PEER_RESUME_GAP_MS / 100;
    assert_eq!(resume(&mut n, 30, 0), (49 - gap..50).collect::<Vec<_>>());
    // 2 s behind (a parent switch): everything it asked for.
    let near = 49 - (crate::watch::PEER_RESYNC_MS / 100 - 10);
    assert_eq!(resume(&mut n, 31, near), (near..50).collect::<Vec<_>>());
}

#[test]
fn a_peer_that_kept_its_links_at_a_reregistration_asks_again_if_its_stream_stalls() {
    // Registered, fed until 1.5 s, registered again at 2 s (the coordinator
    // lost it): it looks fed and keeps its links. Its parents were fed from
    // inside a cut: `stall` — nothing more arrives, and one interval later it
    // asks for its place again; otherwise the stream goes on and it does not.
    let watches_at_3s = |stall: bool| -> usize {
        let mut n = peer();
        let registered = Message::Registered {
            heartbeat_interval_ms: 1000,
        };
        n.handle_message(Timestamp::ZERO, COORDINATOR_ID, registered.clone());
        let feed_until = |n: &mut Node, from: u64, to: u64| {
            for s in from..to {
                let t = Timestamp::from_millis(s * 100);
                let b = Block::new(CH, s, t, s % 10 == 0, Bytes::from_static(b"x"));
                n.handle_message(t, NodeId(if s % 4 < 2 { 5 } else { 6 }), Message::Block(b));
            }
        };
        feed_until(&mut n, 0, 16);
        n.handle_message(Timestamp::from_millis(2000), COORDINATOR_ID, registered);
        if !stall {
            feed_until(&mut n, 20, 30);
        }
        let _ = std::iter::from_fn(|| n.poll_transmit()).count();
        n.handle_timeout(Timestamp::from_millis(3000));
        std::iter::from_fn(|| n.poll_transmit())
            .filter(|t| matches!(t.msg, Message::Watch { .. }))
            .count()
    };
    assert_eq!(watches_at_3s(true), 1, "stalled: asks again");
    assert_eq!(watches_at_3s(false), 0, "still fed: keeps its place");
}

#[test]
fn a_peer_the_coordinator_lost_sends_its_links_and_its_watch_right_behind_its_register() {
    // Fed until 1.5 s, then cut off; at 5 s its heartbeat meets "not
    // registered". Register, heartbeat (its links) and Watch (it is unfed) go
    // at once, in that order on the one ordered link — not a round trip later —
    // and the coordinator's answer to the Register sends none of them again.
    let mut n = peer();
    let registered = Message::Registered {
        heartbeat_interval_ms: 1000,
    };
    n.handle_message(Timestamp::ZERO, COORDINATOR_ID, registered.clone());
    for s in 0..16 {
        let t = Timestamp::from_millis(s * 100);
        let b = Block::new(CH, s, t, s % 10 == 0, Bytes::from_static(b"x"));
        n.handle_message(t, NodeId(if s % 4 < 2 { 5 } else { 6 }), Message::Block(b));
    }
    let _ = std::iter::from_fn(|| n.poll_transmit()).count();
    let to_coordinator = |n: &mut Node| -> Vec<&'static str> {
        std::iter::from_fn(|| n.poll_transmit())
            .filter(|t| t.to == COORDINATOR_ID)
            .map(|t| t.msg.kind())
            .collect()
    };
    n.handle_message(
        Timestamp::from_millis(5000),
        COORDINATOR_ID,
        Message::RegisterDenied {
            reason: tiercast_proto::DenyReason::NotRegistered,
        },
    );
    assert_eq!(
        to_coordinator(&mut n),
        vec!["register", "heartbeat", "watch"],
        "all three at once, the Register first"
    );
    n.handle_message(Timestamp::from_millis(5300), COORDINATOR_ID, registered);
    assert_eq!(
        to_coordinator(&mut n),
        Vec::<&str>::new(),
        "nothing sent twice when the Register is answered"
    );
    // Unanswered, the Watch is asked again on its own retry.
    n.handle_timeout(Timestamp::from_millis(6500));
    assert!(to_coordinator(&mut n).contains(&"watch"));
}

#[test]
fn an_old_parent_keeps_its_substreams_until_every_link_taking_them_over_connects() {
    let mut n = peer();
    let t = |ms| Timestamp::ZERO.plus_millis(ms);
    // 5's substreams go to 7 (0) and 8 (1); 6 stays.
    assign(
        &mut n,
        t(100),
        vec![feed(7, &[0]), feed(8, &[1]), feed(6, &[2, 3])],
    );
    assert!(
        logoffs(&mut n).is_empty(),
        "nothing dropped before a new link connects"
    );
    let state = parent_state;
    assert_eq!(state(&n, 5), Some(ParentState::Disconnecting));
    n.handle_message(t(150), NodeId(5), block(4));
    assert!(
        n.channel(CH).unwrap().buffer.get(4).is_some(),
        "5 still feeds"
    );
    n.handle_message(t(200), NodeId(7), Message::LoginAccepted { channel: CH });
    assert!(
        logoffs(&mut n).is_empty(),
        "8 still has to take substream 1 over"
    );
    n.handle_message(t(300), NodeId(8), Message::LoginAccepted { channel: CH });
    assert_eq!(logoffs(&mut n), vec![5]);
    assert_eq!(state(&n, 6), Some(ParentState::Connected), "6 untouched");
}

#[test]
fn a_dropped_parents_blocks_in_flight_are_taken_for_the_grace_only() {
    let mut n = peer();
    let t = |ms| Timestamp::ZERO.plus_millis(ms);
    assign(&mut n, t(100), vec![feed(7, &[0, 1]), feed(6, &[2, 3])]);
    n.handle_message(t(200), NodeId(7), Message::LoginAccepted { channel: CH });
    assert_eq!(logoffs(&mut n), vec![5]);
    n.handle_message(t(250), NodeId(5), block(8));
    assert!(
        n.channel(CH).unwrap().buffer.get(8).is_some(),
        "in flight: taken"
    );
    let late = 200 + RETIRED_GRACE_MS + 1;
    n.handle_message(t(late), NodeId(5), block(9));
    assert!(
        n.channel(CH).unwrap().buffer.get(9).is_none(),
        "after the grace: refused"
    );
}

#[test]
fn a_replacement_that_never_connects_drops_the_old_parent_after_the_timeout() {
    let mut n = peer();
    let t = |ms| Timestamp::ZERO.plus_millis(ms);
    assign(&mut n, t(100), vec![feed(7, &[0, 1]), feed(6, &[2, 3])]);
    n.handle_timeout(t(1100));
    assert!(logoffs(&mut n).is_empty());
    n.handle_timeout(t(100 + crate::parents::REPLACE_TIMEOUT_MS + 1000));
    assert_eq!(logoffs(&mut n), vec![5]);
}

/// One node (a relay or a peer) moved from parent `old` to parent `new`, both
/// pushing everything, by a parent set of `placement`, while blocks flow: the
/// old keeps pushing until the new one is connected, the new one resumes at
/// the next seq, the old one's blocks in flight are taken, and every block
/// reaches the node (and, for the relay, its child 99).
fn switch_keeps_every_block(mut n: Node, placement: Placement, old: u32, new: u32) {
    let t = |ms| Timestamp::ZERO.plus_millis(ms);
    let deliver = |n: &mut Node, from: u32, seq: u64| {
        n.handle_message(t(seq * 100), NodeId(from), block(seq));
    };
    for s in 0..10 {
        deliver(&mut n, old, s);
    }
    let _ = std::iter::from_fn(|| n.poll_transmit()).count();
    set(&mut n, t(950), 2, placement, vec![all(new)]);
    let mut out: Vec<(u32, Message)> = std::iter::from_fn(|| n.poll_transmit())
        .map(|t| (t.to.0, t.msg))
        .collect();
    assert!(
        !out.iter().any(|(_, m)| matches!(m, Message::Logoff { .. })),
        "nothing dropped before the new parent is connected"
    );
    assert!(
        out.iter().any(|(to, m)| *to == new
            && matches!(
                m,
                Message::Login {
                    from_seq: Some(10),
                    ..
                }
            )),
        "the new parent is asked from the next seq: {out:?}"
    );
    let state = parent_state;
    assert_eq!(state(&n, old), Some(ParentState::Disconnecting));
    // The old parent still feeds while the new one connects.
    deliver(&mut n, old, 10);
    deliver(&mut n, old, 11);
    n.handle_message(t(1150), NodeId(new), Message::LoginAccepted { channel: CH });
    out.extend(std::iter::from_fn(|| n.poll_transmit()).map(|t| (t.to.0, t.msg)));
    let dropped: Vec<u32> = out
        .iter()
        .filter(|(_, m)| matches!(m, Message::Logoff { .. }))
        .map(|(to, _)| *to)
        .collect();
    assert_eq!(
        dropped,
        vec![old],
        "the old parent goes once the new delivers"
    );
    // The old one's last block in flight (taken), then the new parent's backlog
    // and stream.
    n.handle_message(t(1200), NodeId(old), block(12));
    for s in 10..20 {
        n.handle_message(t(1200 + s * 10), NodeId(new), block(s));
    }
    let ch = n.channel(CH).unwrap();
    for s in 0..20 {
        assert!(ch.buffer.get(s).is_some(), "block {s} kept");
    }
    if n.config().role == NodeRole::Relay {
        let to_child: Vec<u64> = out
            .into_iter()
            .chain(std::iter::from_fn(|| n.poll_transmit()).map(|t| (t.to.0, t.msg)))
            .filter_map(|(to, m)| match m {
                Message::Block(b) if to == 99 => Some(b.seq),
                _ => None,
            })
            .collect();
        for s in 10..20 {
            assert!(to_child.contains(&s), "block {s} forwarded to the child");
        }
    }
}

#[test]
fn a_relay_and_a_peer_change_parents_by_the_same_make_before_break() {
    let reparent = Placement::Tier {
        tier: 2,
        activate: false,
    };
    switch_keeps_every_block(relay(), reparent, 11, 12);
    // A peer fed everything by 5 (set 1), moved to 7 by set 2.
    let cfg = NodeConfig {
        id: NodeId(9),
        role: NodeRole::Peer,
        verify_blocks: false,
        ..NodeConfig::default()
    };
    let mut p = Node::new(cfg, Timestamp::ZERO);
    set(&mut p, Timestamp::ZERO, 1, Placement::Member, vec![all(5)]);
    p.handle_message(
        Timestamp::ZERO,
        NodeId(5),
        Message::LoginAccepted { channel: CH },
    );
    let _ = std::iter::from_fn(|| p.poll_transmit()).count();
    switch_keeps_every_block(p, Placement::Member, 5, 7);
}

#[test]
fn a_relays_replacement_that_never_connects_drops_the_old_parent_after_the_timeout() {
    let mut n = relay();
    let t = |ms| Timestamp::ZERO.plus_millis(ms);
    let reparent = Placement::Tier {
        tier: 2,
        activate: false,
    };
    set(&mut n, t(100), 2, reparent, vec![all(12)]);
    n.handle_timeout(t(1100));
    assert!(logoffs(&mut n).is_empty());
    n.handle_timeout(t(100 + crate::parents::REPLACE_TIMEOUT_MS + 1000));
    assert_eq!(logoffs(&mut n), vec![11]);
}
