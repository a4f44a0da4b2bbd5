//! The coordinator's `/metrics` (feature X4): written from the machine's
//! read-only views (registry, channel managers, peer overlays, stats, ingest
//! reports) and what only the driver knows (events by kind, the election,
//! links, the HTTP API's counters). A standby (no machine) writes the
//! driver's part only, with `tiercast_coordinator_leading 0`.
//! `docs/METRICS.md` lists every metric.

use super::writer::Exposition;
use crate::http::ApiStats;
use crate::link::LinkStatsSnapshot;
use crate::node_driver::role_name;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use tiercast_coordinator::{CoordEvent, Coordinator};
use tiercast_proto::Timestamp;

/// The election's view, when the coordinator runs one on etcd (X7).
pub struct EtcdView {
    /// This process holds its manager id's lease now.
    pub leader: bool,
    /// The epoch of the lease it holds (0: none).
    pub epoch: u64,
}

/// What the driver adds to the machine's views.
pub struct CoordinatorExtras<'a> {
    /// The epoch of this process's orders (its election's, or its start's).
    pub epoch: u64,
    pub etcd: Option<EtcdView>,
    /// Events decided so far, by kind ([`event_kind`]).
    pub events: &'a BTreeMap<String, u64>,
    pub send_errors: u64,
    pub orders_dropped: u64,
    pub served_elsewhere: u64,
    pub links: LinkStatsSnapshot,
    pub api: &'a ApiStats,
}

