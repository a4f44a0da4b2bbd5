//! The policies in force as the parent selection's hook (C3 → C4): a
//! [`ParentRules`] built from the checked file whenever one is installed, handed
//! to every peer overlay decision as its [`ParentPolicy`]. It answers:
//!
//! - affinity groups (`client.affinity`): a `must_not` group's members never feed
//!   each other ([`ParentPolicy::allows`]); a `should` group's members are looked
//!   at first ([`ParentPolicy::preferred`]), so one is taken before any other
//!   parent that is no better placed (not the origin, not deeper than the bound,
//!   proven fed);
//! - caps on the link between two nodes (`network.link_cap` with `nodes`): a
//!   parent whose links to the child (either direction, `r/k` per substream)
//!   would pass the cap for the child's class is refused; where the cap declares
//!   a fall-back, [`ParentPolicy::fallback`] is the same rules with the fall-back
//!   cap, which `select_parent` applies when the strict rules leave no parent;
//! - peering links (`network.prefer_peering`): among other regions, those across
//!   a peering pair with the child's are searched first
//!   ([`ParentPolicy::peering`]).
//!
//! No relaying during given hours or for a device class is not a pruning here: a
//! node that may not relay joins with no uplink (`relay_rules.rs`), so it has no
//! slot to find. With no rule of these kinds in force there is no `ParentRules`
//! at all and the overlays get [`AllowAll`]: nothing on the hot path changes.
//! Rules apply to the bottom trees' substream links and to a rebuild's plan;
//! the top level (servers and preferred peers, D1/D3) is not pruned.

use super::file::{AffinityMode, ViewerClass};
use super::Policies;
use crate::coordinator::Coordinator;
use crate::peers::select::{AllowAll, ParentPolicy};
use crate::peers::PeerOverlay;
use crate::registry::RegionId;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tiercast_proto::NodeId;

/// Members of a `should` group looked at first, at most (the rest are found by
/// the ordinary search).
const PREFERRED_LIMIT: usize = 32;

/// A node-pair cap (bit/s) for free and for premium children; `None`: no cap
/// for that class.
type PairCaps = [Option<u64>; 2];

/// The parent-selection rules in force (see the module doc).
#[derive(Clone, Debug, Default)]
pub struct ParentRules {
    /// Node → the affinity groups it is in (indexes into `groups`).
    member_of: BTreeMap<NodeId, Vec<u16>>,
    /// Each group's mode and members.
    groups: Vec<(AffinityMode, Vec<NodeId>)>,
    /// Caps on links between two nodes, keyed by the pair in order.
    node_caps: BTreeMap<(NodeId, NodeId), PairCaps>,
    /// Peering region pairs, in order.
    peering: BTreeSet<(RegionId, RegionId)>,
    /// The same rules with the declared fall-back caps.
    fallback: Option<Box<ParentRules>>,
}

