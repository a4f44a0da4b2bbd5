//! Faults (X5, the failure cases of V10, regions of V11): relay crashes and graceful
//! leaves, link cuts and region partitions, and how nodes notice them. A node learns
//! that a peer is gone only the way the network driver does — its link goes down —
//! and then calls the machine's own `peer_lost`: after `network.link_timeout_ms` for
//! a crash, a cut or a partition, after one latency for a graceful leave (the link
//! is closed). The coordinator notices by heartbeat timeout only, as in the driver.
//!
//! Also measured here: orphan re-homing — from a relay's crash to each of its child
//! relays (that were receiving) having a new parent connected, after the
//! coordinator's `Reassigned` (which follows `NodeTimedOut`, or a child's V10
//! `LinkDowngrade` report if that comes first).

use crate::queue::Ev;
use crate::scenario::{Fault, Target};
use crate::viewer::{GROUP_ORPHANED, GROUP_REDUNDANT, GROUP_SINGLE};
use crate::world::{Role, Simulation};
use rand::Rng;
use std::collections::BTreeMap;
use tiercast_node::parents::ParentState;
use tiercast_proto::NodeId;

/// A child relay whose parent failed, until it connects to a new parent.
#[derive(Clone, Debug)]
struct Wait {
    crash_at: u64,
    /// Its connected parents at the fault (the failed ones included).
    had: Vec<u32>,
    dead: Vec<u32>,
    /// The coordinator's first Reassigned for it after the fault.
    reassigned_at: Option<u64>,
}

#[derive(Default)]
pub(crate) struct FaultState {
    /// Relays (and the origin) that crashed or left, with when.
    pub crashed_at: BTreeMap<u32, u64>,
    waiting: BTreeMap<u32, Wait>,
    pub orphans: u64,
    pub orphans_rehomed: u64,
    pub rehome_max_us: u64,
    pub rehome_after_reassign_max_us: u64,
    pub reassign_max_us: u64,
    pub detect_max_us: u64,
    /// Node pairs cut, per link-cut fault.
    cut_pairs: BTreeMap<usize, Vec<(u32, u32)>>,
    partitions: BTreeMap<usize, u32>,
    /// The first relay fault (viewer groups are taken then).
    pub first_relay_fault_at: Option<u64>,
}

impl FaultState {
    pub fn on_timed_out(&mut self, node: u32, now: u64) {
        if let Some(c) = self.crashed_at.get(&node) {
            self.detect_max_us = self.detect_max_us.max(now - c);
        }
    }

    /// A child relay lost `dead`; `had` are its connected parents at that moment.
    fn orphaned(&mut self, child: u32, dead: u32, had: Vec<u32>, now: u64) {
        match self.waiting.get_mut(&child) {
            Some(w) => {
                w.dead.push(dead);
                for p in had {
                    if !w.had.contains(&p) {
                        w.had.push(p);
                    }
                }
            }
            None => {
                self.orphans += 1;
                self.waiting.insert(
                    child,
                    Wait {
                        crash_at: now,
                        had,
                        dead: vec![dead],
                        reassigned_at: None,
                    },
                );
            }
        }
    }

    pub fn on_reassigned(&mut self, child: u32, removed: &[NodeId], now: u64) {
        if let Some(w) = self.waiting.get_mut(&child) {
            if w.reassigned_at.is_none() && removed.iter().any(|r| w.dead.contains(&r.0)) {
                w.reassigned_at = Some(now);
                self.reassign_max_us = self.reassign_max_us.max(now - w.crash_at);
            }
        }
    }

    /// Re-homed: connected to a parent it did not have at the fault.
    pub fn on_parent_connected(&mut self, child: u32, parent: u32, now: u64) {
        let Some(w) = self.waiting.get(&child) else {
            return;
        };
        if w.had.contains(&parent) {
            return;
        }
        let w = self.waiting.remove(&child).expect("checked above");
        self.orphans_rehomed += 1;
        self.rehome_max_us = self.rehome_max_us.max(now - w.crash_at);
        if let Some(r) = w.reassigned_at {
            self.rehome_after_reassign_max_us = self.rehome_after_reassign_max_us.max(now - r);
        }
    }

    /// A waiting child that itself failed is no longer an orphan.
    fn forget(&mut self, node: u32) {
        if self.waiting.remove(&node).is_some() {
            self.orphans -= 1;
        }
    }

    pub fn unresolved(&self) -> u64 {
        self.waiting.len() as u64
    }
}

impl Simulation {
    /// Node ids named by a label or a class name.
    fn resolve_nodes(&self, name: &str) -> Vec<u32> {
        if let Some(id) = self.node_id(name) {
            return vec![id.0];
        }
        (1..self.first_viewer)
            .filter(|i| {
                let g = self.slots[*i as usize].group as usize;
                self.sc.node_classes.get(g).is_some_and(|c| c.name == name)
            })
            .collect()
    }

