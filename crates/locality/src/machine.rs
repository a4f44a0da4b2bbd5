//! The locality machine of one node (L1–L6), sans-IO: `handle_input(now, from,
//! msg)`, `handle_timeout(now)`, then drain `poll_transmit`, `poll_event`,
//! `poll_timeout`. It holds the prober and rate limiter (L2), an optional
//! rendezvous boot cache (L1), the join search (L3), the own group and the
//! inter-group cache (L5, L6), the leader's state (L4 links, L5 Alive) and an
//! election when leaderless (L5). The rules live in their own files; this file
//! routes messages to them.

use crate::cache::{GroupView, InterCache};
use crate::config::LocalityConfig;
use crate::join::JoinSearch;
use crate::leader::{Election, Leading};
use crate::measure::{Measured, Prober};
use crate::msg::{GroupId, LocalityMsg};
use crate::ratelimit::MeasureLimiter;
use crate::rendezvous::BootCache;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::VecDeque;
use tiercast_proto::{NodeId, Timestamp};

/// A message to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    pub to: NodeId,
    pub msg: LocalityMsg,
}

/// How a node came to lead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Takeover {
    Founded,
    Succession,
    Election,
}

/// What happened (for drivers, metrics and logs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LocalityEvent {
    Joined {
        group: GroupId,
        leader: NodeId,
        groups_tested: u32,
        probes: u64,
        elapsed_us: u64,
    },
    Founded {
        group: GroupId,
        groups_tested: u32,
        probes: u64,
        elapsed_us: u64,
    },
    BecameLeader {
        group: GroupId,
        term: u32,
        how: Takeover,
    },
    LeaderPresumedGone {
        group: GroupId,
        leader: NodeId,
    },
    LeaderChanged {
        group: GroupId,
        leader: NodeId,
    },
    ElectionStarted {
        group: GroupId,
        round: u32,
    },
    LinkAdded {
        group: GroupId,
        long: bool,
    },
    LinkLost {
        group: GroupId,
    },
    /// This leader's group merged into `into` (this node re-joins there).
    Merged {
        group: GroupId,
        into: GroupId,
    },
}

/// Counters (outside input dropped, probes, answers).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LocalityStats {
    pub malformed: u64,
    pub unexpected: u64,
    pub measure_answered: u64,
    pub measure_dropped: u64,
    pub probes_sent: u64,
}

pub struct LocalityNode {
    pub(crate) id: NodeId,
    pub(crate) cfg: LocalityConfig,
    pub(crate) rng: ChaCha8Rng,
    pub(crate) rendezvous: Option<NodeId>,
    pub(crate) boot: Option<BootCache>,
    pub(crate) prober: Prober,
    pub(crate) limiter: MeasureLimiter,
    pub(crate) out: VecDeque<Transmit>,
    pub(crate) events: VecDeque<LocalityEvent>,
    pub(crate) search: Option<JoinSearch>,
    pub(crate) group: Option<GroupView>,
    pub(crate) leading: Option<Leading>,
    pub(crate) election: Option<Election>,
    /// A leadership-list member checking whether everyone above it is gone:
    /// (since, those above).
    pub(crate) succession: Option<(Timestamp, Vec<NodeId>)>,
    pub(crate) inter: InterCache,
    pub(crate) next_remeasure: Timestamp,
    pub(crate) next_housekeeping: Timestamp,
    pub(crate) malformed: u64,
    pub(crate) unexpected: u64,
}

