//! The network-condition monitor (C1, C2; seed 002's "dynamic network condition
//! monitor"): fed by the client manager with every heartbeat it lets in, it keeps
//! a graph of links — node → node with the rate each child measured and how often
//! the link stood still, and region → region totals ([`graph`]) — and finds the
//! congested links by comparing what parents said they sent with what children
//! got ([`congestion`], C2). Its state is private; the managers ask it.
//!
//! - [`graph`] — links and region pairs measured from heartbeats, bounded.
//! - [`child_links`] — the graph's links, kept per child (one lookup a heartbeat).
//! - [`congestion`] — C2: sent vs received seqs, lagging links, congested ones.
//! - [`pace`] — each channel's block rate, from the highest seq reported (C5).

pub mod child_links;
pub mod congestion;
pub mod graph;
pub mod pace;
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
    pace: pace::ChannelPace,
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
        for c in &hb.channels {
            if let Some(seq) = c.last_seq {
                self.pace.observe(now, c.channel, seq);
            }
        }
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

    /// What `channel`'s links between regions `a` and `b` (both ways) carried at
    /// their children's last reports, in bit/s of a stream of `stream_bps`: their
    /// measured block rates as a share of the channel's ([`pace`]). `None` until
    /// the channel's block rate is known.
    pub fn carried_between_bps(
        &self,
        channel: ChannelId,
        a: RegionId,
        b: RegionId,
        stream_bps: u64,
    ) -> Option<u64> {
        let rate = self.pace.rate_milli(channel).filter(|r| *r > 0)?;
        let across = self
            .graph
            .channel_region_pair(channel, a, b)
            .rate_milli_blocks_per_s
            + self
                .graph
                .channel_region_pair(channel, b, a)
                .rate_milli_blocks_per_s;
        let bps = u128::from(across) * u128::from(stream_bps) / u128::from(rate);
        Some(bps.min(u128::from(u64::MAX)) as u64)
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
        self.congestion.forget_members(channel, &[node]);
    }

    /// Members left `channel`'s overlay: their links' lag counts start again
    /// (one pass over the books for all of them).
    pub fn forget_members(&mut self, channel: ChannelId, nodes: &[NodeId]) {
        if !nodes.is_empty() {
            self.congestion.forget_members(channel, nodes);
        }
    }

    /// A channel is retired: its links and their lag counts go.
    pub fn forget_channel(&mut self, channel: ChannelId) {
        self.congestion.forget_channel(channel);
        self.graph.forget_channel(channel);
        self.pace.forget(channel);
    }

    /// What is kept of `channel`: links measured on it, and links with a lag count.
    pub fn on_channel(&self, channel: ChannelId) -> usize {
        self.graph.on_channel(channel)
            + self.congestion.lagging_on(channel)
            + usize::from(self.pace.tracks(channel))
    }

    /// A node is gone: the links it reported are dropped from the graph.
    pub fn node_gone(&mut self, node: NodeId) {
        self.graph.forget(node);
    }
}
