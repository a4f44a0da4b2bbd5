//! L5 leaders. The leader keeps the leadership list (≤ 10: itself first, then
//! members in joining order), answers Join and Get Peer Group Members, and
//! sends Alive every 5 s to every member (with its term, the leadership list,
//! the members and the neighbour groups — the members' cache copies, L6);
//! members answer Here, and silent members are dropped. A member that hears no
//! Alive for 10 s presumes the leader gone and moves down the leadership list
//! (the next one takes over); when the list is exhausted the group is
//! leaderless and elects: random back-off, a New Leader claim to every member,
//! the earliest claim (then lowest id) wins; a round without an Alive from its
//! winner starts the next round. Two leaders of one group meet through their
//! Alives and the lower rank (term, then earlier claim, then lower id) steps
//! down, so one leader remains.

use crate::cache::GroupView;
use crate::links::{fresh_leading, LinkSearch};
use crate::machine::{LocalityEvent, LocalityNode, Takeover};
use crate::msg::{GroupId, GroupRef, LocalityMsg};
use rand::Rng;
use std::collections::{BTreeMap, BTreeSet};
use tiercast_proto::{NodeId, Timestamp};

/// A new leader's first re-measure tick (then every `remeasure_interval_ms`).
pub const FIRST_REMEASURE_MS: u64 = 5000;

/// The leader's own state.
#[derive(Clone, Debug)]
pub struct Leading {
    /// Members and when each last answered (the leader itself excluded).
    pub member_seen: BTreeMap<NodeId, Timestamp>,
    pub next_alive: Timestamp,
    pub next_announce: Timestamp,
    pub links: LinkSearch,
}

/// A leaderless group's election round.
#[derive(Clone, Debug)]
pub struct Election {
    pub round: u32,
    /// When this node claims unless it heard a claim first.
    pub claim_at: Option<Timestamp>,
    /// The best claim heard: (claim time, claimant).
    pub best: Option<(u64, NodeId)>,
    pub decide_at: Option<Timestamp>,
}

impl LocalityNode {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn adopt_group(
        &mut self,
        now: Timestamp,
        leader: NodeId,
        group: GroupId,
        term: u32,
        claim_us: u64,
        leadership: Vec<NodeId>,
        members: Vec<NodeId>,
        neighbours: Vec<GroupRef>,
    ) {
        let mut members: BTreeSet<NodeId> = members
            .into_iter()
            .take(self.cfg.max_members_in_alive)
            .collect();
        members.insert(self.id);
        members.insert(leader);
        self.group = Some(GroupView {
            id: group,
            leader,
            term,
            claim_us,
            leadership: leadership
                .into_iter()
                .take(self.cfg.leadership_len)
                .collect(),
            members,
            last_alive: now,
            round: 0,
            successor_wait: false,
        });
        self.copy_neighbours(group, leader, neighbours);
    }

    fn copy_neighbours(&mut self, own: GroupId, leader: NodeId, neighbours: Vec<GroupRef>) {
        if self.leading.is_some() {
            return;
        }
        self.inter.links.clear();
        for n in neighbours.into_iter().take(self.cfg.max_links) {
            if n.group == own || n.leader == leader {
                continue;
            }
            self.inter.links.insert(
                n.group,
                crate::cache::Link::new(n.leader, Some(n.rtt_us as u64), false),
            );
            self.inter.learn(n, Some(own), self.cfg.cache_max);
        }
    }

    /// This node leads its group from now on.
    pub(crate) fn become_leader(&mut self, now: Timestamp, how: Takeover) {
        let Some(g) = self.group.as_mut() else {
            return;
        };
        let old = g.leader;
        if how != Takeover::Founded {
            g.term += 1;
            g.claim_us = match (&self.election, how) {
                (Some(e), Takeover::Election) => e.best.map_or(now.0, |b| b.0),
                _ => now.0,
            };
        }
        g.leader = self.id;
        g.leadership.retain(|n| *n != old && *n != self.id);
        g.leadership.insert(0, self.id);
        g.last_alive = now;
        let mut lead = fresh_leading(now);
        for m in &g.members {
            if *m != self.id && *m != old {
                lead.member_seen.insert(*m, now);
            }
        }
        g.members.remove(&old);
        g.members.insert(self.id);
        self.election = None;
        self.succession = None;
        g.successor_wait = false;
        let (id, term) = (g.id, g.term);
        // Link lengths come from this node's own measurements from now on.
        for l in self.inter.links.values_mut() {
            l.rtt_us = self.prober.cached(l.leader).flatten().or(l.rtt_us);
        }
        self.leading = Some(lead);
        self.fill_leadership();
        self.events.push_back(LocalityEvent::BecameLeader {
            group: id,
            term,
            how,
        });
        // A new group looks again soon (others may have been founded at once).
        self.next_remeasure =
            now.plus_millis(self.cfg.remeasure_interval_ms.min(FIRST_REMEASURE_MS));
        if how != Takeover::Founded {
            self.restore_links();
        }
        self.send_alive(now);
        self.announce(now);
        self.link_step(now);
    }

