//! The coordinator's map of managers of one kind, by channel (C1): changed in
//! place by the strategy's own verbs (`van/`, `peers/`) and, for the peer
//! overlays, by the policy store and the uplink ledger (their caps, rules and
//! shares); a manager is added and retired only by the service manager
//! ([`super`]) — `insert` and `remove` are visible there alone.

use std::collections::btree_map::{self, BTreeMap};
use tiercast_proto::ChannelId;

/// Managers by channel, in channel order (the order every part iterates in).
#[derive(Clone, Debug)]
pub struct ManagerMap<M> {
    map: BTreeMap<ChannelId, M>,
}

impl<M> Default for ManagerMap<M> {
    fn default() -> Self {
        ManagerMap {
            map: BTreeMap::new(),
        }
    }
}

impl<M> ManagerMap<M> {
    /// Only the service manager creates managers.
    pub(super) fn insert(&mut self, channel: ChannelId, manager: M) {
        let old = self.map.insert(channel, manager);
        assert!(old.is_none(), "a channel has one manager of a kind");
    }

    /// Only the service manager retires managers (`retire.rs`).
    pub(super) fn remove(&mut self, channel: &ChannelId) -> Option<M> {
        self.map.remove(channel)
    }

    pub fn get(&self, channel: &ChannelId) -> Option<&M> {
        self.map.get(channel)
    }

    pub fn get_mut(&mut self, channel: &ChannelId) -> Option<&mut M> {
        self.map.get_mut(channel)
    }

    pub fn contains_key(&self, channel: &ChannelId) -> bool {
        self.map.contains_key(channel)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn keys(&self) -> btree_map::Keys<'_, ChannelId, M> {
        self.map.keys()
    }

    pub fn values(&self) -> btree_map::Values<'_, ChannelId, M> {
        self.map.values()
    }

    pub fn values_mut(&mut self) -> btree_map::ValuesMut<'_, ChannelId, M> {
        self.map.values_mut()
    }

    pub fn iter(&self) -> btree_map::Iter<'_, ChannelId, M> {
        self.map.iter()
    }
}

impl<M> std::ops::Index<&ChannelId> for ManagerMap<M> {
    type Output = M;

    fn index(&self, channel: &ChannelId) -> &M {
        &self.map[channel]
    }
}

impl<'a, M> IntoIterator for &'a ManagerMap<M> {
    type Item = (&'a ChannelId, &'a M);
    type IntoIter = btree_map::Iter<'a, ChannelId, M>;

    fn into_iter(self) -> Self::IntoIter {
        self.map.iter()
    }
}
