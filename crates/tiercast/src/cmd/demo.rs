//! `tiercast demo` (X6): a coordinator, an origin (ffmpeg-encoded when ffmpeg is
//! installed, else the built-in test source), relays in 3 tiers and a crowd of
//! protocol viewers, all on this machine. Viewers ramp up, hold and ramp down, so
//! the hierarchy visibly expands (DISTRIBUTE) and contracts (CONSOLIDATE); a live
//! table shows tiers, active relays, load and blocks delivered / missing; the run
//! ends with a summary and, with `--report`, a JSON file.

use super::common::ClusterArgs;
use super::viewer::{report_of, viewer_runtime, ViewerReport};
use anyhow::{Context, Result};
use clap::Args as ClapArgs;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tiercast_coordinator::CoordinatorConfig;
use tiercast_net::coordinator_driver::{spawn_coordinator, CoordinatorRuntime};
use tiercast_net::endpoint::CoordinatorUrl;
use tiercast_net::http::ViewerLimits;
use tiercast_net::ingest::IngestListen;
use tiercast_net::node_driver::{spawn_node, NodeCommand, NodeHandle, NodeRuntime};
use tiercast_net::origin::{spawn_origin, OriginRuntime, OriginSource};
use tiercast_node::NodeConfig;
use tiercast_proto::{NodeId, NodeRole, OriginKey};

#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Length of the run in seconds (ramp up 40%, hold 20%, ramp down 40%).
    #[arg(long, default_value_t = 60)]
    pub duration: u64,
    /// Most viewers at once.
    #[arg(long, default_value_t = 60)]
    pub viewers: usize,
    /// Write a JSON summary here.
    #[arg(long)]
    pub report: Option<std::path::PathBuf>,
    /// Use the built-in test source even when ffmpeg is installed.
    #[arg(long)]
    pub test_source: bool,
    /// Coordinator address (its /watch URL is printed for ffplay / VLC).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Viewers per bottom-tier relay.
    #[arg(long, default_value_t = 10)]
    pub relay_capacity: u32,
}

#[derive(Debug, Default, Serialize)]
pub struct DemoReport {
    pub duration_s: u64,
    pub source: String,
    pub viewers_max: usize,
    pub viewer_sessions: usize,
    pub blocks_sent: u64,
    pub blocks_delivered: u64,
    pub blocks_missing: u64,
    pub continuity_index: f64,
    pub distribute_events: u64,
    pub consolidate_events: u64,
    pub max_active_relays: u64,
    pub active_relays_at_end: u64,
    pub relays: usize,
    pub watch_url: String,
}

/// Viewers wanted at time `t` of a run of `total` seconds.
pub fn viewers_at(t: f64, total: f64, max: usize) -> usize {
    let f = t / total.max(1.0);
    let level = if f < 0.4 {
        f / 0.4
    } else if f < 0.6 {
        1.0
    } else {
        ((1.0 - f) / 0.4).max(0.0)
    };
    (level * max as f64).round() as usize
}

