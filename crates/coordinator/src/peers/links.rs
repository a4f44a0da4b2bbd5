//! Each peer's link cap (issue 10; D1, D3, D4, C6): a peer machine accepts at most
//! `capacity` child links (`PeerConfig::peer_link_cap`), whatever its uplink. The
//! overlay books within it: a member's substream slots never exceed the cap (each
//! child link carries at least one substream — [`crate::multitree::uplink_within_links`]
//! caps the uplink the multi-tree and the ejection rule count), a top member's
//! slots leave room for its mesh neighbours (c, +1 for the odd c's opposite), and
//! a bottom member's repair link (D3's lazy link) goes only to a top member with a
//! link to spare. So the push tree, the multi-tree and the repair links never
//! give a peer more children than it accepts, and no child is refused as `Full`.

use super::overlay::PeerOverlay;
use crate::config::PeerConfig;
use std::collections::BTreeSet;
use tiercast_proto::NodeId;

impl PeerOverlay {
    /// Takes the cap from the configuration (once, at the first join).
    pub(crate) fn set_link_cap(&mut self, cfg: &PeerConfig) {
        self.link_cap = cfg.peer_link_cap.max(1);
        self.mesh_links = u32::from(cfg.mesh_c) + 1;
    }

    /// Slots a top member may have: the cap less its mesh links.
    pub(crate) fn top_link_slots(&self) -> u32 {
        self.link_cap.saturating_sub(self.mesh_links)
    }

    /// Child links `id` serves now, as its machine counts them: distinct bottom
    /// children, push children, recovery children, mesh neighbours and the bottom
    /// members whose repair link it is.
    pub fn child_links(&self, id: NodeId) -> u32 {
        let mut kids: BTreeSet<NodeId> = BTreeSet::new();
        for tree in &self.children {
            kids.extend(tree.get(&id).into_iter().flatten().copied());
        }
        kids.extend(self.top_children.get(&id).into_iter().flatten().copied());
        kids.extend(
            self.recovery_children
                .get(&id)
                .into_iter()
                .flatten()
                .map(|(c, _)| *c),
        );
        kids.extend(self.mesh.get(&id).into_iter().flatten().copied());
        kids.extend(self.repaired_by(id));
        kids.len() as u32
    }

    /// Top members that cannot take one more repair link (`keep`: the one the
    /// asking member has now, which it may keep).
    pub(crate) fn repair_full(&self, keep: Option<NodeId>) -> BTreeSet<NodeId> {
        if self.link_cap == u32::MAX {
            return BTreeSet::new();
        }
        self.top_order
            .iter()
            .copied()
            .filter(|n| {
                let Some(m) = self.members.get(n) else {
                    return true;
                };
                // Every slot may become a distinct child link. The link the
                // asking member has is counted already: it may stay while the
                // links are within the cap (not whatever their number: a member
                // keeping its link past the cap made 41 links of a cap of 40).
                let pushed = m.slots + self.mesh_links;
                let links = pushed + self.repaired_count(*n);
                if Some(*n) == keep {
                    links > self.link_cap
                } else {
                    links >= self.link_cap
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peers::overlay::MemberKind;
    use crate::peers::select::AllowAll;
    use crate::peers::tests::info;
    use crate::registry::RegionId;
    use tiercast_proto::Timestamp;

    const RATE: u64 = 2_000_000;

    /// A tight population with strong peers: the origin, 12 peers at 14× the
    /// rate (promoted), and 300 at 0.5–1× it; a cap of `cap` links per peer.
    fn overlay(cap: u32) -> (PeerOverlay, PeerConfig) {
        let cfg = PeerConfig {
            peer_link_cap: cap,
            stable_ms: 0,
            top_per_region: 16,
            ..PeerConfig::default()
        };
        let t0 = Timestamp(0);
        let mut o = crate::peers::tests::overlay_with(&cfg, t0);
        let r = RegionId(0);
        o.join(
            t0,
            info(1),
            r,
            MemberKind::Origin,
            40 * RATE,
            &cfg,
            &AllowAll,
        );
        for id in 2..14 {
            o.join(
                t0,
                info(id),
                r,
                MemberKind::Peer,
                14 * RATE,
                &cfg,
                &AllowAll,
            );
        }
        for id in 14..314 {
            let u = if id % 2 == 0 { RATE } else { RATE / 2 };
            o.join(t0, info(id), r, MemberKind::Peer, u, &cfg, &AllowAll);
        }
        (o, cfg)
    }

    #[test]
    fn no_peer_gets_more_child_links_than_its_cap() {
        for cap in [6u32, 12, 40, 256] {
            let (mut o, cfg) = overlay(cap);
            let t = Timestamp(1_000_000);
            o.review_top(t, &cfg, &AllowAll);
            assert!(o.top_order.len() > 1, "strong peers promoted");
            o.full_recompute(Timestamp(2_000_000), &cfg, &AllowAll);
            o.check().expect("bookkeeping");
            for id in o.members.keys() {
                let links = o.child_links(*id);
                if o.members[id].kind == MemberKind::Peer {
                    assert!(links <= cap, "cap {cap}: {id} serves {links} links");
                }
                let push = o.top_children.get(id).map_or(0, |s| s.len() as u32);
                assert!(push <= cap, "cap {cap}: {id} has {push} push children");
            }
        }
    }

    #[test]
    fn a_member_never_books_more_slots_than_links() {
        let (o, _) = overlay(6);
        for (id, m) in &o.members {
            if m.kind == MemberKind::Peer {
                assert!(m.slots <= 6, "{id}: {} slots over a cap of 6", m.slots);
            }
        }
    }
}
