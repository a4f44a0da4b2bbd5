//! A premium member with no parent in a tree takes a free member's (C3's provider
//! rule `premium_first` with `preempt = true`; C6: "an assignment may be revoked
//! for a higher-priority node"). When `select_parent` finds nothing for it — a
//! cap between regions full of free members' links, or no spare slot in that
//! tree — it revokes the link of the weakest free member that is a leaf in that
//! tree and whose parent may feed it, and takes that parent. The free member is
//! re-homed if it can be, else waits (and, weak and unplaced, is ejected by the
//! next full recomputation, `super::admission`). A leaf only: no subtree is cut.
//!
//! Across a capped pair the trade is one link for one: the premium member is in
//! the free one's group (its region when that is reached only across caps), and
//! a parent across a pair other than the free member's must have room under
//! that pair's cap. Without the rule, or for a free member, nothing changes.

use super::overlay::PeerOverlay;
use super::select::ParentPolicy;
use crate::config::PeerConfig;
use tiercast_proto::NodeId;

/// How many of the weakest members are looked at for a link to revoke.
const REVOKE_SCAN: usize = 4096;

impl PeerOverlay {
    /// Whether `id` may revoke a free member's link: premium, under a
    /// pre-empting `premium_first` rule.
    pub(crate) fn preempts_free(&self, id: NodeId) -> bool {
        self.premium_first == Some(true) && self.protected(id)
    }

    /// The free leaf of `tree` whose parent `id` takes there, with that parent.
    fn free_link_for(
        &self,
        id: NodeId,
        tree: u8,
        policy: &dyn ParentPolicy,
    ) -> Option<(NodeId, NodeId)> {
        let me = self.members.get(&id)?;
        let capped = self.region_caps().any() && self.capped_group(me.region);
        let t = usize::from(tree);
        self.weakest_iter()
            .take(REVOKE_SCAN)
            .filter_map(|(_, w)| {
                let wm = self.members.get(&w)?;
                let p = wm.parents.get(t).copied().flatten()?;
                Some((w, wm, p))
            })
            .find(|(w, wm, p)| {
                let same_group = if capped {
                    wm.region == me.region
                } else {
                    !self.capped_group(wm.region)
                };
                *w != id
                    && *p != id
                    && same_group
                    && !self.protected(*w)
                    && !self.has_kids(*w, wm, tree)
                    && !self.is_ancestor(id, *p, tree)
                    && (self.pair_of(id, *p) == self.pair_of(*w, *p) || self.cap_allows(id, *p))
                    && policy.allows(self, id, *p)
            })
            .map(|(w, _, p)| (w, p))
    }

    /// `id` (premium, no parent in `tree`) takes a free leaf's parent there;
    /// the free member is re-homed or waits. Returns whether `id` got one.
    pub(crate) fn take_free_parent(
        &mut self,
        id: NodeId,
        tree: u8,
        cfg: &PeerConfig,
        policy: &dyn ParentPolicy,
    ) -> bool {
        if !self.preempts_free(id)
            || self
                .members
                .get(&id)
                .is_none_or(|m| m.top || m.parents[usize::from(tree)].is_some())
        {
            return false;
        }
        let Some((free, parent)) = self.free_link_for(id, tree, policy) else {
            return false;
        };
        self.detach(free, tree);
        self.attach(id, tree, parent);
        self.stats.preemptions += 1;
        self.stats.reassignments += 1;
        match self.select_parent(free, tree, &[parent], cfg.candidates, policy) {
            Ok(p) => self.attach(free, tree, p),
            Err(_) => {
                self.pending.insert(free);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use crate::peers::caps::region_pair;
    use crate::peers::overlay::PeerOverlay;
    use crate::peers::tests::full_cap::{full_cap as full_cap_with, join, EU, US};
    use crate::peers::tests::{placed, RATE};
    use tiercast_proto::NodeId;

    /// The cap between EU and US full of free links, no fall-back.
    fn full_cap() -> PeerOverlay {
        full_cap_with(None)
    }

    #[test]
    fn with_the_cap_full_of_free_links_a_premium_viewer_takes_free_ones_parents_and_stays_within_the_cap(
    ) {
        let pair = region_pair(EU, US).expect("two regions");
        // No rule: a premium viewer waits like any other.
        let mut o = full_cap();
        join(&mut o, 21, true);
        assert_eq!(placed(&o, 21), 0, "no premium_first: it waits");

        // premium_first with pre-emption: a free newcomer still waits, the
        // premium one revokes free members' links across — one for one.
        let mut o = full_cap();
        o.set_premium_first(Some(true));
        let free_before = placed(&o, 10) + placed(&o, 11);
        assert_eq!(free_before, 5);
        join(&mut o, 20, false);
        assert_eq!(
            placed(&o, 20),
            0,
            "a free viewer takes nothing from another"
        );
        join(&mut o, 21, true);
        assert_eq!(placed(&o, 21), 4, "the premium viewer has every tree");
        assert_eq!(placed(&o, 10) + placed(&o, 11), 1, "the free ones gave 4");
        assert_eq!(o.booked_across(pair), 5 * (RATE / 4), "never over the cap");
        assert!(o.pending.contains(&NodeId(10)) || o.pending.contains(&NodeId(11)));
        assert!(o.stats.preemptions >= 4);
        o.check().expect("invariants");

        // Without pre-emption declared, premium before free does not revoke.
        let mut o = full_cap();
        o.set_premium_first(Some(false));
        join(&mut o, 21, true);
        assert_eq!(placed(&o, 21), 0, "no pre-emption declared");
    }
}
