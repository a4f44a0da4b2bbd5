//! A node's last heartbeat as the registry keeps it (D8, C1; X7's memory per
//! node): only what the coordinator reads of it afterwards, in fixed-size
//! fields, not the decoded `Heartbeat` whole (≈ 0.65 kB for a peer).
//!
//! Its readers: the history's reading of the next heartbeat (C4, D1: the node's
//! clock, each channel's highest seq, each link's last seq, its local viewers),
//! a rejoining peer's fed parents (D7: each parent link's feed and last block
//! time), a relay's adoption (D7: its parents), a relay's channel load, idle
//! relays and a channel's retirement (children, local viewers, channels named).
//! Nothing is packed or varint-coded: every field is read in place, so keeping
//! it costs one copy of the few numbers per heartbeat and no decoding.
//!
//! A channel's children are kept sorted by peer (first reported first among
//! equal peers), so reading the next heartbeat finds each child by a binary
//! search, whatever the count; parents keep the order they were reported in.

use tiercast_proto::{
    ChannelId, ChannelReport, CodedSet, Feed, Heartbeat, LinkReport, NodeId, SubstreamSet,
};

/// One parent link: its feed, its last seq and when its last block came, in
/// 32 bytes (a `Feed` field would take 16 with its padding; its parts take 11).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParentMark {
    seq: u64,
    block_time_us: u64,
    /// The feed's substream mask (`Substreams`, `Coded`; 0 otherwise).
    mask: u64,
    pub peer: NodeId,
    /// The feed's kind: 0 `All`, 1 `Substreams`, 2 `Lazy`, 3 `Coded`.
    kind: u8,
    k: u8,
    n: u8,
    /// Bit 0: `seq` holds a value; bit 1: `block_time_us` does.
    has: u8,
}

impl ParentMark {
    fn of(l: &LinkReport) -> Self {
        let (kind, k, n, mask) = match l.feed {
            Feed::All => (0, 0, 0, 0),
            Feed::Substreams(s) => (1, s.k, 0, s.mask),
            Feed::Lazy => (2, 0, 0, 0),
            Feed::Coded(c) => (3, c.k, c.n, c.mask),
        };
        ParentMark {
            seq: l.last_seq.unwrap_or(0),
            block_time_us: l.last_block_time_us.unwrap_or(0),
            mask,
            peer: l.peer,
            kind,
            k,
            n,
            has: u8::from(l.last_seq.is_some()) | (u8::from(l.last_block_time_us.is_some()) << 1),
        }
    }

    /// The link's feed, as reported.
    pub fn feed(&self) -> Feed {
        let (k, n, mask) = (self.k, self.n, self.mask);
        match self.kind {
            1 => Feed::Substreams(SubstreamSet { k, mask }),
            2 => Feed::Lazy,
            3 => Feed::Coded(CodedSet { k, n, mask }),
            _ => Feed::All,
        }
    }

    pub fn last_seq(&self) -> Option<u64> {
        (self.has & 1 != 0).then_some(self.seq)
    }

    pub fn last_block_time_us(&self) -> Option<u64> {
        (self.has & 2 != 0).then_some(self.block_time_us)
    }
}

/// One child link: its last seq.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChildMark {
    seq: u64,
    pub peer: NodeId,
    has_seq: bool,
}

impl ChildMark {
    fn of(l: &LinkReport) -> Self {
        ChildMark {
            seq: l.last_seq.unwrap_or(0),
            peer: l.peer,
            has_seq: l.last_seq.is_some(),
        }
    }

    pub fn last_seq(&self) -> Option<u64> {
        self.has_seq.then_some(self.seq)
    }
}

/// One channel of the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelMarks {
    pub channel: ChannelId,
    pub local_viewers: u32,
    pub last_seq: Option<u64>,
    pub parents: Box<[ParentMark]>,
    /// Sorted by peer; equal peers in the order reported.
    children: Box<[ChildMark]>,
}

impl ChannelMarks {
    fn of(c: &ChannelReport) -> Self {
        let mut children: Vec<ChildMark> = c.children.iter().map(ChildMark::of).collect();
        // Stable: among equal peers the first reported stays first.
        if !children.is_sorted_by_key(|m| m.peer) {
            children.sort_by_key(|m| m.peer);
        }
        ChannelMarks {
            channel: c.channel,
            local_viewers: c.local_viewers,
            last_seq: c.last_seq,
            parents: c.parents.iter().map(ParentMark::of).collect(),
            children: children.into_boxed_slice(),
        }
    }

    /// Becomes `ChannelMarks::of(c)` in place; `c` has as many parents and
    /// children as `self`.
    fn refill(&mut self, c: &ChannelReport) {
        self.channel = c.channel;
        self.local_viewers = c.local_viewers;
        self.last_seq = c.last_seq;
        for (m, l) in self.parents.iter_mut().zip(&c.parents) {
            *m = ParentMark::of(l);
        }
        for (m, l) in self.children.iter_mut().zip(&c.children) {
            *m = ChildMark::of(l);
        }
        if !self.children.is_sorted_by_key(|m| m.peer) {
            self.children.sort_by_key(|m| m.peer);
        }
    }

    /// The children reported, sorted by peer (not in the report's order).
    pub fn children(&self) -> &[ChildMark] {
        &self.children
    }

    /// The first reported link to child `peer`: `Some(its last seq)`.
    pub fn child(&self, peer: NodeId) -> Option<Option<u64>> {
        let i = self.children.partition_point(|m| m.peer < peer);
        self.children
            .get(i)
            .filter(|m| m.peer == peer)
            .map(ChildMark::last_seq)
    }
}

