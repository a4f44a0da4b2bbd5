//! An origin's, relay's or peer's `/metrics` (feature X4, X1's ingest health):
//! written from its [`NodeSnapshot`] — the read-only view `/status` serves —
//! plus what only the driver knows: the RTT of its live links, the origin's
//! last ingest report, its HTTP viewer server's counters. Per channel where
//! the machine counts per channel (buffer, parents, children, viewers,
//! signature failures, playout); node-wide where it counts node-wide (blocks
//! out, link bytes, recovery shards, the uplink pacer). `docs/METRICS.md`.

use super::writer::Exposition;
use crate::http::ViewerServerStats;
use crate::node_driver::NodeSnapshot;
use std::sync::atomic::Ordering;
use tiercast_proto::IngestReport;

/// What the driver adds to the snapshot.
#[derive(Default)]
pub struct NodeExtras<'a> {
    /// Each live link's RTT (s), by peer node id: the channels' parents and
    /// the coordinator (id 0).
    pub link_rtt_s: Vec<(u32, f64)>,
    /// An origin's latest ingest report per channel (name), and its age (s).
    pub ingest: Vec<(String, f64, IngestReport)>,
    /// The HTTP viewer server's counters (relays, peers; an origin's metrics port).
    pub http: Option<&'a ViewerServerStats>,
}

/// The page.
pub fn render(s: &NodeSnapshot, x: &NodeExtras) -> String {
    let mut e = Exposition::new();
    let node = s.id.to_string();
    e.gauge(
        "tiercast_node_info",
        "This node: its id and role (always 1).",
        &[("node", &node), ("role", &s.role)],
        1.0,
    );
    e.gauge(
        "tiercast_node_registered",
        "1 while the coordinator has answered this node's registration.",
        &[],
        flag(s.registered),
    );
    e.gauge(
        "tiercast_node_coordinator_epoch",
        "The coordinator epoch this node follows (D7).",
        &[],
        s.coordinator_epoch as f64,
    );
    e.counter(
        "tiercast_node_stale_orders_total",
        "Orders of an older coordinator epoch ignored.",
        &[],
        s.stale_orders,
    );
    e.gauge(
        "tiercast_node_load",
        "Children and viewers this node serves, over all channels.",
        &[],
        f64::from(s.load),
    );
    e.gauge(
        "tiercast_node_capacity",
        "Most children and viewers this node takes.",
        &[],
        f64::from(s.capacity),
    );
    channels(&mut e, s);
    node_wide(&mut e, s);
    links(&mut e, s, x);
    if let Some(u) = &s.uplink {
        e.gauge(
            "tiercast_uplink_rate_bits_per_second",
            "The uplink pacer's rate (the declared uplink).",
            &[],
            f64::from(u.rate_kbps) * 1000.0,
        );
        e.counter(
            "tiercast_uplink_sent_bytes_total",
            "Block bytes the uplink pacer sent.",
            &[],
            u.sent_bytes,
        );
        let dropped = "Blocks the uplink pacer dropped: queue_full (a child's queue overflowed), stale (waited past max_wait_ms), child_left.";
        e.counter(
            "tiercast_uplink_dropped_blocks_total",
            dropped,
            &[("reason", "queue_full")],
            u.dropped_blocks,
        );
        e.counter(
            "tiercast_uplink_dropped_blocks_total",
            dropped,
            &[("reason", "stale")],
            u.stale_blocks,
        );
        e.counter(
            "tiercast_uplink_dropped_blocks_total",
            dropped,
            &[("reason", "child_left")],
            u.discarded_blocks,
        );
        e.gauge(
            "tiercast_uplink_queued_blocks",
            "Blocks waiting in the uplink pacer's queues.",
            &[],
            u.queued_blocks as f64,
        );
    }
    if let Some(h) = x.http {
        let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        e.gauge(
            "tiercast_http_connections",
            "HTTP connections open now (viewers streaming included).",
            &[],
            get(&h.active) as f64,
        );
        e.counter(
            "tiercast_http_connections_total",
            "HTTP connections accepted.",
            &[],
            get(&h.connections),
        );
        e.counter(
            "tiercast_http_refused_total",
            "HTTP requests refused (connection cap, driver refusals and timeouts).",
            &[],
            get(&h.refused),
        );
        e.counter(
            "tiercast_http_bad_requests_total",
            "HTTP requests answered 400/404/405/408/431.",
            &[],
            get(&h.bad_requests),
        );
        e.counter(
            "tiercast_http_viewer_resyncs_total",
            "Times an HTTP viewer lagged and skipped to a keyframe.",
            &[],
            get(&h.lagged_resyncs),
        );
        e.counter(
            "tiercast_http_bytes_out_total",
            "Bytes written to HTTP viewers.",
            &[],
            get(&h.bytes_out),
        );
    }
    for (channel, age_s, r) in &x.ingest {
        super::ingest::write(&mut e, channel, *age_s, r);
    }
    e.finish()
}

