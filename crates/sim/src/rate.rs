//! Paths and the "rate" data plane (X5). Each sample, every viewer's path to the
//! origin is read from the machines' own state: its parents in state Connected,
//! their parents, … up to the origin, every node alive, every link up, and each
//! parent listing the child in its children table. Along a path, a node with `c`
//! children on the channel (rate `r`) and uplink `u` gives each child
//! `min(1, u / (c·r))` of the stream; a node receives the best of its parents (the
//! min along each path), capped by its own downlink (`min(1, d/r)`).
//!
//! In rate mode this *is* the data plane (continuity = delivered / expected, bytes
//! per link from the shares). In blocks mode the same walk only classifies viewers
//! as served or starving (an invariant: every viewer is one or the other).

use crate::scenario::DataPlane;
use crate::viewer::NONE;
use crate::world::{Simulation, Slot};
use tiercast_netmodel::NetModel;
use tiercast_node::parents::ParentState;
use tiercast_node::Node;
use tiercast_proto::{ChannelId, NodeId};

/// What one sample's walk found.
#[derive(Default, Debug)]
pub(crate) struct Walk {
    pub watching: u64,
    pub served: u64,
    /// No path yet, but still within the startup grace of its first watch.
    pub joining: u64,
    pub starving: u64,
    /// Rate mode: stream-seconds delivered and expected in this sample.
    pub delivered: f64,
    pub expected: f64,
    /// Rate mode: bytes carried by all parent→child links, across regions, by the origin.
    pub media_bytes: f64,
    pub cross_bytes: f64,
    pub origin_bytes: f64,
}

struct Ctx<'a> {
    slots: &'a [Slot],
    net: &'a NetModel,
    ch: ChannelId,
    origin: u32,
    rate_kbps: f64,
    block_bytes: u64,
    /// Bytes of the whole stream over this sample.
    stream_bytes: f64,
    count_flows: bool,
}

/// Per-sample memo of relays' received share and path lag (index = node id).
#[derive(Default)]
pub(crate) struct Memo {
    stamp: u32,
    entries: Vec<(u32, f64, u64)>,
}

impl<'a> Ctx<'a> {
    fn node(&self, id: u32) -> Option<&'a Node> {
        self.slots.get(id as usize)?.node.as_deref()
    }

    fn give(&self, p: u32, pn: &Node) -> f64 {
        let load = pn.channel(self.ch).map_or(0, |c| c.load()) as f64;
        if load == 0.0 {
            return 1.0;
        }
        (self.net.uplink_kbps(p) as f64 / (load * self.rate_kbps)).min(1.0)
    }

    fn downlink_factor(&self, n: u32) -> f64 {
        (self.net.downlink_kbps(n) as f64 / self.rate_kbps).min(1.0)
    }

    /// Best (share, lag µs) over `n`'s connected parents; counts link flows.
    fn best_parent(&self, memo: &mut Memo, walk: &mut Walk, n: u32, node: &Node) -> (f64, u64) {
        let Some(ch) = node.channel(self.ch) else {
            return (0.0, 0);
        };
        let mut best = (0.0f64, 0u64);
        for (pid, link) in ch.parents.iter() {
            if link.state != ParentState::Connected {
                continue;
            }
            let p = pid.0;
            let Some(pn) = self.node(p) else { continue };
            if self.net.link_up(p, n).is_err()
                || !pn
                    .channel(self.ch)
                    .is_some_and(|c| c.children.nodes.contains_key(&NodeId(n)))
            {
                continue;
            }
            let (sp, lag_p) = self.served(memo, walk, p);
            let flow = sp.min(self.give(p, pn));
            if self.count_flows && flow > 0.0 {
                let bytes = flow * self.stream_bytes;
                walk.media_bytes += bytes;
                if self.net.region_of(p) != self.net.region_of(n) {
                    walk.cross_bytes += bytes;
                }
                if p == self.origin {
                    walk.origin_bytes += bytes;
                }
            }
            let up = self.net.uplink_kbps(p);
            let lag = lag_p
                + self
                    .net
                    .regions()
                    .latency_us(self.net.region_of(p), self.net.region_of(n))
                + tiercast_netmodel::model::serialization_us(self.block_bytes, up);
            if flow > best.0 || (flow == best.0 && flow > 0.0 && lag < best.1) {
                best = (flow, lag);
            }
        }
        (best.0.min(self.downlink_factor(n)), best.1)
    }

    /// Share of the stream a relay (or the origin) receives, memoized per sample.
    fn served(&self, memo: &mut Memo, walk: &mut Walk, n: u32) -> (f64, u64) {
        if n == self.origin {
            return if self.node(n).is_some() {
                (1.0, 0)
            } else {
                (0.0, 0)
            };
        }
        let Some(e) = memo.entries.get(n as usize).copied() else {
            return (0.0, 0);
        };
        if e.0 == memo.stamp {
            return (e.1, e.2);
        }
        if e.0 == memo.stamp | 1 << 31 {
            return (0.0, 0); // a cycle in the parent links: no path through it
        }
        memo.entries[n as usize].0 = memo.stamp | 1 << 31;
        let r = match self.node(n) {
            Some(node) => self.best_parent(memo, walk, n, node),
            None => (0.0, 0),
        };
        memo.entries[n as usize] = (memo.stamp, r.0, r.1);
        r
    }
}

