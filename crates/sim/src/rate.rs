//! Paths and the "rate" data plane (X5). Each sample, every viewer's path to the
//! origin is read from the machines' own state: its parents in state Connected
//! (or Disconnecting: an old parent still sends until the LOGOFF), their parents,
//! … up to the origin, every node alive, every link up, and each parent listing
//! the child in its children table. With peers the stream is k substreams and a
//! link carries what its feed says (all, some substreams, none for a lazy link),
//! so paths are followed per substream (D4). Along a path, a node whose children
//! take `c` streams' worth (the sum of their feeds' shares) at rate `r` with
//! uplink `u` gives each `min(1, u / (c·r))` of what it sends; a node receives per
//! substream the best of its parents (the min along each path); a viewer's share
//! is the mean over substreams, capped by its own downlink (`min(1, d/r)`).
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
use tiercast_proto::{ChannelId, Feed, NodeId};

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
    /// Rate mode: the same for viewers the overlay ejected.
    pub ejected_expected: f64,
    pub ejected_delivered: f64,
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
    /// Substreams followed (1 without peers).
    k: usize,
}

/// Per-sample memo of nodes' received share and path lag per substream (index =
/// node id · k + substream), and of nodes' load in streams.
#[derive(Default)]
pub(crate) struct Memo {
    stamp: u32,
    entries: Vec<(u32, f32, u64)>,
    loads: Vec<(u32, f32)>,
}

/// Whether a link with this feed carries substream `j` of `k` (a coded link's
/// originals; its recovery shards are not followed).
fn carries(feed: &Feed, j: usize, k: usize) -> bool {
    let (kk, mask) = match feed {
        Feed::All => return true,
        Feed::Lazy => return false,
        Feed::Substreams(s) => (s.k, s.mask),
        Feed::Coded(c) => (c.k, c.mask),
    };
    let kk = usize::from(kk.max(1));
    let idx = if kk == k { j } else { j % kk };
    mask & (1u64 << idx) != 0
}

