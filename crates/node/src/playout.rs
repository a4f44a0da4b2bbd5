//! The playout stage of a peer's local stream (D4; X5: the simulator runs it
//! too): blocks reach a peer out of order — each substream comes from its own
//! parent, pulled repairs come late — but a player needs one continuous,
//! in-order MPEG-TS. [`Playout`] emits blocks in seq
//! order; when a seq is missing while later blocks wait, it waits up to the playout
//! delay (counted from the arrival of the oldest waiting block) for the gap to
//! fill, then gives the gap up and resyncs at the next keyframe block, so a decoder
//! never sees a broken frame. Memory is bounded: at most `max_pending_blocks` wait
//! (one more forces the gap to be given up at once) and the backlog kept for new
//! players is one GOP of at most `history_blocks`.
//!
//! Sans-IO like the machines: the driver calls [`Playout::push`] and
//! [`Playout::handle_timeout`], drains [`Playout::poll_output`], and wakes at
//! [`Playout::poll_timeout`]. Generic over what it carries ([`PlayoutBlock`]: a
//! seq and a keyframe flag): the tokio driver plays `tiercast_net::http::LiveBlock`
//! (payload and all), the simulator a payload-free block of its own — both through
//! this one stage (issue 13, Must show 2).

use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use tiercast_proto::Timestamp;

/// What a [`Playout`] carries: a block's seq and whether a player can start
/// (or resync) at it. Cloned only into the backlog kept for joining players.
pub trait PlayoutBlock: Clone {
    fn seq(&self) -> u64;
    fn keyframe(&self) -> bool;
}

/// A seq this far from the expected one is a new stream, not a gap.
const DISCONTINUITY_BLOCKS: u64 = 100_000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlayoutConfig {
    /// How long a gap may hold the stream back before it is given up.
    pub delay_ms: u64,
    /// Blocks waiting behind a gap at most; one more gives the gap up at once.
    pub max_pending_blocks: usize,
    /// Blocks of the current GOP kept for players that join (their backlog).
    pub history_blocks: usize,
}

impl Default for PlayoutConfig {
    fn default() -> Self {
        PlayoutConfig {
            delay_ms: 4000,
            max_pending_blocks: 512,
            history_blocks: 256,
        }
    }
}

impl PlayoutConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.delay_ms == 0 || self.delay_ms > 60_000 {
            return Err(format!(
                "playout delay must be 1..=60000 ms, got {}",
                self.delay_ms
            ));
        }
        if self.max_pending_blocks == 0 || self.history_blocks == 0 {
            return Err("playout max_pending_blocks and history_blocks must be >= 1".into());
        }
        Ok(())
    }
}

/// What the playout did, for reports. A block is "on time" when it was played;
/// every seq from the first played one on is either played or skipped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PlayoutStats {
    /// The seq playback started at (a keyframe).
    pub first_seq: Option<u64>,
    /// Blocks played, in order.
    pub played: u64,
    /// Seqs given up: still missing when the delay ran out (or the bound was hit).
    pub skipped_missing: u64,
    /// Blocks that arrived but were dropped while waiting for a keyframe after a gap.
    pub skipped_resync: u64,
    /// Gaps given up.
    pub gaps: u64,
    /// Gaps given up early because too many blocks waited behind them.
    pub overflows: u64,
    /// Blocks that arrived after their seq had been played past (not counted again).
    pub late: u64,
    /// Blocks that arrived while an earlier seq was missing, and waited.
    pub reordered: u64,
    /// Restarts on a seq far from the expected one (a new stream).
    pub discontinuities: u64,
}

impl PlayoutStats {
    /// Seqs skipped, missing or dropped for resync.
    pub fn skipped(&self) -> u64 {
        self.skipped_missing + self.skipped_resync
    }

    /// Played / (played + skipped); 1 before anything was due.
    pub fn on_time_ratio(&self) -> f64 {
        let due = self.played + self.skipped();
        if due == 0 {
            1.0
        } else {
            self.played as f64 / due as f64
        }
    }
}

