//! A tight population with strong peers (issue 10, Must show 2; D1, D3, D4, C6,
//! C7), shrunk to CI size: `scenarios/robust/tight-strong.toml` (Σ uplink ≈
//! 1.10·N·r, 10 % of the peers at 3–7× the rate) with 250 peers, and a link cap
//! small enough to bind on the strong peers. The admitted peers must be carried:
//! the ejection leaves room to re-home and the top level does not swap equals.

mod support;

use support::{edited as scenario, run};

#[test]
fn a_tight_population_with_strong_peers_is_carried_within_link_caps() {
    let mut admitted = Vec::new();
    for seed in SEEDS {
        let sc = scenario("robust/tight-strong.toml", |t| {
            t.replace("count = 1000", "count = 250")
                .replace("over_s = 15", "over_s = 5")
                .replace("duration_s = 120", "duration_s = 60")
                .replace("steady_from_s = 40", "steady_from_s = 20")
                .replace("seed = 31", &format!("seed = {seed}"))
                .replace(
                    "data_plane = \"blocks\"",
                    "data_plane = \"blocks\"\nplayout_stage = false",
                )
                .replace(
                    "top_review_ms = 5000",
                    "top_review_ms = 5000\ncapacity = 16",
                )
        });
        let m = run(sc);
        let p = m.peers.as_ref().expect("peer metrics");
        eprintln!(
            "tight-strong-250 seed {seed}: admitted {} all {} ejected {} full {} login denied {}",
            p.continuity_index_admitted,
            m.continuity_index,
            p.ejected,
            p.full_recomputations,
            m.login_denied
        );
        assert_eq!(m.invariant_violation_count, 0);
        assert!(p.top_level_peers > 0, "strong peers are promoted");
        assert!(
            p.continuity_index_admitted >= WORST_AT_LEAST,
            "seed {seed}: admitted continuity {}",
            p.continuity_index_admitted
        );
        admitted.push(p.continuity_index_admitted);
    }
    let mean = admitted.iter().sum::<f64>() / admitted.len() as f64;
    assert!(
        mean >= MEAN_AT_LEAST,
        "mean admitted continuity {mean}: {admitted:?}"
    );
}

/// Carriage is what this test claims, so blocks count on arrival
/// (`playout_stage = false`). Played by the peers' playout stage (the
/// default since issue 13) the same runs give 0.9263, 0.9848 and 0.9979: a
/// gap the stage gives up costs the blocks up to the next keyframe, and the
/// ejections and re-homings of a tight population leave gaps.
///
/// Three seeds: one seed's figure moves with any change of the run's course
/// (one more message per peer, say). Over seeds 1–8 and 31–34 the code of
/// 2026-12-07 (eleventh) gave 0.9854–0.9998 (mean 0.993) and the twelfth's,
/// with each peer told its cluster, 0.9791–0.9994 (mean 0.994; 0.9791 on seed
/// 31). Must show 2's bar, 0.995 at full size on every one of 12 seeds, is
/// measured by `scripts/robust-sweep.py`.
const SEEDS: [u64; 3] = [31, 32, 33];
const WORST_AT_LEAST: f64 = 0.975;
const MEAN_AT_LEAST: f64 = 0.985;
