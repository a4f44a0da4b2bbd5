//! The top level (D1, D3): the origin, the waypoint relays, and the preferred
//! peers — output above `top_uplink_factor` × the stream rate, stable for
//! `stable_ms`, no bad history — at most `top_per_region` per region, re-evaluated
//! every `top_review_ms`. They hold the whole stream on a c-connected mesh (a
//! Harary graph: survives c−1 simultaneous failures): blocks are pushed down a
//! shallow push tree (each member under the shallowest member fed from the origin
//! with room, each child booking k slots of its parent), and every mesh edge that
//! is not a push link is a lazy link that announces what it has and answers what
//! is missing — flooding with duplicate elimination, where a block crosses each
//! node about once until the tree breaks.

use super::overlay::{MemberKind, PeerOverlay};
use crate::config::PeerConfig;
use crate::history::grade::Grade;
use std::collections::{BTreeMap, BTreeSet};
use tiercast_proto::{NodeId, Timestamp};

/// The Harary graph H(c, n) on `order`: each node linked to the c/2 nearest on
/// each side of a ring, and for odd c to the opposite node. c-connected for n > c.
pub fn harary_mesh(order: &[NodeId], c: usize) -> BTreeMap<NodeId, BTreeSet<NodeId>> {
    let n = order.len();
    let mut mesh: BTreeMap<NodeId, BTreeSet<NodeId>> =
        order.iter().map(|id| (*id, BTreeSet::new())).collect();
    let mut link = |a: usize, b: usize| {
        let (a, b) = (order[a % n], order[b % n]);
        if a != b {
            mesh.entry(a).or_default().insert(b);
            mesh.entry(b).or_default().insert(a);
        }
    };
    if n < 2 || c == 0 {
        return mesh;
    }
    if c + 1 >= n {
        for a in 0..n {
            for b in a + 1..n {
                link(a, b);
            }
        }
        return mesh;
    }
    for a in 0..n {
        for d in 1..=c / 2 {
            link(a, a + d);
        }
        if c % 2 == 1 {
            link(a, a + n / 2);
        }
    }
    mesh
}

/// Hops from a root of the push tree being built (`eager`: member → push parent,
/// None for a root and for a member left without one); None when `u` hangs
/// under a member left without a push parent (it is fed by pulls only).
fn push_depth(
    eager: &BTreeMap<NodeId, Option<NodeId>>,
    roots: &BTreeSet<NodeId>,
    mut u: NodeId,
) -> Option<usize> {
    let mut depth = 0;
    while let Some(Some(p)) = eager.get(&u) {
        u = *p;
        depth += 1;
        if depth > eager.len() {
            return None; // a cycle cannot form, but never loop on one
        }
    }
    roots.contains(&u).then_some(depth)
}

impl PeerOverlay {
    /// Peers that qualify for the top level now (D1), best first, per region capped.
    pub fn preferred_peers(&self, now: Timestamp, cfg: &PeerConfig) -> Vec<NodeId> {
        let need = (cfg.top_uplink_factor * self.rate_bps as f64) as u64;
        let stable_us = cfg.stable_ms.saturating_mul(1000);
        // Incumbency (hysteresis): a member already on the top level stays while
        // its history is above twice the tolerance, and wins ties of uplink with a
        // newcomer — swapping equals costs a re-link of the push tree and a re-home
        // of every bottom child of both, which a tight population cannot absorb.
        let tolerated = |m: &super::overlay::Member| {
            let tol = if m.top {
                cfg.history_tolerance.saturating_mul(2)
            } else {
                cfg.history_tolerance
            };
            m.history >= -tol
        };
        let mut eligible: Vec<_> = self
            .members
            .values()
            .filter(|m| m.kind == MemberKind::Peer)
            .filter(|m| m.uplink_bps >= need && tolerated(m))
            .filter(|m| m.top || now.saturating_since(m.joined_at) >= stable_us)
            // D1's good history: no newcomer with a bad record in the history
            // store; on ties of uplink the better record first.
            .filter(|m| m.top || m.record != Grade::Bad)
            .map(|m| {
                let (up, rec) = (std::cmp::Reverse(m.uplink_bps), std::cmp::Reverse(m.record));
                (up, !m.top, rec, m.info.id, m.region)
            })
            .collect();
        eligible.sort();
        let eligible = eligible.into_iter().map(|(u, _, _, id, r)| (u, id, r));
        let mut per_region: BTreeMap<_, usize> = BTreeMap::new();
        eligible
            .filter(|(_, _, r)| {
                let n = per_region.entry(*r).or_default();
                *n += 1;
                *n <= cfg.top_per_region
            })
            .map(|(_, id, _)| id)
            .collect()
    }

