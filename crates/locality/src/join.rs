//! L3 join by the locality test. From the boot list (L1), the joiner measures
//! every candidate group's leader (L2), picks the nearest untested one, asks it
//! for its neighbour groups and the distances it measured to them, measures
//! those itself, and joins when every |supplied − measured| is under the
//! tolerance (10 ms) and its own RTT to the leader is under
//! `max_leader_rtt_ms`; else the rejected group's neighbours join the candidate
//! set and the nearest untested one is next. After 10 groups or 10 s it founds
//! a new group (L4) linked to the nearest group it knows.

use crate::config::LocalityConfig;
use crate::machine::{LocalityEvent, LocalityNode};
use crate::msg::{GroupId, GroupRef, LocalityMsg};
use std::collections::{BTreeMap, BTreeSet};
use tiercast_proto::{NodeId, Timestamp};

/// Why a candidate group passed or failed the test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    LeaderUnreachable,
    LeaderTooFar {
        rtt_us: u64,
    },
    Differs {
        group: GroupId,
        supplied_us: u64,
        measured_us: u64,
    },
}

/// The locality test (seed 004 step 1014). `measured(leader)` is the joiner's
/// own RTT to a neighbour's leader (`None` unreachable: that neighbour is
/// skipped — it can neither pass nor fail anyone).
pub fn locality_test(
    leader_rtt_us: Option<u64>,
    supplied: &[GroupRef],
    measured: impl Fn(NodeId) -> Option<u64>,
    cfg: &LocalityConfig,
) -> Verdict {
    let Some(direct) = leader_rtt_us else {
        return Verdict::LeaderUnreachable;
    };
    if direct >= cfg.max_leader_rtt_ms * 1000 {
        return Verdict::LeaderTooFar { rtt_us: direct };
    }
    for n in supplied {
        if let Some(m) = measured(n.leader) {
            if m.abs_diff(n.rtt_us as u64) >= cfg.tolerance_ms * 1000 {
                return Verdict::Differs {
                    group: n.group,
                    supplied_us: n.rtt_us as u64,
                    measured_us: m,
                };
            }
        }
    }
    Verdict::Pass
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    AskNeighbours,
    Measuring(Vec<GroupRef>),
    Joining,
}

#[derive(Clone, Debug)]
pub(crate) struct Testing {
    pub group: GroupId,
    pub leader: NodeId,
    pub phase: Phase,
    pub deadline: Timestamp,
}

#[derive(Clone, Debug)]
pub struct JoinSearch {
    pub(crate) started: Timestamp,
    pub(crate) probes_at_start: u64,
    pub(crate) awaiting_boot: bool,
    pub(crate) candidates: BTreeMap<GroupId, NodeId>,
    pub(crate) tested: BTreeSet<GroupId>,
    pub(crate) current: Option<Testing>,
    /// Last verdicts (for tests and logs), bounded by the groups-tested limit.
    pub verdicts: Vec<(GroupId, Verdict)>,
}

impl JoinSearch {
    pub(crate) fn new(now: Timestamp, probes: u64) -> Self {
        JoinSearch {
            started: now,
            probes_at_start: probes,
            awaiting_boot: true,
            candidates: BTreeMap::new(),
            tested: BTreeSet::new(),
            current: None,
            verdicts: Vec::new(),
        }
    }

    pub(crate) fn deadline(&self, cfg: &LocalityConfig) -> Timestamp {
        let limit = self.started.plus_millis(cfg.search_limit_ms);
        match &self.current {
            Some(c) if c.phase == Phase::Joining => c.deadline,
            Some(c) if c.phase == Phase::AskNeighbours => c.deadline.min(limit),
            _ => limit,
        }
    }
}

impl LocalityNode {
    pub(crate) fn on_boot_groups(&mut self, now: Timestamp, groups: Vec<GroupRef>) {
        let Some(s) = self.search.as_mut() else {
            return;
        };
        if !s.awaiting_boot {
            return;
        }
        s.awaiting_boot = false;
        for g in groups.iter().take(self.cfg.boot_list_len) {
            s.candidates.insert(g.group, g.leader);
        }
        self.advance_search(now);
    }

    fn measured(&self, leader: NodeId) -> Option<Option<u64>> {
        if self.prober.is_running(leader) {
            None
        } else {
            self.prober.cached(leader)
        }
    }