impl LocalityNode {
    /// `rendezvous`: where joiners ask for a boot list (`None`: found a group
    /// at once). `serve_rendezvous`: this node also keeps a boot cache (L1).
    pub fn new(
        id: NodeId,
        cfg: LocalityConfig,
        seed: u64,
        rendezvous: Option<NodeId>,
        serve_rendezvous: bool,
    ) -> Self {
        cfg.validate().expect("locality config validated at start");
        let limiter = MeasureLimiter::new(cfg.measure_rate_per_peer, cfg.measure_rate_total);
        LocalityNode {
            id,
            rng: ChaCha8Rng::seed_from_u64(seed ^ ((id.0 as u64) << 32)),
            rendezvous,
            boot: serve_rendezvous.then(BootCache::default),
            prober: Prober::default(),
            limiter,
            out: VecDeque::new(),
            events: VecDeque::new(),
            search: None,
            group: None,
            leading: None,
            election: None,
            succession: None,
            inter: InterCache::default(),
            next_remeasure: Timestamp::ZERO,
            next_housekeeping: Timestamp::ZERO,
            malformed: 0,
            unexpected: 0,
            cfg,
        }
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    pub fn group(&self) -> Option<&GroupView> {
        self.group.as_ref()
    }

    pub fn is_leader(&self) -> bool {
        self.leading.is_some()
    }

    pub fn is_joining(&self) -> bool {
        self.search.is_some()
    }

    pub fn inter(&self) -> &InterCache {
        &self.inter
    }

    /// The last measured RTT to `n` (`Some(None)`: it did not answer).
    pub fn rtt_to(&self, n: NodeId) -> Option<Option<u64>> {
        self.prober.cached(n)
    }

    pub fn boot_cache(&self) -> Option<&BootCache> {
        self.boot.as_ref()
    }

    pub fn stats(&self) -> LocalityStats {
        LocalityStats {
            malformed: self.malformed,
            unexpected: self.unexpected,
            measure_answered: self.limiter.answered,
            measure_dropped: self.limiter.dropped,
            probes_sent: self.prober.probes_sent,
        }
    }

    /// Starts looking for a group (L1, L3).
    pub fn start_join(&mut self, now: Timestamp) {
        if self.group.is_some() || self.search.is_some() {
            return;
        }
        self.search = Some(JoinSearch::new(now, self.prober.probes_sent));
        match self.rendezvous.filter(|r| *r != self.id) {
            Some(r) => self.send(r, LocalityMsg::GetBootGroups),
            None => {
                let boot = self
                    .boot
                    .as_mut()
                    .map(|b| b.boot_list(self.cfg.boot_list_len, &mut self.rng))
                    .unwrap_or_default();
                self.on_boot_groups(now, boot);
            }
        }
        self.settle(now);
    }

    /// Outside bytes: decoded, or dropped and counted.
    pub fn handle_bytes(&mut self, now: Timestamp, from: NodeId, bytes: &[u8]) {
        match LocalityMsg::decode(bytes) {
            Ok(m) => self.handle_input(now, from, m),
            Err(_) => self.malformed += 1,
        }
    }

    pub fn handle_input(&mut self, now: Timestamp, from: NodeId, msg: LocalityMsg) {
        if from == self.id {
            self.unexpected += 1;
            return;
        }
        match msg {
            LocalityMsg::GetBootGroups => match self.boot.as_mut() {
                Some(b) => {
                    let groups = b.boot_list(self.cfg.boot_list_len, &mut self.rng);
                    self.send(from, LocalityMsg::BootGroups { groups });
                }
                None => self.unexpected += 1,
            },
            LocalityMsg::BootGroups { groups } => {
                if Some(from) != self.rendezvous {
                    self.unexpected += 1;
                } else if self.search.is_some() {
                    self.on_boot_groups(now, groups);
                } else if self.leading.is_some() {
                    let own = self.group.as_ref().map(|g| g.id);
                    for g in groups.into_iter().take(self.cfg.boot_list_len) {
                        self.inter.learn(g, own, self.cfg.cache_max);
                        if Some(g.group) != own && self.prober.cached(g.leader).is_none() {
                            self.prober.start(now, g.leader);
                        }
                    }
                    self.link_step(now);
                } else {
                    self.unexpected += 1;
                }
            }
            LocalityMsg::Announce { group } => match self.boot.as_mut() {
                Some(b) => b.announce(now, group, from, self.cfg.boot_cache_max),
                None => self.unexpected += 1,
            },
            LocalityMsg::Measure { nonce } => {
                if self.limiter.allow(now, from) {
                    self.send(from, LocalityMsg::MeasureReply { nonce });
                }
            }
            LocalityMsg::MeasureReply { nonce } => {
                self.prober.on_reply(now, from, nonce, &self.cfg)
            }
            LocalityMsg::GetNeighbours => self.on_get_neighbours(from),
            LocalityMsg::Neighbours { group, neighbours } => {
                self.on_neighbours(now, from, group, neighbours)
            }
            LocalityMsg::NotLeader { group, leader } => {
                self.on_not_leader(now, from, group, leader)
            }
            LocalityMsg::Join { group } => self.on_join(now, from, group),
            LocalityMsg::JoinAccepted {
                group,
                term,
                leadership,
                members,
                neighbours,
            } => self.on_join_accepted(now, from, group, term, leadership, members, neighbours),
            LocalityMsg::GetMembers { group } => self.on_get_members(from, group),
            LocalityMsg::Members { group, leader, .. } => self.on_members(group, leader),
            LocalityMsg::Link { group } => self.on_link(now, from, group),
            LocalityMsg::LinkReply {
                group,
                accepted,
                neighbours,
            } => self.on_link_reply(now, from, group, accepted, neighbours),
            LocalityMsg::Alive {
                group,
                term,
                claim_us,
                leadership,
                members,
                neighbours,
            } => self.on_alive(
                now, from, group, term, claim_us, leadership, members, neighbours,
            ),
            LocalityMsg::Here { group } => self.on_here(now, from, group),
            LocalityMsg::NewLeader {
                group,
                round,
                claim_us,
            } => self.on_new_leader(now, from, group, round, claim_us),
            LocalityMsg::MergeInto { group, leader } => {
                self.on_merge_into(now, from, group, leader)
            }
            LocalityMsg::Dissolved { group, into } => self.on_dissolved(now, from, group, into),
        }
        self.settle(now);
    }

    pub fn handle_timeout(&mut self, now: Timestamp) {
        for t in crate::timers::LocalityTimer::TABLE {
            if t.deadline(self).is_some_and(|d| d <= now) {
                t.fire(self, now);
            }
        }
        self.settle(now);
    }

    #[must_use = "a transmit left in the machine is a message never sent"]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }

    #[must_use = "an event left in the machine is never reported"]
    pub fn poll_event(&mut self) -> Option<LocalityEvent> {
        self.events.pop_front()
    }

    #[must_use = "a deadline not armed is a timer that never fires"]
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.earliest_timer()
    }

    pub(crate) fn send(&mut self, to: NodeId, msg: LocalityMsg) {
        if to != self.id {
            self.out.push_back(Transmit { to, msg });
        }
    }

    /// Sends due probes and routes finished measurements until nothing moves.
    pub(crate) fn settle(&mut self, now: Timestamp) {
        loop {
            self.prober.tick(now, &self.cfg);
            let mut moved = false;
            while let Some((to, nonce)) = self.prober.poll_probe() {
                self.send(to, LocalityMsg::Measure { nonce });
            }
            while let Some(m) = self.prober.poll_done() {
                moved = true;
                self.on_measured(now, m);
            }
            if !moved {
                break;
            }
        }
    }

    fn on_measured(&mut self, now: Timestamp, m: Measured) {
        self.remeasured(now, m);
        self.check_succession(now);
        if self.leading.is_some() && self.maybe_merge(now) {
            return;
        }
        if self.search.is_some() {
            self.advance_search(now);
        }
        if self.leading.is_some() {
            self.link_step(now);
        }
    }
}
