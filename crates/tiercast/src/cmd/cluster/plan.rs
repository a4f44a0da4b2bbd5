//! What `tiercast cluster` will run (issue 13; X5's scenarios over real processes):
//! a scenario file turned into a list of processes — the coordinator, the origin,
//! every relay of every class, every viewer or peer with its arrival and leave
//! time, region and uplink — and the faults as timed kills. Drawn from the
//! scenario's own distributions with its seed; the draws are not the simulator's
//! (its RNG interleaves with its events), so the two worlds are compared on
//! figures, not node by node. What the cluster cannot run yet is refused with the
//! reason.

use anyhow::{bail, Result};
use rand::Rng;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use tiercast_netmodel::Distribution;
use tiercast_netmodel::Regions;
use tiercast_sim::scenario::{Arrival, ClassRole, DataPlane, Fault, Placement, ViewerRole};
use tiercast_sim::Scenario;

/// The most processes a plan may hold (this machine has 2 cores).
pub const MAX_PROCESSES: usize = 64;

#[derive(Clone, Debug, PartialEq)]
pub enum Role {
    Coordinator,
    Origin,
    Relay { tier: u8 },
    Viewer,
    Peer,
}

impl Role {
    pub fn name(&self) -> &'static str {
        match self {
            Role::Coordinator => "coordinator",
            Role::Origin => "origin",
            Role::Relay { .. } => "relay",
            Role::Viewer => "viewer",
            Role::Peer => "peer",
        }
    }
}

/// One process of the run.
#[derive(Clone, Debug)]
pub struct PlannedNode {
    /// Index in the plan; also its node id (`index + 1`; the coordinator is 0).
    pub index: usize,
    pub label: String,
    /// Its node class's name (origins and relays; empty for viewers).
    pub class: String,
    pub role: Role,
    /// Index into the scenario's regions.
    pub region: usize,
    /// kbit/s; 0: not capped.
    pub uplink_kbps: u32,
    pub downlink_kbps: u32,
    pub capacity: u32,
    pub max_threshold: Option<u32>,
    pub min_threshold: Option<u32>,
    /// Seconds from the start of the run.
    pub start_s: f64,
    /// It leaves (SIGTERM) then; `None`: stays to the end.
    pub leave_s: Option<f64>,
}

/// Which nodes a timed crash or leave hits, resolved when it fires (some targets —
/// active relays, top-level peers — depend on the overlay at that moment).
#[derive(Clone, Debug)]
pub struct PlannedFault {
    pub at_s: f64,
    /// SIGKILL (a crash) or SIGTERM (a polite leave).
    pub crash: bool,
    pub labels: Option<Vec<String>>,
    pub class: Option<String>,
    pub tier: Option<u8>,
    pub fraction: Option<f64>,
    pub count: Option<u32>,
    pub active: bool,
    pub top_peers: bool,
}

#[derive(Clone, Debug)]
pub struct Plan {
    pub nodes: Vec<PlannedNode>,
    pub faults: Vec<PlannedFault>,
    pub region_names: Vec<String>,
    pub duration_s: f64,
}

impl Plan {
    /// Every process the run will start, the coordinator included.
    pub fn process_count(&self) -> usize {
        self.nodes.len()
    }
}

/// A region for a placement, by the simulator's own rule.
fn pick_region(
    region: &Option<String>,
    weights: &Option<BTreeMap<String, f64>>,
    regions: &Regions,
    rng: &mut ChaCha8Rng,
) -> usize {
    let place = Placement {
        region: region.clone(),
        region_weights: weights.clone(),
    };
    usize::from(tiercast_sim::world::pick_region(&place, regions, rng))
}

fn draw(d: &Distribution, rng: &mut ChaCha8Rng) -> u32 {
    d.sample(rng).round().clamp(0.0, f64::from(u32::MAX)) as u32
}

/// Arrival times of `count` viewers in `[start, start + over]`, sorted.
fn window(count: u64, start: f64, over: f64, rng: &mut ChaCha8Rng) -> Vec<f64> {
    let mut t: Vec<f64> = (0..count)
        .map(|_| start + rng.gen::<f64>() * over)
        .collect();
    t.sort_by(f64::total_cmp);
    t
}

