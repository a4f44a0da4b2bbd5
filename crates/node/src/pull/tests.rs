//! Tests of the lazy links' Have / Want / WantUnmet repair (D3).

use crate::test_fixture::{parent as feed, CH};
use crate::{Node, NodeConfig};
use bytes::Bytes;
use tiercast_proto::{
    Block, ChannelDesc, Feed, Message, NodeId, NodeRole, SubstreamSet, Timestamp, COORDINATOR_ID,
};

fn block(seq: u64) -> Message {
    // 2 KB: forty of them exceed a second of a 1000 kbps repair share.
    Message::Block(Block::new(
        CH,
        seq,
        Timestamp(seq),
        false,
        Bytes::from(vec![0u8; 2000]),
    ))
}

fn sent(n: &mut Node) -> Vec<(NodeId, Message)> {
    std::iter::from_fn(|| n.poll_transmit())
        .map(|t| (t.to, t.msg))
        .collect()
}

/// What the node sends until its uplink cap (a peer's) has let every queued block out.
fn sent_paced(n: &mut Node) -> Vec<(NodeId, Message)> {
    let mut out = sent(n);
    for _ in 0..10_000 {
        if n.uplink_stats().is_none_or(|u| u.queued_blocks == 0) {
            break;
        }
        let due = n.poll_timeout().expect("queued blocks keep a timer");
        n.handle_timeout(due);
        out.extend(sent(n));
    }
    out
}

/// A peer with a push parent (node 5, all substreams) and a lazy parent (node 6).
fn peer() -> Node {
    peer_with_lazy(&[6])
}

/// A peer with a push parent (node 5, all substreams) and these lazy parents.
fn peer_with_lazy(lazy: &[u32]) -> Node {
    let all = SubstreamSet::all(4).unwrap();
    let mut parents = vec![(5, Feed::Substreams(all))];
    parents.extend(lazy.iter().map(|l| (*l, Feed::Lazy)));
    peer_with_parents(&parents)
}

/// Peer 9 (uplink 1000 kbps) logged in at these parents, with these feeds.
fn peer_with_parents(parents: &[(u32, Feed)]) -> Node {
    let cfg = NodeConfig {
        id: NodeId(9),
        role: NodeRole::Peer,
        uplink_kbps: 1000,
        verify_blocks: false,
        ..NodeConfig::default()
    };
    let mut n = Node::new(cfg, Timestamp::ZERO);
    let desc = ChannelDesc {
        id: CH,
        name: "live".into(),
        public_key: [0; 32],
    };
    n.handle_message(
        Timestamp::ZERO,
        COORDINATOR_ID,
        Message::ParentSet {
            channel: desc,
            version: 1,
            placement: tiercast_proto::Placement::Member,
            parents: parents.iter().map(|(id, f)| feed(*id, *f)).collect(),
        },
    );
    for (p, _) in parents {
        n.handle_message(
            Timestamp::ZERO,
            NodeId(*p),
            Message::LoginAccepted { channel: CH },
        );
    }
    let logins: Vec<(NodeId, Feed)> = sent(&mut n)
        .into_iter()
        .filter_map(|(to, m)| match m {
            Message::Login { feed, .. } => Some((to, feed)),
            _ => None,
        })
        .collect();
    let expected: Vec<(NodeId, Feed)> = parents.iter().map(|(p, f)| (NodeId(*p), *f)).collect();
    assert_eq!(logins, expected);
    n
}

/// Seqs asked of each lazy parent.
fn wants_by(n: &mut Node) -> std::collections::BTreeMap<u32, Vec<u64>> {
    let mut by = std::collections::BTreeMap::<u32, Vec<u64>>::new();
    for (to, m) in sent(n) {
        if let Message::Want { seqs, .. } = m {
            by.entry(to.0).or_default().extend(seqs);
        }
    }
    by
}

/// Lazy parents `from` announce `highest` at `at`.
fn announce(n: &mut Node, at: Timestamp, from: &[u32], highest: u64) {
    for l in from {
        n.handle_message(
            at,
            NodeId(*l),
            Message::Have {
                channel: CH,
                highest,
            },
        );
    }
}

