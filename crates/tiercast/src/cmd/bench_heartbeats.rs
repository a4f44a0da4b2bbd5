//! `tiercast bench heartbeats`: the coordinator's heartbeat capacity (issue 12,
//! X7/D8): a sans-IO `Coordinator` populated with N nodes that registered and
//! joined their channel's peer overlay as real peers do, then every node's
//! heartbeat once per interval, decoded from its wire bytes and handled, the
//! thread's CPU time measured. Prints heartbeats per CPU-second (per core), the
//! share of decoding, the ratio to issue 12's target (10⁶ nodes at one per 5 s:
//! 200 000/s on one core) and resident memory per node; figures, never assertions.
//!
//! - [`population`] — who the nodes are; registering and joining them.
//! - [`links`] — the nodes' own books of their links, and their heartbeats.
//! - [`measure`] — the measured heartbeat phase.
//! - [`meter`] — thread CPU time and resident memory.

mod links;
mod measure;
mod meter;
mod population;
#[cfg(test)]
mod tests;

use anyhow::{bail, Result};
use clap::Args as ClapArgs;
use meter::{mib, rss_bytes, thread_cpu_ns};
use population::Plan;
use tiercast_coordinator::Coordinator;
use tiercast_proto::Timestamp;

/// Issue 12's target: 10⁶ nodes, one heartbeat every 5 s each, on one core.
pub const TARGET_PER_SECOND: f64 = 200_000.0;

#[derive(ClapArgs, Debug, Clone)]
pub struct Args {
    /// Nodes in all: one origin, the relays, the rest peers.
    #[arg(long)]
    pub nodes: u64,
    /// Each node's heartbeat interval (the coordinator's too).
    #[arg(long, default_value_t = 5000)]
    pub interval_ms: u64,
    /// Virtual seconds measured (after the warm-up).
    #[arg(long, default_value_t = 30)]
    pub seconds: u64,
    /// Virtual seconds of heartbeats before measuring (at least one interval):
    /// the overlay settles after the set-up's flash crowd (its top level is
    /// reviewed after 10 s, a full recomputation may follow).
    #[arg(long, default_value_t = 30)]
    pub warmup_seconds: u64,
    /// Peers per channel: the peers fill channels of this many, one overlay each.
    #[arg(long, default_value_t = 100_000)]
    pub peers_per_channel: u64,
    /// Tier-1 relays (the overlays' waypoints).
    #[arg(long, default_value_t = 8)]
    pub relays: u64,
}

/// The figures of one run.
#[derive(Clone, Debug)]
pub struct Report {
    pub plan: Plan,
    pub setup_cpu_s: f64,
    pub setup_wall_s: f64,
    pub rss_before: Option<u64>,
    pub rss_populated: Option<u64>,
    pub rss_books: Option<u64>,
    pub rss_after: Option<u64>,
    pub members: u64,
    pub links: usize,
    pub warmup: measure::Phase,
    pub measured: measure::Phase,
    pub invalid_messages: u64,
    pub heartbeats_accepted: u64,
    pub parent_sets: u64,
    pub other_messages: std::collections::BTreeMap<&'static str, u64>,
    pub outbox_left: usize,
    pub overlay_work: OverlayWork,
}

impl Args {
    /// The plan, or why these arguments make none.
    pub fn plan(&self) -> Result<Plan> {
        if !(1..=64).contains(&self.relays) {
            bail!("--relays must be 1..=64, got {}", self.relays);
        }
        if self.nodes < self.relays + 2 || self.nodes > 4_000_000 {
            bail!(
                "--nodes must be {}..=4000000 (an origin, the relays and a peer at least), got {}",
                self.relays + 2,
                self.nodes
            );
        }
        if !(100..=600_000).contains(&self.interval_ms) {
            bail!(
                "--interval-ms must be 100..=600000, got {}",
                self.interval_ms
            );
        }
        if !(1..=3_600).contains(&self.seconds) {
            bail!("--seconds must be 1..=3600, got {}", self.seconds);
        }
        if self.warmup_seconds > 3_600 {
            bail!(
                "--warmup-seconds must be 0..=3600, got {}",
                self.warmup_seconds
            );
        }
        if self.peers_per_channel == 0 || self.peers_per_channel > u64::from(u32::MAX) {
            bail!(
                "--peers-per-channel must be >= 1, got {}",
                self.peers_per_channel
            );
        }
        let plan = Plan {
            nodes: self.nodes as u32,
            relays: self.relays as u32,
            peers_per_channel: self.peers_per_channel as u32,
        };
        if plan.channels() > 1_000 {
            bail!(
                "{} channels of {} peers: at most 1000 channels (raise --peers-per-channel)",
                plan.channels(),
                self.peers_per_channel
            );
        }
        Ok(plan)
    }

