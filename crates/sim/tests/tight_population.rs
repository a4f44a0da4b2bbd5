//! A tight population with strong peers (issue 10, Must show 2; D1, D3, D4, C6,
//! C7), shrunk to CI size: `scenarios/robust/tight-strong.toml` (Σ uplink ≈
//! 1.10·N·r, 10 % of the peers at 3–7× the rate) with 250 peers, and a link cap
//! small enough to bind on the strong peers. The admitted peers must be carried:
//! the ejection leaves room to re-home and the top level does not swap equals.

mod support;

use support::{edited as scenario, run};

#[test]
fn a_tight_population_with_strong_peers_is_carried_within_link_caps() {
    let sc = scenario("robust/tight-strong.toml", |t| {
        t.replace("count = 1000", "count = 250")
            .replace("over_s = 15", "over_s = 5")
            .replace("duration_s = 120", "duration_s = 60")
            .replace("steady_from_s = 40", "steady_from_s = 20")
            .replace(
                "top_review_ms = 5000",
                "top_review_ms = 5000\ncapacity = 16",
            )
    });
    let m = run(sc);
    let p = m.peers.as_ref().expect("peer metrics");
    eprintln!(
        "tight-strong-250: admitted {} all {} ejected {} full {} login denied {}",
        p.continuity_index_admitted,
        m.continuity_index,
        p.ejected,
        p.full_recomputations,
        m.login_denied
    );
    assert_eq!(m.invariant_violation_count, 0);
    assert!(p.top_level_peers > 0, "strong peers are promoted");
    assert!(
        p.continuity_index_admitted >= ADMITTED_AT_LEAST,
        "admitted continuity {}",
        p.continuity_index_admitted
    );
}

/// What the overlay reaches at this size today: 0.9886 measured, since a tree
/// short of slots borrows the top level's (`peers/lend.rs`) and a pre-empting
/// joiner needs a free slot of its own (before: 0.756, and a parent booked past
/// its slots fed a chain 20 deep 5.6 s late). Must show 2's bar, 0.995 at full
/// size on every one of 12 seeds, is measured by `scripts/robust-sweep.py`.
const ADMITTED_AT_LEAST: f64 = 0.98;
