//! Restarts (D7, X5; issue 10's robustness sweep): a relay or the origin, or the
//! coordinator, stops dead and starts again.
//!
//! - `restart`: the nodes crash as in `crash` (their links time out at their
//!   peers) and `down_s` later a new machine starts under the same id with the
//!   same configuration and a new incarnation, as `tiercast relay` / `tiercast
//!   origin` started again with the same arguments. A restarted origin announces
//!   the channel again with the same key; its seq continues (the data dir), and
//!   the source's blocks of the downtime are lost (the encoder kept running).
//! - `coordinator_restart`: the coordinator stops; what is sent to it is lost; a
//!   node notices at its link's timeout (`network.link_timeout_ms`) and registers
//!   again with backoff. `down_s` later a new coordinator with no state starts; a
//!   node whose link had not timed out yet learns it at its next keep-alive (the
//!   new process answers with a stateless reset): within [`KEEPALIVE_US`] plus one
//!   latency.
//!
//! Measured per restart (metrics.json `restarts`): `served_again_ms` — from the
//! restart until the coordinator serves the channel again (it knows it, and a relay
//! is active for it or the peer overlay has members), for a coordinator restart;
//! until the coordinator has every restarted relay registered again (its new
//! incarnation: the coordinator can use it — whether it does is its choice), for a
//! relay restart; until a viewer stores a block the restarted origin cut, for an
//! origin restart. `not_served` counts the nodes (or the channel) that never were.

use crate::queue::Ev;
use crate::scenario::Fault;
use crate::world::{Role, Simulation};
use rand::Rng;
use serde::Serialize;
use std::collections::BTreeMap;
use tiercast_coordinator::peers::MemberKind;
use tiercast_coordinator::Coordinator;
use tiercast_node::{Node, NodeConfig};
use tiercast_proto::{NodeId, Timestamp};

/// The drivers' keep-alive on the coordinator link (net/src/link).
pub const KEEPALIVE_US: u64 = 500_000;

#[derive(Clone, Debug)]
struct Open {
    fault: usize,
    kind: &'static str,
    at: u64,
    back_at: Option<u64>,
    /// First seq cut after the nodes were back.
    seq_at_back: u64,
    /// Restarted nodes and when each was served again (empty for the coordinator).
    nodes: BTreeMap<u32, Option<u64>>,
    /// Each restarted node's new incarnation.
    incarnations: BTreeMap<u32, u64>,
    served_at: Option<u64>,
    /// Each restarted node's peers when it stopped (their links still up).
    linked: BTreeMap<u32, Vec<u32>>,
    /// Coordinator restart under peers: when every peer of the old overlay still
    /// alive was a member of the new one again.
    members_again: Option<u64>,
    /// Then (or at the window's end): of those members, how many have their old
    /// links (top level and push parent, or every substream parent), and of how many.
    kept: Option<(u64, u64)>,
    /// When the take-back was last checked.
    checked_at: u64,
}

/// A peer's place in the overlay: on the top level, its push parent, its
/// parent per substream tree.
type Place = (bool, Option<NodeId>, Vec<Option<NodeId>>);

#[derive(Default)]
pub(crate) struct Restarts {
    /// The coordinator is down (between its stop and its start).
    pub coordinator_down: bool,
    /// Restarted nodes' configurations, until they start again.
    configs: BTreeMap<usize, Vec<(u32, NodeConfig)>>,
    open: Vec<Open>,
    /// The peers' places in the overlay when the coordinator stopped.
    places: BTreeMap<u32, Place>,
    /// `ParentSet`s the coordinator sent per virtual second.
    pub parent_sets_per_s: Vec<u64>,
}

impl Restarts {
    /// The coordinator sent a `ParentSet` at `now`.
    pub(crate) fn parent_set_sent(&mut self, now: u64) {
        let s = (now / 1_000_000) as usize;
        if self.parent_sets_per_s.len() <= s {
            self.parent_sets_per_s.resize(s + 1, 0);
        }
        self.parent_sets_per_s[s] += 1;
    }

    /// `ParentSet`s sent in `[from_us, from_us + AFTER_WINDOW_S)`, whole seconds.
    fn parent_sets_after(&self, from_us: u64) -> u64 {
        let a = from_us.div_ceil(1_000_000) as usize;
        let b = a + crate::fault_windows::AFTER_WINDOW_S as usize;
        self.parent_sets_per_s.iter().take(b).skip(a).sum()
    }
}

