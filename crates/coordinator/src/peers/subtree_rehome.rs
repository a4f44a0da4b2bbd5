//! An orphaned subtree whose tree has room only inside it (C6, D4). When a
//! member that feeds children in a tree loses its parent there, `select_parent`
//! rules out its own descendants; if they hold every spare slot of the tree, it
//! finds nothing and the whole subtree would wait for the next full
//! recomputation, unfed. Instead it takes the parent of a shallow leaf of that
//! tree (found breadth first from the top level, which never reaches the
//! detached subtree), and the leaf takes a parent with room — one in the
//! subtree, now reachable from the top. The leaf moves only once its new
//! parent is chosen, so a leaf is never left without one. Found with the bus
//! test `a_leaving_peer_is_replaced_in_its_trees_without_a_gap` at 10 % uplink
//! headroom: the origin full, the only spare slots of tree 0 below the orphan.

use super::overlay::PeerOverlay;
use super::select::ParentPolicy;
use crate::config::PeerConfig;
use tiercast_proto::NodeId;

impl PeerOverlay {
    /// `id` (no parent in `tree`, children there) takes a shallow leaf's parent;
    /// the leaf takes another parent, never one of `avoid`'s. Returns whether
    /// `id` got a parent.
    pub(crate) fn take_leaf_parent(
        &mut self,
        id: NodeId,
        tree: u8,
        avoid: &[NodeId],
        cfg: &PeerConfig,
        policy: &dyn ParentPolicy,
    ) -> bool {
        let t = usize::from(tree);
        let Some(m) = self.members.get(&id) else {
            return false;
        };
        if m.top || m.parents[t].is_some() || !self.has_kids(id, m, tree) {
            return false;
        }
        let Some((leaf, parent)) = self.shallow_leaf(id, tree) else {
            return false;
        };
        if avoid.contains(&parent)
            || self.is_ancestor(id, parent, tree)
            || !self.cap_allows(id, parent)
            || !policy.allows(self, id, parent)
        {
            return false;
        }
        let Ok(next) = self.select_parent(leaf, tree, &[parent], cfg.candidates, policy) else {
            return false;
        };
        self.detach(leaf, tree);
        self.attach(id, tree, parent);
        self.attach(leaf, tree, next);
        self.stats.reassignments += 1;
        self.set_repair_link(leaf);
        true
    }
}

#[cfg(test)]
mod tests {
    use crate::config::PeerConfig;
    use crate::peers::overlay::{MemberKind, PeerOverlay};
    use crate::peers::select::AllowAll;
    use crate::peers::tests::{cfg, info, overlay_with, RATE};
    use crate::registry::RegionId;
    use tiercast_proto::{NodeId, Timestamp};

    /// One substream tree; the origin feeds two children, `10` (a leaf) and `11`
    /// (feeding `12`, which has room for many more).
    fn overlay() -> (PeerOverlay, PeerConfig) {
        let t0 = Timestamp::ZERO;
        let mut c = cfg();
        c.substreams = 1;
        c.uplink_headroom = 0.0;
        c.top_repair_share = 0.0;
        c.repair_link = false;
        let mut o = overlay_with(&c, t0);
        let r = RegionId(0);
        o.join(t0, info(1), r, MemberKind::Origin, 2 * RATE, &c, &AllowAll);
        for (id, up) in [(10, 0), (11, RATE), (12, 8 * RATE)] {
            o.join(t0, info(id), r, MemberKind::Peer, up, &c, &AllowAll);
        }
        // The shape, whatever the joins chose.
        for id in [10, 11, 12] {
            o.detach(NodeId(id), 0);
        }
        for (id, p) in [(10, 1), (11, 1), (12, 11)] {
            o.attach(NodeId(id), 0, NodeId(p));
        }
        (o, c)
    }

    fn orphan_11(o: &mut PeerOverlay) {
        o.detach(NodeId(11), 0);
        o.update(NodeId(1), |m| m.slots = m.used);
    }

    fn parent(o: &PeerOverlay, id: u32) -> Option<NodeId> {
        o.members[&NodeId(id)].parents[0]
    }

    #[test]
    fn an_orphan_whose_tree_has_room_only_below_it_takes_a_leafs_parent_and_the_leaf_goes_below() {
        let (mut o, c) = overlay();
        assert_eq!(parent(&o, 10), Some(NodeId(1)));
        assert_eq!(parent(&o, 11), Some(NodeId(1)));
        assert_eq!(parent(&o, 12), Some(NodeId(11)));
        // 11 loses its parent, and its slot there is taken (the origin full):
        // the only room left is 12's, below 11.
        orphan_11(&mut o);
        assert!(o
            .select_parent(NodeId(11), 0, &[], c.candidates, &AllowAll)
            .is_err());
        assert!(o.take_leaf_parent(NodeId(11), 0, &[], &c, &AllowAll));
        assert_eq!(parent(&o, 11), Some(NodeId(1)));
        assert_eq!(parent(&o, 10), Some(NodeId(12)), "the leaf goes below");
        o.check().expect("books hold");
    }

    #[test]
    fn without_room_for_the_leaf_nothing_moves() {
        let (mut o, c) = overlay();
        orphan_11(&mut o);
        // 12 gives no room: nothing for the leaf either.
        o.update(NodeId(12), |m| m.slots = m.used);
        assert!(!o.take_leaf_parent(NodeId(11), 0, &[], &c, &AllowAll));
        assert_eq!(parent(&o, 10), Some(NodeId(1)));
        assert_eq!(parent(&o, 11), None);
    }
}
