//! Parent selection for one substream (C4, C6): the feasible parents (spare slots
//! in that tree, not below the child), pruned by policy (a hook: everything is
//! allowed until the policy database arrives), ranked by history, nearest first.
//! "A priority queue by spare uplink, then pick from a larger set the nearest":
//! the `candidates` members with the most spare uplink in the child's region are
//! looked at (then other regions'), and among them the best history, then the
//! shallowest, wins. The origin comes last: its uplink is kept for the top level.
//! A member deeper than ⌈log₂ members⌉ in that tree comes after every shallower
//! one, and while all the candidates looked at are that deep the search goes on
//! (up to [`DEEP_SCAN_LIMIT`] members): after a wave of joiners the most spare
//! uplink is the newest joiners', and picking among them alone chained each
//! joiner under the one before (issue 10's partition under peers). Locality
//! yields to depth: when every candidate in the child's region is that deep (a
//! cut-off region whose peers all come back at once), a shallow parent in
//! another region is taken first (12 seeds: after the heal 0.9840 → 0.9865,
//! worst seed 0.9655 → 0.9796).
//!
//! A member not yet proven fed (`Member::proven`: no heartbeat since it joined
//! showed a pushing link delivering) comes after every proven one at the same
//! rank and, like a deep one, makes its region yield: a healed region's peers all
//! ask again within a second, and each was placed under others not fed yet, so
//! the stream reached them only level by level (12 seeds, after the heal: see
//! `docs/BENCHMARKS.md`, 2026-12-05 seventh).
//!
//! Cost: each candidate looked at costs its depth, remembered by the overlay
//! (a walk up only to the first member walked before, see
//! [`PeerOverlay::depth`]), and, for a child with a subtree of its own in that
//! tree (a re-homed member), a walk up from the candidate to rule out its
//! descendants; a joiner has none and needs no walk.

use super::overlay::{Member, MemberKind, PeerOverlay};
use crate::history::grade::Grade;
use crate::registry::RegionId;
use std::cmp::Reverse;
use tiercast_proto::NodeId;

/// A candidate's rank, lower is better (see `select_parent`).
type RankKey = (bool, bool, bool, bool, i32, u32, Reverse<Grade>, u32);

/// Members looked at in one region at most while every candidate so far is
/// deeper than the bound (see `select_parent`).
const DEEP_SCAN_LIMIT: usize = 64;

/// The depth past which a parent is taken only when no shallower one is found:
/// ⌈log₂ members⌉, at least 4 — a balanced tree of fan-out 2 is that deep.
pub(crate) fn depth_bound(members: usize) -> u32 {
    (usize::BITS - members.max(1).leading_zeros()).max(4)
}

/// Why no parent was found, for the event log and the peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NoParent {
    /// No member with spare uplink carries this substream.
    NoSpareUplink,
    /// Every member with spare uplink is below the child in this tree.
    OnlyDescendants,
    /// The policies refused every candidate that was not below the child (a
    /// link cap between regions, [`super::caps`], or the policy hook).
    Policy,
}

/// Decides whether `parent` may feed `child` (C3 policies plug in here:
/// `policy/parent_rules.rs`), and what to look at first. Every method but
/// `allows` has a default that changes nothing.
pub trait ParentPolicy {
    fn allows(&self, overlay: &PeerOverlay, child: NodeId, parent: NodeId) -> bool;

    /// Members `child` should take a parent among before any other that is no
    /// better placed (its affinity groups), pushed onto `out`.
    fn preferred(&self, _child: NodeId, _out: &mut Vec<NodeId>) {}

    /// Whether regions `a` and `b` are joined by a peering link (searched
    /// before other regions).
    fn peering(&self, _a: RegionId, _b: RegionId) -> bool {
        false
    }

    /// Whether any peering link is declared (else the regions keep their order).
    fn prefers_peering(&self) -> bool {
        false
    }

    /// The rules applied in this one's place when it leaves a child with no
    /// parent (a declared fall-back, C3).
    fn fallback(&self) -> Option<&dyn ParentPolicy> {
        None
    }
}

/// No policy: every feasible parent is allowed.
pub struct AllowAll;

impl ParentPolicy for AllowAll {
    fn allows(&self, _: &PeerOverlay, _: NodeId, _: NodeId) -> bool {
        true
    }
}

