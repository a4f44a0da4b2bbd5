//! The simulator and the tokio driver run the same core (issue 13, Must show 2):
//! the same playout stage and the same uplink pacer, not copies of them.
//!
//! - Types: the tokio driver's peer playout config and reported counters are the
//!   core's (`tiercast_node::PlayoutConfig`, `PlayoutStats`), its blocks
//!   (`tiercast_net::http::LiveBlock`) are a `tiercast_node::PlayoutBlock`, and its
//!   uplink counters are the core pacer's (`tiercast_node::uplink::UplinkStats`,
//!   read off the `tiercast_node::Node` both drivers run: the pacer lives in it).
//! - Source: neither driver defines a playout stage or a pacer of its own.
//! - Behaviour: every simulated peer viewer's stage, fed the blocks its node
//!   stored, played exactly what `tiercast_node::Playout<LiveBlock>` — the tokio
//!   driver's instance — plays when fed the same arrivals the way that driver
//!   feeds it (push on store, wake at `poll_timeout`): the same seqs at the same
//!   times, the same counters (end-to-end lag among them); and the simulator's
//!   metrics are those plays, its lag percentiles the stages' lag.
//!
//! That a simulated node rejects a forged block, as a real one does, is
//! `tests/signatures.rs` (`blocks_altered_by_a_relay_are_rejected_and_never_reach_a_viewer`).

mod support;

use std::path::Path;
use tiercast_net::http::LiveBlock;
use tiercast_node::{Playout, PlayoutConfig, PlayoutStats};
use tiercast_proto::Timestamp;
use tiercast_sim::{PlayoutTrace, RunOptions, Simulation};

#[test]
fn both_drivers_name_the_cores_types() {
    fn config_of(rt: &tiercast_net::node_driver::NodeRuntime) -> Option<PlayoutConfig> {
        rt.playout.clone()
    }
    fn stats_of(c: &tiercast_net::node_driver::ChannelSnapshot) -> Option<PlayoutStats> {
        c.playout.clone()
    }
    fn uplink_of(
        n: &tiercast_net::node_driver::NodeSnapshot,
    ) -> Option<tiercast_node::uplink::UplinkStats> {
        n.uplink
    }
    fn sim_node(s: &Simulation, id: tiercast_proto::NodeId) -> Option<&tiercast_node::Node> {
        s.node(id)
    }
    fn pacer_of(n: &tiercast_node::Node) -> Option<tiercast_node::uplink::UplinkStats> {
        n.uplink_stats()
    }
    fn stage_of_driver(cfg: PlayoutConfig) -> Playout<LiveBlock> {
        Playout::new(cfg)
    }
    fn stage_of_sim(cfg: PlayoutConfig) -> Playout<tiercast_sim::SimBlock> {
        Playout::new(cfg)
    }
    // Compiling is the check; calling them keeps them from being dead code.
    let _ = (config_of, stats_of, uplink_of, sim_node, pacer_of);
    let (a, b) = (
        stage_of_driver(PlayoutConfig::default()),
        stage_of_sim(PlayoutConfig::default()),
    );
    assert_eq!(a.stats(), b.stats());
}

/// Lines of `crates/<dir>` sources that define a playout stage or an uplink pacer.
fn definitions_in(dir: &str) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(dir);
    let mut found = Vec::new();
    let mut stack = vec![root];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("source dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if p.extension().is_none_or(|x| x != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&p).expect("source");
            for (i, line) in text.lines().enumerate() {
                let l = line.trim_start();
                let defines = ["struct ", "enum ", "trait ", "type "].iter().any(|k| {
                    ["pub ", "pub(crate) ", ""].iter().any(|v| {
                        let head = format!("{v}{k}");
                        l.strip_prefix(&head).is_some_and(|rest| {
                            rest.starts_with("Playout ")
                                || rest.starts_with("Playout<")
                                || rest.starts_with("UplinkPacer")
                                || rest.starts_with("TokenBucket")
                        })
                    })
                });
                if defines {
                    found.push(format!("{}:{}: {line}", p.display(), i + 1));
                }
            }
        }
    }
    found
}

#[test]
fn neither_driver_has_a_copy_of_the_stage_or_the_pacer() {
    assert!(
        !definitions_in("node/src").is_empty(),
        "the scan finds the core's own definitions"
    );
    assert_eq!(definitions_in("net/src"), Vec::<String>::new());
    assert_eq!(definitions_in("sim/src"), Vec::<String>::new());
}

