//! A fresh peer's start across its substream parents (D4, V9): where its run of
//! blocks begins, decided once for every substream together.
//!
//! A peer fed by several parents, each pushing some substreams (`seq mod k`),
//! gets each substream by a path of its own. In a flash crowd those paths differ
//! by seconds: one parent starts it at a keyframe two seconds old (its tree is
//! behind, or it could afford the keyframe backlog), the others at their live
//! edge. Stored as they came, the peer's first block is the old one, and every
//! seq of the other substreams between it and their live edge is one no parent
//! will ever push — a player starting there stalls at once (the tight
//! population's joiners missed 25–40 blocks each: Σu 1.20 seed 42).
//!
//! So a fresh peer holds its first blocks back from its player until every
//! substream its push parents carry has delivered one (or [`START_GATE_MS`]
//! after the first, or [`START_GATE_BLOCKS`] held), then starts playing at the
//! first seq from which every substream is covered — `max_j(first_j) − k + 1` —
//! and never plays what is older: a backlog is all or nothing across the
//! parents. The blocks are stored and forwarded to its children as they come
//! (a gate that held them back from children too made every fresh child wait
//! out its fresh parent's gate: 809 of 963 gates timed out, Σu 1.20 seed 42
//! fell 0.9948 → 0.9917).

use crate::node::Node;
use std::collections::BTreeMap;
use tiercast_proto::{Block, ChannelId, Feed, Timestamp};

/// Longest a fresh peer holds its first blocks waiting for a silent substream
/// (its parent may be slow to accept, or dead: the others must not wait for it).
pub const START_GATE_MS: u64 = 1000;
/// Most blocks held (about 4 s of a 2 Mbit/s stream in 16 KiB blocks).
pub const START_GATE_BLOCKS: usize = 256;

/// The first blocks of a fresh peer, held until its start is known.
#[derive(Debug, Default)]
pub struct StartGate {
    /// When the first block was held.
    first_at: Option<Timestamp>,
    held: BTreeMap<u64, Block>,
}

/// What a gate lets through when it opens.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Opened {
    /// The seq the peer's run starts at.
    pub start: Option<u64>,
    /// Blocks to store, in seq order.
    pub blocks: Vec<Block>,
    /// Blocks older than the start, dropped.
    pub dropped: u64,
}

impl StartGate {
    /// Whether a peer with these parent feeds needs a gate: two or more
    /// parents push it substreams (one parent's start is one decision already).
    pub fn needed<'a>(feeds: impl Iterator<Item = &'a Feed>) -> bool {
        feeds.filter(|f| matches!(f, Feed::Substreams(_))).count() >= 2
    }

    /// Holds a block (a duplicate by seq is dropped).
    pub fn hold(&mut self, now: Timestamp, block: Block) {
        self.first_at.get_or_insert(now);
        self.held.entry(block.seq).or_insert(block);
    }

    /// When the gate opens on its own, whatever has come.
    pub fn deadline(&self) -> Option<Timestamp> {
        self.first_at.map(|t| t.plus_millis(START_GATE_MS))
    }

    /// Whether the gate may open now: every substream the `feeds` push has
    /// delivered a block, or the deadline passed, or the hold is full.
    pub fn ready<'a>(&self, now: Timestamp, feeds: impl Iterator<Item = &'a Feed>) -> bool {
        if self.held.is_empty() {
            return false;
        }
        if self.held.len() >= START_GATE_BLOCKS || self.deadline().is_some_and(|d| now >= d) {
            return true;
        }
        feeds
            .filter_map(|f| match f {
                Feed::Substreams(s) => Some(s),
                _ => None,
            })
            .all(|s| {
                let k = u64::from(s.k.max(1));
                s.indices()
                    .all(|j| self.held.keys().any(|seq| seq % k == u64::from(j)))
            })
    }

    /// Opens the gate: the start is the first seq from which every substream
    /// heard is covered (each substream's blocks come in order from its first),
    /// with `k` substreams in all.
    pub fn open(self, k: u8) -> Opened {
        let k = u64::from(k.max(1));
        let mut first: BTreeMap<u64, u64> = BTreeMap::new();
        for seq in self.held.keys() {
            first.entry(seq % k).or_insert(*seq);
        }
        let Some(start) = first.values().max().map(|m| m.saturating_sub(k - 1)) else {
            return Opened::default();
        };
        let mut dropped = 0;
        let mut blocks = Vec::with_capacity(self.held.len());
        for (seq, b) in self.held {
            if seq >= start {
                blocks.push(b);
            } else {
                dropped += 1;
            }
        }
        Opened {
            start: Some(start),
            blocks,
            dropped,
        }
    }
}