    /// D1's periodic re-evaluation, in place: newly preferred peers leave the
    /// bottom trees (their children are re-homed) and join the mesh; peers no
    /// longer preferred go back to the bottom. Nothing else moves.
    pub(crate) fn review_top(
        &mut self,
        now: Timestamp,
        cfg: &PeerConfig,
        policy: &dyn super::select::ParentPolicy,
    ) -> bool {
        // History heals: one bad mark forgiven per review without blame.
        let blamed = std::mem::take(&mut self.blamed);
        for m in self.members.values_mut_unordered() {
            if m.history < 0 && !blamed.contains(&m.info.id) {
                m.history += 1;
            }
        }
        let want = self.preferred_peers(now, cfg);
        let promote: Vec<NodeId> = want
            .iter()
            .copied()
            .filter(|id| !self.members[id].top)
            .collect();
        let demote: Vec<NodeId> = self
            .members
            .values()
            .filter(|m| m.top && m.kind == MemberKind::Peer && !want.contains(&m.info.id))
            .map(|m| m.info.id)
            .collect();
        if promote.is_empty() && demote.is_empty() {
            return false;
        }
        self.stats.partial_recomputations += 1;
        let mut orphans = Vec::new();
        for id in &promote {
            self.leave_middle(*id);
            for t in 0..self.k {
                self.detach(*id, t);
            }
            orphans.extend(self.release_children(*id));
            let slots = self.top_slots_for(self.members[id].uplink_bps);
            self.update(*id, |m| {
                m.used = 0;
                m.interior = None;
                m.top = true;
                m.slots = slots;
                m.lazy.clear();
            });
            self.pending.remove(id);
        }
        for id in &demote {
            // Its push children are re-linked by the mesh rebuild; the bottom
            // children it fed from the top level are re-homed, as on a leave;
            // its recovery children get new parents in `refresh_middle`.
            orphans.extend(self.release_children(*id));
            self.release_recovery_children(*id);
            self.drop_push_link(*id);
            if let Some(kids) = self.top_children.remove(id) {
                let k = u32::from(self.k) * kids.len() as u32;
                self.update(*id, |m| m.used = m.used.saturating_sub(k));
            }
            let slots = self.slots_for(self.members[id].uplink_bps);
            self.update(*id, |m| {
                m.top = false;
                m.slots = slots;
                m.eager = None;
                m.lazy.clear();
                m.used = 0;
            });
        }
        self.rebuild_top(usize::from(cfg.mesh_c));
        for id in demote {
            self.place(id, false, cfg, policy);
        }
        for (c, t) in orphans {
            if self.members.contains_key(&c) {
                self.rehome(c, t, &[], cfg, policy);
            }
        }
        if cfg.repair_link {
            let bottom: Vec<NodeId> = self
                .members
                .values()
                .filter(|m| !m.top && m.lazy.is_empty())
                .map(|m| m.info.id)
                .collect();
            for id in bottom {
                self.set_repair_link(id);
            }
        }
        true
    }

