//! The peer overlay's members by node id (D2, D4; issue 12's one core for 10⁶
//! nodes, C2's comparison): records in a dense map (`dense_map.rs`: one slot
//! each, found through a hash index), with the ids also kept in order. A heartbeat looks a member up for each link it reports (C2's
//! `pushes_to`); in an ordered map of 10⁵ members each lookup was a walk down a
//! tree of cache misses, here it is one probe. Every walk over the members
//! (recomputations, reviews, checks) still goes by ascending id, as the ordered
//! map did, so no decision depends on the hash order: `iter`, `keys`, `values`
//! follow the ordered id set. Only `values_mut_unordered` goes in hash order,
//! for changes of each member by itself (no member's change reads another's).

use super::overlay::Member;
use crate::dense_map::DenseMap;
use std::collections::BTreeSet;
use tiercast_proto::NodeId;

#[derive(Clone, Debug, Default)]
pub struct MemberMap {
    /// The records, one dense slot each (`dense_map.rs`: a hash map of
    /// `Member`s kept up to twice their number of buckets, each a `Member`).
    map: DenseMap<Member>,
    /// The same ids, ascending: the order of every walk.
    order: BTreeSet<NodeId>,
}

impl MemberMap {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self, id: &NodeId) -> Option<&Member> {
        self.map.get(id)
    }

    pub fn get_mut(&mut self, id: &NodeId) -> Option<&mut Member> {
        self.map.get_mut(id)
    }

    pub fn contains_key(&self, id: &NodeId) -> bool {
        self.map.contains_key(id)
    }

    /// Puts `m` as `id`'s entry; returns the one it had.
    pub fn insert(&mut self, id: NodeId, m: Member) -> Option<Member> {
        self.order.insert(id);
        self.map.insert(id, m)
    }

    pub fn remove(&mut self, id: &NodeId) -> Option<Member> {
        let m = self.map.remove(id)?;
        self.order.remove(id);
        Some(m)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Every member, by ascending id.
    pub fn iter(&self) -> impl Iterator<Item = (&NodeId, &Member)> + '_ {
        self.order.iter().map(|id| (id, &self[id]))
    }

    /// Every id, ascending.
    pub fn keys(&self) -> impl Iterator<Item = &NodeId> + '_ {
        self.order.iter()
    }

    /// Every member, by ascending id.
    pub fn values(&self) -> impl Iterator<Item = &Member> + '_ {
        self.order.iter().map(|id| &self[id])
    }

    /// Every member, mutably, in no particular order: only for changes of each
    /// member by itself, which no order can alter.
    pub fn values_mut_unordered(&mut self) -> impl Iterator<Item = &mut Member> + '_ {
        self.map.values_mut()
    }
}

impl std::ops::Index<&NodeId> for MemberMap {
    type Output = Member;

    /// The member `id` (panics if it is not one, as an ordered map did).
    fn index(&self, id: &NodeId) -> &Member {
        self.map.get(id).expect("a member of the overlay")
    }
}

impl<'a> IntoIterator for &'a MemberMap {
    type Item = (&'a NodeId, &'a Member);
    type IntoIter = Box<dyn Iterator<Item = (&'a NodeId, &'a Member)> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::RegionId;
    use std::collections::BTreeMap;
    use tiercast_proto::{PeerInfo, Timestamp};

    fn member(id: u32) -> Member {
        let info = PeerInfo {
            id: NodeId(id),
            addr: String::new(),
            http_addr: String::new(),
        };
        Member::new(
            info,
            RegionId(0),
            super::super::overlay::MemberKind::Peer,
            u64::from(id),
            id % 7,
            false,
            Timestamp::ZERO,
            4,
        )
    }

    /// Inserts, removals and updates in a scrambled order: every walk gives what
    /// an ordered map given the same operations gives, in the same order.
    #[test]
    fn walks_follow_the_ordered_map() {
        let mut m = MemberMap::new();
        let mut b: BTreeMap<NodeId, Member> = BTreeMap::new();
        for k in 0..3000u32 {
            let id = NodeId(k.wrapping_mul(2_654_435_761) % 997);
            match k % 5 {
                0..=2 => {
                    let fresh = member(id.0 + k);
                    assert_eq!(
                        m.insert(id, fresh.clone()).map(|x| x.slots),
                        b.insert(id, fresh).map(|x| x.slots)
                    );
                }
                3 => assert_eq!(
                    m.remove(&id).map(|x| x.slots),
                    b.remove(&id).map(|x| x.slots)
                ),
                _ => {
                    if let (Some(x), Some(y)) = (m.get_mut(&id), b.get_mut(&id)) {
                        x.used += 1;
                        y.used += 1;
                    }
                }
            }
            assert_eq!(m.len(), b.len());
            assert_eq!(m.contains_key(&id), b.contains_key(&id));
        }
        let walk = |it: Vec<(NodeId, u32, u32)>| it;
        assert_eq!(
            walk(m.iter().map(|(k, v)| (*k, v.slots, v.used)).collect()),
            walk(b.iter().map(|(k, v)| (*k, v.slots, v.used)).collect())
        );
        assert!(m.keys().eq(b.keys()));
        m.values_mut_unordered().for_each(|x| x.used += 2);
        b.values_mut().for_each(|y| y.used += 2);
        let used = |v: Vec<u32>| v;
        assert_eq!(
            used(m.values().map(|v| v.used).collect()),
            used(b.values().map(|v| v.used).collect())
        );
        assert_eq!(
            (&m).into_iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            b.keys().copied().collect::<Vec<_>>()
        );
        assert!(!m.is_empty());
    }
}
