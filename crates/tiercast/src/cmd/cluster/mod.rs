//! `tiercast cluster SCENARIO.toml --out DIR` (issue 13; X5's scenarios over real
//! processes): runs a scenario of up to ~60 nodes as real `tiercast` processes on
//! this machine — each in its own network namespace with its uplink and downlink
//! capped by `tc tbf`, the scenario's latency, jitter and loss emulated by each
//! process's link (`--net-emulation`), its arrivals, leaves and crashes played on
//! the wall clock — and writes `DIR/metrics.json` with the simulator's figures
//! computed from the nodes' own reports, so the two worlds can be compared.
//!
//! - [`plan`] — the scenario as processes and timed faults;
//! - [`network`] — namespaces, veths, rates (or loopback, said so);
//! - [`emulation`] — each process's latency emulation file;
//! - [`procs`] — command lines, start and stop;
//! - [`faults`] — a fault's targets among the live processes;
//! - [`status`] — a process's `/status`;
//! - [`collect`] — metrics.json from the reports.

mod collect;
mod emulation;
mod faults;
mod network;
mod plan;
mod procs;
mod status;

use anyhow::{bail, Context, Result};
use clap::Args as ClapArgs;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tiercast_sim::Scenario;

use network::Network;
use plan::Role;
use procs::Running;

#[derive(ClapArgs, Debug)]
pub struct Args {
    /// The scenario file (the simulator's format; blocks mode, at most 64 processes).
    pub scenario: PathBuf,
    /// Where metrics.json, the nodes' reports and logs go (created).
    #[arg(long)]
    pub out: PathBuf,
    /// Seed of the plan's draws and of the emulation (default: the scenario's).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Run on loopback addresses instead of network namespaces (no kernel rate caps).
    #[arg(long)]
    pub loopback: bool,
    /// No latency, jitter or loss emulation (the nodes talk at the speed of the veths).
    #[arg(long)]
    pub no_emulation: bool,
    /// The `tiercast` binary each node runs (default: this one).
    #[arg(long)]
    pub bin: Option<PathBuf>,
}

enum Step {
    Start(usize),
    Leave(usize),
    Fault(usize),
}

fn absolute(p: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(p).with_context(|| format!("{}", p.display()))
}

