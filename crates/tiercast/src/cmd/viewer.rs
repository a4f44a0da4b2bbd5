//! `tiercast viewer`: a protocol viewer. It asks the coordinator where to watch,
//! receives signed blocks through the overlay, and reports how many arrived and how
//! many are missing (gaps in seq); `--output` writes the stream to a .ts file.

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
    /// Write a JSON report here at the end.
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
}

#[derive(Debug, Default, Serialize, Clone)]
pub struct ViewerReport {
    pub node: u32,
    pub channel: String,
    pub blocks_received: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    pub blocks_missing: u64,
    pub duplicates: u64,
    pub bytes: u64,
    pub relays: Vec<u32>,
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
            ..NodeConfig::default()
        },
        cluster_key: node.cluster.key()?,
        coordinator,
        listen: link_listen,
        http_listen: None,
        viewer_limits: ViewerLimits::default(),
        live_queue_blocks: 16,
        playout: None,
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
            r.blocks_received = c.stored;
            r.first_seq = c.first_seq;
            r.last_seq = c.highest_seq;
            r.blocks_missing = c.missing;
            r.duplicates = c.duplicates;
            r.relays = c.parents.clone();
        }
    }
    r
}

pub async fn run(a: Args) -> Result<()> {
    let coordinator = a.node.coordinator().await?;
    let mut rt = viewer_runtime(&a.node, a.node.node_id()?, coordinator, a.link_listen)?;
    rt.node.region = a.region.clone();
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
    loop {
        tokio::select! {
            _ = &mut deadline => break,
            n = notices.recv() => match n {
                Ok(n) => match n.event {
                    Event::BlockStored { block } => {
                        bytes += block.payload.len() as u64;
                        if let Some(o) = out.as_mut() {
                            o.write_all(&block.payload).context("writing --output")?;
                        }
                    }
                    Event::Watching { relay, .. } => eprintln!("viewer {}: watching through relay {relay}", h.id),
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
    let json = serde_json::to_string_pretty(&report)?;
    println!("{json}");
    if let Some(p) = &a.report {
        std::fs::write(p, &json).with_context(|| format!("writing {}", p.display()))?;
    }
    h.shutdown().await;
    Ok(())
}
