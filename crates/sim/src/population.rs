//! Viewers coming and going (X5): flash crowds, churn (Poisson arrivals or a steady
//! population whose leavers are replaced) and leave waves. A viewer is a protocol
//! viewer — a real `Node` machine with the Viewer role — that calls `watch` when it
//! arrives and `unwatch` when it leaves; everything in between is the machines'.
//! Each process keeps one pending event; arrival times come from the seeded RNG.

use crate::queue::Ev;
use crate::scenario::{Arrival, Placement, Scenario, Spacing};
use crate::viewer::ViewerStats;
use crate::world::{draw_kbps, pick_region, Role, Simulation};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tiercast_netmodel::Distribution;
use tiercast_node::NodeConfig;
use tiercast_proto::{NodeId, NodeRole, Timestamp};

pub(crate) enum Kind {
    /// Pre-drawn sorted arrival times (flash crowd, churn ramp).
    Times { times: Vec<u64>, next: usize },
    /// Poisson arrivals until `until`.
    Poisson { rate_per_us: f64, until: u64 },
    /// A leave wave.
    Wave {
        fraction: Option<f64>,
        labels: Vec<String>,
        at: u64,
        over: u64,
    },
}

pub(crate) struct Process {
    pub kind: Kind,
    pub place: Placement,
    pub session: Option<Distribution>,
    /// A leaver of this process is replaced until then (steady population).
    pub replace_until: Option<u64>,
    pub start: u64,
    /// Its viewers also watch the second channel (C9; `second.rs`).
    pub both_channels: bool,
    /// Its own uplink distribution, if any.
    pub uplink: Option<Distribution>,
}

#[derive(Default)]
pub(crate) struct Population {
    pub procs: Vec<Process>,
}

fn us(s: f64) -> u64 {
    (s * 1e6).round() as u64
}

fn window_times(
    count: u64,
    start: u64,
    over: u64,
    spacing: Spacing,
    rng: &mut ChaCha8Rng,
) -> Vec<u64> {
    let mut t: Vec<u64> = match spacing {
        Spacing::Even => (0..count)
            .map(|i| start + (over as u128 * i as u128 / count as u128) as u64)
            .collect(),
        Spacing::Random => (0..count)
            .map(|_| start + (rng.gen::<f64>() * over as f64) as u64)
            .collect(),
    };
    t.sort_unstable();
    t
}

impl Population {
    pub fn from_scenario(sc: &Scenario, rng: &mut ChaCha8Rng) -> Self {
        let end = sc.duration_us();
        let mut procs = Vec::new();
        for a in &sc.arrivals {
            let p = match a {
                Arrival::FlashCrowd {
                    count,
                    start_s,
                    over_s,
                    spacing,
                    region,
                    region_weights,
                    session_s,
                    both_channels,
                    uplink_kbps,
                } => Process {
                    kind: Kind::Times {
                        times: window_times(*count, us(*start_s), us(*over_s), *spacing, rng),
                        next: 0,
                    },
                    place: Placement {
                        region: region.clone(),
                        region_weights: region_weights.clone(),
                    },
                    session: session_s.clone(),
                    replace_until: None,
                    start: us(*start_s),
                    both_channels: *both_channels,
                    uplink: uplink_kbps.clone(),
                },
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
                    let until = until_s.map(us).unwrap_or(end);
                    let kind = match (rate_per_s, population) {
                        (Some(r), _) => Kind::Poisson {
                            rate_per_us: r / 1e6,
                            until,
                        },
                        (None, Some(n)) => Kind::Times {
                            times: window_times(
                                *n,
                                us(*start_s),
                                us(*ramp_s),
                                Spacing::Random,
                                rng,
                            ),
                            next: 0,
                        },
                        (None, None) => unreachable!("validated: rate_per_s or population"),
                    };
                    Process {
                        replace_until: population.map(|_| until),
                        kind,
                        place: Placement {
                            region: region.clone(),
                            region_weights: region_weights.clone(),
                        },
                        session: Some(session_s.clone()),
                        start: us(*start_s),
                        both_channels: false,
                        uplink: None,
                    }
                }
                Arrival::LeaveWave {
                    fraction,
                    labels,
                    at_s,
                    over_s,
                } => Process {
                    kind: Kind::Wave {
                        fraction: *fraction,
                        labels: labels.clone().unwrap_or_default(),
                        at: us(*at_s),
                        over: us(*over_s),
                    },
                    place: Placement::default(),
                    session: None,
                    replace_until: None,
                    start: us(*at_s),
                    both_channels: false,
                    uplink: None,
                },
            };
            procs.push(p);
        }
        Population { procs }
    }

    /// The first event of every process.
    pub fn initial_events(&self, rng: &mut ChaCha8Rng) -> Vec<(u64, Ev)> {
        let mut out = Vec::new();
        for (i, p) in self.procs.iter().enumerate() {
            let i = i as u16;
            match &p.kind {
                Kind::Times { times, .. } => {
                    if let Some(t) = times.first() {
                        out.push((*t, Ev::Arrival(i)));
                    }
                }
                Kind::Poisson { rate_per_us, until } => {
                    let t = p.start + exp_gap(*rate_per_us, rng);
                    if t < *until {
                        out.push((t, Ev::Arrival(i)));
                    }
                }
                Kind::Wave { at, .. } => out.push((*at, Ev::LeaveWave(i))),
            }
        }
        out
    }
}

