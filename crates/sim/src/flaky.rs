//! Flaky peers (C4's "rank by history", D1's "good history", issue 11 item 5):
//! the `[[faults]]` kind `flaky`. At `at_s` it picks `fraction` or `count` of the
//! peers watching then that declared at least `min_uplink_kbps`; each crashes
//! (as `crash`: its peers notice at their link timeout, the coordinator by
//! heartbeat timeout) every `every_s`, the first time uniform in `[at_s, at_s +
//! every_s)`, and `down_s` later a new machine starts under the **same node id**
//! with the same configuration and a new incarnation, registers and watches
//! again — so the coordinator's history store sees the same node come back
//! (a second session, its availability falling). No crash after `until_s`.
//!
//! The viewer's books: a crash closes its watch as a departure does; the
//! return opens a new one in the same slot (continuity counts from its first
//! block again, as for a new viewer).
//!
//! Measured (metrics.json `flaky`, only with such a fault): the peers picked,
//! crashes and returns, the children they had when they crashed (their own
//! machine's children table), how often they were on the overlay's top level
//! then, and their children per second alive.

use crate::queue::Ev;
use crate::scenario::Fault;
use crate::viewer::ViewerStats;
use crate::world::Simulation;
use rand::Rng;
use serde::Serialize;
use std::collections::BTreeMap;
use tiercast_node::NodeConfig;
use tiercast_proto::{NodeId, Timestamp};

/// One flaky peer.
#[derive(Clone, Debug)]
struct FlakyPeer {
    every_us: u64,
    down_us: u64,
    /// No crash after this (µs).
    until_us: u64,
    /// Its configuration and its peers at the crash, while it is down.
    down: Option<(NodeConfig, Vec<u32>)>,
}

#[derive(Default)]
pub(crate) struct FlakyState {
    peers: BTreeMap<u32, FlakyPeer>,
    figures: FlakyFigures,
}

/// metrics.json `flaky`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FlakyFigures {
    /// Peers picked as flaky.
    pub peers: u64,
    pub crashes: u64,
    /// Returns (a new machine under the same id, watching again).
    pub returns: u64,
    /// Children in their own children table when they crashed: summed, and the most.
    pub children_at_crash: u64,
    pub children_at_crash_max: u64,
    /// Crashes of a peer that was on the overlay's top level (D3) then.
    pub top_at_crash: u64,
    /// Children per flaky peer alive, over the per-second samples.
    pub children_per_second: Option<f64>,
    /// Σ children and Σ flaky peers alive over the samples.
    pub child_samples: u64,
    pub alive_samples: u64,
}

impl Simulation {
    /// A `flaky` fault begins: its peers are picked, their first crash scheduled.
    pub(crate) fn flaky_begin(&mut self, i: usize) {
        let Fault::Flaky {
            fraction,
            count,
            min_uplink_kbps,
            every_s,
            down_s,
            until_s,
            ..
        } = self.sc.faults[i].clone()
        else {
            return;
        };
        let us = |s: f64| (s * 1e6).round() as u64;
        let pool: Vec<u32> = (0..self.viewers.len() as u32)
            .filter(|vi| self.viewers[*vi as usize].watching())
            .map(|vi| self.first_viewer + vi)
            .filter(|id| self.is_alive(*id) && !self.flaky.peers.contains_key(id))
            .filter(|id| self.net.uplink_kbps(*id) >= min_uplink_kbps)
            .collect();
        let pool = self.pick_some(pool, fraction, count);
        self.fault_opened(i, Some(&[]));
        let (every_us, down_us) = (us(every_s), us(down_s));
        let until_us = until_s.map_or(self.end, us);
        for id in pool {
            let first = self.now + self.rng_faults.gen_range(0..every_us.max(1));
            self.flaky.peers.insert(
                id,
                FlakyPeer {
                    every_us,
                    down_us,
                    until_us,
                    down: None,
                },
            );
            self.flaky.figures.peers += 1;
            if first <= until_us.min(self.end) {
                self.queue.push(first, Ev::FlakyDown(id));
            }
        }
    }