    /// Measured intervals: `seconds` rounded up to whole intervals.
    pub fn rounds(&self) -> u64 {
        (self.seconds * 1000).div_ceil(self.interval_ms).max(1)
    }

    /// Warm-up intervals: `warmup_seconds` rounded up, at least one.
    pub fn warmup_rounds(&self) -> u64 {
        (self.warmup_seconds * 1000)
            .div_ceil(self.interval_ms)
            .max(1)
    }
}

/// Populates, warms up one interval, measures; `say` gets the progress lines.
pub fn bench(a: &Args, mut say: impl FnMut(String)) -> Result<Report> {
    let plan = a.plan()?;
    let cfg = population::config(&plan, a.interval_ms).map_err(anyhow::Error::msg)?;
    let interval_us = a.interval_ms * 1000;
    let rss_before = rss_bytes();
    let (cpu0, wall0) = (thread_cpu_ns(), std::time::Instant::now());
    let mut co = Coordinator::new(cfg, Timestamp::ZERO);
    say(format!(
        "populating: {} nodes ({} relays, {} peers in {} channels) ...",
        plan.nodes,
        plan.relays,
        plan.peers(),
        plan.channels()
    ));
    let setup_start = std::time::Instant::now();
    let span_us = interval_us.min(1_000_000);
    let mut undelivered = 0u64;
    let t0 = population::populate(
        &mut co,
        &plan,
        span_us,
        |out| {
            // The set-up's parent sets are read from the overlays afterwards.
            undelivered += out.transmits.len() as u64;
            out.transmits.clear();
        },
        |pct| {
            say(format!(
                "  {pct:>3} % joined ({:.1} s)",
                setup_start.elapsed().as_secs_f64()
            ))
        },
    );
    let setup_cpu_s = (thread_cpu_ns() - cpu0) as f64 / 1e9;
    let setup_wall_s = wall0.elapsed().as_secs_f64();
    let rss_populated = rss_bytes();
    let mut books = links::Books::from_overlays(&co, &plan);
    let rss_books = rss_bytes();
    let members: u64 = co.peer_overlays().map(|o| o.members.len() as u64).sum();
    let links = books.links();
    say(format!(
        "set up in {setup_cpu_s:.1} CPU-s ({setup_wall_s:.1} s wall, {undelivered} messages to nodes); \
         {members} overlay memberships, {links} link ends; warming up {} intervals ...",
        a.warmup_rounds()
    ));
    let order = measure::spread_order(&plan);
    let warmup_rounds = a.warmup_rounds();
    let (warmup, t1) = measure::run(
        &mut co,
        &mut books,
        &order,
        t0,
        interval_us,
        warmup_rounds,
        0,
    );
    let overlay_before = overlay_stats(&co);
    let accepted_before = co.stats().heartbeats;
    let rounds = a.rounds();
    say(format!(
        "measuring {rounds} intervals ({} heartbeats) ...",
        rounds * u64::from(plan.nodes)
    ));
    let start = Timestamp(t1.0 + interval_us / u64::from(plan.nodes));
    let (measured, _) = measure::run(
        &mut co,
        &mut books,
        &order,
        start,
        interval_us,
        rounds,
        warmup_rounds,
    );
    let overlay_after = overlay_stats(&co);
    let outbox_left = std::iter::from_fn(|| co.poll_transmit()).count();
    Ok(Report {
        plan,
        setup_cpu_s,
        setup_wall_s,
        rss_before,
        rss_populated,
        rss_books,
        rss_after: rss_bytes(),
        members,
        links,
        warmup,
        measured,
        invalid_messages: co.stats().invalid_messages,
        heartbeats_accepted: co.stats().heartbeats - accepted_before,
        parent_sets: books.parent_sets,
        other_messages: books.other_messages.clone(),
        outbox_left,
        overlay_work: overlay_after.minus(&overlay_before),
    })
}

