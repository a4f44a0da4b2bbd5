//! `tiercast peer`: a viewer whose uplink carries the stream to other viewers (D2,
//! D4, C6). It registers with its declared uplink, asks the coordinator to watch a
//! channel, and takes the parents the coordinator assigns (one per substream, plus
//! a lazy repair link); it serves its own children over QUIC like a relay, paced
//! at its declared uplink (C4), and plays the channel locally: an in-order,
//! continuous MPEG-TS at `http://<http>/live/<channel>.ts` behind a playout stage
//! that reorders blocks and skips to a keyframe when a gap outlives the playout
//! delay. `GET /status` on the same port answers its counters as JSON.

use super::common::{shutdown_signal, NodeArgs, Reporting};
use anyhow::Result;
use clap::Args as ClapArgs;
use std::net::SocketAddr;
use tiercast_net::http::ViewerLimits;
use tiercast_net::node_driver::{spawn_node, NodeCommand, NodeRuntime};
use tiercast_node::NodeConfig;
use tiercast_node::PlayoutConfig;
use tiercast_proto::ids::valid_channel_name;
use tiercast_proto::NodeRole;

#[derive(ClapArgs, Debug)]
pub struct Args {
    #[command(flatten)]
    pub node: NodeArgs,
    /// The channel to watch and play.
    #[arg(long, default_value = "live")]
    pub channel: String,
    /// Region name (parents are chosen in the peer's region first).
    #[arg(long, default_value = "")]
    pub region: String,
    /// Upload this peer offers to other peers (kbit/s): declared to the coordinator,
    /// which books children against it, and enforced on what is sent to them.
    #[arg(long, default_value_t = 4000, value_name = "KBPS")]
    pub uplink_kbps: u32,
    /// A premium viewer: served before free ones where a `premium_first` policy
    /// says so (docs/POLICIES.md).
    #[arg(long)]
    pub premium: bool,
    /// Its device class (unspecified, desktop, mobile, tablet, tv, set-top):
    /// client policies may forbid a class to relay or to watch (docs/POLICIES.md).
    #[arg(long, default_value = "unspecified", value_parser = parse_device_class, value_name = "CLASS")]
    pub device_class: tiercast_proto::DeviceClass,
    /// A block that waited this long for the uplink cap is dropped rather than sent
    /// late (its child pulls it elsewhere); 0 never drops (ms).
    #[arg(long, default_value_t = NodeConfig::default().uplink_max_wait_ms, value_name = "MS")]
    pub uplink_max_wait_ms: u64,
    /// Node link address (UDP, QUIC) where child peers connect.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Local playback address (TCP): http://<this>/live/<channel>.ts and /status.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub http: SocketAddr,
    /// How long after a missing block was due (when it would have come over the
    /// fastest path) it may hold playback back before it is skipped, with the
    /// blocks up to the next keyframe (ms). Blocks are played as soon as they are
    /// in order: the delay bounds a hold, it is not added to every block. 2500:
    /// in `tests/e2e_peers.rs` (5 of 30 peers killed at once) 2000 gave one
    /// survivor a skipped gap in 1 run of 4 (the new parents' blocks come after a
    /// dead parent's 2 s of silence), 1500 and 1000 many; 2500 and 4000 none
    /// (docs/BENCHMARKS.md, "End-to-end lag over real sockets").
    #[arg(long, default_value_t = 2500, value_name = "MS")]
    pub playout_ms: u64,
    /// A block announced by the repair link and still missing this long after is
    /// pulled (ms).
    #[arg(long, default_value_t = NodeConfig::default().pull_delay_ms, value_name = "MS")]
    pub pull_delay_ms: u64,
    /// Most child peers (over all channels).
    #[arg(long, default_value_t = 64)]
    pub capacity: u32,
    /// Blocks kept per channel (what children and repairs can be served from).
    #[arg(long, default_value_t = 512)]
    pub buffer_blocks: usize,
    /// Write the peer's counters (JSON, as /status) here every second and at exit.
    #[arg(long)]
    pub report: Option<std::path::PathBuf>,
}

pub fn runtime(
    a: &Args,
    coordinator: tiercast_net::endpoint::CoordinatorUrl,
) -> Result<NodeRuntime> {
    if !valid_channel_name(&a.channel) {
        anyhow::bail!(
            "--channel {:?}: use 1-64 characters of A-Z a-z 0-9 _ -",
            a.channel
        );
    }
    if a.uplink_kbps == 0 && a.capacity > 0 {
        anyhow::bail!("--uplink-kbps 0 serves no one: give --capacity 0 too, or an uplink");
    }
    let node = NodeConfig {
        id: a.node.node_id()?,
        manager_id: a.node.manager_id,
        role: NodeRole::Peer,
        tier: 0,
        region: a.region.clone(),
        capacity: a.capacity,
        buffer_blocks: a.buffer_blocks,
        uplink_kbps: a.uplink_kbps,
        premium: a.premium,
        device_class: a.device_class,
        uplink_max_wait_ms: a.uplink_max_wait_ms,
        pull_delay_ms: a.pull_delay_ms,
        ..NodeConfig::default()
    };
    node.validate()
        .map_err(|e| anyhow::anyhow!("peer configuration: {e}"))?;
    let playout = PlayoutConfig {
        delay_ms: a.playout_ms,
        ..PlayoutConfig::default()
    };
    playout
        .validate()
        .map_err(|e| anyhow::anyhow!("--playout-ms: {e}"))?;
    Ok(NodeRuntime {
        node,
        cluster_key: a.node.cluster.key()?,
        coordinator,
        listen: a.listen,
        http_listen: Some(a.http),
        viewer_limits: ViewerLimits::default(),
        // Room for the burst a filled gap releases at once.
        live_queue_blocks: playout.max_pending_blocks,
        playout: Some(playout),
        net_emulation: a.node.emulation.load()?,
    })
}

pub async fn run(a: Args) -> Result<()> {
    let coordinator = a.node.coordinator().await?;
    let h = spawn_node(runtime(&a, coordinator)?).await?;
    h.command(NodeCommand::Watch(a.channel.clone())).await?;
    let http = h.http_addr.map(|x| x.to_string()).unwrap_or_default();
    println!(
        "peer {} uplink {} kbit/s links on {} play http://{http}/live/{}.ts \
         or http://{http}/hls/{}/index.m3u8",
        h.id, a.uplink_kbps, h.addr, a.channel, a.channel
    );
    let reporting = Reporting::start(&h, a.report.clone());
    shutdown_signal().await;
    reporting.finish(&h).await?;
    // Leave politely: the coordinator re-homes this peer's children at once.
    let _ = h.command(NodeCommand::Unwatch(a.channel.clone())).await;
    h.shutdown().await;
    Ok(())
}

/// A device class name, as `--device-class` takes it.
fn parse_device_class(s: &str) -> Result<tiercast_proto::DeviceClass, String> {
    tiercast_proto::DeviceClass::from_name(s).ok_or_else(|| {
        format!(
            "unknown device class '{s}': one of {}",
            tiercast_proto::DeviceClass::names()
        )
    })
}
