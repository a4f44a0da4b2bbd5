//! The bottom clusters of a channel's peer overlay and their managers (C1, C8;
//! seed 002: "each cluster of nodes in the third level is managed by a DCM ...
//! Small clusters are dynamically merged, and large clusters are split").
//!
//! The content directory's map (channel, region, network prefix) → cluster
//! manager: per channel, each region's peers are split by network prefix into
//! clusters, each a contiguous range of the 256 prefix buckets
//! ([`prefix_bucket`]: an IPv4 /24 or an IPv6 /48, hashed). A region starts as
//! one cluster over every bucket. [`ClusterDirectory::review`] splits a cluster
//! whose members exceed `split_above` into `ways` clusters of about equal
//! membership — "the control center creates n−1 DCMs ... the original DCM will
//! own one of these new clusters" — and merges two neighbouring clusters of a
//! region whose members together are under `merge_below` (the larger keeps its
//! id). A split that cannot give every part at least 1/(2·ways) of the members
//! (most of them behind one prefix) is not made: the cluster stays whole.
//!
//! Only the directory lives here: which manager a member belongs to. The overlay
//! re-labels its members after a change (`peers/clusters.rs`), tells each moved
//! node in the answer to its next heartbeat, and its parent choice looks in the
//! member's own cluster first (`peers/select.rs`). Memory is bounded by the
//! members: a region's entry goes with its last member.

use crate::registry::RegionId;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use tiercast_proto::ClusterId;

/// Network-prefix buckets a region's clusters partition.
pub const BUCKETS: u16 = 256;

/// The bucket of an address's network prefix: an IPv4 /24 or an IPv6 /48, hashed
/// (FNV-1a) onto `0..256`. An address that does not parse (a node that declared
/// none) is bucket 0.
pub fn prefix_bucket(addr: &str) -> u8 {
    let ip = addr
        .parse::<SocketAddr>()
        .map(|a| a.ip())
        .or_else(|_| addr.parse::<IpAddr>());
    let prefix: Vec<u8> = match ip {
        Ok(IpAddr::V4(v4)) => v4.octets()[..3].to_vec(),
        Ok(IpAddr::V6(v6)) => v6.octets()[..6].to_vec(),
        Err(_) => return 0,
    };
    let mut h: u32 = 0x811c_9dc5;
    for b in prefix {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    (h ^ (h >> 8) ^ (h >> 16) ^ (h >> 24)) as u8
}

/// When clusters split and merge (from `PeerConfig`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClusterRules {
    /// A cluster with more members splits; 0: never.
    pub split_above: u32,
    /// Two neighbouring clusters with fewer members together merge.
    pub merge_below: u32,
    /// Clusters a split makes (2..=8).
    pub ways: u8,
}

impl ClusterRules {
    /// Refuses rules that would merge what a split just made: a split's parts
    /// each hold more than `split_above / (2·ways)`, so two of them more than
    /// `split_above / ways`.
    pub fn check(&self) -> Result<(), String> {
        if !(2..=8).contains(&self.ways) {
            return Err(format!("cluster_split_ways {} is not in 2..=8", self.ways));
        }
        if self.split_above > 0
            && u64::from(self.merge_below) * u64::from(self.ways) > u64::from(self.split_above)
        {
            return Err(format!(
                "cluster_merge_below {} × cluster_split_ways {} exceeds cluster_split_above {}: \
                 clusters a split makes would merge again",
                self.merge_below, self.ways, self.split_above
            ));
        }
        Ok(())
    }
}

/// One bottom cluster: its manager's id, its prefix buckets `lo..hi`, its members.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cluster {
    pub id: ClusterId,
    pub lo: u16,
    pub hi: u16,
    pub members: u32,
}

/// What a review changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClusterChange {
    /// `from` kept part of its range; `into` are the new clusters.
    Split {
        region: RegionId,
        from: ClusterId,
        into: Vec<ClusterId>,
    },
    /// `from` was merged into its neighbour `into`.
    Merged {
        region: RegionId,
        into: ClusterId,
        from: ClusterId,
    },
}

impl ClusterChange {
    pub fn region(&self) -> RegionId {
        match self {
            ClusterChange::Split { region, .. } | ClusterChange::Merged { region, .. } => *region,
        }
    }
}

