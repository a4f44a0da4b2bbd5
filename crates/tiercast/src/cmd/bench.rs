//! `tiercast bench`: benchmarks that print figures, never assertions.
//!
//! `tiercast bench heartbeats`: the coordinator's heartbeat capacity on one core
//! (issue 12, X7/D8; [`super::bench_heartbeats`]).
//!
//! `tiercast bench latency`: per-hop added latency through a chain of relays on
//! loopback (origin -> relay tier 1 -> ... -> relay tier N -> a protocol viewer),
//! every node a real QUIC endpoint in this process. Prints p50 / p99 / max per hop
//! and end to end; figures, never assertions.

use super::common::ClusterArgs;
use anyhow::Result;
use clap::{Args as ClapArgs, Subcommand};
use std::collections::BTreeMap;
use std::time::Duration;
use tiercast_coordinator::CoordinatorConfig;
use tiercast_net::coordinator_driver::{spawn_coordinator, CoordinatorRuntime};
use tiercast_net::endpoint::CoordinatorUrl;
use tiercast_net::http::ViewerLimits;
use tiercast_net::node_driver::{spawn_node, NodeCommand, NodeRuntime};
use tiercast_net::origin::{spawn_origin, OriginRuntime, OriginSource};
use tiercast_node::{Event, NodeConfig};
use tiercast_proto::{NodeId, NodeRole, OriginKey};

#[derive(ClapArgs, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub which: Which,
}

#[derive(Subcommand, Debug)]
pub enum Which {
    /// Per-hop added latency through a chain of relays on loopback.
    Latency {
        /// Relays in the chain (one per tier).
        #[arg(long, default_value_t = 5)]
        relays: u8,
        /// Test stream rate.
        #[arg(long, default_value_t = 4000)]
        kbps: u32,
        /// Largest block in bytes.
        #[arg(long, default_value_t = 16 * 1024)]
        block_bytes: usize,
        /// Measuring time in seconds (after a 2 s warm-up).
        #[arg(long, default_value_t = 20)]
        seconds: u64,
    },
    /// The coordinator's heartbeat capacity: heartbeats per CPU-second and memory per node (issue 12).
    Heartbeats(super::bench_heartbeats::Args),
}

