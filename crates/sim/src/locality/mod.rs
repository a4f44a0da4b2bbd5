//! Locality-aware peer groups in the simulator (issue 14, L1–L6): a runner of
//! its own beside the streaming simulator, because the group machines
//! (crates/locality) exchange no blocks and need none of the coordinator.
//! `tiercast sim-locality SCENARIO --out DIR` runs it.
//!
//! - [`scenario`] — the TOML file (regions, latency, population, crashes).
//! - [`run`] — the event loop over the network model, crash injection.
//! - [`report`] — the figures: ARI, overlay RTT ratio, join cost, crashes.
//! - [`stats`] — adjusted Rand index and percentiles.

pub mod report;
pub mod run;
pub mod scenario;
pub mod stats;
#[cfg(test)]
mod tests;

pub use report::LocalityMetrics;
pub use run::LocalityRun;
pub use scenario::LocalityScenario;

use std::path::Path;

/// Reads, runs, and writes metrics.json / nodes.csv into `out` when given.
pub fn run_file(
    path: &Path,
    seed: Option<u64>,
    out: Option<&Path>,
    progress: bool,
) -> Result<LocalityMetrics, String> {
    let mut sc = LocalityScenario::from_file(path)?;
    if let Some(s) = seed {
        sc.seed = s;
    }
    let mut run = LocalityRun::new(sc)?;
    run.run(progress);
    let m = report::metrics(&run);
    if let Some(dir) = out {
        report::write(&run, &m, dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    Ok(m)
}
