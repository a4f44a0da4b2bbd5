//! A small ordered map kept as one vector sorted by key (issue 12's < 2 GB at
//! 10⁶ nodes): for the per-node maps that hold a handful of entries — a peer's
//! records of its parents' links (`history/parent_links.rs`, C4), a node's
//! uplink claims by channel (`uplink_ledger/claims.rs`, C9). An ordered map
//! allocates a whole tree node (eleven entries, ≈ 0.4–0.5 kB) for them; this
//! one entry each, with no spare room. Walks go by ascending key, and its
//! serialized form is the ordered map's (a map of the same entries in the same
//! order), so stored records written by a `BTreeMap` still read.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmallMap<K, V> {
    /// Sorted by key, each key once.
    v: Vec<(K, V)>,
}

impl<K, V> Default for SmallMap<K, V> {
    fn default() -> Self {
        SmallMap { v: Vec::new() }
    }
}

impl<K: Ord + Copy, V> SmallMap<K, V> {
    fn at(&self, k: &K) -> Result<usize, usize> {
        self.v.binary_search_by(|(x, _)| x.cmp(k))
    }

    pub fn get(&self, k: &K) -> Option<&V> {
        let i = self.at(k).ok()?;
        Some(&self.v[i].1)
    }

    pub fn get_mut(&mut self, k: &K) -> Option<&mut V> {
        let i = self.at(k).ok()?;
        Some(&mut self.v[i].1)
    }

    pub fn contains_key(&self, k: &K) -> bool {
        self.at(k).is_ok()
    }

    /// `k`'s value, put in as `new()` first if it has none.
    pub fn get_or_insert_with(&mut self, k: K, new: impl FnOnce() -> V) -> &mut V {
        let i = match self.at(&k) {
            Ok(i) => i,
            Err(i) => {
                // One more entry's room, not the four a first push reserves.
                self.v.reserve_exact(1);
                self.v.insert(i, (k, new()));
                i
            }
        };
        &mut self.v[i].1
    }

    /// `k`'s value, a default one put in first if it has none.
    pub fn get_or_default(&mut self, k: K) -> &mut V
    where
        V: Default,
    {
        self.get_or_insert_with(k, V::default)
    }

    pub fn remove(&mut self, k: &K) -> Option<V> {
        let i = self.at(k).ok()?;
        let (_, x) = self.v.remove(i);
        self.v.shrink_to_fit();
        Some(x)
    }

    /// Takes out the highest key's entry.
    pub fn pop_last(&mut self) -> Option<(K, V)> {
        self.v.pop()
    }

    pub fn len(&self) -> usize {
        self.v.len()
    }

    pub fn is_empty(&self) -> bool {
        self.v.is_empty()
    }

    /// By ascending key.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> + '_ {
        self.v.iter().map(|(k, x)| (k, x))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&K, &mut V)> + '_ {
        self.v.iter_mut().map(|(k, x)| (&*k, x))
    }

    pub fn values(&self) -> impl Iterator<Item = &V> + '_ {
        self.v.iter().map(|(_, x)| x)
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> + '_ {
        self.v.iter_mut().map(|(_, x)| x)
    }
}

impl<K: Ord + Copy, V> std::ops::Index<&K> for SmallMap<K, V> {
    type Output = V;

    fn index(&self, k: &K) -> &V {
        self.get(k).expect("an entry of this key")
    }
}

impl<K: Ord, V> FromIterator<(K, V)> for SmallMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(it: I) -> Self {
        // Through an ordered map: sorted, the last of a repeated key kept.
        let m: BTreeMap<K, V> = it.into_iter().collect();
        SmallMap {
            v: m.into_iter().collect(),
        }
    }
}

impl<K: Serialize, V: Serialize> Serialize for SmallMap<K, V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.v.iter().map(|(k, x)| (k, x)))
    }
}

impl<'de, K: Ord + Deserialize<'de>, V: Deserialize<'de>> Deserialize<'de> for SmallMap<K, V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let m = BTreeMap::<K, V>::deserialize(d)?;
        Ok(m.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::SmallMap;
    use std::collections::BTreeMap;

    /// Scrambled inserts, updates, removals and pops: the same entries in the
    /// same order as an ordered map given the same operations, and the same
    /// bytes in the store's encoding.
    #[test]
    fn a_small_map_follows_the_ordered_map() {
        let mut a: SmallMap<u32, (u64, u64)> = SmallMap::default();
        let mut b: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
        for k in 0..3000u32 {
            let key = k.wrapping_mul(2_654_435_761) % 29;
            match k % 8 {
                0..=2 => {
                    a.get_or_default(key).0 += u64::from(k);
                    b.entry(key).or_default().0 += u64::from(k);
                }
                3 => {
                    a.get_or_insert_with(key, || (7, 7)).1 += 1;
                    b.entry(key).or_insert((7, 7)).1 += 1;
                }
                4 | 5 => assert_eq!(a.remove(&key), b.remove(&key)),
                6 => {
                    if let Some(x) = a.get_mut(&key) {
                        x.1 += 5;
                    }
                    if let Some(x) = b.get_mut(&key) {
                        x.1 += 5;
                    }
                }
                _ => assert_eq!(a.pop_last(), b.pop_last()),
            }
            assert_eq!(a.len(), b.len());
            assert_eq!(a.is_empty(), b.is_empty());
            assert_eq!(a.contains_key(&key), b.contains_key(&key));
            assert_eq!(a.get(&key), b.get(&key));
            assert!(a.iter().eq(b.iter()));
            let bytes = postcard::to_allocvec(&a).expect("encodes");
            assert_eq!(bytes, postcard::to_allocvec(&b).expect("encodes"));
            let back: SmallMap<u32, (u64, u64)> = postcard::from_bytes(&bytes).expect("decodes");
            assert_eq!(back, a);
        }
        a.values_mut().for_each(|x| x.0 += 1);
        b.values_mut().for_each(|x| x.0 += 1);
        for ((_, x), (_, y)) in a.iter_mut().zip(b.iter_mut()) {
            x.1 *= 2;
            y.1 *= 2;
        }
        assert!(a.values().eq(b.values()));
        if let Some(first) = b.keys().next() {
            assert_eq!(a[first], b[first]);
        }
        let from: SmallMap<u32, u64> = [(5, 1), (2, 2), (5, 3)].into_iter().collect();
        assert_eq!(from.len(), 2);
        assert_eq!(from[&5], 3);
    }
}