impl Node {
    /// A block was stored: it is played (`BlockStored`, what the simulator
    /// counts and local viewers are served from) unless it is older than this
    /// node's start, or held while the start is not known yet (the gate opens
    /// when this block completes it). Forwarding to children never waits here.
    pub(crate) fn play(&mut self, now: Timestamp, block: Block) {
        let channel = block.channel;
        let Some(ch) = self.channels.get_mut(&channel) else {
            return;
        };
        if let Some(g) = ch.start_gate.as_mut() {
            g.hold(now, block);
            self.open_start_gate(now, channel);
        } else if ch.play_from.is_some_and(|s| block.seq < s) {
            self.stats.start_blocks_dropped += 1;
        } else {
            self.emit_stored(now, block);
        }
    }

    /// Opens a channel's gate if it is ready: plays the blocks from the start on.
    fn open_start_gate(&mut self, now: Timestamp, channel: ChannelId) {
        let Some(ch) = self.channels.get_mut(&channel) else {
            return;
        };
        let feeds = || ch.parents.iter().map(|(_, l)| &l.feed);
        if !ch
            .start_gate
            .as_ref()
            .is_some_and(|g| g.ready(now, feeds()))
        {
            return;
        }
        let k = feeds()
            .find_map(|f| match f {
                Feed::Substreams(s) => Some(s.k),
                _ => None,
            })
            .unwrap_or(1);
        let Some(gate) = ch.start_gate.take() else {
            return;
        };
        let opened = gate.open(k);
        // From the first block played on (a player does not go back for the
        // start block coming after it).
        ch.play_from = opened.blocks.first().map(|b| b.seq).or(opened.start);
        self.stats.start_blocks_dropped += opened.dropped;
        for block in opened.blocks {
            self.emit_stored(now, block);
        }
    }

    /// The gates whose deadline passed open with what they hold.
    pub(crate) fn open_due_start_gates(&mut self, now: Timestamp) {
        let due: Vec<ChannelId> = self
            .channels
            .iter()
            .filter(|(_, c)| {
                c.start_gate
                    .as_ref()
                    .and_then(StartGate::deadline)
                    .is_some_and(|d| now >= d)
            })
            .map(|(id, _)| *id)
            .collect();
        for c in due {
            self.open_start_gate(now, c);
        }
    }

