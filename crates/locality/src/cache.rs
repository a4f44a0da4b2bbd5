//! L6 caches: the own group (leader, term, leadership list, members — the
//! leader's authoritative copy, every member's copy from Alive) and the
//! inter-group cache (linked neighbour groups with their measured RTT; other
//! known groups as candidates for new links). The leader re-measures its
//! neighbours every `remeasure_interval_ms`; two failed measurements in a row
//! mean the link is lost (L4 then restores the count).

use crate::msg::{GroupId, GroupRef};
use std::collections::{BTreeMap, BTreeSet};
use tiercast_proto::{NodeId, Timestamp};

/// The intra-group cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupView {
    pub id: GroupId,
    pub leader: NodeId,
    pub term: u32,
    /// When the leader claimed leadership (ties between equal terms).
    pub claim_us: u64,
    pub leadership: Vec<NodeId>,
    pub members: BTreeSet<NodeId>,
    /// Member: when the leader was last heard of (or a successor adopted).
    pub last_alive: Timestamp,
    /// Last election round seen.
    pub round: u32,
    /// Member: the leader was presumed gone once and the list is being
    /// waited on; the next silence starts an election.
    pub successor_wait: bool,
}

impl GroupView {
    /// Whether a leader `(term, claim, id)` outranks the one this view holds.
    pub fn outranked_by(&self, term: u32, claim_us: u64, id: NodeId) -> bool {
        (term, std::cmp::Reverse((claim_us, id)))
            > (self.term, std::cmp::Reverse((self.claim_us, self.leader)))
    }
}

/// A link to a neighbour group (between leaders).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    pub leader: NodeId,
    /// As measured by this node (never a figure someone reported).
    pub rtt_us: Option<u64>,
    /// The random long link against partitions.
    pub long: bool,
    pub failures: u8,
    /// The last [`RECENT`] measurements (µs, 0 = none): `rtt_us` is their
    /// minimum, so one inflated measurement does not move the figure a
    /// joiner compares against.
    pub recent: [u64; RECENT],
}

/// Measurements a link's RTT is the minimum of.
pub const RECENT: usize = 3;

impl Link {
    pub fn new(leader: NodeId, rtt_us: Option<u64>, long: bool) -> Self {
        let mut recent = [0; RECENT];
        recent[0] = rtt_us.unwrap_or(0);
        Link {
            leader,
            rtt_us,
            long,
            failures: 0,
            recent,
        }
    }

    /// A new measurement: the oldest one drops out.
    pub fn measured(&mut self, rtt_us: u64) {
        self.recent.rotate_right(1);
        self.recent[0] = rtt_us.max(1);
        self.rtt_us = self.recent.iter().filter(|r| **r > 0).min().copied();
        self.failures = 0;
    }
}

/// Consecutive failed re-measurements before a link is lost.
pub const LINK_FAILURES_LOST: u8 = 2;

#[derive(Clone, Debug, Default)]
pub struct InterCache {
    pub links: BTreeMap<GroupId, Link>,
    /// Groups heard of (leader as last heard), candidates for links.
    pub known: BTreeMap<GroupId, NodeId>,
}

impl InterCache {
    /// The neighbours with a measured RTT, as handed to joiners (L3).
    pub fn refs(&self) -> Vec<GroupRef> {
        self.links
            .iter()
            .filter_map(|(g, l)| {
                l.rtt_us.map(|r| GroupRef {
                    group: *g,
                    leader: l.leader,
                    rtt_us: r.min(u32::MAX as u64) as u32,
                })
            })
            .collect()
    }

    pub fn learn(&mut self, g: GroupRef, own: Option<GroupId>, max: usize) {
        if Some(g.group) == own {
            return;
        }
        if self.known.len() >= max && !self.known.contains_key(&g.group) {
            return;
        }
        self.known.insert(g.group, g.leader);
        if let Some(l) = self.links.get_mut(&g.group) {
            if l.leader != g.leader {
                l.leader = g.leader;
                l.failures = 0;
            }
        }
    }

    /// A re-measurement of `leader` finished: updates the links it leads;
    /// returns the groups whose link is now lost.
    pub fn remeasured(&mut self, leader: NodeId, rtt_us: Option<u64>) -> Vec<GroupId> {
        let mut lost = Vec::new();
        for (g, l) in self.links.iter_mut() {
            if l.leader != leader {
                continue;
            }
            match rtt_us {
                Some(r) => l.measured(r),
                None => {
                    l.failures += 1;
                    if l.failures >= LINK_FAILURES_LOST {
                        lost.push(*g);
                    }
                }
            }
        }
        for g in &lost {
            self.links.remove(g);
        }
        lost
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_lost_after_two_failed_measurements_and_refs_hide_unmeasured() {
        let mut c = InterCache::default();
        c.links
            .insert(GroupId(1), Link::new(NodeId(5), None, false));
        assert!(c.refs().is_empty(), "unmeasured links are not reported");
        assert!(c.remeasured(NodeId(5), Some(9000)).is_empty());
        assert_eq!(c.refs()[0].rtt_us, 9000);
        assert!(c.remeasured(NodeId(5), None).is_empty());
        assert_eq!(c.remeasured(NodeId(5), None), vec![GroupId(1)]);
        assert!(c.links.is_empty());
    }

    #[test]
    fn rank_prefers_higher_term_then_earlier_claim_then_lower_id() {
        let v = GroupView {
            id: GroupId(1),
            leader: NodeId(5),
            term: 2,
            claim_us: 100,
            leadership: vec![],
            members: BTreeSet::new(),
            last_alive: Timestamp::ZERO,
            round: 0,
            successor_wait: false,
        };
        assert!(v.outranked_by(3, 900, NodeId(9)));
        assert!(v.outranked_by(2, 99, NodeId(9)));
        assert!(v.outranked_by(2, 100, NodeId(4)));
        assert!(!v.outranked_by(2, 100, NodeId(5)));
        assert!(!v.outranked_by(2, 101, NodeId(1)));
        assert!(!v.outranked_by(1, 0, NodeId(1)));
    }
}