fn ordered<T: Ord>(a: T, b: T) -> (T, T) {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

fn bps(mbps: f64) -> u64 {
    (mbps * 1e6).round().max(0.0) as u64
}

const CLASSES: [ViewerClass; 2] = [ViewerClass::Free, ViewerClass::Premium];

impl ParentRules {
    /// The rules of `policies` that act on parent selection, `None` when there
    /// are none; `region_id` maps a region name to the registry's id (names no
    /// node registered with are left out).
    pub fn build(
        policies: &Policies,
        region_id: impl Fn(&str) -> Option<RegionId>,
    ) -> Option<ParentRules> {
        let f = &policies.file;
        let mut rules = ParentRules::default();
        for r in &f.client.affinity {
            if policies.is_dormant(r.name.get_ref()) {
                continue;
            }
            let Ok(g) = u16::try_from(rules.groups.len()) else {
                break;
            };
            let members: Vec<NodeId> = r.members.get_ref().iter().map(|m| NodeId(*m)).collect();
            for m in &members {
                rules.member_of.entry(*m).or_default().push(g);
            }
            rules.groups.push((r.mode, members));
        }
        let mut any_fallback = false;
        let mut fallback_caps = BTreeMap::new();
        for r in &f.network.link_cap {
            let Some(n) = r.nodes.as_ref().map(|n| n.get_ref()) else {
                continue;
            };
            let (Some(&a), Some(&b)) = (n.first(), n.get(1)) else {
                continue;
            };
            let pair = ordered(NodeId(a), NodeId(b));
            if rules.node_caps.contains_key(&pair) {
                continue;
            }
            let mut strict: PairCaps = [None; 2];
            let mut relaxed: PairCaps = [None; 2];
            for (i, class) in CLASSES.into_iter().enumerate() {
                let Some(cap) = policies.node_link_cap(a, b, class) else {
                    continue;
                };
                strict[i] = Some(bps(cap.mbps));
                relaxed[i] = strict[i];
                if let Some(fb) = policies.cap_fallback(&cap, class) {
                    relaxed[i] = Some(bps(fb.mbps));
                    any_fallback = true;
                }
            }
            if strict.iter().any(Option::is_some) {
                rules.node_caps.insert(pair, strict);
                fallback_caps.insert(pair, relaxed);
            }
        }
        for r in &f.network.prefer_peering {
            if policies.is_dormant(r.name.get_ref()) {
                continue;
            }
            for p in &r.pairs {
                let p = p.get_ref();
                let (Some(a), Some(b)) = (p.first(), p.get(1)) else {
                    continue;
                };
                if let (Some(a), Some(b)) = (region_id(a.get_ref()), region_id(b.get_ref())) {
                    if a != b {
                        rules.peering.insert(ordered(a, b));
                    }
                }
            }
        }
        if any_fallback {
            let mut fb = rules.clone();
            fb.node_caps = fallback_caps;
            rules.fallback = Some(Box::new(fb));
        }
        let empty =
            rules.groups.is_empty() && rules.node_caps.is_empty() && rules.peering.is_empty();
        (!empty).then_some(rules)
    }

    /// Whether `a` and `b` share a `must_not` group.
    fn must_not(&self, a: NodeId, b: NodeId) -> bool {
        let (Some(ga), Some(gb)) = (self.member_of.get(&a), self.member_of.get(&b)) else {
            return false;
        };
        ga.iter().any(|g| {
            gb.contains(g)
                && self
                    .groups
                    .get(usize::from(*g))
                    .is_some_and(|(m, _)| *m == AffinityMode::MustNot)
        })
    }

    /// Whether one more substream link between `child` and `parent` stays within
    /// the cap on their pair for the child's class.
    fn within_node_cap(&self, overlay: &PeerOverlay, child: NodeId, parent: NodeId) -> bool {
        let Some(caps) = self.node_caps.get(&ordered(child, parent)) else {
            return true;
        };
        let Some(c) = overlay.members.get(&child) else {
            return true;
        };
        let Some(cap) = caps[usize::from(c.premium)] else {
            return true;
        };
        let between = |from: NodeId, to: NodeId| {
            overlay.members.get(&to).map_or(0, |m| {
                m.parents.iter().filter(|p| **p == Some(from)).count()
            })
        };
        let links = between(parent, child) + between(child, parent) + 1;
        let sub_rate = overlay.rate_bps / u64::from(overlay.k.max(1));
        (links as u64).saturating_mul(sub_rate) <= cap
    }
}

impl ParentPolicy for ParentRules {
    fn allows(&self, overlay: &PeerOverlay, child: NodeId, parent: NodeId) -> bool {
        (self.member_of.is_empty() || !self.must_not(child, parent))
            && (self.node_caps.is_empty() || self.within_node_cap(overlay, child, parent))
    }

    fn preferred(&self, child: NodeId, out: &mut Vec<NodeId>) {
        let Some(groups) = self.member_of.get(&child) else {
            return;
        };
        for g in groups {
            let Some((AffinityMode::Should, members)) = self.groups.get(usize::from(*g)) else {
                continue;
            };
            for m in members {
                if out.len() >= PREFERRED_LIMIT {
                    return;
                }
                if *m != child && !out.contains(m) && !self.must_not(child, *m) {
                    out.push(*m);
                }
            }
        }
    }

    fn peering(&self, a: RegionId, b: RegionId) -> bool {
        self.peering.contains(&ordered(a, b))
    }

    fn prefers_peering(&self) -> bool {
        !self.peering.is_empty()
    }

    fn fallback(&self) -> Option<&dyn ParentPolicy> {
        self.fallback.as_deref().map(|f| f as &dyn ParentPolicy)
    }
}

/// The hook for a decision: the rules in force, else [`AllowAll`].
pub fn parent_policy(rules: &Option<Arc<ParentRules>>) -> &dyn ParentPolicy {
    match rules {
        Some(r) => &**r,
        None => &AllowAll,
    }
}

impl Coordinator {
    /// Builds the parent-selection rules again from the policies in force:
    /// always when `force` (a file was installed), else when a region was
    /// registered since (a peering pair may name it).
    pub(crate) fn refresh_parent_rules(&mut self, force: bool) {
        let regions = self.registry.region_names().count();
        if !force && regions == self.parent_rules_regions {
            return;
        }
        self.parent_rules_regions = regions;
        let registry = &self.registry;
        self.parent_rules =
            ParentRules::build(&self.policy.policies, |n| registry.region_id(n)).map(Arc::new);
    }
}
