//! L4 a new group and its inter-group links: a fresh random id, the founder
//! leads; a link to the nearest group known, then to the nearest of the
//! neighbours' neighbours (each linked group's reply lists its own) until
//! `target_links` or `link_bound_ms`; one random long link against
//! partitions. Lost links are restored at each re-measure tick (L6). A leader
//! asked for a link stores the asker with its *own* measurement of it.

use crate::cache::Link;
use crate::join::JoinSearch;
use crate::leader::Leading;
use crate::machine::{LocalityEvent, LocalityNode, Takeover};
use crate::msg::{GroupId, GroupRef, LocalityMsg};
use rand::seq::IteratorRandom;
use rand::Rng;
use std::collections::BTreeSet;
use tiercast_proto::{NodeId, Timestamp};

/// A link request in flight.
#[derive(Clone, Copy, Debug)]
pub struct PendingLink {
    pub group: GroupId,
    pub leader: NodeId,
    pub long: bool,
    /// A farther near link this one replaces once accepted.
    pub replaces: Option<GroupId>,
    pub deadline: Timestamp,
}

#[derive(Clone, Debug, Default)]
pub struct LinkSearch {
    pub pending: Option<PendingLink>,
    /// Groups asked since the last re-measure tick.
    pub tried: BTreeSet<GroupId>,
}

impl LocalityNode {
    /// Founds a new group (the search failed or found nothing).
    pub(crate) fn found(&mut self, now: Timestamp, s: JoinSearch) {
        let id = GroupId(self.rng.gen());
        for (g, l) in &s.candidates {
            let r = GroupRef {
                group: *g,
                leader: *l,
                rtt_us: 0,
            };
            self.inter.learn(r, Some(id), self.cfg.cache_max);
        }
        self.group = Some(crate::cache::GroupView {
            id,
            leader: self.id,
            term: 1,
            claim_us: now.0,
            leadership: vec![self.id],
            members: [self.id].into(),
            last_alive: now,
            round: 0,
            successor_wait: false,
        });
        self.events.push_back(LocalityEvent::Founded {
            group: id,
            groups_tested: s.tested.len() as u32,
            probes: self.prober.probes_sent - s.probes_at_start,
            elapsed_us: now.saturating_since(s.started),
        });
        self.become_leader(now, Takeover::Founded);
    }

    /// Asks for the next link if one is due (nearest first, then the long one).
    pub(crate) fn link_step(&mut self, now: Timestamp) {
        let Some(own) = self.group.as_ref().map(|g| g.id) else {
            return;
        };
        let Some(lead) = self.leading.as_ref() else {
            return;
        };
        if lead.links.pending.is_some() {
            return;
        }
        let near = self.inter.links.values().filter(|l| !l.long).count();
        let has_long = self.inter.links.values().any(|l| l.long);
        let open: Vec<(GroupId, NodeId)> = self
            .inter
            .known
            .iter()
            .filter(|(g, l)| {
                **g != own
                    && **l != self.id
                    && !self.inter.links.contains_key(g)
                    && !lead.links.tried.contains(g)
            })
            .map(|(g, l)| (*g, *l))
            .collect();
        if near >= self.cfg.target_links && has_long {
            self.better_link(now, own, &open);
            return;
        }
        let mut pick: Option<(GroupId, NodeId, bool)> = None;
        if near < self.cfg.target_links {
            let mut waiting = false;
            let mut best: Option<(u64, GroupId, NodeId)> = None;
            for (g, l) in &open {
                match self.prober.cached(*l) {
                    None => {
                        waiting = true;
                        self.prober.start(now, *l);
                    }
                    Some(Some(r)) if r <= self.cfg.link_bound_ms * 1000 => {
                        if best.is_none_or(|b| (r, *g) < (b.0, b.1)) {
                            best = Some((r, *g, *l));
                        }
                    }
                    Some(_) => {}
                }
                if self.prober.is_running(*l) {
                    waiting = true;
                }
            }
            if waiting {
                // Nearest first: every candidate measured before one is picked.
                return;
            }
            pick = best.map(|(_, g, l)| (g, l, false));
        }
        if pick.is_none() && !has_long {
            pick = open
                .iter()
                .choose(&mut self.rng)
                .map(|(g, l)| (*g, *l, true));
        }
        let Some((g, l, long)) = pick else {
            return;
        };
        let lead = self.leading.as_mut().expect("checked above");
        lead.links.tried.insert(g);
        lead.links.pending = Some(PendingLink {
            group: g,
            leader: l,
            long,
            replaces: None,
            deadline: now.plus_millis(self.cfg.request_timeout_ms),
        });
        self.send(l, LocalityMsg::Link { group: own });
    }

    /// At the target already: a measured candidate clearly nearer (by a
    /// fifth) than the farthest near link replaces it once accepted, so a
    /// group that started with far links (it was first in its part of the
    /// world) converges on its nearest neighbours as they appear.
    fn better_link(&mut self, now: Timestamp, own: GroupId, open: &[(GroupId, NodeId)]) {
        let worst = self
            .inter
            .links
            .iter()
            .filter(|(_, l)| !l.long)
            .filter_map(|(g, l)| l.rtt_us.map(|r| (r, *g)))
            .max();
        let Some((worst_rtt, worst_group)) = worst else {
            return;
        };
        let best = open
            .iter()
            .filter_map(|(g, l)| self.prober.cached(*l).flatten().map(|r| (r, *g, *l)))
            .min();
        let Some((rtt, g, l)) = best else {
            return;
        };
        if rtt * 5 >= worst_rtt * 4 {
            return;
        }
        let lead = self.leading.as_mut().expect("a leader");
        lead.links.tried.insert(g);
        lead.links.pending = Some(PendingLink {
            group: g,
            leader: l,
            long: false,
            replaces: Some(worst_group),
            deadline: now.plus_millis(self.cfg.request_timeout_ms),
        });
        self.send(l, LocalityMsg::Link { group: own });
    }

