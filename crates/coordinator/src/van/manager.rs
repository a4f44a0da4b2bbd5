//! One channel's Virtual Active Network (V1): which relays are active in which
//! tier, in which phase, in what order they were activated, and whom each takes
//! the stream from. The coordinator keeps one manager per channel (V8: channels
//! share relays, each hierarchy is independent).

use crate::registry::RegionId;
use std::collections::BTreeMap;
use tiercast_proto::{ChannelDesc, NodeId, Tier, Timestamp};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelayPhase {
    Expanding,
    Contracting,
}

#[derive(Clone, Debug)]
pub struct ActiveRelay {
    pub tier: Tier,
    pub region: RegionId,
    pub phase: RelayPhase,
    /// Activation order within the channel (higher is more recent).
    pub order: u64,
    pub activated_at: Timestamp,
    pub parents: Vec<NodeId>,
}

#[derive(Clone, Debug)]
pub struct ChannelManager {
    pub desc: ChannelDesc,
    pub origin: NodeId,
    /// Read freely; change only through `add_active` / `remove_active`, which keep
    /// the per-tier index in step.
    pub active: BTreeMap<NodeId, ActiveRelay>,
    /// Active relays per (region, tier) by activation order.
    by_tier: BTreeMap<(RegionId, Tier), BTreeMap<u64, NodeId>>,
    /// How many active relays name each node as a parent (booked capacity).
    relay_children: BTreeMap<NodeId, u32>,
    /// Per tier: arrival rate and server farms (V6).
    pub farms: BTreeMap<Tier, crate::farm::TierFarms>,
    next_order: u64,
    /// The highest block seq any node reported holding (heartbeats): a restarted
    /// origin cuts above it (D7).
    pub highest_seq: Option<u64>,
}

impl ChannelManager {
    pub fn new(desc: ChannelDesc, origin: NodeId) -> Self {
        ChannelManager {
            desc,
            origin,
            active: BTreeMap::new(),
            by_tier: BTreeMap::new(),
            relay_children: BTreeMap::new(),
            farms: BTreeMap::new(),
            next_order: 0,
            highest_seq: None,
        }
    }

    /// A node reported holding block `seq`: the highest one is remembered.
    pub fn saw_seq(&mut self, seq: u64) {
        self.highest_seq = Some(self.highest_seq.map_or(seq, |h| h.max(seq)));
    }

    pub fn add_active(
        &mut self,
        now: Timestamp,
        node: NodeId,
        region: RegionId,
        tier: Tier,
        parents: Vec<NodeId>,
    ) {
        self.remove_active(node);
        self.next_order += 1;
        self.by_tier
            .entry((region, tier))
            .or_default()
            .insert(self.next_order, node);
        self.book(&parents, 1);
        self.active.insert(
            node,
            ActiveRelay {
                tier,
                region,
                phase: RelayPhase::Expanding,
                order: self.next_order,
                activated_at: now,
                parents,
            },
        );
    }

    pub fn is_active(&self, node: NodeId) -> bool {
        self.active.contains_key(&node)
    }

    pub fn remove_active(&mut self, node: NodeId) -> Option<ActiveRelay> {
        let a = self.active.remove(&node)?;
        if let Some(t) = self.by_tier.get_mut(&(a.region, a.tier)) {
            t.remove(&a.order);
        }
        self.book(&a.parents, -1);
        Some(a)
    }

    /// Gives an active relay new parents; returns the old ones.
    pub fn replace_parents(&mut self, node: NodeId, new: Vec<NodeId>) -> Option<Vec<NodeId>> {
        let a = self.active.get_mut(&node)?;
        let old = std::mem::replace(&mut a.parents, new.clone());
        self.book(&old, -1);
        self.book(&new, 1);
        Some(old)
    }

    fn book(&mut self, parents: &[NodeId], delta: i32) {
        for p in parents {
            let c = self.relay_children.entry(*p).or_insert(0);
            *c = c.saturating_add_signed(delta);
            if *c == 0 {
                self.relay_children.remove(p);
            }
        }
    }

    /// Active relays of this channel that take the stream from `parent`.
    pub fn relay_children_of(&self, parent: NodeId) -> u32 {
        self.relay_children.get(&parent).copied().unwrap_or(0)
    }

    /// Active relays of a region's tier, most recently activated first.
    pub fn newest_in(&self, region: RegionId, tier: Tier) -> impl Iterator<Item = NodeId> + '_ {
        self.by_tier
            .get(&(region, tier))
            .into_iter()
            .flat_map(|t| t.values().rev().copied())
    }

    /// Active relays of a region's tier, most recently activated first.
    pub fn active_in(&self, region: RegionId, tier: Tier) -> Vec<NodeId> {
        self.newest_in(region, tier).collect()
    }

    pub fn active_count_in(&self, region: RegionId, tier: Tier) -> usize {
        self.by_tier.get(&(region, tier)).map_or(0, |t| t.len())
    }

    /// Active relays of a tier over all regions, most recently activated first.
    pub fn active_in_tier(&self, tier: Tier) -> Vec<NodeId> {
        let mut v: Vec<(u64, NodeId)> = self
            .active
            .iter()
            .filter(|(_, a)| a.tier == tier)
            .map(|(n, a)| (a.order, *n))
            .collect();
        v.sort_by_key(|x| std::cmp::Reverse(x.0));
        v.into_iter().map(|(_, n)| n).collect()
    }

    /// Active relays taking the stream from `parent`.
    pub fn children_of(&self, parent: NodeId) -> Vec<NodeId> {
        self.active
            .iter()
            .filter(|(_, a)| a.parents.contains(&parent))
            .map(|(n, _)| *n)
            .collect()
    }

    pub fn count_per_tier(&self) -> BTreeMap<Tier, usize> {
        let mut m = BTreeMap::new();
        for a in self.active.values() {
            *m.entry(a.tier).or_insert(0) += 1;
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tiercast_proto::ChannelId;

    #[test]
    fn an_activated_relay_books_its_parents_until_it_leaves() {
        let desc = ChannelDesc {
            id: ChannelId(1),
            name: "live".into(),
            public_key: [0; 32],
        };
        let (origin, t1) = (NodeId(1), NodeId(2));
        let mut m = ChannelManager::new(desc, origin);
        let t0 = Timestamp::ZERO;
        m.add_active(t0, t1, RegionId(0), 1, vec![origin]);
        m.add_active(t0, NodeId(3), RegionId(0), 2, vec![t1, origin]);
        assert_eq!(m.relay_children_of(origin), 2);
        assert_eq!(m.relay_children_of(t1), 1);
        m.replace_parents(NodeId(3), vec![t1]);
        assert_eq!(m.relay_children_of(origin), 1);
        m.remove_active(NodeId(3));
        assert_eq!(m.relay_children_of(t1), 0);
        // Activated again (a re-activation replaces the old entry): booked once.
        m.add_active(t0, t1, RegionId(0), 1, vec![origin]);
        assert_eq!(m.relay_children_of(origin), 1);
    }
}
