//! The peer overlay in the simulator (D1-D4, C2-C7, issue 4's figures at small
//! scale; the full-size runs are in docs/BENCHMARKS.md): the shipped scenarios
//! shrunk to a size CI can afford, with the same uplink mixes and settings.

mod support;

use support::{edited as scenario, run};

#[test]
fn static_peers_reach_the_streaming_capacity_and_carry_the_stream() {
    let sc = scenario("peers-static-10k.toml", |t| {
        t.replace("count = 10000", "count = 2000")
            .replace("over_s = 60", "over_s = 20")
            .replace("duration_s = 180", "duration_s = 60")
            .replace("steady_from_s = 90", "steady_from_s = 30")
    });
    let m = run(sc);
    let p = m.peers.as_ref().expect("peer metrics");
    eprintln!(
        "peers-static-2k: efficiency {:?} offload {} continuity {} control {}",
        m.efficiency, m.offload, m.continuity_index, m.control_overhead
    );
    assert!(m.efficiency.unwrap() >= 0.97);
    assert!(m.offload >= 0.98);
    assert!(m.control_overhead <= 0.01);
    assert_eq!(p.pending_at_end, 0);
    assert_eq!(m.invariant_violation_count, 0);
}

#[test]
fn churning_peers_keep_streaming() {
    let sc = scenario("peers-churn-10k.toml", |t| {
        t.replace("population = 10000", "population = 2000")
            .replace("duration_s = 300", "duration_s = 150")
            .replace("ramp_s = 60", "ramp_s = 20")
            .replace("steady_from_s = 90", "steady_from_s = 40")
    });
    let m = run(sc);
    let p = m.peers.as_ref().unwrap();
    eprintln!(
        "peers-churn-2k: efficiency {:?} continuity {} leaves {} reassignments {}",
        m.efficiency, m.continuity_index, p.leaves, p.reassignments
    );
    assert!(p.leaves > 200, "about 10 % a minute leave");
    assert!(m.efficiency.unwrap() >= 0.95);
    assert!(m.continuity_index >= 0.995);
    assert!(m.control_overhead <= 0.01);
}

#[test]
fn an_infeasible_crowd_loses_only_its_weakest_within_twice_the_bound() {
    let m = run(scenario("peers-infeasible.toml", |t| t));
    let p = m.peers.as_ref().unwrap();
    eprintln!(
        "peers-infeasible: not carried at the end {} (bound {}), ejected {} (bound {}, \
         swapped out {}), admitted continuity {}",
        p.not_carried_at_end,
        p.not_carried_lower_bound,
        p.ejected,
        p.ejected_lower_bound,
        p.swapped_out,
        p.continuity_index_admitted
    );
    // Who is out at the end (turned away at the join and waiting, or ejected)
    // against seed 002's exact least for the same peers: not minimal (the
    // recomputation's reserve, ejection.rs), within twice it so it cannot grow
    // unnoticed.
    assert!(p.not_carried_lower_bound > 0, "the crowd is infeasible");
    assert!(
        p.not_carried_at_end >= p.not_carried_lower_bound
            && p.not_carried_at_end <= 2 * p.not_carried_lower_bound
    );
    // (`ejected` against its summed bound no longer judges this: most peers it
    // cannot carry are turned away at the join, and the ejections are swaps and
    // weak members no tree could place, beyond the aggregate bound by design.)
    assert!(p.swapped_out <= p.ejected);
    assert!(p.continuity_index_admitted >= 0.99);
    assert!(m.control_overhead <= 0.01);
}

#[test]
fn two_top_level_failures_lose_no_block_at_the_top_and_flooding_stays_cheap() {
    let m = run(scenario("top-mesh-failures.toml", |t| t));
    let p = m.peers.as_ref().unwrap();
    eprintln!(
        "top-mesh-failures: top members {} after-fault expected {:?} missed {:?} top dup {:?} continuity {}",
        p.top_level_members,
        p.top_level_blocks_expected_after_fault,
        p.top_level_blocks_missed_after_fault,
        p.top_level_duplicate_factor,
        m.continuity_index
    );
    assert!(p.top_level_peers >= 5, "a top level formed");
    assert!(p.top_level_blocks_expected_after_fault.unwrap() > 1000);
    assert_eq!(p.top_level_blocks_missed_after_fault, Some(0));
    assert!(p.top_level_duplicate_factor.unwrap() <= 1.5);
    assert!(m.control_overhead <= 0.01);
    assert_eq!(m.invariant_violation_count, 0);
}

/// D5, D6 as a mechanism (whether the code pays is a figure, in BENCHMARKS): each
/// region's cluster forms on coded links, the lossy region's middle members report
/// loss, the coordinator gives that region recovery substreams, and the groups they
/// rebuild pass the origin signature (no invariant broken, nothing rejected).
#[test]
fn a_lossy_region_gets_erasure_coded_substreams_that_rebuild_groups() {
    let m = run(scenario("middle-erasure.toml", |t| t));
    let p = m.peers.as_ref().unwrap();
    for r in &p.regions {
        eprintln!(
            "middle-erasure {}: {:?} middle {} n {} loss {:?} rebuilt {} middle missed {}/{}",
            r.region,
            r.algorithms,
            r.middle_members,
            r.redundancy_n,
            r.measured_loss,
            r.groups_rebuilt,
            r.middle_blocks_missed,
            r.middle_blocks_expected
        );
        assert!(r.middle_members > 0, "{}: a middle cluster", r.region);
        assert_eq!(r.algorithms[0], "flood(c=3)");
        assert_eq!(r.algorithms[2], "multi-tree(k=4)");
    }
    let lossy = p.regions.iter().find(|r| r.region == "in").unwrap();
    assert!(lossy.measured_loss.unwrap() > 0.01, "the loss is seen");
    assert!(lossy.redundancy_n >= 1);
    assert_eq!(
        lossy.algorithms[1],
        format!("erasure(k=4,n={})", lossy.redundancy_n)
    );
    assert!(lossy.groups_rebuilt > 0, "recovery shards rebuilt groups");
    assert_eq!(
        m.rejected_blocks, 0,
        "every rebuilt block carried the origin's signature"
    );
    assert_eq!(m.invariant_violation_count, 0);
}
