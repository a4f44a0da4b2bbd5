//! `tiercast origin`: ingests one channel and feeds tier 1; with `--backup`, stands
//! by as the channel's hot-standby origin (D7, issue 12) and takes the channel
//! over when the coordinator finds its primary lost.

use super::common::{shutdown_signal, NodeArgs};
use anyhow::{Context, Result};
use clap::Args as ClapArgs;
use std::net::SocketAddr;
use std::time::Duration;
use tiercast_net::http::ViewerLimits;
use tiercast_net::ingest::{AllowList, IngestListen, IngestOptions, PublishKeys};
use tiercast_net::node_driver::NodeRuntime;
use tiercast_net::origin::{spawn_origin, BackupRuntime, OriginRuntime, OriginSource};
use tiercast_net::origin_state::{OriginState, KEY_FILE};
use tiercast_node::NodeConfig;
use tiercast_proto::NodeRole;

#[derive(ClapArgs, Debug)]
#[command(group = clap::ArgGroup::new("source").required(true).args(["udp", "tcp", "http", "ingest_srt", "ingest_srt_call", "ingest_rtmp", "test_source"]))]
pub struct Args {
    #[command(flatten)]
    pub node: NodeArgs,
    /// Channel name (A-Z a-z 0-9 _ -).
    #[arg(long, default_value = "live")]
    pub channel: String,
    /// Region name (peers of this region are fed first; caps between regions
    /// count the origin's links as its region's).
    #[arg(long, default_value = "")]
    pub region: String,
    /// Receive MPEG-TS datagrams here (ffmpeg -f mpegts udp://ADDR).
    #[arg(long)]
    pub udp: Option<SocketAddr>,
    /// Accept one MPEG-TS publisher over TCP here (ffmpeg -f mpegts tcp://ADDR).
    #[arg(long)]
    pub tcp: Option<SocketAddr>,
    /// Accept an HTTP POST/PUT of MPEG-TS here (ffmpeg -f mpegts -method POST http://ADDR/ingest).
    #[arg(long)]
    pub http: Option<SocketAddr>,
    /// Accept one MPEG-TS publisher over SRT here (listener mode):
    /// ffmpeg -f mpegts "srt://ADDR?streamid=KEY" (or streamid=#!::r=CHANNEL,k=KEY).
    #[arg(long, alias = "srt")]
    pub ingest_srt: Option<SocketAddr>,
    /// Accept one RTMP publisher here: rtmp://ADDR/live/KEY (OBS: server
    /// rtmp://ADDR/live, stream key KEY); H.264 + AAC, remuxed to MPEG-TS.
    #[arg(long, alias = "rtmp")]
    pub ingest_rtmp: Option<SocketAddr>,
    /// Dial an encoder that listens for SRT here (caller mode) and ingest what it
    /// sends: ffmpeg -f mpegts "srt://ADDR?mode=listener". Dials again when it ends.
    #[arg(long, value_name = "ADDR")]
    pub ingest_srt_call: Option<SocketAddr>,
    /// The stream id sent in caller mode (--ingest-srt-call).
    #[arg(long, value_name = "ID")]
    pub srt_stream_id: Option<String>,
    /// SRT receive latency (ms): time SRT may spend recovering lost packets.
    #[arg(long, default_value_t = tiercast_net::ingest::srt::DEFAULT_LATENCY_MS, value_name = "MS")]
    pub srt_latency_ms: u64,
    /// SRT encryption passphrase (10-79 characters); the publisher gives the same.
    #[arg(long, env = "TIERCAST_SRT_PASSPHRASE", hide_env_values = true)]
    pub srt_passphrase: Option<String>,
    /// A publish key of this channel (repeat for several). With any key or key
    /// file set, SRT/HTTP publishers must give one and UDP/TCP sources must be
    /// in --ingest-allow.
    #[arg(long = "publish-key", value_name = "KEY")]
    pub publish_keys: Vec<String>,
    /// A file of publish keys (`KEY` or `CHANNEL KEY` a line), re-read when it
    /// changes or on SIGHUP: keys rotate without a restart.
    #[arg(long = "publish-keys", value_name = "FILE")]
    pub publish_key_file: Option<std::path::PathBuf>,
    /// Publishers need a key kept in the coordinator's store (`tiercast
    /// publish-keys set`); refused until the coordinator's keys arrive. Keys the
    /// coordinator sends are checked with or without this flag.
    #[arg(long)]
    pub publish_keys_from_coordinator: bool,
    /// UDP/TCP sources allowed to publish (CIDR, repeat for several).
    #[arg(long = "ingest-allow", value_name = "CIDR")]
    pub ingest_allow: Vec<tiercast_net::ingest::Cidr>,
    /// A second publisher takes over from the live one instead of being refused.
    #[arg(long)]
    pub publisher_takeover: bool,
    /// Generate a test stream at this many kbit/s.
    #[arg(long, value_name = "KBPS")]
    pub test_source: Option<u32>,
    /// Node link address (UDP).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub link_listen: SocketAddr,
    /// Origin signing key: an Ed25519 PKCS#8 file, PEM or DER (`tiercast keygen`
    /// writes one; `openssl genpkey -algorithm ed25519` too). Without it the key
    /// kept in the data directory is used (created there on first start).
    #[arg(long)]
    pub key_file: Option<std::path::PathBuf>,
    /// Where the origin keeps its key and the seq of its next block across
    /// restarts, so a restarted origin is the same origin to every relay
    /// [default: $XDG_STATE_HOME/tiercast/origin-<channel>, else
    /// ~/.local/state/tiercast/origin-<channel>].
    #[arg(long)]
    pub data_dir: Option<std::path::PathBuf>,
    /// Largest block in bytes (rounded down to whole 188-byte TS packets). Smaller
    /// blocks lower the latency each hop adds; larger ones cost less per byte.
    #[arg(long, default_value_t = 16 * 1024)]
    pub block_bytes: usize,
    /// Most tier-1 relays fed directly.
    #[arg(long, default_value_t = 64)]
    pub capacity: u32,
    /// The origin's upload (kbit/s), declared to the coordinator, which books
    /// the peers it feeds directly against it (D2, C4); 0: none declared.
    #[arg(long, default_value_t = 0, value_name = "KBPS")]
    pub uplink_kbps: u32,
    /// Stand by as the channel's backup origin: sign with the channel's key
    /// (give the primary's `--key-file`), cut this ingest into a window, and
    /// take the channel over — at the first keyframe after the primary's last
    /// block, seqs above its — when the primary is lost. A returning primary
    /// started with `--backup` stands by in turn; started without it, it takes
    /// the channel back and this origin stands by again.
    #[arg(long)]
    pub backup: bool,
    /// How much of its own ingest a backup holds while standing by (ms).
    #[arg(long, default_value_t = 10_000, value_name = "MS")]
    pub backup_window_ms: u64,
    /// Write the ingest's counters and health (JSON: bitrate in, keyframe
    /// interval, gaps, timestamp jumps, stalls, refusals) here every second.
    #[arg(long, value_name = "FILE")]
    pub ingest_report: Option<std::path::PathBuf>,
    /// Serve `GET /metrics` (Prometheus: the node's counters and the ingest's
    /// health), `/status` and `/health` on this TCP address; off by default
    /// (an origin has no viewer port).
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// Write the origin node's counters (JSON: bytes out, blocks) here every second and at exit.
    #[arg(long)]
    pub report: Option<std::path::PathBuf>,
}