#[derive(Clone, Debug)]
struct RegionClusters {
    /// Sorted by `lo`; their ranges partition `0..BUCKETS`.
    clusters: Vec<Cluster>,
    per_bucket: Box<[u32]>,
}

/// One channel's clusters, by region (ordered: reviews run in the same order
/// every time, so a simulation is reproducible).
#[derive(Clone, Debug, Default)]
pub struct ClusterDirectory {
    regions: BTreeMap<RegionId, RegionClusters>,
    next: u32,
    /// Splits and merges made so far; the most clusters at once.
    pub splits: u64,
    pub merges: u64,
    pub most_clusters: usize,
}

impl ClusterDirectory {
    fn new_id(&mut self) -> ClusterId {
        self.next += 1;
        ClusterId(self.next)
    }

    /// A member of `region` behind prefix `bucket` arrives: its cluster.
    pub fn join(&mut self, region: RegionId, bucket: u8) -> ClusterId {
        if !self.regions.contains_key(&region) {
            let id = self.new_id();
            self.regions.insert(
                region,
                RegionClusters {
                    clusters: vec![Cluster {
                        id,
                        lo: 0,
                        hi: BUCKETS,
                        members: 0,
                    }],
                    per_bucket: vec![0; usize::from(BUCKETS)].into_boxed_slice(),
                },
            );
            self.most_clusters = self.most_clusters.max(self.len());
        }
        let r = self.regions.get_mut(&region).expect("just made");
        r.per_bucket[usize::from(bucket)] += 1;
        let c = r.cluster_mut(bucket);
        c.members += 1;
        c.id
    }

    /// A member of `region` behind `bucket` leaves; the region goes with its last.
    pub fn leave(&mut self, region: RegionId, bucket: u8) {
        let Some(r) = self.regions.get_mut(&region) else {
            return;
        };
        let b = &mut r.per_bucket[usize::from(bucket)];
        if *b == 0 {
            return;
        }
        *b -= 1;
        let c = r.cluster_mut(bucket);
        c.members = c.members.saturating_sub(1);
        if r.clusters.iter().all(|c| c.members == 0) {
            self.regions.remove(&region);
        }
    }

    /// The cluster of a member of `region` behind `bucket`, if the region has any.
    pub fn cluster_of(&self, region: RegionId, bucket: u8) -> Option<ClusterId> {
        let r = self.regions.get(&region)?;
        Some(r.cluster(bucket).id)
    }

    /// Clusters in `region` (0 when it has no member).
    pub fn clusters_in(&self, region: RegionId) -> usize {
        self.regions.get(&region).map_or(0, |r| r.clusters.len())
    }

    /// Clusters over every region.
    pub fn len(&self) -> usize {
        self.regions.values().map(|r| r.clusters.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.regions.is_empty()
    }

    /// Every cluster with its region, in region then range order.
    pub fn iter(&self) -> impl Iterator<Item = (RegionId, &Cluster)> + '_ {
        self.regions
            .iter()
            .flat_map(|(r, c)| c.clusters.iter().map(move |c| (*r, c)))
    }

    /// Splits the clusters over `split_above`, then merges neighbours under
    /// `merge_below` together; at most one change per region per review.
    pub fn review(&mut self, rules: &ClusterRules) -> Vec<ClusterChange> {
        let mut changes = Vec::new();
        let regions: Vec<RegionId> = self.regions.keys().copied().collect();
        for region in regions {
            if let Some(c) = self.split_one(region, rules) {
                changes.push(c);
            } else if let Some(c) = self.merge_one(region, rules) {
                changes.push(c);
            }
        }
        self.most_clusters = self.most_clusters.max(self.len());
        changes
    }

