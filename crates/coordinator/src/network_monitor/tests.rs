//! The network-condition monitor's graph and C2 comparison, alone.

use super::*;
use tiercast_proto::{ChannelReport, Feed, LinkReport};

const CH: ChannelId = ChannelId(1);

fn link(peer: u32, last: Option<u64>) -> LinkReport {
    LinkReport {
        peer: NodeId(peer),
        last_seq: last,
        last_block_time_us: None,
        feed: Feed::All,
    }
}

fn hb(node: u32, parents: Vec<LinkReport>, children: Vec<LinkReport>) -> Heartbeat {
    Heartbeat {
        node: NodeId(node),
        channels: vec![ChannelReport {
            channel: CH,
            parents,
            children,
            ..ChannelReport::default()
        }],
        ..Heartbeat::default()
    }
}

fn region(id: NodeId) -> Option<RegionId> {
    Some(RegionId((id.0 / 100) as u16))
}

#[test]
fn a_childs_heartbeats_measure_its_links_rate_and_region_totals() {
    let mut m = NetworkMonitor::default();
    let t0 = Timestamp::ZERO;
    m.record_heartbeat(
        t0,
        &hb(201, vec![link(1, Some(10)), link(202, Some(5))], vec![]),
        region,
    );
    m.record_heartbeat(
        t0.plus_millis(2000),
        &hb(201, vec![link(1, Some(30)), link(202, Some(5))], vec![]),
        region,
    );
    let l = m.link(NodeId(1), NodeId(201)).expect("measured");
    assert!((l.measured.rate_blocks_per_s - 10.0).abs() < 1e-6, "{l:?}");
    assert_eq!(l.measured.stall_share, 0.0);
    let still = m.link(NodeId(202), NodeId(201)).expect("measured");
    assert_eq!(still.measured.stall_share, 1.0, "its seq stood still");
    let across = m.region_pair(RegionId(0), RegionId(2));
    assert_eq!(
        across,
        RegionPairTotals {
            links: 1,
            rate_milli_blocks_per_s: 10_000
        }
    );
    assert_eq!(m.region_pair(RegionId(2), RegionId(2)).links, 1);
    // A parent no longer named is dropped, and its region pair with it.
    m.record_heartbeat(
        t0.plus_millis(4000),
        &hb(201, vec![link(202, Some(9))], vec![]),
        region,
    );
    assert!(m.link(NodeId(1), NodeId(201)).is_none());
    assert_eq!(
        m.region_pair(RegionId(0), RegionId(2)),
        RegionPairTotals::default()
    );
    assert_eq!(m.region_pairs().count(), 1);
    m.node_gone(NodeId(201));
    assert_eq!(m.links_measured(), 0);
}

#[test]
fn the_graph_is_bounded() {
    let mut m = NetworkMonitor::default();
    let parents: Vec<LinkReport> = (0..1000).map(|p| link(p + 1, Some(1))).collect();
    let mut node = 10_000u32;
    while m.links_measured() < MAX_LINKS {
        m.record_heartbeat(Timestamp::ZERO, &hb(node, parents.clone(), vec![]), region);
        node += 1;
    }
    m.record_heartbeat(Timestamp::ZERO, &hb(node, parents, vec![]), region);
    assert_eq!(m.links_measured(), MAX_LINKS);
    assert!(m.links_refused() >= 1000);
}

#[test]
fn a_push_link_lagging_n_reports_is_congested_and_remembered() {
    let mut m = NetworkMonitor::default();
    let pushes = |p: NodeId, c: NodeId| p == NodeId(1) && c == NodeId(2);
    let mut found = Vec::new();
    for i in 0..6u64 {
        let t = Timestamp::ZERO.plus_millis(1000 * (i + 1));
        m.congested_in(
            t,
            CH,
            &hb(1, vec![], vec![link(2, Some(100 * (i + 1)))]),
            3,
            pushes,
        );
        m.congested_in(t, CH, &hb(1, vec![], vec![link(3, Some(7))]), 3, pushes);
        let child = hb(2, vec![link(1, Some(50))], vec![]);
        m.record_heartbeat(t.plus_millis(500), &child, region);
        found.extend(m.congested_in(t.plus_millis(500), CH, &child, 3, pushes));
    }
    assert_eq!(found, vec![(NodeId(1), NodeId(2))]);
    assert_eq!(m.sent_links(), 1, "a link that does not push is not kept");
    let l = m.link(NodeId(1), NodeId(2)).expect("known");
    assert!(l.congested_at.is_some());
    assert_eq!(m.congested_links().count(), 1);
    m.forget_sent(NodeId(2));
    assert_eq!(m.sent_links(), 0);
    assert_eq!(m.congested_links().count(), 0);
}

/// `node`'s heartbeat on channel 1: one parent link at `parent_seq`, the
/// channel's highest seq held `held`.
fn hb_held(node: u32, parent: u32, parent_seq: u64, held: u64) -> Heartbeat {
    let mut h = hb(node, vec![link(parent, Some(parent_seq))], vec![]);
    h.channels[0].last_seq = Some(held);
    h
}

#[test]
fn what_a_channels_links_across_carried_is_their_rate_as_a_share_of_the_stream() {
    let mut m = NetworkMonitor::default();
    let t0 = Timestamp::ZERO;
    let t1 = t0.plus_millis(10_000);
    let stream_bps = 2_000_000;
    // Child 201 (region 2) fed by 1 (region 0); child 202 by 2, whose link stands still.
    m.record_heartbeat(t0, &hb_held(201, 1, 0, 0), region);
    m.record_heartbeat(t0, &hb_held(202, 2, 0, 0), region);
    assert_eq!(
        m.carried_between_bps(CH, RegionId(0), RegionId(2), stream_bps),
        None,
        "the channel's block rate is not known yet"
    );
    m.record_heartbeat(t1, &hb_held(201, 1, 100, 100), region);
    m.record_heartbeat(t1, &hb_held(202, 2, 0, 0), region);
    // The channel: 10 blocks/s; the links across: 10 + 0 blocks/s — one stream.
    let carried = m.carried_between_bps(CH, RegionId(2), RegionId(0), stream_bps);
    assert_eq!(
        carried,
        Some(stream_bps),
        "both directions of the pair count"
    );
    assert_eq!(
        m.carried_between_bps(CH, RegionId(0), RegionId(1), stream_bps),
        Some(0),
        "nothing crosses between regions 0 and 1"
    );
    assert_eq!(
        m.carried_between_bps(ChannelId(2), RegionId(0), RegionId(2), stream_bps),
        None,
        "another channel is not measured"
    );
    m.forget_channel(CH);
    assert_eq!(m.on_channel(CH), 0, "a retired channel's pace goes too");
}
