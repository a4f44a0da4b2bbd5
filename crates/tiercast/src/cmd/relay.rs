//! `tiercast relay`: a relay in a tier; viewers play `http://<listen>/live/<channel>.ts`
//! or HLS / LL-HLS at `http://<listen>/hls/<channel>/index.m3u8` (X2).

use super::common::{shutdown_signal, NodeArgs};
use anyhow::Result;
use clap::Args as ClapArgs;
use std::net::SocketAddr;
use tiercast_net::http::ViewerLimits;
use tiercast_net::node_driver::{spawn_node, NodeRuntime};
use tiercast_node::NodeConfig;
use tiercast_proto::NodeRole;

#[derive(ClapArgs, Debug)]
pub struct Args {
    #[command(flatten)]
    pub node: NodeArgs,
    /// Tier of the static overlay (1 is nearest the origin).
    #[arg(long, default_value_t = 1)]
    pub tier: u8,
    /// Region name (viewers are placed in their region's tiers).
    #[arg(long, default_value = "")]
    pub region: String,
    /// Most children (child relays + viewers) over all channels.
    #[arg(long, default_value_t = 100)]
    pub capacity: u32,
    /// DISTRIBUTE at this load (default: the capacity).
    #[arg(long)]
    pub max_threshold: Option<u32>,
    /// CONSOLIDATE below this load once contracting.
    #[arg(long, default_value_t = 2)]
    pub min_threshold: u32,
    /// Viewer HTTP address (TCP); the node link uses the same port on UDP unless --link-listen is given.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Node link address (UDP).
    #[arg(long)]
    pub link_listen: Option<SocketAddr>,
    /// Blocks kept per channel.
    #[arg(long, default_value_t = 512)]
    pub buffer_blocks: usize,
    /// Upload this relay offers the peer overlay (kbit/s): what the coordinator may
    /// book for peers' substreams when the relay is a waypoint (tier 1); its spare
    /// serves repairs and HTTP viewers. 0: undeclared (the coordinator assumes a default).
    #[arg(long, default_value_t = 0, value_name = "KBPS")]
    pub uplink_kbps: u32,
    /// Repairs (answers to peers' `Want`s) may use this share of --uplink-kbps
    /// on top of what is booked (0 < share <= 1).
    #[arg(long, default_value_t = 0.2, value_name = "SHARE")]
    pub repair_share: f64,
    /// Audio-only viewers (`?feed=audio`, C3) taken beyond --capacity, over all
    /// channels; past it they are answered 503.
    #[arg(long, default_value_t = 400)]
    pub audio_capacity: u32,
    /// Longest delay served (`?delay=N`, C3's delayed feed; at most 3600); a longer
    /// one is answered 400. The buffer is raised to hold it: at least
    /// max-delay-s x 20 blocks (a block per ~100 ms PAT, more at high bitrates).
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub max_delay_s: u32,
    /// Write the relay's counters (JSON, as /status) here every second and at exit.
    #[arg(long)]
    pub report: Option<std::path::PathBuf>,
}

/// Blocks per second of stream the buffer is sized for when it must hold a delay.
const BUFFER_BLOCKS_PER_DELAY_S: usize = 20;

pub fn runtime(
    a: &Args,
    coordinator: tiercast_net::endpoint::CoordinatorUrl,
) -> Result<NodeRuntime> {
    let node = NodeConfig {
        id: a.node.node_id()?,
        manager_id: a.node.manager_id,
        role: NodeRole::Relay,
        tier: a.tier,
        region: a.region.clone(),
        capacity: a.capacity,
        max_threshold: a.max_threshold.unwrap_or(0),
        min_threshold: a.min_threshold,
        buffer_blocks: a
            .buffer_blocks
            .max(a.max_delay_s as usize * BUFFER_BLOCKS_PER_DELAY_S),
        audio_capacity: a.audio_capacity,
        uplink_kbps: a.uplink_kbps,
        repair_share: a.repair_share,
        ..NodeConfig::default()
    };
    node.validate().map_err(anyhow::Error::msg)?;
    if a.max_delay_s > tiercast_proto::viewer_feed::MAX_DELAY_S {
        anyhow::bail!(
            "--max-delay-s {} is beyond {} s",
            a.max_delay_s,
            tiercast_proto::viewer_feed::MAX_DELAY_S
        );
    }
    if a.tier == 0 {
        anyhow::bail!("--tier must be >= 1 (tier 0 is the origin)");
    }
    Ok(NodeRuntime {
        node,
        cluster_key: a.node.cluster.key()?,
        coordinator,
        listen: a.link_listen.unwrap_or(a.listen),
        http_listen: Some(a.listen),
        viewer_limits: ViewerLimits {
            max_delay_s: a.max_delay_s,
            ..ViewerLimits::default()
        },
        live_queue_blocks: 256,
        playout: None,
        net_emulation: a.node.emulation.load()?,
    })
}

pub async fn run(a: Args) -> Result<()> {
    let coordinator = a.node.coordinator().await?;
    let h = spawn_node(runtime(&a, coordinator)?).await?;
    let http = h.http_addr.map(|x| x.to_string()).unwrap_or_default();
    println!(
        "relay {} tier {} links on {} viewers on http://{http}/live/<channel>.ts \
         and http://{http}/hls/<channel>/index.m3u8",
        h.id, a.tier, h.addr,
    );
    let reporting = super::common::Reporting::start(&h, a.report.clone());
    shutdown_signal().await;
    reporting.finish(&h).await?;
    h.shutdown().await;
    Ok(())
}
