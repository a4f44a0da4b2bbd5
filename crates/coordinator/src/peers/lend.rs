//! A tree short of slots borrows one of the top level's (C6, C10). A bottom
//! member's slots serve only its interior tree; the top level's serve any tree.
//! Joins take the shallowest parent, so the top level's slots go to whichever
//! tree asks first, and a tree whose interior members are few is left short
//! while another keeps interior slots free: a joiner waited in that tree, unfed,
//! until the next full recomputation (issue 10's tight population, seed 38: 42
//! members without substream 3 for three seconds of the crowd, 15 % of a
//! second's blocks missed). The full recomputation shares the top level the same
//! way ([`super::rebuild`]'s `kept_interiors`: each tree's shortfall, summed).
//!
//! The lending move: a child a top member feeds in a tree that has interior
//! slots free moves to one of those (a leaf first, so no subtree moves with it),
//! and the top member's slot it freed feeds the joiner in the short tree. It is
//! taken only when no parent is found otherwise, so nothing changes in an
//! overlay with room.

use super::overlay::{MemberKind, PeerOverlay};
use super::select::ParentPolicy;
use crate::config::PeerConfig;
use tiercast_proto::NodeId;

impl PeerOverlay {
    /// `id` takes a top member's slot in `tree`, that member's child in another
    /// tree moving to an interior member there; false when no such move exists.
    pub(crate) fn borrow_top_slot(
        &mut self,
        id: NodeId,
        tree: u8,
        cfg: &PeerConfig,
        policy: &dyn ParentPolicy,
    ) -> bool {
        let Some((top, child, other, parent)) = self.lending_move(id, tree, cfg, policy) else {
            return false;
        };
        self.detach(child, other);
        self.attach(child, other, parent);
        self.attach(id, tree, top);
        self.stats.top_slots_lent += 1;
        true
    }

    /// The move [`Self::borrow_top_slot`] makes: (top member, its child, the
    /// child's tree, the child's new parent). Leaves are moved before interior
    /// members, and a new parent within the depth bound before a deeper one.
    fn lending_move(
        &self,
        id: NodeId,
        tree: u8,
        cfg: &PeerConfig,
        policy: &dyn ParentPolicy,
    ) -> Option<(NodeId, NodeId, u8, NodeId)> {
        let mut fallback = None;
        for leaves_only in [true, false] {
            for top in &self.top_order {
                // The origin's uplink is kept for the top level (as in
                // `select_parent`); a move under it is served twice while
                // the moved child switches (connect before disconnect).
                let origin = self
                    .members
                    .get(top)
                    .is_none_or(|m| m.kind == MemberKind::Origin);
                if *top == id
                    || origin
                    || !self.cap_allows(id, *top)
                    || !policy.allows(self, id, *top)
                {
                    continue;
                }
                for other in (0..self.k).filter(|u| *u != tree) {
                    let kids = self.children[usize::from(other)]
                        .get(top)
                        .into_iter()
                        .flatten();
                    for c in kids {
                        // The joiner itself may be the one moved (it took the
                        // top member's slot in that tree a moment ago).
                        let Some(m) = self.members.get(c).filter(|m| !m.top && !m.middle) else {
                            continue;
                        };
                        if leaves_only == self.has_kids(*c, m, other) {
                            continue;
                        }
                        let Ok(p) = self.select_parent(*c, other, &[*top], cfg.candidates, policy)
                        else {
                            continue;
                        };
                        if self.members.get(&p).is_none_or(|m| m.top) {
                            continue;
                        }
                        let found = (*top, *c, other, p);
                        if !self.too_deep_under(p, other) {
                            return Some(found);
                        }
                        fallback = fallback.or(Some(found));
                    }
                }
            }
        }
        fallback
    }
}

#[cfg(test)]
mod tests {
    use crate::config::PeerConfig;
    use crate::peers::overlay::{MemberKind, PeerOverlay};
    use crate::peers::select::AllowAll;
    use crate::peers::tests::{info, RATE};
    use crate::registry::RegionId;
    use tiercast_proto::{NodeId, Timestamp};

    /// Two substreams of 1 Mbit/s, no headroom, no repair share: slots are
    /// uplinks in Mbit/s.
    fn setup() -> (PeerOverlay, bool) {
        let cfg = PeerConfig {
            substreams: 2,
            uplink_headroom: 0.0,
            top_repair_share: 0.0,
            repair_link: false,
            ..PeerConfig::default()
        };
        let t0 = Timestamp(0);
        let mut o = crate::peers::tests::overlay_with(&cfg, t0);
        let join = |o: &mut PeerOverlay, id: u32, kind, up: u64| {
            o.join(t0, info(id), RegionId(0), kind, up, &cfg, &AllowAll)
        };
        // The origin's two slots push the whole stream to the waypoint W (3 slots).
        join(&mut o, 1, MemberKind::Origin, RATE);
        join(&mut o, 2, MemberKind::Waypoint, 3 * RATE / 2);
        // A (3 slots, interior in tree 0) takes W in both trees: W has one left.
        join(&mut o, 10, MemberKind::Peer, 3 * RATE / 2);
        assert_eq!(o.members[&NodeId(10)].interior, Some(0));
        // E gives nothing: it takes W's last slot in tree 0, and tree 1 has no
        // interior member at all.
        let placed = join(&mut o, 11, MemberKind::Peer, 0);
        (o, placed)
    }

    #[test]
    fn a_joiner_short_of_a_tree_takes_a_top_slot_lent_by_a_tree_with_interior_room() {
        let (o, placed) = setup();
        o.check().expect("books kept");
        assert!(placed, "E waits: {:?}", o.members[&NodeId(11)].parents);
        let parents: Vec<_> = o.members[&NodeId(11)].parents.to_vec();
        // E took W's last slot in tree 0, then moved under A there to take it in
        // tree 1.
        assert_eq!(parents, vec![Some(NodeId(10)), Some(NodeId(2))]);
        assert_eq!(o.stats.top_slots_lent, 1);
        assert!(o.pending.is_empty());
    }
}