impl PeerOverlay {
    /// The parent `child` should take in `tree`, never one of `avoid`.
    pub fn select_parent(
        &self,
        child: NodeId,
        tree: u8,
        avoid: &[NodeId],
        candidates: usize,
        policy: &dyn ParentPolicy,
    ) -> Result<NodeId, NoParent> {
        self.select_parent_within(child, tree, avoid, candidates, policy, false)
    }

    /// `select_parent`, the caps between regions read with their premium
    /// fall-backs when `on_fallback` ([`super::cap_fallback`]).
    fn select_parent_within(
        &self,
        child: NodeId,
        tree: u8,
        avoid: &[NodeId],
        candidates: usize,
        policy: &dyn ParentPolicy,
        on_fallback: bool,
    ) -> Result<NodeId, NoParent> {
        let Some(me) = self.members.get(&child) else {
            return Err(NoParent::NoSpareUplink);
        };
        let mut saw_any = false;
        let mut saw_allowed = false;
        let mut saw_refused = false;
        let bound = depth_bound(self.members.len());
        // Without children in this tree (a joiner) no candidate is below it.
        let has_subtree = self.children[usize::from(tree)].contains_key(&child);
        let mut deep: Option<(RankKey, NodeId)> = None;
        let rank = |p: NodeId, m: &Member| -> RankKey {
            let depth = self.depth_of(p, m, tree);
            // Lower is better: origin last (whatever the others' history: its
            // uplink is kept for the top level), a middle member fed from the
            // levels above (D2), not deeper than the bound, proven fed,
            // blamed lately (bad first out), depth, the history store's
            // record (good, neutral, bad: a tie-breaker of depth — ranked
            // before it, tight-strong's lag p95 rose 1685 → 1762 ms over
            // seeds 31-34), less spare.
            (
                m.kind == MemberKind::Origin,
                me.middle && !(m.top || m.middle),
                depth > bound,
                !m.proven,
                -m.history.min(0),
                depth,
                Reverse(m.record),
                u32::MAX - m.spare(),
            )
        };
        // C3's affinity: a `should` partner that can feed it and is placed no
        // worse than the best of the search below is taken first.
        let mut partners = Vec::new();
        policy.preferred(child, &mut partners);
        let mut partner: Option<(RankKey, NodeId)> = None;
        for p in partners {
            if avoid.contains(&p)
                || !self.may_feed(p, child, tree)
                || !policy.allows(self, child, p)
            {
                continue;
            }
            let key = rank(p, &self.members[&p]);
            if partner.as_ref().is_none_or(|(k, _)| key < *k) {
                partner = Some((key, p));
            }
        }
        if let Some((k, p)) = partner {
            if !k.0 && !k.1 && !k.2 && !k.3 {
                return Ok(p);
            }
        }
        let mut regions: Vec<_> = vec![me.region];
        regions.extend(
            self.regions_with_spare(tree)
                .into_iter()
                .filter(|r| *r != me.region),
        );
        if policy.prefers_peering() {
            // C3's peering links: other regions across one first (stable).
            regions[1..].sort_by_key(|r| !policy.peering(me.region, *r));
        }
        // C8: a bottom peer of a region split into clusters looks in its own
        // cluster first (with the region's shared top and middle members), then
        // in its whole region, then in the others ([`super::clusters`]).
        let own_cluster =
            (me.kind == MemberKind::Peer && !me.top && self.clusters.clusters_in(me.region) > 1)
                .then_some(me.cluster);
        let scopes = own_cluster
            .map(|c| (me.region, Some(c)))
            .into_iter()
            .chain(regions.into_iter().map(|r| (r, None)));
        for (region, cluster) in scopes {
            let mut best: Option<(RankKey, NodeId)> = None;
            let (mut looked, mut scanned) = (0, 0);
            for p in self.spare_in(tree, region) {
                scanned += 1;
                if scanned > DEEP_SCAN_LIMIT && best.is_some() {
                    break;
                }
                if let Some(c) = cluster {
                    // Bounded: a cluster with no room is left for the region.
                    if scanned > DEEP_SCAN_LIMIT {
                        break;
                    }
                    if !self.in_cluster_of(c, p) {
                        continue;
                    }
                }
                if p == child || avoid.contains(&p) {
                    continue;
                }
                saw_any = true;
                if has_subtree && self.is_ancestor(child, p, tree) {
                    continue;
                }
                let capped = if on_fallback {
                    !self.cap_fallback_allows(child, p)
                } else {
                    !self.cap_allows(child, p)
                };
                if capped || !policy.allows(self, child, p) {
                    saw_refused = true;
                    continue;
                }
                saw_allowed = true;
                let key = rank(p, &self.members[&p]);
                if best.as_ref().is_none_or(|(k, _)| key < *k) {
                    best = Some((key, p));
                }
                looked += 1;
                // The most-spare members may all be deep (a wave of joiners, each
                // placed under the one before): look further for a shallow one.
                let good = best.as_ref().is_some_and(|(k, _)| !k.2 && !k.3);
                if looked >= candidates.max(1) && good {
                    break;
                }
            }
            // Locality yields to depth: a region whose candidates are all deeper
            // than the bound (its members just came back, each under the one
            // before) is left for a shallow parent in the next region.
            match best {
                Some((k, p)) if !k.2 && !k.3 => return Ok(p),
                Some((k, p)) if deep.as_ref().is_none_or(|(d, _)| k < *d) => {
                    deep = Some((k, p));
                }
                _ => {}
            }
        }
        if let Some((_, p)) = deep {
            return Ok(p);
        }
        if let Some((_, p)) = partner {
            return Ok(p);
        }
        debug_assert!(!saw_allowed, "an allowed candidate is always taken");
        if saw_refused && !on_fallback && self.may_cross_on_fallback(child) {
            // C3: a premium child the caps between regions leave with nothing
            // crosses on their declared fall-back.
            let across = self.select_parent_within(child, tree, avoid, candidates, policy, true);
            if across.is_ok() {
                return across;
            }
        }
        if saw_refused {
            if let Some(fallback) = policy.fallback() {
                // C3: the declared fall-back, only when the rules leave nothing.
                return self.select_parent_within(
                    child,
                    tree,
                    avoid,
                    candidates,
                    fallback,
                    on_fallback,
                );
            }
        }
        Err(if !saw_any {
            NoParent::NoSpareUplink
        } else if saw_refused {
            NoParent::Policy
        } else {
            NoParent::OnlyDescendants
        })
    }
}