pub async fn run(a: Args) -> Result<()> {
    if a.viewers == 0 || a.viewers > 2000 {
        anyhow::bail!("--viewers must be 1..=2000");
    }
    if a.duration < 10 {
        anyhow::bail!("--duration must be at least 10 seconds");
    }
    let cluster = ClusterArgs { cluster_key: None };
    let key = cluster.key()?;
    let coord = spawn_coordinator(CoordinatorRuntime {
        listen: a.listen,
        cluster_key: key.clone(),
        config: CoordinatorConfig::default(),
        data_dir: None,
        history_save_ms: tiercast_net::coordinator_driver::HISTORY_SAVE_MS,
        election: None,
        net_emulation: None,
    })
    .await?;
    let url = CoordinatorUrl::parse(&coord.url()).await?;
    let watch_url = url.watch_url("live");

    // Relays: tiers 1 and 2 small, tier 3 sized for the crowd.
    let bottom = (a.viewers as u32).div_ceil(a.relay_capacity) as usize + 2;
    let mid = bottom.div_ceil(4) + 1;
    let tiers: [(u8, usize, u32); 3] = [
        (1, mid.div_ceil(4) + 1, 4),
        (2, mid, 4),
        (3, bottom, a.relay_capacity),
    ];
    let mut relays = Vec::new();
    let mut next_id = 1000u32;
    for (tier, count, capacity) in tiers {
        for _ in 0..count {
            next_id += 1;
            let rt = NodeRuntime {
                node: NodeConfig {
                    id: NodeId(next_id),
                    role: NodeRole::Relay,
                    tier,
                    capacity,
                    ..NodeConfig::default()
                },
                cluster_key: key.clone(),
                coordinator: url.clone(),
                listen: "127.0.0.1:0".parse()?,
                http_listen: Some("127.0.0.1:0".parse()?),
                viewer_limits: ViewerLimits::default(),
                live_queue_blocks: 256,
                playout: None,
                net_emulation: None,
            };
            relays.push(spawn_node(rt).await?);
        }
    }

    let use_ffmpeg = !a.test_source && which("ffmpeg");
    let source = if use_ffmpeg {
        OriginSource::Listen(IngestListen::Udp("127.0.0.1:0".parse()?))
    } else {
        OriginSource::TestSource { kbps: 1500 }
    };
    let origin = spawn_origin(OriginRuntime {
        node: NodeRuntime {
            node: NodeConfig {
                id: NodeId(1),
                role: NodeRole::Origin,
                tier: 0,
                capacity: 64,
                ..NodeConfig::default()
            },
            cluster_key: key.clone(),
            coordinator: url.clone(),
            listen: "127.0.0.1:0".parse()?,
            http_listen: None,
            viewer_limits: ViewerLimits::default(),
            live_queue_blocks: 64,
            playout: None,
            net_emulation: None,
        },
        channel: "live".into(),
        source,
        key: OriginKey::generate()?,
        seq: None,
        announce_timeout: Duration::from_secs(10),
        flush_after_ms: 200,
        cutter: tiercast_media::CutterConfig::default(),
        backup: None,
    })
    .await?;
    let _ffmpeg = match (use_ffmpeg, origin.ingest_addr) {
        (true, Some(addr)) => Some(start_ffmpeg(addr, a.duration + 10)?),
        _ => None,
    };
    let source_name = if use_ffmpeg {
        "ffmpeg testsrc2 H.264 over UDP"
    } else {
        "built-in test source"
    };
    println!(
        "tiercast demo: coordinator {} | origin ({source_name}) | relays {:?} per tier",
        coord.url(),
        tiers.map(|t| t.1)
    );
    println!("play it:  ffplay {watch_url}   (or: vlc {watch_url})");
    println!();
    println!(
        "{:>5} {:>7} {:>18} {:>6} {:>10} {:>8} {:>6} {:>6}",
        "t(s)", "viewers", "active t1/t2/t3", "load", "delivered", "missing", "distr", "consol"
    );

    let start = Instant::now();
    let mut live: Vec<NodeHandle> = Vec::new();
    let mut done: Vec<ViewerReport> = Vec::new();
    let mut report = DemoReport {
        duration_s: a.duration,
        source: source_name.into(),
        relays: relays.len(),
        watch_url: watch_url.clone(),
        ..Default::default()
    };
    let mut viewer_id = 100_000u32;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let t = start.elapsed().as_secs_f64();
        if t > a.duration as f64 {
            break;
        }
        let want = viewers_at(t, a.duration as f64, a.viewers);
        while live.len() < want {
            viewer_id += 1;
            let rt = viewer_runtime(
                &super::common::NodeArgs {
                    coordinator: url.base.clone(),
                    id: None,
                    manager_id: 0,
                    cluster: cluster.clone(),
                    emulation: super::common::EmulationArgs {
                        net_emulation: None,
                    },
                },
                NodeId(viewer_id),
                url.clone(),
                "127.0.0.1:0".parse()?,
            )?;
            let h = spawn_node(rt).await?;
            h.command(NodeCommand::Watch("live".into())).await?;
            live.push(h);
            report.viewer_sessions += 1;
        }
        while live.len() > want {
            let h = live.remove(0);
            done.push(stop_viewer(h).await);
        }
        report.viewers_max = report.viewers_max.max(live.len());
        let status = coord.status().await.unwrap_or_default();
        let per_tier = active_per_tier(&status);
        let active: u64 = per_tier.values().sum();
        report.max_active_relays = report.max_active_relays.max(active);
        let (mut delivered, mut missing) = done.iter().fold((0, 0), |acc, r| {
            (acc.0 + r.blocks_received, acc.1 + r.blocks_missing)
        });
        for h in &live {
            let r = report_of(h, "live").await;
            delivered += r.blocks_received;
            missing += r.blocks_missing;
        }
        let load: u64 = status["nodes"]
            .as_array()
            .map(|v| {
                v.iter()
                    .filter(|n| n["role"] == "relay")
                    .map(|n| n["load"].as_u64().unwrap_or(0))
                    .sum()
            })
            .unwrap_or(0);
        let stats = &status["stats"];
        println!(
            "{:>5.0} {:>7} {:>18} {:>6} {:>10} {:>8} {:>6} {:>6}",
            t,
            live.len(),
            format!(
                "{}/{}/{}",
                per_tier.get(&1).unwrap_or(&0),
                per_tier.get(&2).unwrap_or(&0),
                per_tier.get(&3).unwrap_or(&0)
            ),
            load,
            delivered,
            missing,
            stats["distribute_events"].as_u64().unwrap_or(0),
            stats["consolidate_events"].as_u64().unwrap_or(0),
        );
    }
    for h in live.drain(..) {
        done.push(stop_viewer(h).await);
    }
    let status = coord.status().await.unwrap_or_default();
    report.distribute_events = status["stats"]["distribute_events"].as_u64().unwrap_or(0);
    report.consolidate_events = status["stats"]["consolidate_events"].as_u64().unwrap_or(0);
    report.active_relays_at_end = active_per_tier(&status).values().sum();
    report.blocks_delivered = done.iter().map(|r| r.blocks_received).sum();
    report.blocks_missing = done.iter().map(|r| r.blocks_missing).sum();
    let total = report.blocks_delivered + report.blocks_missing;
    report.continuity_index = if total == 0 {
        0.0
    } else {
        report.blocks_delivered as f64 / total as f64
    };
    if let Some(s) = origin.node.snapshot().await {
        report.blocks_sent = s
            .channels
            .first()
            .and_then(|c| c.highest_seq)
            .map_or(0, |h| h + 1);
    }
    println!();
    println!(
        "summary: {} viewer sessions (max {} at once), {} blocks sent by the origin",
        report.viewer_sessions, report.viewers_max, report.blocks_sent
    );
    println!(
        "         delivered {} blocks, missing {}, continuity index {:.5}",
        report.blocks_delivered, report.blocks_missing, report.continuity_index
    );
    println!(
        "         {} DISTRIBUTE, {} CONSOLIDATE, at most {} active relays of {}, {} at the end",
        report.distribute_events,
        report.consolidate_events,
        report.max_active_relays,
        report.relays,
        report.active_relays_at_end
    );
    if let Some(p) = &a.report {
        std::fs::write(p, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", p.display()))?;
        println!("report written to {}", p.display());
    }
    origin.shutdown().await;
    for r in relays {
        r.shutdown().await;
    }
    coord.shutdown().await;
    Ok(())
}