/// The reorder stage of one channel.
#[derive(Clone, Debug)]
pub struct Playout<B> {
    cfg: PlayoutConfig,
    /// The seq to play next; `None` until the first keyframe.
    next: Option<u64>,
    /// Blocks that cannot be played yet, with when they arrived.
    pending: BTreeMap<u64, (Timestamp, B)>,
    /// A gap was given up: drop blocks until a keyframe.
    resync: bool,
    /// Played blocks from the latest played keyframe on (empty when that GOP
    /// outgrew `history_blocks`).
    history: VecDeque<B>,
    out: VecDeque<B>,
    stats: PlayoutStats,
}

impl<B: PlayoutBlock> Playout<B> {
    pub fn new(cfg: PlayoutConfig) -> Self {
        Playout {
            cfg,
            next: None,
            pending: BTreeMap::new(),
            resync: false,
            history: VecDeque::new(),
            out: VecDeque::new(),
            stats: PlayoutStats::default(),
        }
    }

    pub fn stats(&self) -> PlayoutStats {
        self.stats
    }

    /// The seq to be played next (`None` before the first keyframe).
    pub fn next_seq(&self) -> Option<u64> {
        self.next
    }

    /// Blocks waiting behind a gap now.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// A block stored by the node (each seq at most once, in any order).
    pub fn push(&mut self, now: Timestamp, block: B) {
        let seq = block.seq();
        match self.next {
            Some(next) if seq.abs_diff(next) > DISCONTINUITY_BLOCKS => {
                self.stats.discontinuities += 1;
                self.pending.clear();
                self.history.clear();
                self.next = None;
                self.resync = false;
            }
            Some(next) if seq < next => {
                self.stats.late += 1;
                return;
            }
            Some(next) if seq > next && !self.pending.contains_key(&next) => {
                self.stats.reordered += 1;
            }
            _ => {}
        }
        self.pending.insert(seq, (now, block));
        if self.next.is_none() {
            self.start();
        }
        self.advance(now);
    }

