//! L1 the rendezvous point's boot cache: groups (id → leader) that leaders
//! announce; a joiner asks and gets a short boot list. Any node can play the
//! role (`LocalityNode::new(.., serve_rendezvous = true)`). Bounded; entries not
//! re-announced within three announce periods are forgotten.

use crate::msg::{GroupId, GroupRef};
use rand::seq::SliceRandom;
use rand::Rng;
use std::collections::BTreeMap;
use tiercast_proto::{NodeId, Timestamp};

#[derive(Debug, Default)]
pub struct BootCache {
    groups: BTreeMap<GroupId, (NodeId, Timestamp)>,
    pub requests: u64,
}

impl BootCache {
    pub fn announce(&mut self, now: Timestamp, group: GroupId, leader: NodeId, max: usize) {
        if self.groups.len() >= max && !self.groups.contains_key(&group) {
            // Full: the stalest entry makes room.
            if let Some(oldest) = self
                .groups
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(g, _)| *g)
            {
                self.groups.remove(&oldest);
            }
        }
        self.groups.insert(group, (leader, now));
    }

    pub fn expire(&mut self, now: Timestamp, max_age_ms: u64) {
        self.groups
            .retain(|_, (_, at)| now.saturating_since(*at) <= max_age_ms * 1000);
    }

    /// Up to `n` groups drawn at random (a random start point spreads the load).
    pub fn boot_list(&mut self, n: usize, rng: &mut impl Rng) -> Vec<GroupRef> {
        self.requests += 1;
        let mut all: Vec<GroupRef> = self
            .groups
            .iter()
            .map(|(g, (l, _))| GroupRef {
                group: *g,
                leader: *l,
                rtt_us: 0,
            })
            .collect();
        all.shuffle(rng);
        all.truncate(n);
        all
    }

    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn bounded_expiring_random_lists() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let mut c = BootCache::default();
        for i in 0..20u64 {
            c.announce(Timestamp::from_secs(i), GroupId(i), NodeId(i as u32), 10);
        }
        assert_eq!(c.len(), 10, "bounded");
        let l = c.boot_list(4, &mut rng);
        assert_eq!(l.len(), 4);
        assert!(l.iter().all(|g| g.group.0 >= 10), "oldest evicted");
        c.announce(Timestamp::from_secs(19), GroupId(12), NodeId(99), 10);
        c.expire(Timestamp::from_secs(25), 10_000);
        assert_eq!(c.len(), 6, "15..=19 s and the re-announced 12 remain");
    }
}
