//! The peer overlay's figures for metrics.json (D1-D4, C2-C7): continuity of the
//! peers never ejected, the top level's losses and duplicates (D3's flooding), the
//! coordinator's reassignment counters, and ejections against their bound (C6).

use crate::report::PeerMetrics;
use crate::scenario::DataPlane;
use crate::world::Simulation;
use tiercast_proto::NodeId;

fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| a / b)
}

pub(crate) fn peer_metrics(sim: &Simulation) -> PeerMetrics {
    let m = &sim.metrics;
    let overlay = sim.channel.and_then(|c| sim.coord.peer_overlay(c));
    let stats = overlay.map(|o| o.stats.clone()).unwrap_or_default();
    let is_top = |id: u32| {
        overlay
            .and_then(|o| o.members.get(&NodeId(id)))
            .is_some_and(|mm| mm.top)
    };
    let end = sim.end;
    let (mut top_exp, mut top_missed) = (0u64, 0u64);
    let (mut top_msgs, mut top_stored, mut bot_msgs, mut bot_stored) = (0u64, 0u64, 0u64, 0u64);
    let mut top_peers = 0u64;
    let (mut after_exp, mut after_missed) = (0u64, 0u64);
    let mut pulled = 0u64;
    let mut up = crate::report::UplinkTotals::default();
    for (vi, v) in sim.viewers.iter().enumerate() {
        let id = sim.first_viewer + vi as u32;
        let node = sim.slots.get(id as usize).and_then(|s| s.node.as_ref());
        if let Some(ch) = node.and_then(|n| sim.channel.and_then(|c| n.channel(c))) {
            pulled += ch.pull.pulled;
        }
        if let Some(u) = node.and_then(|n| n.uplink_stats()) {
            up.sent_blocks += u.sent_blocks;
            up.dropped_blocks += u.dropped_blocks;
            up.stale_blocks += u.stale_blocks;
        }
        if v.end_at != end && !v.watching() {
            continue;
        }
        if is_top(id) {
            top_peers += 1;
            top_msgs += u64::from(v.block_msgs);
            top_stored += u64::from(v.blocks_stored);
            if sim.sc.data_plane == DataPlane::Blocks {
                let t = sim.block_tally(vi, end, None);
                top_exp += t.expected;
                top_missed += t.expected - t.received;
            }
        } else {
            bot_msgs += u64::from(v.block_msgs);
            bot_stored += u64::from(v.blocks_stored);
        }
    }
    // After the first crash or leave: the top level's members then, each until it
    // left (or the end), whether or not it is still there at the end.
    if let (Some(f), Some(top), DataPlane::Blocks) = (
        sim.ingest.fault_seq,
        sim.fault_windows.top_at_fault.as_ref(),
        sim.sc.data_plane,
    ) {
        for id in top {
            let vi = (id - sim.first_viewer) as usize;
            let v = &sim.viewers[vi];
            let t_end = if v.watching() { end } else { v.end_at };
            let t = sim.block_tally(vi, t_end, Some(f));
            after_exp += t.expected;
            after_missed += t.expected - t.received;
        }
    }
    let blocks = sim.sc.data_plane == DataPlane::Blocks;
    let carried = crate::carried::carried_at_end(sim).unwrap_or((0, 0));
    let never_turned_away = ratio(
        m.delivered - m.ejected_delivered,
        m.expected - m.ejected_expected,
    )
    .unwrap_or(1.0);
    PeerMetrics {
        substreams: sim.sc.peers.substreams,
        continuity_index_admitted: if blocks {
            let (expected, on_time) = sim.members_ledger.sums(None, None);
            ratio(on_time, expected).unwrap_or(1.0)
        } else {
            never_turned_away
        },
        continuity_index_never_turned_away: never_turned_away,
        members_at_end: overlay.map_or(0, |o| o.members.len() as u64),
        top_level_members: overlay.map_or(0, |o| o.top_order.len() as u64),
        top_level_peers: top_peers,
        top_level_blocks_expected: top_exp,
        top_level_blocks_missed: top_missed,
        top_level_blocks_expected_after_fault: sim.ingest.fault_seq.map(|_| after_exp),
        top_level_blocks_missed_after_fault: sim.ingest.fault_seq.map(|_| after_missed),
        top_level_duplicate_factor: if blocks {
            ratio(top_msgs as f64, top_stored as f64)
        } else {
            None
        },
        bottom_duplicate_factor: if blocks {
            ratio(bot_msgs as f64, bot_stored as f64)
        } else {
            None
        },
        joins: stats.joins,
        leaves: stats.leaves,
        reassignments: stats.reassignments,
        preemptions: stats.preemptions,
        partial_recomputations: stats.partial_recomputations,
        full_recomputations: stats.full_recomputations,
        congested_links: stats.congested_links,
        ejected: stats.ejected,
        ejected_lower_bound: stats.ejected_lower_bound,
        swapped_out: stats.swapped_out,
        not_carried_at_end: carried.0,
        not_carried_lower_bound: carried.1,
        ejected_again: sim
            .ejections
            .values()
            .map(|t| t.len().saturating_sub(1) as u64)
            .sum(),
        ejected_in_a_minute_max: sim
            .ejections
            .values()
            .map(|t| most_within(t, 60_000_000))
            .max()
            .unwrap_or(0),
        premium_peers: sim.viewers.iter().filter(|v| v.premium).count() as u64,
        premium_ejected: sim
            .viewers
            .iter()
            .filter(|v| v.premium && v.ejected)
            .count() as u64,
        continuity_premium: (m.premium_expected > 0.0)
            .then(|| m.premium_delivered / m.premium_expected),
        continuity_free: (m.premium_expected > 0.0)
            .then(|| {
                ratio(
                    m.delivered - m.premium_delivered,
                    m.expected - m.premium_expected,
                )
            })
            .flatten(),
        turned_away: sim.turned_away,
        pending_at_end: overlay.map_or(0, |o| o.pending.len() as u64),
        assignments_sent: stats.assignments_sent,
        blocks_pulled: pulled,
        uplink: up,
        push_room_bumps: stats.push_room_bumps,
        top_tree_switches: stats.top_tree_switches,
        clusters: crate::report::ClusterMetrics {
            splits: stats.cluster_splits,
            merges: stats.cluster_merges,
            members_moved: stats.cluster_moves,
            told: stats.clusters_told,
            most: overlay.map_or(0, |o| o.clusters().most_clusters as u64),
        },
        regions: crate::middle_report::middle_metrics(sim),
    }
}

/// The most of the sorted times `t` that fall within one window of `span` µs.
fn most_within(t: &[u64], span: u64) -> u64 {
    let mut most = 0;
    let mut a = 0;
    for b in 0..t.len() {
        while t[b] - t[a] >= span {
            a += 1;
        }
        most = most.max(b - a + 1);
    }
    most as u64
}

#[cfg(test)]
mod tests {
    #[test]
    fn ejections_are_counted_per_sliding_minute() {
        let s = 1_000_000;
        assert_eq!(super::most_within(&[], 60 * s), 0);
        assert_eq!(super::most_within(&[5 * s], 60 * s), 1);
        // 0, 59 s: one minute; 61 s starts a window without the first.
        assert_eq!(super::most_within(&[0, 59 * s, 61 * s], 60 * s), 2);
        assert_eq!(super::most_within(&[0, 60 * s, 120 * s], 60 * s), 1);
    }
}
