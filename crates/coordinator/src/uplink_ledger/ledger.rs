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
//! Lending ([`super::lending`]): at the periodic check the coordinator tells
//! what each channel uses of a shared node ([`UplinkLedger::lend`]); a channel
//! under its share lends the rest to the others, and takes it back when it
//! needs it. [`UplinkLedger::share`] is the share a channel may book now,
//! [`UplinkLedger::base_share`] its static split; the shares still never add up
//! to more than the declared uplink.
//!
//! Bounded: a node's entry goes when its last share is released; at most
//! [`MAX_CHANNELS_PER_NODE`] shares per node and `max_nodes` nodes.

use super::claims::Claims;
use super::lending::{lend_out, Claim};
use crate::dense_map::DenseMap;
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

#[derive(Clone, Debug, Default)]
struct NodeUplink {
    declared_bps: u64,
    holds: Claims,
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
    /// One dense slot a node (`dense_map.rs`; X7's memory per node: an ordered
    /// map's tree nodes, about half full, took ≈ 70 B a node). The one walk
    /// over them (a channel's end) sorts its ids.
    nodes: DenseMap<NodeUplink>,
    /// Nodes holding shares on more than one channel (kept in step, so a
    /// periodic check visits only them).
    shared: BTreeSet<NodeId>,
    max_nodes: usize,
    /// Channels under their share lend the rest to the others (`lending`).
    lending: bool,
}

/// `declared` split between `holds` in proportion to their weights, each
/// floored: the sum never passes `declared`, and one hold gets all of it.
fn split(declared: u64, holds: &Claims) -> BTreeMap<ChannelId, u64> {
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
            nodes: DenseMap::new(),
            shared: BTreeSet::new(),
            max_nodes,
            lending: true,
        }
    }

    /// Whether channels under their share lend the rest (on by default); off,
    /// every share is the static split.
    pub fn with_lending(mut self, lending: bool) -> Self {
        self.lending = lending;
        self
    }

    /// Whether lending is on.
    pub fn lends(&self) -> bool {
        self.lending
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
        Self::hold(&mut holds, channel, weight);
        let mut n = NodeUplink {
            declared_bps,
            holds,
        };
        Self::resplit(&mut n, None, self.lending);
        n.holds.get(&channel).map_or(0, |c| c.effective_bps)
    }

    /// `channel`'s claim in `holds`, new (not measured: it claims its whole
    /// base) or kept with its measured use and share, its weight updated.
    fn hold(holds: &mut Claims, channel: ChannelId, weight: u64) {
        let c = holds.get_or_insert_with(channel, || Claim {
            weight: 1,
            base_bps: 0,
            need_bps: None,
            effective_bps: 0,
        });
        c.weight = weight.max(1);
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
        let n = self.nodes.get_or_insert_with(node, NodeUplink::default);
        if !n.holds.contains_key(&channel) && n.holds.len() >= MAX_CHANNELS_PER_NODE {
            return Err(ShareError::TooManyChannels);
        }
        n.declared_bps = declared_bps;
        Self::hold(&mut n.holds, channel, weight);
        let changed = Self::resplit(n, Some(channel), self.lending);
        let share_bps = n.holds[&channel].effective_bps;
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
        Self::resplit(n, None, self.lending)
    }

    /// The periodic check's lending (see [`super::lending`]): `used` is what
    /// each channel on `node` uses there now (bps: its booked children × rate;
    /// a channel not named keeps its last measure). Returns the channels whose
    /// share changed, with their new share, for their managers to apply (a
    /// borrower's that shrank: its children re-homed or its room reduced).
    pub fn lend(&mut self, node: NodeId, used: &[(ChannelId, u64)]) -> Vec<(ChannelId, u64)> {
        let Some(n) = self.nodes.get_mut(&node) else {
            return Vec::new();
        };
        for (channel, bps) in used {
            if let Some(c) = n.holds.get_mut(channel) {
                c.need_bps = Some(*bps);
            }
        }
        Self::resplit(n, None, self.lending)
    }

    /// Every share of `node` goes (it left every channel, or crashed).
    pub fn forget(&mut self, node: NodeId) {
        self.nodes.remove(&node);
        self.shared.remove(&node);
    }

    /// `channel` ended: every node's share in it goes back. Returns, per node,
    /// the other channels whose share grew.
    pub fn release_channel(&mut self, channel: ChannelId) -> Vec<(NodeId, ChannelId, u64)> {
        let mut holders: Vec<NodeId> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.holds.contains_key(&channel))
            .map(|(id, _)| id)
            .collect();
        // By ascending id, as the ordered map walked them.
        holders.sort_unstable();
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

    /// Nodes holding a share for `channel`.
    pub fn holders(&self, channel: ChannelId) -> usize {
        self.nodes
            .values()
            .filter(|n| n.holds.contains_key(&channel))
            .count()
    }

    /// Recomputes `n`'s bases and shares; returns the shares that changed,
    /// but `except`'s.
    fn resplit(
        n: &mut NodeUplink,
        except: Option<ChannelId>,
        lending: bool,
    ) -> Vec<(ChannelId, u64)> {
        let before: Vec<u64> = n.holds.values().map(|c| c.effective_bps).collect();
        for (c, base) in split(n.declared_bps, &n.holds) {
            n.holds
                .get_mut(&c)
                .expect("split keeps the holds' channels")
                .base_bps = base;
        }
        lend_out(&mut n.holds, lending);
        n.holds
            .iter()
            .zip(before)
            .filter(|((c, h), was)| h.effective_bps != *was && Some(**c) != except)
            .map(|((c, h), _)| (*c, h.effective_bps))
            .collect()
    }

    /// The share `channel` may book of `node`'s uplink now (its base, plus
    /// what it borrows or less what it lends), if it holds one.
    pub fn share(&self, node: NodeId, channel: ChannelId) -> Option<u64> {
        Some(self.nodes.get(&node)?.holds.get(&channel)?.effective_bps)
    }

    /// `channel`'s static share of `node`'s uplink (⌊U·rᶜ/Σr⌋), if it holds one.
    pub fn base_share(&self, node: NodeId, channel: ChannelId) -> Option<u64> {
        Some(self.nodes.get(&node)?.holds.get(&channel)?.base_bps)
    }

    /// `node`'s declared uplink, while some channel holds a share of it.
    pub fn declared(&self, node: NodeId) -> Option<u64> {
        self.nodes.get(&node).map(|n| n.declared_bps)
    }

    /// The sum of `node`'s shares, loans included (never above its declared
    /// uplink).
    pub fn booked(&self, node: NodeId) -> u64 {
        self.nodes
            .get(&node)
            .map_or(0, |n| n.holds.values().map(|h| h.effective_bps).sum())
    }

    /// The channels holding a share of `node`'s uplink, with the share.
    pub fn shares(&self, node: NodeId) -> impl Iterator<Item = (ChannelId, u64)> + '_ {
        self.nodes
            .get(&node)
            .into_iter()
            .flat_map(|n| n.holds.iter().map(|(c, h)| (*c, h.effective_bps)))
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
