//! A node's record of each parent's link as its child saw it (C4's history,
//! issue 11 item 5; issue 12's < 2 GB at 10⁶ nodes): a vector kept sorted by
//! parent id. A peer has a handful of parents (bounded by the history's
//! `max_parents`); an ordered map allocated a whole tree node (eleven entries,
//! ≈ 0.4 kB) for them, this one entry each. Walks go by ascending parent id,
//! and the store's bytes are the ordered map's (a map of the same entries in
//! the same order), so records written before still read.

use super::record::LinkRecord;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use tiercast_proto::NodeId;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParentLinks {
    /// Sorted by parent, each parent once.
    v: Vec<(NodeId, LinkRecord)>,
}

impl ParentLinks {
    fn at(&self, id: &NodeId) -> Result<usize, usize> {
        self.v.binary_search_by_key(id, |(p, _)| *p)
    }

    pub fn get(&self, id: &NodeId) -> Option<&LinkRecord> {
        let i = self.at(id).ok()?;
        Some(&self.v[i].1)
    }

    /// `id`'s record, a fresh one put in first if it has none.
    pub fn get_or_default(&mut self, id: NodeId) -> &mut LinkRecord {
        let i = match self.at(&id) {
            Ok(i) => i,
            Err(i) => {
                // One more entry's room: a peer's parents are few and change
                // seldom, so no spare room is kept.
                self.v.reserve_exact(1);
                self.v.insert(i, (id, LinkRecord::default()));
                i
            }
        };
        &mut self.v[i].1
    }

    pub fn remove(&mut self, id: &NodeId) -> Option<LinkRecord> {
        let i = self.at(id).ok()?;
        Some(self.v.remove(i).1)
    }

    /// Takes out the highest parent id's record.
    pub fn pop_last(&mut self) -> Option<(NodeId, LinkRecord)> {
        self.v.pop()
    }

    pub fn len(&self) -> usize {
        self.v.len()
    }

    pub fn is_empty(&self) -> bool {
        self.v.is_empty()
    }

    /// By ascending parent id.
    pub fn iter(&self) -> impl Iterator<Item = (&NodeId, &LinkRecord)> + '_ {
        self.v.iter().map(|(p, l)| (p, l))
    }
}

impl std::ops::Index<&NodeId> for ParentLinks {
    type Output = LinkRecord;

    fn index(&self, id: &NodeId) -> &LinkRecord {
        self.get(id).expect("a link of this parent")
    }
}

impl FromIterator<(NodeId, LinkRecord)> for ParentLinks {
    fn from_iter<I: IntoIterator<Item = (NodeId, LinkRecord)>>(it: I) -> Self {
        // Through an ordered map: sorted, the last of a repeated id kept.
        let m: BTreeMap<NodeId, LinkRecord> = it.into_iter().collect();
        ParentLinks {
            v: m.into_iter().collect(),
        }
    }
}

impl Serialize for ParentLinks {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.v.iter().map(|(p, l)| (p, l)))
    }
}

impl<'de> Deserialize<'de> for ParentLinks {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let m = BTreeMap::<NodeId, LinkRecord>::deserialize(d)?;
        Ok(m.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(n: u64) -> LinkRecord {
        LinkRecord {
            reports: n,
            stalls: n / 3,
            last_report: Default::default(),
        }
    }

    /// Scrambled updates, removals and pops: the same entries in the same
    /// order as an ordered map, and the same bytes in the store's encoding.
    #[test]
    fn parent_links_follow_the_ordered_map() {
        let mut a = ParentLinks::default();
        let mut b: BTreeMap<NodeId, LinkRecord> = BTreeMap::new();
        for k in 0..2000u32 {
            let id = NodeId(k.wrapping_mul(2_654_435_761) % 23);
            match k % 7 {
                0..=3 => {
                    a.get_or_default(id).reports += u64::from(k);
                    b.entry(id).or_default().reports += u64::from(k);
                }
                4 | 5 => assert_eq!(a.remove(&id), b.remove(&id)),
                _ => assert_eq!(a.pop_last(), b.pop_last()),
            }
            assert_eq!(a.len(), b.len());
            assert_eq!(a.is_empty(), b.is_empty());
            assert_eq!(a.get(&id), b.get(&id));
            assert!(a.iter().eq(b.iter()));
            let bytes_a = postcard::to_allocvec(&a).expect("encodes");
            assert_eq!(bytes_a, postcard::to_allocvec(&b).expect("encodes"));
            let back: ParentLinks = postcard::from_bytes(&bytes_a).expect("decodes");
            assert_eq!(back, a);
        }
        let from: ParentLinks = [
            (NodeId(5), rec(1)),
            (NodeId(2), rec(2)),
            (NodeId(5), rec(3)),
        ]
        .into_iter()
        .collect();
        assert_eq!(from.len(), 2);
        assert_eq!(from[&NodeId(5)], rec(3));
    }
}
