//! Joins, leaves and re-homing (C6): a joining peer becomes interior in the tree
//! with the least capacity and takes a parent in every tree (C4); a strong joiner
//! (uplink above the top level's bar) is placed next to the top level and may
//! pre-empt a weaker leaf there, which becomes its child; when a member leaves,
//! each child it fed takes a new parent in that tree, keeping its own subtree.
//! A joiner whose parent in its interior tree would leave it deeper than the
//! bound takes the place of a shallow leaf instead (`insert_shallow`); a member
//! whose subtree holds every spare slot of its tree takes a shallow leaf's parent,
//! the leaf going into that subtree (`super::subtree_rehome`).

use super::overlay::{Member, MemberKind, PeerOverlay};
use super::select::ParentPolicy;
use crate::config::PeerConfig;
use crate::registry::RegionId;
use tiercast_proto::{NodeId, PeerInfo, Timestamp};

/// Members looked at, breadth first, for a shallow leaf a joiner takes the place of.
const INSERT_SCAN_LIMIT: usize = 512;

impl PeerOverlay {
    /// A new member (a peer, a waypoint or the origin); bottom members are placed.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn join(
        &mut self,
        now: Timestamp,
        info: impl Into<std::sync::Arc<PeerInfo>>,
        region: RegionId,
        kind: MemberKind,
        uplink_bps: u64,
        cfg: &PeerConfig,
        policy: &dyn ParentPolicy,
    ) -> bool {
        let info = info.into();
        let id = info.id;
        self.set_link_cap(cfg);
        if self.members.contains_key(&id) {
            return self.pending.is_empty() || !self.pending.contains(&id);
        }
        self.stats.joins += 1;
        self.changes_since_full += 1;
        self.rejoining.remove(&id);
        let top = kind != MemberKind::Peer;
        let slots = self.slots_of(top, uplink_bps);
        self.insert_member(Member::new(
            info, region, kind, uplink_bps, slots, top, now, self.k,
        ));
        if top {
            self.rebuild_top(usize::from(cfg.mesh_c));
            return true;
        }
        let strong = uplink_bps as f64 >= cfg.top_uplink_factor * self.rate_bps as f64;
        self.middle_on_join(id, cfg);
        self.place(id, strong, cfg, policy)
    }

    /// Members waiting for a parent try again; the wait is timed from when
    /// `pending` last stopped being empty (C7's grace, [`Self::due_for_full`]).
    pub(crate) fn retry_pending(
        &mut self,
        now: Timestamp,
        cfg: &PeerConfig,
        policy: &dyn ParentPolicy,
    ) {
        let pending: Vec<NodeId> = self.pending.iter().copied().collect();
        for p in pending {
            self.place(p, false, cfg, policy);
        }
        self.pending_since = match self.pending_since {
            _ if self.pending.is_empty() => None,
            None => Some(now),
            since => since,
        };
    }

    /// Gives `id` a parent in every tree it lacks one; true when it has all.
    pub(crate) fn place(
        &mut self,
        id: NodeId,
        strong: bool,
        cfg: &PeerConfig,
        policy: &dyn ParentPolicy,
    ) -> bool {
        self.place_but(id, strong, cfg, policy, 0, false)
    }

    /// [`Self::place`] but for the trees in `skip` (bit t: tree t) and, with
    /// `keep_repair`, its repair link: left as they are for a reported parent
    /// still to come back ([`super::restore_defer`]); true when it has a parent
    /// in every tree not skipped.
    pub(crate) fn place_but(
        &mut self,
        id: NodeId,
        strong: bool,
        cfg: &PeerConfig,
        policy: &dyn ParentPolicy,
        skip: u64,
        keep_repair: bool,
    ) -> bool {
        let Some(m) = self.members.get(&id) else {
            return false;
        };
        if m.top {
            return true;
        }
        if m.slots > 0 && m.interior.is_none() {
            let t = (0..self.k)
                .min_by_key(|t| (self.tree_capacity[usize::from(*t)], *t))
                .expect("k ≥ 1");
            self.update(id, |m| m.interior = Some(t));
        }
        let interior = self.members[&id].interior;
        let mut complete = true;
        for t in 0..self.k {
            if self.members[&id].parents[usize::from(t)].is_some() || skip & (1 << t) != 0 {
                continue;
            }
            if strong && interior == Some(t) && self.preempt(id, t, policy) {
                continue;
            }
            match self.select_parent(id, t, &[], cfg.candidates, policy) {
                Ok(p)
                    if interior == Some(t)
                        && self.too_deep_under(p, t)
                        && self.insert_shallow(id, t, policy) => {}
                Ok(p) => self.attach(id, t, p),
                Err(_) => {
                    if interior == Some(t) && self.preempt(id, t, policy) {
                        continue;
                    }
                    if self.borrow_top_slot(id, t, cfg, policy) {
                        continue;
                    }
                    // C3: a premium member revokes a free leaf's link.
                    if self.take_free_parent(id, t, cfg, policy) {
                        continue;
                    }
                    // A subtree whose tree has room only below it.
                    if self.take_leaf_parent(id, t, &[], cfg, policy) {
                        continue;
                    }
                    complete = false;
                }
            }
        }
        if cfg.repair_link && !keep_repair {
            self.set_repair_link(id);
        }
        if complete {
            self.pending.remove(&id);
        } else {
            self.pending.insert(id);
        }
        complete
    }

    pub(crate) fn set_repair_link(&mut self, id: NodeId) {
        let Some(first) = self.repair_parent(id) else {
            // No top member with a link to spare: no repair link — and none left
            // over (a peer back from the top level kept its mesh links).
            if self
                .members
                .get(&id)
                .is_some_and(|m| !m.top && !m.lazy.is_empty())
            {
                self.update(id, |m| m.lazy.clear());
                self.dirty.insert(id);
            }
            return;
        };
        let Some(m) = self.members.get(&id) else {
            return;
        };
        // A push parent cannot be the lazy one too (one feed per link): another
        // top member repairs — of the region, not the origin, when there is one.
        let pushes = |n: &NodeId| m.parents.contains(&Some(*n));
        let r = if pushes(&first) {
            let class = |n: &NodeId| {
                let o = &self.members[n];
                (o.kind == MemberKind::Origin, o.region != m.region)
            };
            // ...with a link to spare (a link cap of 40 was passed by one here).
            let full = self.repair_full(m.lazy.first().copied());
            let mut others: Vec<NodeId> = self
                .top_order
                .iter()
                .copied()
                .filter(|n| *n != id && !pushes(n) && !full.contains(n))
                .filter(|n| !self.pair_capped(m.region, self.members[n].region))
                .collect();
            let best = others.iter().map(class).min();
            others.retain(|n| Some(class(n)) == best);
            (!others.is_empty()).then(|| others[id.0 as usize % others.len()])
        } else {
            Some(first)
        };
        let lazy: Vec<NodeId> = r.into_iter().collect();
        if self.members.get(&id).is_some_and(|m| m.lazy != lazy) {
            self.update(id, |m| m.lazy = lazy.into());
            self.dirty.insert(id);
        }
    }

    /// `id` (interior in `tree`) takes the place of the weakest leaf hanging
    /// directly off the top level in that tree; the leaf becomes its child.
    fn preempt(&mut self, id: NodeId, tree: u8, policy: &dyn ParentPolicy) -> bool {
        let my_slots = self.members[&id].slots;
        // The leaf becomes its child: a slot of its own must be free (a member
        // placed again by a recomputation may have its children already).
        if self.members[&id].spare() == 0 {
            return false;
        }
        let t = usize::from(tree);
        let mut best: Option<(u32, NodeId, NodeId)> = None;
        for p in &self.top_order {
            for w in self.children[t].get(p).into_iter().flatten() {
                let wm = &self.members[w];
                let leaf = self.children[t].get(w).is_none_or(|c| c.is_empty());
                if *w == id || !leaf || wm.slots >= my_slots {
                    continue;
                }
                if !self.cap_allows(id, *p) || !self.cap_allows(*w, id) {
                    continue;
                }
                if !policy.allows(self, id, *p) || !policy.allows(self, *w, id) {
                    continue;
                }
                if best.is_none_or(|(s, _, _)| wm.slots < s) {
                    best = Some((wm.slots, *w, *p));
                }
            }
        }
        let Some((_, weak, parent)) = best else {
            return false;
        };
        self.take_leaf_place(id, tree, weak, parent);
        true
    }

    /// `id` takes `leaf`'s place under `parent` in `tree`, and `leaf` becomes its
    /// child there (a pre-emption: `preempt`, `insert_shallow`).
    fn take_leaf_place(&mut self, id: NodeId, tree: u8, leaf: NodeId, parent: NodeId) {
        if self.members[&id].parents[usize::from(tree)].is_some() {
            self.detach(id, tree);
        }
        self.detach(leaf, tree);
        self.attach(id, tree, parent);
        self.attach(leaf, tree, id);
        self.stats.preemptions += 1;
    }

    /// Whether a child of `parent` in `tree` would be deeper than the bound.
    pub(crate) fn too_deep_under(&self, parent: NodeId, tree: u8) -> bool {
        self.depth(parent, tree) >= super::select::depth_bound(self.members.len())
    }

    /// `id` (interior in `tree`, with room for a child of its own) takes the place
    /// of the shallowest leaf found in that tree, which becomes its child: only
    /// the newest joiners have spare uplink in a tight population, and placing
    /// each under the one before chained them 40 deep (issue 10's full
    /// recomputation: a flash crowd of 1 000 peers at Σu 1.25). The search runs
    /// breadth first from the top level over at most [`INSERT_SCAN_LIMIT`]
    /// members (whole levels: the last one may pass it); a leaf under a parent of
    /// the joiner's region wins a tie, else the first found.
    /// A middle member (D2) is never the leaf: it is fed from the levels above.
    ///
    /// Cost: every child of the levels above the leaf's is looked at (one
    /// lookup each: `Member::kid_trees` says whether it is a leaf). In the last
    /// level searched (the leaf's, or the one past the limit) a member whose
    /// `Member::leaves` is 0 is passed by, the search stops at the first leaf
    /// under a parent of the joiner's region, and once a leaf is found only such
    /// parents are looked at: at 10⁶ peers that level runs to thousands of
    /// members, each with children to read.
    fn insert_shallow(&mut self, id: NodeId, tree: u8, policy: &dyn ParentPolicy) -> bool {
        let Some(me) = self.members.get(&id) else {
            return false;
        };
        if me.slots < 2 || me.spare() == 0 || me.parents[usize::from(tree)].is_some() {
            return false;
        }
        let Some((leaf, parent)) = self.shallow_leaf(id, tree) else {
            return false;
        };
        if !self.cap_allows(id, parent) || !self.cap_allows(leaf, id) {
            return false;
        }
        if !policy.allows(self, id, parent) || !policy.allows(self, leaf, id) {
            return false;
        }
        self.take_leaf_place(id, tree, leaf, parent);
        true
    }

    /// The shallowest leaf of `tree` found breadth first from the top level
    /// (see `insert_shallow`), other than `id`, with its parent. A member with
    /// no parent in `tree` is not reached, nor is anything below it.
    pub(crate) fn shallow_leaf(&self, id: NodeId, tree: u8) -> Option<(NodeId, NodeId)> {
        let region = self.members.get(&id)?.region;
        let t = usize::from(tree);
        let bound = super::select::depth_bound(self.members.len());
        // Each member of the level with whether it is of the joiner's region and
        // its count of leaf children (`Member::leaves`).
        let entry = |m: &Member| (m.region == region, m.leaves.get(t).copied().unwrap_or(0));
        let mut level: Vec<(NodeId, (bool, u32))> = self
            .top_order
            .iter()
            .map(|p| (*p, self.members.get(p).map_or((false, 0), entry)))
            .collect();
        let mut seen = 0usize;
        let mut depth = 0u32;
        let mut found: Option<(bool, NodeId, NodeId)> = None;
        while !level.is_empty() && depth < bound && seen < INSERT_SCAN_LIMIT && found.is_none() {
            // Whether a next level would be searched should this one offer no
            // leaf: when not, a member without leaf children is passed by.
            let further = depth + 1 < bound && seen + level.len() < INSERT_SCAN_LIMIT;
            let mut next = Vec::new();
            for &(p, (p_local, leaves)) in &level {
                seen += 1;
                match found {
                    // A leaf under a parent of the region: nothing beats it.
                    Some((true, _, _)) => break,
                    // Only a leaf under a parent of the region would.
                    Some((false, _, _)) if !p_local => continue,
                    _ => {}
                }
                if leaves == 0 && (found.is_some() || !further) {
                    continue;
                }
                for w in self.children[t].get(&p).into_iter().flatten() {
                    let Some(wm) = self
                        .members
                        .get(w)
                        .filter(|m| m.kind == MemberKind::Peer && !m.top && !m.middle)
                    else {
                        continue;
                    };
                    if *w == id {
                        continue;
                    }
                    if !self.has_kids(*w, wm, tree) {
                        // The first leaf under `p` is the one it offers (and the
                        // next level is not searched).
                        found = Some((p_local, *w, p));
                        break;
                    } else if found.is_none() && further {
                        next.push((*w, entry(wm)));
                    }
                }
            }
            level = next;
            depth += 1;
        }
        found.map(|(_, leaf, parent)| (leaf, parent))
    }

    /// A member leaves (LOGOFF, crash, ejection): its children are re-homed.
    pub(crate) fn remove(&mut self, id: NodeId, cfg: &PeerConfig, policy: &dyn ParentPolicy) {
        let Some(m) = self.members.get(&id) else {
            return;
        };
        self.stats.leaves += 1;
        self.changes_since_full += 1;
        let was_top = m.top;
        for t in 0..self.k {
            self.detach(id, t);
        }
        self.leave_middle(id);
        self.release_recovery_children(id);
        let orphans = self.release_children(id);
        self.drop_push_link(id);
        self.update(id, |m| {
            m.slots = 0;
            m.interior = None;
            m.used = 0;
        });
        self.remove_member(id);
        self.pending.remove(&id);
        self.dirty.remove(&id);
        self.rejoining.remove(&id);
        self.rejoining.forget_deferred(id);
        self.rejoining.top_held.remove(&id);
        self.departed.insert(id);
        if was_top {
            self.top_children.remove(&id);
            self.rebuild_top(usize::from(cfg.mesh_c));
            let relink: Vec<NodeId> = self.repaired_by(id).collect();
            for n in relink {
                self.set_repair_link(n);
            }
        }
        for (c, t) in orphans {
            self.rehome(c, t, &[], cfg, policy);
        }
        if was_top {
            self.refresh_middle(cfg);
        }
    }

    /// `child` takes a new parent in `tree`, never one of `avoid` (C6).
    pub(crate) fn rehome(
        &mut self,
        child: NodeId,
        tree: u8,
        avoid: &[NodeId],
        cfg: &PeerConfig,
        policy: &dyn ParentPolicy,
    ) -> bool {
        if self.members.get(&child).is_none_or(|m| m.top) {
            return false;
        }
        let old = self.detach(child, tree);
        let mut avoid = avoid.to_vec();
        avoid.extend(old);
        self.stats.reassignments += 1;
        match self.select_parent(child, tree, &avoid, cfg.candidates, policy) {
            Ok(p) => {
                self.attach(child, tree, p);
                self.set_repair_link(child);
                true
            }
            Err(_) => {
                // Nothing better: keep the old parent if it is still a member.
                if let Some(o) = old.filter(|o| self.members.contains_key(o)) {
                    if self.members[&o].spare() > 0 && !self.is_ancestor(child, o, tree) {
                        self.attach(child, tree, o);
                        return false;
                    }
                }
                // Every spare slot in the tree may be below it.
                if self.take_leaf_parent(child, tree, &avoid, cfg, policy) {
                    self.set_repair_link(child);
                    return true;
                }
                self.pending.insert(child);
                false
            }
        }
    }

    /// A member reported its parent link bad (silent, dead, refusing): every tree
    /// it took from that parent is re-homed elsewhere, and the parent's history
    /// drops. A top member gets its push tree rebuilt around the parent.
    pub(crate) fn link_bad(
        &mut self,
        child: NodeId,
        parent: NodeId,
        cfg: &PeerConfig,
        policy: &dyn ParentPolicy,
    ) -> bool {
        if !self.members.contains_key(&child) {
            return false;
        }
        self.stats.partial_recomputations += 1;
        if self.blamed.insert(parent) {
            if let Some(p) = self.members.get_mut(&parent) {
                p.history -= 1;
            }
        }
        let m = self.members.get(&child).expect("checked");
        if m.top {
            if m.lazy.contains(&parent) || m.eager != Some(parent) {
                return true;
            }
            self.dirty.insert(child);
            self.rebuild_top(usize::from(cfg.mesh_c));
            return true;
        }
        let trees: Vec<u8> = (0..self.k)
            .filter(|t| m.parents[usize::from(*t)] == Some(parent))
            .collect();
        for t in trees {
            self.rehome(child, t, &[parent], cfg, policy);
        }
        true
    }
}
