//! Merging groups founded at once in one place (beyond seed 004, which has no
//! rule for it): two joiners that search at the same time in a region where no
//! group exists yet both found one. When a leader measures a linked group's
//! leader nearer than `merge_rtt_ms`, the two are one locality; the group with
//! the higher id (both sides agree without asking) merges into the other: its
//! leader tells its members (`MergeInto`) and its linked groups (`Dissolved`),
//! and every member, the leader too, joins the other group directly.

use crate::join::{JoinSearch, Phase, Testing};
use crate::machine::{LocalityEvent, LocalityNode};
use crate::msg::{GroupId, GroupRef, LocalityMsg};
use tiercast_proto::{NodeId, Timestamp};

impl LocalityNode {
    /// Merges this leader's group into a near linked group of lower id, if any.
    pub(crate) fn maybe_merge(&mut self, now: Timestamp) -> bool {
        let Some(own) = self.group.as_ref().map(|g| g.id) else {
            return false;
        };
        if self.leading.is_none() {
            return false;
        }
        let bound = self.cfg.merge_rtt_ms * 1000;
        let near = |l: NodeId, r: Option<u64>| {
            r.or(self.prober.cached(l).flatten())
                .is_some_and(|r| r < bound)
        };
        let linked = self
            .inter
            .links
            .iter()
            .filter(|(g, l)| **g < own && near(l.leader, l.rtt_us))
            .map(|(g, l)| (*g, l.leader));
        let known = self
            .inter
            .known
            .iter()
            .filter(|(g, l)| **g < own && near(**l, None))
            .map(|(g, l)| (*g, *l));
        let target = linked.chain(known).min();
        let Some((into, leader)) = target else {
            return false;
        };
        let lead = self.leading.take().expect("checked above");
        for m in lead.member_seen.keys() {
            self.send(
                *m,
                LocalityMsg::MergeInto {
                    group: into,
                    leader,
                },
            );
        }
        let into_ref = GroupRef {
            group: into,
            leader,
            rtt_us: 0,
        };
        let linked: Vec<NodeId> = self
            .inter
            .links
            .iter()
            .filter(|(g, _)| **g != into)
            .map(|(_, l)| l.leader)
            .collect();
        for l in linked {
            self.send(
                l,
                LocalityMsg::Dissolved {
                    group: own,
                    into: into_ref,
                },
            );
        }
        self.events
            .push_back(LocalityEvent::Merged { group: own, into });
        self.join_directly(now, into, leader);
        true
    }

    /// The lower-id side of a near pair tells the other group it exists (a
    /// link request): that group's leader measures it and merges.
    pub(crate) fn nudge_near_groups(&mut self) {
        let Some(own) = self.group.as_ref().map(|g| g.id) else {
            return;
        };
        let bound = self.cfg.merge_rtt_ms * 1000;
        let near: Vec<NodeId> = self
            .inter
            .known
            .iter()
            .filter(|(g, l)| {
                **g > own && self.prober.cached(**l).flatten().is_some_and(|r| r < bound)
            })
            .map(|(_, l)| *l)
            .collect();
        for l in near {
            self.send(l, LocalityMsg::Link { group: own });
        }
    }

    /// Leaves the current group and joins `group` at `leader` (no test: the
    /// merge decided it); a refusal continues as an ordinary search.
    pub(crate) fn join_directly(&mut self, now: Timestamp, group: GroupId, leader: NodeId) {
        self.group = None;
        self.leading = None;
        self.election = None;
        self.inter.links.clear();
        let mut s = JoinSearch::new(now, self.prober.probes_sent);
        s.awaiting_boot = false;
        s.candidates.insert(group, leader);
        s.current = Some(Testing {
            group,
            leader,
            phase: Phase::Joining,
            deadline: now.plus_millis(self.cfg.request_timeout_ms),
        });
        self.search = Some(s);
        self.send(leader, LocalityMsg::Join { group });
    }

    pub(crate) fn on_merge_into(
        &mut self,
        now: Timestamp,
        from: NodeId,
        group: GroupId,
        leader: NodeId,
    ) {
        let mine = self
            .group
            .as_ref()
            .is_some_and(|g| g.leader == from && self.leading.is_none());
        if !mine || leader == self.id {
            self.unexpected += 1;
            return;
        }
        self.join_directly(now, group, leader);
    }

    pub(crate) fn on_dissolved(
        &mut self,
        now: Timestamp,
        from: NodeId,
        group: GroupId,
        into: GroupRef,
    ) {
        if self.leading.is_none() {
            self.unexpected += 1;
            return;
        }
        if self
            .inter
            .links
            .get(&group)
            .is_some_and(|l| l.leader == from)
        {
            self.inter.links.remove(&group);
            self.events.push_back(LocalityEvent::LinkLost { group });
        }
        self.inter.known.remove(&group);
        let own = self.group.as_ref().map(|g| g.id);
        self.inter.learn(into, own, self.cfg.cache_max);
        self.link_step(now);
    }
}