pub async fn run(a: Args) -> Result<()> {
    match a.which {
        Which::Latency {
            relays,
            kbps,
            block_bytes,
            seconds,
        } => latency(relays, kbps, block_bytes, seconds).await,
        Which::Heartbeats(a) => super::bench_heartbeats::run(a),
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn latency(relays: u8, kbps: u32, block_bytes: usize, seconds: u64) -> Result<()> {
    if relays == 0 || relays > 50 {
        anyhow::bail!("--relays must be 1..=50");
    }
    let key = ClusterArgs { cluster_key: None }.key()?;
    let coord = spawn_coordinator(CoordinatorRuntime {
        listen: "127.0.0.1:0".parse()?,
        cluster_key: key.clone(),
        config: CoordinatorConfig::default(),
        data_dir: None,
        history_save_ms: tiercast_net::coordinator_driver::HISTORY_SAVE_MS,
        election: None,
        net_emulation: None,
    })
    .await?;
    let url = CoordinatorUrl::parse(&coord.url()).await?;
    let rt = |id: u32, role: NodeRole, tier: u8, capacity: u32| NodeRuntime {
        node: NodeConfig {
            id: NodeId(id),
            role,
            tier,
            capacity,
            ..NodeConfig::default()
        },
        cluster_key: key.clone(),
        coordinator: url.clone(),
        listen: "127.0.0.1:0".parse().expect("literal address"),
        http_listen: None,
        viewer_limits: ViewerLimits::default(),
        live_queue_blocks: 64,
        playout: None,
        net_emulation: None,
    };
    let mut chain = Vec::new();
    for t in 1..=relays {
        chain.push(spawn_node(rt(100 + t as u32, NodeRole::Relay, t, 10)).await?);
    }
    let origin = spawn_origin(OriginRuntime {
        node: rt(1, NodeRole::Origin, 0, 10),
        channel: "bench".into(),
        source: OriginSource::TestSource { kbps },
        key: OriginKey::generate()?,
        seq: None,
        announce_timeout: Duration::from_secs(10),
        flush_after_ms: 200,
        cutter: super::origin::cutter_config(block_bytes)?,
        backup: None,
    })
    .await?;
    let viewer = spawn_node(rt(9999, NodeRole::Viewer, u8::MAX, 0)).await?;
    // Hop 0 is the origin; hop k is relay k; the last is the viewer.
    let mut subs = vec![origin.node.subscribe()];
    subs.extend(chain.iter().map(|h| h.subscribe()));
    subs.push(viewer.subscribe());
    viewer.command(NodeCommand::Watch("bench".into())).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    for s in subs.iter_mut() {
        while s.try_recv().is_ok() {}
    }
    eprintln!("measuring {seconds} s of a {kbps} kbit/s stream through {relays} relays ...");
    let hops = subs.len();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, u64, u64)>();
    for (i, mut s) in subs.into_iter().enumerate() {
        let tx = tx.clone();
        tokio::spawn(async move {
            loop {
                match s.recv().await {
                    Ok(n) => {
                        if let Event::BlockStored { block } = n.event {
                            let _ = tx.send((i, block.seq, n.wall_us));
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return,
                }
            }
        });
    }
    drop(tx);
    let mut arrivals: BTreeMap<u64, Vec<Option<u64>>> = BTreeMap::new();
    let end = tokio::time::Instant::now() + Duration::from_secs(seconds);
    while let Ok(Some((i, seq, at))) = tokio::time::timeout_at(end, rx.recv()).await {
        arrivals.entry(seq).or_insert_with(|| vec![None; hops])[i] = Some(at);
    }
    let mut per_hop: Vec<Vec<u64>> = vec![Vec::new(); hops - 1];
    let mut end_to_end = Vec::new();
    let mut incomplete = 0;
    for times in arrivals.values() {
        if times.iter().any(|t| t.is_none()) {
            incomplete += 1;
            continue;
        }
        let t: Vec<u64> = times.iter().map(|t| t.expect("checked")).collect();
        for k in 0..hops - 1 {
            per_hop[k].push(t[k + 1].saturating_sub(t[k]));
        }
        end_to_end.push(t[hops - 1].saturating_sub(t[0]));
    }
    let mut all: Vec<u64> = per_hop.iter().flatten().copied().collect();
    all.sort_unstable();
    println!(
        "blocks measured: {} (incomplete at the window edges: {incomplete})",
        end_to_end.len()
    );
    for (k, v) in per_hop.iter_mut().enumerate() {
        v.sort_unstable();
        let name = if k + 1 == hops - 1 {
            "viewer".to_string()
        } else {
            format!("relay {}", k + 1)
        };
        println!(
            "hop {:>2} -> {:<9} p50 {:>6} us  p99 {:>6} us  max {:>6} us",
            k + 1,
            name,
            percentile(v, 0.5),
            percentile(v, 0.99),
            v.last().copied().unwrap_or(0)
        );
    }
    end_to_end.sort_unstable();
    println!(
        "all hops            p50 {:>6} us  p99 {:>6} us",
        percentile(&all, 0.5),
        percentile(&all, 0.99)
    );
    println!(
        "end to end ({} hops) p50 {:>6} us  p99 {:>6} us",
        hops - 1,
        percentile(&end_to_end, 0.5),
        percentile(&end_to_end, 0.99)
    );
    println!(
        "{}",
        serde_json::json!({
            "bench": "latency", "relays": relays, "kbps": kbps, "block_bytes": block_bytes, "blocks": end_to_end.len(),
            "hop_p50_us": percentile(&all, 0.5), "hop_p99_us": percentile(&all, 0.99),
            "e2e_p50_us": percentile(&end_to_end, 0.5), "e2e_p99_us": percentile(&end_to_end, 0.99),
        })
    );
    viewer.shutdown().await;
    origin.shutdown().await;
    for r in chain {
        r.shutdown().await;
    }
    coord.shutdown().await;
    Ok(())
}
