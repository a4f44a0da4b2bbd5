//! Tests of the whole machine over the test network (L1–L6).

use crate::config::LocalityConfig;
use crate::machine::LocalityEvent;
use crate::testnet::TestNet;
use tiercast_proto::Timestamp;

/// Nodes 1..=n/2 in "east", the rest in "west"; 2 ms inside, 40 ms across.
fn two_regions(n: u32) -> Box<dyn Fn(u32, u32) -> u64> {
    Box::new(move |a, b| {
        let side = |x: u32| x == 0 || x <= n / 2;
        if side(a) == side(b) {
            2000
        } else {
            40_000
        }
    })
}

#[test]
fn first_node_founds_then_near_nodes_join_far_ones_found() {
    let n = 21;
    let mut net = TestNet::new(n as usize, LocalityConfig::default(), 1, two_regions(20));
    for i in 1..n {
        net.join_at(i, Timestamp::from_secs(i as u64 * 2));
    }
    net.run_until(Timestamp::from_secs(120));
    let group = |i: u32| net.nodes[i as usize].group().map(|g| g.id);
    for i in 1..=10 {
        assert_eq!(group(i), group(1), "east node {i}");
    }
    for i in 11..=20 {
        assert_eq!(group(i), group(11), "west node {i}");
    }
    assert_ne!(group(1), group(11));
    assert_eq!(net.leaders(), vec![1, 11]);
    // The two groups are linked (L4).
    assert!(net.nodes[1].inter().links.contains_key(&group(11).unwrap()));
    assert!(net.nodes[11].inter().links.contains_key(&group(1).unwrap()));
    let founded = net
        .events
        .iter()
        .filter(|(_, _, e)| matches!(e, LocalityEvent::Founded { .. }))
        .count();
    assert_eq!(founded, 2);
}

#[test]
fn leader_crash_gives_the_next_in_the_list_and_keeps_links() {
    let n = 21;
    let mut net = TestNet::new(n as usize, LocalityConfig::default(), 2, two_regions(20));
    for i in 1..n {
        net.join_at(i, Timestamp::from_secs(i as u64));
    }
    net.run_until(Timestamp::from_secs(60));
    let east = net.nodes[1].group().unwrap().id;
    let west = net.nodes[11].group().unwrap().id;
    let successor = net.nodes[1].group().unwrap().leadership[1].0;
    net.crash(1);
    net.run_until(Timestamp::from_secs(100));
    assert!(net.nodes[successor as usize].is_leader());
    for i in 2..=10 {
        let g = net.nodes[i].group().unwrap();
        assert_eq!((g.id, g.leader.0), (east, successor), "node {i}");
    }
    // Succession within 10–20 s of the crash.
    let took = net
        .events
        .iter()
        .find(|(_, i, e)| *i == successor && matches!(e, LocalityEvent::BecameLeader { .. }))
        .map(|(t, _, _)| t.saturating_since(Timestamp::from_secs(60)))
        .unwrap();
    assert!((5_000_000..=20_000_000).contains(&took), "took {took} µs");
    // The west leader's link now points at the new east leader.
    let l = net.nodes[11].inter().links[&east];
    assert_eq!(l.leader.0, successor);
    let _ = west;
}

#[test]
fn a_measure_flood_is_answered_at_a_bounded_rate() {
    use crate::machine::LocalityNode;
    use crate::msg::LocalityMsg;
    use tiercast_proto::NodeId;
    let cfg = LocalityConfig::default();
    let mut n = LocalityNode::new(NodeId(1), cfg.clone(), 1, None, false);
    let mut answered = 0u64;
    // One flooder, 5000 probes in 1 s.
    for k in 0..5000u64 {
        n.handle_input(
            Timestamp(k * 200),
            NodeId(66),
            LocalityMsg::Measure { nonce: k as u32 },
        );
        while let Some(t) = n.poll_transmit() {
            if matches!(t.msg, LocalityMsg::MeasureReply { .. }) {
                answered += 1;
            }
        }
    }
    assert!(
        answered <= 2 * cfg.measure_rate_per_peer as u64,
        "answered {answered}"
    );
    assert_eq!(n.stats().measure_dropped, 5000 - answered);
    // Malformed bytes are counted, not a panic.
    n.handle_bytes(
        Timestamp::from_secs(2),
        NodeId(66),
        &[0xde, 0xad, 0xbe, 0xef],
    );
    assert_eq!(n.stats().malformed, 1);
}
