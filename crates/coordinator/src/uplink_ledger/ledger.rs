//! The machine-wide uplink ledger (C9, V8): per node, its declared uplink and
//! the share of it each channel's manager holds. A manager asks for a share when
//! the node joins its channel ([`UplinkLedger::acquire`]) and gives it back when
//! the node leaves, is ejected or the channel ends ([`UplinkLedger::release`],
//! [`UplinkLedger::forget`], [`UplinkLedger::release_channel`]).
//!
//! The split: proportional to each channel's weight (its stream rate), so a
//! node alone on a channel holds its whole declared uplink and the shares never
//! add up to more than it (each is floored). See the module doc of
//! [`super`] for why this rule.
//!
//! Bounded: a node's entry goes when its last share is released; at most
//! [`MAX_CHANNELS_PER_NODE`] shares per node and `max_nodes` nodes.

use std::collections::{BTreeMap, BTreeSet};
use tiercast_proto::{ChannelId, NodeId};

/// Shares one node may hold (the node's own limit: ≤ 64 channels).
pub const MAX_CHANNELS_PER_NODE: usize = 64;

/// Why a share was not granted (the node then relays nothing on that channel).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShareError {
    #[error("the node already holds shares on {MAX_CHANNELS_PER_NODE} channels")]
    TooManyChannels,
    #[error("the ledger already holds its limit of nodes")]
    TooManyNodes,
}

/// One channel's hold on a node's uplink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Hold {
    /// The channel's weight in the split (its stream rate, bps; at least 1).
    weight: u64,
    share_bps: u64,
}

#[derive(Clone, Debug, Default)]
struct NodeUplink {
    declared_bps: u64,
    holds: BTreeMap<ChannelId, Hold>,
}

/// What [`UplinkLedger::acquire`] granted: the asking channel's share, and the
/// other channels whose share changed (they shrank), with their new share.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub share_bps: u64,
    pub changed: Vec<(ChannelId, u64)>,
}

/// Per node, its declared uplink and each channel's share of it.
#[derive(Clone, Debug)]
pub struct UplinkLedger {
    nodes: BTreeMap<NodeId, NodeUplink>,
    /// Nodes holding shares on more than one channel (kept in step, so a
    /// periodic check visits only them).
    shared: BTreeSet<NodeId>,
    max_nodes: usize,
}

/// `declared` split between `holds` in proportion to their weights, each
/// floored: the sum never passes `declared`, and one hold gets all of it.
fn split(declared: u64, holds: &BTreeMap<ChannelId, Hold>) -> BTreeMap<ChannelId, u64> {
    let total: u128 = holds.values().map(|h| u128::from(h.weight)).sum();
    holds
        .iter()
        .map(|(c, h)| {
            let share = u128::from(declared) * u128::from(h.weight) / total.max(1);
            (
                *c,
                u64::try_from(share).expect("a share is at most the declared uplink"),
            )
        })
        .collect()
}

impl UplinkLedger {
    pub fn new(max_nodes: usize) -> Self {
        UplinkLedger {
            nodes: BTreeMap::new(),
            shared: BTreeSet::new(),
            max_nodes,
        }
    }

    /// The share `channel` would hold of `node`'s uplink if it asked now with
    /// `declared_bps` and `weight` (nothing changes; 0 where it would be refused).
    pub fn quote(&self, node: NodeId, channel: ChannelId, declared_bps: u64, weight: u64) -> u64 {
        let mut holds = self
            .nodes
            .get(&node)
            .map(|n| n.holds.clone())
            .unwrap_or_default();
        if !holds.contains_key(&channel) {
            let full = holds.len() >= MAX_CHANNELS_PER_NODE;
            let crowded = holds.is_empty() && self.nodes.len() >= self.max_nodes;
            if full || crowded {
                return 0;
            }
        }
        holds.insert(
            channel,
            Hold {
                weight: weight.max(1),
                share_bps: 0,
            },
        );
        split(declared_bps, &holds)
            .get(&channel)
            .copied()
            .unwrap_or(0)
    }