impl Simulation {
    /// Walks every viewer's path; in rate mode also accrues continuity and bytes.
    pub(crate) fn walk_paths(&mut self, dt_s: f64) -> Walk {
        let mut walk = Walk::default();
        let Some(ch) = self.channel else {
            walk.watching = self.metrics.watching;
            walk.starving = walk.watching;
            return walk;
        };
        let rate_mode = self.sc.data_plane == DataPlane::Rate;
        let mut memo = std::mem::take(&mut self.memo);
        memo.stamp = (memo.stamp + 1) & !(1 << 31);
        memo.entries.resize(self.first_viewer as usize, (0, 0.0, 0));
        let ctx = Ctx {
            slots: &self.slots,
            net: &self.net,
            ch,
            origin: self.origin,
            rate_kbps: self.sc.stream.rate_kbps as f64,
            block_bytes: self.sc.stream.block_bytes as u64,
            stream_bytes: self.sc.stream.rate_kbps as f64 * 1000.0 / 8.0 * dt_s,
            count_flows: rate_mode,
        };
        for n in 1..self.first_viewer {
            ctx.served(&mut memo, &mut walk, n);
        }
        let now = self.now;
        let grace = self.sc.startup_grace_ms * 1000;
        let fault_at = self.faults.first_relay_fault_at;
        let mut skip_one = self.plants.contains(&crate::world::Plant::SkipStarving);
        let mut group_acc = [(0.0f64, 0.0f64); 3];
        for (vi, v) in self.viewers.iter_mut().enumerate() {
            if !v.watching() {
                continue;
            }
            let id = self.first_viewer + vi as u32;
            let Some(node) = ctx.node(id) else { continue };
            walk.watching += 1;
            let (share, lag) = ctx.best_parent(&mut memo, &mut walk, id, node);
            if skip_one {
                // Planted bug: this viewer is neither served, joining nor starving.
                skip_one = false;
            } else if share > 0.0 {
                walk.served += 1;
            } else if v.first_at == NONE && now < v.watch_at + grace {
                walk.joining += 1;
            } else {
                walk.starving += 1;
            }
            if !rate_mode {
                continue;
            }
            if share > 0.0 {
                if v.first_at == NONE {
                    v.first_at = now;
                    self.metrics.startup_ms.add((now - v.watch_at) / 1000);
                }
                self.metrics.lag_ms.add(lag / 1000);
            }
            let counts = v.first_at != NONE || now >= v.watch_at + grace;
            if counts {
                walk.expected += dt_s;
                walk.delivered += share * dt_s;
                if v.group != 0 && fault_at.is_some_and(|f| now > f) {
                    let g = (v.group - 1) as usize;
                    group_acc[g].0 += dt_s;
                    group_acc[g].1 += share * dt_s;
                }
            }
        }
        self.memo = memo;
        if rate_mode {
            self.metrics.expected += walk.expected;
            self.metrics.delivered += walk.delivered;
            for (g, (e, d)) in group_acc.iter().enumerate() {
                self.metrics.group_expected[g] += e;
                self.metrics.group_delivered[g] += d;
            }
            let stream_bytes = self.sc.stream.rate_kbps as f64 * 1000.0 / 8.0;
            self.metrics.delivered_bytes += (walk.delivered * stream_bytes) as u64;
            self.metrics.media_bytes += walk.media_bytes as u64;
            self.metrics.media_cross_region_bytes += walk.cross_bytes as u64;
            self.metrics.origin_upload_bytes += walk.origin_bytes as u64;
        }
        walk
    }
}