pub(super) fn flag(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

fn channels(e: &mut Exposition, s: &NodeSnapshot) {
    for c in &s.channels {
        let l = [("channel", c.name.as_str())];
        e.gauge(
            "tiercast_channel_tier",
            "The tier this node serves the channel in (0: origin).",
            &l,
            f64::from(c.tier),
        );
        e.gauge(
            "tiercast_channel_viewers",
            "Viewers (HTTP and protocol) this node serves the channel to.",
            &l,
            f64::from(c.viewers),
        );
        e.gauge(
            "tiercast_channel_children",
            "Child nodes this node feeds the channel to.",
            &l,
            c.child_nodes.len() as f64,
        );
        e.gauge(
            "tiercast_channel_parents",
            "Parents this node takes the channel from.",
            &l,
            c.parents.len() as f64,
        );
        e.counter(
            "tiercast_channel_blocks_stored_total",
            "Blocks of the channel stored (each seq once): blocks in.",
            &l,
            c.stored,
        );
        e.counter(
            "tiercast_channel_bytes_stored_total",
            "Payload bytes of the blocks stored: bytes in.",
            &l,
            c.bytes_stored,
        );
        e.counter(
            "tiercast_channel_blocks_missing_total",
            "Seqs skipped over in the channel's buffer (never stored).",
            &l,
            c.missing,
        );
        e.counter(
            "tiercast_channel_blocks_duplicate_total",
            "Blocks of the channel received again (dropped).",
            &l,
            c.duplicates,
        );
        e.counter(
            "tiercast_channel_signature_failures_total",
            "Blocks whose origin signature failed (dropped).",
            &l,
            c.rejected,
        );
        e.counter(
            "tiercast_channel_wants_total",
            "Blocks asked of lazy parents (D3 repair).",
            &l,
            c.wants_sent,
        );
        e.counter(
            "tiercast_channel_pulled_blocks_total",
            "Blocks that came back for a want.",
            &l,
            c.pulled,
        );
        if let Some(h) = c.highest_seq {
            e.gauge(
                "tiercast_channel_highest_seq",
                "The highest seq stored.",
                &l,
                h as f64,
            );
        }
        let seen = c.stored + c.missing;
        if seen > 0 {
            e.gauge(
                "tiercast_channel_continuity_ratio",
                "Blocks stored over blocks stored and missing (1: nothing lost).",
                &l,
                c.stored as f64 / seen as f64,
            );
        }
        if let Some(ms) = c.measured.startup_ms {
            e.gauge(
                "tiercast_channel_startup_seconds",
                "From the first ask (or placement) to the first block stored.",
                &l,
                ms as f64 / 1000.0,
            );
        }
        if let Some(lag) = &c.measured.lag {
            lag_quantiles(e, &c.name, lag);
        }
        if let Some(p) = &c.playout {
            e.counter(
                "tiercast_channel_playout_played_blocks_total",
                "Blocks the playout stage (peers, D4) played in order.",
                &l,
                p.played,
            );
            e.counter(
                "tiercast_channel_blocks_late_total",
                "Blocks that arrived after their seq was played past (peers' playout stage).",
                &l,
                p.late,
            );
            e.counter(
                "tiercast_channel_playout_skipped_blocks_total",
                "Seqs the playout stage gave up as missing.",
                &l,
                p.skipped_missing,
            );
        }
    }
}

fn lag_quantiles(
    e: &mut Exposition,
    channel: &str,
    lag: &tiercast_node::lag_histogram::LagHistogram,
) {
    let help = "Origin time to stored, per block since the channel started here: quantiles (0.5, 0.99, 1 = the worst).";
    for (q, v) in [
        ("0.5", lag.quantile_ms(0.5)),
        ("0.99", lag.quantile_ms(0.99)),
        ("1", lag.max_ms()),
    ] {
        if let Some(ms) = v {
            e.gauge(
                "tiercast_channel_lag_seconds",
                help,
                &[("channel", channel), ("quantile", q)],
                ms as f64 / 1000.0,
            );
        }
    }
}

fn node_wide(e: &mut Exposition, s: &NodeSnapshot) {
    e.counter("tiercast_blocks_in_total", "Blocks taken in from parents that passed the signature check, duplicates included (an origin: none; its blocks are its ingest's).", &[], s.blocks_in);
    e.counter(
        "tiercast_blocks_out_total",
        "Blocks sent (forwarded) to child nodes, pushes and repairs, over all channels.",
        &[],
        s.blocks_out,
    );
    e.counter(
        "tiercast_repairs_refused_total",
        "Wants cut short by the repair budget.",
        &[],
        s.repairs_refused,
    );
    e.counter(
        "tiercast_invalid_messages_total",
        "Messages the node machine dropped as invalid.",
        &[],
        s.invalid_messages,
    );
    let shards =
        "Recovery shards (D5): in from coded parents, out to coded children, invalid (refused).";
    e.counter(
        "tiercast_recovery_shards_total",
        shards,
        &[("direction", "in")],
        s.shards_in,
    );
    e.counter(
        "tiercast_recovery_shards_total",
        shards,
        &[("direction", "out")],
        s.shards_out,
    );
    e.counter(
        "tiercast_recovery_shards_total",
        shards,
        &[("direction", "invalid")],
        s.shards_invalid,
    );
    e.counter(
        "tiercast_blocks_rebuilt_total",
        "Blocks rebuilt from recovery shards (D5).",
        &[],
        s.blocks_rebuilt,
    );
}

fn links(e: &mut Exposition, s: &NodeSnapshot, x: &NodeExtras) {
    e.link_bytes(
        [s.media_bytes_in, s.control_bytes_in],
        [s.media_bytes_out, s.control_bytes_out],
    );
    e.counter(
        "tiercast_link_bad_frames_total",
        "Link frames dropped: undecodable or oversized.",
        &[],
        s.bad_frames,
    );
    e.counter(
        "tiercast_link_refused_admissions_total",
        "Links refused: wrong cluster key, bad Hello.",
        &[],
        s.refused_admissions,
    );
    e.counter(
        "tiercast_link_queue_full_drops_total",
        "Messages dropped because a peer's send queue was full.",
        &[],
        s.queue_full_drops,
    );
    e.counter(
        "tiercast_link_send_errors_total",
        "Sends that failed (no link, closed).",
        &[],
        s.send_errors,
    );
    for (peer, rtt) in &x.link_rtt_s {
        let peer = if *peer == tiercast_proto::COORDINATOR_ID.0 {
            "coordinator".to_string()
        } else {
            peer.to_string()
        };
        e.gauge(
            "tiercast_link_rtt_seconds",
            "Round-trip time of the live link to a peer (a parent, or \"coordinator\").",
            &[("peer", &peer)],
            *rtt,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node_driver::ChannelSnapshot;

    #[test]
    fn per_channel_samples_carry_the_channel_and_node_wide_ones_none() {
        let snapshot = NodeSnapshot {
            id: 7,
            role: "relay".into(),
            registered: true,
            blocks_out: 12,
            channels: vec![
                ChannelSnapshot {
                    name: "a".into(),
                    parents: vec![3],
                    stored: 99,
                    missing: 1,
                    ..ChannelSnapshot::default()
                },
                ChannelSnapshot {
                    name: "b".into(),
                    ..ChannelSnapshot::default()
                },
            ],
            ..NodeSnapshot::default()
        };
        let extras = NodeExtras {
            link_rtt_s: vec![(0, 0.002), (3, 0.0105)],
            ..NodeExtras::default()
        };
        let page = render(&snapshot, &extras);
        assert!(
            page.contains("tiercast_node_info{node=\"7\",role=\"relay\"} 1\n"),
            "{page}"
        );
        assert!(page.contains("tiercast_channel_blocks_stored_total{channel=\"a\"} 99\n"));
        assert!(page.contains("tiercast_channel_blocks_stored_total{channel=\"b\"} 0\n"));
        assert!(page.contains("tiercast_channel_continuity_ratio{channel=\"a\"} 0.99\n"));
        assert!(
            !page.contains("tiercast_channel_continuity_ratio{channel=\"b\"}"),
            "nothing seen: no ratio (not NaN)"
        );
        assert!(page.contains("tiercast_blocks_out_total 12\n"));
        assert!(page.contains("tiercast_link_rtt_seconds{peer=\"coordinator\"} 0.002\n"));
        assert!(page.contains("tiercast_link_rtt_seconds{peer=\"3\"} 0.0105\n"));
        assert!(
            !page.contains("tiercast_ingest_"),
            "no ingest report, no ingest metrics"
        );
        assert_eq!(page.matches("# TYPE tiercast_channel_parents ").count(), 1);
    }
}
