//! The peer overlay's bottom clusters (C1, C8; seed 002: "DCMs are dynamically
//! split when the number of clients in a cluster exceeds a certain threshold
//! ... the clients can be informed in heartbeat message responses which DCMs to
//! join").
//!
//! Every peer member belongs to one cluster of its region, by network prefix
//! (the directory: `content_directory/clusters.rs`). At each tick the service
//! manager has the overlay split a cluster over `cluster_split_above` and merge
//! neighbours under `cluster_merge_below` ([`PeerOverlay::review_clusters`]):
//! the members whose prefix went to another cluster are re-labelled, and their
//! links stay — a split or a merge moves no block. A member whose heartbeat
//! names another cluster than its own (none yet, or the one before a move) is
//! answered with `Message::ClusterAssigned` ([`Coordinator::tell_clusters`]),
//! again at each heartbeat until it reports the right one. From then on its
//! cluster's members are looked at first when it needs a parent
//! (`select.rs`): the top and middle members of its region — the cluster's
//! shared high-capacity nodes — and the origin and waypoints stay open to every
//! cluster, and the whole region, then the other regions, remain the fall-back.

use super::overlay::{MemberKind, PeerOverlay};
use crate::content_directory::clusters::{ClusterChange, ClusterDirectory};
use crate::coordinator::Coordinator;
use crate::event::CoordEvent;
use crate::registry::RegionId;
use std::collections::BTreeMap;
use tiercast_proto::{ClusterId, Heartbeat, Message, NodeId};

impl PeerOverlay {
    /// The clusters of this channel's peers (read-only).
    pub fn clusters(&self) -> &ClusterDirectory {
        &self.clusters
    }

    /// The cluster of member `id` (None: not a peer member).
    pub fn cluster_of(&self, id: NodeId) -> Option<ClusterId> {
        self.members
            .get(&id)
            .filter(|m| m.kind == MemberKind::Peer)
            .map(|m| m.cluster)
    }

    /// Splits and merges by the overlay's rules; re-labels the members of the
    /// regions that changed. Returns each change (at most one per region) with
    /// the members it moved.
    pub(crate) fn review_clusters(&mut self) -> Vec<(ClusterChange, u64)> {
        let rules = self.cluster_rules;
        let changes = self.clusters.review(&rules);
        if changes.is_empty() {
            return Vec::new();
        }
        let mut moved: BTreeMap<RegionId, u64> = changes.iter().map(|c| (c.region(), 0)).collect();
        let dir = &self.clusters;
        for m in self.members.values_mut_unordered() {
            if m.kind != MemberKind::Peer {
                continue;
            }
            let Some(n) = moved.get_mut(&m.region) else {
                continue;
            };
            if let Some(c) = dir.cluster_of(m.region, m.bucket) {
                if c != m.cluster {
                    m.cluster = c;
                    *n += 1;
                }
            }
        }
        changes
            .into_iter()
            .map(|c| {
                match c {
                    ClusterChange::Split { .. } => self.stats.cluster_splits += 1,
                    ClusterChange::Merged { .. } => self.stats.cluster_merges += 1,
                }
                let n = moved[&c.region()];
                self.stats.cluster_moves += n;
                (c, n)
            })
            .collect()
    }

    /// Whether a parent of `child`'s own cluster: the same cluster, or a member
    /// every cluster of the region shares (top, middle, origin, waypoint).
    pub(crate) fn in_cluster_of(&self, child_cluster: ClusterId, parent: NodeId) -> bool {
        self.members.get(&parent).is_some_and(|m| {
            m.top || m.middle || m.kind != MemberKind::Peer || m.cluster == child_cluster
        })
    }
}

impl Coordinator {
    /// The service manager's tick (C8): each overlay's clusters split and merge.
    pub(crate) fn review_clusters(&mut self) {
        let channels: Vec<_> = self.peers.keys().copied().collect();
        for channel in channels {
            let Some(o) = self.peers.get_mut(&channel) else {
                continue;
            };
            for (change, moved) in o.review_clusters() {
                self.events.push_back(CoordEvent::ClustersChanged {
                    channel,
                    change,
                    members_moved: moved,
                });
            }
        }
    }

