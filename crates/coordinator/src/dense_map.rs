//! A map from node id to a per-node record, kept dense (X7, issue 12's < 2 GB at
//! 10⁶ nodes; D8's heartbeat path): the records sit in slots of fixed-size
//! chunks, found through a hash index of 4-byte slot numbers. A hash map holding
//! the records themselves keeps up to twice as many buckets as records (it
//! doubles past 7/8 full: 10⁶ entries take 2²¹ buckets, 10⁵ take 2¹⁷), each the
//! size of a record; here the index's buckets are 8 bytes and the records take
//! one slot each (a slot freed by a removal is the next one filled; the last
//! chunk grows by doubling up to [`CHUNK`], so a small map stays small).
//!
//! Walks (`values`, `values_mut`, `iter`, `retain`) go in slot order: not the
//! keys' order, but the same for the same sequence of inserts and removals, so
//! nothing drawn from them depends on a hash seed. Callers that need an order by
//! id keep one (`peers/member_map.rs`).

use crate::node_hash::NodeHashMap;
use tiercast_proto::NodeId;

/// Slots per chunk (a power of two: a chunk's vector, doubling from 4, never
/// holds room past it).
pub const CHUNK: usize = 1024;

#[derive(Clone, Debug)]
struct Chunk<V> {
    /// The id each slot holds (of a free slot: the last one it held).
    ids: Vec<NodeId>,
    vals: Vec<Option<V>>,
}

#[derive(Clone, Debug)]
pub struct DenseMap<V> {
    /// id → slot.
    index: NodeHashMap<u32>,
    chunks: Vec<Chunk<V>>,
    /// Slots emptied by removals, the last one freed filled first.
    free: Vec<u32>,
}

impl<V> Default for DenseMap<V> {
    fn default() -> Self {
        DenseMap {
            index: NodeHashMap::default(),
            chunks: Vec::new(),
            free: Vec::new(),
        }
    }
}

fn at(slot: u32) -> (usize, usize) {
    let s = slot as usize;
    (s / CHUNK, s % CHUNK)
}