    /// `channel`'s manager asks for a share of `node`'s uplink (its declared
    /// `declared_bps`, which replaces any earlier declaration). Every share is
    /// recomputed; the others that changed are returned for their managers to
    /// apply. Asking again for a channel already held changes nothing unless the
    /// declaration or the weight did.
    pub fn acquire(
        &mut self,
        node: NodeId,
        channel: ChannelId,
        declared_bps: u64,
        weight: u64,
    ) -> Result<Grant, ShareError> {
        if !self.nodes.contains_key(&node) && self.nodes.len() >= self.max_nodes {
            return Err(ShareError::TooManyNodes);
        }
        let n = self.nodes.entry(node).or_default();
        if !n.holds.contains_key(&channel) && n.holds.len() >= MAX_CHANNELS_PER_NODE {
            return Err(ShareError::TooManyChannels);
        }
        n.declared_bps = declared_bps;
        n.holds.insert(
            channel,
            Hold {
                weight: weight.max(1),
                share_bps: 0,
            },
        );
        let changed = Self::resplit(n, Some(channel));
        let share_bps = n.holds[&channel].share_bps;
        if n.holds.len() > 1 {
            self.shared.insert(node);
        }
        Ok(Grant { share_bps, changed })
    }

    /// `channel` gives `node`'s share back (the node left it or was ejected).
    /// Returns the other channels whose share grew, with their new share; the
    /// node's entry goes with its last share.
    pub fn release(&mut self, node: NodeId, channel: ChannelId) -> Vec<(ChannelId, u64)> {
        let Some(n) = self.nodes.get_mut(&node) else {
            return Vec::new();
        };
        if n.holds.remove(&channel).is_none() {
            return Vec::new();
        }
        if n.holds.len() <= 1 {
            self.shared.remove(&node);
        }
        if n.holds.is_empty() {
            self.nodes.remove(&node);
            return Vec::new();
        }
        Self::resplit(n, None)
    }

    /// Every share of `node` goes (it left every channel, or crashed).
    pub fn forget(&mut self, node: NodeId) {
        self.nodes.remove(&node);
        self.shared.remove(&node);
    }

    /// `channel` ended: every node's share in it goes back. Returns, per node,
    /// the other channels whose share grew.
    pub fn release_channel(&mut self, channel: ChannelId) -> Vec<(NodeId, ChannelId, u64)> {
        let holders: Vec<NodeId> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.holds.contains_key(&channel))
            .map(|(id, _)| *id)
            .collect();
        let mut grown = Vec::new();
        for id in holders {
            grown.extend(
                self.release(id, channel)
                    .into_iter()
                    .map(|(c, s)| (id, c, s)),
            );
        }
        grown
    }

    /// Recomputes `n`'s shares; returns those that changed, but `except`.
    fn resplit(n: &mut NodeUplink, except: Option<ChannelId>) -> Vec<(ChannelId, u64)> {
        let shares = split(n.declared_bps, &n.holds);
        let mut changed = Vec::new();
        for (c, share) in shares {
            let h = n
                .holds
                .get_mut(&c)
                .expect("split keeps the holds' channels");
            if h.share_bps != share && Some(c) != except {
                changed.push((c, share));
            }
            h.share_bps = share;
        }
        changed
    }

    /// `channel`'s share of `node`'s uplink, if it holds one.
    pub fn share(&self, node: NodeId, channel: ChannelId) -> Option<u64> {
        Some(self.nodes.get(&node)?.holds.get(&channel)?.share_bps)
    }

    /// `node`'s declared uplink, while some channel holds a share of it.
    pub fn declared(&self, node: NodeId) -> Option<u64> {
        self.nodes.get(&node).map(|n| n.declared_bps)
    }

    /// The sum of `node`'s shares (never above its declared uplink).
    pub fn booked(&self, node: NodeId) -> u64 {
        self.nodes
            .get(&node)
            .map_or(0, |n| n.holds.values().map(|h| h.share_bps).sum())
    }

    /// The channels holding a share of `node`'s uplink, with the share.
    pub fn shares(&self, node: NodeId) -> impl Iterator<Item = (ChannelId, u64)> + '_ {
        self.nodes
            .get(&node)
            .into_iter()
            .flat_map(|n| n.holds.iter().map(|(c, h)| (*c, h.share_bps)))
    }

    /// Nodes whose uplink is shared by more than one channel.
    pub fn shared_nodes(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.shared.iter().copied()
    }

    /// Nodes with at least one share.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}