    /// The answer to a heartbeat (C8): each overlay member that reports another
    /// cluster than its own is told its cluster.
    pub(crate) fn tell_clusters(&mut self, hb: &Heartbeat) {
        let mut tell = Vec::new();
        for r in &hb.channels {
            let Some(o) = self.peers.get_mut(&r.channel) else {
                continue;
            };
            if let Some(c) = o.cluster_of(hb.node).filter(|c| *c != r.cluster) {
                o.stats.clusters_told += 1;
                tell.push(Message::ClusterAssigned {
                    channel: r.channel,
                    cluster: c,
                });
            }
        }
        for m in tell {
            self.send(hb.node, m);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::peers::overlay::PeerOverlay;
    use crate::peers::select::AllowAll;
    use crate::peers::tests::{cfg, RATE};
    use crate::registry::RegionId;
    use tiercast_proto::{NodeId, PeerInfo, Timestamp};

    /// A peer of region 0 behind network `net` (10.0.net.x).
    fn join(o: &mut PeerOverlay, id: u32, net: u32, up_bps: u64) {
        let info = PeerInfo {
            id: NodeId(id),
            addr: format!("10.0.{}.{}:9000", net % 256, id % 256),
            http_addr: String::new(),
        };
        let pc = split_cfg();
        o.join(
            Timestamp(u64::from(id)),
            info,
            RegionId(0),
            crate::peers::MemberKind::Peer,
            up_bps,
            &pc,
            &AllowAll,
        );
    }

    /// The origin and 60 peers of `up_bps` over 16 networks, clusters
    /// splitting past 40 peers (not reviewed yet).
    fn sixty_peers(up_bps: u64) -> PeerOverlay {
        let mut o = crate::peers::tests::with_origin(Timestamp(0), &split_cfg(), 40 * RATE);
        o.cluster_rules = split_cfg().cluster_rules();
        for i in 0..60 {
            join(&mut o, 100 + i, i % 16, up_bps);
        }
        o
    }

    fn split_cfg() -> crate::PeerConfig {
        crate::PeerConfig {
            cluster_split_above: 40,
            cluster_merge_below: 10,
            ..cfg()
        }
    }

    #[test]
    fn a_split_relabels_members_by_prefix_and_keeps_every_link() {
        let mut o = sixty_peers(4_000_000);
        let links: Vec<_> = o.bottom_links().collect();
        let changes = o.review_clusters();
        assert_eq!(changes.len(), 1, "{changes:?}");
        let moved = changes[0].1;
        assert!(moved >= 15, "a part of the members moved: {moved}");
        assert_eq!(o.clusters().clusters_in(RegionId(0)), 2);
        assert_eq!(o.bottom_links().collect::<Vec<_>>(), links, "no link moved");
        // Members behind one prefix share a cluster.
        for a in 0..16 {
            let ids: Vec<_> = (0..60u32)
                .filter(|i| i % 16 == a)
                .map(|i| o.cluster_of(NodeId(100 + i)).unwrap())
                .collect();
            assert!(ids.windows(2).all(|w| w[0] == w[1]), "net {a}: {ids:?}");
        }
        assert_eq!(o.stats.cluster_splits, 1);
    }

    #[test]
    fn after_a_split_a_joiner_takes_parents_of_its_own_cluster_first() {
        // Strong peers in every network: the region has room in both clusters.
        let mut o = sixty_peers(8_000_000);
        o.review_clusters();
        for i in 0..16 {
            let id = 500 + i;
            join(&mut o, id, i, 400_000);
            let me = o.cluster_of(NodeId(id)).unwrap();
            let m = &o.members[&NodeId(id)];
            for p in m.parents.iter().flatten() {
                assert!(
                    o.in_cluster_of(me, *p),
                    "joiner {id} in {me} took parent {p} of another cluster"
                );
            }
        }
    }

    #[test]
    fn a_merge_relabels_the_smaller_side() {
        let mut o = sixty_peers(4_000_000);
        o.review_clusters();
        let pc = split_cfg();
        for i in 0..55 {
            o.remove(NodeId(100 + i), &pc, &AllowAll);
        }
        let changes = o.review_clusters();
        assert!(
            matches!(
                changes[..],
                [(
                    crate::content_directory::clusters::ClusterChange::Merged { .. },
                    _
                )]
            ),
            "{changes:?}"
        );
        assert_eq!(o.clusters().clusters_in(RegionId(0)), 1);
        let ids: std::collections::BTreeSet<_> = (55..60)
            .map(|i| o.cluster_of(NodeId(100 + i)).unwrap())
            .collect();
        assert_eq!(ids.len(), 1, "one cluster left: {ids:?}");
    }
}