/// An event's kind for the `kind` label: its variant in snake case
/// (`NodeRegistered` → `node_registered`).
pub fn event_kind(ev: &CoordEvent) -> String {
    let debug = format!("{ev:?}");
    let variant = debug
        .split(|c: char| !c.is_ascii_alphanumeric())
        .next()
        .unwrap_or("");
    let mut out = String::with_capacity(variant.len() + 4);
    for (i, c) in variant.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The page.
pub fn render(machine: Option<&Coordinator>, now: Timestamp, x: &CoordinatorExtras) -> String {
    let mut e = Exposition::new();
    let leading = machine.is_some_and(|m| m.superseded_by().is_none());
    e.gauge(
        "tiercast_coordinator_leading",
        "1 while this process runs the coordinator machine and no newer epoch superseded it.",
        &[],
        if leading { 1.0 } else { 0.0 },
    );
    e.gauge(
        "tiercast_coordinator_epoch",
        "The epoch (fencing token) of this process's orders (D7).",
        &[],
        x.epoch as f64,
    );
    if let Some(etcd) = &x.etcd {
        e.gauge(
            "tiercast_etcd_leader",
            "1 while this process holds its manager id's lease on etcd (X7).",
            &[],
            if etcd.leader { 1.0 } else { 0.0 },
        );
        e.gauge(
            "tiercast_etcd_epoch",
            "The epoch of the lease held on etcd (0: none).",
            &[],
            etcd.epoch as f64,
        );
    }
    let events = "Coordinator events decided, by kind (the event log's, e.g. node_registered, activated, consolidated).";
    for (kind, n) in x.events {
        e.counter(
            "tiercast_coordinator_events_total",
            events,
            &[("kind", kind)],
            *n,
        );
    }
    e.counter(
        "tiercast_coordinator_send_errors_total",
        "Sends to nodes that failed.",
        &[],
        x.send_errors,
    );
    e.counter(
        "tiercast_coordinator_orders_dropped_total",
        "Orders not sent because the lease had ended (fencing).",
        &[],
        x.orders_dropped,
    );
    e.counter(
        "tiercast_coordinator_served_elsewhere_total",
        "Node messages a standby answered with where the leader is.",
        &[],
        x.served_elsewhere,
    );
    let l = &x.links;
    e.link_bytes(
        [l.media_bytes_in, l.control_bytes_in],
        [l.media_bytes_out, l.control_bytes_out],
    );
    e.gauge(
        "tiercast_link_connections",
        "Node links admitted and alive.",
        &[],
        l.connections as f64,
    );
    e.counter(
        "tiercast_link_refused_admissions_total",
        "Links refused: wrong cluster key, bad Hello.",
        &[],
        l.refused_admissions,
    );
    e.counter(
        "tiercast_link_bad_frames_total",
        "Link frames dropped: undecodable or oversized.",
        &[],
        l.bad_frames + l.oversized_frames,
    );
    let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    e.counter(
        "tiercast_http_connections_total",
        "HTTP API connections accepted.",
        &[],
        get(&x.api.connections),
    );
    e.gauge(
        "tiercast_http_connections",
        "HTTP API connections open now.",
        &[],
        get(&x.api.active) as f64,
    );
    e.counter(
        "tiercast_http_refused_total",
        "HTTP API requests refused (connection cap, 503s).",
        &[],
        get(&x.api.refused),
    );
    e.counter(
        "tiercast_http_bad_requests_total",
        "HTTP API requests answered 400/404/405/408/431.",
        &[],
        get(&x.api.bad_requests),
    );
    e.counter(
        "tiercast_http_watch_requests_total",
        "GET /watch requests handed to the coordinator.",
        &[],
        get(&x.api.watches),
    );
    e.counter(
        "tiercast_http_watch_redirects_total",
        "GET /watch requests answered with a redirect to a relay.",
        &[],
        get(&x.api.redirects),
    );
    if let Some(m) = machine {
        machine_metrics(&mut e, m, now);
    }
    e.finish()
}

fn machine_metrics(e: &mut Exposition, m: &Coordinator, now: Timestamp) {
    let s = m.stats();
    e.counter(
        "tiercast_coordinator_heartbeats_total",
        "Heartbeats read.",
        &[],
        s.heartbeats,
    );
    let rejected = "Heartbeats not read: newer_epoch (the node follows a newer coordinator, D7).";
    e.counter(
        "tiercast_coordinator_rejected_heartbeats_total",
        rejected,
        &[("reason", "newer_epoch")],
        s.newer_epoch_heartbeats,
    );
    e.counter(
        "tiercast_coordinator_invalid_messages_total",
        "Node messages dropped as invalid.",
        &[],
        s.invalid_messages,
    );
    e.counter(
        "tiercast_coordinator_distribute_total",
        "DISTRIBUTE decisions (a relay's children spread to a new one).",
        &[],
        s.distribute_events,
    );
    e.counter(
        "tiercast_coordinator_consolidate_total",
        "CONSOLIDATE decisions (a little-used relay retired).",
        &[],
        s.consolidate_events,
    );
    e.counter(
        "tiercast_coordinator_viewer_redirects_total",
        "Viewers sent to a relay.",
        &[],
        s.redirects,
    );
    e.counter(
        "tiercast_coordinator_viewer_audio_redirects_total",
        "Viewers sent to an audio-only feed (C3).",
        &[],
        s.audio_redirects,
    );
    e.counter(
        "tiercast_coordinator_viewers_denied_total",
        "Viewers refused (no room, policy, unknown channel).",
        &[],
        s.denied,
    );
    e.counter(
        "tiercast_coordinator_orders_withheld_total",
        "Orders not sent because a successor holds the managers.",
        &[],
        s.orders_withheld,
    );
    // Nodes by role, tier and liveness (a small set: ≤ 4 roles × 256 tiers).
    let mut nodes: BTreeMap<(&'static str, u8, bool), u64> = BTreeMap::new();
    for (_, r) in m.registry().iter() {
        *nodes
            .entry((role_name(r.role), r.tier, r.alive))
            .or_default() += 1;
    }
    for ((role, tier, alive), n) in nodes {
        let tier = tier.to_string();
        let alive = if alive { "true" } else { "false" };
        e.gauge(
            "tiercast_coordinator_nodes",
            "Registered nodes by role, tier and whether they are heard from.",
            &[("role", role), ("tier", &tier), ("alive", alive)],
            n as f64,
        );
    }
    for c in m.channels() {
        let name = c.desc.name.as_str();
        for (tier, n) in c.count_per_tier() {
            let tier = tier.to_string();
            e.gauge(
                "tiercast_coordinator_channel_relays",
                "Relays active for a channel, by tier.",
                &[("channel", name), ("tier", &tier)],
                n as f64,
            );
        }
        if let Some(r) = m.ingest_report(c.desc.id) {
            let l = [("channel", name)];
            e.gauge(
                "tiercast_coordinator_ingest_stalled",
                "1 while the channel's origin reports its encoder stalled (X1).",
                &l,
                if r.report.stalled { 1.0 } else { 0.0 },
            );
            e.gauge(
                "tiercast_coordinator_ingest_bitrate_bits_per_second",
                "The channel's ingest bitrate, as its origin last reported.",
                &l,
                f64::from(r.report.bitrate_in_kbps) * 1000.0,
            );
            e.gauge(
                "tiercast_coordinator_ingest_report_age_seconds",
                "Age of the origin's last ingest report.",
                &l,
                now.saturating_since(r.at) as f64 / 1e6,
            );
        }
    }
    for o in m.peer_overlays() {
        let name = o.desc.name.as_str();
        let l = [("channel", name)];
        let st = &o.stats;
        e.gauge(
            "tiercast_coordinator_overlay_members",
            "Members of a channel's peer overlay (peers and waypoint relays).",
            &l,
            o.members.len() as f64,
        );
        e.counter(
            "tiercast_coordinator_peer_joins_total",
            "Peers that joined a channel's overlay.",
            &l,
            st.joins,
        );
        e.counter(
            "tiercast_coordinator_peer_leaves_total",
            "Peers that left a channel's overlay.",
            &l,
            st.leaves,
        );
        e.counter(
            "tiercast_coordinator_peer_reassignments_total",
            "Peers given new parents.",
            &l,
            st.reassignments,
        );
        let recomputations =
            "Placements recomputed for a channel's overlay: full (the whole overlay) or partial.";
        e.counter(
            "tiercast_coordinator_recomputations_total",
            recomputations,
            &[("channel", name), ("kind", "full")],
            st.full_recomputations,
        );
        e.counter(
            "tiercast_coordinator_recomputations_total",
            recomputations,
            &[("channel", name), ("kind", "partial")],
            st.partial_recomputations,
        );
        e.counter(
            "tiercast_coordinator_peers_ejected_total",
            "Peers ejected from a channel's overlay (no room).",
            &l,
            st.ejected,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tiercast_proto::{NodeId, NodeRole};

    #[test]
    fn a_fresh_leader_and_a_standby() {
        let events = BTreeMap::from([("node_registered".to_string(), 2)]);
        let api = ApiStats::default();
        let extras = CoordinatorExtras {
            epoch: 5,
            etcd: Some(EtcdView {
                leader: true,
                epoch: 5,
            }),
            events: &events,
            send_errors: 0,
            orders_dropped: 0,
            served_elsewhere: 0,
            links: LinkStatsSnapshot::default(),
            api: &api,
        };
        let machine = Coordinator::new(
            tiercast_coordinator::CoordinatorConfig::default(),
            Timestamp::ZERO,
        );
        let page = render(Some(&machine), Timestamp::ZERO, &extras);
        assert!(page.contains("tiercast_coordinator_leading 1\n"), "{page}");
        assert!(page.contains("tiercast_etcd_epoch 5\n"));
        assert!(page.contains("tiercast_coordinator_events_total{kind=\"node_registered\"} 2\n"));
        assert!(page.contains("tiercast_coordinator_heartbeats_total 0\n"));
        let standby = render(None, Timestamp::ZERO, &extras);
        assert!(standby.contains("tiercast_coordinator_leading 0\n"));
        assert!(
            !standby.contains("tiercast_coordinator_heartbeats_total"),
            "no machine, no machine counters"
        );
    }

    #[test]
    fn event_kinds_are_snake_case_variants() {
        let ev = CoordEvent::NodeRegistered {
            node: NodeId(3),
            role: NodeRole::Relay,
            tier: 1,
        };
        assert_eq!(event_kind(&ev), "node_registered");
    }
}