/// The overlays' own work, summed over channels: what a heartbeat phase may
/// set off besides reading the heartbeats (C7's recomputations, D1's reviews).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OverlayWork {
    pub full_recomputations: u64,
    pub partial_recomputations: u64,
    pub reassignments: u64,
    pub congested_links: u64,
    pub assignments_sent: u64,
}

impl OverlayWork {
    fn minus(&self, o: &OverlayWork) -> OverlayWork {
        OverlayWork {
            full_recomputations: self.full_recomputations - o.full_recomputations,
            partial_recomputations: self.partial_recomputations - o.partial_recomputations,
            reassignments: self.reassignments - o.reassignments,
            congested_links: self.congested_links - o.congested_links,
            assignments_sent: self.assignments_sent - o.assignments_sent,
        }
    }
}

fn overlay_stats(co: &Coordinator) -> OverlayWork {
    co.peer_overlays()
        .fold(OverlayWork::default(), |w, o| OverlayWork {
            full_recomputations: w.full_recomputations + o.stats.full_recomputations,
            partial_recomputations: w.partial_recomputations + o.stats.partial_recomputations,
            reassignments: w.reassignments + o.stats.reassignments,
            congested_links: w.congested_links + o.stats.congested_links,
            assignments_sent: w.assignments_sent + o.stats.assignments_sent,
        })
}

pub fn run(a: Args) -> Result<()> {
    let r = bench(&a, |line| eprintln!("{line}"))?;
    print(&a, &r);
    Ok(())
}

