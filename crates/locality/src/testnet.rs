//! A tiny deterministic network for this crate's tests: machines by index, a
//! latency function of (from, to) plus seeded jitter, crashes, an event heap
//! keyed by (time, seq). The simulator (crates/sim) has the full model.

use crate::config::LocalityConfig;
use crate::machine::{LocalityEvent, LocalityNode};
use crate::msg::LocalityMsg;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use tiercast_proto::{NodeId, Timestamp};

/// Rewrites a message in flight: (from, to, msg).
pub(crate) type Tamper = Box<dyn FnMut(u32, u32, &mut LocalityMsg)>;

pub(crate) enum Ev {
    Deliver(u32, u32, LocalityMsg),
    Wake(u32),
    Join(u32),
}

pub(crate) struct TestNet {
    pub nodes: Vec<LocalityNode>,
    pub alive: Vec<bool>,
    /// One-way latency in µs between two nodes.
    pub latency: Box<dyn Fn(u32, u32) -> u64>,
    pub jitter_us: u64,
    pub rng: ChaCha8Rng,
    heap: BinaryHeap<Reverse<(u64, u64, usize)>>,
    slab: Vec<Option<Ev>>,
    seq: u64,
    pub now: Timestamp,
    pub events: Vec<(Timestamp, u32, LocalityEvent)>,
    pub sent: u64,
    armed: Vec<Option<Timestamp>>,
    /// Rewrites messages as they are sent (a lying node): (from, to, msg).
    pub tamper: Option<Tamper>,
}

impl TestNet {
    /// Node 0 is the rendezvous; nodes 1..n join when told.
    pub fn new(
        n: usize,
        cfg: LocalityConfig,
        seed: u64,
        latency: Box<dyn Fn(u32, u32) -> u64>,
    ) -> Self {
        let nodes = (0..n as u32)
            .map(|i| LocalityNode::new(NodeId(i), cfg.clone(), seed, Some(NodeId(0)), i == 0))
            .collect();
        TestNet {
            nodes,
            alive: vec![true; n],
            latency,
            jitter_us: 1000,
            rng: ChaCha8Rng::seed_from_u64(seed),
            heap: BinaryHeap::new(),
            slab: Vec::new(),
            seq: 0,
            now: Timestamp::ZERO,
            events: Vec::new(),
            sent: 0,
            armed: vec![None; n],
            tamper: None,
        }
    }

    fn push(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.slab.push(Some(ev));
        self.heap.push(Reverse((at, self.seq, self.slab.len() - 1)));
    }

    pub fn join_at(&mut self, node: u32, at: Timestamp) {
        self.push(at.0, Ev::Join(node));
    }

    fn drain(&mut self, i: u32) {
        let now = self.now;
        while let Some(mut t) = self.nodes[i as usize].poll_transmit() {
            self.sent += 1;
            if let Some(f) = self.tamper.as_mut() {
                f(i, t.to.0, &mut t.msg);
            }
            let j = if self.jitter_us > 0 {
                self.rng.gen_range(0..=self.jitter_us)
            } else {
                0
            };
            let at = now.0 + (self.latency)(i, t.to.0) + j;
            self.push(at, Ev::Deliver(i, t.to.0, t.msg));
        }
        while let Some(e) = self.nodes[i as usize].poll_event() {
            self.events.push((now, i, e));
        }
        let next = self.nodes[i as usize].poll_timeout().map(|t| t.max(now));
        if next != self.armed[i as usize] {
            self.armed[i as usize] = next;
            if let Some(t) = next {
                self.push(t.0.max(now.0), Ev::Wake(i));
            }
        }
    }

    pub fn run_until(&mut self, end: Timestamp) {
        while let Some(Reverse((at, _, slot))) = self.heap.peek().copied() {
            if at > end.0 {
                break;
            }
            self.heap.pop();
            self.now = Timestamp(at);
            let ev = self.slab[slot].take().expect("each slot fires once");
            match ev {
                Ev::Deliver(from, to, msg) => {
                    if self.alive[to as usize] && self.alive[from as usize] {
                        self.nodes[to as usize].handle_input(self.now, NodeId(from), msg);
                        self.drain(to);
                    }
                }
                Ev::Wake(i) => {
                    if self.alive[i as usize] && self.armed[i as usize] == Some(self.now) {
                        self.armed[i as usize] = None;
                        self.nodes[i as usize].handle_timeout(self.now);
                        self.drain(i);
                    }
                }
                Ev::Join(i) => {
                    if self.alive[i as usize] {
                        self.nodes[i as usize].start_join(self.now);
                        self.drain(i);
                    }
                }
            }
        }
        self.now = end;
    }

    pub fn crash(&mut self, i: u32) {
        self.alive[i as usize] = false;
    }

    /// Live members (not the rendezvous) that lead a group.
    pub fn leaders(&self) -> Vec<u32> {
        (1..self.nodes.len() as u32)
            .filter(|i| self.alive[*i as usize] && self.nodes[*i as usize].is_leader())
            .collect()
    }
}
