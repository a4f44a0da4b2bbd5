//! The playout stage of a peer's local stream (D4; X5: the simulator runs it
//! too): blocks reach a peer out of order — each substream comes from its own
//! parent, pulled repairs come late — but a player needs one continuous,
//! in-order MPEG-TS. [`Playout`] emits blocks in seq order; when a seq is missing
//! while later blocks wait, it waits for the gap to fill until the playout delay
//! after the missing block was *due*, then gives the gap up and resyncs at the
//! next keyframe block, so a decoder never sees a broken frame. Memory is
//! bounded: at most `max_pending_blocks` wait (one more forces the gap to be
//! given up at once) and the backlog kept for new players is one GOP of at most
//! `history_blocks`.
//!
//! **When a gap is given up.** The missing seq `n` is given up at
//! `due(n) + delay`, where `due(n) = origin(n) + path` is when it would have
//! arrived over the fastest path seen (and never later than the delay after the
//! oldest waiting block arrived, the bound the stage had before):
//! - `origin(n)`, the time the origin cut it, is not known (the block is
//!   missing) but lies between the origin times of the block at `n − 1` (played,
//!   or dropped for resync, just before) and of the lowest waiting block `b`:
//!   blocks are cut in seq order. It is interpolated between them at the stream's
//!   pace: `o(n−1) + (o(b) − o(n−1)) / (b − (n−1))`.
//! - `path` is the smallest `arrival − origin time` over the blocks of the last
//!   10 to 20 s (a windowed minimum): transit over the fastest path plus any
//!   difference between the stage's clock and the origin's, so the rule needs no
//!   clock agreement, and an origin clock step is forgotten within 20 s.
//!
//! Counting from the arrival of the first block behind the gap (the stage's old
//! rule) waited the full delay again after an outage: the blocks behind the gap
//! only come when the outage ends, by which time the missing ones were long due.
//! Then every block up to the next keyframe was dropped and the stream played the
//! outage's length plus the delay behind. Counted from the due time, a gap older
//! than the delay is given up as soon as a block behind it arrives.
//!
//! **Lag.** Every block played records its end-to-end lag — the time it was
//! played minus its origin time, on the origin's clock — in
//! [`PlayoutStats::lag`] (a bounded [`LagHistogram`]). [`Playout::new`] takes the
//! stage's `now` to be on the origin's clock (the simulator's one clock);
//! [`Playout::with_origin_clock`] is for a driver whose clock is not (the tokio
//! driver: monotonic time since it started, against Unix-epoch origin times).
//!
//! Sans-IO like the machines: the driver calls [`Playout::push`] and
//! [`Playout::handle_timeout`], drains [`Playout::poll_output`], and wakes at
//! [`Playout::poll_timeout`]. Generic over what it carries ([`PlayoutBlock`]: a
//! seq, a keyframe flag and an origin time): the tokio driver plays
//! `tiercast_net::http::LiveBlock` (payload and all), the simulator a
//! payload-free block of its own — both through this one stage (issue 13, Must
//! show 2 and 3).

use crate::lag_histogram::LagHistogram;
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use tiercast_proto::Timestamp;

/// What a [`Playout`] carries: a block's seq, whether a player can start
/// (or resync) at it, and when the origin cut it. Cloned only into the backlog
/// kept for joining players.
pub trait PlayoutBlock: Clone {
    fn seq(&self) -> u64;
    fn keyframe(&self) -> bool;
    /// When the origin cut it (µs on the origin's clock).
    fn origin_time_us(&self) -> u64;
}

/// A seq this far from the expected one is a new stream, not a gap.
const DISCONTINUITY_BLOCKS: u64 = 100_000;

