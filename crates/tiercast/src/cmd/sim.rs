//! `tiercast sim SCENARIO.toml --out DIR` (X5): runs a scenario through the
//! discrete-event simulator (crates/sim) and writes metrics.json, events.log,
//! timeline.csv, nodes.csv and timeline.png into DIR. Prints a summary; exits
//! non-zero when an invariant was violated.

use anyhow::{bail, Context, Result};
use clap::Args as ClapArgs;
use std::path::PathBuf;
use tiercast_sim::{RunOptions, Scenario, Simulation};

#[derive(ClapArgs, Debug)]
pub struct Args {
    /// The scenario file (TOML, see docs/SCENARIOS.md).
    pub scenario: PathBuf,
    /// Output directory (created if needed).
    #[arg(long)]
    pub out: PathBuf,
    /// Run with this seed instead of the scenario's.
    #[arg(long)]
    pub seed: Option<u64>,
    /// No progress output on stderr.
    #[arg(long)]
    pub quiet: bool,
}

pub async fn run(a: Args) -> Result<()> {
    let mut sc = Scenario::from_file(&a.scenario).map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some(seed) = a.seed {
        sc.seed = seed;
    }
    let opts = RunOptions {
        out_dir: Some(a.out.clone()),
        progress: !a.quiet,
        keep_events: false,
        playout_trace: false,
    };
    let report = tokio::task::block_in_place(|| -> Result<_> {
        let mut sim = Simulation::new(sc, opts).map_err(|e| anyhow::anyhow!("{e}"))?;
        sim.run().map_err(|e| anyhow::anyhow!("{e}"))
    })
    .context("simulation failed")?;
    let m = &report.metrics;
    let opt = |v: Option<u64>| v.map_or("-".to_string(), |x| x.to_string());
    let optf = |v: Option<f64>, d: usize| v.map_or("-".to_string(), |x| format!("{x:.d$}"));
    println!(
        "scenario            {} (seed {}, {} data plane)",
        m.scenario, m.seed, m.data_plane
    );
    println!(
        "viewers             {} arrived, {} at most at once",
        m.viewers, m.viewers_max
    );
    println!("continuity_index    {:.5}", m.continuity_index);
    println!(
        "startup delay       p50 {} ms, p95 {} ms",
        opt(m.startup_delay_ms_p50),
        opt(m.startup_delay_ms_p95)
    );
    println!("lag                 p95 {} ms", opt(m.lag_ms_p95));
    println!(
        "relays              max {} active, lower bound {} there, steady ratio {}",
        m.active_relays_max,
        m.relays_lower_bound,
        optf(m.relays_steady_ratio, 3)
    );
    println!(
        "offload             {:.4} (origin {} B of {} B delivered)",
        m.offload, m.origin_upload_bytes, m.delivered_bytes
    );
    if m.relays_failed > 0 {
        println!(
            "faults              {} relays failed, orphans {} (unrehomed {}), re-homed within {} ms",
            m.relays_failed,
            m.orphans,
            m.orphans_unrehomed,
            optf(m.orphan_rehome_ms_max, 0)
        );
    }
    println!(
        "run                 {} events, {:.1} s virtual in {:.1} s wall ({:.0} events/s)",
        m.events, m.virtual_seconds, m.wall_seconds, m.events_per_wall_second
    );
    println!("outputs             {}", a.out.display());
    if m.invariant_violation_count > 0 {
        for v in &m.invariant_violations {
            eprintln!("invariant violated: {v}");
        }
        bail!(
            "{} invariant violation(s); see {}",
            m.invariant_violation_count,
            a.out.join("metrics.json").display()
        );
    }
    Ok(())
}
