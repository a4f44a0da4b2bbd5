//! Options and helpers shared by every role: the cluster key, the coordinator URL,
//! node ids, the network emulation file (`tiercast cluster`, issue 13), logging,
//! waiting for Ctrl-C.

use anyhow::{Context, Result};
use clap::Args as ClapArgs;
use tiercast_net::endpoint::CoordinatorUrl;
use tiercast_net::link::{ClusterKey, NetEmulation};
use tiercast_proto::NodeId;

#[derive(ClapArgs, Clone, Debug)]
pub struct ClusterArgs {
    /// The cluster key (64 hex chars) every node must hold to be admitted. Also
    /// read from TIERCAST_CLUSTER_KEY. Default: a well-known development key (one machine only).
    #[arg(long, env = "TIERCAST_CLUSTER_KEY", hide_env_values = true)]
    pub cluster_key: Option<String>,
}

impl ClusterArgs {
    pub fn key(&self) -> Result<ClusterKey> {
        match &self.cluster_key {
            Some(hex) => ClusterKey::from_hex(hex).context("--cluster-key"),
            None => {
                static WARN_ONCE: std::sync::Once = std::sync::Once::new();
                WARN_ONCE.call_once(|| {
                    tracing::warn!("using the well-known development cluster key; set --cluster-key for real deployments")
                });
                Ok(ClusterKey::dev_default())
            }
        }
    }
}

#[derive(ClapArgs, Clone, Debug)]
pub struct EmulationArgs {
    /// Emulate latency, jitter and loss on every datagram this process sends
    /// (TOML: this process's region, the regions' one-way latency matrix,
    /// jitter, loss, and destination subnets → region; see docs/ARCHITECTURE.md
    /// "Network emulation for `tiercast cluster`"). Off when not given.
    #[arg(long, env = "TIERCAST_NET_EMULATION", value_name = "FILE")]
    pub net_emulation: Option<std::path::PathBuf>,
}

impl EmulationArgs {
    /// Reads and checks the file; an error names the file and the problem.
    pub fn load(&self) -> Result<Option<std::sync::Arc<NetEmulation>>> {
        match &self.net_emulation {
            None => Ok(None),
            Some(path) => {
                let emu = NetEmulation::load(path).context("--net-emulation")?;
                tracing::info!(
                    file = %path.display(),
                    region = emu.regions.name(emu.region),
                    "network emulation on"
                );
                Ok(Some(std::sync::Arc::new(emu)))
            }
        }
    }
}

#[derive(ClapArgs, Clone, Debug)]
pub struct NodeArgs {
    /// The coordinator's base URL.
    #[arg(long, default_value = "http://127.0.0.1:7000")]
    pub coordinator: String,
    /// This node's id (1..4294967295); random when not given.
    #[arg(long)]
    pub id: Option<u32>,
    /// The coordinator manager this node belongs to (D7, X7): with several
    /// coordinator processes on etcd, the one holding this id serves it.
    #[arg(long, default_value_t = 0, value_name = "ID")]
    pub manager_id: u16,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub emulation: EmulationArgs,
}

impl NodeArgs {
    pub async fn coordinator(&self) -> Result<CoordinatorUrl> {
        Ok(CoordinatorUrl::parse(&self.coordinator).await?)
    }

    pub fn node_id(&self) -> Result<NodeId> {
        match self.id {
            Some(0) => anyhow::bail!("--id 0 is reserved for the coordinator"),
            Some(id) => Ok(NodeId(id)),
            None => Ok(random_node_id()),
        }
    }
}

pub fn random_node_id() -> NodeId {
    NodeId(rand::random::<u32>().max(1))
}

pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,quinn=warn,rustls=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Waits for Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

/// Writes a node's snapshot (JSON) to `path` every second while the node runs,
/// through a temporary file renamed into place so a reader never sees half of one.
/// Call [`write_report`] once more at the end for the final figures.
pub fn spawn_report_writer(
    commands: tokio::sync::mpsc::Sender<tiercast_net::node_driver::NodeCommand>,
    path: std::path::PathBuf,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let (tx, rx) = tokio::sync::oneshot::channel();
            if commands
                .send(tiercast_net::node_driver::NodeCommand::Snapshot(tx))
                .await
                .is_err()
            {
                return;
            }
            let Ok(snapshot) = rx.await else { return };
            if let Err(e) = write_report(&snapshot, &path) {
                tracing::warn!(error = %format!("{e:#}"), "report not written");
            }
        }
    })
}

/// Writes `value` as pretty JSON to `path` atomically.
pub fn write_report(value: &impl serde::Serialize, path: &std::path::Path) -> Result<()> {
    let json = serde_json::to_vec_pretty(value)?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    std::fs::write(&tmp, json).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}

/// `$XDG_STATE_HOME/tiercast/NAME` (else `~/.local/state/tiercast/NAME`): where a
/// role keeps what survives its restarts when no `--data-dir` is given.
pub fn default_data_dir(name: &str) -> Result<std::path::PathBuf> {
    let base = match std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        Some(s) => std::path::PathBuf::from(s),
        None => std::env::var_os("HOME")
            .filter(|v| !v.is_empty())
            .map(|h| std::path::PathBuf::from(h).join(".local/state"))
            .context("neither XDG_STATE_HOME nor HOME is set: give --data-dir")?,
    };
    Ok(base.join("tiercast").join(name))
}

/// A node's `--report FILE`: rewritten every second while it runs, and once more
/// with the last figures when it stops (`tiercast cluster` reads these).
pub struct Reporting {
    path: Option<std::path::PathBuf>,
    writer: Option<tokio::task::JoinHandle<()>>,
}

impl Reporting {
    pub fn start(
        h: &tiercast_net::node_driver::NodeHandle,
        path: Option<std::path::PathBuf>,
    ) -> Self {
        let writer = path
            .clone()
            .map(|p| spawn_report_writer(h.command_sender(), p));
        Reporting { path, writer }
    }

    /// Stops the periodic writes and writes the last report.
    pub async fn finish(self, h: &tiercast_net::node_driver::NodeHandle) -> Result<()> {
        if let Some(w) = self.writer {
            w.abort();
        }
        if let (Some(p), Some(s)) = (&self.path, h.snapshot().await) {
            write_report(&s, p)?;
        }
        Ok(())
    }
}