    /// Flaky peer `id` crashes (if it is still watching); its return is scheduled.
    pub(crate) fn flaky_down(&mut self, id: u32) {
        let vi = (id - self.first_viewer) as usize;
        let Some(fp) = self.flaky.peers.get(&id) else {
            return;
        };
        let (every, down) = (fp.every_us, fp.down_us);
        if !self.viewers[vi].watching() || !self.is_alive(id) {
            return; // it left for good
        }
        let Some(cfg) = self.slots[id as usize]
            .node
            .as_ref()
            .map(|n| n.config().clone())
        else {
            return;
        };
        let children = self
            .channel
            .and_then(|c| self.node(NodeId(id))?.channel(c))
            .map_or(0, |ch| ch.children.nodes.len() as u64);
        let top = self
            .channel
            .and_then(|c| self.coord.peer_overlay(c))
            .and_then(|o| o.members.get(&NodeId(id)))
            .is_some_and(|m| m.top);
        let f = &mut self.flaky.figures;
        f.crashes += 1;
        f.children_at_crash += children;
        f.children_at_crash_max = f.children_at_crash_max.max(children);
        f.top_at_crash += u64::from(top);
        let peers = self.peers_of(id);
        self.kill(id, false);
        if let Some(fp) = self.flaky.peers.get_mut(&id) {
            fp.down = Some((cfg, peers));
        }
        self.queue.push(self.now + down, Ev::FlakyUp(id));
        let next = self.now + every;
        if next <= self.flaky.peers[&id].until_us.min(self.end) {
            self.queue.push(next, Ev::FlakyDown(id));
        }
    }

    /// Flaky peer `id` starts again under its id and watches again.
    pub(crate) fn flaky_up(&mut self, id: u32) {
        let Some((cfg, peers)) = self.flaky.peers.get_mut(&id).and_then(|p| p.down.take()) else {
            return;
        };
        let down_us = self.flaky.peers[&id].down_us;
        let vi = (id - self.first_viewer) as usize;
        let (p, premium) = (self.viewers[vi].process, self.viewers[vi].premium);
        let mut v = ViewerStats::new(self.now, p);
        v.premium = premium;
        self.viewers[vi] = v;
        // A new process: a new playout stage from its first block.
        self.playouts.remove(&(vi as u32));
        self.metrics.watching += 1;
        self.ledger.arrived[self.net.region_of(id) as usize] += 1;
        if self.sc.peers_mode() {
            self.metrics.peer_uplink_kbps_live += f64::from(self.net.uplink_kbps(id));
        }
        self.restart_node(id, cfg);
        self.flaky.figures.returns += 1;
        let now = Timestamp(self.now);
        let name = self.sc.stream.channel.clone();
        if let Some(n) = self.slots[id as usize].node.as_mut() {
            n.watch(now, &name);
        }
        self.drain_node(id);
        if self.population.procs[p as usize].both_channels {
            self.watch_second(id);
        }
        self.reset_links_to(id, peers, down_us);
    }

    /// The per-second sample: children of the flaky peers alive.
    pub(crate) fn flaky_sample(&mut self) {
        if self.flaky.peers.is_empty() {
            return;
        }
        let Some(c) = self.channel else { return };
        let (mut kids, mut alive) = (0u64, 0u64);
        for id in self.flaky.peers.keys() {
            if let Some(ch) = self.slots[*id as usize]
                .node
                .as_ref()
                .and_then(|n| n.channel(c))
            {
                kids += ch.children.nodes.len() as u64;
                alive += 1;
            }
        }
        self.flaky.figures.child_samples += kids;
        self.flaky.figures.alive_samples += alive;
    }

    /// The figures, with a `flaky` fault only.
    pub(crate) fn flaky_figures(&self) -> Option<FlakyFigures> {
        let has = self
            .sc
            .faults
            .iter()
            .any(|f| matches!(f, Fault::Flaky { .. }));
        has.then(|| {
            let mut f = self.flaky.figures.clone();
            f.children_per_second =
                (f.alive_samples > 0).then(|| f.child_samples as f64 / f.alive_samples as f64);
            f
        })
    }
}
