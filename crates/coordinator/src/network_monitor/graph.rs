//! The graph of links the network-condition monitor keeps (C1, seed 002: "network
//! conditions as a graph, with servers as nodes and attributes such as network
//! load stored as weights"): per link parent → child and channel, the rate the
//! child measured from its heartbeats and how often the link stood still, and per
//! pair of regions the totals of those links, kept per channel and summed over
//! channels when asked (a channel's: what its links across a capped pair really
//! carry, C5).
//!
//! A link is known from its child's heartbeats only: each one replaces the
//! child's links (a parent it no longer names is dropped). Bounded: at most
//! [`MAX_LINKS`] links, new ones beyond are not recorded (counted).

use super::child_links::ChildLinks;
use crate::client_manager::registry::RegionId;
use std::collections::BTreeMap;
use tiercast_proto::{ChannelId, Heartbeat, NodeId, Timestamp};

/// Most links recorded (a heartbeat's links are bounded by the gate; their number
/// across nodes is not).
pub const MAX_LINKS: usize = 1 << 18;

/// One link on one channel, as its child last reported it.
#[derive(Clone, Copy, Debug)]
struct LinkState {
    last_seq: Option<u64>,
    at: Timestamp,
    /// Blocks per second delivered (seq advance × the feed's share), ×1000.
    rate_milli: u64,
    reports: u32,
    stalls: u32,
    regions: (RegionId, RegionId),
}

/// Totals of the links between two regions (from → to).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RegionPairTotals {
    /// Links known between the two regions.
    pub links: u32,
    /// Their measured rates summed: blocks per second × 1000.
    pub rate_milli_blocks_per_s: u64,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct LinkGraph {
    /// (child, parent, channel) → the link, kept per child.
    links: ChildLinks<LinkState>,
    /// Totals per channel and pair of regions (bounded by channels × region
    /// pairs); a pair's totals over all channels are summed when asked.
    channel_regions: RegionTotals,
    pub(crate) refused: u64,
    /// The links of the heartbeat being recorded (a buffer kept between them).
    reported: Vec<(NodeId, NodeId, ChannelId)>,
}

/// Reported links looked up in place up to this many; beyond, sorted and searched.
const SCAN_LINKS: usize = 16;

type RegionTotals = BTreeMap<(ChannelId, RegionId, RegionId), RegionPairTotals>;

fn add_to(totals: &mut RegionTotals, channel: ChannelId, s: &LinkState) {
    let (from, to) = s.regions;
    let t = totals.entry((channel, from, to)).or_default();
    t.links += 1;
    t.rate_milli_blocks_per_s += s.rate_milli;
}

fn sub_from(totals: &mut RegionTotals, channel: ChannelId, s: &LinkState) {
    let (from, to) = s.regions;
    let key = (channel, from, to);
    if let Some(t) = totals.get_mut(&key) {
        t.links = t.links.saturating_sub(1);
        t.rate_milli_blocks_per_s = t.rate_milli_blocks_per_s.saturating_sub(s.rate_milli);
        if t.links == 0 {
            totals.remove(&key);
        }
    }
}

/// A link's measured condition, summed over the channels it carries.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LinkMeasure {
    /// Blocks per second delivered.
    pub rate_blocks_per_s: f64,
    /// Share of the child's reports in which the link moved nothing (a parent
    /// seq standing still) — the loss heartbeats can show.
    pub stall_share: f64,
    pub reports: u32,
}

impl LinkGraph {
    pub(crate) fn len(&self) -> usize {
        self.links.len()
    }

    fn sub(&mut self, channel: ChannelId, s: &LinkState) {
        sub_from(&mut self.channel_regions, channel, s);
    }