#[cfg(test)]
mod tests {
    use super::AllowAll;
    use crate::peers::overlay::{MemberKind, PeerOverlay};
    use crate::peers::tests::{cfg, info, join_peers, with_origin, RATE};
    use crate::registry::RegionId;
    use tiercast_proto::{NodeId, Timestamp};

    #[test]
    fn a_joiner_takes_parents_proven_fed_before_unproven_ones_of_its_own_region() {
        // Region 1's members came back at once (a healed partition) with their
        // streams stalled, and none has yet reported being fed; region 0's are fed. A joiner in region 1 takes its
        // parents in region 0 — and, once region 1's members report being fed, there.
        let t0 = Timestamp::ZERO;
        let c = cfg();
        let mut o = with_origin(t0, &c, 4 * RATE);
        join_peers(&mut o, t0, &c, 2..6, 2 * RATE);
        let join_r1 = |o: &mut PeerOverlay, id: u32, uplink: u64| {
            o.join(
                t0,
                info(id),
                RegionId(1),
                MemberKind::Peer,
                uplink,
                &c,
                &AllowAll,
            );
        };
        for id in 10..14 {
            join_r1(&mut o, id, 2 * RATE);
        }
        for id in 10..14 {
            o.update(NodeId(id), |m| m.proven = false);
        }
        let parents_of = |o: &PeerOverlay, id: u32| -> Vec<u32> {
            o.members[&NodeId(id)]
                .parents
                .iter()
                .map(|p| p.expect("placed").0)
                .collect()
        };
        join_r1(&mut o, 20, 0);
        let p = parents_of(&o, 20);
        assert!(
            p.iter().all(|p| (1..6).contains(p)),
            "fed parents of region 0 (or the origin), not region 1's: {p:?}"
        );
        for id in 10..14 {
            o.update(NodeId(id), |m| m.proven = true);
        }
        join_r1(&mut o, 21, 0);
        let p = parents_of(&o, 21);
        assert!(
            p.iter().all(|p| (10..14).contains(p)),
            "its own region's, once fed: {p:?}"
        );
    }
}