    /// Keeps the leadership list at its length from the members (join order
    /// is not kept; lowest ids first, deterministic).
    fn fill_leadership(&mut self) {
        let (Some(g), Some(lead)) = (self.group.as_mut(), self.leading.as_ref()) else {
            return;
        };
        g.leadership
            .retain(|n| *n == g.leader || lead.member_seen.contains_key(n));
        for m in lead.member_seen.keys() {
            if g.leadership.len() >= self.cfg.leadership_len {
                break;
            }
            if !g.leadership.contains(m) {
                g.leadership.push(*m);
            }
        }
    }

    pub(crate) fn announce(&mut self, now: Timestamp) {
        let (Some(g), Some(lead)) = (self.group.as_ref(), self.leading.as_mut()) else {
            return;
        };
        lead.next_announce = now.plus_millis(self.cfg.announce_interval_ms);
        let group = g.id;
        if let Some(b) = self.boot.as_mut() {
            b.announce(now, group, self.id, self.cfg.boot_cache_max);
        }
        if let Some(r) = self.rendezvous {
            self.send(r, LocalityMsg::Announce { group });
        }
    }

    /// Alive to every member; silent members dropped first.
    pub(crate) fn send_alive(&mut self, now: Timestamp) {
        let silence_us = self.cfg.alive_interval_ms * 1000 * self.cfg.member_silence_periods as u64;
        let Some(lead) = self.leading.as_mut() else {
            return;
        };
        lead.member_seen
            .retain(|_, at| now.saturating_since(*at) <= silence_us);
        lead.next_alive = now.plus_millis(self.cfg.alive_interval_ms);
        self.fill_leadership();
        let lead = self.leading.as_ref().expect("checked above");
        let g = self.group.as_mut().expect("a leader has a group");
        g.members = lead.member_seen.keys().copied().chain([self.id]).collect();
        let members: Vec<NodeId> = g
            .members
            .iter()
            .copied()
            .take(self.cfg.max_members_in_alive)
            .collect();
        let msg = LocalityMsg::Alive {
            group: g.id,
            term: g.term,
            claim_us: g.claim_us,
            leadership: g.leadership.clone(),
            members,
            neighbours: self.inter.refs(),
        };
        let to: Vec<NodeId> = lead.member_seen.keys().copied().collect();
        for m in to {
            self.send(m, msg.clone());
        }
    }

    pub(crate) fn on_join(&mut self, now: Timestamp, from: NodeId, group: GroupId) {
        let Some(g) = self.group.as_ref() else {
            let msg = LocalityMsg::NotLeader {
                group: None,
                leader: None,
            };
            self.send(from, msg);
            return;
        };
        if self.leading.is_none() || g.id != group {
            let msg = LocalityMsg::NotLeader {
                group: Some(g.id),
                leader: Some(g.leader),
            };
            self.send(from, msg);
            return;
        }
        let lead = self.leading.as_mut().expect("checked above");
        lead.member_seen.insert(from, now);
        self.fill_leadership();
        let g = self.group.as_mut().expect("checked above");
        g.members.insert(from);
        let msg = LocalityMsg::JoinAccepted {
            group: g.id,
            term: g.term,
            leadership: g.leadership.clone(),
            members: g
                .members
                .iter()
                .copied()
                .take(self.cfg.max_members_in_alive)
                .collect(),
            neighbours: self.inter.refs(),
        };
        self.send(from, msg);
    }

    pub(crate) fn on_get_members(&mut self, from: NodeId, group: GroupId) {
        if let Some(g) = self.group.as_ref().filter(|g| g.id == group) {
            let msg = LocalityMsg::Members {
                group,
                leader: g.leader,
                leadership: g.leadership.clone(),
            };
            self.send(from, msg);
        }
    }

    /// A member names another leader of this leader's group: that leader
    /// gets this one's Alive, and the lower rank of the two steps down.
    pub(crate) fn on_members(&mut self, group: GroupId, leader: NodeId) {
        let mine = self.group.as_ref().is_some_and(|g| g.id == group);
        if mine && self.leading.is_some() && leader != self.id {
            self.send_alive_to(leader);
        }
    }