    pub(crate) fn link_timeout(&mut self, now: Timestamp) {
        if let Some(lead) = self.leading.as_mut() {
            if lead.links.pending.is_some_and(|p| p.deadline <= now) {
                lead.links.pending = None;
                self.link_step(now);
            }
        }
    }

    pub(crate) fn on_link(&mut self, now: Timestamp, from: NodeId, group: GroupId) {
        let Some(g) = self.group.as_ref() else {
            self.send(
                from,
                LocalityMsg::NotLeader {
                    group: None,
                    leader: None,
                },
            );
            return;
        };
        if self.leading.is_none() {
            let msg = LocalityMsg::NotLeader {
                group: Some(g.id),
                leader: Some(g.leader),
            };
            self.send(from, msg);
            return;
        }
        let own = g.id;
        if group == own {
            self.unexpected += 1;
            return;
        }
        let room = self.inter.links.len() < self.cfg.max_links;
        let accepted = match self.inter.links.get_mut(&group) {
            Some(l) => {
                // A new leader of a linked group restores the link.
                l.leader = from;
                l.failures = 0;
                true
            }
            None if room => {
                self.inter.links.insert(
                    group,
                    Link::new(from, self.prober.cached(from).flatten(), false),
                );
                self.events
                    .push_back(LocalityEvent::LinkAdded { group, long: false });
                true
            }
            None => false,
        };
        self.inter.known.insert(group, from);
        // Measured even when refused: a near asker may be a group to merge with.
        if (accepted || self.prober.cached(from).is_none()) && !self.prober.is_running(from) {
            self.prober.start(now, from);
        }
        let neighbours = self.inter.refs();
        self.send(
            from,
            LocalityMsg::LinkReply {
                group: own,
                accepted,
                neighbours,
            },
        );
        self.maybe_merge(now);
    }

    pub(crate) fn on_link_reply(
        &mut self,
        now: Timestamp,
        from: NodeId,
        group: GroupId,
        accepted: bool,
        neighbours: Vec<GroupRef>,
    ) {
        let own = self.group.as_ref().map(|g| g.id);
        let Some(lead) = self.leading.as_mut() else {
            self.unexpected += 1;
            return;
        };
        let pending = match lead.links.pending {
            Some(p) if p.leader == from => p,
            _ => {
                // A restore request's reply (a new leader re-linking): keep it.
                if accepted {
                    if let Some(l) = self.inter.links.get_mut(&group) {
                        l.leader = from;
                    }
                }
                return;
            }
        };
        lead.links.pending = None;
        if accepted && Some(group) != own {
            self.inter.links.insert(
                group,
                Link::new(from, self.prober.cached(from).flatten(), pending.long),
            );
            self.events.push_back(LocalityEvent::LinkAdded {
                group,
                long: pending.long,
            });
            if let Some(old) = pending.replaces.filter(|o| *o != group) {
                self.inter.links.remove(&old);
            }
        }
        for n in neighbours.into_iter().take(self.cfg.max_links * 2) {
            self.inter.learn(n, own, self.cfg.cache_max);
        }
        if self.maybe_merge(now) {
            return;
        }
        self.link_step(now);
    }

    pub(crate) fn link_not_leader(
        &mut self,
        now: Timestamp,
        from: NodeId,
        group: Option<GroupId>,
        leader: Option<NodeId>,
    ) {
        let Some(lead) = self.leading.as_mut() else {
            self.unexpected += 1;
            return;
        };
        let Some(p) = lead.links.pending.filter(|p| p.leader == from) else {
            // A linked group's leader no longer leads it: the link is lost.
            let lost: Vec<GroupId> = self
                .inter
                .links
                .iter()
                .filter(|(_, l)| l.leader == from)
                .map(|(g, _)| *g)
                .collect();
            for g in lost {
                self.inter.links.remove(&g);
                self.inter.known.remove(&g);
                self.events.push_back(LocalityEvent::LinkLost { group: g });
            }
            if let (Some(g), Some(l)) = (group, leader) {
                if l != from && l != self.id {
                    self.inter.known.insert(g, l);
                }
            }
            self.link_step(now);
            return;
        };
        lead.links.pending = None;
        self.inter.known.remove(&p.group);
        if let (Some(g), Some(l)) = (group, leader) {
            if l != from {
                lead.links.tried.remove(&g);
                self.inter.known.insert(g, l);
            }
        }
        self.link_step(now);
    }

    /// A new leader asks every linked group's leader to keep the link (L5).
    pub(crate) fn restore_links(&mut self) {
        let Some(own) = self.group.as_ref().map(|g| g.id) else {
            return;
        };
        let leaders: Vec<NodeId> = self.inter.links.values().map(|l| l.leader).collect();
        for l in leaders {
            self.send(l, LocalityMsg::Link { group: own });
        }
    }
}

/// The leader state a founder starts with.
pub(crate) fn fresh_leading(now: Timestamp) -> Leading {
    Leading {
        member_seen: Default::default(),
        next_alive: now,
        next_announce: now,
        links: LinkSearch::default(),
    }
}