/// Feeds a trace's arrivals to the tokio driver's stage as that driver does:
/// it wakes at `poll_timeout` (before a later block), pushes each stored block,
/// and drains after each; at the end it wakes until the books closed.
fn replay_as_the_tokio_driver(tr: &PlayoutTrace) -> (Vec<(u64, u64)>, PlayoutStats) {
    let mut p: Playout<LiveBlock> = Playout::new(tr.cfg.clone());
    let mut played = Vec::new();
    let drain = |p: &mut Playout<LiveBlock>, at: u64, played: &mut Vec<(u64, u64)>| {
        while let Some(b) = p.poll_output() {
            played.push((at, b.seq));
        }
    };
    let wake_until = |p: &mut Playout<LiveBlock>, t: u64, played: &mut Vec<(u64, u64)>| {
        while let Some(due) = p.poll_timeout().filter(|d| d.0 <= t) {
            p.handle_timeout(due);
            drain(p, due.0, played);
        }
    };
    for (at, b) in &tr.pushed {
        wake_until(&mut p, *at, &mut played);
        p.push(
            Timestamp(*at),
            LiveBlock {
                seq: b.seq,
                keyframe: b.keyframe,
                origin_time_us: b.origin_time_us,
                payload: bytes::Bytes::new(),
            },
        );
        drain(&mut p, *at, &mut played);
    }
    wake_until(&mut p, tr.closed_at, &mut played);
    (played, p.stats().clone())
}

#[test]
fn every_simulated_peers_stage_plays_what_the_tokio_drivers_stage_plays() {
    let sc = support::edited("robust/loss-churn.toml", |t| t);
    assert!(sc.runs_playout(), "a peers scenario in blocks mode");
    let deadline_us = sc.playout_deadline_ms * 1000;
    let report = Simulation::new(
        sc,
        RunOptions {
            playout_trace: true,
            ..RunOptions::default()
        },
    )
    .expect("simulation")
    .run()
    .expect("run");
    let m = &report.metrics;
    assert!(m.playout_stage);
    let totals = m.playout.clone().expect("playout counters");
    let traces = &report.playout_traces;
    assert_eq!(traces.len() as u64, totals.viewers, "one trace per stage");
    let (mut played, mut late, mut gaps, mut reordered, mut resync) = (0, 0, 0, 0, 0);
    let mut lag = tiercast_node::LagHistogram::default();
    let mut lags_ms = Vec::new();
    for tr in traces {
        let (want, stats) = replay_as_the_tokio_driver(tr);
        assert_eq!(tr.played, want, "viewer {}: the same plays", tr.node);
        assert_eq!(tr.stats, stats, "viewer {}: the same counters", tr.node);
        let origin: std::collections::BTreeMap<u64, u64> = tr
            .pushed
            .iter()
            .map(|(_, b)| (b.seq, b.origin_time_us))
            .collect();
        late += tr
            .played
            .iter()
            .filter(|(at, s)| at - origin[s] > deadline_us)
            .count() as u64;
        lags_ms.extend(tr.played.iter().map(|(at, s)| (at - origin[s]) / 1000));
        lag.merge(&stats.lag);
        played += stats.played;
        gaps += stats.gaps;
        reordered += stats.reordered;
        resync += stats.skipped_resync;
    }
    // The simulator's books are these plays.
    assert_eq!(totals.played_on_time + totals.played_late, played);
    assert_eq!(totals.played_late, late);
    assert_eq!(totals.gaps, gaps);
    // Lag is the stages' own figure (origin time -> played), in the totals and
    // in the report's percentiles (nearest rank over the same plays, 1 ms bins).
    assert_eq!(totals.lag, lag);
    assert_eq!(lag.count(), played);
    lags_ms.sort_unstable();
    let rank = |q: f64| lags_ms[((q * lags_ms.len() as f64).ceil() as usize).max(1) - 1];
    assert_eq!(m.lag_ms_p50, Some(rank(0.50)));
    assert_eq!(m.lag_ms_p95, Some(rank(0.95)));
    // Not a trivial run: blocks came out of order and gaps were given up.
    assert!(played > 100_000, "played {played}");
    assert!(reordered > 0 && gaps > 0 && resync > 0, "{totals:?}");
}
