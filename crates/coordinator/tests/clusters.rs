//! C1, C8 on the real machines over the zero-latency bus: a region's bottom
//! cluster splits by network prefix once it holds more than
//! `cluster_split_above` peers, without a parent changing; every peer learns its
//! cluster in the answer to a heartbeat and reports it; a heartbeat naming a
//! cluster that is not the node's (a stale or made-up manager id) is answered
//! with where it belongs, not dropped (issue 12 Must show 6); the clusters merge
//! when most peers leave.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use support::Bus;
use tiercast_coordinator::{CoordEvent, CoordinatorConfig};
use tiercast_node::NodeConfig;
use tiercast_proto::{ChannelId, ClusterId, Message, NodeId};

const LIVE: ChannelId = ChannelId(1);

fn config() -> CoordinatorConfig {
    let mut c = Bus::peers_config();
    c.peers.cluster_split_above = 8;
    c.peers.cluster_merge_below = 4;
    c
}

/// Peer `id` behind network 10.0.`net`.0/24.
fn peer(id: u32, net: u32) -> NodeConfig {
    NodeConfig {
        addr: format!("10.0.{net}.{}:9000", id % 200 + 1),
        ..Bus::peer_config(id, 8_000)
    }
}

fn parents(bus: &Bus) -> BTreeMap<NodeId, Vec<Option<NodeId>>> {
    let o = bus.coordinator.peer_overlay(LIVE).expect("an overlay");
    o.members
        .iter()
        .map(|(id, m)| (*id, m.parents.to_vec()))
        .collect()
}

fn changes(bus: &Bus) -> Vec<String> {
    bus.coord_events
        .iter()
        .filter_map(|e| match e {
            CoordEvent::ClustersChanged { change, .. } => Some(format!("{change:?}")),
            _ => None,
        })
        .collect()
}

fn told(bus: &Bus) -> u64 {
    bus.coordinator
        .peer_overlay(LIVE)
        .unwrap()
        .stats
        .clusters_told
}

#[test]
fn a_cluster_splits_past_its_threshold_its_peers_are_told_in_heartbeat_answers_and_keep_their_parents(
) {
    let mut bus = Bus::with_channels(config(), 40_000, &["live"]);
    for i in 0..12 {
        bus.add_watching(peer(10 + i, i), "live");
    }
    let before = parents(&bus);
    assert!(changes(&bus).is_empty(), "no tick yet");
    // The periodic checks: the service manager splits the region's cluster.
    bus.advance(1_000);
    let ch = changes(&bus);
    assert_eq!(ch.len(), 1, "{ch:?}");
    assert!(ch[0].starts_with("Split"), "{ch:?}");
    assert_eq!(parents(&bus), before, "a split changes no parent");

    // Heartbeats: every peer learns its cluster and reports it from then on.
    bus.advance(2_500);
    let o = bus.coordinator.peer_overlay(LIVE).unwrap();
    let mut seen = BTreeSet::new();
    for i in 0..12 {
        let id = NodeId(10 + i);
        let want = o.cluster_of(id).expect("a peer member");
        let has = bus.nodes[&id].channel(LIVE).expect("watching").cluster;
        assert_eq!(has, want, "peer {id}");
        seen.insert(want);
    }
    assert_eq!(seen.len(), 2, "two clusters: {seen:?}");
    let settled = told(&bus);
    bus.advance(2_000);
    assert_eq!(told(&bus), settled, "nothing more to tell once reported");

    // A heartbeat naming a manager id the node does not belong to.
    let now = bus.now;
    let mut hb = bus.node(12).heartbeat(now);
    for r in &mut hb.channels {
        r.cluster = ClusterId(999);
    }
    bus.coordinator
        .handle_message(now, NodeId(12), Message::Heartbeat(hb));
    bus.settle();
    assert_eq!(told(&bus), settled + 1, "answered with where it belongs");
    assert_eq!(bus.coordinator.stats().invalid_messages, 0);

    // Most peers leave: the two clusters merge back into one.
    for i in 0..9 {
        let now = bus.now;
        bus.node(10 + i).unwatch(now, "live");
        bus.settle();
    }
    bus.advance(3_000);
    let ch = changes(&bus);
    assert!(ch.last().is_some_and(|c| c.starts_with("Merged")), "{ch:?}");
    let o = bus.coordinator.peer_overlay(LIVE).unwrap();
    let left: BTreeSet<_> = (19..22).filter_map(|i| o.cluster_of(NodeId(i))).collect();
    assert_eq!(left.len(), 1, "{left:?}");
    for i in 19..22 {
        let has = bus.nodes[&NodeId(i)].channel(LIVE).unwrap().cluster;
        assert_eq!(
            Some(&has),
            left.iter().next(),
            "peer {i} told the merged one"
        );
    }
}
