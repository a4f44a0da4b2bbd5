//! The network-condition monitor (C1, C2; seed 002's "dynamic network condition
//! monitor"): fed by the client manager with every heartbeat it lets in, it keeps
//! a graph of links — node → node with the rate each child measured and how often
//! the link stood still, and region → region totals ([`graph`]) — and finds the
//! congested links by comparing what parents said they sent with what children
//! got ([`congestion`], C2). Its state is private; the managers ask it.
//!
//! - [`graph`] — links and region pairs measured from heartbeats, bounded.
//! - [`congestion`] — C2: sent vs received seqs, lagging links, congested ones.

pub mod congestion;
pub mod graph;
#[cfg(test)]
mod tests;

use crate::client_manager::registry::RegionId;
use std::collections::BTreeMap;
use tiercast_proto::{ChannelId, Heartbeat, NodeId, Timestamp};

pub use graph::{LinkMeasure, RegionPairTotals, MAX_LINKS};

/// Most congested links remembered (the oldest finding goes first).
pub const MAX_CONGESTED: usize = 4096;

/// A link's condition: what was measured and whether it is congested (C2).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LinkCondition {
    pub measured: LinkMeasure,
    /// The most consecutive reports it lagged on any channel it carries.
    pub lagging_reports: u32,
    /// When it was last found congested.
    pub congested_at: Option<Timestamp>,
}

/// The network-condition monitor.
#[derive(Clone, Debug, Default)]
pub struct NetworkMonitor {
    graph: graph::LinkGraph,
    congestion: congestion::Congestion,
    /// (parent, child) → when last found congested.
    congested: BTreeMap<(NodeId, NodeId), Timestamp>,
}

impl NetworkMonitor {
    /// A heartbeat the client manager let in: the sender's parent links measured.
    pub fn record_heartbeat(
        &mut self,
        now: Timestamp,
        hb: &Heartbeat,
        region_of: impl Fn(NodeId) -> Option<RegionId>,
    ) {
        self.graph.record(now, hb, region_of);
    }

    /// C2 for one channel's report in `hb`: the links (parent, child) lagging
    /// for `reports_in_a_row` reports, among those `pushes_to` says carry pushed
    /// blocks (only those are remembered).
    pub fn congested_in(
        &mut self,
        now: Timestamp,
        channel: ChannelId,
        hb: &Heartbeat,
        reports_in_a_row: u32,
        pushes_to: impl Fn(NodeId, NodeId) -> bool,
    ) -> Vec<(NodeId, NodeId)> {
        let found = self
            .congestion
            .compare(now, channel, hb, reports_in_a_row, pushes_to);
        for link in &found {
            if !self.congested.contains_key(link) && self.congested.len() >= MAX_CONGESTED {
                let oldest = self
                    .congested
                    .iter()
                    .min_by_key(|(k, at)| (**at, **k))
                    .map(|(k, _)| *k);
                if let Some(k) = oldest {
                    self.congested.remove(&k);
                }
            }
            self.congested.insert(*link, now);
        }
        found
    }

    /// The link parent → child: measured, lagging, congested. `None` if unknown.
    pub fn link(&self, parent: NodeId, child: NodeId) -> Option<LinkCondition> {
        let congested_at = self.congested.get(&(parent, child)).copied();
        let measured = self.graph.link(parent, child);
        if measured.is_none() && congested_at.is_none() {
            return None;
        }
        let lagging_reports = self
            .graph
            .channels_of(parent, child)
            .map(|ch| self.congestion.lag(ch, parent, child))
            .max()
            .unwrap_or(0);
        Some(LinkCondition {
            measured: measured.unwrap_or_default(),
            lagging_reports,
            congested_at,
        })
    }

    /// The congested links found (parent, child, when), oldest link id first.
    pub fn congested_links(&self) -> impl Iterator<Item = (NodeId, NodeId, Timestamp)> + '_ {
        self.congested.iter().map(|((p, c), at)| (*p, *c, *at))
    }

    /// Totals of the links from region `from` to region `to`.
    pub fn region_pair(&self, from: RegionId, to: RegionId) -> RegionPairTotals {
        self.graph.region_pair(from, to)
    }

    /// Every region pair with links, in order.
    pub fn region_pairs(
        &self,
    ) -> impl Iterator<Item = ((RegionId, RegionId), RegionPairTotals)> + '_ {
        self.graph.region_pairs()
    }

    /// Links measured in the graph.
    pub fn links_measured(&self) -> usize {
        self.graph.len()
    }

    /// Links not recorded because the graph was full ([`MAX_LINKS`]).
    pub fn links_refused(&self) -> u64 {
        self.graph.refused
    }

    /// Links whose parents' sent seqs are remembered (C2; at most the push links).
    pub fn sent_links(&self) -> usize {
        self.congestion.sent_len()
    }

    /// A peer left (every channel, or one): what it or its parents said they sent
    /// is forgotten.
    pub fn forget_sent(&mut self, node: NodeId) {
        self.congestion.forget_sent(node);
        self.congested.retain(|(p, c), _| *p != node && *c != node);
    }

    /// A member left `channel`'s overlay: its links' lag counts start again.
    pub fn forget_member(&mut self, channel: ChannelId, node: NodeId) {
        self.congestion.forget_member(channel, node);
    }

    /// A channel is retired: its links and their lag counts go.
    pub fn forget_channel(&mut self, channel: ChannelId) {
        self.congestion.forget_channel(channel);
        self.graph.forget_channel(channel);
    }

    /// What is kept of `channel`: links measured on it, and links with a lag count.
    pub fn on_channel(&self, channel: ChannelId) -> usize {
        self.graph.on_channel(channel) + self.congestion.lagging_on(channel)
    }

    /// A node is gone: the links it reported are dropped from the graph.
    pub fn node_gone(&mut self, node: NodeId) {
        self.graph.forget(node);
    }
}
