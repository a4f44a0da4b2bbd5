//! A cap between two regions (issue 11, Must show 3; C3, C4, C5), shrunk to CI
//! size: `scenarios/policies/region-cap.toml` with 300 peers. Uncapped, the overlay
//! carries far more between eu and us than the cap; capped, the admitted peers
//! keep their continuity, what the cap cannot carry is ejected, and no held
//! second passes the cap but in the catch-up right after the policy's
//! recomputation (the new links' backlogs, at most 3 s after it: issue 11's
//! "never exceeded in any second" is not met yet; `docs/BENCHMARKS.md`, "Caps
//! between regions"). The test prints the seconds over.
mod support;

fn run(file: &str) -> serde_json::Value {
    let text = support::scenario_text("policies", file)
        .replace("count = 600", "count = 300")
        .replace("cap_mbps = 60", "cap_mbps = 30")
        .replace("duration_s = 90", "duration_s = 60");
    support::metrics_json(&text)
}

fn pair(m: &serde_json::Value) -> &serde_json::Value {
    &m["policies"]["pairs"][0]
}

#[test]
fn a_cap_between_two_regions_is_kept_and_the_admitted_peers_are_carried() {
    let cap = 30e6;
    let off = run("region-cap-off.toml");
    let on = run("region-cap.toml");
    let off_max = pair(&off)["max_second_bps"].as_f64().expect("traffic");
    assert!(
        off_max > 3.0 * cap,
        "uncapped, eu-us carries {off_max} bit/s"
    );
    let p = pair(&on);
    assert_eq!(p["cap_bps"].as_f64(), Some(cap));
    let (held, over) = (
        p["capped_seconds"].as_u64().expect("held"),
        p["seconds_over_cap"].as_u64().expect("over"),
    );
    eprintln!(
        "capped: {over} of {held} seconds over, at {:?}, worst {:?} of the cap; \
         uncapped max {off_max:.0} bit/s",
        p["over_cap_at_s"], p["max_ratio_to_cap"]
    );
    assert!(held >= 35, "{held} seconds held to the cap");
    let mean = p["mean_ratio_to_cap"].as_f64().expect("mean");
    eprintln!("held seconds carry {mean:.3} of the cap on average");
    assert!(
        mean <= 1.0,
        "held seconds carry {mean} of the cap on average"
    );
    // Never passed in a held second: bookings stay under 95 % of the cap and
    // joins behind it are paced by the unbooked 5 % (`peers/cap_joins.rs`).
    assert_eq!(over, 0, "seconds over the cap: {:?}", p["over_cap_at_s"]);
    let worst = p["max_ratio_to_cap"].as_f64().expect("worst");
    assert!(worst <= 1.0, "worst held second {worst} of the cap");
    let admitted = on["peers"]["continuity_index_admitted"]
        .as_f64()
        .expect("peers");
    assert!(admitted >= 0.995, "admitted continuity {admitted}");
    assert!(
        on["peers"]["ejected"].as_u64().expect("ejected") > 0,
        "the cap cannot carry every us peer: some are told to wait"
    );
    // Held out for a minute after an ejection under the cap, no peer is let
    // back in only to be ejected again within it (C6's scarcity).
    let again = on["peers"]["ejected_in_a_minute_max"]
        .as_u64()
        .expect("peers");
    assert!(again <= 1, "one peer ejected {again} times in a minute");
}