pub async fn run(a: Args) -> Result<()> {
    // Checked first: a bad file stops the origin before it touches its data directory.
    let net_emulation = a.node.emulation.load()?;
    if !tiercast_proto::ids::valid_channel_name(&a.channel) {
        anyhow::bail!(
            "channel name '{}' must be 1-64 characters of A-Z a-z 0-9 _ -",
            a.channel
        );
    }
    let listen = [
        a.udp.map(IngestListen::Udp),
        a.tcp.map(IngestListen::Tcp),
        a.http.map(IngestListen::Http),
        a.ingest_srt.map(IngestListen::Srt),
        a.ingest_srt_call.map(IngestListen::SrtCall),
        a.ingest_rtmp.map(IngestListen::Rtmp),
    ]
    .into_iter()
    .flatten()
    .next();
    let source = match (listen, a.test_source) {
        (Some(l), _) => OriginSource::ListenWith(l, Box::new(ingest_options(&a)?)),
        (_, Some(k)) if (16..=200_000).contains(&k) => OriginSource::TestSource { kbps: k },
        (_, Some(k)) => anyhow::bail!("--test-source {k}: give 16..=200000 kbit/s"),
        _ => anyhow::bail!(
            "give one of --udp, --tcp, --http, --ingest-srt, --ingest-srt-call, --ingest-rtmp, --test-source"
        ),
    };
    let dir = match &a.data_dir {
        Some(d) => d.clone(),
        None => super::common::default_data_dir(&format!("origin-{}", a.channel))?,
    };
    let state = OriginState::open(&dir, a.key_file.as_deref())
        .with_context(|| format!("origin data directory {}", dir.display()))?;
    if state.key_created {
        eprintln!(
            "origin: new key written to {}",
            dir.join(KEY_FILE).display()
        );
    }
    eprintln!(
        "origin: data directory {} (next seq {})",
        dir.display(),
        state.seq.next()
    );
    let node = NodeConfig {
        id: a.node.node_id()?,
        manager_id: a.node.manager_id,
        role: NodeRole::Origin,
        tier: 0,
        region: a.region.clone(),
        capacity: a.capacity,
        uplink_kbps: a.uplink_kbps,
        ..NodeConfig::default()
    };
    if !(1_000..=120_000).contains(&a.backup_window_ms) {
        anyhow::bail!(
            "--backup-window-ms {}: give 1000..=120000",
            a.backup_window_ms
        );
    }
    let backup = match a.backup {
        true => {
            let listen = SocketAddr::new(a.link_listen.ip(), 0);
            let id = super::common::random_node_id();
            let coordinator = a.node.coordinator().await?;
            Some(BackupRuntime {
                watch: super::viewer::viewer_runtime(&a.node, id, coordinator, listen)?,
                window_ms: a.backup_window_ms,
            })
        }
        false => None,
    };
    let rt = OriginRuntime {
        node: NodeRuntime {
            node,
            cluster_key: a.node.cluster.key()?,
            coordinator: a.node.coordinator().await?,
            listen: a.link_listen,
            http_listen: a.metrics_listen,
            viewer_limits: ViewerLimits::default(),
            live_queue_blocks: 64,
            playout: None,
            net_emulation,
        },
        channel: a.channel.clone(),
        source,
        key: state.key,
        seq: Some(state.seq),
        announce_timeout: Duration::from_secs(3600),
        flush_after_ms: 200,
        cutter: cutter_config(a.block_bytes)?,
        backup,
    };
    eprintln!(
        "origin: announcing channel '{}' to {} ...",
        a.channel, a.node.coordinator
    );
    let h = spawn_origin(rt).await?;
    if h.standby {
        println!(
            "origin {} channel '{}' standing by as its backup",
            h.node.id, h.channel.name
        );
    }
    match h.ingest_addr {
        Some(addr) => println!(
            "origin {} channel '{}' ingesting on {addr}",
            h.node.id, h.channel.name
        ),
        None => println!(
            "origin {} channel '{}' test source running",
            h.node.id, h.channel.name
        ),
    }
    if let Some(addr) = h.node.http_addr {
        println!("origin {} metrics on http://{addr}/metrics", h.node.id);
    }
    let reporting = super::common::Reporting::start(&h.node, a.report.clone());
    let ingest_report = match (h.ingest_stats(), a.ingest_report.clone()) {
        (Some(stats), Some(path)) => Some(tokio::spawn(write_ingest_report(stats, path))),
        _ => None,
    };
    shutdown_signal().await;
    if let Some(w) = ingest_report {
        w.abort();
    }
    reporting.finish(&h.node).await?;
    h.shutdown().await;
    Ok(())
}