fn exp_gap(rate_per_us: f64, rng: &mut ChaCha8Rng) -> u64 {
    let u: f64 = 1.0 - rng.gen::<f64>();
    ((-u.ln() / rate_per_us).round() as u64).max(1)
}

impl Simulation {
    /// The next viewer of process `p` arrives; the process schedules its next one.
    pub(crate) fn arrival(&mut self, p: u16) {
        self.spawn_viewer(p);
        let now = self.now;
        let proc = &mut self.population.procs[p as usize];
        let next = match &mut proc.kind {
            Kind::Times { times, next } => {
                *next += 1;
                times.get(*next).copied()
            }
            Kind::Poisson { rate_per_us, until } => {
                let t = now + exp_gap(*rate_per_us, &mut self.rng_arrivals);
                (t < *until).then_some(t)
            }
            Kind::Wave { .. } => None,
        };
        if let Some(t) = next {
            self.queue.push(t, Ev::Arrival(p));
        }
    }

    /// A protocol viewer arrives: a Viewer node that registers and watches the channel.
    pub(crate) fn spawn_viewer(&mut self, p: u16) -> u32 {
        let id = self.slots.len() as u32;
        let place = self.population.procs[p as usize].place.clone();
        let region = pick_region(&place, self.net.regions(), &mut self.rng_caps);
        let own = self.population.procs[p as usize].uplink.as_ref();
        let up_dist = own
            .or_else(|| {
                self.sc
                    .regions
                    .get(usize::from(region))
                    .and_then(|r| r.viewer_uplink_kbps.as_ref())
            })
            .unwrap_or(&self.sc.viewers.uplink_kbps);
        let up = draw_kbps(up_dist, &mut self.rng_caps);
        let down = draw_kbps(&self.sc.viewers.downlink_kbps, &mut self.rng_caps);
        if self.sc.peers_mode() {
            let fraction = self.sc.viewers.premium_fraction;
            let premium = fraction > 0.0 && self.rng_caps.gen::<f64>() < fraction;
            return self.spawn_peer(p, id, region, up, down, premium);
        }
        let cfg = NodeConfig {
            id: NodeId(id),
            role: NodeRole::Viewer,
            tier: u8::MAX,
            region: self.net.regions().name(region).to_string(),
            capacity: 0,
            max_threshold: 0,
            min_threshold: 0,
            heartbeat_interval_ms: self.sc.viewer_heartbeat_ms(),
            send_heartbeats: self.sc.strategy.viewer_heartbeats,
            buffer_blocks: self.sc.viewers.buffer_blocks,
            verify_blocks: self.signing.verifies(),
            verify_memo: self.signing.memo(),
            watch_retry_ms: self.sc.strategy.watch_retry_ms,
            // Blocks never pause here, so a silent relay is a dead one; rate mode
            // carries no blocks, which must not read as silence.
            viewer_silence_ms: match self.sc.data_plane {
                crate::scenario::DataPlane::Blocks => 2000,
                crate::scenario::DataPlane::Rate => 0,
            },
            ..NodeConfig::default()
        };
        self.start_watching(p, id, cfg, region, up, down)
    }

