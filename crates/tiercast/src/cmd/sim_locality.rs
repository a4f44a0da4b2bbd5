//! `tiercast sim-locality SCENARIO.toml --out DIR [--seed N]` (issue 14,
//! L1–L6): runs the locality group machines through the simulator's locality
//! runner (crates/sim/src/locality) and prints the figures: groups vs true
//! regions (adjusted Rand index), overlay RTT ratio, join cost, leader crashes.

use anyhow::Result;

/// The same options as `tiercast sim`: the scenario file, `--out`, `--seed`, `--quiet`.
pub use super::sim::Args;

pub async fn run(a: Args) -> Result<()> {
    let m = tokio::task::block_in_place(|| {
        tiercast_sim::locality::run_file(&a.scenario, a.seed, Some(&a.out), !a.quiet)
    })
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let f = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.0}"));
    println!("scenario            {} (seed {})", m.scenario, m.seed);
    println!(
        "nodes               {} live, {} in a group, {} regions, {} groups (size p50 {} max {})",
        m.nodes,
        m.joined,
        m.regions,
        m.groups,
        f(m.group_size.p50),
        f(m.group_size.max)
    );
    println!("adjusted Rand index {:.4}", m.adjusted_rand_index);
    println!(
        "overlay RTT         {:.1} ms vs random {:.1} ms (ratio {:.3}); group links {:.1} vs {:.1} ms; {:.3} of edges inside a true region",
        m.overlay_rtt_ms,
        m.random_overlay_rtt_ms,
        m.overlay_rtt_ratio,
        m.group_link_rtt_ms,
        m.group_link_random_rtt_ms,
        m.overlay_edges_same_region
    );
    println!(
        "join                time p50 {} ms p95 {} ms max {} ms; Measure probes p50 {} p95 {} max {}; groups tested p95 {}",
        f(m.join_ms.p50),
        f(m.join_ms.p95),
        f(m.join_ms.max),
        f(m.join_probes.p50),
        f(m.join_probes.p95),
        f(m.join_probes.max),
        f(m.join_groups_tested.p95)
    );
    println!(
        "founders            {} ({} merged away)",
        m.founders, m.merges
    );
    for c in &m.crashes {
        println!(
            "crash               {} ({} down, {} survivors): new leader after {} s, {} view(s) at end, {} elsewhere, links {} -> {}",
            if c.leaderless { "leadership list" } else { "leader" },
            c.crashed,
            c.survivors,
            c.new_leader_after_s.map_or("-".into(), |s| format!("{s:.1}")),
            c.views_at_end,
            c.survivors_elsewhere,
            c.links_before,
            c.links_after
        );
    }
    println!(
        "measure             {} answered, {} dropped by the rate limits ({} sent by flooders)",
        m.measure_answered, m.measure_dropped, m.flood_sent
    );
    println!(
        "messages            {} ({} B), {} lost in the network, {} events",
        m.messages, m.message_bytes, m.dropped_in_network, m.events
    );
    Ok(())
}