    pub(crate) fn targets(&mut self, t: &Target) -> Vec<u32> {
        if let Some(list) = &t.nodes {
            return list
                .iter()
                .filter_map(|l| self.node_id(l).map(|n| n.0))
                .filter(|id| self.is_alive(*id))
                .collect();
        }
        let active: Vec<NodeId> = self
            .coord
            .channel_by_name(&self.sc.stream.channel)
            .map(|m| m.active.keys().copied().collect())
            .unwrap_or_default();
        let top: Vec<u32> = self
            .channel
            .and_then(|c| self.coord.peer_overlay(c))
            .map(|o| {
                o.members
                    .values()
                    .filter(|m| m.top && m.kind == tiercast_coordinator::peers::MemberKind::Peer)
                    .map(|m| m.info.id.0)
                    .collect()
            })
            .unwrap_or_default();
        let candidates: Vec<u32> = if t.top_peers {
            top
        } else {
            (1..self.first_viewer).collect()
        };
        let pool: Vec<u32> = candidates
            .into_iter()
            .filter(|i| self.is_alive(*i))
            .filter(|i| !t.active || active.binary_search(&NodeId(*i)).is_ok())
            .filter(|i| {
                if t.top_peers {
                    return true;
                }
                let c = &self.sc.node_classes[self.slots[*i as usize].group as usize];
                t.class.as_ref().is_none_or(|n| *n == c.name) && t.tier.is_none_or(|x| x == c.tier)
            })
            .collect();
        self.pick_some(pool, t.fraction, t.count)
    }

    /// `fraction` of `pool` (rounded) or `count` of it, drawn at random with the
    /// faults' generator, in id order (a fault's targets, a flaky fault's peers).
    pub(crate) fn pick_some(
        &mut self,
        mut pool: Vec<u32>,
        fraction: Option<f64>,
        count: Option<u32>,
    ) -> Vec<u32> {
        let k = match (fraction, count) {
            (Some(f), _) => (pool.len() as f64 * f).round() as usize,
            (None, Some(n)) => n as usize,
            _ => 0,
        }
        .min(pool.len());
        for i in 0..k {
            let j = self.rng_faults.gen_range(i..pool.len());
            pool.swap(i, j);
        }
        pool.truncate(k);
        pool.sort_unstable();
        pool
    }

    pub(crate) fn fault_start(&mut self, i: usize) {
        let f = self.sc.faults[i].clone();
        let timeout = self.sc.network.link_timeout_ms * 1000;
        match &f {
            Fault::Crash { .. } | Fault::Leave { .. } => {
                let graceful = matches!(f, Fault::Leave { .. });
                let ids = self.targets(&f.target().expect("crash and leave have targets"));
                if self.faults.first_relay_fault_at.is_none() && !ids.is_empty() {
                    self.take_viewer_groups(&ids);
                }
                self.fault_opened(i, Some(&ids));
                for id in ids {
                    self.kill(id, graceful);
                }
                self.fault_applied();
            }
            Fault::Restart { .. } | Fault::CoordinatorRestart { .. } => self.restart_begin(i),
            Fault::Flaky { .. } => self.flaky_begin(i),
            Fault::Tamper { until_s, .. } => {
                let ids = self.targets(&f.target().expect("tamper has targets"));
                self.fault_opened(i, Some(&ids));
                self.signing.tamper(i, &ids);
                if let Some(u) = until_s {
                    self.queue
                        .push((u * 1e6).round() as u64, Ev::FaultEnd(i as u16));
                }
            }
            Fault::LinkCut { a, b, until_s, .. } => {
                let mut pairs = Vec::new();
                for x in self.resolve_nodes(a) {
                    for y in self.resolve_nodes(b) {
                        if x != y {
                            pairs.push((x, y));
                        }
                    }
                }
                for (x, y) in &pairs {
                    self.net.cut_link(*x, *y);
                    self.queue
                        .push(self.now + timeout, Ev::LinkDown { node: *x, peer: *y });
                    self.queue
                        .push(self.now + timeout, Ev::LinkDown { node: *y, peer: *x });
                }
                self.faults.cut_pairs.insert(i, pairs);
                self.fault_opened(i, None);
                if let Some(u) = until_s {
                    self.queue
                        .push((u * 1e6).round() as u64, Ev::FaultEnd(i as u16));
                }
            }
            Fault::Partition {
                regions, until_s, ..
            } => {
                let ids: Vec<u16> = regions
                    .iter()
                    .filter_map(|r| self.net.regions().id(r))
                    .collect();
                let pid = self.net.partition(&ids);
                self.faults.partitions.insert(i, pid);
                self.fault_opened(i, None);
                for n in 1..self.slots.len() as u32 {
                    for peer in self.peers_of(n) {
                        if self.net.link_up(n, peer).is_err() {
                            self.queue
                                .push(self.now + timeout, Ev::LinkDown { node: n, peer });
                        }
                    }
                }
                if let Some(u) = until_s {
                    self.queue
                        .push((u * 1e6).round() as u64, Ev::FaultEnd(i as u16));
                }
            }
        }
    }

