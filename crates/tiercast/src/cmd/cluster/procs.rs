//! The cluster's processes (issue 13): each planned node started as the real
//! `tiercast` binary in its role, in its namespace, with the scenario's settings
//! on its command line, its log in `DIR/logs/LABEL.log` and its own report
//! (`--report`, the JSON of its `/status`) in `DIR/reports/LABEL.json`; stopped
//! with SIGTERM (a leave: it says goodbye and writes its last report) or SIGKILL
//! (a crash: its last report is the one of the second before).

use super::network::Network;
use super::plan::{PlannedNode, Role};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use tiercast_sim::Scenario;

/// The coordinator's port on its address.
pub const COORDINATOR_PORT: u16 = 7000;

pub struct Running {
    pub child: Child,
    pub stopped: bool,
}

/// Where a node's report goes.
pub fn report_path(out: &Path, label: &str) -> PathBuf {
    out.join("reports").join(format!("{label}.json"))
}

/// The command line of `n` (without the program).
pub fn args(
    n: &PlannedNode,
    sc: &Scenario,
    scenario_file: &Path,
    net: &Network,
    out: &Path,
    emulation: Option<&Path>,
) -> Vec<String> {
    let addr = net.addr(n.index);
    let coordinator = format!("http://{}:{COORDINATOR_PORT}", net.addr(0));
    let region = sc.regions[n.region].name.clone();
    let report = report_path(out, &n.label).display().to_string();
    let mut a: Vec<String> = vec![n.role.name().into()];
    let mut push = |k: &str, v: String| {
        a.push(k.into());
        a.push(v);
    };
    if let Some(e) = emulation {
        push("--net-emulation", e.display().to_string());
    }
    match &n.role {
        Role::Coordinator => {
            push("--listen", format!("{addr}:{COORDINATOR_PORT}"));
            push("--scenario", scenario_file.display().to_string());
            push(
                "--data-dir",
                out.join("data/coordinator").display().to_string(),
            );
        }
        Role::Origin => {
            push("--coordinator", coordinator);
            push("--id", n.index.to_string());
            push("--channel", sc.stream.channel.clone());
            push("--region", region);
            push("--test-source", sc.stream.rate_kbps.to_string());
            push("--block-bytes", sc.stream.block_bytes.to_string());
            push("--capacity", n.capacity.to_string());
            push("--uplink-kbps", n.uplink_kbps.to_string());
            push("--link-listen", format!("{addr}:0"));
            push("--data-dir", out.join("data/origin").display().to_string());
            push("--report", report);
        }
        Role::Relay { tier } => {
            push("--coordinator", coordinator);
            push("--id", n.index.to_string());
            push("--tier", tier.to_string());
            push("--region", region);
            push("--capacity", n.capacity.to_string());
            if let Some(m) = n.max_threshold {
                push("--max-threshold", m.to_string());
            }
            push(
                "--min-threshold",
                n.min_threshold
                    .unwrap_or(sc.strategy.min_threshold)
                    .to_string(),
            );
            push("--uplink-kbps", n.uplink_kbps.to_string());
            push("--listen", format!("{addr}:0"));
            push("--link-listen", format!("{addr}:0"));
            push("--report", report);
        }
        Role::Viewer => {
            push("--coordinator", coordinator);
            push("--id", n.index.to_string());
            push("--channel", sc.stream.channel.clone());
            push("--region", region);
            push("--link-listen", format!("{addr}:0"));
            push("--report", report);
        }
        Role::Peer => {
            push("--coordinator", coordinator);
            push("--id", n.index.to_string());
            push("--channel", sc.stream.channel.clone());
            push("--region", region);
            push("--uplink-kbps", n.uplink_kbps.max(1).to_string());
            push("--capacity", n.capacity.to_string());
            push("--playout-ms", sc.playout_deadline_ms.to_string());
            push("--listen", format!("{addr}:0"));
            push("--http", format!("{addr}:0"));
            push("--report", report);
        }
    }
    a
}

/// Starts `n`; its output goes to `DIR/logs/LABEL.log`.
pub fn start(
    n: &PlannedNode,
    args: &[String],
    net: &Network,
    program: &Path,
    out: &Path,
) -> Result<Running> {
    let log_path = out.join("logs").join(format!("{}.log", n.label));
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    let err = log.try_clone()?;
    let mut cmd = net.command(n.index, program);
    cmd.args(args)
        .env(
            "RUST_LOG",
            std::env::var("TIERCAST_CLUSTER_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err);
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {} ({})", n.label, program.display()))?;
    Ok(Running {
        child,
        stopped: false,
    })
}

/// SIGTERM (`crash == false`) or SIGKILL.
pub fn stop(r: &mut Running, crash: bool) {
    if r.stopped {
        return;
    }
    r.stopped = true;
    if crash {
        let _ = r.child.kill();
    } else if let Ok(pid) = i32::try_from(r.child.id()) {
        // SAFETY: kill(2) on a child we started and have not reaped.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
}
