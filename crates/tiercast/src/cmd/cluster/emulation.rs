//! The latency emulation file each cluster process is given (`--net-emulation`,
//! read by crates/net/src/link/emulate.rs): its own region, the scenario's one-way
//! latency matrix, jitter and loss — the same figures the simulator's network
//! model (crates/netmodel) uses — and which addresses are in which region.

use super::network::{prefix, Mode};
use super::plan::Plan;
use anyhow::Result;
use tiercast_sim::Scenario;

/// The file's text for a process in `region`.
pub fn file_text(
    sc: &Scenario,
    plan: &Plan,
    mode: Mode,
    region: usize,
    seed: u64,
) -> Result<String> {
    let matrix = match &sc.latency.matrix_ms {
        Some(m) => m.clone(),
        None => vec![vec![0.0]],
    };
    let q = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"?\"".into());
    let mut t = String::new();
    t.push_str(&format!(
        "region = {}\nseed = {seed}\n\n",
        q(&plan.region_names[region])
    ));
    t.push_str("[latency]\n");
    t.push_str(&format!(
        "regions = {}\n",
        serde_json::to_string(&plan.region_names)?
    ));
    t.push_str(&format!(
        "matrix_ms = {}\n",
        serde_json::to_string(&matrix)?
    ));
    t.push_str(&format!("jitter_ms = {}\n\n", sc.latency.jitter_ms));
    t.push_str("[network]\n");
    t.push_str(&format!("loss = {}\n", sc.network.loss));
    if let Some(m) = &sc.network.loss_matrix {
        t.push_str(&format!("loss_matrix = {}\n", serde_json::to_string(m)?));
    }
    let [a, b] = prefix(mode);
    for (i, name) in plan.region_names.iter().enumerate() {
        let cidr = match mode {
            Mode::Namespaces => format!("{a}.{b}.{}.0/24", i + 1),
            Mode::Loopback => format!("{a}.{}.0.0/16", i + 1),
        };
        t.push_str(&format!(
            "\n[[subnets]]\ncidr = {}\nregion = {}\n",
            q(&cidr),
            q(name)
        ));
    }
    Ok(t)
}