fn print(a: &Args, r: &Report) {
    let m = &r.measured;
    let n = f64::from(r.plan.nodes);
    let per_s = m.per_cpu_second();
    let needed = n / (a.interval_ms as f64 / 1000.0);
    let per_node = |x: Option<u64>, y: Option<u64>| match (x, y) {
        (Some(x), Some(y)) => format!("{:.0} B", x.saturating_sub(y) as f64 / n),
        _ => "n/a".into(),
    };
    let show = |x: Option<u64>| x.map_or("n/a".to_string(), |b| format!("{:.0} MiB", mib(b)));
    println!(
        "nodes {} (1 origin, {} relays, {} peers, {} channels), interval {} ms",
        r.plan.nodes,
        r.plan.relays,
        r.plan.peers(),
        r.plan.channels(),
        a.interval_ms
    );
    println!(
        "set-up: {:.1} CPU-s ({:.1} s wall); {} memberships, {} link ends",
        r.setup_cpu_s, r.setup_wall_s, r.members, r.links
    );
    println!(
        "warm-up: {} heartbeats at {:.0}/CPU-s ({:.1} CPU-s)",
        r.warmup.heartbeats,
        r.warmup.per_cpu_second(),
        r.warmup.cpu_ns() as f64 / 1e9
    );
    let w = &r.overlay_work;
    println!(
        "overlay work while measured: {} full and {} partial recomputations, {} reassignments, {} congested links, {} parent sets",
        w.full_recomputations, w.partial_recomputations, w.reassignments, w.congested_links, w.assignments_sent
    );
    println!(
        "measured: {} heartbeats ({:.1} MB on the wire, {:.0} B each) in {:.2} CPU-s ({:.2} s wall with the nodes' encoding)",
        m.heartbeats,
        m.bytes as f64 / 1e6,
        m.bytes as f64 / m.heartbeats.max(1) as f64,
        m.cpu_ns() as f64 / 1e9,
        m.wall_ns as f64 / 1e9
    );
    println!(
        "heartbeats per CPU-second (one core): {per_s:.0}  (decode {:.0} %, handling {:.0} %, of which the {} ticks {:.0} %; {:.2} µs each)",
        100.0 * m.decode_cpu_ns as f64 / m.cpu_ns().max(1) as f64,
        100.0 * m.handle_cpu_ns as f64 / m.cpu_ns().max(1) as f64,
        m.ticks,
        100.0 * m.tick_cpu_ns as f64 / m.cpu_ns().max(1) as f64,
        m.cpu_ns() as f64 / 1e3 / m.heartbeats.max(1) as f64
    );
    // The heartbeats alone: the ticks' CPU (periodic work, a recomputation of
    // the overlays among it) taken out; decoding stays in.
    let alone_ns = m.cpu_ns().saturating_sub(m.tick_cpu_ns);
    let alone_per_s = m.heartbeats as f64 / (alone_ns.max(1) as f64 / 1e9);
    println!(
        "heartbeats alone (the ticks' CPU taken out): {alone_per_s:.0}/CPU-s ({:.2} µs each), ratio {:.2}",
        alone_ns as f64 / 1e3 / m.heartbeats.max(1) as f64,
        alone_per_s / TARGET_PER_SECOND
    );
    println!(
        "this population needs {needed:.0}/s: {:.0} % of a core; target {TARGET_PER_SECOND:.0}/s: ratio {:.2}",
        100.0 * needed / per_s,
        per_s / TARGET_PER_SECOND
    );
    println!(
        "resident: before {}, populated {}, with the bench's books {}, after {}",
        show(r.rss_before),
        show(r.rss_populated),
        show(r.rss_books),
        show(r.rss_after)
    );
    println!(
        "huge pages (transparent): {} resident at the end{}",
        show(crate::huge_pages::resident_in_huge_pages()),
        match std::env::var("GLIBC_TUNABLES") {
            Ok(t) => format!(" (GLIBC_TUNABLES={t})"),
            Err(_) => " (not asked for)".to_string(),
        }
    );
    let steady = match (r.rss_before, r.rss_populated, r.rss_books, r.rss_after) {
        (Some(b), Some(p), Some(k), Some(e)) => Some(b + p.saturating_sub(b) + e.saturating_sub(k)),
        _ => None,
    };
    println!(
        "per node: coordinator populated {}, coordinator after heartbeats {} (bench's books {} excluded)",
        per_node(r.rss_populated, r.rss_before),
        per_node(steady, r.rss_before),
        per_node(r.rss_books, r.rss_populated)
    );
    println!(
        "checks: {} accepted of {} sent, {} invalid, {} decode errors, {} ticks, {} parent sets applied in all, other messages to nodes {:?}, {} left in the outbox",
        r.heartbeats_accepted, m.heartbeats, r.invalid_messages, m.decode_errors, m.ticks, r.parent_sets, r.other_messages, r.outbox_left
    );
    println!(
        "{}",
        serde_json::json!({
            "bench": "heartbeats", "nodes": r.plan.nodes, "relays": r.plan.relays,
            "channels": r.plan.channels(), "interval_ms": a.interval_ms,
            "heartbeats": m.heartbeats, "cpu_s": m.cpu_ns() as f64 / 1e9,
            "per_cpu_second": per_s.round(), "decode_share": m.decode_cpu_ns as f64 / m.cpu_ns().max(1) as f64,
            "tick_share": m.tick_cpu_ns as f64 / m.cpu_ns().max(1) as f64,
            "alone_per_cpu_second": alone_per_s.round(),
            "target_ratio": per_s / TARGET_PER_SECOND,
            "setup_cpu_s": r.setup_cpu_s, "rss_before": r.rss_before, "rss_populated": r.rss_populated,
            "rss_books": r.rss_books, "rss_after": r.rss_after, "invalid": r.invalid_messages,
            "huge_pages_bytes": crate::huge_pages::resident_in_huge_pages(),
        })
    );
}