    /// A peer arrives (D2): a Peer node that declares its uplink and watches; the
    /// coordinator places it in the overlay.
    fn spawn_peer(
        &mut self,
        p: u16,
        id: u32,
        region: tiercast_netmodel::RegionId,
        up: u32,
        down: u32,
        premium: bool,
    ) -> u32 {
        let cfg = NodeConfig {
            id: NodeId(id),
            role: NodeRole::Peer,
            premium,
            tier: u8::MAX,
            region: self.net.regions().name(region).to_string(),
            addr: peer_addr(self.sc.viewers.networks_per_region, region, id),
            capacity: self.sc.peers.capacity,
            max_threshold: 0,
            min_threshold: 0,
            heartbeat_interval_ms: self.sc.peer_heartbeat_ms(),
            send_heartbeats: true,
            // Rate mode carries no blocks: a buffer would only cost memory.
            buffer_blocks: match self.sc.data_plane {
                crate::scenario::DataPlane::Blocks => self.sc.peers.buffer_blocks,
                crate::scenario::DataPlane::Rate => 8,
            },
            verify_blocks: self.signing.verifies(),
            verify_memo: self.signing.memo(),
            watch_retry_ms: self.sc.strategy.watch_retry_ms,
            uplink_kbps: up.max(1),
            uplink_max_wait_ms: self
                .sc
                .peers
                .uplink_max_wait_ms
                .unwrap_or(NodeConfig::default().uplink_max_wait_ms),
            parent_silence_ms: self.sc.strategy.parent_silence_ms.unwrap_or(2000),
            ..NodeConfig::default()
        };
        self.metrics.peer_uplink_kbps_live += f64::from(up);
        let id = self.start_watching(p, id, cfg, region, up, down);
        if let Some(v) = self.viewers.last_mut() {
            v.premium = premium;
        }
        id
    }

    fn start_watching(
        &mut self,
        p: u16,
        id: u32,
        cfg: NodeConfig,
        region: tiercast_netmodel::RegionId,
        up: u32,
        down: u32,
    ) -> u32 {
        self.viewers.push(ViewerStats::new(self.now, p));
        self.metrics.watching += 1;
        self.metrics.viewers_arrived += 1;
        self.ledger.arrived[region as usize] += 1;
        self.add_machine(id, cfg, Role::Viewer, p, region, up, down);
        let name = self.sc.stream.channel.clone();
        if let Some(n) = self.slots[id as usize].node.as_mut() {
            n.watch(Timestamp(self.now), &name);
        }
        self.drain_node(id);
        if self.population.procs[p as usize].both_channels {
            self.watch_second(id);
        }
        if let Some(d) = self.population.procs[p as usize].session.clone() {
            let len = (d.sample(&mut self.rng_arrivals) * 1e6).round().max(1.0) as u64;
            self.queue.push(self.now + len, Ev::Leave(id));
        }
        id
    }

