//! The locality runner (issue 14): N unchanged `LocalityNode` machines over
//! the seeded network model (crates/netmodel: regions, latency, jitter, loss)
//! with a discrete-event heap keyed by `(time, seq)`; joins at random times,
//! leader crashes at a set time; every event the machines report is recorded
//! for the figures in [`super::report`]. No decision is made here.

use super::scenario::LocalityScenario;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use tiercast_locality::{GroupId, LocalityEvent, LocalityMsg, LocalityNode, Takeover};
use tiercast_netmodel::{HostSpec, NetModel, RegionId};
use tiercast_proto::{NodeId, Timestamp};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    Deliver(u32),
    Wake(u32),
    Join(u32),
    Crash,
    /// Every flooder sends its next 10 ms of Measure to every leader.
    Flood,
}

/// The flood's tick.
const FLOOD_TICK_US: u64 = 10_000;

/// A node's first join (or founding).
#[derive(Clone, Copy, Debug)]
pub struct JoinRecord {
    pub elapsed_us: u64,
    pub probes: u64,
    pub groups_tested: u32,
    pub founded: bool,
}

/// One injected crash.
#[derive(Clone, Debug)]
pub struct CrashRecord {
    pub group: GroupId,
    /// true: the whole leadership list crashed (an election follows).
    pub leaderless: bool,
    pub at_us: u64,
    pub crashed: Vec<u32>,
    /// Members (by the old leader's list) that stayed up.
    pub survivors: Vec<u32>,
    pub links_before: usize,
}

pub struct LocalityRun {
    pub sc: LocalityScenario,
    pub net: NetModel,
    pub nodes: Vec<LocalityNode>,
    pub alive: Vec<bool>,
    pub region: Vec<RegionId>,
    heap: BinaryHeap<Reverse<(u64, u64, Ev)>>,
    slab: Vec<Option<(u32, u32, LocalityMsg)>>,
    free: Vec<u32>,
    seq: u64,
    armed: Vec<Option<u64>>,
    pub now: u64,
    pub joins: Vec<Option<JoinRecord>>,
    pub crashes: Vec<CrashRecord>,
    /// group → (time, node, how) of every BecameLeader.
    pub takeovers: BTreeMap<GroupId, Vec<(u64, u32, Takeover)>>,
    pub merges: u64,
    pub messages: BTreeMap<&'static str, (u64, u64)>,
    pub dropped: u64,
    pub events: u64,
    /// Jitter and loss of the datagram path (Measure).
    rng: ChaCha8Rng,
    /// Flooders (never join): ids 1..=flooders.
    pub flooder: Vec<bool>,
    pub flood_sent: u64,
    flood_targets: Vec<u32>,
    flood_targets_at: u64,
    flood_nonce: u32,
}

pub const RENDEZVOUS: u32 = 0;

impl LocalityRun {
    pub fn new(sc: LocalityScenario) -> Result<Self, String> {
        let regions = sc.regions()?;
        let cfg = sc.config();
        let mut net = NetModel::new(regions.clone(), sc.seed, 10_000);
        let mut rng = ChaCha8Rng::seed_from_u64(sc.seed ^ 0x6c6f_6361);
        let total_w: f64 = sc.regions.iter().map(|r| r.weight).sum();
        let rv = regions
            .id(&sc.locality.rendezvous_region)
            .ok_or("rendezvous region")?;
        let n = sc.locality.nodes as usize + 1;
        let mut region = Vec::with_capacity(n);
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n as u32 {
            let r = if i == RENDEZVOUS {
                rv
            } else {
                let mut x = rng.gen::<f64>() * total_w;
                let mut pick = 0;
                for (k, spec) in sc.regions.iter().enumerate() {
                    pick = k;
                    if x < spec.weight {
                        break;
                    }
                    x -= spec.weight;
                }
                pick as RegionId
            };
            region.push(r);
            net.add_host(HostSpec {
                region: r,
                uplink_kbps: 0,
                downlink_kbps: 0,
            });
            nodes.push(LocalityNode::new(
                NodeId(i),
                cfg.clone(),
                sc.seed,
                Some(NodeId(RENDEZVOUS)),
                i == RENDEZVOUS,
            ));
        }
        let mut run = LocalityRun {
            net,
            alive: vec![true; n],
            region,
            heap: BinaryHeap::new(),
            slab: Vec::new(),
            free: Vec::new(),
            seq: 0,
            armed: vec![None; n],
            now: 0,
            joins: vec![None; n],
            crashes: Vec::new(),
            takeovers: BTreeMap::new(),
            merges: 0,
            messages: BTreeMap::new(),
            dropped: 0,
            events: 0,
            rng: ChaCha8Rng::seed_from_u64(sc.seed ^ 0x6461_7461),
            flooder: (0..n as u32)
                .map(|i| i >= 1 && i <= sc.locality.flooders)
                .collect(),
            flood_sent: 0,
            flood_targets: Vec::new(),
            flood_targets_at: 0,
            flood_nonce: 0,
            nodes,
            sc,
        };
        let window_us = (run.sc.locality.arrival_s * 1e6) as u64;
        if run.sc.locality.flooders > 0 {
            run.push((run.sc.locality.flood_from_s * 1e6) as u64, Ev::Flood);
        }
        for i in 1..n as u32 {
            if run.flooder[i as usize] {
                continue;
            }
            let at = if window_us == 0 {
                0
            } else {
                rng.gen_range(0..=window_us)
            };
            run.push(at, Ev::Join(i));
        }
        if let Some(c) = run.sc.locality.crash_at_s {
            run.push((c * 1e6) as u64, Ev::Crash);
        }
        Ok(run)
    }

