//! The history store's own tests: sessions and availability, uplink achieved,
//! parent stalls, the bounds, ranking, and the store encoding.

use super::codec;
use super::*;
use tiercast_proto::{ChannelId, ChannelReport, Feed, LinkReport};

fn t(s: u64) -> Timestamp {
    Timestamp::from_millis(s * 1000)
}

fn hb(node: u32, last: u64, parents: &[(u32, u64)], children: &[(u32, u64)]) -> Heartbeat {
    let link = |(peer, seq): &(u32, u64)| LinkReport {
        peer: NodeId(*peer),
        last_seq: Some(*seq),
        feed: Feed::All,
        ..LinkReport::default()
    };
    Heartbeat {
        node: NodeId(node),
        channels: vec![ChannelReport {
            channel: ChannelId(1),
            parents: parents.iter().map(link).collect(),
            children: children.iter().map(link).collect(),
            last_seq: Some(last),
            ..ChannelReport::default()
        }],
        ..Heartbeat::default()
    }
}

#[test]
fn availability_is_time_alive_over_time_known_across_sessions() {
    let mut h = History::default();
    let n = NodeId(1);
    h.registered(t(0), n, 0);
    h.lost(t(30), n);
    assert_eq!(h.get(n).unwrap().availability(t(40)), 0.75);
    h.registered(t(40), n, 0);
    let r = h.get(n).unwrap();
    assert_eq!(r.sessions, 2);
    assert_eq!(r.availability(t(100)), 0.9);
    // Unknown nodes have no record; a loss of an unknown node creates none.
    h.lost(t(100), NodeId(9));
    assert!(h.get(NodeId(9)).is_none());
}

#[test]
fn uplink_achieved_is_measured_against_declared_and_stalls_are_counted_per_parent() {
    let mut h = History::default();
    h.registered(t(0), NodeId(1), 0);
    h.registered(t(0), NodeId(5), 4000);
    let a = hb(5, 10, &[(1, 10)], &[(7, 10)]);
    let b = hb(5, 20, &[(1, 20)], &[(7, 20)]);
    let c = hb(5, 30, &[(1, 20)], &[(7, 20)]);
    h.heard(t(1), None, &a, 2000);
    h.heard(t(2), Some(&LastReport::of(&a)), &b, 2000);
    let r = h.get(NodeId(5)).unwrap();
    assert_eq!(r.achieved_uplink_kbps, 2000.0);
    assert_eq!(r.uplink_ratio(), Some(0.5));
    h.heard(t(3), Some(&LastReport::of(&b)), &c, 2000);
    let r = h.get(NodeId(5)).unwrap();
    assert_eq!(r.parents[&NodeId(1)].reports, 2);
    assert_eq!(r.parents[&NodeId(1)].stalls, 1);
    assert_eq!(r.parents[&NodeId(1)].stall_rate(), 0.5);
    // The parent's own record: what its child saw of it.
    let p = h.get(NodeId(1)).unwrap();
    assert_eq!((p.fed_reports, p.fed_stalls), (2, 1));
    // A heartbeat from a node never registered leaves no record.
    h.heard(t(3), Some(&LastReport::of(&b)), &hb(6, 30, &[], &[]), 2000);
    assert!(h.get(NodeId(6)).is_none());
}

#[test]
fn every_map_is_bounded_and_the_least_recently_seen_node_goes_first() {
    let mut h = History::new(HistoryConfig {
        max_nodes: 3,
        max_parents: 2,
    });
    for i in 1..=3 {
        h.registered(t(i), NodeId(i as u32), 0);
    }
    // Node 1 seen again: node 2 is now the oldest.
    h.registered(t(10), NodeId(1), 0);
    h.registered(t(11), NodeId(4), 0);
    assert_eq!(h.len(), 3);
    assert!(
        h.get(NodeId(2)).is_none(),
        "the least recently seen was evicted"
    );
    assert!(h.get(NodeId(1)).is_some());
    assert_eq!(h.evicted, 1);
    // Parents per node: three parents reported, the two latest kept.
    let mut prev = hb(4, 0, &[(1, 0), (3, 0), (9, 0)], &[]);
    for s in 1..=3u64 {
        let parents: Vec<(u32, u64)> = [(1, s), (3, s), (9, s)]
            .into_iter()
            .take(if s == 3 { 2 } else { 3 })
            .collect();
        let next = hb(4, s, &parents, &[]);
        h.heard(t(20 + s), Some(&LastReport::of(&prev)), &next, 2000);
        prev = next;
    }
    assert!(h.get(NodeId(4)).unwrap().parents.len() <= 2);
    // Import stops at the bound too.
    let mut small = History::new(HistoryConfig {
        max_nodes: 2,
        max_parents: 2,
    });
    small.import(t(0), h.export(t(30)));
    assert_eq!(small.len(), 2);
}

#[test]
fn ranking_prefers_available_nodes_that_deliver_and_puts_unknown_ones_between() {
    let mut h = History::default();
    let (good, flaky, unknown) = (NodeId(1), NodeId(2), NodeId(3));
    h.registered(t(0), good, 0);
    h.registered(t(0), flaky, 0);
    h.lost(t(10), flaky);
    h.registered(t(90), flaky, 0);
    // flaky: alive 10 + 10 of 100 s known.
    assert!((h.score(t(100), flaky) - 0.2).abs() < 1e-9);
    assert_eq!(h.score(t(100), good), 1.0);
    assert_eq!(h.score(t(100), unknown), rank::UNKNOWN_SCORE);
    assert_eq!(
        h.rank(t(100), [flaky, unknown, good]),
        vec![good, unknown, flaky]
    );
}

