//! metrics.json (X5; relay figures for V4–V7, orphan re-homing for V10, regions for
//! V11): the fixed field names of the issue plus a few more, computed once at the
//! end of a run. Everything except `wall_seconds` and `events_per_wall_second` is a
//! function of the scenario and its seed (see [`WALL_CLOCK_FIELDS`]).

use crate::scenario::DataPlane;
use crate::world::Simulation;
use serde::Serialize;
use std::collections::BTreeMap;
use tiercast_coordinator::CoordEvent;
use tiercast_netmodel::DropReason;

/// The metrics.json fields that depend on the wall clock; everything else replays.
pub const WALL_CLOCK_FIELDS: [&str; 2] = ["wall_seconds", "events_per_wall_second"];

#[derive(Clone, Debug, Serialize)]
pub struct Metrics {
    pub scenario: String,
    pub seed: u64,
    pub data_plane: &'static str,
    /// Whether transmission loss is modelled: the rate plane carries shares, not
    /// packets, so a scenario's `network.loss` does not act there.
    pub loss_modelled: bool,
    pub continuity_index: f64,
    /// Blocks mode: blocks the viewers should have played, each from its first
    /// block (or the end of its startup grace) to its last, across relay and parent
    /// switches, and those of them not played on time.
    pub blocks_expected: Option<u64>,
    pub blocks_missed: Option<u64>,
    pub startup_delay_ms_p50: Option<u64>,
    pub startup_delay_ms_p95: Option<u64>,
    pub startup_delay_ms_max: Option<u64>,
    /// Blocks mode: to the first keyframe held (a player's start; the figures
    /// above are to the first block of any kind). `None` in rate mode.
    pub startup_playable_ms_p50: Option<u64>,
    pub startup_playable_ms_p95: Option<u64>,
    /// Viewers that received their first block (blocks) or were first served (rate).
    pub viewers_started: u64,
    pub lag_ms_p50: Option<u64>,
    pub lag_ms_p95: Option<u64>,
    pub delivered_bytes: u64,
    /// Media bytes the origin's uplink sent by the end (as sent, not as queued).
    pub origin_upload_bytes: u64,
    /// The busiest timeline second of the origin's upload, and its uplink (bit/s;
    /// `None`: unlimited).
    pub origin_upload_bps_max: f64,
    pub origin_uplink_bps: Option<f64>,
    pub offload: f64,
    pub capacity_bound_bps: Option<f64>,
    pub achieved_rate_bps: f64,
    /// On-time delivery against min(stream rate, capacity bound), window by window
    /// (see `ledger`); never above 1 unless the bound is broken (an invariant).
    pub efficiency: Option<f64>,
    pub cross_region_fraction: f64,
    pub control_overhead: f64,
    pub duplicate_factor: f64,
    pub distribute_events: u64,
    /// DISTRIBUTE requests that started an activation round (not absorbed by a farm).
    pub distribute_rounds: u64,
    pub consolidate_events: u64,
    pub denied_joins: u64,
    /// Viewer placements beyond one per viewer: a viewer sent elsewhere again after
    /// its relay refused it (full, or no longer carrying the channel).
    pub redirected_logins: u64,
    pub login_denied: u64,
    pub active_relays_max: u32,
    pub relays_lower_bound: u32,
    pub relays_lower_bound_cascade: u32,
    pub relays_lower_bound_regional: u32,
    pub relays_steady_ratio: Option<f64>,
    pub relays_steady_ratio_cascade: Option<f64>,
    pub relays_steady_ratio_regional: Option<f64>,
    /// From a relay's failure to each receiving child relay connected to a new parent.
    pub orphan_rehome_ms_max: Option<f64>,
    /// From the coordinator's Reassigned to that connection.
    pub orphan_rehome_after_reassign_ms_max: Option<f64>,
    /// From the failure to the coordinator's Reassigned.
    pub orphan_reassign_ms_max: Option<f64>,
    /// From the failure to the coordinator's NodeTimedOut.
    pub crash_detect_ms_max: Option<f64>,
    pub orphans: u64,
    pub orphans_unrehomed: u64,
    pub relays_failed: u64,
    /// After the first relay crash/leave: viewers whose relay had >= 2 connected
    /// parents and kept one, whose relay lost them all, and whose relay had one.
    pub continuity_after_fault_redundant: Option<f64>,
    pub continuity_after_fault_orphaned: Option<f64>,
    pub continuity_after_fault_single: Option<f64>,
    pub viewers_redundant: u64,
    pub viewers_orphaned: u64,
    pub viewers_single: u64,
    pub nodes: u64,
    pub viewers: u64,
    pub viewers_max: u64,
    pub starving_viewer_samples: u64,
    pub virtual_seconds: f64,
    pub wall_seconds: f64,
    pub events: u64,
    pub events_per_wall_second: f64,
    pub control_messages: u64,
    pub control_bytes: u64,
    pub media_bytes: u64,
    pub dropped: BTreeMap<&'static str, u64>,
    pub retransmissions: u64,
    pub coordinator_heartbeats: u64,
    pub coordinator_invalid_messages: u64,
    pub node_invalid_messages: u64,
    /// Whether the origin signed the blocks and every node checked them (X3;
    /// the scenario's `verify_blocks`, off only for speed).
    pub blocks_verified: bool,
    /// Whether peer viewers ran the core's playout stage (the scenario's
    /// `playout_stage`, blocks mode with peers): on time = played by the deadline.
    pub playout_stage: bool,
    /// Their stages' counters summed (with `playout_stage`; `playout.rs`).
    pub playout: Option<crate::playout::PlayoutTotals>,
    /// Blocks (received or rebuilt) that failed the origin signature check.
    pub rejected_blocks: u64,
    /// Blocks viewers counted whose payload is not the origin's (the `tamper`
    /// fault's, let through when blocks are not checked).
    pub tampered_blocks_viewed: u64,
    pub event_log: BTreeMap<String, u64>,
    pub invariant_violation_count: u64,
    pub invariant_violations: Vec<String>,
    pub notes: Vec<String>,
    /// Per region: continuity and startup of the viewers placed there.
    pub per_region: Vec<RegionFigures>,
    /// Per fault: continuity during and after it, and its orphans.
    pub fault_windows: Vec<crate::fault_windows::FaultWindow>,
    /// Per full recomputation of the peer overlay: its worst second (C7).
    pub recomputations: Vec<crate::recompute_windows::RecomputeWindow>,
    /// The worst second around the recomputations made from `steady_from_s` on:
    /// on-time continuity, and the timeline's receive ratio.
    pub recompute_min_second_continuity: Option<f64>,
    /// The same over the overlay's members at the time (`members_ledger`).
    pub recompute_min_second_continuity_members: Option<f64>,
    pub recompute_min_second_received: Option<f64>,
    /// Per restart of nodes or of the coordinator: when it was served again (D7).
    pub restarts: Vec<crate::restarts::RestartFigures>,
    /// `ParentSet`s the coordinator sent in each virtual second (D7: a restart's
    /// take-back should tell only what it repairs).
    pub parent_sets_per_s: Vec<u64>,
    /// On-time continuity of each virtual second (the fault windows' measure).
    pub continuity_per_s: Vec<Option<f64>>,
    /// Rate mode: the lowest continuity of one viewer from `steady_from_s` on,
    /// over those expected to play 30 s or more of it.
    pub worst_viewer_continuity: Option<f64>,
    /// The peer overlay, when the viewers are peers.
    pub peers: Option<PeerMetrics>,
    /// Policy steps and the traffic between regions against their caps (C3).
    pub policies: Option<crate::policies::PolicyFigures>,
    /// Per channel, with a second channel only (C9; `second.rs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<Vec<crate::second::ChannelFigures>>,
    /// With a `flaky` fault only (C4, D1; `flaky.rs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flaky: Option<crate::flaky::FlakyFigures>,
}