    /// Rebuilds the mesh and its push tree over the current top members; returns
    /// top members left without a push parent (no capacity).
    pub(crate) fn rebuild_top(&mut self, c: usize) -> Vec<NodeId> {
        self.top_changed();
        // Origin first, then waypoints, then peers (each by id): the ring keeps the
        // strongest next to the origin.
        let mut order: Vec<NodeId> = self
            .members
            .values()
            .filter(|m| m.top)
            .map(|m| (m.kind, std::cmp::Reverse(m.uplink_bps), m.info.id))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(|(_, _, id)| id)
            .collect();
        order.dedup();
        let mesh = harary_mesh(&order, c);
        // Release the old push tree (remembering who pushed to whom).
        let old_eager: BTreeMap<NodeId, NodeId> = order
            .iter()
            .filter_map(|id| Some((*id, self.members.get(id)?.eager?)))
            .collect();
        let old: Vec<(NodeId, BTreeSet<NodeId>)> =
            std::mem::take(&mut self.top_children).into_iter().collect();
        let k = u32::from(self.k);
        for (p, kids) in old {
            self.update(p, |m| m.used = m.used.saturating_sub(kids.len() as u32 * k));
        }
        let roots: BTreeSet<NodeId> = order
            .iter()
            .copied()
            .filter(|id| self.members[id].kind == MemberKind::Origin)
            .collect();
        let mut eager: BTreeMap<NodeId, Option<NodeId>> = BTreeMap::new();
        for r in &roots {
            eager.insert(*r, None);
        }
        // Sticky push tree: a member keeps its push parent while that parent is
        // still on the top level with room (re-linking costs a LOGIN and a
        // backlog per member; a new mesh must not move everyone at once). A
        // member waits for its old parent to be placed before another takes it.
        let mut old_kids: BTreeMap<NodeId, Vec<NodeId>> = BTreeMap::new();
        for (v, p) in &old_eager {
            old_kids.entry(*p).or_default().push(*v);
        }
        for r in &roots {
            self.place_old_kids(*r, &old_kids, &mut eager);
        }
        let top: BTreeSet<NodeId> = order.iter().copied().collect();
        // Waits for its old push parent: still on the top level, not placed yet.
        let waits = |eager: &BTreeMap<NodeId, Option<NodeId>>, v: &NodeId| {
            old_eager
                .get(v)
                .is_some_and(|p| !eager.contains_key(p) && top.contains(p))
        };
        // The others, strongest first (those not waiting first), each under the
        // shallowest member fed from a root with room: the tree stays shallow (a
        // walk of the mesh would hang a ring's members in a chain), and members
        // promoted together never hang under each other for want of room.
        let mut unplaced = Vec::new();
        loop {
            let left = || order.iter().copied().filter(|v| !eager.contains_key(v));
            let Some(v) = left().find(|v| !waits(&eager, v)).or_else(|| left().next()) else {
                break;
            };
            let host = self
                .push_host(&order, &eager, &roots, |m| m.spare() >= k)
                .or_else(|| self.make_push_room(&order, &eager, &roots));
            match host {
                Some(u) => self.adopt(u, v, &old_kids, &mut eager),
                None => {
                    eager.insert(v, None);
                    unplaced.push(v);
                }
            }
        }
        for id in &order {
            let e = eager.get(id).copied().flatten();
            let lazy: Vec<NodeId> = mesh
                .get(id)
                .into_iter()
                .flatten()
                .copied()
                .filter(|n| Some(*n) != e)
                .collect();
            let m = self.members.get_mut(id).expect("top member");
            if m.eager != e || m.lazy != lazy {
                m.eager = e;
                m.lazy = lazy.into();
                self.dirty.insert(*id);
            }
        }
        self.top_order = order;
        self.mesh = mesh;
        unplaced
    }

    /// The shallowest placed member fed from one of `roots` that `fits`.
    fn push_host(
        &self,
        order: &[NodeId],
        eager: &BTreeMap<NodeId, Option<NodeId>>,
        roots: &BTreeSet<NodeId>,
        fits: impl Fn(&super::overlay::Member) -> bool,
    ) -> Option<NodeId> {
        order
            .iter()
            .copied()
            .filter(|u| eager.contains_key(u) && fits(&self.members[u]))
            .filter_map(|u| Some((push_depth(eager, roots, u)?, u)))
            .min_by_key(|(d, u)| (*d, std::cmp::Reverse(self.members[u].spare()), *u))
            .map(|(_, u)| u)
    }

