//! Seed 001's walk-throughs through the simulator (X5; V2–V5): Figure 2
//! (expansion) and Figure 4 (consolidation) with latency and heartbeats, on the
//! unchanged machines, compared with crates/coordinator/tests/walkthrough.rs —
//! from the in-memory events and from the events.log / nodes.csv files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tiercast_coordinator::CoordEvent;
use tiercast_proto::{ChannelId, NodeId};
use tiercast_sim::{Report, RunOptions, Scenario, Simulation};

fn scenario(file: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scenarios")
        .join(file);
    Scenario::from_file(&path).expect("shipped scenario is valid")
}

fn out_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tiercast-sim-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn run(file: &str) -> (Simulation, Report, PathBuf) {
    let dir = out_dir(file);
    let mut sim = Simulation::new(
        scenario(file),
        RunOptions {
            out_dir: Some(dir.clone()),
            progress: false,
            keep_events: true,
            playout_trace: false,
        },
    )
    .unwrap();
    let report = sim.run().unwrap();
    assert_eq!(report.metrics.invariant_violations, Vec::<String>::new());
    (sim, report, dir)
}

/// (time, relay activated, its parents), by label.
fn activations(sim: &Simulation, r: &Report) -> Vec<(u64, String, Vec<String>)> {
    r.coord_events
        .iter()
        .filter_map(|(t, e)| match e {
            CoordEvent::Activated { node, parents, .. } => Some((
                *t,
                sim.label(*node),
                parents.iter().map(|p| sim.label(*p)).collect(),
            )),
            _ => None,
        })
        .collect()
}

fn id(sim: &Simulation, label: &str) -> NodeId {
    sim.node_id(label)
        .unwrap_or_else(|| panic!("no node {label}"))
}

fn parents(sim: &Simulation, label: &str) -> Vec<String> {
    let n = sim.node(id(sim, label)).expect("alive");
    n.channel(ChannelId(1))
        .map(|c| c.parents.ids().iter().map(|p| sim.label(*p)).collect())
        .unwrap_or_default()
}

fn children(sim: &Simulation, label: &str) -> Vec<String> {
    let n = sim.node(id(sim, label)).expect("alive");
    n.channel(ChannelId(1))
        .map(|c| c.children.nodes.keys().map(|p| sim.label(*p)).collect())
        .unwrap_or_default()
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn fig2_expand_reproduces_the_seed_sequence() {
    let (sim, report, dir) = run("fig2-expand.toml");
    let acts = activations(&sim, &report);
    // Start-up (V2): one relay per tier, S -> P11 -> P21 -> P31, before any viewer.
    let startup: Vec<_> = acts.iter().filter(|a| a.0 < 1_500_000).collect();
    assert_eq!(
        startup
            .iter()
            .map(|a| (a.1.clone(), a.2.clone()))
            .collect::<Vec<_>>(),
        vec![
            ("P11".into(), strs(&["S"])),
            ("P21".into(), strs(&["P11"])),
            ("P31".into(), strs(&["P21"])),
        ]
    );
    // Viewer i arrives at 1.5 + 2(i-1) s; each activation belongs to the last arrival.
    let by_viewer: BTreeMap<u64, Vec<(String, Vec<String>)>> = acts
        .iter()
        .filter(|a| a.0 >= 1_500_000)
        .fold(BTreeMap::new(), |mut m, a| {
            let viewer = (a.0 - 1_500_000) / 2_000_000 + 1;
            m.entry(viewer)
                .or_default()
                .push((a.1.clone(), a.2.clone()));
            m
        });
    let expected: BTreeMap<u64, Vec<(String, Vec<String>)>> = [
        (3, vec![("P32".to_string(), strs(&["P21"]))]),
        (6, vec![("P33".to_string(), strs(&["P21"]))]),
        (7, vec![("P22".to_string(), strs(&["P11"]))]),
    ]
    .into_iter()
    .collect();
    assert_eq!(by_viewer, expected);
    // Redirection followed the entry relay: u1-u3 at P31, u4-u6 at P32, u7 at P33.
    let homes: Vec<Vec<String>> = (1..=7).map(|i| parents(&sim, &format!("u{i}"))).collect();
    let want: Vec<Vec<String>> = ["P31", "P31", "P31", "P32", "P32", "P32", "P33"]
        .iter()
        .map(|p| strs(&[p]))
        .collect();
    assert_eq!(homes, want);
    assert_eq!(children(&sim, "P21"), strs(&["P31", "P32", "P33"]));
    assert_eq!(
        children(&sim, "P11"),
        strs(&["P21"]),
        "P22 has no children yet"
    );
    assert_eq!(report.metrics.distribute_events, 3);

    // The same sequence from the files: events.log with node ids, nodes.csv for labels.
    let labels: BTreeMap<String, String> = std::fs::read_to_string(dir.join("nodes.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (format!("NodeId({})", f[0]), f[1].to_string())
        })
        .collect();
    let log = std::fs::read_to_string(dir.join("events.log")).unwrap();
    let activated: Vec<String> = log
        .lines()
        .filter(|l| l.split(' ').nth(1) == Some("Activated"))
        .map(|l| {
            let node = l.split("node: ").nth(1).unwrap().split(',').next().unwrap();
            labels[node].clone()
        })
        .collect();
    assert_eq!(activated, strs(&["P11", "P21", "P31", "P32", "P33", "P22"]));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn fig4_consolidate_moves_p31_into_p33() {
    let (sim, report, dir) = run("fig4-consolidate.toml");
    let consolidated: Vec<(String, String)> = report
        .coord_events
        .iter()
        .filter_map(|(_, e)| match e {
            CoordEvent::Consolidated { node, moved_to, .. } => {
                Some((sim.label(*node), sim.label(*moved_to)))
            }
            _ => None,
        })
        .collect();
    assert_eq!(consolidated, vec![("P31".to_string(), "P33".to_string())]);
    // Not before u3 left (u4 leaving P32, 3 -> 2, is not below the min threshold).
    let at = report
        .coord_events
        .iter()
        .find(|(_, e)| matches!(e, CoordEvent::Consolidated { .. }))
        .unwrap()
        .0;
    assert!(at >= 21_000_000, "consolidated at {at} µs, before u3 left");
    assert_eq!(parents(&sim, "u1"), strs(&["P33"]), "u1 moved to P33");
    assert_eq!(children(&sim, "P33"), strs(&["u1", "u7"]));
    assert!(
        sim.node(id(&sim, "P31"))
            .unwrap()
            .channel(ChannelId(1))
            .is_none(),
        "P31 left the channel"
    );
    assert_eq!(children(&sim, "P21"), strs(&["P32", "P33"]));
    assert_eq!(report.metrics.consolidate_events, 1);
    assert!(report.metrics.continuity_index > 0.999);
    let log = std::fs::read_to_string(dir.join("events.log")).unwrap();
    assert_eq!(log.matches(" Consolidated {").count(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}
