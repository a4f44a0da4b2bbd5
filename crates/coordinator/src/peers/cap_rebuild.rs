//! A full recomputation's links across the caps into a capped group, shared out
//! per tree (C3's network policy `link_cap`, C7, C10). A region reached only
//! across caps is rebuilt as a group of its own whose source is what its caps
//! let across (`super::caps::cap_groups`); its members' own slots feed only the
//! tree each is interior in. So tree t needs at least `n − (its interior
//! slots)` links across, and the caps' slots beyond the sum of those needs are
//! a surplus any tree may use.
//!
//! The rebuild keeps old links first, tree by tree; before this budget, a
//! group's old links across (taken before the cap, to the other region's
//! members) were kept in the first trees until the cap was full, the group's
//! own interior slots there stayed idle, and the last tree had nothing left to
//! cross with: `region-cap-premium` seed 32 at 20 s, tree 3 with 15 of 34
//! premium us members unplaced (ejected) while 19 us interior slots in trees 0–2
//! were free and the cap booked to its last slot.

use super::overlay::PeerOverlay;
use crate::multitree::PeerCapacity;
use tiercast_proto::NodeId;

/// Links across the caps a capped group's rebuild may still make, per tree.
#[derive(Clone, Debug)]
pub(crate) struct CrossBudget {
    /// Per tree: the least links across it needs (members less interior slots).
    need: Vec<u64>,
    /// Per tree: links across made so far.
    used: Vec<u64>,
    /// Slots across beyond every tree's need, for any tree.
    surplus: u64,
}

impl CrossBudget {
    /// One more link across in `tree`: within its need, else from the
    /// surplus. False when neither has room (the child is placed later,
    /// its own region's slots first).
    pub(crate) fn take(&mut self, tree: u8) -> bool {
        let t = usize::from(tree);
        let (Some(used), Some(need)) = (self.used.get_mut(t), self.need.get(t)) else {
            return true;
        };
        if *used < *need {
            *used += 1;
            return true;
        }
        if self.surplus > 0 {
            self.surplus -= 1;
            *used += 1;
            return true;
        }
        false
    }
}

impl PeerOverlay {
    /// The budget of links across for `group`'s rebuild, with its interior
    /// trees set and `source_slots` across; `None` when the group is not a
    /// region reached only across caps.
    pub(crate) fn cross_budget(
        &self,
        group: &[PeerCapacity],
        source_slots: u64,
    ) -> Option<CrossBudget> {
        let region = self.members.get(&group.first()?.id)?.region;
        if !self.capped_group(region) {
            return None;
        }
        let k = usize::from(self.k);
        let mut interior = vec![0u64; k];
        for m in group.iter().filter_map(|p| self.members.get(&p.id)) {
            if let Some(s) = m.interior.and_then(|t| interior.get_mut(usize::from(t))) {
                *s += u64::from(m.slots);
            }
        }
        let n = group.len() as u64;
        let need: Vec<u64> = interior.iter().map(|s| n.saturating_sub(*s)).collect();
        let surplus = source_slots.saturating_sub(need.iter().sum());
        Some(CrossBudget {
            need,
            used: vec![0; k],
            surplus,
        })
    }

    /// Whether the link `parent` → `child` crosses a capped pair.
    pub(crate) fn crosses_cap(&self, child: NodeId, parent: NodeId) -> bool {
        self.pair_of(child, parent)
            .is_some_and(|p| self.region_caps().cap(p).is_some())
    }
}