    fn push(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.heap.push(Reverse((at, self.seq, ev)));
    }

    fn drain(&mut self, i: u32) {
        let now = self.now;
        while let Some(t) = self.nodes[i as usize].poll_transmit() {
            let bytes = t.msg.encoded_len() as u64;
            let e = self.messages.entry(t.msg.kind()).or_default();
            e.0 += 1;
            e.1 += bytes;
            let sent = if matches!(
                t.msg,
                LocalityMsg::Measure { .. } | LocalityMsg::MeasureReply { .. }
            ) {
                self.datagram(now, i, t.to.0)
            } else {
                self.net
                    .send_control(now, i, t.to.0, bytes)
                    .map(|d| d.arrival)
                    .ok()
            };
            match sent {
                Some(arrival) => self.deliver_later(arrival, i, t.to.0, t.msg),
                None => self.dropped += 1,
            }
        }
        while let Some(e) = self.nodes[i as usize].poll_event() {
            self.record(i, e);
        }
        let next = self.nodes[i as usize].poll_timeout().map(|t| t.0.max(now));
        if next != self.armed[i as usize] {
            self.armed[i as usize] = next;
            if let Some(t) = next {
                self.push(t, Ev::Wake(i));
            }
        }
    }

    /// Measure and its reply ride datagrams (as a ping does): the regions'
    /// latency, jitter and loss, no retransmission and no ordering behind
    /// the reliable control stream of the same pair (which the network model
    /// keeps in order, so one retransmitted message there would delay the
    /// probes behind it and inflate every RTT of the set).
    fn datagram(&mut self, now: u64, from: u32, to: u32) -> Option<u64> {
        if !self.net.is_alive(from) || !self.net.is_alive(to) {
            return None;
        }
        let r = self.net.regions();
        let (a, b) = (self.region[from as usize], self.region[to as usize]);
        let (latency, loss, jitter) = (r.latency_us(a, b), r.loss(a, b), r.jitter_us());
        if loss > 0.0 && self.rng.gen::<f64>() < loss {
            return None;
        }
        let j = if jitter > 0 {
            self.rng.gen_range(0..=jitter)
        } else {
            0
        };
        Some(now + latency + j)
    }

    fn record(&mut self, i: u32, e: LocalityEvent) {
        let founded = matches!(e, LocalityEvent::Founded { .. });
        match e {
            LocalityEvent::Joined {
                groups_tested,
                probes,
                elapsed_us,
                ..
            }
            | LocalityEvent::Founded {
                groups_tested,
                probes,
                elapsed_us,
                ..
            } => {
                self.joins[i as usize].get_or_insert(JoinRecord {
                    elapsed_us,
                    probes,
                    groups_tested,
                    founded,
                });
            }
            LocalityEvent::BecameLeader { group, how, .. } => {
                self.takeovers
                    .entry(group)
                    .or_default()
                    .push((self.now, i, how));
            }
            LocalityEvent::Merged { .. } => self.merges += 1,
            _ => {}
        }
    }