    /// A viewer leaves: `unwatch` (LOGOFF to its relay), then the machine is gone.
    pub(crate) fn viewer_leave(&mut self, id: u32) {
        let vi = (id - self.first_viewer) as usize;
        if !self.viewers[vi].watching() {
            return;
        }
        let Some(mut node) = self.slots[id as usize].node.take() else {
            return;
        };
        let name = self.sc.stream.channel.clone();
        node.unwatch(Timestamp(self.now), &name);
        self.unwatch_second(id, &mut node);
        self.drain_boxed(id, &mut node);
        drop(node);
        self.cancel_timer(id);
        self.net.set_alive(id, false);
        self.finalize_viewer(vi, self.now);
        let p = self.viewers[vi].process;
        if self.population.procs[p as usize]
            .replace_until
            .is_some_and(|u| self.now < u)
        {
            self.spawn_viewer(p);
        }
    }

    /// Closes a viewer's books at `t` (it left, crashed, or the run ended).
    pub(crate) fn finalize_viewer(&mut self, vi: usize, t: u64) {
        if !self.viewers[vi].watching() {
            return;
        }
        if self.sc.peers_mode() {
            let id = self.first_viewer + vi as u32;
            self.metrics.peer_uplink_kbps_live -= f64::from(self.net.uplink_kbps(id));
        }
        self.viewers[vi].end_at = t;
        self.metrics.watching -= 1;
        let (e0, d0) = (self.metrics.expected, self.metrics.delivered);
        self.metrics.viewer_seconds += (t - self.viewers[vi].watch_at) as f64 / 1e6;
        if self.sc.data_plane == crate::scenario::DataPlane::Blocks {
            self.finalize_blocks(vi, t);
            self.finalize_second(vi, t);
        }
        if self.viewers[vi].ejected {
            self.metrics.ejected_expected += self.metrics.expected - e0;
            self.metrics.ejected_delivered += self.metrics.delivered - d0;
        }
        if self.viewers[vi].premium {
            self.metrics.premium_expected += self.metrics.expected - e0;
            self.metrics.premium_delivered += self.metrics.delivered - d0;
        }
    }

    /// A leave wave picks its leavers among the viewers watching now.
    pub(crate) fn leave_wave(&mut self, p: u16) {
        let Kind::Wave {
            fraction,
            labels,
            at,
            over,
        } = &self.population.procs[p as usize].kind
        else {
            return;
        };
        let (fraction, labels, at, over) = (*fraction, labels.clone(), *at, *over);
        if let Some(f) = fraction {
            let mut ids: Vec<u32> = (0..self.viewers.len())
                .filter(|i| self.viewers[*i].watching())
                .map(|i| self.first_viewer + i as u32)
                .collect();
            let k = ((ids.len() as f64 * f).round() as usize).min(ids.len());
            for i in 0..k {
                let j = self.rng_arrivals.gen_range(i..ids.len());
                ids.swap(i, j);
                let t = at + (self.rng_arrivals.gen::<f64>() * over as f64) as u64;
                self.queue.push(t, Ev::Leave(ids[i]));
            }
        } else {
            let n = labels.len() as u64;
            for (i, l) in labels.iter().enumerate() {
                match self.node_id(l) {
                    Some(id) if id.0 >= self.first_viewer => {
                        self.queue.push(at + over * i as u64 / n, Ev::Leave(id.0))
                    }
                    _ => self.checker.note(format!(
                        "leave_wave: no viewer labelled {l:?} had arrived by t={:.3}s",
                        self.now as f64 / 1e6
                    )),
                }
            }
        }
    }
}

/// A peer's address behind one of its region's `networks` /24 prefixes (C8),
/// chosen from its id without a draw (other figures stay as they were); empty
/// when the scenario declares no networks.
fn peer_addr(networks: u16, region: tiercast_netmodel::RegionId, id: u32) -> String {
    if networks == 0 {
        return String::new();
    }
    let net = id.wrapping_mul(0x9E37_79B1).rotate_left(7) % u32::from(networks);
    let r = usize::from(region) % 256;
    format!("10.{r}.{net}.{}:9000", id % 251 + 1)
}