/// Publish keys, allow-list, takeover and SRT settings from the flags (X3).
fn ingest_options(a: &Args) -> Result<IngestOptions> {
    let mut keys = PublishKeys::new(&a.channel, &a.publish_keys, a.publish_key_file.as_deref())?;
    if a.publish_keys_from_coordinator {
        keys = keys.awaiting_coordinator();
    }
    let options = IngestOptions {
        keys,
        allow: AllowList(a.ingest_allow.clone()),
        publisher_takeover: a.publisher_takeover,
        srt_latency_ms: a.srt_latency_ms,
        srt_passphrase: a.srt_passphrase.clone(),
        srt_stream_id: a.srt_stream_id.clone(),
    };
    options.validate().map_err(anyhow::Error::msg)?;
    if options.keys.required() {
        eprintln!(
            "origin: publish keys on ({} in force{})",
            options.keys.count(),
            match &a.publish_key_file {
                Some(f) => format!(", {} re-read on change or SIGHUP", f.display()),
                None => String::new(),
            }
        );
    }
    Ok(options)
}

/// Writes the ingest report every second (atomically: a temporary file renamed).
async fn write_ingest_report(
    stats: std::sync::Arc<tiercast_net::ingest::IngestStats>,
    path: std::path::PathBuf,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let tmp = path.with_extension("tmp");
    loop {
        tick.tick().await;
        let text = stats.to_json().to_string();
        if let Err(e) = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &path)) {
            tracing::warn!(error = %e, path = %path.display(), "cannot write the ingest report");
        }
    }
}

/// A cutter configuration for blocks of at most `block_bytes`, checked.
pub fn cutter_config(block_bytes: usize) -> Result<tiercast_media::CutterConfig> {
    if block_bytes > 1024 * 1024 {
        anyhow::bail!("--block-bytes {block_bytes}: at most 1048576");
    }
    let cfg = tiercast_media::CutterConfig {
        max_block_bytes: block_bytes,
        ..Default::default()
    };
    cfg.validate()
        .map_err(|e| anyhow::anyhow!("--block-bytes {block_bytes}: {e}"))?;
    Ok(cfg)
}