    /// Runs to the scenario's end, printing progress on stderr.
    pub fn run(&mut self, progress: bool) {
        let end = (self.sc.duration_s * 1e6) as u64;
        let started = std::time::Instant::now();
        let mut next_pct = 10u64;
        let mut next_prune = 10_000_000u64;
        while let Some(Reverse((at, _, ev))) = self.heap.peek().copied() {
            if at > end {
                break;
            }
            self.heap.pop();
            self.now = at;
            self.events += 1;
            let ts = Timestamp(at);
            match ev {
                Ev::Deliver(slot) => {
                    let (from, to, msg) = self.slab[slot as usize]
                        .take()
                        .expect("a Deliver event owns its slot");
                    self.free.push(slot);
                    if self.alive[to as usize] {
                        self.nodes[to as usize].handle_input(ts, NodeId(from), msg);
                        self.drain(to);
                    }
                }
                Ev::Wake(i) => {
                    if self.alive[i as usize] && self.armed[i as usize] == Some(at) {
                        self.armed[i as usize] = None;
                        self.nodes[i as usize].handle_timeout(ts);
                        self.drain(i);
                    }
                }
                Ev::Join(i) => {
                    if self.alive[i as usize] {
                        self.nodes[i as usize].start_join(ts);
                        self.drain(i);
                    }
                }
                Ev::Crash => self.crash_leaders(),
                Ev::Flood => self.flood(),
            }
            if at >= next_prune {
                self.net.prune(at);
                next_prune = at + 10_000_000;
            }
            let pct = at * 100 / end.max(1);
            if progress && pct >= next_pct {
                let joined = self.joins.iter().filter(|j| j.is_some()).count();
                let leaders = self.nodes.iter().filter(|n| n.is_leader()).count();
                eprintln!(
                    "sim-locality: {pct:3}%  t={:.0}/{:.0}s  {} events  joined {joined}  groups {leaders}  wall {:.1}s",
                    at as f64 / 1e6,
                    end as f64 / 1e6,
                    self.events,
                    started.elapsed().as_secs_f64()
                );
                while next_pct <= pct {
                    next_pct += 10;
                }
            }
        }
        self.now = end;
    }

    /// Each flooder sends `flood_per_s / 100` Measure to every leader (the
    /// leader list refreshed each second), then the next tick.
    fn flood(&mut self) {
        if self.now >= self.flood_targets_at {
            self.flood_targets = (1..self.nodes.len() as u32)
                .filter(|i| self.alive[*i as usize] && self.nodes[*i as usize].is_leader())
                .collect();
            self.flood_targets_at = self.now + 1_000_000;
        }
        let per_tick = (self.sc.locality.flood_per_s as u64 * FLOOD_TICK_US / 1_000_000).max(1);
        let targets = self.flood_targets.clone();
        for f in 1..=self.sc.locality.flooders {
            if !self.alive[f as usize] {
                continue;
            }
            for t in &targets {
                for _ in 0..per_tick {
                    self.flood_nonce = self.flood_nonce.wrapping_add(1);
                    let msg = LocalityMsg::Measure {
                        nonce: self.flood_nonce,
                    };
                    self.flood_sent += 1;
                    if let Some(at) = self.datagram(self.now, f, *t) {
                        self.deliver_later(at, f, *t, msg);
                    }
                }
            }
        }
        self.push(self.now + FLOOD_TICK_US, Ev::Flood);
    }

    fn deliver_later(&mut self, at: u64, from: u32, to: u32, msg: LocalityMsg) {
        let item = Some((from, to, msg));
        let slot = match self.free.pop() {
            Some(s) => {
                self.slab[s as usize] = item;
                s
            }
            None => {
                self.slab.push(item);
                (self.slab.len() - 1) as u32
            }
        };
        self.push(at, Ev::Deliver(slot));
    }

    fn kill(&mut self, i: u32) {
        self.alive[i as usize] = false;
        self.net.set_alive(i, false);
    }

    /// The leaders of the largest groups crash (succession); in the next
    /// groups by size the whole leadership list crashes (election).
    fn crash_leaders(&mut self) {
        let mut leaders: Vec<(usize, u32)> = (1..self.nodes.len() as u32)
            .filter(|i| self.alive[*i as usize] && self.nodes[*i as usize].is_leader())
            .map(|i| {
                let g = self.nodes[i as usize]
                    .group()
                    .expect("a leader has a group");
                (g.members.len(), i)
            })
            .collect();
        leaders.sort_by(|a, b| b.cmp(a));
        let k = self.sc.locality.leader_crashes as usize;
        let m = self.sc.locality.leaderless_crashes as usize;
        for (idx, (_, l)) in leaders.into_iter().take(k + m).enumerate() {
            let leaderless = idx >= k;
            let g = self.nodes[l as usize].group().expect("a leader").clone();
            let crashed: Vec<u32> = if leaderless {
                g.leadership.iter().map(|n| n.0).collect()
            } else {
                vec![l]
            };
            let survivors: Vec<u32> = g
                .members
                .iter()
                .map(|n| n.0)
                .filter(|n| !crashed.contains(n))
                .collect();
            let links_before = self.nodes[l as usize].inter().links.len();
            for c in &crashed {
                self.kill(*c);
            }
            self.crashes.push(CrashRecord {
                group: g.id,
                leaderless,
                at_us: self.now,
                crashed,
                survivors,
                links_before,
            });
        }
    }
}
