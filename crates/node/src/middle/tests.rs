//! D5 through whole nodes: signed blocks, coded links, shards in messages.

use super::{block_body, block_from_body, DECODE_WINDOW_GROUPS};
use crate::strategy::erasure::{ErasureEncoder, ErasureParams};
use crate::{Event, Node, NodeConfig};
use bytes::Bytes;
use tiercast_proto::{
    Block, ChannelDesc, ChannelId, CodedSet, Feed, Message, NodeId, NodeRole, OriginKey, PeerFeed,
    PeerInfo, Timestamp, COORDINATOR_ID,
};

const CH: ChannelId = ChannelId(1);
const K: u8 = 4;
const N: u8 = 2;

fn t(ms: u64) -> Timestamp {
    Timestamp::ZERO.plus_millis(ms)
}

/// Block `seq`, signed, with payloads of unequal lengths and some keyframes.
fn signed(key: &OriginKey, seq: u64) -> Block {
    let len = 100 + (seq % 7) as usize * 13;
    let mut b = Block::new(
        CH,
        seq,
        t(1000 + seq * 40),
        seq.is_multiple_of(8),
        Bytes::from(vec![seq as u8; len]),
    );
    key.sign(&mut b);
    b
}

fn coded(indices: &[u8]) -> Feed {
    let set = indices
        .iter()
        .fold(CodedSet::empty(K, N).unwrap(), |s, i| s.with(*i));
    Feed::Coded(set)
}

fn all_coded() -> Feed {
    coded(&(0..K + N).collect::<Vec<_>>())
}

/// The recovery shards of `group` as its origin's blocks make them.
fn recovery(key: &OriginKey, group: u64) -> Vec<Bytes> {
    let k = u64::from(K);
    let bodies: Vec<Bytes> = (group * k..group * k + k)
        .map(|s| block_body(&signed(key, s)))
        .collect();
    let params = ErasureParams::new(usize::from(K), usize::from(N)).unwrap();
    ErasureEncoder::new(params).encode_group(&bodies).unwrap()
}

fn shard(group: u64, index: u8, data: &[u8]) -> Message {
    Message::Shard {
        channel: CH,
        group,
        k: K,
        n: N,
        index,
        data: data.to_vec(),
    }
}

fn sent(n: &mut Node) -> Vec<(NodeId, Message)> {
    std::iter::from_fn(|| n.poll_transmit())
        .map(|t| (t.to, t.msg))
        .collect()
}

/// A peer playing channel CH from these parents (logged in and accepted).
fn peer(id: u32, key: &OriginKey, parents: &[(u32, Feed)]) -> Node {
    let cfg = NodeConfig {
        id: NodeId(id),
        role: NodeRole::Peer,
        uplink_kbps: 10_000,
        ..NodeConfig::default()
    };
    let mut n = Node::new(cfg, Timestamp::ZERO);
    let channel = ChannelDesc {
        id: CH,
        name: "live".into(),
        public_key: key.public_key(),
    };
    let parents = parents
        .iter()
        .map(|(p, feed)| PeerFeed {
            peer: PeerInfo {
                id: NodeId(*p),
                addr: String::new(),
                http_addr: String::new(),
            },
            feed: *feed,
        })
        .collect();
    n.handle_message(
        t(0),
        COORDINATOR_ID,
        Message::ParentSet {
            channel,
            version: 1,
            placement: tiercast_proto::Placement::Member,
            parents,
        },
    );
    let logins: Vec<NodeId> = sent(&mut n)
        .into_iter()
        .filter(|(_, m)| matches!(m, Message::Login { .. }))
        .map(|(to, _)| to)
        .collect();
    for p in logins {
        n.handle_message(t(0), p, Message::LoginAccepted { channel: CH });
    }
    while n.poll_event().is_some() {}
    n
}

fn stored(n: &Node, seq: u64) -> Option<Block> {
    n.channel(CH).and_then(|c| c.buffer.get(seq).cloned())
}

#[test]
fn a_block_body_round_trips() {
    let key = OriginKey::generate().unwrap();
    let b = signed(&key, 8);
    assert_eq!(block_from_body(CH, 8, &block_body(&b)), Some(b));
    assert_eq!(block_from_body(CH, 8, &Bytes::from_static(&[0; 72])), None);
}

