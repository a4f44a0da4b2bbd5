//! `tiercast coordinator`: runs the coordinator until Ctrl-C; its flags shape the
//! relay hierarchy and the peer overlay (D2, D4: substreams and stream rate);
//! `--data-dir` holds its embedded store (policies, node history; issue 11 item 6).
//! With `--etcd`, several coordinator processes elect a leader on etcd; the
//! others stand by and take over when its lease ends (X7, D7).

use super::common::{shutdown_signal, ClusterArgs, EmulationArgs};
use anyhow::{bail, Result};
use clap::Args as ClapArgs;
use std::net::SocketAddr;
use tiercast_coordinator::CoordinatorConfig;
use tiercast_net::coordinator_driver::{spawn_coordinator, CoordinatorRuntime};
use tiercast_net::etcd::{ElectionConfig, ManagerChoice};

#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Address of the HTTP API (TCP) and of the node links (UDP, same port).
    #[arg(long, default_value = "127.0.0.1:7000")]
    pub listen: SocketAddr,
    /// Parents each relay takes from the tier above (redundant retrieval, V9).
    #[arg(long, default_value_t = 1)]
    pub parents_per_relay: usize,
    /// Heartbeat interval told to nodes, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub heartbeat_interval_ms: u64,
    /// A node silent this long is presumed crashed, in milliseconds.
    #[arg(long, default_value_t = 3500)]
    pub heartbeat_timeout_ms: u64,
    /// Peer overlay: substreams of the multi-tree (block seq mod K), 1..=64.
    #[arg(long, default_value_t = 4, value_name = "K")]
    pub peer_substreams: u8,
    /// Peer overlay: the stream rate uplinks are booked against (kbit/s).
    #[arg(long, default_value_t = 2000, value_name = "KBPS")]
    pub stream_kbps: u32,
    /// Peer overlay: c of the top level's c-connected mesh.
    #[arg(long, default_value_t = 3, value_name = "C")]
    pub peer_mesh_c: u8,
    /// Peer overlay: once the top level has been calm this long, it runs its
    /// push tree alone, without lazy links (0: it always floods).
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub top_tree_after_ms: u64,
    /// A channel with no origin and no viewer this long has its managers
    /// retired and its name freed (0: never; else at least the heartbeat
    /// timeout), in milliseconds.
    #[arg(long, default_value_t = 60_000, value_name = "MS")]
    pub channel_retire_after_ms: u64,
    /// Reservations on links capped by policy count what the links across
    /// really carried (from the children's heartbeats) instead of what they
    /// book: a channel using less than it booked leaves the rest of the cap
    /// to the others (C5).
    #[arg(long)]
    pub measured_reservations: bool,
    /// Where the coordinator keeps its embedded store (policies in force, node
    /// history). Default: $XDG_STATE_HOME/tiercast/coordinator
    /// (~/.local/state/tiercast/coordinator).
    #[arg(long)]
    pub data_dir: Option<std::path::PathBuf>,
    /// How often the node history is saved to the data directory (ms).
    #[arg(long, default_value_t = tiercast_net::coordinator_driver::HISTORY_SAVE_MS)]
    pub history_save_ms: u64,
    /// Several coordinator processes: etcd members (`http://HOST:PORT`, comma
    /// separated). Each manager id is held by one process under a lease; the
    /// others send that id's nodes and viewers to it, and one takes the id
    /// over when the lease ends.
    #[arg(long, value_name = "URL[,URL...]", value_delimiter = ',')]
    pub etcd: Vec<String>,
    /// With --etcd: the prefix of this cluster's keys in etcd.
    #[arg(long, default_value = "/tiercast", value_name = "PREFIX")]
    pub etcd_prefix: String,
    /// With --etcd: the leader's lease, in seconds — a dead leader is replaced
    /// within about this long (etcd raises it to its own minimum, 2 s with
    /// etcd's default timing).
    #[arg(long, default_value_t = 2, value_name = "S")]
    pub lease_ttl_s: u64,
    /// With --etcd: the address nodes and viewers reach this process at
    /// (HOST:PORT; default: --listen, which must then not be a wildcard).
    #[arg(long, value_name = "HOST:PORT")]
    pub advertise: Option<String>,
    /// With --etcd: the manager id this process holds (0..=65535: its nodes
    /// and channels are those started with the same `--manager-id`), or
    /// `spare`: hold any id that lost its holder (D7).
    #[arg(long, default_value = "0", value_name = "ID|spare")]
    pub manager_id: ManagerChoice,
    /// Take the configuration from a simulator scenario file's `[strategy]` and
    /// `[peers]` (as `tiercast sim` runs it; what `tiercast cluster` gives its
    /// coordinator) instead of the flags above.
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub emulation: EmulationArgs,
}