#[test]
fn records_survive_the_store_encoding_with_sessions_closed_and_garbage_is_refused() {
    let mut h = History::default();
    h.registered(t(0), NodeId(1), 3000);
    let a = hb(1, 1, &[], &[(2, 1)]);
    h.heard(t(1), None, &a, 1000);
    h.heard(
        t(2),
        Some(&LastReport::of(&a)),
        &hb(1, 2, &[], &[(2, 2)]),
        1000,
    );
    let exported = h.export(t(10));
    let bytes: Vec<(NodeId, Vec<u8>)> = exported
        .iter()
        .map(|(id, r)| (*id, codec::encode(r)))
        .collect();
    let mut back = History::default();
    back.import(
        t(0),
        bytes
            .iter()
            .filter_map(|(id, b)| Some((*id, codec::decode(b)?))),
    );
    let r = back.get(NodeId(1)).unwrap();
    assert_eq!(
        r.alive_us(t(0)),
        10_000_000,
        "alive until the export, closed"
    );
    assert_eq!(r.sessions, 1);
    assert_eq!(r.achieved_uplink_kbps, 1000.0);
    back.registered(t(5), NodeId(1), 3000);
    assert_eq!(back.get(NodeId(1)).unwrap().sessions, 2);
    for garbage in [&[][..], &[2, 0, 0][..], &[1, 255, 255, 255, 255, 255][..]] {
        assert!(codec::decode(garbage).is_none(), "{garbage:?}");
    }
}

proptest::proptest! {
    /// Bytes from the store are outside input: any bytes decode or are refused.
    #[test]
    fn any_bytes_decode_or_are_refused_never_a_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
        let _ = codec::decode(&bytes);
        let mut with_version = vec![codec::VERSION];
        with_version.extend_from_slice(&bytes);
        if let Some(h) = codec::decode(&with_version) {
            let mut hist = History::new(HistoryConfig { max_nodes: 4, max_parents: 2 });
            hist.import(t(0), [(NodeId(1), h)]);
            proptest::prop_assert!(hist.get(NodeId(1)).unwrap().parents.len() <= 2);
        }
    }
}

#[test]
fn a_parent_whose_children_saw_it_stall_grades_bad_a_steady_one_good_an_unknown_one_neutral() {
    use grade::Grade;
    let mut h = History::default();
    let (steady, staller, child_a, child_b) = (NodeId(1), NodeId(2), NodeId(5), NodeId(6));
    for n in [steady, staller, child_a, child_b] {
        h.registered(t(0), n, 4000);
    }
    assert_eq!(
        h.grade(t(0), steady, 2000),
        Grade::Neutral,
        "no reports yet"
    );
    // Child a is fed by `steady` (its seq moves), child b by `staller` (stuck
    // at 1 while b's stream goes on).
    let mut prev_a = hb(5, 0, &[(1, 0)], &[]);
    let mut prev_b = hb(6, 0, &[(2, 1)], &[]);
    let mut changes = Vec::new();
    for s in 1..=10u64 {
        let a = hb(5, s, &[(1, s)], &[]);
        let b = hb(6, s, &[(2, 1)], &[]);
        h.heard(t(s), Some(&LastReport::of(&prev_a)), &a, 2000);
        changes.extend_from_slice(h.regraded());
        h.heard(t(s), Some(&LastReport::of(&prev_b)), &b, 2000);
        changes.extend_from_slice(h.regraded());
        (prev_a, prev_b) = (a, b);
    }
    assert_eq!(h.grade(t(10), steady, 2000), Grade::Good);
    assert_eq!(h.grade(t(10), staller, 2000), Grade::Bad);
    // Each change reported once, by the heartbeat that made it.
    assert_eq!(changes, vec![(steady, Grade::Good), (staller, Grade::Bad)]);
    assert_eq!(h.grade(t(10), NodeId(99), 2000), Grade::Neutral, "unknown");
    // A node back for a second session after being away most of the time.
    h.lost(t(10), child_a);
    h.registered(t(90), child_a, 4000);
    assert_eq!(h.grade(t(91), child_a, 2000), Grade::Bad);
    assert!(Grade::Good > Grade::Neutral && Grade::Neutral > Grade::Bad);
}

proptest::proptest! {
    /// The eviction order brought up to date only when an eviction reads it
    /// forgets exactly the nodes an order kept exact on every sighting would:
    /// the least recently seen by bucket, then id.
    #[test]
    fn lazy_eviction_forgets_what_an_exact_order_would(
        ops in proptest::collection::vec((0u32..10, 0u64..12, proptest::bool::ANY), 1..120),
    ) {
        let max_nodes = 4;
        let mut h = History::new(HistoryConfig { max_nodes, max_parents: 2 });
        let mut model: std::collections::BTreeMap<NodeId, Timestamp> = Default::default();
        let mut now = Timestamp::from_millis(0);
        for (node, step_s, register) in ops {
            now = Timestamp::from_millis(now.0 / 1000 + step_s * 1000);
            let id = NodeId(node);
            if register || !model.contains_key(&id) {
                if !model.contains_key(&id) && model.len() >= max_nodes {
                    let oldest = model
                        .iter()
                        .map(|(n, seen)| (bucket(*seen), *n))
                        .min()
                        .map(|(_, n)| n)
                        .expect("full");
                    model.remove(&oldest);
                }
                model.insert(id, now);
                h.registered(now, id, 0);
            } else {
                model.insert(id, now);
                h.heard(now, None, &hb(node, 0, &[], &[]), 2000);
            }
            let kept: Vec<NodeId> = h.iter().map(|(n, _)| *n).collect();
            let want: Vec<NodeId> = model.keys().copied().collect();
            proptest::prop_assert_eq!(kept, want);
        }
    }
}
