//! The link graph's table (C1, C2; issue 12): links keyed (child, parent,
//! channel), kept per child in one small vector sorted by (parent, channel),
//! the children found through a hash index. A child's heartbeat replaces its
//! links: one lookup for all of them, where an ordered map of every link took
//! one search of 10⁵–10⁶ entries per link. Walks over one child's links, or one
//! (child, parent) pair's channels, come in the order the ordered map gave;
//! walks over every link (a channel retired) come in no set order.

use crate::node_hash::NodeHashMap;
use tiercast_proto::{ChannelId, NodeId};

/// (child, parent, channel).
pub(crate) type LinkKey = (NodeId, NodeId, ChannelId);

/// One child's links: ((parent, channel), value), sorted by (parent, channel).
type Links<V> = Vec<((NodeId, ChannelId), V)>;

#[derive(Clone, Debug)]
pub(crate) struct ChildLinks<V> {
    /// child → its links, sorted by (parent, channel); never empty.
    children: NodeHashMap<Links<V>>,
    len: usize,
}

impl<V> Default for ChildLinks<V> {
    fn default() -> Self {
        ChildLinks {
            children: NodeHashMap::default(),
            len: 0,
        }
    }
}

impl<V> ChildLinks<V> {
    /// Links in all.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn get_mut(&mut self, key: &LinkKey) -> Option<&mut V> {
        let v = self.children.get_mut(&key.0)?;
        let i = v.binary_search_by_key(&(key.1, key.2), |(k, _)| *k).ok()?;
        Some(&mut v[i].1)
    }

    /// Puts the link (replacing it when known).
    pub(crate) fn insert(&mut self, key: LinkKey, value: V) {
        let v = self.children.entry(key.0).or_default();
        match v.binary_search_by_key(&(key.1, key.2), |(k, _)| *k) {
            Ok(i) => v[i].1 = value,
            Err(i) => {
                // Room for exactly the links (a first push reserves four).
                v.reserve_exact(1);
                v.insert(i, ((key.1, key.2), value));
                self.len += 1;
            }
        }
    }

    pub(crate) fn remove(&mut self, key: &LinkKey) -> Option<V> {
        let v = self.children.get_mut(&key.0)?;
        let i = v.binary_search_by_key(&(key.1, key.2), |(k, _)| *k).ok()?;
        let (_, value) = v.remove(i);
        if v.is_empty() {
            self.children.remove(&key.0);
        }
        self.len -= 1;
        Some(value)
    }

    /// The child's links as (parent, channel, value), by (parent, channel).
    pub(crate) fn of_child(
        &self,
        child: NodeId,
    ) -> impl Iterator<Item = (NodeId, ChannelId, &V)> + '_ {
        self.children
            .get(&child)
            .into_iter()
            .flatten()
            .map(|((p, c), v)| (*p, *c, v))
    }

    /// The links parent → child, by channel.
    pub(crate) fn between(
        &self,
        child: NodeId,
        parent: NodeId,
    ) -> impl Iterator<Item = (ChannelId, &V)> + '_ {
        self.of_child(child)
            .filter(move |(p, _, _)| *p == parent)
            .map(|(_, c, v)| (c, v))
    }

    /// Every link's key, in no set order.
    pub(crate) fn keys(&self) -> impl Iterator<Item = LinkKey> + '_ {
        self.children
            .iter()
            .flat_map(|(child, v)| v.iter().map(|((p, c), _)| (*child, *p, *c)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    proptest! {
        #[test]
        fn the_table_holds_what_an_ordered_map_of_links_holds(
            ops in proptest::collection::vec((0u8..3, 0u32..5, 0u32..5, 0u32..3, any::<u16>()), 1..120),
        ) {
            let mut t = ChildLinks::default();
            let mut m: BTreeMap<LinkKey, u16> = BTreeMap::new();
            for (op, c, p, ch, v) in ops {
                let key = (NodeId(c), NodeId(p), ChannelId(ch));
                match op {
                    0 => {
                        t.insert(key, v);
                        m.insert(key, v);
                    }
                    1 => prop_assert_eq!(t.remove(&key), m.remove(&key)),
                    _ => {
                        if let Some(x) = t.get_mut(&key) {
                            *x = v;
                        }
                        if let Some(x) = m.get_mut(&key) {
                            *x = v;
                        }
                    }
                }
                prop_assert_eq!(t.len(), m.len());
                for c in 0..5 {
                    let child = NodeId(c);
                    let want: Vec<_> = m
                        .range((child, NodeId(0), ChannelId(0))..=(child, NodeId(u32::MAX), ChannelId(u32::MAX)))
                        .map(|(k, v)| (k.1, k.2, *v))
                        .collect();
                    let got: Vec<_> = t.of_child(child).map(|(p, c, v)| (p, c, *v)).collect();
                    prop_assert_eq!(got, want);
                    for p in 0..5 {
                        let want: Vec<_> = m
                            .range((child, NodeId(p), ChannelId(0))..=(child, NodeId(p), ChannelId(u32::MAX)))
                            .map(|(k, v)| (k.2, *v))
                            .collect();
                        let got: Vec<_> = t.between(child, NodeId(p)).map(|(c, v)| (c, *v)).collect();
                        prop_assert_eq!(got, want);
                    }
                }
                let mut keys: Vec<_> = t.keys().collect();
                keys.sort_unstable();
                prop_assert_eq!(keys, m.keys().copied().collect::<Vec<_>>());
                prop_assert!(t.children.values().all(|v| !v.is_empty()));
            }
        }
    }
}