    pub(crate) fn fault_end(&mut self, i: usize) {
        if self.restart_end(i) {
            return;
        }
        if let Some(pairs) = self.faults.cut_pairs.remove(&i) {
            for (x, y) in pairs {
                self.net.restore_link(x, y);
            }
        }
        if let Some(pid) = self.faults.partitions.remove(&i) {
            self.net.heal(pid);
        }
        self.signing.honest_again(i);
        // A healed partition: its cut-off nodes are watched until re-homed (the
        // event comes back every REHOME_CHECK_MS; the heal above is done once).
        if self.rehome_check(i) {
            let at = self.now + crate::fault_windows::REHOME_CHECK_MS * 1000;
            if at <= self.end {
                self.queue.push(at, Ev::FaultEnd(i as u16));
            }
        }
    }

    /// Every node a node has a link with for the channel: parents and child nodes.
    pub(crate) fn peers_of(&self, id: u32) -> Vec<u32> {
        let Some(n) = self.slots[id as usize].node.as_ref() else {
            return Vec::new();
        };
        let mut out: Vec<u32> = Vec::new();
        for (_, ch) in n.channels() {
            out.extend(ch.parents.ids().iter().map(|p| p.0));
            out.extend(ch.children.nodes.keys().map(|c| c.0));
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// A relay or the origin stops; its peers' links go down; its child relays that
    /// were receiving are orphans until they connect to a new parent.
    pub(crate) fn kill(&mut self, id: u32, graceful: bool) {
        let peers = self.peers_of(id);
        let Some(node) = self.slots[id as usize].node.take() else {
            return;
        };
        self.faults.forget(id);
        if let Some(ch) = self.channel.and_then(|c| node.channel(c)) {
            for c in ch.children.nodes.keys() {
                let child = self.node(*c).and_then(|n| n.channel(ch.desc.id));
                if let (Role::Relay, Some(cc)) = (self.role(c.0), child) {
                    if cc.logged_in {
                        let had = cc
                            .parents
                            .in_state(ParentState::Connected)
                            .iter()
                            .map(|p| p.0)
                            .collect();
                        self.faults.orphaned(c.0, id, had, self.now);
                    }
                }
            }
        }
        drop(node);
        self.cancel_timer(id);
        self.net.set_alive(id, false);
        self.faults.crashed_at.insert(id, self.now);
        if id >= self.first_viewer {
            // A peer: its own watch ends here.
            self.finalize_viewer((id - self.first_viewer) as usize, self.now);
        } else {
            self.metrics.relays_failed += 1;
        }
        let timeout = self.sc.network.link_timeout_ms * 1000;
        for p in peers {
            if p == 0 || !self.is_alive(p) {
                continue;
            }
            let delay = if graceful {
                let r = self.net.regions();
                r.latency_us(self.net.region_of(id), self.net.region_of(p))
                    .max(1)
            } else {
                timeout
            };
            self.queue
                .push(self.now + delay, Ev::LinkDown { node: p, peer: id });
        }
    }

    /// `node` notices that its link to `peer` is down, if it still is.
    pub(crate) fn link_down(&mut self, node: u32, peer: u32) {
        if !self.is_alive(node) || self.net.link_up(node, peer).is_ok() {
            return;
        }
        self.lose_link(node, peer);
    }

    /// `node`'s link to `peer` is gone (timed out, or reset by `peer`'s new process).
    pub(crate) fn lose_link(&mut self, node: u32, peer: u32) {
        if let Some(n) = self.slots[node as usize].node.as_mut() {
            let now = tiercast_proto::Timestamp(self.now);
            if Self::is_coordinator(peer) {
                n.coordinator_lost(now);
            } else {
                n.peer_lost(now, NodeId(peer));
            }
        }
        self.drain_node(node);
    }

    /// At the first relay fault, each watching viewer is put in a group by what the
    /// fault does to its relay's connected parents (continuity after the fault is
    /// kept per group): kept one of two or more, lost them all, or had just one.
    fn take_viewer_groups(&mut self, failing: &[u32]) {
        self.faults.first_relay_fault_at = Some(self.now);
        self.ingest.fault_seq = Some(self.ingest.next_seq);
        let Some(ch) = self.channel else {
            return;
        };
        for vi in 0..self.viewers.len() {
            if !self.viewers[vi].watching() {
                continue;
            }
            let id = self.first_viewer + vi as u32;
            let relay = self.slots[id as usize]
                .node
                .as_ref()
                .and_then(|n| n.channel(ch))
                .and_then(|c| c.parents.in_state(ParentState::Connected).first().copied())
                .filter(|r| !failing.contains(&r.0));
            let parents: Vec<NodeId> = relay
                .and_then(|r| self.node(r))
                .and_then(|n| n.channel(ch))
                .map(|c| c.parents.in_state(ParentState::Connected))
                .unwrap_or_default();
            let kept = parents.iter().filter(|p| !failing.contains(&p.0)).count();
            self.viewers[vi].group = match (parents.len(), kept) {
                (_, 0) => GROUP_ORPHANED,
                (1, _) => GROUP_SINGLE,
                _ => GROUP_REDUNDANT,
            };
        }
    }
}