#[test]
fn any_k_of_a_group_rebuild_its_missing_blocks_which_are_forwarded_signed() {
    let key = OriginKey::generate().unwrap();
    let mut n = peer(9, &key, &[(5, all_coded())]);
    n.handle_message(
        t(0),
        NodeId(7),
        Message::Login {
            channel: CH,
            from_seq: None,
            feed: Feed::All,
        },
    );
    sent(&mut n);
    // Group g loses the pair of originals number g - 1 (all six pairs of four);
    // group 0 is whole (the buffer starts at the first block it gets).
    let pairs = [(9, 9), (0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)];
    for (g, (a, b)) in pairs.iter().enumerate() {
        let g = g as u64;
        let shards = recovery(&key, g);
        let originals = (0..u64::from(K)).filter(|i| i != a && i != b);
        let send_shards = |n: &mut Node| {
            for (j, s) in shards.iter().enumerate() {
                n.handle_message(t(100 + g), NodeId(5), shard(g, j as u8, s));
            }
        };
        if g % 2 == 1 {
            send_shards(&mut n);
        }
        for i in originals {
            let seq = g * u64::from(K) + i;
            n.handle_message(t(100 + g), NodeId(5), Message::Block(signed(&key, seq)));
        }
        if g.is_multiple_of(2) {
            send_shards(&mut n);
        }
    }
    let total = pairs.len() as u64 * u64::from(K);
    for seq in 0..total {
        assert_eq!(stored(&n, seq), Some(signed(&key, seq)), "seq {seq}");
    }
    let mut forwarded: Vec<u64> = sent(&mut n)
        .into_iter()
        .filter_map(|(to, m)| match m {
            Message::Block(b) if to == NodeId(7) => {
                assert_eq!(b, signed(&key, b.seq));
                Some(b.seq)
            }
            _ => None,
        })
        .collect();
    forwarded.sort_unstable();
    assert_eq!(forwarded, (0..total).collect::<Vec<_>>());
    let s = n.stats();
    assert_eq!((s.groups_rebuilt, s.blocks_rebuilt), (6, 12));
    assert_eq!(
        (s.shards_in, s.shards_invalid, s.invalid_messages),
        (14, 0, 0)
    );
    let hb = n.heartbeat(t(200));
    assert_eq!(hb.channels[0].groups_rebuilt, 6);
    let rebuilt_events = std::iter::from_fn(|| n.poll_event())
        .filter(|e| matches!(e, Event::BlockStored { .. }))
        .count();
    assert_eq!(
        rebuilt_events as u64, total,
        "rebuilt blocks are played too"
    );
}

#[test]
fn a_parent_sends_its_coded_children_their_recovery_shards_and_they_rebuild() {
    let key = OriginKey::generate().unwrap();
    let mut parent = peer(5, &key, &[(3, Feed::All)]);
    // Child 9 misses substream 3 and gets recovery shard 1; child 10 (not driven)
    // gets substream 3 and recovery shard 0.
    let mut child = peer(9, &key, &[(5, coded(&[0, 1, 2, K + 1]))]);
    for (id, feed) in [(9, coded(&[0, 1, 2, K + 1])), (10, coded(&[3, K]))] {
        parent.handle_message(
            t(0),
            NodeId(id),
            Message::Login {
                channel: CH,
                from_seq: None,
                feed,
            },
        );
    }
    sent(&mut parent);
    let groups = 5u64;
    let mut to_ten = Vec::new();
    for seq in 0..groups * u64::from(K) {
        parent.handle_message(t(100 + seq), NodeId(3), Message::Block(signed(&key, seq)));
        for (to, msg) in sent(&mut parent) {
            match (to.0, &msg) {
                (9, Message::Block(b)) => assert_ne!(b.seq % 4, 3, "not in 9's feed"),
                (9, Message::Shard { index, .. }) => assert_eq!(*index, 1),
                (10, Message::Shard { group, index, .. }) => to_ten.push((*group, *index)),
                _ => {}
            }
            if to == NodeId(9) {
                child.handle_message(t(120 + seq), NodeId(5), msg);
            }
        }
    }
    assert_eq!(to_ten, (0..groups).map(|g| (g, 0)).collect::<Vec<_>>());
    assert_eq!(parent.stats().shards_out, 2 * groups);
    assert_eq!(
        parent
            .channel(CH)
            .unwrap()
            .middle
            .encoding()
            .collect::<Vec<_>>(),
        vec![(K, N)],
        "one encoder for the one layout"
    );
    for seq in 0..groups * u64::from(K) {
        assert_eq!(stored(&child, seq), Some(signed(&key, seq)), "seq {seq}");
    }
    // Once no coded child is left, the encoder goes.
    for id in [9, 10] {
        parent.handle_message(t(900), NodeId(id), Message::Logoff { channel: CH });
    }
    let next = groups * u64::from(K);
    parent.handle_message(t(901), NodeId(3), Message::Block(signed(&key, next)));
    assert_eq!(parent.channel(CH).unwrap().middle.encoding().count(), 0);
    let s = child.stats();
    assert_eq!(
        (s.shards_in, s.blocks_rebuilt, s.groups_rebuilt),
        (groups, groups, groups)
    );
    assert_eq!(s.invalid_messages, 0);
}