/// One restart's figures in metrics.json.
#[derive(Clone, Debug, Serialize)]
pub struct RestartFigures {
    pub fault: usize,
    pub kind: &'static str,
    pub at_s: f64,
    pub back_s: Option<f64>,
    pub nodes: u64,
    /// From the restart (the moment it was back) until served again.
    pub served_again_ms: Option<u64>,
    pub not_served: u64,
    /// Coordinator restart under peers: peers of the old overlay, alive when it
    /// was back.
    pub peers: Option<u64>,
    /// From the restart until each of them was a member again (ms; None: not
    /// within the 10 s after).
    pub members_again_ms: Option<u64>,
    /// Of them, the share with every old link kept (top level and push parent,
    /// or every substream parent) when all were members again (or 10 s after).
    pub kept_parents: Option<f64>,
    /// `ParentSet`s the coordinator sent in the 10 whole seconds after the restart.
    pub parent_sets_after: Option<u64>,
}

impl Simulation {
    /// A `restart` or `coordinator_restart` fault begins: the nodes stop.
    pub(crate) fn restart_begin(&mut self, i: usize) {
        let f = self.sc.faults[i].clone();
        let down_us = (f.down_s().unwrap_or(0.0) * 1e6).round() as u64;
        self.queue.push(self.now + down_us, Ev::FaultEnd(i as u16));
        let mut open = Open {
            fault: i,
            kind: "coordinator_restart",
            at: self.now,
            back_at: None,
            seq_at_back: 0,
            nodes: BTreeMap::new(),
            incarnations: BTreeMap::new(),
            served_at: None,
            linked: BTreeMap::new(),
            members_again: None,
            kept: None,
            checked_at: 0,
        };
        match &f {
            Fault::CoordinatorRestart { .. } => {
                self.fault_opened(i, Some(&[]));
                self.restarts.places = self.peer_places();
                self.restarts.coordinator_down = true;
                self.net.set_alive(0, false);
                self.cancel_timer(0);
                let timeout = self.sc.network.link_timeout_ms * 1000;
                for n in 1..self.slots.len() as u32 {
                    if self.is_alive(n) {
                        self.queue
                            .push(self.now + timeout, Ev::LinkDown { node: n, peer: 0 });
                    }
                }
            }
            _ => {
                open.kind = "restart";
                let ids = self.targets(&f.target().expect("a restart has targets"));
                let configs: Vec<(u32, NodeConfig)> = ids
                    .iter()
                    .filter_map(|id| {
                        let n = self.slots[*id as usize].node.as_ref()?;
                        Some((*id, n.config().clone()))
                    })
                    .collect();
                self.fault_opened(i, Some(&ids));
                for id in &ids {
                    let peers = self.peers_of(*id);
                    open.linked.insert(*id, peers);
                    self.kill(*id, false);
                    open.nodes.insert(*id, None);
                }
                self.configs_put(i, configs);
            }
        }
        self.restarts.open.push(open);
    }

    fn configs_put(&mut self, i: usize, c: Vec<(u32, NodeConfig)>) {
        self.restarts.configs.insert(i, c);
    }

    /// The restart's nodes (or the coordinator) start again; false if fault `i` is
    /// not a restart.
    pub(crate) fn restart_end(&mut self, i: usize) -> bool {
        let Some(o) = self.restarts.open.iter().position(|o| o.fault == i) else {
            return false;
        };
        let now = self.now;
        self.restarts.open[o].back_at = Some(now);
        self.restarts.open[o].seq_at_back = self.ingest.next_seq;
        if self.restarts.open[o].kind == "coordinator_restart" {
            self.coordinator_start();
        } else {
            let down_us = now.saturating_sub(self.restarts.open[o].at);
            for (id, cfg) in self.restarts.configs.remove(&i).unwrap_or_default() {
                let inc = self.restart_node(id, cfg);
                self.restarts.open[o].incarnations.insert(id, inc);
                let peers = self.restarts.open[o].linked.remove(&id).unwrap_or_default();
                self.reset_links_to(id, peers, down_us);
            }
        }
        true
    }

    fn coordinator_start(&mut self) {
        let now = Timestamp(self.now);
        // The restarted process has the next epoch, as the network driver's
        // store gives it (D7, X7): the nodes follow its orders.
        let cfg = tiercast_coordinator::CoordinatorConfig {
            epoch: self.coord.config().epoch + 1,
            ..self.sc.coordinator_config()
        };
        self.coord = Coordinator::new(cfg, now);
        self.restarts.coordinator_down = false;
        self.net.set_alive(0, true);
        // Each node's next keep-alive meets the new process: a stateless reset.
        let r = self.net.regions();
        let coord_region = self.net.region_of(0);
        let mut resets = Vec::new();
        for n in 1..self.slots.len() as u32 {
            if self.is_alive(n) {
                let lat = r.latency_us(self.net.region_of(n), coord_region);
                let wait = self.rng_faults.gen_range(0..KEEPALIVE_US);
                resets.push((self.now + wait + 2 * lat, n));
            }
        }
        for (at, n) in resets {
            self.queue.push(at, Ev::CoordinatorReset(n));
        }
        self.drain_coord();
    }

