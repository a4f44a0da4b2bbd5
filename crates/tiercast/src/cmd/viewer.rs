//! `tiercast viewer`: a protocol viewer. It asks the coordinator where to watch,
//! receives signed blocks through the overlay, and reports how many arrived and how
//! many are missing — every seq between its first block and its last, across relay
//! switches (V9, V10) — with the relays it watched at and when; `--output` writes
//! the stream to a .ts file.

use super::common::NodeArgs;
use anyhow::{Context, Result};
use clap::Args as ClapArgs;
use serde::Serialize;
use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;
use tiercast_net::http::ViewerLimits;
use tiercast_net::node_driver::{spawn_node, NodeCommand, NodeHandle, NodeRuntime};
use tiercast_node::{Event, NodeConfig};
use tiercast_proto::NodeRole;

#[derive(ClapArgs, Debug)]
pub struct Args {
    #[command(flatten)]
    pub node: NodeArgs,
    #[arg(long, default_value = "live")]
    pub channel: String,
    /// Stop after this many seconds (0: until Ctrl-C).
    #[arg(long, default_value_t = 0)]
    pub duration: u64,
    /// Write a JSON report here every second and at the end (a viewer killed
    /// leaves the one of the second before).
    #[arg(long)]
    pub report: Option<std::path::PathBuf>,
    /// Write the received stream (MPEG-TS) here.
    #[arg(long)]
    pub output: Option<std::path::PathBuf>,
    #[arg(long, default_value = "127.0.0.1:0")]
    pub link_listen: SocketAddr,
    /// The viewer's region: the coordinator places it on that region's relays.
    #[arg(long, default_value = "")]
    pub region: String,
    /// When no block came for this long, give up on the relay and ask the
    /// coordinator again (a backstop: the coordinator moves the viewers of a relay
    /// it presumes crashed sooner); 0 leaves it to the link's idle timeout.
    #[arg(long, default_value_t = DEFAULT_SILENCE_MS)]
    pub silence_ms: u64,
}

/// The viewer's own silence bound (ms), far below the link's idle timeout.
pub const DEFAULT_SILENCE_MS: u64 = 3000;

/// Most relay placements kept in a report.
const RELAY_LOG_LIMIT: usize = 64;

/// One relay the viewer was sent to, with wall-clock times (ms since the Unix
/// epoch, so a test can compare them with its own clock on the same machine).
#[derive(Debug, Default, Serialize, Clone)]
pub struct RelayPlacement {
    pub relay: u32,
    /// When the coordinator's `WatchAt` for this relay arrived.
    pub placed_unix_ms: u64,
    /// When the relay accepted the LOGIN.
    pub connected_unix_ms: Option<u64>,
    /// When the first block was stored after the placement.
    pub first_block_unix_ms: Option<u64>,
}

#[derive(Debug, Default, Serialize, Clone)]
pub struct ViewerReport {
    pub node: u32,
    pub channel: String,
    /// Distinct seqs received from `first_seq` to `last_seq`, over the whole run.
    pub blocks_received: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// Seqs from `first_seq` to `last_seq` never received:
    /// `last_seq − first_seq + 1 − blocks_received`, across relay switches.
    pub blocks_missing: u64,
    pub duplicates: u64,
    /// Blocks that came after their seq had been counted missing.
    pub blocks_too_late: u64,
    /// Times the relay delivering new blocks changed.
    pub relay_switches: u64,
    /// Longest time without a new block, after the first (ms).
    pub longest_gap_ms: u64,
    pub bytes: u64,
    /// The relays it watches at when the report is made.
    pub relays: Vec<u32>,
    /// Every relay it was sent to, in order (at most 64).
    pub placements: Vec<RelayPlacement>,
    /// When the report was made (ms since the Unix epoch).
    pub reported_unix_ms: u64,
    /// The node's `/status` at the end (NodeSnapshot): its link counters (media
    /// and control bytes, block messages) and, in `continuity`, its startup and
    /// lag — what `tiercast cluster` reads (docs/ARCHITECTURE.md "What a node
    /// reports").
    pub status: Option<tiercast_net::node_driver::NodeSnapshot>,
}