impl<'a> Ctx<'a> {
    fn node(&self, id: u32) -> Option<&'a Node> {
        self.slots.get(id as usize)?.node.as_deref()
    }

    fn give(&self, memo: &mut Memo, p: u32, pn: &Node) -> f64 {
        let load = match memo.loads.get(p as usize) {
            Some((st, l)) if *st == memo.stamp => f64::from(*l),
            _ => {
                let l = pn.channel(self.ch).map_or(0.0, |c| {
                    c.children.viewers.len() as f64
                        + c.children
                            .nodes
                            .values()
                            .map(|l| l.feed.share())
                            .sum::<f64>()
                });
                if let Some(e) = memo.loads.get_mut(p as usize) {
                    *e = (memo.stamp, l as f32);
                }
                l
            }
        };
        if load == 0.0 {
            return 1.0;
        }
        (self.net.uplink_kbps(p) as f64 / (load * self.rate_kbps)).min(1.0)
    }

    /// A viewer's (or peer's) share of the whole stream: the mean over substreams;
    /// the lag of the slowest.
    fn viewer_share(
        &self,
        memo: &mut Memo,
        walk: &mut Walk,
        n: u32,
        node: &Node,
        memoize: bool,
    ) -> (f64, u64) {
        let (mut sum, mut lag) = (0.0, 0u64);
        for j in 0..self.k {
            let (s, l) = if memoize {
                self.served(memo, walk, n, j)
            } else {
                self.best_parent(memo, walk, n, node, j)
            };
            sum += s;
            if s > 0.0 {
                lag = lag.max(l);
            }
        }
        ((sum / self.k as f64).min(self.downlink_factor(n)), lag)
    }

    fn downlink_factor(&self, n: u32) -> f64 {
        (self.net.downlink_kbps(n) as f64 / self.rate_kbps).min(1.0)
    }

    /// Best (share, lag µs) of substream `j` over `n`'s connected parents that
    /// carry it; counts link flows.
    fn best_parent(
        &self,
        memo: &mut Memo,
        walk: &mut Walk,
        n: u32,
        node: &Node,
        j: usize,
    ) -> (f64, u64) {
        let Some(ch) = node.channel(self.ch) else {
            return (0.0, 0);
        };
        let mut best = (0.0f64, 0u64);
        for (pid, link) in ch.parents.iter() {
            let sending = matches!(
                link.state,
                ParentState::Connected | ParentState::Disconnecting
            );
            if !sending || !carries(&link.feed, j, self.k) {
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
            let (sp, lag_p) = self.served(memo, walk, p, j);
            let flow = sp.min(self.give(memo, p, pn));
            if self.count_flows && flow > 0.0 {
                let bytes = flow * self.stream_bytes / self.k as f64;
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

    /// Share of substream `j` a node receives, memoized per sample.
    fn served(&self, memo: &mut Memo, walk: &mut Walk, n: u32, j: usize) -> (f64, u64) {
        if n == self.origin {
            return if self.node(n).is_some() {
                (1.0, 0)
            } else {
                (0.0, 0)
            };
        }
        let at = n as usize * self.k + j;
        let Some(e) = memo.entries.get(at).copied() else {
            return (0.0, 0);
        };
        if e.0 == memo.stamp {
            return (f64::from(e.1), e.2);
        }
        if e.0 == memo.stamp | 1 << 31 {
            return (0.0, 0); // a cycle in the parent links: no path through it
        }
        memo.entries[at].0 = memo.stamp | 1 << 31;
        let r = match self.node(n) {
            Some(node) => self.best_parent(memo, walk, n, node, j),
            None => (0.0, 0),
        };
        memo.entries[at] = (memo.stamp, r.0 as f32, r.1);
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
        let peers = self.sc.peers_mode();
        let k = if peers {
            usize::from(self.sc.peers.substreams.max(1))
        } else {
            1
        };
        // With peers every node may feed others: all are memoized.
        let memoized = if peers {
            self.slots.len()
        } else {
            self.first_viewer as usize
        };
        memo.entries.resize(memoized * k, (0, 0.0, 0));
        memo.loads.resize(self.slots.len(), (0, 0.0));
        let ctx = Ctx {
            slots: &self.slots,
            net: &self.net,
            ch,
            origin: self.origin,
            rate_kbps: self.sc.stream.rate_kbps as f64,
            block_bytes: self.sc.stream.block_bytes as u64,
            stream_bytes: self.sc.stream.rate_kbps as f64 * 1000.0 / 8.0 * dt_s,
            count_flows: rate_mode,
            k,
        };
        for n in 1..self.first_viewer {
            for j in 0..k {
                ctx.served(&mut memo, &mut walk, n, j);
            }
        }
        let now = self.now;
        let grace = self.sc.startup_grace_ms * 1000;
        let fault_at = self.faults.first_relay_fault_at;
        let mut skip_one = self.plants.contains(&crate::world::Plant::SkipStarving);
        let mut group_acc = [(0.0f64, 0.0f64); 3];
        let live_blocks = !rate_mode && self.stream_live();
        let slot = now / 1_000_000;
        let steady = now >= self.sc.steady_from_us();
        // Peers served this sample: their nodes see their stream advance (D7).
        let mut fed_peers: Vec<u32> = Vec::new();
        for (vi, v) in self.viewers.iter_mut().enumerate() {
            if !v.watching() {
                continue;
            }
            let id = self.first_viewer + vi as u32;
            let Some(node) = ctx.node(id) else { continue };
            walk.watching += 1;
            let (share, lag) = ctx.viewer_share(&mut memo, &mut walk, id, node, peers);
            if skip_one {
                // Planted bug: this viewer is neither served, joining nor starving.
                skip_one = false;
            } else {
                match crate::starving::classify(v, now, grace, live_blocks, share) {
                    crate::starving::Fed::Served => walk.served += 1,
                    crate::starving::Fed::Joining => walk.joining += 1,
                    crate::starving::Fed::Starving => walk.starving += 1,
                }
            }
            if !rate_mode {
                continue;
            }
            if share > 0.0 {
                if peers {
                    fed_peers.push(id);
                }
                if v.first_at == NONE {
                    v.first_at = now;
                    self.metrics.startup_ms.add((now - v.watch_at) / 1000);
                    self.ledger.startup[self.net.region_of(id) as usize]
                        .add((now - v.watch_at) / 1000);
                }
                self.metrics.lag_ms.add(lag / 1000);
            }
            let counts = v.first_at != NONE || now >= v.watch_at + grace;
            if counts {
                // A viewer that arrived within this sample counts from its arrival.
                let dt_s = dt_s.min(now.saturating_sub(v.watch_at) as f64 / 1e6);
                walk.expected += dt_s;
                walk.delivered += share * dt_s;
                if steady {
                    v.steady_expected += dt_s as f32;
                    v.steady_delivered += (share * dt_s) as f32;
                }
                let r = self.net.region_of(id);
                self.ledger.expect(r, slot, dt_s);
                self.ledger.got(r, slot, share * dt_s);
                if v.ejected {
                    walk.ejected_expected += dt_s;
                    walk.ejected_delivered += share * dt_s;
                }
                if v.group != 0 && fault_at.is_some_and(|f| now > f) {
                    let g = (v.group - 1) as usize;
                    group_acc[g].0 += dt_s;
                    group_acc[g].1 += share * dt_s;
                }
            }
        }
        self.memo = memo;
        let t = tiercast_proto::Timestamp(now);
        for id in fed_peers {
            if let Some(n) = self.slots[id as usize].node.as_mut() {
                n.rate_fed(ch, t);
            }
        }
        if rate_mode {
            self.metrics.expected += walk.expected;
            self.metrics.delivered += walk.delivered;
            self.metrics.ejected_expected += walk.ejected_expected;
            self.metrics.ejected_delivered += walk.ejected_delivered;
            for (g, (e, d)) in group_acc.iter().enumerate() {
                self.metrics.group_expected[g] += e;
                self.metrics.group_delivered[g] += d;
            }
            let stream_bytes = self.sc.stream.rate_kbps as f64 * 1000.0 / 8.0;
            self.metrics.delivered_bytes += (walk.delivered * stream_bytes) as u64;
            self.metrics.delivered_payload_bytes += (walk.delivered * stream_bytes) as u64;
            self.metrics.media_bytes += walk.media_bytes as u64;
            self.metrics.media_cross_region_bytes += walk.cross_bytes as u64;
            self.metrics.origin_upload_bytes += walk.origin_bytes as u64;
        }
        walk
    }
}
