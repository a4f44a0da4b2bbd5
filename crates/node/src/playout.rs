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
            Some((s, o_a)) if s.checked_add(1) == Some(next) && o_b >= o_a && lowest > s => {
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
#[path = "playout_tests.rs"]
mod tests;