    pub(crate) fn on_here(&mut self, now: Timestamp, from: NodeId, group: GroupId) {
        let own = self.group.as_ref().map(|g| g.id);
        if own != Some(group) {
            self.unexpected += 1;
            return;
        }
        match self.leading.as_mut() {
            Some(lead) => {
                let new = lead.member_seen.insert(from, now).is_none();
                if new {
                    self.fill_leadership();
                    if let Some(g) = self.group.as_mut() {
                        g.members.insert(from);
                    }
                }
            }
            // A member moving down the list reached this node early: it will
            // be in the member list this node takes over with.
            None => {
                if let Some(g) = self.group.as_mut() {
                    g.members.insert(from);
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_alive(
        &mut self,
        now: Timestamp,
        from: NodeId,
        group: GroupId,
        term: u32,
        claim_us: u64,
        leadership: Vec<NodeId>,
        members: Vec<NodeId>,
        neighbours: Vec<GroupRef>,
    ) {
        let Some(g) = self.group.as_ref() else {
            self.unexpected += 1;
            return;
        };
        if g.id != group {
            self.unexpected += 1;
            return;
        }
        let from_leader = from == g.leader && self.leading.is_none();
        if !from_leader && !g.outranked_by(term, claim_us, from) {
            if self.leading.is_some() {
                // Another leader of this group ranks lower: tell it so.
                self.send_alive_to(from);
            } else if from != g.leader {
                // A stale leader (it was presumed gone but lives): name the
                // current one, whose Alive will make it step down.
                let msg = LocalityMsg::Members {
                    group,
                    leader: g.leader,
                    leadership: g.leadership.clone(),
                };
                self.send(from, msg);
            }
            return;
        }
        let stepped_down = self.leading.take().is_some();
        if stepped_down || from != g.leader {
            self.events.push_back(LocalityEvent::LeaderChanged {
                group,
                leader: from,
            });
        }
        let round = g.round;
        self.election = None;
        self.succession = None;
        self.adopt_group(
            now, from, group, term, claim_us, leadership, members, neighbours,
        );
        if let Some(g) = self.group.as_mut() {
            g.round = round;
        }
        self.send(from, LocalityMsg::Here { group });
    }

    fn send_alive_to(&mut self, to: NodeId) {
        let Some(g) = self.group.as_ref() else {
            return;
        };
        let msg = LocalityMsg::Alive {
            group: g.id,
            term: g.term,
            claim_us: g.claim_us,
            leadership: g.leadership.clone(),
            members: Vec::new(),
            neighbours: self.inter.refs(),
        };
        self.send(to, msg);
    }

    /// Member: no Alive for `leader_timeout_ms`.
    /// Member: no Alive for `leader_timeout_ms`. The first time, the next
    /// one in the leadership list is followed; a list member measures
    /// everyone above it and takes over when none answers (so a dead head of
    /// the list costs about a second, not a timeout each). The second time
    /// (the list never spoke), the group is leaderless: an election.
    pub(crate) fn leader_silent(&mut self, now: Timestamp) {
        let Some(g) = self.group.as_mut() else {
            return;
        };
        let gone = g.leader;
        g.leadership.retain(|n| *n != gone);
        g.members.remove(&gone);
        let group = g.id;
        self.events.push_back(LocalityEvent::LeaderPresumedGone {
            group,
            leader: gone,
        });
        let g = self.group.as_mut().expect("checked above");
        if g.successor_wait {
            g.successor_wait = false;
            g.leadership.clear();
            self.succession = None;
            let round = g.round + 1;
            self.start_election(now, round);
            return;
        }
        g.successor_wait = true;
        g.last_alive = now;
        let pos = g.leadership.iter().position(|n| *n == self.id);
        match (pos, g.leadership.first().copied()) {
            (Some(0), _) => self.become_leader(now, Takeover::Succession),
            (_, Some(next)) => {
                g.leader = next;
                if let Some(p) = pos {
                    let above = g.leadership[..p].to_vec();
                    for a in &above {
                        self.prober.start(now, *a);
                    }
                    self.succession = Some((now, above));
                }
                self.events.push_back(LocalityEvent::LeaderChanged {
                    group,
                    leader: next,
                });
                self.send(next, LocalityMsg::Here { group });
            }
            (_, None) => {
                let round = g.round + 1;
                self.start_election(now, round);
            }
        }
    }

    /// A list member's check of those above it: all unreachable → it leads.
    pub(crate) fn check_succession(&mut self, now: Timestamp) {
        let Some((since, above)) = self.succession.as_ref() else {
            return;
        };
        let results: Vec<Option<Option<u64>>> = above
            .iter()
            .map(|a| self.prober.fresh(*a, *since))
            .collect();
        if results.iter().any(|r| r.is_none()) {
            return;
        }
        let (_, above) = self.succession.take().expect("checked above");
        let waiting = self
            .group
            .as_ref()
            .is_some_and(|g| g.successor_wait && self.leading.is_none());
        if waiting && results.iter().all(|r| r.is_none_or(|x| x.is_none())) {
            if let Some(g) = self.group.as_mut() {
                g.leadership.retain(|n| !above.contains(n));
                g.leader = above[0];
            }
            self.become_leader(now, Takeover::Succession);
        }
    }

    fn start_election(&mut self, now: Timestamp, round: u32) {
        let Some(g) = self.group.as_mut() else {
            return;
        };
        g.round = round;
        let backoff = self
            .rng
            .gen_range(0..=self.cfg.election_backoff_max_ms * 1000);
        self.election = Some(Election {
            round,
            claim_at: Some(Timestamp(now.0 + backoff)),
            best: None,
            decide_at: None,
        });
        self.events
            .push_back(LocalityEvent::ElectionStarted { group: g.id, round });
    }

    /// The election's timers: claim after the back-off, decide after settling.
    pub(crate) fn election_tick(&mut self, now: Timestamp) {
        let Some(e) = self.election.as_mut() else {
            return;
        };
        let Some(g) = self.group.as_ref() else {
            return;
        };
        if e.claim_at.is_some_and(|t| t <= now) {
            e.claim_at = None;
            if e.best.is_none() {
                e.best = Some((now.0, self.id));
                e.decide_at = Some(now.plus_millis(self.cfg.election_settle_ms));
                let msg = LocalityMsg::NewLeader {
                    group: g.id,
                    round: e.round,
                    claim_us: now.0,
                };
                let to: Vec<NodeId> = g.members.iter().copied().collect();
                for m in to {
                    self.send(m, msg.clone());
                }
            }
        }
        let Some(e) = self.election.as_ref() else {
            return;
        };
        if e.decide_at.is_some_and(|t| t <= now) {
            let (claim, winner) = e.best.expect("a decision follows a claim");
            if winner == self.id {
                self.become_leader(now, Takeover::Election);
            } else {
                let g = self.group.as_mut().expect("checked above");
                g.leader = winner;
                g.claim_us = claim;
                // The winner is the whole list: if it never speaks, the next
                // presumption starts the next round.
                g.leadership = vec![winner];
                g.last_alive = now;
                g.successor_wait = true;
                let group = g.id;
                self.election = None;
                self.events.push_back(LocalityEvent::LeaderChanged {
                    group,
                    leader: winner,
                });
            }
        }
    }

    pub(crate) fn on_new_leader(
        &mut self,
        now: Timestamp,
        from: NodeId,
        group: GroupId,
        round: u32,
        claim_us: u64,
    ) {
        let Some(g) = self.group.as_mut() else {
            self.unexpected += 1;
            return;
        };
        if g.id != group || round < g.round {
            return;
        }
        if self.leading.is_some() {
            // A leader is here: the claimant learns of it.
            self.send_alive_to(from);
            return;
        }
        g.members.insert(from);
        if (round > g.round || self.election.is_none())
            && self.election.as_ref().is_none_or(|e| e.round < round)
        {
            // A claim of this round after this node decided: it can only
            // beat the decided winner by an earlier claim.
            let decided =
                (g.round == round && self.election.is_none()).then_some((g.claim_us, g.leader));
            if let Some(d) = decided {
                if (claim_us, from) < d {
                    g.leader = from;
                    g.claim_us = claim_us;
                    g.leadership = vec![from];
                    g.last_alive = now;
                    self.events.push_back(LocalityEvent::LeaderChanged {
                        group,
                        leader: from,
                    });
                }
                return;
            }
            g.round = round;
            self.election = Some(Election {
                round,
                claim_at: None,
                best: None,
                decide_at: None,
            });
        }
        let settle = self.cfg.election_settle_ms;
        let e = self.election.as_mut().expect("set above");
        e.claim_at = None;
        if e.best.is_none_or(|b| (claim_us, from) < b) {
            e.best = Some((claim_us, from));
        }
        if e.decide_at.is_none() {
            e.decide_at = Some(now.plus_millis(settle));
        }
    }
}