    /// Starts a new machine for `id` (an origin announces its channel again);
    /// returns its incarnation. Also a flaky peer's return (`flaky.rs`).
    pub(crate) fn restart_node(&mut self, id: u32, cfg: NodeConfig) -> u64 {
        let incarnation = self.rng_faults.gen::<u64>() | 1;
        let cfg = NodeConfig { incarnation, ..cfg };
        let now = Timestamp(self.now);
        self.net.set_alive(id, true);
        self.slots[id as usize].node = Some(Box::new(Node::new(cfg, now)));
        self.metrics.nodes_created += 1;
        if self.role(id) == Role::Origin {
            let name = self.sc.stream.channel.clone();
            // Its key survives the restart (`tiercast origin`'s data dir).
            let key = self.signing.public_key();
            if let Some(n) = self.slots[id as usize].node.as_mut() {
                n.announce(&name, key);
            }
        }
        self.drain_node(id);
        incarnation
    }

    /// `id` started again before its peers' links to the old process timed out
    /// (their `LinkDown` then finds the link up and is ignored): each peer's next
    /// keep-alive meets the new process, which answers with a stateless reset (the
    /// real driver's endpoints derive the reset key from the cluster key and the
    /// node id), within [`KEEPALIVE_US`] plus a round trip.
    pub(crate) fn reset_links_to(&mut self, id: u32, peers: Vec<u32>, down_us: u64) {
        if down_us >= self.sc.network.link_timeout_ms * 1000 {
            return; // their links timed out while it was down
        }
        for p in peers {
            if p != 0 && self.is_alive(p) {
                let r = self.net.regions();
                let lat = r.latency_us(self.net.region_of(p), self.net.region_of(id));
                let wait = self.rng_faults.gen_range(0..KEEPALIVE_US);
                let at = self.now + wait + 2 * lat;
                self.queue.push(at, Ev::LinkReset { node: p, peer: id });
            }
        }
    }

    /// `node`'s coordinator link was reset: it registers again at once.
    pub(crate) fn coordinator_reset(&mut self, node: u32) {
        if self.restarts.coordinator_down {
            return;
        }
        if let Some(n) = self.slots[node as usize].node.as_mut() {
            n.coordinator_lost(Timestamp(self.now));
        }
        self.drain_node(node);
    }

    /// After the coordinator's outputs: is the channel served again?
    pub(crate) fn restart_check_coordinator(&mut self) {
        if self.restarts.open.is_empty() {
            return;
        }
        self.check_take_back();
        let now = self.now;
        let (origin, reg) = (self.origin, self.coord.registry());
        for o in self
            .restarts
            .open
            .iter_mut()
            .filter(|o| o.kind == "restart")
        {
            for (id, at) in o.nodes.iter_mut() {
                let back = o.incarnations.get(id).is_some_and(|inc| {
                    reg.get(NodeId(*id))
                        .is_some_and(|r| r.alive && r.incarnation == *inc)
                });
                if at.is_none() && *id != origin && back {
                    *at = Some(now);
                }
            }
        }
        let name = &self.sc.stream.channel;
        let served = self.coord.channel_by_name(name).is_some_and(|m| {
            !m.active.is_empty()
                || self
                    .coord
                    .peer_overlay(m.desc.id)
                    .is_some_and(|o| o.members.len() > 1)
        });
        if !served {
            return;
        }
        for o in self.restarts.open.iter_mut() {
            if o.kind == "coordinator_restart" && o.back_at.is_some() && o.served_at.is_none() {
                o.served_at = Some(now);
            }
        }
    }

    /// Viewer `id` stored block `seq`: fed by a restarted origin?
    pub(crate) fn restart_block(&mut self, seq: u64) {
        if self.restarts.open.is_empty() {
            return;
        }
        let now = self.now;
        let origin = self.origin;
        for o in self.restarts.open.iter_mut() {
            if o.back_at.is_none() || seq < o.seq_at_back {
                continue;
            }
            if let Some(fed @ None) = o.nodes.get_mut(&origin) {
                *fed = Some(now);
            }
        }
    }