#[test]
fn a_broken_push_parent_is_repaired_from_every_lazy_parent_and_a_seq_asked_again_goes_to_the_next()
{
    let mut n = peer_with_lazy(&[6, 7]);
    let t = |ms| Timestamp::ZERO.plus_millis(ms);
    for s in 0..4u64 {
        n.handle_message(t(10), NodeId(5), block(s));
    }
    // The push parent falls silent; both lazy parents hold up to 11.
    announce(&mut n, t(20), &[6, 7], 11);
    n.handle_timeout(t(1100));
    let first = wants_by(&mut n);
    let (six, seven) = (first[&6].clone(), first[&7].clone());
    assert!(!six.is_empty() && !seven.is_empty(), "spread: {first:?}");
    let mut all: Vec<u64> = six.iter().chain(&seven).copied().collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (4..=11).collect::<Vec<_>>(),
        "each missing seq asked once"
    );
    // Nothing came back: after the delay each seq goes to the other holder.
    n.handle_timeout(t(2200));
    let again = wants_by(&mut n);
    assert_eq!(again[&6], seven, "6 is asked what 7 did not send");
    assert_eq!(again[&7], six, "7 is asked what 6 did not send");
}

fn wants(n: &mut Node) -> Vec<u64> {
    sent(n)
        .into_iter()
        .filter_map(|(to, m)| match m {
            Message::Want { seqs, .. } if to == NodeId(6) => Some(seqs),
            _ => None,
        })
        .flatten()
        .collect()
}

#[test]
fn a_gap_announced_by_a_lazy_parent_is_pulled_once_after_the_delay() {
    let mut n = peer();
    let t = |ms| Timestamp::ZERO.plus_millis(ms);
    for s in [0u64, 1, 3, 4] {
        n.handle_message(t(10), NodeId(5), block(s));
    }
    announce(&mut n, t(20), &[6], 4);
    n.handle_timeout(t(200));
    assert!(wants(&mut n).is_empty(), "not before the pull delay");
    n.handle_timeout(t(1100));
    assert_eq!(
        wants(&mut n),
        vec![2],
        "only the gap, not what push parents bring"
    );
    n.handle_timeout(t(1300));
    assert!(wants(&mut n).is_empty(), "not asked again within the delay");
    n.handle_message(t(1350), NodeId(6), block(2));
    assert_eq!(n.channel(CH).unwrap().pull.pulled, 1);
    n.handle_timeout(t(2500));
    assert!(wants(&mut n).is_empty(), "nothing missing any more");
}

/// [`peer`] holding seqs 0..40, with node 7 logged in as its lazy child.
fn peer_serving_lazy_child_7() -> Node {
    let mut n = peer();
    let t = |ms| Timestamp::ZERO.plus_millis(ms);
    n.handle_message(
        t(0),
        NodeId(7),
        Message::Login {
            channel: CH,
            from_seq: None,
            feed: Feed::Lazy,
        },
    );
    for s in 0..40u64 {
        n.handle_message(t(1), NodeId(5), block(s));
    }
    sent(&mut n);
    n
}

#[test]
fn a_parent_answers_wants_within_its_repair_budget_and_announces_to_lazy_children() {
    let mut n = peer_serving_lazy_child_7();
    let t = |ms| Timestamp::ZERO.plus_millis(ms);
    n.handle_timeout(t(200));
    let haves: Vec<u64> = sent(&mut n)
        .into_iter()
        .filter_map(|(to, m)| match m {
            Message::Have { highest, .. } if to == NodeId(7) => Some(highest),
            _ => None,
        })
        .collect();
    assert_eq!(haves, vec![39]);
    // 1000 kbps × 0.2 = 25 000 bytes/s of repair; a second saved up at most.
    n.handle_message(
        t(5000),
        NodeId(7),
        Message::Want {
            channel: CH,
            seqs: (0..40).collect(),
        },
    );
    let answered = sent(&mut n).iter().filter(|(_, m)| m.is_block()).count();
    assert!(
        answered > 0 && answered < 40,
        "bounded by the budget: {answered}"
    );
    assert_eq!(n.stats().repairs_refused, 1);
    // A node that is not a child is not served.
    n.handle_message(
        t(9000),
        NodeId(8),
        Message::Want {
            channel: CH,
            seqs: vec![1],
        },
    );
    assert!(sent(&mut n).iter().all(|(_, m)| !m.is_block()));
}

