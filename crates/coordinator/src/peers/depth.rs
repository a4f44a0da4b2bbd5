//! A member's depth in each substream tree, remembered (D4, C4): parent
//! selection reads the depth of every candidate it looks at, and at 10⁶ peers
//! walking each path up through the member map was most of a join's cost. A
//! depth is remembered once walked (`Member::depth_memo`) and trusted while the
//! tree's generation (`PeerOverlay::depth_gen`) has not moved: attaching or
//! detaching a member with no children of its own forgets its depth alone;
//! anything that moves a subtree moves the generation and so forgets every depth
//! in that tree. Also: whether one member is below another in a tree.

use super::overlay::{Member, PeerOverlay};
use std::cell::Cell;
use tiercast_proto::NodeId;

impl PeerOverlay {
    /// Every remembered depth in `tree` is forgotten (a subtree moves).
    pub(crate) fn forget_depths(&mut self, tree: u8) {
        let g = &mut self.depth_gen[usize::from(tree)];
        *g = g.wrapping_add(1);
        if *g == 0 {
            // Wrapped: a remembered generation could match again; forget them all.
            *g = 1;
            for m in self.members.values() {
                if let Some(c) = m.depth_memo.get(usize::from(tree)) {
                    c.set(0);
                }
            }
        }
    }

    pub(crate) fn forget_all_depths(&mut self) {
        for t in 0..self.k {
            self.forget_depths(t);
        }
    }

    /// `id` takes or drops its parent in `tree`: its own depth changes, and with
    /// children of its own there, theirs.
    pub(crate) fn moving(&mut self, id: NodeId, tree: u8) {
        if self.children[usize::from(tree)].contains_key(&id) {
            self.forget_depths(tree);
        } else if let Some(c) = self
            .members
            .get(&id)
            .and_then(|m| m.depth_memo.get(usize::from(tree)))
        {
            c.set(0);
        }
    }

    /// Whether `ancestor` is on `node`'s path to the top level in `tree`.
    /// A member without children in that tree is on no path but its own: no
    /// walk (a joiner, looking at every candidate parent).
    pub(crate) fn is_ancestor(&self, ancestor: NodeId, node: NodeId, tree: u8) -> bool {
        if ancestor != node && !self.children[usize::from(tree)].contains_key(&ancestor) {
            return false;
        }
        self.is_ancestor_walk(ancestor, node, tree)
    }

    /// [`Self::is_ancestor`] by walking up from `node`.
    pub(crate) fn is_ancestor_walk(&self, ancestor: NodeId, node: NodeId, tree: u8) -> bool {
        let mut cur = node;
        for _ in 0..=self.members.len() {
            if cur == ancestor {
                return true;
            }
            let Some(m) = self.members.get(&cur) else {
                return false;
            };
            match m.parents.get(usize::from(tree)).copied().flatten() {
                Some(p) => cur = p,
                None => return false,
            }
        }
        false
    }

    /// Hops from the top level in `tree` (top members are at 0; a member cut off
    /// from it counts 1024 more: hops to the member without a parent, + 1024).
    /// The walk up stops at the first member whose depth is remembered for the
    /// tree's generation, and remembers the depth of every member it passed: a
    /// joiner's candidates are a few hops from members already walked, and a
    /// rebuild's members placed last look at candidates cut off (their parents
    /// not placed yet) again and again. A walk of 1024 hops or more is walked
    /// as before and not remembered.
    pub fn depth(&self, node: NodeId, tree: u8) -> u32 {
        match self.members.get(&node) {
            Some(m) => self.depth_of(node, m, tree),
            None => 0,
        }
    }

    /// [`Self::depth`] of `node`, whose entry `m` the caller holds.
    pub(crate) fn depth_of(&self, node: NodeId, m: &Member, tree: u8) -> u32 {
        const PATH: usize = 32;
        let t = usize::from(tree);
        let Some(gen) = self.depth_gen.get(t).map(|g| u64::from(*g)) else {
            return self.depth_walk(node, tree);
        };
        // The members passed (hop i at `path[i]`, past PATH in `spill`), each
        // `found - i` deep: hops to the top level, or to the member without a
        // parent that cut them off (+1024).
        let mut path: [Option<&Member>; PATH] = [None; PATH];
        let mut spill: Vec<&Member> = Vec::new();
        let mut cur = m;
        let mut d: u32 = 0;
        // (hops, cut off, members passed)
        let (hops, cut, passed) = loop {
            if cur.top {
                break (d, false, d);
            }
            let memo = cur.depth_memo.get(t).map_or(0, Cell::get);
            if memo >> 32 == gen {
                let v = memo as u32;
                break match v.checked_sub(1024) {
                    None => (d + v, false, d),
                    Some(h) => (d + h, true, d),
                };
            }
            match path.get_mut(d as usize) {
                Some(slot) => *slot = Some(cur),
                None => spill.push(cur),
            }
            match cur.parents.get(t).copied().flatten() {
                Some(p) if d < 1024 => match self.members.get(&p) {
                    Some(pm) => {
                        cur = pm;
                        d += 1;
                    }
                    None => break (d + 1, false, d + 1),
                },
                None => break (d, true, d + 1),
                Some(_) => return self.depth_walk(node, tree),
            }
        };
        if hops >= 1024 {
            // Past 1024 hops the walk's cap decides: walked the long way.
            return self.depth_walk(node, tree);
        }
        let found = if cut { hops + 1024 } else { hops };
        let passed_members = path.iter().flatten().chain(spill.iter());
        for (i, m) in passed_members.enumerate().take(passed as usize) {
            if let Some(c) = m.depth_memo.get(t) {
                c.set(gen << 32 | u64::from(found - i as u32));
            }
        }
        found
    }