    /// Gives up gaps whose delay ran out.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.advance(now);
    }

    /// When a waiting gap must be given up.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let next = self.next?;
        if self.pending.is_empty() || self.pending.contains_key(&next) {
            return None;
        }
        self.oldest_arrival()
            .map(|t| t.plus_millis(self.cfg.delay_ms))
    }

    /// The next block to play, in seq order.
    pub fn poll_output(&mut self) -> Option<B> {
        self.out.pop_front()
    }

    /// What a player joining now starts with: the played blocks from the latest
    /// keyframe on (empty: it waits for the next keyframe).
    pub fn backlog(&self) -> Vec<B> {
        self.history.iter().cloned().collect()
    }

    /// Before the first keyframe: start at the lowest keyframe waiting, dropping
    /// what came before it (nothing was due yet); bounded while none has come.
    fn start(&mut self) {
        let first_key = self
            .pending
            .iter()
            .find(|(_, (_, b))| b.keyframe())
            .map(|(s, _)| *s);
        match first_key {
            Some(k) => {
                self.pending = self.pending.split_off(&k);
                self.next = Some(k);
                self.stats.first_seq.get_or_insert(k);
            }
            None => {
                while self.pending.len() > self.cfg.max_pending_blocks {
                    self.pending.pop_first();
                }
            }
        }
    }

    fn oldest_arrival(&self) -> Option<Timestamp> {
        self.pending.values().map(|(t, _)| *t).min()
    }

    fn advance(&mut self, now: Timestamp) {
        let Some(mut next) = self.next else {
            return;
        };
        let delay_us = self.cfg.delay_ms.saturating_mul(1000);
        loop {
            if let Some((_, block)) = self.pending.remove(&next) {
                // (A stream does not reach seq u64::MAX; saturating keeps it harmless.)
                next = next.saturating_add(1);
                if self.resync && !block.keyframe() {
                    self.stats.skipped_resync += 1;
                    continue;
                }
                self.resync = false;
                self.play(block);
                continue;
            }
            let Some(lowest) = self.pending.keys().next().copied() else {
                break;
            };
            // `next` is missing and later blocks wait.
            if self.resync {
                // Everything before a waiting keyframe would be dropped anyway.
                let key = self
                    .pending
                    .iter()
                    .find(|(_, (_, b))| b.keyframe())
                    .map(|(s, _)| *s);
                if let Some(k) = key {
                    let rest = self.pending.split_off(&k);
                    let dropped = self.pending.len() as u64;
                    self.stats.skipped_resync += dropped;
                    self.stats.skipped_missing += (k - next) - dropped;
                    self.pending = rest;
                    next = k;
                    continue;
                }
            }
            let overflow = self.pending.len() > self.cfg.max_pending_blocks;
            let waited = self
                .oldest_arrival()
                .is_some_and(|t| now.saturating_since(t) >= delay_us);
            if !(overflow || waited) {
                break;
            }
            self.stats.skipped_missing += lowest - next;
            self.stats.gaps += 1;
            if overflow {
                self.stats.overflows += 1;
            }
            next = lowest;
            self.resync = true;
        }
        self.next = Some(next);
    }

    fn play(&mut self, block: B) {
        self.stats.played += 1;
        if block.keyframe() {
            self.history.clear();
            self.history.push_back(block.clone());
        } else if !self.history.is_empty() {
            if self.history.len() < self.cfg.history_blocks {
                self.history.push_back(block.clone());
            } else {
                // This GOP is too long to keep: new players wait for a keyframe.
                self.history.clear();
            }
        }
        self.out.push_back(block);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use proptest::prelude::*;

    /// What the tokio driver plays (`tiercast_net::http::LiveBlock`'s fields).
    #[derive(Clone, Debug)]
    struct LiveBlock {
        seq: u64,
        keyframe: bool,
        #[allow(dead_code)]
        origin_time_us: u64,
        #[allow(dead_code)]
        payload: Bytes,
    }

    impl PlayoutBlock for LiveBlock {
        fn seq(&self) -> u64 {
            self.seq
        }
        fn keyframe(&self) -> bool {
            self.keyframe
        }
    }

    fn blk(seq: u64, keyframe: bool) -> LiveBlock {
        LiveBlock {
            seq,
            keyframe,
            origin_time_us: seq,
            payload: Bytes::from(vec![seq as u8; 4]),
        }
    }

    /// A keyframe every `gop` seqs (seq 0 is one).
    fn gop_blk(seq: u64, gop: u64) -> LiveBlock {
        blk(seq, seq.is_multiple_of(gop))
    }

    fn drain(p: &mut Playout<LiveBlock>) -> Vec<u64> {
        std::iter::from_fn(|| p.poll_output())
            .map(|b| b.seq)
            .collect()
    }

    fn ms(t: u64) -> Timestamp {
        Timestamp::from_millis(t)
    }

    fn playout(delay_ms: u64) -> Playout<LiveBlock> {
        Playout::new(PlayoutConfig {
            delay_ms,
            ..PlayoutConfig::default()
        })
    }

    #[test]
    fn out_of_order_in_is_in_order_out() {
        let mut p = playout(1500);
        // Four substreams from four parents: each parent's blocks in order, the
        // parents interleaved badly.
        let order = [0, 2, 1, 3, 6, 5, 4, 7, 9, 11, 8, 10];
        let mut played = Vec::new();
        for (i, s) in order.iter().enumerate() {
            p.push(ms(i as u64 * 10), gop_blk(*s, 8));
            played.extend(drain(&mut p));
        }
        assert_eq!(played, (0..12).collect::<Vec<_>>());
        let st = p.stats();
        assert_eq!((st.played, st.skipped(), st.gaps), (12, 0, 0));
        assert!(st.reordered > 0);
        assert_eq!(p.poll_timeout(), None);
        assert_eq!(st.on_time_ratio(), 1.0);
    }

    #[test]
    fn a_gap_that_fills_within_the_delay_loses_nothing() {
        let mut p = playout(1500);
        p.push(ms(0), gop_blk(0, 8));
        p.push(ms(100), gop_blk(2, 8));
        p.push(ms(200), gop_blk(3, 8));
        assert_eq!(drain(&mut p), vec![0]);
        assert_eq!(p.poll_timeout(), Some(ms(1600)));
        p.handle_timeout(ms(1000));
        assert!(drain(&mut p).is_empty());
        p.push(ms(1400), gop_blk(1, 8));
        assert_eq!(drain(&mut p), vec![1, 2, 3]);
        assert_eq!(p.stats().skipped(), 0);
    }

    #[test]
    fn a_gap_is_skipped_after_the_delay_and_play_resumes_at_a_keyframe() {
        let mut p = playout(1500);
        for s in 0..5 {
            p.push(ms(s * 100), gop_blk(s, 8));
        }
        assert_eq!(drain(&mut p), vec![0, 1, 2, 3, 4]);
        // Seq 5 never comes; 6..=9 do (8 is a keyframe).
        for s in 6..10 {
            p.push(ms(500 + s * 100), gop_blk(s, 8));
        }
        assert!(drain(&mut p).is_empty(), "held back by the gap");
        let due = p.poll_timeout().expect("a gap waits");
        assert_eq!(due, ms(1100 + 1500));
        p.handle_timeout(ms(2599));
        assert!(drain(&mut p).is_empty(), "not yet");
        p.handle_timeout(due);
        // 5 given up, 6 and 7 dropped (no keyframe to decode them from), 8 on.
        assert_eq!(drain(&mut p), vec![8, 9]);
        let st = p.stats();
        assert_eq!((st.skipped_missing, st.skipped_resync, st.gaps), (1, 2, 1));
        // The late block is dropped, not played out of order.
        p.push(ms(2700), gop_blk(5, 8));
        p.push(ms(2700), gop_blk(10, 8));
        assert_eq!(drain(&mut p), vec![10]);
        assert_eq!(p.stats().late, 1);
        assert_eq!(p.stats().played, 8);
    }

    #[test]
    fn after_a_gap_without_a_keyframe_waiting_blocks_are_dropped_until_one_comes() {
        let mut p = playout(100);
        p.push(ms(0), gop_blk(0, 8));
        p.push(ms(0), gop_blk(2, 8));
        p.push(ms(0), gop_blk(3, 8));
        p.handle_timeout(ms(100));
        assert_eq!(drain(&mut p), vec![0]);
        for s in 4..8 {
            p.push(ms(200), gop_blk(s, 8));
        }
        assert!(drain(&mut p).is_empty());
        p.push(ms(300), gop_blk(8, 8));
        assert_eq!(drain(&mut p), vec![8]);
        let st = p.stats();
        assert_eq!((st.skipped_missing, st.skipped_resync), (1, 6));
    }

    #[test]
    fn playback_starts_at_a_keyframe() {
        let mut p = playout(1500);
        p.push(ms(0), gop_blk(5, 8));
        p.push(ms(0), gop_blk(6, 8));
        assert!(drain(&mut p).is_empty());
        assert_eq!(p.poll_timeout(), None);
        p.push(ms(0), gop_blk(8, 8));
        p.push(ms(0), gop_blk(7, 8));
        p.push(ms(0), gop_blk(9, 8));
        assert_eq!(drain(&mut p), vec![8, 9]);
        let st = p.stats();
        assert_eq!(st.first_seq, Some(8));
        assert_eq!(st.skipped(), 0, "nothing was due before the start");
        assert_eq!(st.late, 1);
    }

    #[test]
    fn too_many_waiting_blocks_give_the_gap_up_at_once() {
        let mut p = Playout::new(PlayoutConfig {
            delay_ms: 60_000,
            max_pending_blocks: 16,
            history_blocks: 8,
        });
        p.push(ms(0), gop_blk(0, 4));
        for s in 2..200 {
            p.push(ms(1), gop_blk(s, 4));
            assert!(p.pending_len() <= 16);
        }
        let played = drain(&mut p);
        assert_eq!(played.first(), Some(&0));
        assert_eq!(played.get(1), Some(&4), "resynced at the next keyframe");
        assert_eq!(*played.last().unwrap(), 199);
        let st = p.stats();
        assert_eq!(
            (st.overflows, st.skipped_missing, st.skipped_resync),
            (1, 1, 2)
        );
        assert!(p.backlog().len() <= 8);
        assert!(p.backlog()[0].keyframe);
    }

    #[test]
    fn the_backlog_is_the_current_gop_and_stays_bounded() {
        let mut p = Playout::new(PlayoutConfig {
            history_blocks: 4,
            ..PlayoutConfig::default()
        });
        for s in 0..11 {
            p.push(ms(s), gop_blk(s, 8));
        }
        let b: Vec<u64> = p.backlog().iter().map(|b| b.seq).collect();
        assert_eq!(b, vec![8, 9, 10]);
        p.push(ms(20), gop_blk(11, 8));
        p.push(ms(20), gop_blk(12, 8));
        assert!(
            p.backlog().is_empty(),
            "a GOP longer than the history is not kept"
        );
        p.push(ms(20), gop_blk(13, 8));
        assert!(p.backlog().is_empty());
        p.push(ms(20), gop_blk(16, 8));
        p.push(ms(20), gop_blk(14, 8));
        p.push(ms(20), gop_blk(15, 8));
        assert_eq!(p.backlog()[0].seq, 16);
    }

    #[test]
    fn a_far_jump_restarts_playback_without_counting_a_gap() {
        let mut p = playout(1500);
        p.push(ms(0), gop_blk(0, 8));
        p.push(ms(0), gop_blk(1, 8));
        p.push(ms(0), gop_blk(10_000_000, 8));
        p.push(ms(0), gop_blk(10_000_001, 8));
        assert_eq!(drain(&mut p), vec![0, 1, 10_000_000, 10_000_001]);
        let st = p.stats();
        assert_eq!((st.discontinuities, st.skipped()), (1, 0));
    }

    proptest! {
        /// Whatever the arrival order and losses: output strictly increasing, every
        /// run after a gap starts at a keyframe, every seq from the start on is
        /// played or counted as skipped, and memory stays bounded.
        #[test]
        fn output_is_ordered_decodable_and_accounted(
            lost in proptest::collection::btree_set(1u64..300, 0..20),
            jitter in proptest::collection::vec(0u64..2000, 300),
        ) {
            let cfg = PlayoutConfig { delay_ms: 500, max_pending_blocks: 64, history_blocks: 32 };
            let mut p = Playout::new(cfg);
            // Block s is sent at 40 ms · s and arrives after a jitter of up to 2 s.
            let mut arrivals: Vec<(u64, u64)> = (0..300u64)
                .filter(|s| !lost.contains(s))
                .map(|s| (s * 40 + jitter[s as usize], s))
                .collect();
            arrivals.sort();
            let mut out = Vec::new();
            for (t, s) in arrivals {
                while let Some(due) = p.poll_timeout().filter(|d| *d <= ms(t)) {
                    p.handle_timeout(due);
                }
                p.push(ms(t), gop_blk(s, 10));
                prop_assert!(p.pending_len() <= 65);
                prop_assert!(p.backlog().len() <= 32);
                out.extend(std::iter::from_fn(|| p.poll_output()));
            }
            let mut t = 20_000;
            while p.poll_timeout().is_some() {
                t += 1000;
                p.handle_timeout(ms(t));
            }
            out.extend(std::iter::from_fn(|| p.poll_output()));
            for w in out.windows(2) {
                prop_assert!(w[0].seq < w[1].seq);
                if w[1].seq != w[0].seq + 1 {
                    prop_assert!(w[1].keyframe, "a jump lands on a keyframe");
                }
            }
            let st = p.stats();
            prop_assert_eq!(st.played, out.len() as u64);
            if let (Some(first), Some(next)) = (st.first_seq, p.next_seq()) {
                prop_assert!(out[0].keyframe);
                prop_assert_eq!(out[0].seq, first);
                prop_assert_eq!(st.played + st.skipped(), next - first);
            }
        }
    }
}
