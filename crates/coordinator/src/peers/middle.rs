//! The middle level (D2, D5) and the choice of algorithm per level and region (D6).
//!
//! Each region keeps a cluster of its high-capacity bottom peers (uplink ≥
//! `middle_uplink_factor`·r, up to `middle_per_region`, highest uplink first): the
//! middle level. They stay interior in the bottom multi-tree — each bottom
//! cluster's trees hang off them — and take their substreams from the top level
//! or other middle members first. On top of the k originals a middle member takes
//! n recovery substreams from the top level (one parent per recovery index, each
//! booked like a substream): Reed–Solomon shards over each group of k consecutive
//! blocks, so any k of the k+n arriving rebuild the group (seed 003).
//!
//! n is chosen per region from the loss its middle members measure (their
//! heartbeats: shards their coded links should have pushed vs those that arrived
//! before the group closed): the least n that keeps a group's loss under
//! `target_group_loss`, capped by `max_redundancy`. A region whose links lose
//! nothing gets n = 0 — its middle level is the plain multi-tree; a lossy one gets
//! the erasure code. That is the per-region choice of D6; the top level floods
//! on its c-connected mesh (D3) and the bottom is the k-substream multi-tree (D4).

use super::overlay::{MemberKind, PeerOverlay};
use crate::config::PeerConfig;
use crate::registry::RegionId;
use std::collections::BTreeSet;
use tiercast_proto::redundancy::redundancy_for_loss;
use tiercast_proto::{NodeId, MAX_FEED_SUBSTREAMS};

/// The distribution algorithm a level of a region runs (D6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// Flooding with duplicate elimination on a c-connected mesh (top level, D3).
    Flood { c: u8 },
    /// A plain push tree (a calm top level, D6).
    Tree,
    /// k substreams, one tree each (D4).
    MultiTree { k: u8 },
    /// k+n erasure-coded substreams (D5).
    Erasure { k: u8, n: u8 },
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Algorithm::Flood { c } => write!(f, "flood(c={c})"),
            Algorithm::Tree => write!(f, "tree"),
            Algorithm::MultiTree { k } => write!(f, "multi-tree(k={k})"),
            Algorithm::Erasure { k, n } => write!(f, "erasure(k={k},n={n})"),
        }
    }
}

/// What the coordinator decided for one region's middle level.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RegionPlan {
    /// Recovery substreams per group (0: plain multi-tree).
    pub n: u8,
    /// Loss measured over the last window that had enough shards (None: not yet).
    pub loss: Option<f64>,
    /// Shards expected / received since the last decision.
    pub window_expected: u64,
    pub window_received: u64,
    /// Groups the region's middle members rebuilt (cumulative, from heartbeats).
    pub groups_rebuilt: u64,
    /// Times n changed.
    pub changes: u64,
    /// Members of the region's cluster now.
    pub middle_members: usize,
}

impl PeerOverlay {
    /// Whether `id` belongs in its region's middle cluster by capacity.
    fn middle_eligible(&self, id: NodeId, cfg: &PeerConfig) -> bool {
        self.members.get(&id).is_some_and(|m| {
            m.kind == MemberKind::Peer
                && !m.top
                && m.history >= -cfg.history_tolerance
                && m.uplink_bps as f64 >= cfg.middle_uplink_factor * self.rate_bps as f64
        })
    }

    /// Recovery substreams of `region`'s middle level.
    pub fn region_n(&self, region: RegionId) -> u8 {
        self.plans.get(&region).map_or(0, |p| p.n)
    }

    /// The algorithm each level of `region` runs now (D6): top, middle, bottom.
    pub fn algorithms(&self, region: RegionId, cfg: &PeerConfig) -> [Algorithm; 3] {
        let k = self.k;
        let middle = match self.region_n(region) {
            0 => Algorithm::MultiTree { k },
            n => Algorithm::Erasure { k, n },
        };
        let top = if self.top_tree {
            Algorithm::Tree
        } else {
            Algorithm::Flood { c: cfg.mesh_c }
        };
        [top, middle, Algorithm::MultiTree { k }]
    }

