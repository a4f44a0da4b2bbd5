//! The locality runner end to end on a small world (issue 14): four regions,
//! 400 nodes, a leader crash and a leadership-list crash; deterministic.

use super::report::{metrics, LocalityMetrics};
use super::run::LocalityRun;
use super::scenario::LocalityScenario;

const SMALL: &str = r#"
name = "locality-small"
seed = 7
duration_s = 200
[[regions]]
name = "eu"
[[regions]]
name = "us"
[[regions]]
name = "asia"
[[regions]]
name = "au"
[latency]
matrix_ms = [[2, 40, 80, 140], [40, 2, 60, 90], [80, 60, 2, 50], [140, 90, 50, 2]]
jitter_ms = 2
loss = 0.001
[locality]
nodes = 400
arrival_s = 60
rendezvous_region = "us"
crash_at_s = 100
leader_crashes = 1
leaderless_crashes = 1
"#;

/// Runs the scenario `text` to its end; its metrics, with the groups found
/// checked against the small world's four regions.
fn run_checked(text: &str) -> LocalityMetrics {
    let sc = LocalityScenario::from_toml(text).expect("valid scenario");
    let mut run = LocalityRun::new(sc).expect("runs");
    run.run(false);
    let m = metrics(&run);
    assert_eq!(m.groups, 4, "{m:?}");
    assert!(
        m.adjusted_rand_index >= 0.9,
        "ARI {}",
        m.adjusted_rand_index
    );
    m
}

#[test]
fn groups_match_regions_and_crashed_groups_recover_whole() {
    let m = run_checked(SMALL);
    assert!(m.overlay_rtt_ratio < 0.5, "ratio {}", m.overlay_rtt_ratio);
    assert_eq!(m.crashes.len(), 2);
    for c in &m.crashes {
        let after = c.new_leader_after_s.expect("a new leader");
        let bound = if c.leaderless { 40.0 } else { 20.0 };
        assert!(after <= bound, "{c:?}");
        assert_eq!(c.views_at_end, 1, "no split: {c:?}");
        assert_eq!(c.survivors_elsewhere, 0, "{c:?}");
    }
    // Deterministic: the same seed gives the same figures.
    let m2 = run_checked(SMALL);
    assert_eq!(m.messages, m2.messages);
    assert_eq!(m.adjusted_rand_index, m2.adjusted_rand_index);
}

#[test]
fn bad_scenarios_are_refused_with_the_field() {
    let bad = SMALL.replace("rendezvous_region = \"us\"", "rendezvous_region = \"mars\"");
    let e = LocalityScenario::from_toml(&bad).unwrap_err();
    assert!(e.contains("rendezvous_region"), "{e}");
    let bad = SMALL.replace("nodes = 400", "nodes = 0");
    assert!(LocalityScenario::from_toml(&bad).is_err());
    let bad = SMALL.replace("[2, 40, 80, 140], ", "");
    assert!(LocalityScenario::from_toml(&bad).is_err());
}

/// L2 at scale: a flooder sending 2 000 Measure/s to every leader is answered
/// at its per-sender rate, the rest dropped; the groups form as without it.
#[test]
fn a_flooder_is_rate_limited_and_groups_still_form() {
    let text = SMALL.replace(
        "leaderless_crashes = 1\n",
        "leaderless_crashes = 1\nflooders = 1\nflood_per_s = 2000\n",
    );
    let m = run_checked(&text);
    assert!(m.flood_sent > 100_000, "{}", m.flood_sent);
    // At most 20/s per leader (plus the burst) reach the flooder.
    assert!(m.measure_dropped * 10 > m.flood_sent * 9, "{m:?}");
}

#[test]
fn shipped_locality_scenarios_are_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/locality");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).expect("scenarios/locality") {
        let p = e.expect("entry").path();
        if p.extension().is_some_and(|x| x == "toml") {
            LocalityScenario::from_file(&p).unwrap_or_else(|e| panic!("{e}"));
            n += 1;
        }
    }
    assert!(n >= 2, "{n} locality scenarios");
}