    /// Moves the search on as far as the measurements allow.
    pub(crate) fn advance_search(&mut self, now: Timestamp) {
        let Some(mut s) = self.search.take() else {
            return;
        };
        let over_time = now.saturating_since(s.started) >= self.cfg.search_limit_ms * 1000;
        let joining = s
            .current
            .as_ref()
            .is_some_and(|c| c.phase == Phase::Joining);
        if over_time && !joining {
            s.current = None;
            self.found(now, s);
            return;
        }
        if s.awaiting_boot {
            self.search = Some(s);
            return;
        }
        if let Some(cur) = s.current.clone() {
            match &cur.phase {
                Phase::Measuring(list) => {
                    let pending = list
                        .iter()
                        .map(|n| n.leader)
                        .chain([cur.leader])
                        .any(|l| self.measured(l).is_none());
                    if pending {
                        self.search = Some(s);
                        return;
                    }
                    let leader_rtt = self.measured(cur.leader).flatten();
                    let v =
                        locality_test(leader_rtt, list, |l| self.measured(l).flatten(), &self.cfg);
                    s.verdicts.push((cur.group, v));
                    if v == Verdict::Pass {
                        self.send(cur.leader, LocalityMsg::Join { group: cur.group });
                        s.current = Some(Testing {
                            phase: Phase::Joining,
                            deadline: now.plus_millis(self.cfg.request_timeout_ms),
                            ..cur
                        });
                        self.search = Some(s);
                        return;
                    }
                    s.tested.insert(cur.group);
                    s.current = None;
                }
                Phase::AskNeighbours | Phase::Joining => {
                    if now < cur.deadline {
                        self.search = Some(s);
                        return;
                    }
                    s.tested.insert(cur.group);
                    s.current = None;
                }
            }
        }
        let out_of_budget = s.tested.len() as u32 >= self.cfg.max_groups_tested
            || now.saturating_since(s.started) >= self.cfg.search_limit_ms * 1000;
        if !out_of_budget {
            let mut waiting = false;
            let mut best: Option<(u64, GroupId, NodeId)> = None;
            for (g, l) in &s.candidates {
                if s.tested.contains(g) {
                    continue;
                }
                match self.measured(*l) {
                    None => {
                        waiting = true;
                        if !self.prober.is_running(*l) {
                            self.prober.start(now, *l);
                        }
                    }
                    Some(Some(rtt)) => {
                        if best.is_none_or(|b| (rtt, *g) < (b.0, b.1)) {
                            best = Some((rtt, *g, *l));
                        }
                    }
                    Some(None) => {}
                }
            }
            if waiting {
                self.search = Some(s);
                return;
            }
            if let Some((_, g, l)) = best {
                self.send(l, LocalityMsg::GetNeighbours);
                s.current = Some(Testing {
                    group: g,
                    leader: l,
                    phase: Phase::AskNeighbours,
                    deadline: now.plus_millis(self.cfg.request_timeout_ms),
                });
                self.search = Some(s);
                return;
            }
        }
        self.found(now, s);
    }

    pub(crate) fn on_get_neighbours(&mut self, from: NodeId) {
        match (&self.group, self.leading.is_some()) {
            (Some(g), true) => {
                let msg = LocalityMsg::Neighbours {
                    group: g.id,
                    neighbours: self.inter.refs(),
                };
                self.send(from, msg);
            }
            (g, _) => {
                let msg = LocalityMsg::NotLeader {
                    group: g.as_ref().map(|g| g.id),
                    leader: g.as_ref().map(|g| g.leader),
                };
                self.send(from, msg);
            }
        }
    }