    /// Middle members of `region`.
    pub fn middle_of(&self, region: RegionId) -> impl Iterator<Item = NodeId> + '_ {
        self.members
            .values()
            .filter(move |m| m.middle && m.region == region)
            .map(|m| m.info.id)
    }

    /// A middle member's heartbeat counters (cumulative): the increase since its
    /// last report goes to its region's window.
    pub(crate) fn middle_report(&mut self, id: NodeId, expected: u64, received: u64, rebuilt: u64) {
        let Some(m) = self.members.get_mut(&id) else {
            return;
        };
        let (e0, r0, b0) = m.shard_counters.as_deref().copied().unwrap_or_default();
        let now = (expected, received, rebuilt);
        // Kept boxed, and only when not all 0 (what an absent record reads).
        m.shard_counters = (now != (0, 0, 0)).then(|| Box::new(now));
        if !m.middle {
            return;
        }
        let plan = self.plans.entry(m.region).or_default();
        // Counters only grow; a restart of the node resets them.
        let de = expected.saturating_sub(e0);
        let dr = received.saturating_sub(r0).min(de);
        plan.window_expected += de;
        plan.window_received += dr;
        plan.groups_rebuilt += rebuilt.saturating_sub(b0);
    }

    /// Periodic (D1's review): each region's n from its measured loss, then the
    /// clusters' members and their recovery parents.
    pub(crate) fn review_middle(&mut self, cfg: &PeerConfig) {
        let k = usize::from(self.k);
        let cap = cfg
            .max_redundancy
            .min(MAX_FEED_SUBSTREAMS.saturating_sub(self.k));
        for plan in self.plans.values_mut() {
            if plan.window_expected < cfg.middle_min_shards.max(1) {
                continue;
            }
            let loss = 1.0 - plan.window_received as f64 / plan.window_expected as f64;
            plan.loss = Some(loss);
            plan.window_expected = 0;
            plan.window_received = 0;
            let n = redundancy_for_loss(loss, k, cfg.target_group_loss).min(usize::from(cap)) as u8;
            if n != plan.n {
                plan.n = n;
                plan.changes += 1;
            }
        }
        self.refresh_middle(cfg);
    }

    /// Brings every region's cluster to its size and every middle member to the
    /// region's n recovery parents.
    pub(crate) fn refresh_middle(&mut self, cfg: &PeerConfig) {
        if cfg.middle_per_region == 0 {
            // Nobody ever entered a cluster.
            return;
        }
        let regions: BTreeSet<RegionId> = self.members.values().map(|m| m.region).collect();
        for region in regions {
            self.plans.entry(region).or_default();
            // Who no longer qualifies leaves the cluster.
            let out: Vec<NodeId> = self
                .middle_of(region)
                .filter(|id| !self.middle_eligible(*id, cfg))
                .collect();
            for id in out {
                self.leave_middle(id);
            }
            let mut size = self.middle_count(region);
            if size < cfg.middle_per_region {
                let mut cands: Vec<(u64, NodeId)> = self
                    .members
                    .values()
                    .filter(|m| m.region == region && !m.middle)
                    .map(|m| (m.uplink_bps, m.info.id))
                    .filter(|(_, id)| self.middle_eligible(*id, cfg))
                    .collect();
                cands.sort_by(|a, b| b.cmp(a));
                for (_, id) in cands {
                    if size >= cfg.middle_per_region {
                        break;
                    }
                    self.enter_middle(id);
                    size += 1;
                }
            }
            let n = self.region_n(region);
            let members: Vec<NodeId> = self.middle_of(region).collect();
            for id in members {
                self.fit_recovery(id, n);
            }
        }
    }

    /// A joining peer enters its region's cluster at once when it qualifies and
    /// there is room.
    pub(crate) fn middle_on_join(&mut self, id: NodeId, cfg: &PeerConfig) {
        if cfg.middle_per_region == 0 {
            return;
        }
        let Some(region) = self.members.get(&id).map(|m| m.region) else {
            return;
        };
        if self.middle_eligible(id, cfg) && self.middle_count(region) < cfg.middle_per_region {
            self.enter_middle(id);
            self.fit_recovery(id, self.region_n(region));
        }
    }

    /// Members of `region`'s cluster.
    fn middle_count(&self, region: RegionId) -> usize {
        self.plans.get(&region).map_or(0, |p| p.middle_members)
    }

    fn enter_middle(&mut self, id: NodeId) {
        if let Some(m) = self.members.get_mut(&id).filter(|m| !m.middle) {
            m.middle = true;
            self.plans.entry(m.region).or_default().middle_members += 1;
            self.dirty.insert(id);
        }
    }

    /// `id` leaves the middle level (or the overlay): its recovery parents are
    /// unbooked.
    pub(crate) fn leave_middle(&mut self, id: NodeId) {
        self.drop_recovery_parents(id);
        if let Some(m) = self.members.get_mut(&id).filter(|m| m.middle) {
            m.middle = false;
            m.recovery.clear();
            if let Some(p) = self.plans.get_mut(&m.region) {
                p.middle_members = p.middle_members.saturating_sub(1);
            }
            self.dirty.insert(id);
        }
    }

    /// Gives middle member `id` exactly `n` recovery parents, keeping good ones.
    fn fit_recovery(&mut self, id: NodeId, n: u8) {
        let n = usize::from(n);
        let have = self.members.get(&id).map_or(0, |m| m.recovery.len());
        for j in (n..have).rev() {
            self.detach_recovery(id, j as u8);
        }
        if let Some(m) = self.members.get_mut(&id) {
            if m.recovery.len() != n {
                m.recovery.resize(n, None);
                self.dirty.insert(id);
            }
        }
        for j in 0..n {
            let cur = self.members[&id].recovery[j];
            if let Some(p) = cur {
                if self.members.get(&p).is_some_and(|pm| pm.top) {
                    continue;
                }
                self.detach_recovery(id, j as u8);
            }
            if let Some(p) = self.select_recovery_parent(id) {
                self.attach_recovery(id, j as u8, p);
            }
        }
    }

    /// A top member with a spare slot for one of `child`'s recovery substreams:
    /// not already feeding it (a link carries one feed, and independent paths
    /// are what the redundancy is for), its region's first, the origin last.
    fn select_recovery_parent(&self, child: NodeId) -> Option<NodeId> {
        let me = self.members.get(&child)?;
        let feeding: BTreeSet<NodeId> = me
            .parents
            .iter()
            .chain(me.recovery.iter())
            .flatten()
            .copied()
            .collect();
        let mut best: Option<((bool, bool, bool), NodeId)> = None;
        for id in &self.top_order {
            let m = &self.members[id];
            if *id == child || m.spare() == 0 {
                continue;
            }
            // Lower is better: not already feeding, same region, not the origin.
            let key = (
                feeding.contains(id),
                m.region != me.region,
                m.kind == MemberKind::Origin,
            );
            if best.as_ref().is_none_or(|(k, _)| key < *k) {
                best = Some((key, *id));
            }
        }
        best.map(|(_, id)| id)
    }

    fn attach_recovery(&mut self, child: NodeId, j: u8, parent: NodeId) {
        self.update(parent, |m| m.used += 1);
        self.recovery_children
            .entry(parent)
            .or_default()
            .insert((child, j));
        if let Some(slot) = self
            .members
            .get_mut(&child)
            .and_then(|m| m.recovery.get_mut(usize::from(j)))
        {
            *slot = Some(parent);
        }
        self.dirty.insert(child);
    }

    fn detach_recovery(&mut self, child: NodeId, j: u8) {
        let Some(parent) = self
            .members
            .get_mut(&child)
            .and_then(|m| m.recovery.get_mut(usize::from(j)))
            .and_then(Option::take)
        else {
            return;
        };
        if let Some(set) = self.recovery_children.get_mut(&parent) {
            set.remove(&(child, j));
            if set.is_empty() {
                self.recovery_children.remove(&parent);
            }
        }
        self.update(parent, |m| m.used = m.used.saturating_sub(1));
        self.dirty.insert(child);
    }

    /// Unbooks every recovery parent of `id`.
    fn drop_recovery_parents(&mut self, id: NodeId) {
        let n = self.members.get(&id).map_or(0, |m| m.recovery.len());
        for j in 0..n {
            self.detach_recovery(id, j as u8);
        }
    }

    /// Takes `id`'s recovery children off it (nothing unbooked: `id` is leaving
    /// its place); they get new parents at the next `refresh_middle`.
    pub(crate) fn release_recovery_children(&mut self, id: NodeId) {
        for (c, j) in self.recovery_children.remove(&id).unwrap_or_default() {
            if let Some(slot) = self
                .members
                .get_mut(&c)
                .and_then(|m| m.recovery.get_mut(usize::from(j)))
            {
                *slot = None;
                self.dirty.insert(c);
            }
        }
    }

    /// Full recomputation: every recovery link goes (bookings are reset there).
    pub(crate) fn clear_recovery(&mut self) {
        self.recovery_children.clear();
        for m in self.members.values_mut_unordered() {
            m.recovery.iter_mut().for_each(|p| *p = None);
        }
    }

    /// Recovery links booked per parent (for `check`).
    pub(crate) fn recovery_links(&self) -> impl Iterator<Item = (NodeId, u32)> + '_ {
        self.recovery_children
            .iter()
            .map(|(p, kids)| (*p, kids.len() as u32))
    }
}

#[cfg(test)]
mod tests;