impl<V> DenseMap<V> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub fn contains_key(&self, id: &NodeId) -> bool {
        self.index.contains_key(id)
    }

    pub fn get(&self, id: &NodeId) -> Option<&V> {
        let (c, i) = at(*self.index.get(id)?);
        self.chunks[c].vals[i].as_ref()
    }

    pub fn get_mut(&mut self, id: &NodeId) -> Option<&mut V> {
        let (c, i) = at(*self.index.get(id)?);
        self.chunks[c].vals[i].as_mut()
    }

    /// A free slot for `id` holding `v` (the last freed, or a new one).
    fn place(&mut self, id: NodeId, v: V) -> u32 {
        if let Some(slot) = self.free.pop() {
            let (c, i) = at(slot);
            let chunk = &mut self.chunks[c];
            chunk.ids[i] = id;
            chunk.vals[i] = Some(v);
            return slot;
        }
        if self.chunks.last().is_none_or(|c| c.vals.len() == CHUNK) {
            self.chunks.push(Chunk {
                ids: Vec::new(),
                vals: Vec::new(),
            });
        }
        let c = self.chunks.len() - 1;
        let chunk = &mut self.chunks[c];
        let slot = c * CHUNK + chunk.vals.len();
        chunk.ids.push(id);
        chunk.vals.push(Some(v));
        // Ids are u32 and each holds one slot at most: fewer than 2³² slots.
        slot as u32
    }

    /// Puts `v` as `id`'s record (in its slot when it has one); returns the one
    /// it had.
    pub fn insert(&mut self, id: NodeId, v: V) -> Option<V> {
        if let Some(&slot) = self.index.get(&id) {
            let (c, i) = at(slot);
            return self.chunks[c].vals[i].replace(v);
        }
        let slot = self.place(id, v);
        self.index.insert(id, slot);
        None
    }

    /// `id`'s record, made by `make` when it has none.
    pub fn get_or_insert_with(&mut self, id: NodeId, make: impl FnOnce() -> V) -> &mut V {
        let slot = match self.index.get(&id) {
            Some(&slot) => slot,
            None => {
                let slot = self.place(id, make());
                self.index.insert(id, slot);
                slot
            }
        };
        let (c, i) = at(slot);
        self.chunks[c].vals[i]
            .as_mut()
            .expect("an indexed slot holds a record")
    }

    pub fn remove(&mut self, id: &NodeId) -> Option<V> {
        let slot = self.index.remove(id)?;
        let (c, i) = at(slot);
        self.free.push(slot);
        self.chunks[c].vals[i].take()
    }

    /// Every record with its id, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (NodeId, &V)> + '_ {
        self.chunks.iter().flat_map(|c| {
            c.ids
                .iter()
                .zip(&c.vals)
                .filter_map(|(id, v)| Some((*id, v.as_ref()?)))
        })
    }

    /// Every record, in slot order.
    pub fn values(&self) -> impl Iterator<Item = &V> + '_ {
        self.chunks.iter().flat_map(|c| c.vals.iter().flatten())
    }

    /// Every record, mutably, in slot order.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> + '_ {
        self.chunks
            .iter_mut()
            .flat_map(|c| c.vals.iter_mut().flatten())
    }

    /// Keeps the records `keep` says to keep (each asked once, in slot order).
    pub fn retain(&mut self, mut keep: impl FnMut(NodeId, &mut V) -> bool) {
        for (c, chunk) in self.chunks.iter_mut().enumerate() {
            for (i, (id, v)) in chunk.ids.iter().zip(chunk.vals.iter_mut()).enumerate() {
                let Some(x) = v.as_mut() else {
                    continue;
                };
                if !keep(*id, x) {
                    *v = None;
                    self.index.remove(id);
                    self.free.push((c * CHUNK + i) as u32);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    proptest! {
        /// Inserts, removals, in-place changes and retains: the map holds what an
        /// ordered map given the same operations holds.
        #[test]
        fn holds_what_an_ordered_map_holds(
            ops in proptest::collection::vec((0u8..5, 0u32..3000, any::<u16>()), 1..4000),
        ) {
            let mut d: DenseMap<u16> = DenseMap::new();
            let mut m: BTreeMap<NodeId, u16> = BTreeMap::new();
            for (op, k, v) in ops {
                let id = NodeId(k);
                match op {
                    0 | 1 => prop_assert_eq!(d.insert(id, v), m.insert(id, v)),
                    2 => prop_assert_eq!(d.remove(&id), m.remove(&id)),
                    3 => {
                        *d.get_or_insert_with(id, || v) ^= 1;
                        *m.entry(id).or_insert(v) ^= 1;
                    }
                    _ => {
                        d.retain(|id, x| (id.0 ^ u32::from(*x)) % 7 != u32::from(v % 7));
                        m.retain(|id, x| (id.0 ^ u32::from(*x)) % 7 != u32::from(v % 7));
                    }
                }
                prop_assert_eq!(d.len(), m.len());
                prop_assert_eq!(d.get(&id), m.get(&id));
                prop_assert_eq!(d.contains_key(&id), m.contains_key(&id));
            }
            let mut all: Vec<(NodeId, u16)> = d.iter().map(|(k, v)| (k, *v)).collect();
            all.sort_unstable();
            prop_assert_eq!(all, m.iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>());
            d.values_mut().for_each(|x| *x = x.wrapping_add(1));
            let mut vals: Vec<u16> = d.values().copied().collect();
            let mut want: Vec<u16> = m.values().map(|x| x.wrapping_add(1)).collect();
            vals.sort_unstable();
            want.sort_unstable();
            prop_assert_eq!(vals, want);
            prop_assert_eq!(d.is_empty(), m.is_empty());
            prop_assert!(d.chunks.iter().all(|c| c.vals.capacity() <= CHUNK));
        }
    }

    /// A removal's slot is the next one filled: the slots stay as many as the
    /// most records held at once.
    #[test]
    fn freed_slots_are_filled_again() {
        let mut d = DenseMap::new();
        for k in 0..3000 {
            d.insert(NodeId(k), k);
        }
        for k in (0..3000).step_by(2) {
            d.remove(&NodeId(k));
        }
        for k in 3000..4500 {
            d.insert(NodeId(k), k);
        }
        let slots: usize = d.chunks.iter().map(|c| c.vals.len()).sum();
        assert_eq!(slots, 3000);
        assert_eq!(d.len(), 3000);
        assert!(d.free.is_empty());
        assert_eq!(d.get(&NodeId(4499)), Some(&4499));
        assert_eq!(d.get(&NodeId(2)), None);
    }
}
