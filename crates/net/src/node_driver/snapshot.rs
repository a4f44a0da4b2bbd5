//! A node's state as JSON-ready data: the driver's answer to
//! [`super::NodeCommand::Snapshot`] and to `GET /status` on its HTTP port (the
//! demo's table, tests, benchmarks, operators). Counters cover the links (bytes
//! in and out, media and control as the simulator splits them), the uplink cap
//! (C4) and, per channel, the buffer, the playout (D4) and startup, lag and
//! blocks stored (issue 13: what `tiercast cluster` reads; docs/ARCHITECTURE.md
//! "What a node reports"), and the network emulation's counters when it is on.

use super::local::LocalViewers;
use crate::link::{EmulationStats, LinkStatsSnapshot};
use serde::Serialize;
use tiercast_node::channel::Phase;
use tiercast_node::lag_histogram::LagHistogram;
use tiercast_node::uplink::UplinkStats;
use tiercast_node::Node;
use tiercast_node::PlayoutStats;

#[derive(Clone, Debug, Default, Serialize)]
pub struct ChannelSnapshot {
    pub id: u32,
    pub name: String,
    pub tier: u8,
    pub phase: &'static str,
    pub parents: Vec<u32>,
    /// Each parent with the share of the stream it pushes on its link (1: every
    /// block; 1/k per substream; 0: a lazy link).
    pub parent_shares: Vec<(u32, f64)>,
    pub child_nodes: Vec<u32>,
    pub viewers: u32,
    pub first_seq: Option<u64>,
    pub highest_seq: Option<u64>,
    pub stored: u64,
    /// Payload bytes of the blocks stored.
    pub bytes_stored: u64,
    pub missing: u64,
    pub duplicates: u64,
    pub rejected: u64,
    /// Blocks asked of lazy parents, blocks that came back, and seqs a parent
    /// answered it did not send (D3 repair).
    pub wants_sent: u64,
    pub pulled: u64,
    pub wants_unmet: u64,
    /// The local stream's reorder stage (peers).
    pub playout: Option<PlayoutStats>,
    /// What the node measured of this channel since it first asked for it (a
    /// peer, a protocol viewer) or was placed on it (a relay); `None` when not
    /// measured (an origin). See [`Measured`].
    #[serde(flatten)]
    pub measured: Measured,
}

/// Startup, lag and stored blocks of one channel (`tiercast_node::timings`),
/// each the simulator's figure taken at the same point (`sim/src/blocks.rs`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Measured {
    /// Ms from the first ask (a viewer's or peer's `watch`; a relay's placement)
    /// to the first block stored: one sample of the sim's `startup_delay_ms`.
    pub startup_ms: Option<u64>,
    /// The same to the first keyframe stored: the sim's `startup_playable_ms`.
    pub startup_playable_ms: Option<u64>,
    /// Origin time → stored, each block stored: the sim's `lag_ms` at a viewer
    /// without a playout stage (a protocol viewer; a peer's stage reports its
    /// own, `playout.lag`, the sim's figure when `playout_stage` is on).
    pub lag: Option<LagHistogram>,
    /// Wire bytes of the blocks stored: the sim's `delivered_bytes` at a viewer.
    pub delivered_bytes: Option<u64>,
    /// Blocks stored (`BlockStored` events): the sim's `unique_blocks_stored`.
    pub unique_blocks_stored: Option<u64>,
}

impl Measured {
    fn of(node: &Node, name: &str) -> Self {
        let Some(t) = node.timings().and_then(|t| t.get(name)) else {
            return Measured::default();
        };
        Measured {
            startup_ms: t.startup_ms(),
            startup_playable_ms: t.startup_playable_ms(),
            lag: Some(t.lag.clone()),
            delivered_bytes: Some(t.delivered_bytes),
            unique_blocks_stored: Some(t.blocks_stored),
        }
    }
}