    /// `u`'s children in the bottom trees, with the tree of each.
    fn bottom_children(&self, u: NodeId) -> impl Iterator<Item = (NodeId, u8)> + '_ {
        (0..self.k).flat_map(move |t| {
            self.children[usize::from(t)]
                .get(&u)
                .into_iter()
                .flatten()
                .map(move |c| (*c, t))
        })
    }

    /// No member fed from a root has room for a push child: the shallowest one
    /// whose bottom children hold enough of its slots gives some of them up (they
    /// wait in `pending` for a parent elsewhere — the members just promoted have
    /// free slots). The top level's push tree comes before the bottom's leaves.
    fn make_push_room(
        &mut self,
        order: &[NodeId],
        eager: &BTreeMap<NodeId, Option<NodeId>>,
        roots: &BTreeSet<NodeId>,
    ) -> Option<NodeId> {
        let k = u32::from(self.k);
        let host = self.push_host(order, eager, roots, |m| {
            m.spare() + self.bottom_children(m.info.id).count() as u32 >= k
        })?;
        let need = k - self.members[&host].spare().min(k);
        let bumped: Vec<(NodeId, u8)> = self.bottom_children(host).collect();
        for (c, t) in bumped.into_iter().rev().take(need as usize) {
            self.detach(c, t);
            self.pending.insert(c);
        }
        self.stats.push_room_bumps += 1;
        Some(host)
    }

    /// `u` takes `v` as a push child; then `v`'s old push children follow it.
    fn adopt(
        &mut self,
        u: NodeId,
        v: NodeId,
        old_kids: &BTreeMap<NodeId, Vec<NodeId>>,
        eager: &mut BTreeMap<NodeId, Option<NodeId>>,
    ) {
        self.push_link(u, v);
        eager.insert(v, Some(u));
        self.place_old_kids(v, old_kids, eager);
    }

    /// `x` was just placed in the push tree: its old push children that are
    /// still waiting go back under it while it has room, recursively; every node
    /// placed.
    fn place_old_kids(
        &mut self,
        x: NodeId,
        old_kids: &BTreeMap<NodeId, Vec<NodeId>>,
        eager: &mut BTreeMap<NodeId, Option<NodeId>>,
    ) {
        let k = u32::from(self.k);
        let mut stack = vec![x];
        while let Some(u) = stack.pop() {
            for v in old_kids.get(&u).into_iter().flatten().copied() {
                if eager.contains_key(&v) || self.members[&u].spare() < k {
                    continue;
                }
                self.push_link(u, v);
                eager.insert(v, Some(u));
                stack.push(v);
            }
        }
    }

    fn push_link(&mut self, parent: NodeId, child: NodeId) {
        let k = u32::from(self.k);
        self.update(parent, |m| m.used += k);
        self.top_children.entry(parent).or_default().insert(child);
    }

    /// A top member for a bottom member's repair link: one of its region's, spread
    /// by id, else any; never the origin (its uplink is for the top level).
    /// Only top members with a free link take one (their link cap, [`super::links`]).
    pub(crate) fn repair_parent(&self, id: NodeId) -> Option<NodeId> {
        let region = self.members.get(&id)?.region;
        let pick = |pool: Vec<NodeId>| -> Option<NodeId> {
            (!pool.is_empty()).then(|| pool[id.0 as usize % pool.len()])
        };
        let current = self.members.get(&id).and_then(|m| m.lazy.first().copied());
        let full = self.repair_full(current);
        let not_origin =
            |n: &NodeId| self.members[n].kind != MemberKind::Origin && !full.contains(n);
        let own: Vec<NodeId> = self
            .top_order
            .iter()
            .copied()
            .filter(|n| not_origin(n) && self.members[n].region == region)
            .collect();
        // Not across a capped pair: repair pulls are not booked against a cap.
        let uncapped = |n: &NodeId| !self.pair_capped(region, self.members[n].region);
        pick(own).or_else(|| {
            pick(
                self.top_order
                    .iter()
                    .copied()
                    .filter(|n| not_origin(n) && uncapped(n))
                    .collect(),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    fn connected_without(mesh: &BTreeMap<NodeId, BTreeSet<NodeId>>, gone: &[NodeId]) -> bool {
        let alive: Vec<NodeId> = mesh.keys().copied().filter(|n| !gone.contains(n)).collect();
        let Some(start) = alive.first().copied() else {
            return true;
        };
        let mut seen = BTreeSet::from([start]);
        let mut queue = VecDeque::from([start]);
        while let Some(u) = queue.pop_front() {
            for v in &mesh[&u] {
                if !gone.contains(v) && seen.insert(*v) {
                    queue.push_back(*v);
                }
            }
        }
        seen.len() == alive.len()
    }

    #[test]
    fn harary_mesh_survives_any_c_minus_one_failures() {
        for (n, c) in [(7usize, 2usize), (10, 3), (12, 4), (9, 5)] {
            let order: Vec<NodeId> = (1..=n as u32).map(NodeId).collect();
            let mesh = harary_mesh(&order, c);
            assert!(
                mesh.values().all(|s| s.len() >= c),
                "degree ≥ c for n={n} c={c}"
            );
            // Every set of c−1 failures (exhaustive for these sizes).
            let mut sets: Vec<Vec<NodeId>> = vec![vec![]];
            for _ in 0..c - 1 {
                sets = sets
                    .into_iter()
                    .flat_map(|s| {
                        let last = s.last().map_or(0, |n| n.0);
                        order
                            .iter()
                            .filter(move |x| x.0 > last)
                            .map(move |x| {
                                let mut t = s.clone();
                                t.push(*x);
                                t
                            })
                            .collect::<Vec<_>>()
                    })
                    .collect();
            }
            for gone in sets {
                assert!(
                    connected_without(&mesh, &gone),
                    "n={n} c={c} without {gone:?}"
                );
            }
        }
    }
}
