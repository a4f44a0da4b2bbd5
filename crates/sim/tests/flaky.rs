//! Flaky peers and the history store (issue 11 item 5; C4's "rank by history",
//! D1's "good history"), shrunk to CI size: `scenarios/peers-flaky.toml` with 400
//! peers over 90 s, run with `[peers] history_rank` off and on, same seed. Half
//! the strong peers crash every 30 s and come back under the same id; with the
//! history store ranking, a flaky peer that came back with a bad record is not
//! promoted to the top level and loses ties for children, so fewer children
//! hang under it when it crashes again, and the peers' continuity counted on
//! arrival is no worse. Counted as played by the peers' playout stage (issue 13,
//! `playout_stage`, the default) it *is* worse at this size: seed 31, 0.9756 off,
//! 0.9671 on — ranking leaves more, shorter gaps (408 → 606 given up; 3602 → 4135
//! blocks not arrived in time), and each gap now costs a resync to the next
//! keyframe (docs/BENCHMARKS.md "Playout in the core"). That is a finding for
//! the history-rank sweep, not asserted away: this test pins the arrival figure,
//! the one its claim was made on.
//! Also: a `flaky` fault's bad values are refused with the field named.
mod support;

use tiercast_sim::Scenario;

fn text(rank: bool) -> String {
    played_text(rank).replace(
        "data_plane = \"blocks\"",
        "data_plane = \"blocks\"\nplayout_stage = false",
    )
}

/// As the scenario is (blocks counted as the peers' playout stages play them).
fn played_text(rank: bool) -> String {
    let t = support::scenario_text(".", "peers-flaky.toml")
        .replace("count = 1500", "count = 400")
        .replace("duration_s = 150", "duration_s = 90");
    if rank {
        t.replace(
            "top_review_ms = 5000",
            "top_review_ms = 5000\nhistory_rank = true",
        )
    } else {
        t
    }
}

fn figure(m: &serde_json::Value, path: &[&str]) -> f64 {
    let v = path.iter().fold(m, |v, k| &v[*k]);
    v.as_f64()
        .unwrap_or_else(|| panic!("{path:?} in metrics: {v}"))
}

#[test]
fn ranking_by_history_keeps_children_off_flaky_peers() {
    let off = support::metrics_json(&text(false));
    let on = support::metrics_json(&text(true));
    for m in [&off, &on] {
        assert_eq!(
            m["invariant_violation_count"], 0,
            "{}",
            m["invariant_violations"]
        );
        assert!(figure(m, &["flaky", "peers"]) >= 5.0, "{}", m["flaky"]);
        assert!(figure(m, &["flaky", "returns"]) >= 10.0, "{}", m["flaky"]);
    }
    // Same peers, same flaky ones, same crashes: only the coordinator's rule differs.
    for k in ["peers", "crashes", "returns"] {
        assert_eq!(off["flaky"][k], on["flaky"][k], "{k}");
    }
    let kids = |m| figure(m, &["flaky", "children_at_crash"]);
    let top = |m| figure(m, &["flaky", "top_at_crash"]);
    let cont = |m| figure(m, &["continuity_index"]);
    eprintln!(
        "children at crashes {} / {}, on top {} / {}, continuity {:.4} / {:.4} (off / on)",
        kids(&off),
        kids(&on),
        top(&off),
        top(&on),
        cont(&off),
        cont(&on)
    );
    assert!(
        top(&on) < top(&off),
        "ranking keeps flaky peers off the top level: {} vs {}",
        top(&on),
        top(&off)
    );
    assert!(
        kids(&on) < kids(&off),
        "ranking leaves fewer children under flaky peers when they crash: {} vs {}",
        kids(&on),
        kids(&off)
    );
    // No worse on arrival: within 0.002 (seed 31: 0.9909 on, 0.9920 off). Played
    // by the playout stage it is worse (see the top: 0.9756 off, 0.9671 on).
    assert_eq!(off["playout_stage"], false, "counted on arrival");
    assert!(
        cont(&on) >= cont(&off) - 0.002,
        "ranking does not cost continuity: {} vs {}",
        cont(&on),
        cont(&off)
    );
}

#[test]
fn a_flaky_fault_with_bad_values_is_refused_naming_the_field() {
    let base = support::scenario_text(".", "peers-flaky.toml");
    let cases = [
        ("down_s = 10", "down_s = 30", "faults[0].down_s"),
        ("down_s = 10", "down_s = 0", "faults[0].down_s"),
        ("every_s = 30", "every_s = -1", "faults[0].every_s"),
        ("fraction = 0.5", "fraction = 1.5", "faults[0]"),
        ("fraction = 0.5", "fraction = 0.5\ncount = 3", "faults[0]"),
    ];
    for (from, to, field) in cases {
        let t = base.replacen(from, to, 1);
        assert_ne!(t, base, "{from}");
        let e = Scenario::from_toml(&t).expect_err(to).to_string();
        assert!(e.contains(field), "{to}: {e}");
    }
    assert!(Scenario::from_toml(&base).is_ok());
}