    /// Every restart's figures.
    pub(crate) fn restart_metrics(&self) -> Vec<RestartFigures> {
        self.restarts
            .open
            .iter()
            .map(|o| {
                let (served, not) = if o.kind == "coordinator_restart" {
                    (o.served_at, u64::from(o.served_at.is_none()))
                } else {
                    let not = o.nodes.values().filter(|t| t.is_none()).count() as u64;
                    let last = o.nodes.values().flatten().max().copied();
                    ((not == 0).then_some(last).flatten(), not)
                };
                RestartFigures {
                    fault: o.fault,
                    kind: o.kind,
                    at_s: o.at as f64 / 1e6,
                    back_s: o.back_at.map(|b| b as f64 / 1e6),
                    nodes: o.nodes.len() as u64,
                    served_again_ms: o
                        .back_at
                        .zip(served)
                        .map(|(b, s)| s.saturating_sub(b) / 1000),
                    not_served: not,
                    peers: o.kept.map(|k| k.1),
                    members_again_ms: o
                        .back_at
                        .zip(o.members_again)
                        .map(|(b, m)| m.saturating_sub(b) / 1000),
                    kept_parents: o.kept.map(|(k, n)| k as f64 / n.max(1) as f64),
                    parent_sets_after: (o.kind == "coordinator_restart")
                        .then(|| o.back_at.map(|b| self.restarts.parent_sets_after(b)))
                        .flatten(),
                }
            })
            .collect()
    }

    /// The coordinator is down: messages to it are lost.
    pub(crate) fn coordinator_down(&self) -> bool {
        self.restarts.coordinator_down
    }

    /// The id of the coordinator's slot, for link checks.
    pub(crate) fn is_coordinator(peer: u32) -> bool {
        NodeId(peer) == tiercast_proto::COORDINATOR_ID
    }
}

impl Simulation {
    /// Every peer member's place in the channel's overlay now.
    fn peer_places(&self) -> BTreeMap<u32, Place> {
        let name = &self.sc.stream.channel;
        let Some(o) = self
            .coord
            .channel_by_name(name)
            .and_then(|m| self.coord.peer_overlay(m.desc.id))
        else {
            return BTreeMap::new();
        };
        o.members
            .values()
            .filter(|m| m.kind == MemberKind::Peer)
            .map(|m| (m.info.id.0, (m.top, m.eager, m.parents.to_vec())))
            .collect()
    }

    /// Coordinator restart under peers: every 100 ms after it until the window's
    /// end, whether every old member still alive is a member again, and then how
    /// many kept their links.
    fn check_take_back(&mut self) {
        let now = self.now;
        let window = crate::fault_windows::AFTER_WINDOW_S * 1_000_000;
        let due = self.restarts.open.iter().any(|o| {
            o.kind == "coordinator_restart"
                && o.kept.is_none()
                && o.back_at.is_some()
                && now >= o.checked_at + 100_000
        });
        if !due || self.restarts.places.is_empty() {
            return;
        }
        let name = &self.sc.stream.channel;
        let o = self
            .coord
            .channel_by_name(name)
            .and_then(|m| self.coord.peer_overlay(m.desc.id));
        let (mut members, mut kept, mut out) = (0u64, 0u64, 0u64);
        for (id, place) in &self.restarts.places {
            if !self.is_alive(*id) {
                continue;
            }
            match o.and_then(|o| o.members.get(&NodeId(*id))) {
                Some(m) => {
                    members += 1;
                    kept += u64::from(
                        (m.top, m.eager, &m.parents[..]) == (place.0, place.1, &place.2[..]),
                    );
                }
                None => out += 1,
            }
        }
        for r in self.restarts.open.iter_mut() {
            let Some(back) = r.back_at.filter(|_| r.kind == "coordinator_restart") else {
                continue;
            };
            if r.kept.is_some() {
                continue;
            }
            r.checked_at = now;
            if out == 0 {
                r.members_again = Some(now);
            }
            if out == 0 || now >= back + window {
                r.kept = Some((kept, members + out));
            }
        }
    }

    /// On-time continuity of each virtual second.
    pub(crate) fn continuity_per_s(&self) -> Vec<Option<f64>> {
        let secs = self.sc.duration_s.ceil() as u64;
        (0..secs)
            .map(|s| self.continuity_in(s * 1_000_000, (s + 1) * 1_000_000))
            .collect()
    }

    /// On-time continuity from `a_s` to `b_s` (virtual seconds), all regions.
    pub fn continuity_between(&self, a_s: f64, b_s: f64) -> Option<f64> {
        let us = |s: f64| (s * 1e6).round() as u64;
        self.continuity_in(us(a_s), us(b_s))
    }

    /// The lowest continuity of one viewer from `steady_from_s` on (rate mode),
    /// over those expected to play 30 s or more of it.
    pub(crate) fn worst_viewer_continuity(&self) -> Option<f64> {
        self.viewers
            .iter()
            .filter(|v| v.steady_expected >= 30.0)
            .map(|v| f64::from(v.steady_delivered) / f64::from(v.steady_expected))
            .min_by(|a, b| a.total_cmp(b))
    }
}