#[test]
fn loss_counters_follow_the_shards_withheld_once_groups_close() {
    let key = OriginKey::generate().unwrap();
    let mut n = peer(9, &key, &[(5, all_coded())]);
    let groups = 50u64;
    let lost_whole = 30u64;
    for g in (0..groups).filter(|g| *g != lost_whole) {
        for seq in g * u64::from(K)..(g + 1) * u64::from(K) {
            n.handle_message(t(seq), NodeId(5), Message::Block(signed(&key, seq)));
        }
        // Recovery shard 1 never arrives.
        let shards = recovery(&key, g);
        n.handle_message(t(g * 4), NodeId(5), shard(g, 0, &shards[0]));
    }
    // Groups below 49 - 16 have closed: 0..=32, group 30 lost whole.
    let closed = groups - 1 - DECODE_WINDOW_GROUPS;
    let total = u64::from(K + N);
    let hb = n.heartbeat(t(5000));
    let report = &hb.channels[0];
    assert_eq!(report.shards_expected, closed * total);
    assert_eq!(report.shards_received, (closed - 1) * (total - 1));
    assert_eq!(report.groups_rebuilt, 0);
    let middle = &n.channel(CH).unwrap().middle;
    assert!(middle.open_groups() as u64 <= DECODE_WINDOW_GROUPS + 1);
    assert_eq!(
        middle.decoding(),
        Some(ErasureParams::new(usize::from(K), usize::from(N)).unwrap())
    );
}

#[test]
fn malformed_shards_are_refused_and_counted_without_panic() {
    let key = OriginKey::generate().unwrap();
    let mut n = peer(9, &key, &[(5, coded(&[0, 1, 2, 3, K])), (6, Feed::All)]);
    let good = recovery(&key, 0);
    let refused = [
        (8, shard(0, 0, &good[0])),        // not a parent
        (6, shard(0, 0, &good[0])),        // a parent whose link is not coded
        (5, shard(0, 1, &good[1])),        // not in the link's recovery shards
        (5, shard(0, 200, &good[0])),      // index out of range
        (5, shard(u64::MAX, 0, &good[0])), // group beyond any seq
        (
            5,
            Message::Shard {
                channel: CH,
                group: 0,
                k: 3,
                n: N,
                index: 0,
                data: good[0].to_vec(),
            },
        ),
        (
            5,
            Message::Shard {
                channel: ChannelId(2),
                group: 0,
                k: K,
                n: N,
                index: 0,
                data: good[0].to_vec(),
            },
        ),
    ];
    let count = refused.len() as u64;
    for (from, msg) in refused {
        n.handle_message(t(10), NodeId(from), msg);
    }
    assert_eq!(n.stats().invalid_messages, count);
    assert_eq!(n.stats().shards_invalid, count);
    assert_eq!(n.stats().shards_in, 0);

    // Group 0: truncated and empty data are refused by the decoder.
    for seq in [0, 1] {
        n.handle_message(t(20), NodeId(5), Message::Block(signed(&key, seq)));
    }
    n.handle_message(t(20), NodeId(5), shard(0, 0, &good[0][..10]));
    n.handle_message(t(20), NodeId(5), shard(0, 0, &[]));
    assert_eq!(n.stats().shards_invalid, count + 2);
    // Group 1: the same shard twice.
    let g1 = recovery(&key, 1);
    n.handle_message(t(30), NodeId(5), shard(1, 0, &g1[0]));
    n.handle_message(t(30), NodeId(5), shard(1, 0, &g1[0]));
    assert_eq!(n.stats().shards_invalid, count + 3);
    // Group 2: a shard of the right size with a flipped byte rebuilds a block
    // that fails the origin signature; it is not stored.
    for seq in [8, 9, 10] {
        n.handle_message(t(40), NodeId(5), Message::Block(signed(&key, seq)));
    }
    let mut bad = recovery(&key, 2)[0].to_vec();
    bad[50] ^= 0xff;
    n.handle_message(t(40), NodeId(5), shard(2, 0, &bad));
    assert_eq!(stored(&n, 11), None);
    assert_eq!(n.channel(CH).unwrap().rejected_blocks, 1);
    assert_eq!(n.stats().blocks_rebuilt, 0);
    // Group 0 still decodes: the good shard and one more original rebuild the last.
    n.handle_message(t(50), NodeId(5), shard(0, 0, &good[0]));
    assert_eq!(stored(&n, 2), None);
    n.handle_message(t(50), NodeId(5), Message::Block(signed(&key, 2)));
    assert_eq!(stored(&n, 3), Some(signed(&key, 3)), "rebuilt from shard 0");
    assert_eq!(n.stats().blocks_rebuilt, 1);
}