/// One region's viewers (V11).
#[derive(Clone, Debug, Serialize)]
pub struct RegionFigures {
    pub region: String,
    pub viewers: u64,
    pub viewers_started: u64,
    pub continuity_index: Option<f64>,
    pub startup_delay_ms_p50: Option<u64>,
    pub startup_delay_ms_p95: Option<u64>,
    pub startup_delay_ms_max: Option<u64>,
}

/// The peer overlay's figures (D1-D4, C2-C7).
#[derive(Clone, Debug, Serialize)]
pub struct PeerMetrics {
    pub substreams: u8,
    /// Continuity over the overlay's members while it carries them (blocks mode:
    /// the members' ledger — from a peer's first block after it was admitted
    /// until it is ejected or leaves; a peer told to wait for room counts from
    /// when it is let in). Rate mode: over the peers never turned away.
    pub continuity_index_admitted: f64,
    /// Continuity over the peers never turned away nor ejected, whole lives
    /// (the figure called "admitted" until 2026-12-05: it leaves out every peer
    /// that was once told to wait, even for its time as a member).
    pub continuity_index_never_turned_away: f64,
    pub members_at_end: u64,
    pub top_level_members: u64,
    pub top_level_peers: u64,
    /// Blocks mode: blocks expected and missed (not on time) at the peers on the
    /// top level at the end; block messages per stored block there.
    pub top_level_blocks_expected: u64,
    pub top_level_blocks_missed: u64,
    /// The same from the first crash or leave on (the top-level failures), over the
    /// peers on the top level right after it, each until it left or the end.
    pub top_level_blocks_expected_after_fault: Option<u64>,
    pub top_level_blocks_missed_after_fault: Option<u64>,
    pub top_level_duplicate_factor: Option<f64>,
    pub bottom_duplicate_factor: Option<f64>,
    pub joins: u64,
    pub leaves: u64,
    pub reassignments: u64,
    pub preemptions: u64,
    pub partial_recomputations: u64,
    pub full_recomputations: u64,
    pub congested_links: u64,
    pub ejected: u64,
    /// The least any choice of peers could have ejected (summed over ejections).
    pub ejected_lower_bound: u64,
    /// Of `ejected`: members that gave their place to a stronger newcomer while
    /// the overlay was full (the number carried unchanged; not in the bound).
    pub swapped_out: u64,
    /// Watching peers the overlay does not carry at the end (waiting for room or
    /// ejected), and the least that had to be left out for the same peers
    /// (seed 002's exact rule, `carried`).
    pub not_carried_at_end: u64,
    pub not_carried_lower_bound: u64,
    /// Ejections of peers ejected before (re-admitted, then ejected again).
    pub ejected_again: u64,
    /// The most times one peer was ejected within any 60 s (issue 11: at most 1).
    pub ejected_in_a_minute_max: u64,
    /// Premium peers (`viewers.premium_fraction`), those ejected at least once,
    /// and the continuity of premium and of free peers, every second of each
    /// counted (ejected ones at zero while out); `null` without premium peers.
    pub premium_peers: u64,
    pub premium_ejected: u64,
    pub continuity_premium: Option<f64>,
    pub continuity_free: Option<f64>,
    /// Asks of ejected peers turned away (each told a doubling retry time).
    pub turned_away: u64,
    pub pending_at_end: u64,
    pub assignments_sent: u64,
    /// Blocks pulled over lazy links (Have/Want) at the peers alive at the end.
    pub blocks_pulled: u64,
    /// The peers' uplink caps (C4), summed over the peers present at the end.
    pub uplink: UplinkTotals,
    /// D3/D6: top members that gave up bottom children for the push tree, and
    /// the calm top level's switches from flooding to a plain tree.
    pub push_room_bumps: u64,
    pub top_tree_switches: u64,
    /// C8: the bottom clusters' splits and merges, members re-labelled by them,
    /// `ClusterAssigned` answers sent, and the most clusters at once.
    pub clusters: ClusterMetrics,
    /// Per region: the algorithm of each level and the middle level's figures.
    pub regions: Vec<crate::middle_report::RegionMiddle>,
}

