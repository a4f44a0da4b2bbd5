//! The registry's table of nodes (C1; issue 12's one core for 10⁶ nodes): records
//! in one vector, in registration order, found by node id through a hash index.
//! A heartbeat looks a dozen ids up here (its sender, each link's other end); in
//! an ordered map of 10⁵–10⁶ nodes each was a walk down a tree of cache misses,
//! here it is one probe of a small index and one read of the record. Nodes are
//! never removed (a node presumed gone stays, marked dead), so the vector only
//! grows. Ordered iteration (by id) sorts the ids when asked: only a status page
//! and a channel's retirement walk every node.

use crate::node_hash::NodeHashMap;
use tiercast_proto::NodeId;

#[derive(Clone, Debug)]
pub struct NodeTable<V> {
    /// id → position in `slots`.
    index: NodeHashMap<u32>,
    slots: Vec<(NodeId, V)>,
}

impl<V> Default for NodeTable<V> {
    fn default() -> Self {
        NodeTable {
            index: NodeHashMap::default(),
            slots: Vec::new(),
        }
    }
}

impl<V> NodeTable<V> {
    pub fn get(&self, id: &NodeId) -> Option<&V> {
        let i = *self.index.get(id)?;
        Some(&self.slots[i as usize].1)
    }

    pub fn get_mut(&mut self, id: &NodeId) -> Option<&mut V> {
        let i = *self.index.get(id)?;
        Some(&mut self.slots[i as usize].1)
    }

    pub fn get_key_value(&self, id: &NodeId) -> Option<(&NodeId, &V)> {
        let i = *self.index.get(id)?;
        let (k, v) = &self.slots[i as usize];
        Some((k, v))
    }

    /// Puts `v` as `id`'s record (replacing the one it had, in its place).
    pub fn insert(&mut self, id: NodeId, v: V) {
        match self.index.get(&id) {
            Some(&i) => self.slots[i as usize].1 = v,
            None => {
                // Ids are u32 and each appears once: fewer than 2³² slots.
                self.index.insert(id, self.slots.len() as u32);
                self.slots.push((id, v));
            }
        }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Every record, by ascending id (sorts the ids: O(n log n)).
    pub fn iter(&self) -> impl Iterator<Item = (&NodeId, &V)> {
        let mut order: Vec<u32> = (0..self.slots.len() as u32).collect();
        order.sort_unstable_by_key(|i| self.slots[*i as usize].0);
        order.into_iter().map(|i| {
            let (k, v) = &self.slots[i as usize];
            (k, v)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn the_table_finds_replaces_and_walks_by_id_like_an_ordered_map() {
        let mut t = NodeTable::default();
        let mut m = BTreeMap::new();
        // Ids in a scrambled order, some put twice.
        for k in 0..500u32 {
            let id = NodeId(k.wrapping_mul(2_654_435_761) % 1000);
            t.insert(id, k);
            m.insert(id, k);
        }
        assert_eq!(t.len(), m.len());
        assert!(!t.is_empty());
        for id in (0..1000).map(NodeId) {
            assert_eq!(t.get(&id), m.get(&id));
            assert_eq!(t.get_key_value(&id), m.get_key_value(&id));
        }
        if let Some(v) = t.get_mut(&NodeId(0)) {
            *v += 1;
        }
        *m.get_mut(&NodeId(0)).unwrap() += 1;
        assert!(t.iter().eq(m.iter()), "walked by ascending id");
        assert!(NodeTable::<u8>::default().is_empty());
    }
}
