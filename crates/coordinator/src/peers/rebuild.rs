//! Full recomputation (C7, C10, C6): the top level is reviewed (D1), its mesh and
//! push tree rebuilt, and the bottom multi-tree built again greedily, one tree at
//! a time, highest capacity first ([`crate::multitree`]), fed by the top level's
//! spare uplink. When the peers cannot carry themselves, the lowest-uplink peers
//! are ejected until the rest is feasible ([`crate::ejection`]). Only members
//! whose parents changed are told. Partial recomputation (re-homing one link) is
//! in [`super::place`]; [`PeerOverlay::due_for_full`] decides between the two.

use super::overlay::{MemberKind, PeerOverlay};
use super::select::ParentPolicy;
use crate::config::PeerConfig;
use crate::ejection::eject_until_feasible;
use crate::multitree::{build_multitree, MultiTreeError, Parent, PeerCapacity};
use std::collections::BTreeMap;
use tiercast_proto::{NodeId, PeerFeed, Timestamp};

impl PeerOverlay {
    /// C7: enough has changed since the last full recomputation (a fraction of
    /// the members), members have waited for a parent for `pending_grace_ms`
    /// (not merely since the last one: a member bumped a moment ago waits for
    /// the retries first), or it is time anyway.
    pub fn due_for_full(&self, now: Timestamp, cfg: &PeerConfig) -> bool {
        let n = self.members.len().max(1) as f64;
        let since = now.saturating_since(self.last_full);
        (self.changes_since_full as f64 >= cfg.full_threshold * n && since >= 1_000_000)
            || (!self.pending.is_empty()
                && self
                    .pending_since
                    .is_some_and(|t| now.saturating_since(t) >= cfg.pending_grace_ms * 1000))
            || (cfg.full_recompute_ms > 0 && since >= cfg.full_recompute_ms * 1000)
    }

