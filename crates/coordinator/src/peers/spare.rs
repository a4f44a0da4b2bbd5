//! The spare index of the peer overlay (C4, C6: "a priority queue by spare
//! uplink"): per tree and region, the interior members with spare slots, most
//! spare first; per region, the top members with spare slots (they feed any
//! tree); and which bottom members each top member repairs. Kept as members
//! change (`PeerOverlay::update` unindexes and indexes again), so a join never
//! scans every member.

use super::overlay::{IndexKey, PeerOverlay};
use crate::registry::RegionId;
use std::cmp::Reverse;
use std::collections::BTreeSet;
use tiercast_proto::NodeId;

impl PeerOverlay {
    pub(crate) fn index_key(&self, id: NodeId) -> Option<IndexKey> {
        let m = self.members.get(&id)?;
        let spare = m.spare();
        if spare == 0 {
            return None;
        }
        let tree = if m.top { None } else { Some(m.interior?) };
        Some((tree, m.region, (Reverse(spare), id)))
    }

    pub(crate) fn unindex(&mut self, id: NodeId) {
        if let Some(m) = self.members.get(&id) {
            self.slots_total -= u64::from(m.slots);
            self.top_members -= usize::from(m.top);
            self.weakest.remove(&(m.slots, id));
        }
        if let Some(m) = self.members.get(&id).filter(|m| !m.top) {
            for l in &m.lazy {
                if let Some(set) = self.repair_of.get_mut(l) {
                    set.remove(&id);
                    if set.is_empty() {
                        self.repair_of.remove(l);
                    }
                }
            }
        }
        if let Some((tree, region, key)) = self.index_key(id) {
            let set = match tree {
                None => self.top_spare.get_mut(&region),
                Some(t) => self.spare[usize::from(t)].get_mut(&region),
            };
            if let Some(s) = set {
                s.remove(&key);
            }
        }
    }

    pub(crate) fn index(&mut self, id: NodeId) {
        if let Some(m) = self.members.get(&id) {
            self.slots_total += u64::from(m.slots);
            self.top_members += usize::from(m.top);
            if self.is_weak(m) {
                self.weakest.insert((m.slots, id));
            }
        }
        if let Some(m) = self.members.get(&id).filter(|m| !m.top) {
            for l in &m.lazy {
                self.repair_of.entry(*l).or_default().insert(id);
            }
        }
        if let Some((tree, region, key)) = self.index_key(id) {
            let map = match tree {
                None => &mut self.top_spare,
                Some(t) => &mut self.spare[usize::from(t)],
            };
            map.entry(region).or_default().insert(key);
        }
    }

    /// The bottom members whose repair link `id` is.
    pub(crate) fn repaired_by(&self, id: NodeId) -> impl Iterator<Item = NodeId> + '_ {
        self.repair_of.get(&id).into_iter().flatten().copied()
    }

    /// How many bottom members have `id` as their repair link (the set's
    /// length: not a walk of it — a top member may repair 10⁴ members).
    pub(crate) fn repaired_count(&self, id: NodeId) -> u32 {
        self.repair_of.get(&id).map_or(0, |s| s.len() as u32)
    }

    /// Candidates with spare slots in `tree` of `region`, most spare first.
    pub(crate) fn spare_in(&self, tree: u8, region: RegionId) -> impl Iterator<Item = NodeId> + '_ {
        let bottom = self.spare[usize::from(tree)]
            .get(&region)
            .into_iter()
            .flat_map(|s| s.iter().map(|(_, id)| *id));
        let top = self
            .top_spare
            .get(&region)
            .into_iter()
            .flat_map(|s| s.iter().map(|(_, id)| *id));
        top.chain(bottom)
    }

    /// Regions that have any spare slot in `tree`.
    pub(crate) fn regions_with_spare(&self, tree: u8) -> BTreeSet<RegionId> {
        self.spare[usize::from(tree)]
            .iter()
            .chain(self.top_spare.iter())
            .filter(|(_, s)| !s.is_empty())
            .map(|(r, _)| *r)
            .collect()
    }
}