/// The election's settings, or why the flags make none.
fn election(a: &Args) -> Result<Option<ElectionConfig>> {
    if a.etcd.is_empty() {
        return Ok(None);
    }
    let advertise = match &a.advertise {
        Some(addr) => addr.clone(),
        None if a.listen.ip().is_unspecified() => {
            bail!("--listen {} is a wildcard: give --advertise HOST:PORT, the address nodes reach this coordinator at", a.listen)
        }
        None => a.listen.to_string(),
    };
    if !advertise.contains(':') || advertise.contains('/') {
        bail!("--advertise '{advertise}' must look like HOST:PORT");
    }
    if !(1..=60).contains(&a.lease_ttl_s) {
        bail!("--lease-ttl-s must be 1..=60, not {}", a.lease_ttl_s);
    }
    if !a.etcd_prefix.starts_with('/') {
        bail!("--etcd-prefix '{}' must start with /", a.etcd_prefix);
    }
    Ok(Some(ElectionConfig {
        endpoints: a.etcd.clone(),
        prefix: a.etcd_prefix.clone(),
        advertise,
        ttl_s: a.lease_ttl_s,
        poll: std::time::Duration::from_millis(100),
        manager: a.manager_id,
    }))
}

pub async fn run(a: Args) -> Result<()> {
    let election = election(&a)?;
    let net_emulation = a.emulation.load()?;
    let mut config = CoordinatorConfig {
        parents_per_relay: a.parents_per_relay,
        heartbeat_interval_ms: a.heartbeat_interval_ms,
        heartbeat_timeout_ms: a.heartbeat_timeout_ms,
        channel_retire_after_ms: a.channel_retire_after_ms,
        reservations_measured: a.measured_reservations,
        ..CoordinatorConfig::default()
    };
    config.peers.substreams = a.peer_substreams;
    config.peers.stream_rate_kbps = a.stream_kbps;
    config.peers.mesh_c = a.peer_mesh_c;
    config.peers.top_tree_after_ms = a.top_tree_after_ms;
    if let Some(path) = &a.scenario {
        let sc = tiercast_sim::Scenario::from_file(path)
            .map_err(|e| anyhow::anyhow!("--scenario {}: {e}", path.display()))?;
        config = sc.coordinator_config();
    }
    let data_dir = match a.data_dir {
        Some(d) => d,
        None => super::common::default_data_dir("coordinator")?,
    };
    let h = spawn_coordinator(CoordinatorRuntime {
        listen: a.listen,
        cluster_key: a.cluster.key()?,
        config,
        data_dir: Some(data_dir.clone()),
        history_save_ms: a.history_save_ms,
        election: election.clone(),
        net_emulation,
    })
    .await?;
    println!("coordinator data directory {}", data_dir.display());
    if let Some(e) = &election {
        println!(
            "coordinator standing for {} on etcd {} (keys under {}/, lease {} s): it serves that manager's nodes while it holds it",
            e.manager,
            e.endpoints.join(","),
            e.prefix.trim_end_matches('/'),
            e.ttl_s
        );
    }
    println!(
        "coordinator listening on {} (watch: {}/watch/<channel>, status: {}/status)",
        h.addr,
        h.url(),
        h.url()
    );
    shutdown_signal().await;
    h.shutdown().await;
    Ok(())
}