    /// Recomputes everything; returns the peers ejected (they leave the overlay).
    pub(crate) fn full_recompute(
        &mut self,
        now: Timestamp,
        cfg: &PeerConfig,
        policy: &dyn ParentPolicy,
    ) -> Vec<NodeId> {
        self.stats.full_recomputations += 1;
        self.last_full = now;
        self.last_top_review = now;
        self.changes_since_full = 0;
        let before: BTreeMap<NodeId, Vec<PeerFeed>> = self
            .members
            .keys()
            .filter_map(|id| Some((*id, self.assignment(*id)?)))
            .collect();
        // D1: who is on the top level now.
        let preferred = self.preferred_peers(now, cfg);
        self.clear_recovery();
        let ids: Vec<NodeId> = self.members.keys().copied().collect();
        for id in &ids {
            let kind = self.members[id].kind;
            let top = kind != MemberKind::Peer || preferred.contains(id);
            let slots = self.slots_of(top, self.members[id].uplink_bps);
            self.update(*id, |m| {
                m.top = top;
                m.slots = slots;
                m.used = 0;
                m.interior = None;
                m.parents.iter_mut().for_each(|p| *p = None);
                m.eager = None;
                m.lazy.clear();
            });
        }
        for c in self.children.iter_mut() {
            c.clear();
        }
        self.top_children.clear();
        self.pending.clear();
        self.pending_since = None;
        let unplaced_top = self.rebuild_top(usize::from(cfg.mesh_c));
        for id in unplaced_top {
            // No room on the top level for its push link: back to the bottom.
            let slots = self.slots_for(self.members[&id].uplink_bps);
            self.update(id, |m| {
                m.top = false;
                m.slots = slots;
            });
        }
        if !self.top_order.is_empty() {
            self.rebuild_top(usize::from(cfg.mesh_c));
        }
        // The bottom: who stays (ejection), then the trees.
        let source_slots: u64 = self
            .top_order
            .iter()
            .map(|id| u64::from(self.members[id].spare()))
            .sum();
        let sub_rate = self.rate_bps / u64::from(self.k);
        let source_uplink = source_slots.saturating_mul(sub_rate.max(1));
        let mut bottom: Vec<PeerCapacity> = self
            .members
            .values()
            .filter(|m| !m.top)
            .map(|m| PeerCapacity {
                id: m.info.id,
                uplink_bps: self.usable(m.uplink_bps),
                priority: (m.history + 1000).max(0) as u32,
            })
            .collect();
        let mut ejected = Vec::new();
        if let Ok(e) =
            eject_until_feasible(&bottom, source_uplink, self.rate_bps, usize::from(self.k))
        {
            if !e.ejected.is_empty() {
                self.stats.ejected += e.ejected.len() as u64;
                self.stats.ejected_lower_bound += e.tight_bound as u64;
                bottom.retain(|p| !e.ejected.contains(&p.id));
                ejected = e.ejected;
            }
        }
        for id in &ejected {
            self.leave_middle(*id);
            self.ejected.insert(*id);
            self.update(*id, |m| m.slots = 0);
            self.unindex(*id);
            self.members.remove(id);
        }
        let built = build_multitree(&bottom, source_uplink, self.rate_bps, usize::from(self.k));
        let mut left_over = Vec::new();
        match built {
            Ok(tree) => {
                for p in &bottom {
                    let interior = tree.interior_tree(p.id).map(|t| t as u8);
                    self.update(p.id, |m| m.interior = interior);
                }
                for (t, st) in tree.trees.iter().enumerate() {
                    // Parents before children, so sources are picked near the top.
                    let mut order: Vec<(u32, NodeId)> =
                        st.depth.iter().map(|(id, d)| (*d, *id)).collect();
                    order.sort();
                    for (_, id) in order {
                        match st.parent.get(&id) {
                            Some(Parent::Node(p)) => self.attach(id, t as u8, *p),
                            Some(Parent::Source) => match self.select_top(id, t as u8) {
                                Some(p) => self.attach(id, t as u8, p),
                                None => left_over.push(id),
                            },
                            None => left_over.push(id),
                        }
                    }
                }
            }
            Err(MultiTreeError::Infeasible { .. }) | Err(MultiTreeError::Population(_)) => {
                left_over = bottom.iter().map(|p| p.id).collect();
            }
        }
        // Whatever the builder could not place goes through incremental placement.
        left_over.sort();
        left_over.dedup();
        for id in left_over {
            self.place(id, false, cfg, policy);
        }
        if cfg.repair_link {
            let bottom_ids: Vec<NodeId> = bottom.iter().map(|p| p.id).collect();
            for id in bottom_ids {
                self.set_repair_link(id);
            }
        }
        self.refresh_middle(cfg);
        // Tell only those whose parents changed.
        self.dirty.clear();
        for id in self.members.keys() {
            let now_assigned = self.assignment(*id);
            if before.get(id) != now_assigned.as_ref() {
                self.dirty.insert(*id);
            }
        }
        ejected
    }

    /// A top member with spare slots for `child`: its region's first, the origin last.
    fn select_top(&self, child: NodeId, tree: u8) -> Option<NodeId> {
        let region = self.members.get(&child)?.region;
        let ok = |id: &NodeId| self.members[id].top && self.members[id].spare() > 0;
        let not_origin = |id: &NodeId| self.members[id].kind != MemberKind::Origin;
        let _ = tree;
        self.top_order
            .iter()
            .copied()
            .filter(|id| ok(id) && not_origin(id) && self.members[id].region == region)
            .max_by_key(|id| self.members[id].spare())
            .or_else(|| {
                self.top_order
                    .iter()
                    .copied()
                    .filter(|id| ok(id) && not_origin(id))
                    .max_by_key(|id| self.members[id].spare())
            })
            .or_else(|| self.top_order.iter().copied().find(|id| ok(id)))
    }
}