    /// [`Self::depth`] by walking up from `node`, remembering nothing.
    pub(crate) fn depth_walk(&self, node: NodeId, tree: u8) -> u32 {
        let mut cur = node;
        let mut d = 0;
        while let Some(m) = self.members.get(&cur) {
            if m.top {
                return d;
            }
            match m.parents.get(usize::from(tree)).copied().flatten() {
                Some(p) if d < 1024 => {
                    cur = p;
                    d += 1;
                }
                _ => return d + 1024,
            }
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use crate::config::PeerConfig;
    use crate::peers::overlay::{MemberKind, PeerOverlay};
    use crate::peers::select::AllowAll;
    use crate::peers::tests::{cfg, info, with_origin, RATE};
    use crate::registry::RegionId;
    use tiercast_proto::{NodeId, Timestamp};

    /// Every remembered depth still the walked one (`check`), then every depth
    /// read (remembered again) and compared with a walk.
    fn depths_hold(o: &PeerOverlay, step: &str) {
        o.check().unwrap_or_else(|e| panic!("{step}: {e}"));
        for id in o.members.keys() {
            for t in 0..o.k {
                assert_eq!(o.depth(*id, t), o.depth_walk(*id, t), "{step}: {id} in {t}");
            }
        }
        o.check().unwrap_or_else(|e| panic!("{step}, read: {e}"));
    }

    #[test]
    fn remembered_depths_and_leaves_follow_joins_leaves_moves_promotions_and_rebuilds() {
        let t0 = Timestamp::ZERO;
        let c = PeerConfig {
            top_uplink_factor: 4.0,
            stable_ms: 5000,
            history_tolerance: 1,
            ..cfg()
        };
        let mut o = with_origin(t0, &c, 6 * RATE);
        let ups = [RATE / 2, RATE, 2 * RATE, 3 * RATE, 5 * RATE];
        for i in 0..150u32 {
            let up = ups[i as usize % ups.len()];
            let region = RegionId((i % 2) as u16);
            o.join(
                t0,
                info(10 + i),
                region,
                MemberKind::Peer,
                up,
                &c,
                &AllowAll,
            );
            depths_hold(&o, &format!("join {i}"));
            if i % 9 == 4 {
                // A member with children leaves: its subtrees move.
                let busy = o
                    .members
                    .values()
                    .filter(|m| !m.top && m.kid_trees != 0)
                    .map(|m| m.info.id)
                    .nth(i as usize % 3);
                if let Some(id) = busy {
                    o.remove(id, &c, &AllowAll);
                    depths_hold(&o, &format!("leave of {id} at {i}"));
                }
            }
            if i % 11 == 6 {
                // A parent reported bad: its child re-homed with its subtree.
                let link = o.members.values().find_map(|m| {
                    let t = (0..o.k).find(|t| o.has_kids(m.info.id, m, *t))?;
                    Some((m.info.id, m.parents[usize::from(t)]?))
                });
                if let Some((child, parent)) = link {
                    o.link_bad(child, parent, &c, &AllowAll);
                    depths_hold(&o, &format!("link {parent}→{child} bad at {i}"));
                }
            }
            if i % 13 == 8 {
                // A member with children loses its parent: its subtree is cut off
                // (1024 more), remembered so, then placed again.
                let cut = o.members.values().find_map(|m| {
                    let t = (0..o.k).find(|t| {
                        o.has_kids(m.info.id, m, *t) && m.parents[usize::from(*t)].is_some()
                    })?;
                    Some((m.info.id, t))
                });
                if let Some((id, t)) = cut {
                    o.detach(id, t);
                    depths_hold(&o, &format!("{id} cut off in {t} at {i}"));
                    assert!(o.depth(id, t) >= 1024, "cut off");
                    o.place(id, false, &c, &AllowAll);
                    depths_hold(&o, &format!("{id} placed again in {t} at {i}"));
                }
            }
        }
        assert!(
            o.review_top(t0.plus_millis(6000), &c, &AllowAll),
            "promoted"
        );
        depths_hold(&o, "promotion");
        let demote = o.top_order.iter().copied().find(|id| *id != NodeId(1));
        if let Some(id) = demote {
            o.members.get_mut(&id).unwrap().history = -5;
            o.review_top(t0.plus_millis(12_000), &c, &AllowAll);
            depths_hold(&o, "demotion");
        }
        o.full_recompute(t0.plus_millis(20_000), &c, &AllowAll);
        depths_hold(&o, "full recomputation");
        for i in 0..40u32 {
            let region = RegionId((i % 2) as u16);
            o.join(
                t0,
                info(500 + i),
                region,
                MemberKind::Peer,
                RATE,
                &c,
                &AllowAll,
            );
            depths_hold(&o, &format!("join {i} after the rebuild"));
        }
    }
}