    fn split_one(&mut self, region: RegionId, rules: &ClusterRules) -> Option<ClusterChange> {
        if rules.split_above == 0 {
            return None;
        }
        let r = self.regions.get(&region)?;
        let ways = u32::from(rules.ways.max(2));
        let (i, cuts) = r.clusters.iter().enumerate().find_map(|(i, c)| {
            (c.members > rules.split_above)
                .then(|| r.cuts(c, ways))
                .flatten()
                .map(|cuts| (i, cuts))
        })?;
        let from = r.clusters[i].id;
        let ids: Vec<ClusterId> = (2..cuts.len()).map(|_| self.new_id()).collect();
        let r = self.regions.get_mut(&region).expect("found above");
        let parts: Vec<Cluster> = cuts
            .windows(2)
            .enumerate()
            .map(|(j, w)| Cluster {
                id: if j == 0 { from } else { ids[j - 1] },
                lo: w[0],
                hi: w[1],
                members: r.per_bucket[usize::from(w[0])..usize::from(w[1])]
                    .iter()
                    .sum(),
            })
            .collect();
        r.clusters.splice(i..=i, parts);
        self.splits += 1;
        Some(ClusterChange::Split {
            region,
            from,
            into: ids,
        })
    }

    fn merge_one(&mut self, region: RegionId, rules: &ClusterRules) -> Option<ClusterChange> {
        let r = self.regions.get_mut(&region)?;
        let i = (0..r.clusters.len().saturating_sub(1)).find(|&i| {
            let (a, b) = (&r.clusters[i], &r.clusters[i + 1]);
            u64::from(a.members) + u64::from(b.members) < u64::from(rules.merge_below)
        })?;
        let b = r.clusters.remove(i + 1);
        let a = &mut r.clusters[i];
        let (into, from) = if b.members > a.members {
            (b.id, a.id)
        } else {
            (a.id, b.id)
        };
        a.id = into;
        a.hi = b.hi;
        a.members += b.members;
        self.merges += 1;
        Some(ClusterChange::Merged { region, into, from })
    }
}

impl RegionClusters {
    fn index(&self, bucket: u8) -> usize {
        let b = u16::from(bucket);
        self.clusters.partition_point(|c| c.hi <= b)
    }

    fn cluster(&self, bucket: u8) -> &Cluster {
        &self.clusters[self.index(bucket)]
    }

    fn cluster_mut(&mut self, bucket: u8) -> &mut Cluster {
        let i = self.index(bucket);
        &mut self.clusters[i]
    }