/// Turns a scenario into processes and timed faults, or says what it cannot run.
pub fn plan(sc: &Scenario, seed: u64) -> Result<Plan> {
    if sc.data_plane != DataPlane::Blocks {
        bail!("the cluster runs blocks-mode scenarios only (real processes move real blocks): set data_plane = \"blocks\"");
    }
    if sc.second_stream.is_some() {
        bail!("[second_stream] is not supported by the cluster yet");
    }
    if !sc.policies.is_empty() {
        bail!("[[policies]] steps are not supported by the cluster yet");
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let names: Vec<String> = sc.regions.iter().map(|r| r.name.clone()).collect();
    let regions = sc.build_regions().map_err(|e| anyhow::anyhow!("{e}"))?;
    let coord_region = sc
        .network
        .coordinator_region
        .as_ref()
        .and_then(|r| names.iter().position(|n| n == r))
        .unwrap_or(0);
    let mut nodes = vec![PlannedNode {
        index: 0,
        label: "coordinator".into(),
        class: String::new(),
        role: Role::Coordinator,
        region: coord_region,
        uplink_kbps: 0,
        downlink_kbps: 0,
        capacity: 0,
        max_threshold: None,
        min_threshold: None,
        start_s: 0.0,
        leave_s: None,
    }];
    let labels = sc.class_labels();
    let mut next_label = labels.iter();
    let mut origins = 0;
    for class in &sc.node_classes {
        for _ in 0..class.count {
            let region = pick_region(&class.region, &class.region_weights, &regions, &mut rng);
            let role = match class.role {
                ClassRole::Origin => {
                    origins += 1;
                    Role::Origin
                }
                ClassRole::Relay => Role::Relay { tier: class.tier },
            };
            let label = next_label
                .next()
                .cloned()
                .unwrap_or_else(|| class.name.clone());
            nodes.push(PlannedNode {
                index: nodes.len(),
                label,
                class: class.name.clone(),
                role,
                region,
                uplink_kbps: draw(&class.uplink_kbps, &mut rng),
                downlink_kbps: class
                    .downlink_kbps
                    .as_ref()
                    .map_or(0, |d| draw(d, &mut rng)),
                capacity: class.capacity,
                max_threshold: class.max_threshold,
                min_threshold: class.min_threshold,
                start_s: 0.0,
                leave_s: None,
            });
        }
    }
    if origins != 1 {
        bail!("the cluster runs exactly one origin; the scenario has {origins}");
    }
    let viewer_role = match sc.viewers.role {
        ViewerRole::Viewer => Role::Viewer,
        ViewerRole::Peer => Role::Peer,
    };
    let mut viewers = 0usize;
    let mut push_viewer = |nodes: &mut Vec<PlannedNode>,
                           rng: &mut ChaCha8Rng,
                           region: usize,
                           uplink: &Distribution,
                           start_s: f64,
                           leave_s: Option<f64>| {
        viewers += 1;
        let region_uplink = sc.regions[region].viewer_uplink_kbps.as_ref();
        nodes.push(PlannedNode {
            index: nodes.len(),
            label: format!("{}{viewers}", sc.viewers.label),
            class: String::new(),
            role: viewer_role.clone(),
            region,
            uplink_kbps: draw(region_uplink.unwrap_or(uplink), rng),
            downlink_kbps: draw(&sc.viewers.downlink_kbps, rng),
            capacity: sc.peers.capacity,
            max_threshold: None,
            min_threshold: None,
            start_s,
            leave_s: leave_s.filter(|l| *l < sc.duration_s),
        });
    };
    for a in &sc.arrivals {
        match a {
            Arrival::FlashCrowd {
                count,
                start_s,
                over_s,
                region,
                region_weights,
                session_s,
                both_channels,
                uplink_kbps,
                ..
            } => {
                if *both_channels {
                    bail!("both_channels arrivals are not supported by the cluster yet");
                }
                check_count(*count)?;
                for t in window(*count, *start_s, *over_s, &mut rng) {
                    let r = pick_region(region, region_weights, &regions, &mut rng);
                    let leave = session_s.as_ref().map(|d| t + d.sample(&mut rng).max(0.0));
                    let up = uplink_kbps.as_ref().unwrap_or(&sc.viewers.uplink_kbps);
                    push_viewer(&mut nodes, &mut rng, r, up, t, leave);
                }
            }
            Arrival::Churn {
                rate_per_s,
                population,
                ramp_s,
                session_s,
                start_s,
                until_s,
                region,
                region_weights,
            } => {
                let until = until_s.unwrap_or(sc.duration_s).min(sc.duration_s);
                let mut arrivals: Vec<f64> = Vec::new();
                if let Some(pop) = population {
                    check_count(*pop)?;
                    let mut pending: Vec<f64> = window(*pop, *start_s, *ramp_s, &mut rng);
                    while let Some(t) = pending.pop() {
                        if arrivals.len() > MAX_PROCESSES {
                            break;
                        }
                        let leave = t + session_s.sample(&mut rng).max(0.0);
                        let replaced = leave < until;
                        arrivals.push(t);
                        let r = pick_region(region, region_weights, &regions, &mut rng);
                        let up = sc.viewers.uplink_kbps.clone();
                        push_viewer(&mut nodes, &mut rng, r, &up, t, Some(leave));
                        if replaced {
                            pending.push(leave);
                        }
                    }
                } else if let Some(rate) = rate_per_s {
                    let mut t = *start_s;
                    loop {
                        t += -(1.0 - rng.gen::<f64>()).ln() / rate.max(1e-9);
                        if t >= until || nodes.len() > MAX_PROCESSES {
                            break;
                        }
                        let leave = t + session_s.sample(&mut rng).max(0.0);
                        let r = pick_region(region, region_weights, &regions, &mut rng);
                        let up = sc.viewers.uplink_kbps.clone();
                        push_viewer(&mut nodes, &mut rng, r, &up, t, Some(leave));
                    }
                }
            }
            Arrival::LeaveWave { .. } => {
                bail!("leave_wave arrivals are not supported by the cluster yet");
            }
        }
    }
    if nodes.len() > MAX_PROCESSES {
        bail!(
            "the scenario needs {} or more processes; the cluster runs at most {MAX_PROCESSES} on one machine (use `tiercast sim` for more)",
            nodes.len()
        );
    }
    let mut faults = Vec::new();
    for f in &sc.faults {
        let crash = match f {
            Fault::Crash { .. } => true,
            Fault::Leave { .. } => false,
            other => bail!(
                "fault {:?} is not supported by the cluster yet (crash and leave are)",
                fault_kind(other)
            ),
        };
        let Some(t) = f.target() else {
            bail!("a crash or leave fault without targets");
        };
        faults.push(PlannedFault {
            at_s: f.at_s(),
            crash,
            labels: t.nodes,
            class: t.class,
            tier: t.tier,
            fraction: t.fraction,
            count: t.count,
            active: t.active,
            top_peers: t.top_peers,
        });
    }
    faults.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
    Ok(Plan {
        nodes,
        faults,
        region_names: names,
        duration_s: sc.duration_s,
    })
}

fn check_count(n: u64) -> Result<()> {
    if n as usize > MAX_PROCESSES {
        bail!("{n} viewers: the cluster runs at most {MAX_PROCESSES} processes on one machine (use `tiercast sim` for more)");
    }
    Ok(())
}

fn fault_kind(f: &Fault) -> String {
    let s = format!("{f:?}");
    s.split([' ', '{', '(']).next().unwrap_or("?").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = r#"
name = "t"
seed = 1
duration_s = 30
data_plane = "blocks"
[stream]
rate_kbps = 500
[[regions]]
name = "eu"
[[regions]]
name = "us"
[latency]
matrix_ms = [[5, 40], [40, 5]]
[[node_classes]]
name = "S"
role = "origin"
region = "eu"
capacity = 4
uplink_kbps = { kind = "fixed", value = 10000 }
[[node_classes]]
name = "R"
role = "relay"
tier = 1
count = 3
region_weights = { eu = 1, us = 1 }
capacity = 10
uplink_kbps = { kind = "fixed", value = 100000 }
[[arrivals]]
kind = "flash_crowd"
count = 12
start_s = 2
over_s = 5
region_weights = { eu = 1, us = 1 }
[[faults]]
kind = "crash"
tier = 1
count = 1
at_s = 20
"#;

    #[test]
    fn a_small_scenario_becomes_processes_and_a_timed_fault() {
        let sc = Scenario::from_toml(SMALL).unwrap();
        let p = plan(&sc, 3).unwrap();
        assert_eq!(p.process_count(), 1 + 1 + 3 + 12);
        assert_eq!(p.nodes[0].role, Role::Coordinator);
        assert_eq!(p.nodes[1].role, Role::Origin);
        let viewers: Vec<_> = p.nodes.iter().filter(|n| n.role == Role::Viewer).collect();
        assert!(viewers.iter().all(|v| (2.0..=7.0).contains(&v.start_s)));
        assert!(viewers.windows(2).all(|w| w[0].start_s <= w[1].start_s));
        assert_eq!(p.faults.len(), 1);
        assert!(p.faults[0].crash && p.faults[0].tier == Some(1));
        let again = plan(&sc, 3).unwrap();
        assert_eq!(
            p.nodes.iter().map(|n| n.region).collect::<Vec<_>>(),
            again.nodes.iter().map(|n| n.region).collect::<Vec<_>>(),
            "the same seed gives the same plan"
        );
    }

    #[test]
    fn what_cannot_run_is_refused_with_the_reason() {
        let big = SMALL.replace("count = 12", "count = 500");
        let e = plan(&Scenario::from_toml(&big).unwrap(), 1).unwrap_err();
        assert!(e.to_string().contains("at most"), "{e}");
        let rate = SMALL.replace("data_plane = \"blocks\"", "data_plane = \"rate\"");
        let e = plan(&Scenario::from_toml(&rate).unwrap(), 1).unwrap_err();
        assert!(e.to_string().contains("blocks"), "{e}");
    }
}