/// What the registry keeps of a node's last heartbeat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastReport {
    /// The node's own clock when it was made (µs).
    pub local_time_us: u64,
    pub channels: Box<[ChannelMarks]>,
}

impl LastReport {
    pub fn of(hb: &Heartbeat) -> Self {
        LastReport {
            local_time_us: hb.local_time_us,
            channels: hb.channels.iter().map(ChannelMarks::of).collect(),
        }
    }

    /// Becomes `LastReport::of(hb)`, in the room it has when `hb` has as many
    /// channels and links per channel as the report before (nearly always):
    /// no allocation then.
    pub fn update(&mut self, hb: &Heartbeat) {
        let same_shape = self.channels.len() == hb.channels.len()
            && self.channels.iter().zip(&hb.channels).all(|(m, c)| {
                m.parents.len() == c.parents.len() && m.children.len() == c.children.len()
            });
        if !same_shape {
            *self = LastReport::of(hb);
            return;
        }
        self.local_time_us = hb.local_time_us;
        for (m, c) in self.channels.iter_mut().zip(&hb.channels) {
            m.refill(c);
        }
    }

    /// The first report of `channel`, as `Iterator::find` over the heartbeat's.
    pub fn channel(&self, channel: ChannelId) -> Option<&ChannelMarks> {
        self.channels.iter().find(|c| c.channel == channel)
    }
}

impl From<&Heartbeat> for LastReport {
    fn from(hb: &Heartbeat) -> Self {
        LastReport::of(hb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parent_mark_takes_32_bytes() {
        assert_eq!(std::mem::size_of::<ParentMark>(), 32);
        assert_eq!(std::mem::size_of::<ChildMark>(), 16);
    }

    fn link(peer: u32, seq: Option<u64>, time: Option<u64>, feed: Feed) -> LinkReport {
        LinkReport {
            peer: NodeId(peer),
            last_seq: seq,
            last_block_time_us: time,
            feed,
        }
    }

    /// Pseudo-random reports: every field the readers use reads back as the
    /// heartbeat had it, children found as `Iterator::find` would find them.
    #[test]
    fn reads_back_what_the_heartbeat_said() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut prev: Option<LastReport> = None;
        for _ in 0..300 {
            let mut hb = Heartbeat {
                local_time_us: next(),
                ..Heartbeat::default()
            };
            for c in 0..(next() % 4) {
                let links = |n: u64, next: &mut dyn FnMut() -> u64| -> Vec<LinkReport> {
                    (0..n)
                        .map(|_| {
                            let r = next();
                            let feed = match r % 4 {
                                0 => Feed::All,
                                1 => Feed::Lazy,
                                2 => Feed::Substreams(SubstreamSet { k: 4, mask: r >> 8 }),
                                _ => Feed::Coded(CodedSet {
                                    k: 4,
                                    n: 2,
                                    mask: r >> 9,
                                }),
                            };
                            link(
                                (r >> 20) as u32 % 40,
                                (r & 16 != 0).then_some(r >> 3),
                                (r & 32 != 0).then_some(r >> 5),
                                feed,
                            )
                        })
                        .collect()
                };
                let np = next() % 6;
                let nc = next() % 40;
                let parents = links(np, &mut next);
                let children = links(nc, &mut next);
                hb.channels.push(ChannelReport {
                    channel: ChannelId(c as u32 % 3),
                    parents,
                    children,
                    local_viewers: next() as u32,
                    last_seq: (next() % 2 == 0).then_some(next()),
                    ..ChannelReport::default()
                });
            }
            let r = LastReport::of(&hb);
            // Updated in place from the report before (its own shape or not).
            let mut u = prev.clone().unwrap_or_else(|| r.clone());
            u.update(&hb);
            assert_eq!(u, r);
            // Same shape, other peers and seqs: refilled in place.
            let mut same = hb.clone();
            for c in &mut same.channels {
                for l in c.parents.iter_mut().chain(c.children.iter_mut()) {
                    let r = next();
                    l.peer = NodeId((r >> 20) as u32 % 40);
                    l.last_seq = (r & 1 != 0).then_some(r >> 2);
                }
            }
            let mut u = r.clone();
            u.update(&same);
            assert_eq!(u, LastReport::of(&same));
            prev = Some(r.clone());
            assert_eq!(r.local_time_us, hb.local_time_us);
            assert_eq!(r.channels.len(), hb.channels.len());
            for ch in 0..4 {
                let a = hb.channels.iter().find(|c| c.channel == ChannelId(ch));
                let b = r.channel(ChannelId(ch));
                assert_eq!(a.is_some(), b.is_some());
                let (Some(a), Some(b)) = (a, b) else { continue };
                assert_eq!(a.local_viewers, b.local_viewers);
                assert_eq!(a.last_seq, b.last_seq);
                assert_eq!(a.children.len(), b.children().len());
                let got: Vec<_> = b
                    .parents
                    .iter()
                    .map(|p| (p.peer, p.feed(), p.last_seq(), p.last_block_time_us()))
                    .collect();
                let want: Vec<_> = a
                    .parents
                    .iter()
                    .map(|l| (l.peer, l.feed, l.last_seq, l.last_block_time_us))
                    .collect();
                assert_eq!(got, want);
                let mut peers_a: Vec<NodeId> = a.children.iter().map(|l| l.peer).collect();
                let peers_b: Vec<NodeId> = b.children().iter().map(|m| m.peer).collect();
                peers_a.sort();
                assert_eq!(peers_a, peers_b);
                for p in 0..42 {
                    let want = a
                        .children
                        .iter()
                        .find(|l| l.peer == NodeId(p))
                        .map(|l| l.last_seq);
                    assert_eq!(b.child(NodeId(p)), want, "child {p}");
                }
            }
        }
    }
}