pub fn viewer_runtime(
    node: &NodeArgs,
    id: tiercast_proto::NodeId,
    coordinator: tiercast_net::endpoint::CoordinatorUrl,
    link_listen: SocketAddr,
) -> Result<NodeRuntime> {
    Ok(NodeRuntime {
        node: NodeConfig {
            id,
            role: NodeRole::Viewer,
            tier: u8::MAX,
            capacity: 0,
            viewer_silence_ms: DEFAULT_SILENCE_MS,
            manager_id: node.manager_id,
            ..NodeConfig::default()
        },
        cluster_key: node.cluster.key()?,
        coordinator,
        listen: link_listen,
        http_listen: None,
        viewer_limits: ViewerLimits::default(),
        live_queue_blocks: 16,
        playout: None,
        net_emulation: node.emulation.load()?,
    })
}

/// Fills a report from a viewer node's snapshot.
pub async fn report_of(h: &NodeHandle, channel: &str) -> ViewerReport {
    let mut r = ViewerReport {
        node: h.id.0,
        channel: channel.to_string(),
        ..Default::default()
    };
    if let Some(s) = h.snapshot().await {
        if let Some(c) = s.channels.iter().find(|c| c.name == channel) {
            r.relays = c.parents.clone();
        }
        // Counted over the whole run, not since the current relay (its buffer).
        if let Some(c) = s.continuity.iter().find(|c| c.channel == channel) {
            r.blocks_received = c.received;
            r.first_seq = c.first_seq;
            r.last_seq = c.last_seq;
            r.blocks_missing = c.missing;
            r.duplicates = c.duplicates;
            r.blocks_too_late = c.too_late;
            r.relay_switches = c.relay_switches;
            r.longest_gap_ms = c.longest_gap_ms;
        }
        r.status = Some(s);
    }
    r
}

pub async fn run(a: Args) -> Result<()> {
    let coordinator = a.node.coordinator().await?;
    let mut rt = viewer_runtime(&a.node, a.node.node_id()?, coordinator, a.link_listen)?;
    rt.node.region = a.region.clone();
    rt.node.viewer_silence_ms = a.silence_ms;
    let h = spawn_node(rt).await?;
    let mut notices = h.subscribe();
    h.command(NodeCommand::Watch(a.channel.clone())).await?;
    let mut out = match &a.output {
        Some(p) => Some(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => None,
    };
    let mut bytes = 0u64;
    let mut placements: Vec<RelayPlacement> = Vec::new();
    let deadline = async {
        if a.duration == 0 {
            super::common::shutdown_signal().await
        } else {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(a.duration)) => {}
                _ = super::common::shutdown_signal() => {}
            }
        }
    };
    tokio::pin!(deadline);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut deadline => break,
            _ = tick.tick(), if a.report.is_some() => {
                if let Some(p) = &a.report {
                    let mut r = report_of(&h, &a.channel).await;
                    r.bytes = bytes;
                    r.placements = placements.clone();
                    r.reported_unix_ms = unix_ms();
                    if let Err(e) = super::common::write_report(&r, p) {
                        eprintln!("viewer {}: report not written: {e:#}", h.id);
                    }
                }
            }
            n = notices.recv() => match n {
                Ok(n) => match n.event {
                    Event::BlockStored { block } => {
                        if let Some(p) = placements.last_mut().filter(|p| p.first_block_unix_ms.is_none()) {
                            p.first_block_unix_ms = Some(unix_ms());
                        }
                        bytes += block.payload.len() as u64;
                        if let Some(o) = out.as_mut() {
                            o.write_all(&block.payload).context("writing --output")?;
                        }
                    }
                    Event::Watching { relay, .. } => {
                        eprintln!("viewer {}: watching through relay {relay}", h.id);
                        if placements.len() < RELAY_LOG_LIMIT {
                            placements.push(RelayPlacement {
                                relay: relay.0,
                                placed_unix_ms: unix_ms(),
                                ..Default::default()
                            });
                        }
                    }
                    Event::ParentConnected { parent, .. } => {
                        if let Some(p) = placements.last_mut().filter(|p| p.relay == parent.0 && p.connected_unix_ms.is_none()) {
                            p.connected_unix_ms = Some(unix_ms());
                        }
                    }
                    Event::WatchDenied { reason, .. } => eprintln!("viewer {}: refused: {reason}; retrying", h.id),
                    _ => {}
                },
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    eprintln!("viewer {}: output fell behind by {n} events", h.id);
                }
                Err(_) => break,
            }
        }
    }
    if let Some(mut o) = out {
        o.flush()?;
    }
    let mut report = report_of(&h, &a.channel).await;
    report.bytes = bytes;
    report.placements = placements;
    report.reported_unix_ms = unix_ms();
    let json = serde_json::to_string_pretty(&report)?;
    println!("{json}");
    if let Some(p) = &a.report {
        super::common::write_report(&report, p)?;
    }
    h.shutdown().await;
    Ok(())
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