    pub(crate) fn on_neighbours(
        &mut self,
        now: Timestamp,
        from: NodeId,
        group: GroupId,
        neighbours: Vec<GroupRef>,
    ) {
        let own = self.group.as_ref().map(|g| g.id);
        let max = self.cfg.cache_max;
        let Some(s) = self.search.as_mut() else {
            self.unexpected += 1;
            return;
        };
        let Some(cur) = s.current.as_mut() else {
            self.unexpected += 1;
            return;
        };
        if cur.leader != from || cur.phase != Phase::AskNeighbours {
            self.unexpected += 1;
            return;
        }
        let list: Vec<GroupRef> = neighbours
            .into_iter()
            .filter(|n| n.group != group && n.leader != self.id)
            // A group lists at most its links: a longer list would make the
            // joiner probe for whoever sent it.
            .take(self.cfg.max_links * 2)
            .collect();
        cur.group = group;
        cur.phase = Phase::Measuring(list.clone());
        for n in &list {
            if !s.tested.contains(&n.group) && s.candidates.len() < max {
                s.candidates.entry(n.group).or_insert(n.leader);
            }
            self.inter.learn(*n, own, max);
            if self.prober.cached(n.leader).is_none() {
                self.prober.start(now, n.leader);
            }
        }
        self.advance_search(now);
    }

    pub(crate) fn on_not_leader(
        &mut self,
        now: Timestamp,
        from: NodeId,
        group: Option<GroupId>,
        leader: Option<NodeId>,
    ) {
        if let Some(s) = self.search.as_mut() {
            if let Some(cur) = s.current.as_mut() {
                if cur.leader == from {
                    s.candidates.remove(&cur.group);
                    // The group's real leader is a new candidate (once).
                    if let (Some(g), Some(l)) = (group, leader) {
                        if l != from && l != self.id && !s.tested.contains(&g) {
                            s.candidates.insert(g, l);
                        }
                    }
                    s.tested.insert(cur.group);
                    s.current = None;
                    self.advance_search(now);
                    return;
                }
            }
        }
        self.link_not_leader(now, from, group, leader);
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_join_accepted(
        &mut self,
        now: Timestamp,
        from: NodeId,
        group: GroupId,
        term: u32,
        leadership: Vec<NodeId>,
        members: Vec<NodeId>,
        neighbours: Vec<GroupRef>,
    ) {
        let joining = self
            .search
            .as_ref()
            .and_then(|s| s.current.as_ref())
            .is_some_and(|c| c.leader == from && c.phase == Phase::Joining);
        if !joining {
            self.unexpected += 1;
            return;
        }
        let s = self.search.take().expect("checked above");
        self.adopt_group(now, from, group, term, 0, leadership, members, neighbours);
        self.events.push_back(LocalityEvent::Joined {
            group,
            leader: from,
            groups_tested: s.tested.len() as u32 + 1,
            probes: self.prober.probes_sent - s.probes_at_start,
            elapsed_us: now.saturating_since(s.started),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(g: u64, rtt_ms: u32) -> GroupRef {
        GroupRef {
            group: GroupId(g),
            leader: NodeId(g as u32),
            rtt_us: rtt_ms * 1000,
        }
    }

    #[test]
    fn passes_within_tolerance_fails_beyond() {
        let cfg = LocalityConfig::default();
        let supplied = [n(1, 40), n(2, 90)];
        let near = |l: NodeId| Some(if l.0 == 1 { 45_000 } else { 85_500 });
        assert_eq!(
            locality_test(Some(5000), &supplied, near, &cfg),
            Verdict::Pass
        );
        let far = |l: NodeId| Some(if l.0 == 1 { 45_000 } else { 100_000 });
        assert!(matches!(
            locality_test(Some(5000), &supplied, far, &cfg),
            Verdict::Differs {
                group: GroupId(2),
                ..
            }
        ));
        assert_eq!(
            locality_test(None, &supplied, near, &cfg),
            Verdict::LeaderUnreachable
        );
    }

    /// Issue 14 Must show 4: a leader that reports false distances — copies of
    /// what a far joiner would measure — cannot pull that joiner into its group:
    /// the joiner's own RTT to the leader stays beyond the bound, and only
    /// its own measurements are compared.
    #[test]
    fn false_distances_cannot_pull_a_far_node_in() {
        let cfg = LocalityConfig::default();
        let joiner_sees = |l: NodeId| Some(l.0 as u64 * 1000);
        let forged = [n(30, 30), n(70, 70)];
        let v = locality_test(Some(80_000), &forged, joiner_sees, &cfg);
        assert_eq!(v, Verdict::LeaderTooFar { rtt_us: 80_000 });
        // The same group, near, passes: the forgery gains nothing the truth would not.
        assert_eq!(
            locality_test(Some(4000), &forged, joiner_sees, &cfg),
            Verdict::Pass
        );
    }
}