    /// The child's heartbeat: its parent links measured, the others dropped.
    /// One search per reported link, no allocation when no link went.
    pub(crate) fn record(
        &mut self,
        now: Timestamp,
        hb: &Heartbeat,
        region_of: impl Fn(NodeId) -> Option<RegionId>,
    ) {
        let child = hb.node;
        let mut reported = std::mem::take(&mut self.reported);
        reported.clear();
        let child_region = region_of(child).unwrap_or_default();
        for c in &hb.channels {
            for p in &c.parents {
                let key = (child, p.peer, c.channel);
                reported.push(key);
                let len = self.links.len();
                let regions = (region_of(p.peer).unwrap_or_default(), child_region);
                let totals = &mut self.channel_regions;
                match self.links.get_mut(&key) {
                    None => {
                        if len >= MAX_LINKS {
                            self.refused += 1;
                            continue;
                        }
                        let s = LinkState {
                            last_seq: p.last_seq,
                            at: now,
                            rate_milli: 0,
                            reports: 0,
                            stalls: 0,
                            regions,
                        };
                        add_to(totals, c.channel, &s);
                        self.links.insert(key, s);
                    }
                    Some(e) => {
                        let o = *e;
                        let mut s = o;
                        sub_from(totals, c.channel, &o);
                        let dt_us = now.saturating_since(o.at);
                        let moved = match (o.last_seq, p.last_seq) {
                            (Some(b), Some(a)) => a.saturating_sub(b),
                            (None, Some(_)) | (_, None) => 0,
                        };
                        if dt_us > 0 {
                            let per_s = moved as f64 * p.feed.share() * 1e6 / dt_us as f64;
                            s.rate_milli = (per_s * 1000.0) as u64;
                        }
                        s.reports = s.reports.saturating_add(1);
                        if moved == 0 && p.feed.share() > 0.0 {
                            s.stalls = s.stalls.saturating_add(1);
                        }
                        s.last_seq = p.last_seq;
                        s.at = now;
                        s.regions = regions;
                        add_to(totals, c.channel, &s);
                        *e = s;
                    }
                }
            }
        }
        if reported.len() > SCAN_LINKS {
            reported.sort_unstable();
        }
        let was_reported = |k: &(NodeId, NodeId, ChannelId)| {
            if reported.len() > SCAN_LINKS {
                reported.binary_search(k).is_ok()
            } else {
                reported.contains(k)
            }
        };
        let gone: Vec<_> = self
            .child_links(child)
            .filter(|k| !was_reported(k))
            .collect();
        for k in gone {
            if let Some(s) = self.links.remove(&k) {
                self.sub(k.2, &s);
            }
        }
        self.reported = reported;
    }

    fn child_links(&self, child: NodeId) -> impl Iterator<Item = (NodeId, NodeId, ChannelId)> + '_ {
        self.links
            .of_child(child)
            .map(move |(p, c, _)| (child, p, c))
    }

    /// The links the node reported as a child are dropped (it is gone); links it
    /// fed go when their children report without it.
    pub(crate) fn forget(&mut self, node: NodeId) {
        let gone: Vec<_> = self.child_links(node).collect();
        for k in gone {
            if let Some(s) = self.links.remove(&k) {
                self.sub(k.2, &s);
            }
        }
    }

    /// `channel` was retired: its links go (and their region totals).
    pub(crate) fn forget_channel(&mut self, channel: ChannelId) {
        let gone: Vec<_> = self
            .links
            .keys()
            .filter(|(_, _, c)| *c == channel)
            .collect();
        for k in gone {
            if let Some(s) = self.links.remove(&k) {
                self.sub(k.2, &s);
            }
        }
    }

    /// Links known on `channel`.
    pub(crate) fn on_channel(&self, channel: ChannelId) -> usize {
        self.links.keys().filter(|(_, _, c)| *c == channel).count()
    }

    /// The link parent → child, summed over its channels.
    pub(crate) fn link(&self, parent: NodeId, child: NodeId) -> Option<LinkMeasure> {
        let mut m = LinkMeasure::default();
        let mut stalls = 0u32;
        let mut any = false;
        for (_, s) in self.links.between(child, parent) {
            any = true;
            m.rate_blocks_per_s += s.rate_milli as f64 / 1000.0;
            m.reports = m.reports.saturating_add(s.reports);
            stalls = stalls.saturating_add(s.stalls);
        }
        if m.reports > 0 {
            m.stall_share = f64::from(stalls) / f64::from(m.reports);
        }
        any.then_some(m)
    }

    /// The channels the link parent → child carries.
    pub(crate) fn channels_of(
        &self,
        parent: NodeId,
        child: NodeId,
    ) -> impl Iterator<Item = ChannelId> + '_ {
        self.links.between(child, parent).map(|(ch, _)| ch)
    }

    pub(crate) fn region_pair(&self, from: RegionId, to: RegionId) -> RegionPairTotals {
        self.region_pair_totals()
            .remove(&(from, to))
            .unwrap_or_default()
    }

    /// The totals of `channel`'s links from region `from` to region `to`.
    pub(crate) fn channel_region_pair(
        &self,
        channel: ChannelId,
        from: RegionId,
        to: RegionId,
    ) -> RegionPairTotals {
        self.channel_regions
            .get(&(channel, from, to))
            .copied()
            .unwrap_or_default()
    }

    pub(crate) fn region_pairs(
        &self,
    ) -> impl Iterator<Item = ((RegionId, RegionId), RegionPairTotals)> + '_ {
        self.region_pair_totals().into_iter()
    }

    /// Every pair's totals over all channels.
    fn region_pair_totals(&self) -> BTreeMap<(RegionId, RegionId), RegionPairTotals> {
        let mut all: BTreeMap<(RegionId, RegionId), RegionPairTotals> = BTreeMap::new();
        for ((_, from, to), t) in &self.channel_regions {
            let a = all.entry((*from, *to)).or_default();
            a.links += t.links;
            a.rate_milli_blocks_per_s += t.rate_milli_blocks_per_s;
        }
        all
    }
}