#[test]
fn a_link_of_originals_is_measured_from_its_second_group_and_a_new_layout_starts_afresh() {
    let key = OriginKey::generate().unwrap();
    // Parent 5 pushes originals 0..2 only; parent 6 pushes original 3 and both
    // recovery shards: the layout (k, n) comes from the coded parents.
    let mut n = peer(
        9,
        &key,
        &[(5, coded(&[0, 1, 2])), (6, coded(&[3, K, K + 1]))],
    );
    // Join mid-group: the first group (a backlog without shards) is not counted.
    let groups = 30u64;
    for g in 0..groups {
        for seq in g * u64::from(K)..(g + 1) * u64::from(K) {
            let from = if seq % 4 == 3 { 6 } else { 5 };
            if g == 0 && from == 6 {
                continue;
            }
            n.handle_message(t(seq), NodeId(from), Message::Block(signed(&key, seq)));
        }
        if g > 0 {
            for (j, s) in recovery(&key, g).iter().enumerate() {
                n.handle_message(t(g * 4), NodeId(6), shard(g, j as u8, s));
            }
        }
    }
    // Closed: groups 0..=12; parent 5 counted from group 1, parent 6 from 1.
    let closed = groups - 1 - DECODE_WINDOW_GROUPS;
    let report = n.heartbeat(t(5000)).channels[0].clone();
    assert_eq!(report.shards_expected, (closed - 1) * u64::from(K + N));
    assert_eq!(report.shards_received, report.shards_expected);
    // The coordinator moves the cluster to k+3: decoding restarts, counters stay.
    let wider = CodedSet::empty(K, 3).unwrap().with(0).with(K + 2);
    n.handle_message(
        t(6000),
        COORDINATOR_ID,
        Message::ParentSet {
            version: 2,
            placement: tiercast_proto::Placement::Member,
            channel: ChannelDesc {
                id: CH,
                name: "live".into(),
                public_key: key.public_key(),
            },
            parents: vec![PeerFeed {
                peer: PeerInfo {
                    id: NodeId(5),
                    addr: String::new(),
                    http_addr: String::new(),
                },
                feed: Feed::Coded(wider),
            }],
        },
    );
    let next = groups * u64::from(K);
    n.handle_message(t(6001), NodeId(5), Message::Block(signed(&key, next)));
    let middle = &n.channel(CH).unwrap().middle;
    assert_eq!(
        middle.decoding(),
        Some(ErasureParams::new(usize::from(K), 3).unwrap())
    );
    assert_eq!(middle.open_groups(), 1);
    assert_eq!(middle.shards_expected, report.shards_expected);
}