#[test]
fn a_want_the_parent_cannot_meet_is_answered_with_what_it_did_not_send() {
    let mut n = peer_serving_lazy_child_7();
    let t = |ms| Timestamp::ZERO.plus_millis(ms);
    // 25 000 bytes of repair a second: about a dozen 2 KB blocks, then the
    // rest is unmet; seq 99 is not held at all.
    let asked: Vec<u64> = (0..40).chain([99]).collect();
    n.handle_message(
        t(5000),
        NodeId(7),
        Message::Want {
            channel: CH,
            seqs: asked.clone(),
        },
    );
    let out = sent_paced(&mut n);
    let served: Vec<u64> = out
        .iter()
        .filter_map(|(_, m)| match m {
            Message::Block(b) => Some(b.seq),
            _ => None,
        })
        .collect();
    let unmet: Vec<u64> = out
        .iter()
        .filter_map(|(to, m)| match m {
            Message::WantUnmet { seqs, .. } if *to == NodeId(7) => Some(seqs.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    assert!(!served.is_empty() && served.len() < 40, "{served:?}");
    let mut all: Vec<u64> = served.iter().chain(&unmet).copied().collect();
    all.sort_unstable();
    assert_eq!(all, asked, "every seq is either sent or said unmet");
    assert_eq!(unmet.last(), Some(&99));
    // A want met in full gets no answer besides its blocks.
    n.handle_message(
        t(9000),
        NodeId(7),
        Message::Want {
            channel: CH,
            seqs: vec![1],
        },
    );
    assert!(sent(&mut n)
        .iter()
        .all(|(_, m)| !matches!(m, Message::WantUnmet { .. })));
}

#[test]
fn an_unmet_want_goes_to_the_next_holder_at_the_next_round_not_after_the_delay() {
    let mut n = peer_with_lazy(&[6, 7]);
    let t = |ms| Timestamp::ZERO.plus_millis(ms);
    for s in [0u64, 1, 3] {
        n.handle_message(t(10), NodeId(5), block(s));
    }
    announce(&mut n, t(20), &[6, 7], 3);
    n.handle_timeout(t(1100));
    let first = wants_by(&mut n);
    let (holder, seqs) = first.iter().next().expect("seq 2 is asked");
    assert_eq!(seqs, &vec![2]);
    n.handle_timeout(t(1300));
    assert!(wants_by(&mut n).is_empty(), "unanswered: wait the delay");
    n.handle_message(
        t(1350),
        NodeId(*holder),
        Message::WantUnmet {
            channel: CH,
            seqs: vec![2],
        },
    );
    n.handle_timeout(t(1500));
    let again = wants_by(&mut n);
    assert_eq!(
        again.values().flatten().collect::<Vec<_>>(),
        vec![&2],
        "asked again at the next round, not after the delay: {again:?}"
    );
    // Push parent 5 has been silent for the delay: the seq's substream is
    // orphaned, so after the unmet answer 5 may be asked too (tries rotate).
    assert!(again.keys().all(|k| [5, 6, 7].contains(k)));
    assert_eq!(n.channel(CH).unwrap().pull.unmet, 1);
    // From a node that is not a parent, the answer is ignored.
    n.handle_message(
        t(1600),
        NodeId(8),
        Message::WantUnmet {
            channel: CH,
            seqs: vec![2],
        },
    );
    n.handle_timeout(t(1700));
    assert!(wants_by(&mut n).is_empty());
    assert_eq!(n.channel(CH).unwrap().pull.unmet, 1);
}

#[test]
fn a_dead_siblings_substream_the_lazy_parent_cannot_send_is_asked_of_the_live_push_parents() {
    // Push parent 5 carries substreams 0 and 1, parent 4 carries 2 and 3 and
    // dies after seq 1; lazy parent 6 announces.
    let two = |a, b| Feed::Substreams(SubstreamSet::single(4, a).unwrap().with(b));
    let mut n = peer_with_parents(&[(4, two(2, 3)), (5, two(0, 1)), (6, Feed::Lazy)]);
    let t = |ms| Timestamp::ZERO.plus_millis(ms);
    // Seqs 0..16: 5 delivers its substreams throughout, 4 only up to seq 3.
    for s in 0..16u64 {
        let from = if s % 4 < 2 { 5 } else { 4 };
        if from == 5 || s < 4 {
            n.handle_message(t(10), NodeId(from), block(s));
        }
    }
    announce(&mut n, t(20), &[6], 15);
    n.handle_timeout(t(1100));
    let first = wants_by(&mut n);
    assert_eq!(
        first.get(&6),
        Some(&vec![6, 7, 10, 11, 14, 15]),
        "first the lazy parent alone: {first:?}"
    );
    // Its budget is spent: the dead substreams go to the live push parent too.
    n.handle_message(
        t(1150),
        NodeId(6),
        Message::WantUnmet {
            channel: CH,
            seqs: vec![6, 7, 10, 11, 14, 15],
        },
    );
    n.handle_timeout(t(1300));
    let by = wants_by(&mut n);
    let mut all: Vec<u64> = by.values().flatten().copied().collect();
    all.sort_unstable();
    assert_eq!(all, vec![6, 7, 10, 11, 14, 15], "the dead substreams");
    assert!(
        by.contains_key(&5) && by.contains_key(&6),
        "spread over the lazy parent and the live push parent: {by:?}"
    );
    assert!(!by.contains_key(&4), "not the parent that stopped: {by:?}");
    // A repair on a push link counts as pulled.
    let to_five = by[&5].clone();
    for s in &to_five {
        n.handle_message(t(1350), NodeId(5), block(*s));
    }
    assert_eq!(n.channel(CH).unwrap().pull.pulled, to_five.len() as u64);
}

/// The uplink cap (C4) as the node runs it: a peer pushing a stream twice its
/// declared uplink to a child sends no faster than its uplink in any second, never
/// sends a block that waited longer than `uplink_max_wait_ms`, and counts the rest.
#[test]
fn a_peer_pushes_no_faster_than_its_uplink_and_drops_what_would_arrive_late() {
    let mut n = peer();
    let all = SubstreamSet::all(4).unwrap();
    n.handle_message(
        Timestamp::ZERO,
        NodeId(7),
        Message::Login {
            channel: CH,
            from_seq: None,
            feed: Feed::Substreams(all),
        },
    );
    sent(&mut n);
    // 2 Mbit/s of 2 KB blocks (one every 8 ms) for 5 s; the uplink is 1 Mbit/s.
    let mut out: Vec<(Timestamp, u64)> = Vec::new();
    let mut now = Timestamp::ZERO;
    for s in 0..625u64 {
        let at = Timestamp::ZERO.plus_millis(8 * s);
        while let Some(due) = n.poll_timeout().filter(|d| *d < at) {
            now = due.max(now);
            n.handle_timeout(now);
            out.extend(pushed_to_7(&mut n, now));
        }
        now = at;
        n.handle_message(now, NodeId(5), block(s));
        out.extend(pushed_to_7(&mut n, now));
    }
    let frame = (4 + 2 + tiercast_proto::codec::BLOCK_HEADER_LEN + 2000) as u64;
    // 125 000 B/s plus the 100 ms bucket.
    for w in 0..5u64 {
        let bytes = frame
            * out
                .iter()
                .filter(|(t, _)| t.as_micros() / 1_000_000 == w)
                .count() as u64;
        assert!(bytes <= 125_000 + 12_500, "second {w}: {bytes} B");
    }
    let max_wait_us = n.config().uplink_max_wait_ms * 1000;
    for (t, seq) in &out {
        let made = Timestamp::ZERO.plus_millis(8 * seq);
        assert!(
            t.saturating_since(made) <= max_wait_us,
            "seq {seq} sent at {t:?}"
        );
    }
    let up = n.uplink_stats().expect("a peer paces its uplink");
    // Half the stream cannot leave: it is counted, full queue or too late.
    assert!(up.stale_blocks + up.dropped_blocks > 250, "{up:?}");
    assert_eq!(up.sent_blocks, out.len() as u64);
    assert!(up.charged_bytes > 0, "control is charged: {up:?}");
}

fn pushed_to_7(n: &mut Node, now: Timestamp) -> Vec<(Timestamp, u64)> {
    sent(n)
        .into_iter()
        .filter_map(|(to, m)| match m {
            Message::Block(b) if to == NodeId(7) => Some((now, b.seq)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_block_its_live_push_parent_has_not_reached_yet_is_on_its_way_not_pulled() {
    // Parent 5 pushes substreams 0 and 1, parent 8 pushes 2 and 3 along a slower
    // path; node 6 is the lazy parent.
    let two = |a, b| Feed::Substreams(SubstreamSet::single(4, a).unwrap().with(b));
    let mut n = peer_with_parents(&[(5, two(0, 1)), (8, two(2, 3)), (6, Feed::Lazy)]);
    let t = |ms| Timestamp::ZERO.plus_millis(ms);
    for s in (0..=20u64).filter(|s| s % 4 < 2) {
        n.handle_message(t(10), NodeId(5), block(s));
    }
    // Parent 8 is alive (its last block came just now) but behind: up to seq 7.
    for s in [2u64, 3, 6, 7] {
        n.handle_message(t(1050), NodeId(8), block(s));
    }
    announce(&mut n, t(20), &[6], 20);
    n.handle_timeout(t(1100));
    assert!(
        wants(&mut n).is_empty(),
        "substreams 2 and 3 above seq 7 are on their way from parent 8"
    );
    // Parent 8 moves on to 14 without 10 and 11: those are gaps now.
    n.handle_message(t(1150), NodeId(8), block(14));
    n.handle_timeout(t(2100));
    assert_eq!(wants(&mut n), vec![10, 11], "only what parent 8 passed by");
}

#[test]
fn a_new_childs_start_at_the_keyframe_comes_out_of_the_repair_budget_whole_or_not_at_all() {
    let mut n = peer();
    // 5 s of 4 KB blocks from push parent 5, ten a second, a keyframe every ten.
    for s in 0..50u64 {
        let t = Timestamp::from_millis(s * 100);
        let b = Block::new(CH, s, t, s % 10 == 0, Bytes::from(vec![0u8; 4000]));
        n.handle_message(t, NodeId(5), Message::Block(b));
    }
    let _ = sent_paced(&mut n);
    let now = Timestamp::from_millis(5000);
    let login = |n: &mut Node, child: u32, feed: Feed| -> Vec<u64> {
        n.handle_message(
            now,
            NodeId(child),
            Message::Login {
                channel: CH,
                from_seq: None,
                feed,
            },
        );
        sent_paced(n)
            .into_iter()
            .filter_map(|(to, m)| match m {
                Message::Block(b) if to == NodeId(child) => Some(b.seq),
                _ => None,
            })
            .collect()
    };
    // Peer 9's repair budget: a second of 20 % of 1000 kbit/s, 25 kB.
    let one = Feed::Substreams(SubstreamSet::single(4, 0).unwrap());
    assert_eq!(login(&mut n, 31, one), vec![40, 44, 48], "12 kB: fits");
    assert!(
        login(&mut n, 30, Feed::All).is_empty(),
        "40 kB more does not: it starts at the live edge"
    );
    assert_eq!(n.stats().backlogs_skipped, 1);
}

#[test]
fn a_new_child_started_at_the_live_edge_is_not_pushed_a_block_repaired_from_before_its_start() {
    let mut n = peer();
    // 5 s of 4 KB blocks from push parent 5, ten a second; 25 and 45 are late.
    let stream = |s: u64| {
        let t = Timestamp::from_millis(s * 100);
        (
            t,
            Block::new(CH, s, t, s.is_multiple_of(10), Bytes::from(vec![0u8; 4000])),
        )
    };
    for s in (0..50u64).filter(|s| *s != 25 && *s != 45) {
        let (t, b) = stream(s);
        n.handle_message(t, NodeId(5), Message::Block(b));
    }
    let _ = sent_paced(&mut n);
    let now = Timestamp::from_millis(5000);
    let pushed_to_30 = |n: &mut Node| -> Vec<u64> {
        sent_paced(n)
            .into_iter()
            .filter_map(|(to, m)| match m {
                Message::Block(b) if to == NodeId(30) => Some(b.seq),
                _ => None,
            })
            .collect()
    };
    // A backlog of 40 kB is more than the repair budget: child 30 starts at
    // the live edge.
    n.handle_message(
        now,
        NodeId(30),
        Message::Login {
            channel: CH,
            from_seq: None,
            feed: Feed::All,
        },
    );
    assert!(pushed_to_30(&mut n).is_empty());
    assert_eq!(n.stats().backlogs_skipped, 1);
    // 25 comes late (a repair): 2.4 s older than the newest at the LOGIN, the
    // child joined after it. 45 is within the second substream paths differ by.
    for s in [25u64, 45, 50] {
        let (_, b) = stream(s);
        n.handle_message(now, NodeId(5), Message::Block(b));
    }
    assert_eq!(pushed_to_30(&mut n), vec![45, 50]);
}
