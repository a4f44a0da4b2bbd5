//! The one way the coordinator tells a node its parents for a channel (C1): a
//! full [`Message::ParentSet`], numbered per (node, channel), sent by the VAN
//! (activation and re-parenting, V2, V4, V9, V10) and by the peer overlay (C4,
//! C6) alike. The numbers start afresh at each registration (the node forgets
//! its own when it is registered again) and are dropped when the node leaves;
//! at most one per (registered node, channel), both bounded
//! (`max_nodes`, `max_channels`); a retired channel's go with it.

use crate::coordinator::Coordinator;
use std::collections::BTreeMap;
use tiercast_proto::{ChannelDesc, ChannelId, Message, NodeId, PeerFeed, Placement};

/// The last set version sent per (node, channel).
#[derive(Clone, Debug, Default)]
pub struct SetVersions {
    last: BTreeMap<(NodeId, ChannelId), u64>,
}

impl SetVersions {
    /// The version of the next set for `node` on `channel`.
    pub fn next(&mut self, node: NodeId, channel: ChannelId) -> u64 {
        let v = self.last.entry((node, channel)).or_insert(0);
        *v = v.saturating_add(1);
        *v
    }

    /// The last version sent, if any.
    pub fn last(&self, node: NodeId, channel: ChannelId) -> Option<u64> {
        self.last.get(&(node, channel)).copied()
    }

    /// `node` left (or registers anew): its numbers go.
    pub fn forget(&mut self, node: NodeId) {
        let keys: Vec<(NodeId, ChannelId)> = self
            .last
            .range((node, ChannelId(0))..=(node, ChannelId(u32::MAX)))
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            self.last.remove(&k);
        }
    }

    /// `channel` was retired: every node's numbers for it go.
    pub fn forget_channel(&mut self, channel: ChannelId) {
        self.last.retain(|(_, c), _| *c != channel);
    }

    /// The nodes told their parents on `channel`.
    pub fn nodes_on(&self, channel: ChannelId) -> impl Iterator<Item = NodeId> + '_ {
        self.last
            .keys()
            .filter(move |(_, c)| *c == channel)
            .map(|(n, _)| *n)
    }

    /// Versions kept for `channel` (one per node told its parents there).
    pub fn on_channel(&self, channel: ChannelId) -> usize {
        self.last.keys().filter(|(_, c)| *c == channel).count()
    }

    pub fn len(&self) -> usize {
        self.last.len()
    }

    pub fn is_empty(&self) -> bool {
        self.last.is_empty()
    }
}

impl Coordinator {
    /// Tells `node` all its parents for the channel `desc`, with what each
    /// pushes, and what the set makes of it (`placement`). Only for a node the
    /// registry holds (a set for anyone else is not sent).
    pub(crate) fn send_parent_set(
        &mut self,
        node: NodeId,
        desc: ChannelDesc,
        placement: Placement,
        parents: Vec<PeerFeed>,
    ) {
        if self.registry.get(node).is_none() {
            return;
        }
        let version = self.parent_sets.next(node, desc.id);
        self.send(
            node,
            Message::ParentSet {
                channel: desc,
                version,
                placement,
                parents,
            },
        );
    }

    /// The version of the last parent set sent to `node` for `channel`.
    pub fn parent_set_version(&self, node: NodeId, channel: ChannelId) -> Option<u64> {
        self.parent_sets.last(node, channel)
    }
}

#[cfg(test)]
mod tests {
    use super::SetVersions;
    use tiercast_proto::{ChannelId, NodeId};

    #[test]
    fn versions_grow_per_node_and_channel_and_go_with_the_node() {
        let mut v = SetVersions::default();
        assert_eq!(v.next(NodeId(1), ChannelId(1)), 1);
        assert_eq!(v.next(NodeId(1), ChannelId(1)), 2);
        assert_eq!(v.next(NodeId(1), ChannelId(2)), 1);
        assert_eq!(v.next(NodeId(2), ChannelId(1)), 1);
        v.forget(NodeId(1));
        assert_eq!(v.len(), 1);
        assert_eq!(v.last(NodeId(1), ChannelId(1)), None);
        assert_eq!(v.next(NodeId(1), ChannelId(1)), 1, "afresh after leaving");
        assert_eq!(v.last(NodeId(2), ChannelId(1)), Some(1));
    }
}