pub async fn run(a: Args) -> Result<()> {
    let wall = Instant::now();
    let scenario_file = absolute(&a.scenario)?;
    let sc = Scenario::from_file(&scenario_file).map_err(|e| anyhow::anyhow!("{e}"))?;
    let seed = a.seed.unwrap_or(sc.seed);
    let plan = plan::plan(&sc, seed)?;
    if sc.stream.keyframe_interval_ms != 1000 {
        eprintln!(
            "warning: the origin's test source cuts a keyframe every 1000 ms; the scenario says {} ms",
            sc.stream.keyframe_interval_ms
        );
    }
    for d in ["logs", "reports", "emulation", "data"] {
        std::fs::create_dir_all(a.out.join(d))
            .with_context(|| format!("creating {}", a.out.join(d).display()))?;
    }
    let out = absolute(&a.out)?;
    let program = match &a.bin {
        Some(b) => absolute(b)?,
        None => std::env::current_exe().context("finding this binary")?,
    };
    let net = Network::setup(&plan, !a.loopback, sc.network.uplink_queue_limit_ms)?;
    println!(
        "cluster: {} ({} processes, {} s) on {}{}",
        sc.name,
        plan.process_count(),
        plan.duration_s,
        net.mode().name(),
        net.fallback_reason
            .as_ref()
            .map(|r| format!(" — {r}"))
            .unwrap_or_default()
    );
    let mut argv = Vec::new();
    for n in &plan.nodes {
        let path = out.join("emulation").join(format!("{}.toml", n.label));
        let text = emulation::file_text(
            &sc,
            &plan,
            net.mode(),
            n.region,
            seed ^ (n.index as u64) << 20,
        )?;
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        let emulation = (!a.no_emulation).then_some(path.as_path());
        argv.push(procs::args(n, &sc, &scenario_file, &net, &out, emulation));
    }
    let mut steps: Vec<(f64, Step)> = Vec::new();
    for n in &plan.nodes {
        steps.push((n.start_s, Step::Start(n.index)));
        if let Some(l) = n.leave_s {
            steps.push((l, Step::Leave(n.index)));
        }
    }
    for (i, f) in plan.faults.iter().enumerate() {
        steps.push((f.at_s, Step::Fault(i)));
    }
    steps.sort_by(|x, y| x.0.total_cmp(&y.0));
    let mut running: Vec<Option<Running>> = plan.nodes.iter().map(|_| None).collect();
    let mut m = collect::ClusterMetrics {
        scenario: sc.name.clone(),
        seed,
        world: "cluster",
        network: net.mode().name().into(),
        network_fallback: net.fallback_reason.clone(),
        ..Default::default()
    };
    let mut fault_rng = ChaCha8Rng::seed_from_u64(seed ^ 0xfa17);
    let coordinator_addr = std::net::SocketAddr::new(net.addr(0), procs::COORDINATOR_PORT);
    let t0 = Instant::now();
    let mut next_progress = 0.0;
    let outcome: Result<()> = async {
        let mut steps = steps.into_iter().peekable();
        let end = plan.duration_s;
        loop {
            let now = t0.elapsed().as_secs_f64();
            if now >= end {
                break;
            }
            while steps.peek().is_some_and(|(t, _)| *t <= now) {
                let Some((_, step)) = steps.next() else { break };
                match step {
                    Step::Start(i) => {
                        running[i] = Some(procs::start(
                            &plan.nodes[i],
                            &argv[i],
                            &net,
                            &program,
                            &out,
                        )?);
                        m.processes_started += 1;
                    }
                    Step::Leave(i) => {
                        if let Some(r) = running[i].as_mut().filter(|r| !r.stopped) {
                            procs::stop(r, false);
                            m.processes_left += 1;
                        }
                    }
                    Step::Fault(k) => {
                        let status =
                            tokio::task::spawn_blocking(move || status::fetch(coordinator_addr))
                                .await
                                .unwrap_or(Value::Null);
                        let alive: Vec<bool> = running
                            .iter()
                            .map(|r| r.as_ref().is_some_and(|r| !r.stopped))
                            .collect();
                        let f = &plan.faults[k];
                        let hit = faults::targets(f, &plan.nodes, &alive, &status, &mut fault_rng);
                        let labels: Vec<&str> =
                            hit.iter().map(|i| plan.nodes[*i].label.as_str()).collect();
                        println!(
                            "  t={now:.1}s {} {}: {}",
                            if f.crash { "crash" } else { "leave" },
                            hit.len(),
                            labels.join(" ")
                        );
                        for i in hit {
                            if let Some(r) = running[i].as_mut() {
                                procs::stop(r, f.crash);
                                if f.crash {
                                    m.processes_crashed += 1;
                                } else {
                                    m.processes_left += 1;
                                }
                            }
                        }
                    }
                }
            }
            // A process that stopped on its own is a failed run for the roles the
            // overlay cannot do without, and a note for the others.
            for (i, r) in running.iter_mut().enumerate() {
                let Some(r) = r.as_mut().filter(|r| !r.stopped) else {
                    continue;
                };
                if let Ok(Some(status)) = r.child.try_wait() {
                    r.stopped = true;
                    let n = &plan.nodes[i];
                    let log = out.join("logs").join(format!("{}.log", n.label));
                    if matches!(n.role, Role::Coordinator | Role::Origin) {
                        bail!(
                            "{} exited by itself ({status}); see {}",
                            n.label,
                            log.display()
                        );
                    }
                    eprintln!(
                        "  {} exited by itself ({status}); see {}",
                        n.label,
                        log.display()
                    );
                }
            }
            if now >= next_progress {
                let alive = running
                    .iter()
                    .filter(|r| r.as_ref().is_some_and(|r| !r.stopped))
                    .count();
                println!(
                    "  t={now:>5.1}s  running {alive:>2}/{}",
                    plan.process_count()
                );
                next_progress = now + 10.0;
            }
            let next = steps.peek().map_or(end, |(t, _)| t.min(end));
            let wait = (next - t0.elapsed().as_secs_f64()).clamp(0.0, 0.2);
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs_f64(wait)) => {}
                _ = super::common::shutdown_signal() => bail!("interrupted"),
            }
        }
        Ok(())
    }
    .await;
    let coordinator_status = tokio::task::spawn_blocking(move || status::fetch(coordinator_addr))
        .await
        .unwrap_or(Value::Null);
    stop_all(&mut running).await;
    drop(net);
    outcome?;
    let mut reports = Vec::new();
    for n in plan.nodes.iter().filter(|n| n.role != Role::Coordinator) {
        if running[n.index].is_none() {
            continue;
        }
        let path = procs::report_path(&out, &n.label);
        let json = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
        // A viewer's report holds its node's status under `status`.
        let json = match n.role {
            Role::Viewer => json.and_then(|mut j| j.get_mut("status").map(Value::take)),
            _ => json,
        };
        match json.filter(|j| !j.is_null()) {
            Some(json) => reports.push(collect::Report {
                role: n.role.name(),
                json,
            }),
            None => m.reports_missing.push(n.label.clone()),
        }
    }
    m.nodes = plan
        .nodes
        .iter()
        .filter(|n| !matches!(n.role, Role::Viewer | Role::Peer))
        .count() as u64;
    m.viewers = plan.process_count() as u64 - m.nodes;
    collect::compute(&reports, &mut m);
    m.wall_seconds = wall.elapsed().as_secs_f64();
    let path = out.join("metrics.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&m)?)
        .with_context(|| format!("writing {}", path.display()))?;
    std::fs::write(
        out.join("coordinator-status.json"),
        serde_json::to_vec_pretty(&coordinator_status)?,
    )?;
    let f = |x: Option<f64>| x.map_or("-".into(), |v| format!("{v:.4}"));
    let g = |x: Option<u64>| x.map_or("-".into(), |v| v.to_string());
    println!(
        "cluster: continuity {} offload {} startup p50/p95 {}/{} ms lag p95 {} ms duplicate {} control overhead {}",
        f(m.continuity_index),
        f(m.offload),
        g(m.startup_delay_ms_p50),
        g(m.startup_delay_ms_p95),
        g(m.lag_ms_p95),
        f(m.duplicate_factor),
        f(m.control_overhead)
    );
    if !m.reports_missing.is_empty() {
        println!("cluster: no report from {}", m.reports_missing.join(" "));
    }
    println!("cluster: wrote {}", path.display());
    Ok(())
}

/// SIGTERM to every process still running, up to 10 s to write its last report
/// and leave, then SIGKILL; every child reaped.
async fn stop_all(running: &mut [Option<Running>]) {
    for r in running.iter_mut().flatten() {
        procs::stop(r, false);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut left = 0;
        for r in running.iter_mut().flatten() {
            if matches!(r.child.try_wait(), Ok(None)) {
                left += 1;
            }
        }
        if left == 0 || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for r in running.iter_mut().flatten() {
        let _ = r.child.kill();
        let _ = r.child.wait();
    }
}