async fn stop_viewer(h: NodeHandle) -> ViewerReport {
    let r = report_of(&h, "live").await;
    let _ = h.command(NodeCommand::Unwatch("live".into())).await;
    // Let the LOGOFF leave before the links close.
    tokio::time::sleep(Duration::from_millis(20)).await;
    h.shutdown().await;
    r
}

fn active_per_tier(status: &serde_json::Value) -> BTreeMap<u64, u64> {
    let mut m = BTreeMap::new();
    if let Some(chs) = status["channels"].as_array() {
        for c in chs {
            if let Some(o) = c["active_per_tier"].as_object() {
                for (t, n) in o {
                    *m.entry(t.parse().unwrap_or(0)).or_insert(0) += n.as_u64().unwrap_or(0);
                }
            }
        }
    }
    m
}

pub fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}

/// A live H.264 test stream pushed by ffmpeg to the origin's UDP ingest; killed on drop.
fn start_ffmpeg(addr: SocketAddr, seconds: u64) -> Result<tokio::process::Child> {
    tokio::process::Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-nostdin",
            "-loglevel",
            "error",
            "-re",
            "-f",
            "lavfi",
            "-i",
        ])
        .arg("testsrc2=size=640x360:rate=25")
        .args([
            "-t",
            &seconds.to_string(),
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
            "-g",
            "50",
            "-b:v",
            "1200k",
            "-f",
            "mpegts",
        ])
        .arg(format!("udp://{addr}?pkt_size=1316"))
        .kill_on_drop(true)
        .stdout(std::process::Stdio::null())
        .spawn()
        .context("starting ffmpeg")
}