/// C8's figures (see [`PeerMetrics::clusters`]).
#[derive(Clone, Debug, Default, Serialize)]
pub struct ClusterMetrics {
    pub splits: u64,
    pub merges: u64,
    pub members_moved: u64,
    pub told: u64,
    pub most: u64,
}

/// What a run returns: the metrics, and the coordinator's events when kept.
#[derive(Clone, Debug)]
pub struct Report {
    pub metrics: Metrics,
    pub coord_events: Vec<(u64, CoordEvent)>,
    /// Each peer viewer's playout trace, in the order their books closed
    /// (`RunOptions::playout_trace`; empty otherwise).
    pub playout_traces: Vec<crate::playout::PlayoutTrace>,
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

fn region_figures(sim: &Simulation) -> Vec<RegionFigures> {
    let l = &sim.ledger;
    (0..sim.net.regions().len())
        .map(|r| {
            let (e, g) = l.sums(Some(r), None);
            let h = &l.startup[r];
            RegionFigures {
                region: sim.net.regions().name(r as u16).to_string(),
                viewers: l.arrived[r],
                viewers_started: h.count(),
                continuity_index: (e > 0.0).then(|| g / e),
                startup_delay_ms_p50: h.percentile(0.50),
                startup_delay_ms_p95: h.percentile(0.95),
                startup_delay_ms_max: h.max(),
            }
        })
        .collect()
}

pub(crate) fn finish(sim: &mut Simulation, wall_s: f64) -> Result<Report, crate::SimError> {
    let end = sim.end;
    for vi in 0..sim.viewers.len() {
        sim.finalize_viewer(vi, end);
    }
    sim.ledger.settle();
    sim.members_ledger.settle();
    let over = sim.members_ledger.slots_over();
    if over > 0 {
        sim.checker.record(
            "members_ledger_over",
            format!("{over} slots where members got more on time than expected"),
        );
    }
    let efficiency = (sim.metrics.bound_samples > 0)
        .then(|| match sim.sc.data_plane {
            DataPlane::Blocks => sim.ledger.efficiency(|s| sim.window_of_seq(s)),
            DataPlane::Rate => sim.ledger.efficiency(|s| s),
        })
        .flatten();
    if let Some(e) = efficiency.filter(|e| *e > 1.0 + 1e-9) {
        sim.checker.record(
            "efficiency_above_one",
            format!("efficiency {e:.6}: on-time delivery beat the capacity bound"),
        );
    }
    let per_region = region_figures(sim);
    let fault_windows = sim.fault_window_metrics();
    let recomputations = sim.recompute_window_metrics();
    let (recompute_min_second_continuity, recompute_min_second_received) =
        crate::recompute_windows::worst_steady_seconds(&recomputations);
    let recompute_min_second_continuity_members =
        crate::recompute_windows::worst_steady_members_second(&recomputations);
    let origin_sent = sim.origin_sent.total_until(end).round() as u64;
    let blocks = sim.sc.data_plane == DataPlane::Blocks;
    let m = &sim.metrics;
    let groups: [u64; 3] =
        [1u8, 2, 3].map(|g| sim.viewers.iter().filter(|v| v.group == g).count() as u64);
    let group_cont = |i: usize| {
        (sim.faults.first_relay_fault_at.is_some() && m.group_expected[i] > 0.0)
            .then(|| ratio(m.group_delivered[i], m.group_expected[i]))
    };
    // The stream rate counts payload only: so does the achieved rate.
    let achieved = ratio(m.delivered_payload_bytes as f64 * 8.0, m.viewer_seconds);
    let bound = (m.bound_samples > 0).then(|| m.bound_sum / m.bound_samples as f64);
    let ms = |us: u64| us as f64 / 1000.0;
    let f = &sim.faults;
    let cstats = sim.coord.stats();
    let count = |kind: &str| sim.log.counts.get(kind).copied().unwrap_or(0);
    let net = sim.net.stats();
    let dropped = DropReason::ALL
        .iter()
        .map(|r| (r.name(), net.dropped[*r as usize]))
        .chain([
            ("to_departed_node", m.to_departed),
            ("to_unknown_node", m.to_unknown),
        ])
        .collect();
    let metrics = Metrics {
        scenario: sim.sc.name.clone(),
        seed: sim.sc.seed,
        data_plane: match sim.sc.data_plane {
            DataPlane::Blocks => "blocks",
            DataPlane::Rate => "rate",
        },
        loss_modelled: sim.sc.data_plane == DataPlane::Blocks,
        continuity_index: if m.expected > 0.0 {
            m.delivered / m.expected
        } else {
            1.0
        },
        blocks_expected: blocks.then_some(m.expected.round() as u64),
        blocks_missed: blocks.then_some((m.expected - m.delivered).round() as u64),
        startup_delay_ms_p50: m.startup_ms.percentile(0.50),
        startup_delay_ms_p95: m.startup_ms.percentile(0.95),
        startup_delay_ms_max: m.startup_ms.max(),
        startup_playable_ms_p50: m.startup_playable_ms.percentile(0.50),
        startup_playable_ms_p95: m.startup_playable_ms.percentile(0.95),
        viewers_started: m.startup_ms.count(),
        lag_ms_p50: m.lag_ms.percentile(0.50),
        lag_ms_p95: m.lag_ms.percentile(0.95),
        delivered_bytes: m.delivered_bytes,
        origin_upload_bytes: origin_sent,
        origin_upload_bps_max: sim.origin_sent.max_bps,
        origin_uplink_bps: match sim.net.uplink_kbps(sim.origin) {
            0 => None,
            u => Some(f64::from(u) * 1000.0),
        },
        offload: 1.0 - ratio(origin_sent as f64, m.delivered_bytes as f64),
        capacity_bound_bps: bound,
        achieved_rate_bps: achieved,
        efficiency,
        cross_region_fraction: ratio(m.media_cross_region_bytes as f64, m.media_bytes as f64),
        control_overhead: ratio(m.control_bytes as f64, m.media_bytes as f64),
        duplicate_factor: match sim.sc.data_plane {
            DataPlane::Blocks if m.unique_blocks_stored > 0 => {
                m.block_msgs_received as f64 / m.unique_blocks_stored as f64
            }
            _ => 1.0,
        },
        distribute_events: cstats.distribute_events,
        distribute_rounds: cstats
            .distribute_events
            .saturating_sub(count("DistributeAbsorbed")),
        consolidate_events: cstats.consolidate_events,
        denied_joins: cstats.denied,
        redirected_logins: count("Redirected").saturating_sub(m.startup_ms.count()),
        login_denied: m.login_denied,
        active_relays_max: m.active_relays_max,
        relays_lower_bound: m.lower_bound_at_max,
        relays_lower_bound_cascade: m.lower_bound_cascade_at_max,
        relays_lower_bound_regional: m.lower_bound_regional_at_max,
        relays_steady_ratio: (m.steady_samples > 0)
            .then(|| m.steady_ratio_sum / m.steady_samples as f64),
        relays_steady_ratio_cascade: (m.steady_samples > 0)
            .then(|| m.steady_ratio_cascade_sum / m.steady_samples as f64),
        relays_steady_ratio_regional: (m.steady_samples > 0)
            .then(|| m.steady_ratio_regional_sum / m.steady_samples as f64),
        orphan_rehome_ms_max: (f.orphans_rehomed > 0).then(|| ms(f.rehome_max_us)),
        orphan_rehome_after_reassign_ms_max: (f.orphans_rehomed > 0)
            .then(|| ms(f.rehome_after_reassign_max_us)),
        orphan_reassign_ms_max: (f.reassign_max_us > 0).then(|| ms(f.reassign_max_us)),
        crash_detect_ms_max: (f.detect_max_us > 0).then(|| ms(f.detect_max_us)),
        orphans: f.orphans,
        orphans_unrehomed: f.unresolved(),
        relays_failed: m.relays_failed,
        continuity_after_fault_redundant: group_cont(0),
        continuity_after_fault_orphaned: group_cont(1),
        continuity_after_fault_single: group_cont(2),
        viewers_redundant: groups[0],
        viewers_orphaned: groups[1],
        viewers_single: groups[2],
        nodes: m.nodes_created,
        viewers: m.viewers_arrived,
        viewers_max: m.viewers_max,
        starving_viewer_samples: m.starving_viewer_samples,
        virtual_seconds: end as f64 / 1e6,
        wall_seconds: wall_s,
        events: sim.events,
        events_per_wall_second: ratio(sim.events as f64, wall_s),
        control_messages: m.control_messages,
        control_bytes: m.control_bytes,
        media_bytes: m.media_bytes,
        dropped,
        retransmissions: net.retransmissions,
        coordinator_heartbeats: cstats.heartbeats,
        coordinator_invalid_messages: cstats.invalid_messages,
        node_invalid_messages: m.node_invalid,
        blocks_verified: sim.signing.verifies(),
        playout_stage: sim.plays_out(),
        playout: sim.plays_out().then(|| sim.playout_totals.clone()),
        rejected_blocks: m.rejected_blocks,
        tampered_blocks_viewed: m.tampered_blocks_viewed,
        event_log: sim.log.counts.clone(),
        invariant_violation_count: sim.checker.count,
        invariant_violations: sim.checker.violations.clone(),
        notes: sim.checker.notes.clone(),
        per_region,
        fault_windows,
        recomputations,
        recompute_min_second_continuity,
        recompute_min_second_continuity_members,
        recompute_min_second_received,
        restarts: sim.restart_metrics(),
        parent_sets_per_s: sim.restarts.parent_sets_per_s.clone(),
        continuity_per_s: sim.continuity_per_s(),
        worst_viewer_continuity: sim.worst_viewer_continuity(),
        peers: sim
            .sc
            .peers_mode()
            .then(|| crate::peer_report::peer_metrics(sim)),
        policies: sim.policy_figures(),
        channels: sim.channel_figures(),
        flaky: sim.flaky_figures(),
    };
    let mut report = Report {
        metrics,
        coord_events: std::mem::take(&mut sim.log.kept),
        playout_traces: std::mem::take(&mut sim.playout_traces),
    };
    if let Err(e) = sim.log.close() {
        report.metrics.notes.push(e);
    }
    crate::output::write_all(sim, &mut report)?;
    Ok(report)
}

/// The uplink caps' counters summed over peers (`tiercast_node::uplink::UplinkStats`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct UplinkTotals {
    pub sent_blocks: u64,
    /// Lost to a full queue.
    pub dropped_blocks: u64,
    /// Dropped after waiting `uplink_max_wait_ms`.
    pub stale_blocks: u64,
}
