//! The locality run's figures (issue 14 Must show 1–2), computed once at the
//! end from the machines' own views: groups found vs true regions (adjusted
//! Rand index), overlay-neighbour RTT vs a random overlay of the same degree,
//! join cost (Measure probes, groups tested, time), leader crashes (time to a
//! new leader, split or not, links kept), Measure answered and dropped,
//! messages by kind. Written as metrics.json and nodes.csv.

use super::run::{LocalityRun, RENDEZVOUS};
use super::stats::{adjusted_rand_index, percentile};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;

#[derive(Clone, Debug, Serialize)]
pub struct Spread {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub max: Option<f64>,
}

impl Spread {
    fn of(v: &[f64]) -> Self {
        Spread {
            p50: percentile(v, 0.5),
            p95: percentile(v, 0.95),
            max: percentile(v, 1.0),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct CrashOutcome {
    pub leaderless: bool,
    pub crashed: usize,
    pub survivors: usize,
    /// From the crash to the first BecameLeader in the group (s).
    pub new_leader_after_s: Option<f64>,
    /// Distinct (group, leader) views among the survivors at the end (1 = no split).
    pub views_at_end: usize,
    /// Survivors no longer in the group at the end.
    pub survivors_elsewhere: usize,
    pub links_before: usize,
    pub links_after: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct LocalityMetrics {
    pub scenario: String,
    pub seed: u64,
    pub nodes: usize,
    pub regions: usize,
    pub joined: usize,
    pub groups: usize,
    pub group_size: Spread,
    pub adjusted_rand_index: f64,
    /// Mean base RTT between overlay neighbours (member–leader and
    /// leader–leader links), ms.
    pub overlay_rtt_ms: f64,
    /// The same edges with one end replaced by a random node, ms.
    pub random_overlay_rtt_ms: f64,
    pub overlay_rtt_ratio: f64,
    /// Inter-group links only (leader–leader), and their random counterpart.
    pub group_link_rtt_ms: f64,
    pub group_link_random_rtt_ms: f64,
    /// Overlay edges whose two ends are in the same true region.
    pub overlay_edges_same_region: f64,
    pub join_ms: Spread,
    pub join_probes: Spread,
    pub join_groups_tested: Spread,
    pub founders: usize,
    pub merges: u64,
    pub crashes: Vec<CrashOutcome>,
    pub measure_answered: u64,
    pub measure_dropped: u64,
    /// Measure sent by the flooders (`[locality] flooders`).
    pub flood_sent: u64,
    pub messages: u64,
    pub message_bytes: u64,
    pub messages_by_kind: BTreeMap<String, u64>,
    pub dropped_in_network: u64,
    pub events: u64,
}

fn rtt_ms(run: &LocalityRun, a: u32, b: u32) -> f64 {
    let r = run.net.regions();
    let (ra, rb) = (run.region[a as usize], run.region[b as usize]);
    (r.latency_us(ra, rb) + r.latency_us(rb, ra)) as f64 / 1000.0
}

pub fn metrics(run: &LocalityRun) -> LocalityMetrics {
    let n = run.nodes.len() as u32;
    let live: Vec<u32> = (1..n)
        .filter(|i| run.alive[*i as usize] && !run.flooder[*i as usize])
        .collect();
    // Groups vs true regions.
    let truth: Vec<u64> = live
        .iter()
        .map(|i| run.region[*i as usize] as u64)
        .collect();
    let found: Vec<u64> = live
        .iter()
        .map(|i| {
            run.nodes[*i as usize]
                .group()
                .map_or(u64::MAX - *i as u64, |g| g.id.0)
        })
        .collect();
    let ari = adjusted_rand_index(&truth, &found);
    let mut sizes: BTreeMap<u64, usize> = BTreeMap::new();
    for (i, g) in live.iter().zip(&found) {
        if run.nodes[*i as usize].group().is_some() {
            *sizes.entry(*g).or_default() += 1;
        }
    }
    let size_v: Vec<f64> = sizes.values().map(|s| *s as f64).collect();
    // Overlay edges: member–leader, leader–leader.
    let mut edges: BTreeSet<(u32, u32, bool)> = BTreeSet::new();
    for i in &live {
        let node = &run.nodes[*i as usize];
        let Some(g) = node.group() else { continue };
        if node.is_leader() {
            for l in node.inter().links.values() {
                let (a, b) = (*i.min(&l.leader.0), *i.max(&l.leader.0));
                if a != b && run.alive[l.leader.0 as usize] {
                    edges.insert((a, b, true));
                }
            }
        } else if g.leader.0 != *i && run.alive[g.leader.0 as usize] {
            let (a, b) = (*i.min(&g.leader.0), *i.max(&g.leader.0));
            edges.insert((a, b, false));
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(run.sc.seed ^ 0x7261_6e64);
    let (mut sum, mut sum_rand, mut same) = (0.0, 0.0, 0usize);
    let (mut gsum, mut gsum_rand, mut gn) = (0.0, 0.0, 0usize);
    for (a, b, inter) in &edges {
        let r = rtt_ms(run, *a, *b);
        let other = loop {
            let x = live[rng.gen_range(0..live.len())];
            if x != *a || live.len() == 1 {
                break x;
            }
        };
        let rr = rtt_ms(run, *a, other);
        sum += r;
        sum_rand += rr;
        if run.region[*a as usize] == run.region[*b as usize] {
            same += 1;
        }
        if *inter {
            gsum += r;
            gsum_rand += rr;
            gn += 1;
        }
    }
    let ne = edges.len().max(1) as f64;
    let joins: Vec<_> = run.joins.iter().flatten().collect();
    let join_ms: Vec<f64> = joins.iter().map(|j| j.elapsed_us as f64 / 1000.0).collect();
    let probes: Vec<f64> = joins.iter().map(|j| j.probes as f64).collect();
    let tested: Vec<f64> = joins.iter().map(|j| j.groups_tested as f64).collect();
    let crashes = run
        .crashes
        .iter()
        .map(|c| {
            let new_leader = run
                .takeovers
                .get(&c.group)
                .and_then(|v| v.iter().find(|(t, _, _)| *t > c.at_us))
                .map(|(t, _, _)| (*t - c.at_us) as f64 / 1e6);
            let mut views = BTreeSet::new();
            let mut elsewhere = 0;
            let mut leader_links = 0;
            for s in &c.survivors {
                if !run.alive[*s as usize] {
                    continue;
                }
                match run.nodes[*s as usize].group() {
                    Some(g) if g.id == c.group => {
                        views.insert(g.leader);
                        if g.leader.0 == *s {
                            leader_links = run.nodes[*s as usize].inter().links.len();
                        }
                    }
                    _ => elsewhere += 1,
                }
            }
            CrashOutcome {
                leaderless: c.leaderless,
                crashed: c.crashed.len(),
                survivors: c.survivors.len(),
                new_leader_after_s: new_leader,
                views_at_end: views.len(),
                survivors_elsewhere: elsewhere,
                links_before: c.links_before,
                links_after: leader_links,
            }
        })
        .collect();
    let (mut answered, mut dropped) = (0, 0);
    for node in &run.nodes {
        let s = node.stats();
        answered += s.measure_answered;
        dropped += s.measure_dropped;
    }
    LocalityMetrics {
        scenario: run.sc.name.clone(),
        seed: run.sc.seed,
        nodes: live.len(),
        regions: run.sc.regions.len(),
        joined: live
            .iter()
            .filter(|i| run.nodes[**i as usize].group().is_some())
            .count(),
        groups: sizes.len(),
        group_size: Spread::of(&size_v),
        adjusted_rand_index: ari,
        overlay_rtt_ms: sum / ne,
        random_overlay_rtt_ms: sum_rand / ne,
        overlay_rtt_ratio: if sum_rand > 0.0 { sum / sum_rand } else { 1.0 },
        group_link_rtt_ms: gsum / gn.max(1) as f64,
        group_link_random_rtt_ms: gsum_rand / gn.max(1) as f64,
        overlay_edges_same_region: same as f64 / ne,
        join_ms: Spread::of(&join_ms),
        join_probes: Spread::of(&probes),
        join_groups_tested: Spread::of(&tested),
        founders: joins.iter().filter(|j| j.founded).count(),
        merges: run.merges,
        crashes,
        measure_answered: answered,
        measure_dropped: dropped,
        flood_sent: run.flood_sent,
        messages: run.messages.values().map(|v| v.0).sum(),
        message_bytes: run.messages.values().map(|v| v.1).sum(),
        messages_by_kind: run
            .messages
            .iter()
            .map(|(k, v)| (k.to_string(), v.0))
            .collect(),
        dropped_in_network: run.dropped,
        events: run.events,
    }
}

/// metrics.json and nodes.csv (node, region, group, leader, is_leader).
pub fn write(run: &LocalityRun, m: &LocalityMetrics, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let json = serde_json::to_string_pretty(m).expect("metrics serialize");
    std::fs::write(dir.join("metrics.json"), json + "\n")?;
    let mut f = std::io::BufWriter::new(std::fs::File::create(dir.join("nodes.csv"))?);
    writeln!(f, "node,region,alive,group,leader,is_leader")?;
    for (i, node) in run.nodes.iter().enumerate() {
        if i as u32 == RENDEZVOUS {
            continue;
        }
        let region = run.net.regions().name(run.region[i]);
        let (g, l) = node.group().map_or((String::new(), String::new()), |g| {
            (format!("{:016x}", g.id.0), g.leader.0.to_string())
        });
        writeln!(
            f,
            "{i},{region},{},{g},{l},{}",
            run.alive[i] as u8,
            node.is_leader() as u8
        )?;
    }
    Ok(())
}