/// A protocol viewer's seq accounting of one channel over its whole run, across
/// relay switches (see `tiercast_node::continuity`).
#[derive(Clone, Debug, Serialize)]
pub struct ContinuitySnapshot {
    pub channel: String,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    pub received: u64,
    pub missing: u64,
    pub duplicates: u64,
    pub too_late: u64,
    pub relay_switches: u64,
    pub longest_gap_ms: u64,
    /// Startup from the viewer's `watch`, lag origin → received (each block
    /// stored; relay-fed, no playout stage: the sim's `lag_ms` for viewers),
    /// bytes and blocks stored, over its whole run, across relay switches.
    #[serde(flatten)]
    pub measured: Measured,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct NodeSnapshot {
    pub id: u32,
    pub role: String,
    pub registered: bool,
    /// The coordinator epoch the node follows, and orders of older epochs it
    /// ignored (D7, X7).
    pub coordinator_epoch: u64,
    pub stale_orders: u64,
    pub load: u32,
    pub capacity: u32,
    /// Declared uplink (kbit/s; 0: none declared).
    pub uplink_kbps: u32,
    pub channels: Vec<ChannelSnapshot>,
    /// Link bytes received and sent (all messages, after admission).
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// The same split as the simulator splits it (`crate::link::LinkStatsSnapshot`):
    /// media (blocks, recovery shards) and control, whole frames; control from
    /// the coordinator; `Block` messages received, duplicates included.
    pub media_bytes_out: u64,
    pub media_bytes_in: u64,
    pub control_bytes_out: u64,
    pub control_bytes_in: u64,
    pub coordinator_bytes_in: u64,
    pub block_msgs_in: u64,
    pub bad_frames: u64,
    pub refused_admissions: u64,
    pub queue_full_drops: u64,
    pub send_errors: u64,
    pub http_viewers_active: u64,
    /// The uplink cap's counters (peers that declared an uplink).
    pub uplink: Option<UplinkStats>,
    /// Blocks sent to children (pushed and repairs), and `Want`s cut short by
    /// the repair budget.
    pub blocks_out: u64,
    pub repairs_refused: u64,
    /// Blocks taken in from parents (or cut, at an origin) by the machine, and
    /// messages it dropped as invalid.
    pub blocks_in: u64,
    pub invalid_messages: u64,
    /// Recovery shards (D5) taken from coded parents, sent to coded children,
    /// refused; blocks rebuilt from them.
    pub shards_in: u64,
    pub shards_out: u64,
    pub shards_invalid: u64,
    pub blocks_rebuilt: u64,
    /// Protocol viewers: every channel watched, counted across relay switches.
    pub continuity: Vec<ContinuitySnapshot>,
    /// The network emulation's counters (`--net-emulation`, issue 13); `None`
    /// when it is off.
    pub net_emulation: Option<EmulationStats>,
}

pub(crate) fn snapshot(
    node: &Node,
    links: &LinkStatsSnapshot,
    net_emulation: Option<EmulationStats>,
    local: &LocalViewers,
    send_errors: u64,
    http_viewers_active: u64,
) -> NodeSnapshot {
    NodeSnapshot {
        id: node.id().0,
        role: super::role_name(node.config().role).to_string(),
        registered: node.is_registered(),
        coordinator_epoch: node.coordinator_epoch(),
        stale_orders: node.stats().stale_orders,
        load: node.machine_load(),
        capacity: node.config().capacity,
        uplink_kbps: node.config().uplink_kbps,
        channels: node
            .channels()
            .map(|(id, c)| ChannelSnapshot {
                id: id.0,
                name: c.desc.name.clone(),
                tier: c.tier,
                phase: match c.phase {
                    Phase::Expanding => "expanding",
                    Phase::Contracting => "contracting",
                },
                parents: c.parents.ids().iter().map(|p| p.0).collect(),
                parent_shares: c
                    .parents
                    .iter()
                    .map(|(p, l)| (p.0, l.feed.share()))
                    .collect(),
                child_nodes: c.children.nodes.keys().map(|n| n.0).collect(),
                viewers: c.children.viewers.len() as u32,
                first_seq: c.buffer.first_seq(),
                highest_seq: c.buffer.highest_seq(),
                stored: c.buffer.stored(),
                bytes_stored: c.buffer.bytes_stored(),
                missing: c.buffer.missing_total(),
                duplicates: c.buffer.duplicates(),
                rejected: c.rejected_blocks,
                wants_sent: c.pull.wants_sent,
                pulled: c.pull.pulled,
                wants_unmet: c.pull.unmet,
                playout: local.playout_stats(*id),
                measured: Measured::of(node, &c.desc.name),
            })
            .collect(),
        bytes_in: links.bytes_in,
        bytes_out: links.bytes_out,
        media_bytes_out: links.media_bytes_out,
        media_bytes_in: links.media_bytes_in,
        control_bytes_out: links.control_bytes_out,
        control_bytes_in: links.control_bytes_in,
        coordinator_bytes_in: links.coordinator_bytes_in,
        block_msgs_in: links.block_msgs_in,
        bad_frames: links.bad_frames + links.oversized_frames,
        refused_admissions: links.refused_admissions,
        queue_full_drops: links.queue_full_drops,
        send_errors,
        http_viewers_active,
        uplink: node.uplink_stats(),
        blocks_out: node.stats().blocks_out,
        repairs_refused: node.stats().repairs_refused,
        blocks_in: node.stats().blocks_in,
        invalid_messages: node.stats().invalid_messages,
        shards_in: node.stats().shards_in,
        shards_out: node.stats().shards_out,
        shards_invalid: node.stats().shards_invalid,
        blocks_rebuilt: node.stats().blocks_rebuilt,
        continuity: node
            .continuity()
            .iter()
            .map(|(name, c)| {
                let r = c.report();
                ContinuitySnapshot {
                    channel: name.clone(),
                    first_seq: r.first_seq,
                    last_seq: r.last_seq,
                    received: r.received,
                    missing: r.missing,
                    duplicates: r.duplicates,
                    too_late: r.too_late,
                    relay_switches: r.relay_switches,
                    longest_gap_ms: r.longest_gap_ms,
                    measured: Measured::of(node, name),
                }
            })
            .collect(),
        net_emulation,
    }
}