    /// The earliest gate deadline (a timer of [`Node::poll_timeout`]).
    pub(crate) fn start_gate_deadline(&self) -> Option<Timestamp> {
        self.channels
            .values()
            .filter_map(|c| c.start_gate.as_ref().and_then(StartGate::deadline))
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use tiercast_proto::{ChannelId, SubstreamSet};

    fn b(seq: u64) -> Block {
        Block::new(
            ChannelId(1),
            seq,
            Timestamp(seq),
            seq.is_multiple_of(30),
            Bytes::from_static(b"x"),
        )
    }

    fn feeds() -> Vec<Feed> {
        (0..4u8)
            .map(|j| Feed::Substreams(SubstreamSet::single(4, j).unwrap()))
            .collect()
    }

    #[test]
    fn one_old_substream_does_not_start_the_run_before_the_others() {
        // Substream 2's parent sends a keyframe backlog from 30; the others
        // start at their live edge (60, 61, 63).
        let mut g = StartGate::default();
        let t = Timestamp::from_millis(100);
        for s in [30, 34, 38, 60, 61, 42] {
            g.hold(t, b(s));
            assert!(!g.ready(t, feeds().iter()), "substream 3 not heard yet");
        }
        g.hold(t, b(63));
        assert!(g.ready(t, feeds().iter()));
        let o = g.open(4);
        assert_eq!(o.start, Some(60));
        let seqs: Vec<u64> = o.blocks.iter().map(|b| b.seq).collect();
        assert_eq!(seqs, vec![60, 61, 63]);
        assert_eq!(o.dropped, 4);
    }

    #[test]
    fn a_whole_backlog_is_kept_and_a_silent_substream_waits_no_longer_than_the_deadline() {
        let mut g = StartGate::default();
        let t0 = Timestamp::from_millis(100);
        for s in 30..42 {
            if s % 4 != 1 {
                g.hold(t0, b(s));
            }
        }
        assert!(!g.ready(t0, feeds().iter()));
        let late = t0.plus_millis(START_GATE_MS);
        assert_eq!(g.deadline(), Some(late));
        assert!(
            g.ready(late, feeds().iter()),
            "substream 1's parent is silent"
        );
        let o = g.open(4);
        // Substreams 0, 2, 3 start at 32, 30, 31: every seq from 29 on is in
        // its substream's run (29's substream, 1, is the silent one).
        assert_eq!(o.start, Some(29));
        assert_eq!(o.dropped, 0);
        assert_eq!(o.blocks.len(), 9);
    }

    #[test]
    fn a_fresh_peer_plays_from_where_every_substream_is_covered_and_forwards_as_blocks_come() {
        use crate::test_fixture::{bare_peer, parent, set};
        use tiercast_proto::{Message, NodeId, Placement};
        let mut n = bare_peer();
        let t = Timestamp::from_millis;
        // Parents 5, 6, 7, 8 push substreams 0, 1, 2, 3.
        let parents = (0..4u8)
            .map(|j| parent(5 + u32::from(j), feeds()[usize::from(j)]))
            .collect();
        set(&mut n, t(0), 1, Placement::Member, parents);
        for p in 5..9 {
            let accepted = Message::LoginAccepted {
                channel: ChannelId(1),
            };
            n.handle_message(t(10), NodeId(p), accepted);
        }
        // A child of its own, logged in before any block came.
        let login = Message::Login {
            channel: ChannelId(1),
            from_seq: None,
            feed: Feed::All,
        };
        n.handle_message(t(20), NodeId(20), login);
        let _ = std::iter::from_fn(|| n.poll_transmit()).count();
        let _ = std::iter::from_fn(|| n.poll_event()).count();
        let mut played = Vec::new();
        let mut forwarded = Vec::new();
        // Parent 7's tree is behind (or it sent a keyframe backlog): 30, 34, 38.
        let arrivals = [
            (7, 30),
            (7, 34),
            (7, 38),
            (5, 60),
            (6, 61),
            (8, 63),
            (7, 42),
            (7, 62),
        ];
        for (i, (from, seq)) in arrivals.into_iter().enumerate() {
            n.handle_message(t(100 + i as u64), NodeId(from), Message::Block(b(seq)));
            forwarded.extend(std::iter::from_fn(|| n.poll_transmit()).filter_map(
                |x| match x.msg {
                    Message::Block(b) if x.to == NodeId(20) => Some(b.seq),
                    _ => None,
                },
            ));
            played.extend(
                std::iter::from_fn(|| n.poll_event()).filter_map(|e| match e {
                    crate::event::Event::BlockStored { block } => Some(block.seq),
                    _ => None,
                }),
            );
            if seq == 61 {
                assert!(
                    played.is_empty(),
                    "substream 3 not heard: nothing played yet"
                );
            }
        }
        assert_eq!(forwarded, vec![30, 34, 38, 60, 61, 63, 42, 62]);
        assert_eq!(played, vec![60, 61, 63, 62]);
        assert_eq!(n.stats().start_blocks_dropped, 4);
        assert_eq!(n.channel(ChannelId(1)).and_then(|c| c.play_from), Some(60));
    }

    #[test]
    fn a_gate_is_needed_only_for_two_or_more_substream_parents() {
        let all = [Feed::All, Feed::Lazy];
        assert!(!StartGate::needed(all.iter()));
        assert!(!StartGate::needed(feeds()[..1].iter()));
        assert!(StartGate::needed(feeds().iter()));
    }
}
