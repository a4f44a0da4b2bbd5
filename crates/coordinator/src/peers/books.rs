//! The overlay's own books checked (tests and the simulator's invariants, X5):
//! every link booked once and listed at both ends, no member above its slots,
//! every bottom tree acyclic, every remembered depth the one walked.

use super::overlay::PeerOverlay;
use std::collections::{BTreeMap, BTreeSet};
use tiercast_proto::NodeId;

impl PeerOverlay {
    /// Checks the bookkeeping (tests and the simulator's invariants): every link
    /// booked once and listed at both ends, no member above its slots, every
    /// bottom tree acyclic, every remembered depth the one walked.
    pub fn check(&self) -> Result<(), String> {
        let mut used: BTreeMap<NodeId, u32> = BTreeMap::new();
        for (t, tree) in self.children.iter().enumerate() {
            for (p, kids) in tree {
                if kids.is_empty() {
                    return Err(format!("{p} listed with no children in tree {t}"));
                }
                for c in kids {
                    let m = self.members.get(c).ok_or(format!("child {c} unknown"))?;
                    if m.parents[t] != Some(*p) {
                        return Err(format!("{c} listed under {p} in tree {t} but not linked"));
                    }
                    if self.is_ancestor_walk(*c, *p, t as u8) {
                        return Err(format!("cycle through {c} in tree {t}"));
                    }
                    *used.entry(*p).or_default() += 1;
                }
            }
        }
        for (id, m) in &self.members {
            for (t, p) in m.parents.iter().enumerate() {
                let Some(p) = p else { continue };
                let listed = self.children[t].get(p).is_some_and(|s| s.contains(id));
                if !self.members.contains_key(p) || !listed {
                    return Err(format!("{id} linked to {p} in tree {t} but not listed"));
                }
            }
            for t in 0..self.k {
                let listed = self.children[usize::from(t)].contains_key(id);
                if self.has_kids(*id, m, t) != listed {
                    return Err(format!(
                        "{id}: has children in tree {t}: {listed}, not as marked"
                    ));
                }
            }
            for t in 0..self.k {
                let leaves = self.children[usize::from(t)]
                    .get(id)
                    .into_iter()
                    .flatten()
                    .filter(|c| {
                        self.members
                            .get(c)
                            .is_some_and(|cm| self.counts_as_leaf(**c, cm, t))
                    })
                    .count();
                if m.leaves.get(usize::from(t)).map(|n| *n as usize) != Some(leaves) {
                    return Err(format!(
                        "{id}: leaves counted in tree {t} not the {leaves} it has"
                    ));
                }
            }
            for (t, memo) in m.depth_memo.iter().enumerate() {
                let memo = memo.get();
                if memo >> 32 == u64::from(self.depth_gen[t]) {
                    let walked = self.depth_walk(*id, t as u8);
                    if memo as u32 != walked {
                        return Err(format!(
                            "{id}: depth {} remembered in tree {t}, {walked} walked",
                            memo as u32
                        ));
                    }
                }
            }
        }
        for (p, kids) in &self.top_children {
            *used.entry(*p).or_default() += kids.len() as u32 * u32::from(self.k);
        }
        for (p, links) in self.recovery_links() {
            if !self.members.get(&p).is_some_and(|m| m.top) {
                return Err(format!("recovery parent {p} is not on the top level"));
            }
            *used.entry(p).or_default() += links;
        }
        for (id, m) in &self.members {
            if !m.recovery.is_empty() && !m.middle {
                return Err(format!(
                    "{id} has recovery parents but is not a middle member"
                ));
            }
            for (j, p) in m.recovery.iter().enumerate() {
                let linked = p.is_some_and(|p| {
                    self.recovery_children
                        .get(&p)
                        .is_some_and(|s| s.contains(&(*id, j as u8)))
                });
                if p.is_some() && !linked {
                    return Err(format!("{id}: recovery {j} not booked at its parent"));
                }
            }
        }
        for (id, m) in &self.members {
            let u = used.get(id).copied().unwrap_or(0);
            if u != m.used {
                return Err(format!("{id}: booked {} but feeds {u}", m.used));
            }
            if m.used > m.slots {
                return Err(format!("{id}: {} slots booked of {}", m.used, m.slots));
            }
        }
        let mut repair_of: BTreeMap<NodeId, BTreeSet<NodeId>> = BTreeMap::new();
        for (id, m) in self.members.iter().filter(|(_, m)| !m.top) {
            for l in &m.lazy {
                repair_of.entry(*l).or_default().insert(*id);
            }
        }
        if repair_of != self.repair_of {
            return Err("the repair-link index is out of step with the members".into());
        }
        let weakest: BTreeSet<(u32, NodeId)> = self
            .members
            .iter()
            .filter(|(_, m)| self.is_weak(m))
            .map(|(id, m)| (m.slots, *id))
            .collect();
        if weakest != self.weakest {
            return Err("the weakest-peer index is out of step with the members".into());
        }
        let slots: u64 = self.members.values().map(|m| u64::from(m.slots)).sum();
        let top = self.members.values().filter(|m| m.top).count();
        if (slots, top) != (self.slots_total, self.top_members) {
            return Err(format!(
                "slots {} / top members {} counted, {slots} / {top} held",
                self.slots_total, self.top_members
            ));
        }
        Ok(())
    }
}