/// The fastest path's `arrival − origin time` is the minimum over the current
/// window of this length and the one before.
const PATH_WINDOW_US: u64 = 10_000_000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlayoutConfig {
    /// How long after a missing block was due it may hold the stream back
    /// before it is given up.
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
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
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
    /// End-to-end lag of the blocks played: origin time → played (ms).
    pub lag: LagHistogram,
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

/// The smallest `arrival − origin time` (µs, stage clock minus origin clock)
/// over the current window and the one before.
#[derive(Clone, Debug, Default)]
struct PathOffset {
    window_start: Option<Timestamp>,
    current: Option<i64>,
    previous: Option<i64>,
}

impl PathOffset {
    fn sample(&mut self, now: Timestamp, origin_us: u64) {
        let s = clamp_i64(now.as_micros() as i128 - origin_us as i128);
        match self.window_start {
            Some(start) if now.saturating_since(start) < PATH_WINDOW_US => {
                self.current = Some(self.current.map_or(s, |c| c.min(s)));
            }
            _ => {
                self.previous = self.current;
                self.current = Some(s);
                self.window_start = Some(now);
            }
        }
    }

    fn get(&self) -> Option<i64> {
        match (self.current, self.previous) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

fn clamp_i64(v: i128) -> i64 {
    v.clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

/// The reorder stage of one channel.
#[derive(Clone, Debug)]
pub struct Playout<B> {
    cfg: PlayoutConfig,
    /// The origin's clock minus the stage's (µs): 0 when `now` is on the origin's clock.
    origin_clock_offset_us: i64,
    /// The seq to play next; `None` until the first keyframe.
    next: Option<u64>,
    /// Blocks that cannot be played yet, with when they arrived.
    pending: BTreeMap<u64, (Timestamp, B)>,
    /// The last block taken out (played or dropped for resync): seq, origin time.
    prev: Option<(u64, u64)>,
    /// When a block is expected over the fastest path, relative to its origin time.
    path: PathOffset,
    /// A gap was given up: drop blocks until a keyframe.
    resync: bool,
    /// Played blocks from the latest played keyframe on (empty when that GOP
    /// outgrew `history_blocks`).
    history: VecDeque<B>,
    out: VecDeque<B>,
    stats: PlayoutStats,
}

impl<B: PlayoutBlock> Playout<B> {
    /// A stage whose `now` is on the origin's clock (the simulator).
    pub fn new(cfg: PlayoutConfig) -> Self {
        Self::with_origin_clock(cfg, 0)
    }

    /// A stage whose `now` plus `origin_clock_offset_us` is the origin's clock
    /// (the tokio driver: wall-clock µs minus its monotonic clock, taken once).
    /// Only the lag depends on it; the give-up rule does not.
    pub fn with_origin_clock(cfg: PlayoutConfig, origin_clock_offset_us: i64) -> Self {
        Playout {
            cfg,
            origin_clock_offset_us,
            next: None,
            pending: BTreeMap::new(),
            prev: None,
            path: PathOffset::default(),
            resync: false,
            history: VecDeque::new(),
            out: VecDeque::new(),
            stats: PlayoutStats::default(),
        }
    }

    pub fn stats(&self) -> &PlayoutStats {
        &self.stats
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
                self.prev = None;
                self.path = PathOffset::default();
                self.resync = false;
            }
            Some(next) if seq < next => {
                self.stats.late += 1;
                self.path.sample(now, block.origin_time_us());
                return;
            }
            Some(next) if seq > next && !self.pending.contains_key(&next) => {
                self.stats.reordered += 1;
            }
            _ => {}
        }
        self.path.sample(now, block.origin_time_us());
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

    /// When the waiting gap must be given up (see the module's doc).
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.gap_deadline(self.next?)
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

    /// When the gap at `next` is given up: the delay after it was due, and
    /// never later than the delay after the oldest waiting block arrived.
    /// `None` when `next` is not missing or nothing waits behind it.
    fn gap_deadline(&self, next: u64) -> Option<Timestamp> {
        if self.pending.contains_key(&next) {
            return None;
        }
        let (&lowest, (_, blk)) = self.pending.iter().next()?;
        let delay_us = self.cfg.delay_ms.saturating_mul(1000);
        let oldest = self.pending.values().map(|(t, _)| *t).min()?;
        let bound = oldest.as_micros().saturating_add(delay_us);
        let o_b = blk.origin_time_us();
        // The missing block's origin time, at the stream's pace between the
        // block before it and the lowest waiting one.
        let origin_est = match self.prev {
            Some((s, o_a)) if s + 1 == next && o_b >= o_a && lowest > s => {
                o_a + (o_b - o_a) / (lowest - s)
            }
            _ => o_b,
        };
        let due = match self.path.get() {
            Some(path) => clamp_i64(origin_est as i128 + path as i128 + delay_us as i128)
                .clamp(0, bound as i64) as u64,
            None => bound,
        };
        Some(Timestamp(due))
    }

    fn advance(&mut self, now: Timestamp) {
        let Some(mut next) = self.next else {
            return;
        };
        loop {
            if let Some((_, block)) = self.pending.remove(&next) {
                self.prev = Some((next, block.origin_time_us()));
                // (A stream does not reach seq u64::MAX; saturating keeps it harmless.)
                next = next.saturating_add(1);
                if self.resync && !block.keyframe() {
                    self.stats.skipped_resync += 1;
                    continue;
                }
                self.resync = false;
                self.play(now, block);
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
            let waited = self.gap_deadline(next).is_some_and(|due| now >= due);
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

    fn play(&mut self, now: Timestamp, block: B) {
        self.stats.played += 1;
        let played_at = now.as_micros() as i128 + self.origin_clock_offset_us as i128;
        let lag = (played_at - block.origin_time_us() as i128).clamp(0, u64::MAX as i128);
        self.stats.lag.record_us(lag as u64);
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
        fn origin_time_us(&self) -> u64 {
            self.origin_time_us
        }
    }

    /// The origin cuts a block every 100 ms: seq `s` at `s` × 100 ms.
    const PACE_MS: u64 = 100;

    fn blk(seq: u64, keyframe: bool) -> LiveBlock {
        LiveBlock {
            seq,
            keyframe,
            origin_time_us: seq * PACE_MS * 1000,
            payload: Bytes::from(vec![seq as u8; 4]),
        }
    }

    /// A keyframe every `gop` seqs (seq 0 is one).
    fn gop_blk(seq: u64, gop: u64) -> LiveBlock {
        blk(seq, seq.is_multiple_of(gop))
    }

    /// When block `seq` arrives over a path of `path_ms`.
    fn arrives(seq: u64, path_ms: u64) -> Timestamp {
        ms(seq * PACE_MS + path_ms)
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
        p.push(arrives(0, 50), gop_blk(0, 8));
        p.push(arrives(2, 50), gop_blk(2, 8));
        p.push(arrives(3, 50), gop_blk(3, 8));
        assert_eq!(drain(&mut p), vec![0]);
        // Seq 1 was due at 100 + 50 ms: given up 1.5 s later.
        assert_eq!(p.poll_timeout(), Some(ms(1650)));
        p.handle_timeout(ms(1600));
        assert!(drain(&mut p).is_empty());
        p.push(ms(1640), gop_blk(1, 8));
        assert_eq!(drain(&mut p), vec![1, 2, 3]);
        let st = p.stats();
        assert_eq!(st.skipped(), 0);
        // Lags: 50 ms, then 1.54 s for the repair and the blocks held behind it.
        assert_eq!(st.lag.count(), 4);
        assert_eq!(st.lag.max_ms(), Some(1540));
        // (A quantile is the top of its bucket: 50 ms shares one with 51.)
        assert_eq!(st.lag.quantile_ms(0.25), Some(51));
    }

    #[test]
    fn a_gap_is_skipped_after_the_delay_and_play_resumes_at_a_keyframe() {
        let mut p = playout(1500);
        for s in 0..5 {
            p.push(arrives(s, 50), gop_blk(s, 8));
        }
        assert_eq!(drain(&mut p), vec![0, 1, 2, 3, 4]);
        // Seq 5 never comes; 6..=9 do (8 is a keyframe).
        for s in 6..10 {
            p.push(arrives(s, 50), gop_blk(s, 8));
        }
        assert!(drain(&mut p).is_empty(), "held back by the gap");
        let due = p.poll_timeout().expect("a gap waits");
        // Seq 5 was cut at 500 ms (between 4's 400 and 6's 600) and due 50 ms
        // later; counted from 6's arrival (the old rule) it would be 2150.
        assert_eq!(due, ms(500 + 50 + 1500));
        p.handle_timeout(ms(2049));
        assert!(drain(&mut p).is_empty(), "not yet");
        p.handle_timeout(due);
        // 5 given up, 6 and 7 dropped (no keyframe to decode them from), 8 on.
        assert_eq!(drain(&mut p), vec![8, 9]);
        let st = p.stats();
        assert_eq!((st.skipped_missing, st.skipped_resync, st.gaps), (1, 2, 1));
        // The late block is dropped, not played out of order.
        p.push(ms(2100), gop_blk(5, 8));
        p.push(ms(2100), gop_blk(10, 8));
        assert_eq!(drain(&mut p), vec![10]);
        assert_eq!(p.stats().late, 1);
        assert_eq!(p.stats().played, 8);
    }

    #[test]
    fn after_an_outage_the_gap_is_given_up_as_soon_as_blocks_come_back() {
        let mut p = playout(1000);
        for s in 0..5 {
            p.push(arrives(s, 50), gop_blk(s, 8));
        }
        assert_eq!(drain(&mut p), vec![0, 1, 2, 3, 4]);
        // The parents die: 5..=27 never come. A new parent pushes from 28 on,
        // live; seq 5 was due at 550 ms, its delay ran out at 1.55 s.
        p.push(arrives(28, 50), gop_blk(28, 8));
        assert_eq!(p.poll_timeout(), None, "given up at once");
        for s in 29..32 {
            p.push(arrives(s, 50), gop_blk(s, 8));
            assert!(drain(&mut p).is_empty(), "{s}: no keyframe yet");
        }
        // The next keyframe plays as it arrives, 50 ms behind the origin. (The
        // old rule held it until 28's arrival + 1 s = 3.85 s, 650 ms late, and
        // that wait after every outage is what pushed a peer's lag up.)
        p.push(arrives(32, 50), gop_blk(32, 8));
        assert_eq!(drain(&mut p), vec![32]);
        for s in 33..40 {
            p.push(arrives(s, 50), gop_blk(s, 8));
        }
        assert_eq!(drain(&mut p), (33..40).collect::<Vec<_>>());
        let st = p.stats();
        assert_eq!((st.skipped_missing, st.skipped_resync, st.gaps), (23, 4, 1));
        assert_eq!(st.lag.max_ms(), Some(50), "every block played 50 ms behind");
    }

    #[test]
    fn the_fastest_path_is_a_minimum_over_the_last_window_or_two() {
        let mut p = playout(1000);
        // 30 s over a 50 ms path, then 30 s over 500 ms (the fast parent is
        // gone, or the origin's clock stepped back 450 ms).
        for s in 0..300 {
            p.push(arrives(s, 50), gop_blk(s, 10));
        }
        for s in 300..600 {
            p.push(arrives(s, 500), gop_blk(s, 10));
        }
        assert_eq!(drain(&mut p).len(), 600);
        // Seq 600 is missing, 601 comes: 600 was due at 60 s + 500 ms.
        p.push(arrives(601, 500), gop_blk(601, 10));
        assert_eq!(p.poll_timeout(), Some(ms(60_000 + 500 + 1000)));
        // Within the window the fastest path counts: a 500 ms sample does not
        // move a 50 ms minimum.
        let mut q = playout(1000);
        for s in 0..50 {
            q.push(arrives(s, 50), gop_blk(s, 10));
        }
        for s in 50..60 {
            q.push(arrives(s, 500), gop_blk(s, 10));
        }
        q.push(arrives(61, 500), gop_blk(61, 10));
        assert_eq!(q.poll_timeout(), Some(ms(6_000 + 50 + 1000)));
    }

    #[test]
    fn lag_is_measured_on_the_origin_clock() {
        // The stage's clock started 1000 s after the origin's epoch; every
        // block arrives 80 ms after it was cut.
        let offset: i64 = 1_000_000_000;
        let mut p = Playout::with_origin_clock(PlayoutConfig::default(), offset);
        for s in 0..10 {
            let mut b = gop_blk(s, 5);
            b.origin_time_us += offset as u64;
            p.push(arrives(s, 80), b);
        }
        assert_eq!(drain(&mut p).len(), 10);
        let lag = &p.stats().lag;
        assert_eq!(
            (lag.count(), lag.max_ms(), lag.quantile_ms(0.5)),
            (10, Some(80), Some(80))
        );
    }

    #[test]
    fn after_a_gap_without_a_keyframe_waiting_blocks_are_dropped_until_one_comes() {
        let mut p = playout(100);
        p.push(arrives(0, 50), gop_blk(0, 8));
        // Seq 1 was due at 150 ms: at 250 its delay ran out as 2 arrives.
        p.push(arrives(2, 50), gop_blk(2, 8));
        p.push(arrives(3, 50), gop_blk(3, 8));
        assert_eq!(drain(&mut p), vec![0]);
        for s in 4..8 {
            p.push(arrives(s, 50), gop_blk(s, 8));
        }
        assert!(drain(&mut p).is_empty());
        p.push(arrives(8, 50), gop_blk(8, 8));
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
        /// played or counted as skipped, memory stays bounded, a gap is never held
        /// past the delay after the first block behind it arrived, and every block
        /// played is in the lag histogram.
        #[test]
        fn output_is_ordered_decodable_and_accounted(
            lost in proptest::collection::btree_set(1u64..300, 0..20),
            jitter in proptest::collection::vec(0u64..2000, 300),
        ) {
            let cfg = PlayoutConfig { delay_ms: 500, max_pending_blocks: 64, history_blocks: 32 };
            let mut p = Playout::new(cfg);
            // Block s is cut at 40 ms · s and arrives after a jitter of up to 2 s.
            let block = |s: u64| LiveBlock {
                seq: s,
                keyframe: s.is_multiple_of(10),
                origin_time_us: s * 40_000,
                payload: Bytes::new(),
            };
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
                p.push(ms(t), block(s));
                if let Some(due) = p.poll_timeout() {
                    let oldest = p.pending.values().map(|(a, _)| *a).min().unwrap();
                    prop_assert!(due <= oldest.plus_millis(500));
                }
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
            prop_assert_eq!(st.lag.count(), st.played);
            if let (Some(first), Some(next)) = (st.first_seq, p.next_seq()) {
                prop_assert!(out[0].keyframe);
                prop_assert_eq!(out[0].seq, first);
                prop_assert_eq!(st.played + st.skipped(), next - first);
            }
        }
    }
}
