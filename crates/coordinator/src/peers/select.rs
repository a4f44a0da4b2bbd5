//! Parent selection for one substream (C4, C6): the feasible parents (spare slots
//! in that tree, not below the child), pruned by policy (a hook: everything is
//! allowed until the policy database arrives), ranked by history, nearest first.
//! "A priority queue by spare uplink, then pick from a larger set the nearest":
//! the `candidates` members with the most spare uplink in the child's region are
//! looked at (then other regions'), and among them the best history, then the
//! shallowest, wins. The origin comes last: its uplink is kept for the top level.

use super::overlay::{MemberKind, PeerOverlay};
use tiercast_proto::NodeId;

/// A candidate's rank, lower is better (see `select_parent`).
type RankKey = (bool, bool, i32, u32, u32);

/// Why no parent was found, for the event log and the peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NoParent {
    /// No member with spare uplink carries this substream.
    NoSpareUplink,
    /// Every member with spare uplink is below the child in this tree.
    OnlyDescendants,
    /// The policy hook refused every candidate.
    Policy,
}

/// Decides whether `parent` may feed `child` (C3 policies plug in here).
pub trait ParentPolicy {
    fn allows(&self, overlay: &PeerOverlay, child: NodeId, parent: NodeId) -> bool;
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
        let Some(me) = self.members.get(&child) else {
            return Err(NoParent::NoSpareUplink);
        };
        let mut saw_any = false;
        let mut saw_allowed = false;
        let mut regions: Vec<_> = vec![me.region];
        regions.extend(
            self.regions_with_spare(tree)
                .into_iter()
                .filter(|r| *r != me.region),
        );
        for region in regions {
            let mut best: Option<(RankKey, NodeId)> = None;
            let mut looked = 0;
            for p in self.spare_in(tree, region) {
                if p == child || avoid.contains(&p) {
                    continue;
                }
                saw_any = true;
                if self.is_ancestor(child, p, tree) {
                    continue;
                }
                if !policy.allows(self, child, p) {
                    continue;
                }
                saw_allowed = true;
                let m = &self.members[&p];
                // Lower is better: origin last (whatever the others' history: its
                // uplink is kept for the top level), a middle member fed from the
                // levels above (D2), history (bad first out), depth, less spare.
                let key = (
                    m.kind == MemberKind::Origin,
                    me.middle && !(m.top || m.middle),
                    -m.history.min(0),
                    self.depth(p, tree),
                    u32::MAX - m.spare(),
                );
                if best.as_ref().is_none_or(|(k, _)| key < *k) {
                    best = Some((key, p));
                }
                looked += 1;
                if looked >= candidates.max(1) {
                    break;
                }
            }
            if let Some((_, p)) = best {
                return Ok(p);
            }
        }
        Err(if !saw_any {
            NoParent::NoSpareUplink
        } else if !saw_allowed {
            NoParent::OnlyDescendants
        } else {
            NoParent::Policy
        })
    }
}
