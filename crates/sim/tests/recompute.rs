//! Full recomputation without outage (C7, issue 10's Must show 2) on
//! `scenarios/robust/full-recompute.toml` (1 000 peers), averaged over three seeds:
//! once the flash crowd has been rebuilt from scratch, each periodic full
//! recomputation keeps every parent that still fits, so the seconds around it (2 s
//! before to 10 s after, by the on-time ledger) stay better than when every link is
//! rebuilt. (At 300 peers the two rules measure the same, 0.869 against 0.867 over
//! seeds 33..35; a single seed there came out either way.)

use std::path::Path;
use tiercast_sim::{RunOptions, Scenario, Simulation};

fn scenario(seed: u64, edit: impl Fn(String) -> String) -> Scenario {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/robust/full-recompute.toml");
    let text = std::fs::read_to_string(&path).expect("scenario file");
    let text = text.replace("seed = 31", &format!("seed = {seed}"));
    Scenario::from_toml(&edit(text)).expect("valid scenario")
}

/// The worst on-time second around the recomputations made after 30 s.
fn worst_second(sc: Scenario) -> f64 {
    let mut sim = Simulation::new(sc, RunOptions::default()).unwrap();
    let m = sim.run().unwrap().metrics;
    assert_eq!(m.invariant_violation_count, 0);
    let late: Vec<_> = m.recomputations.iter().filter(|w| w.at_s >= 30.0).collect();
    assert!(late.len() >= 2, "a recomputation every 20 s");
    late.iter()
        .map(|w| w.min_second_continuity.expect("blocks expected"))
        .fold(1.0, f64::min)
}

/// Seeds the comparison is averaged over: one seed is one trajectory of a chaotic
/// system (on seed 33 alone either rule can come out ahead by a few hundredths).
const SEEDS: [u64; 3] = [31, 32, 33];

fn mean_worst(edit: impl Fn(String) -> String) -> (f64, f64) {
    let w: Vec<f64> = SEEDS
        .iter()
        .map(|s| worst_second(scenario(*s, &edit)))
        .collect();
    let min = w.iter().copied().fold(1.0, f64::min);
    (w.iter().sum::<f64>() / w.len() as f64, min)
}

#[test]
fn a_calm_full_recomputation_keeps_the_links_and_every_second_around_it() {
    let (kept, kept_min) = mean_worst(|t| t);
    let (rebuilt, rebuilt_min) = mean_worst(|t| {
        t.replace(
            "full_recompute_ms = 20000",
            "full_recompute_ms = 20000\nrecompute_keeps_parents = false",
        )
    });
    eprintln!(
        "worst second around a recomputation, mean over seeds {SEEDS:?}: kept {kept:.4} \
         (worst {kept_min:.4}), rebuilt {rebuilt:.4} (worst {rebuilt_min:.4})"
    );
    // The bound is 0.99, not met (see BENCHMARKS); this checks the gain.
    assert!(kept >= 0.9, "kept: {kept}");
    assert!(
        rebuilt < kept - 0.02,
        "rebuilding every link costs: {rebuilt} vs {kept}"
    );
}