    /// Where `c` splits into `ways` parts of about equal membership: the parts'
    /// bounds `lo = b0 < b1 < … < b_ways = hi`; None when a part would hold
    /// less than 1/(2·ways) of the members.
    fn cuts(&self, c: &Cluster, ways: u32) -> Option<Vec<u16>> {
        let total = u64::from(c.members);
        if total == 0 || u32::from(c.hi - c.lo) < ways {
            return None;
        }
        let mut cuts = vec![c.lo];
        let mut acc = 0u64;
        for b in c.lo..c.hi {
            acc += u64::from(self.per_bucket[usize::from(b)]);
            let j = cuts.len() as u64;
            if j < u64::from(ways) && acc * u64::from(ways) >= total * j && b + 1 < c.hi {
                cuts.push(b + 1);
            }
        }
        cuts.push(c.hi);
        if cuts.len() != ways as usize + 1 {
            return None;
        }
        let least = cuts
            .windows(2)
            .map(|w| {
                self.per_bucket[usize::from(w[0])..usize::from(w[1])]
                    .iter()
                    .map(|&n| u64::from(n))
                    .sum::<u64>()
            })
            .min()
            .unwrap_or(0);
        (least * 2 * u64::from(ways) >= total).then_some(cuts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: RegionId = RegionId(0);
    const RULES: ClusterRules = ClusterRules {
        split_above: 100,
        merge_below: 50,
        ways: 2,
    };

    fn fill(d: &mut ClusterDirectory, n: u32) -> Vec<u8> {
        (0..n)
            .map(|i| {
                let b = (i % 64) as u8 * 4;
                d.join(R, b);
                b
            })
            .collect()
    }

    #[test]
    fn a_region_starts_as_one_cluster_over_every_prefix() {
        let mut d = ClusterDirectory::default();
        let a = d.join(R, 3);
        assert_eq!(d.join(R, 250), a);
        assert_eq!(d.clusters_in(R), 1);
        assert_eq!(d.cluster_of(R, 17), Some(a));
        assert_eq!(d.cluster_of(RegionId(9), 17), None);
    }

    #[test]
    fn a_cluster_over_its_threshold_splits_in_two_of_about_equal_membership() {
        let mut d = ClusterDirectory::default();
        let buckets = fill(&mut d, 100);
        assert!(d.review(&RULES).is_empty(), "100 is not over 100");
        d.join(R, 8);
        let first = d.cluster_of(R, 0).unwrap();
        let changes = d.review(&RULES);
        assert_eq!(changes.len(), 1);
        let ClusterChange::Split { from, into, .. } = &changes[0] else {
            panic!("a split: {changes:?}");
        };
        assert_eq!(*from, first, "the original manager owns one of the parts");
        assert_eq!(into.len(), 1);
        assert_eq!(d.clusters_in(R), 2);
        let mut counts = [0u32; 2];
        for b in buckets.iter().chain([8u8].iter()) {
            let c = d.cluster_of(R, *b).unwrap();
            counts[usize::from(c != first)] += 1;
        }
        assert!(counts.iter().all(|&n| n >= 40), "about equal: {counts:?}");
        let members: u32 = d.iter().map(|(_, c)| c.members).sum();
        assert_eq!(members, 101);
        assert_eq!(d.splits, 1);
    }

    #[test]
    fn neighbours_under_the_merge_threshold_merge_and_the_larger_keeps_its_id() {
        let mut d = ClusterDirectory::default();
        for _ in 0..60 {
            d.join(R, 10);
            d.join(R, 200);
        }
        d.review(&RULES);
        assert_eq!(d.clusters_in(R), 2);
        let (low, high) = (d.cluster_of(R, 10).unwrap(), d.cluster_of(R, 200).unwrap());
        assert_ne!(low, high);
        for _ in 0..20 {
            d.leave(R, 10);
        }
        assert!(d.review(&RULES).is_empty(), "40 + 60 is not under 50");
        for _ in 0..55 {
            d.leave(R, 200);
        }
        let changes = d.review(&RULES);
        assert_eq!(
            changes,
            vec![ClusterChange::Merged {
                region: R,
                into: low,
                from: high
            }]
        );
        assert_eq!(d.clusters_in(R), 1);
        assert_eq!(d.cluster_of(R, 200), Some(low));
        assert_eq!(d.iter().map(|(_, c)| c.members).sum::<u32>(), 45);
        assert_eq!(d.merges, 1);
        assert!(d.review(&RULES).is_empty(), "stable once merged");
    }

    #[test]
    fn members_behind_one_prefix_do_not_split() {
        let mut d = ClusterDirectory::default();
        for _ in 0..500 {
            d.join(R, 42);
        }
        assert!(d.review(&RULES).is_empty());
        assert_eq!(d.clusters_in(R), 1);
    }

    #[test]
    fn the_last_member_out_takes_its_region_with_it() {
        let mut d = ClusterDirectory::default();
        d.join(R, 1);
        d.leave(R, 1);
        d.leave(R, 1);
        assert!(d.is_empty());
    }

    #[test]
    fn rules_that_would_merge_a_split_are_refused() {
        let bad = ClusterRules {
            split_above: 100,
            merge_below: 60,
            ways: 2,
        };
        assert!(bad.check().unwrap_err().contains("would merge again"));
        assert!(RULES.check().is_ok());
        let ways = ClusterRules { ways: 1, ..RULES };
        assert!(ways.check().is_err());
    }

    #[test]
    fn three_ways_and_prefix_buckets() {
        let mut d = ClusterDirectory::default();
        for i in 0..300u32 {
            d.join(R, (i % 256) as u8);
        }
        let rules = ClusterRules {
            split_above: 200,
            merge_below: 60,
            ways: 3,
        };
        d.review(&rules);
        assert_eq!(d.clusters_in(R), 3);
        assert_eq!(
            prefix_bucket("10.1.2.3:9000"),
            prefix_bucket("10.1.2.200:1")
        );
        assert_eq!(prefix_bucket("not an address"), 0);
        let spread: std::collections::BTreeSet<u8> = (0..64)
            .map(|n| prefix_bucket(&format!("10.0.{n}.1:9000")))
            .collect();
        assert!(
            spread.len() > 40,
            "prefixes spread over buckets: {}",
            spread.len()
        );
    }
}
