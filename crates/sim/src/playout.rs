//! A simulated peer viewer's playout stage (X5, D4; issue 13 Must show 2): the
//! core's `tiercast_node::Playout` — the very stage the tokio driver runs for a
//! real peer's players (`tiercast_net::node_driver::local`), not a copy — fed the
//! blocks the simulated peer stores, time passed in. It holds no rule of its own:
//! it drives the stage and keeps what the books need (which seqs it played on
//! time, near the top) and, for tests, a trace of what went in and came out.
//!
//! The stage's timers need no simulator events: before each push, and whenever
//! the books ask ([`ViewerPlayout::catch_up`]), the timeouts due by then are
//! handled each at its own time, in order — what a driver waking at
//! `poll_timeout` does — so every emitted block carries the time it was played.

use crate::viewer::{shift_window, NONE, WINDOW};
use serde::Serialize;
use tiercast_node::{LagHistogram, Playout, PlayoutBlock, PlayoutConfig, PlayoutStats};
use tiercast_proto::Timestamp;

/// What the simulator plays: a block without its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SimBlock {
    pub seq: u64,
    pub keyframe: bool,
    /// When the origin cut it (µs).
    pub origin_time_us: u64,
}

impl PlayoutBlock for SimBlock {
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

/// What went into one viewer's stage and what it played (tests: `RunOptions::playout_trace`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlayoutTrace {
    /// The viewer's node id.
    pub node: u32,
    pub cfg: PlayoutConfig,
    /// Each block pushed, with its arrival time (µs), in order.
    pub pushed: Vec<(u64, SimBlock)>,
    /// When its books closed: timeouts due by then were handled (µs).
    pub closed_at: u64,
    /// Each block played: (when, seq), in order.
    pub played: Vec<(u64, u64)>,
    pub stats: PlayoutStats,
}

/// One peer viewer's stage and the seqs it played on time. When the viewer's
/// books close the stage is dropped ([`ViewerPlayout::close`]); where its run
/// started and what it played on time near the top stay for the report.
pub(crate) struct ViewerPlayout {
    stage: Option<Playout<SimBlock>>,
    /// The stage's first played seq, kept when it is dropped (`NONE`: none).
    closed_first: u64,
    /// Highest seq played on time (`NONE`: none yet) and the 256-seq window below
    /// it (bit `i`: seq `highest - i` was played on time).
    highest: u64,
    window: [u64; 4],
    /// Played after its deadline (held behind a gap that filled late): a stall.
    pub played_late: u64,
    trace: Option<Box<PlayoutTrace>>,
}

impl ViewerPlayout {
    pub fn new(cfg: PlayoutConfig, trace_node: Option<u32>) -> Self {
        let trace = trace_node.map(|node| {
            Box::new(PlayoutTrace {
                node,
                cfg: cfg.clone(),
                pushed: Vec::new(),
                closed_at: 0,
                played: Vec::new(),
                stats: PlayoutStats::default(),
            })
        });
        ViewerPlayout {
            stage: Some(Playout::new(cfg)),
            closed_first: NONE,
            highest: NONE,
            window: [0; 4],
            played_late: 0,
            trace,
        }
    }

    /// A block stored at `now`: the timeouts due before are handled first; what
    /// the stage plays is appended to `out` with the time it was played.
    pub fn push(&mut self, now: u64, block: SimBlock, out: &mut Vec<(u64, SimBlock)>) {
        self.catch_up(now, out);
        let Some(stage) = self.stage.as_mut() else {
            return;
        };
        if let Some(t) = self.trace.as_mut() {
            t.pushed.push((now, block));
        }
        stage.push(Timestamp(now), block);
        self.drain(now, out);
    }

    /// Handles every timeout due by `now`, each at its own time.
    pub fn catch_up(&mut self, now: u64, out: &mut Vec<(u64, SimBlock)>) {
        while let Some(due) = self
            .stage
            .as_ref()
            .and_then(|s| s.poll_timeout())
            .filter(|d| d.0 <= now)
        {
            if let Some(s) = self.stage.as_mut() {
                s.handle_timeout(due);
            }
            self.drain(due.0, out);
        }
    }

    fn drain(&mut self, at: u64, out: &mut Vec<(u64, SimBlock)>) {
        let Some(stage) = self.stage.as_mut() else {
            return;
        };
        while let Some(b) = stage.poll_output() {
            if let Some(t) = self.trace.as_mut() {
                t.played.push((at, b.seq));
            }
            out.push((at, b));
        }
    }

    /// Keeps in `out` what was played within `deadline_us` of its origin time
    /// (marked on time) and counts the rest as played late.
    pub fn keep_on_time(&mut self, out: &mut Vec<(u64, SimBlock)>, deadline_us: u64) {
        out.retain(|(at, b)| {
            let on_time = at.saturating_sub(b.origin_time_us) <= deadline_us;
            if on_time {
                self.mark_on_time(b.seq);
            } else {
                self.played_late += 1;
            }
            on_time
        });
    }

    /// The seq the stage started playing at (a keyframe; `NONE` before).
    pub fn first_seq(&self) -> u64 {
        match &self.stage {
            Some(s) => s.stats().first_seq.unwrap_or(NONE),
            None => self.closed_first,
        }
    }

    /// Whether the stage was dropped (the viewer's books closed).
    pub fn closed(&self) -> bool {
        self.stage.is_none()
    }

    /// Drops the stage; its counters, and its trace closed at `t`.
    pub fn close(&mut self, t: u64) -> (PlayoutStats, Option<PlayoutTrace>) {
        let stats = self
            .stage
            .as_ref()
            .map(|s| s.stats().clone())
            .unwrap_or_default();
        self.closed_first = self.first_seq();
        self.stage = None;
        let trace = self.trace.take().map(|mut tr| {
            tr.closed_at = t;
            tr.stats = stats.clone();
            *tr
        });
        (stats, trace)
    }

    /// Seq `seq` (above every earlier one) was played on time.
    pub fn mark_on_time(&mut self, seq: u64) {
        if self.highest == NONE {
            self.highest = seq;
            self.window = [1, 0, 0, 0];
            return;
        }
        debug_assert!(seq > self.highest, "the stage plays in seq order");
        shift_window(&mut self.window, seq - self.highest);
        self.highest = seq;
        self.window[0] |= 1;
    }

    /// The seqs played on time above `s_end` (all of them when `None`), within
    /// the window.
    pub fn on_time_above(&self, s_end: Option<u64>) -> impl Iterator<Item = u64> + '_ {
        let n = match s_end {
            _ if self.highest == NONE => 0,
            Some(e) if self.highest <= e => 0,
            Some(e) => (self.highest - e).min(WINDOW),
            None => WINDOW.min(self.highest + 1),
        };
        (0..n)
            .filter(|i| self.window[(i / 64) as usize] >> (i % 64) & 1 == 1)
            .map(|i| self.highest - i)
    }
}

/// The playout stages' counters summed over every peer viewer (metrics.json
/// `playout`; `tiercast_node::PlayoutStats` per viewer).
#[derive(Clone, Debug, Default, Serialize)]
pub struct PlayoutTotals {
    /// Viewers whose stage was fed a block.
    pub viewers: u64,
    /// Blocks played in time for a player `playout_deadline_ms` behind live.
    pub played_on_time: u64,
    /// Blocks played after that (held behind a gap that filled late): a stall, missed.
    pub played_late: u64,
    /// Seqs given up as missing, and blocks dropped until the next keyframe.
    pub skipped_missing: u64,
    pub skipped_resync: u64,
    /// Gaps given up (after the delay, or at once when too many blocks waited).
    pub gaps: u64,
    pub overflows: u64,
    /// Blocks that came after their seq was played past.
    pub late: u64,
    /// Blocks that came while an earlier seq was missing.
    pub reordered: u64,
    /// End-to-end lag of every block the stages played (origin time → played),
    /// the stages' own histograms merged; the report's `lag_ms_p50`/`p95` are
    /// the same samples in 1 ms bins.
    pub lag: LagHistogram,
}

impl PlayoutTotals {
    pub(crate) fn add(&mut self, s: &PlayoutStats, played_late: u64) {
        self.viewers += 1;
        self.played_on_time += s.played - played_late;
        self.played_late += played_late;
        self.skipped_missing += s.skipped_missing;
        self.skipped_resync += s.skipped_resync;
        self.gaps += s.gaps;
        self.overflows += s.overflows;
        self.late += s.late;
        self.reordered += s.reordered;
        self.lag.merge(&s.lag);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blk(seq: u64) -> SimBlock {
        SimBlock {
            seq,
            keyframe: seq.is_multiple_of(4),
            origin_time_us: seq * 100_000,
        }
    }

    fn cfg() -> PlayoutConfig {
        PlayoutConfig {
            delay_ms: 1000,
            max_pending_blocks: 512,
            history_blocks: 1,
        }
    }

    #[test]
    fn timeouts_are_handled_at_their_own_time_before_a_later_push() {
        let mut p = ViewerPlayout::new(cfg(), Some(7));
        let mut out = Vec::new();
        p.push(0, blk(0), &mut out);
        // Seq 1 never comes; 2..=4 wait behind it (4 is a keyframe).
        p.push(200_000, blk(2), &mut out);
        p.push(300_000, blk(3), &mut out);
        p.push(400_000, blk(4), &mut out);
        assert_eq!(out, vec![(0, blk(0))]);
        // Seq 1 was cut at 100 ms and would have come at once (every block so
        // far arrived as it was cut): given up at 100 ms + 1 s, long before this
        // push at 5 s.
        p.push(5_000_000, blk(5), &mut out);
        assert_eq!(
            out,
            vec![(0, blk(0)), (1_100_000, blk(4)), (5_000_000, blk(5))]
        );
        let (s, tr) = p.close(6_000_000);
        assert_eq!((s.skipped_missing, s.skipped_resync, s.gaps), (1, 2, 1));
        assert_eq!(p.first_seq(), 0, "kept once the stage is dropped");
        let tr = tr.expect("traced");
        assert_eq!(tr.node, 7);
        assert_eq!(tr.pushed.len(), 5);
        assert_eq!(tr.played, vec![(0, 0), (1_100_000, 4), (5_000_000, 5)]);
    }

    #[test]
    fn the_on_time_window_lists_seqs_above() {
        let mut p = ViewerPlayout::new(cfg(), None);
        assert_eq!(p.on_time_above(None).count(), 0);
        for s in [10, 11, 13, 70, 200] {
            p.mark_on_time(s);
        }
        let above: Vec<u64> = p.on_time_above(Some(12)).collect();
        assert_eq!(above, vec![200, 70, 13]);
        assert_eq!(p.on_time_above(Some(200)).count(), 0);
        assert_eq!(p.on_time_above(None).count(), 5);
        p.mark_on_time(400);
        let above: Vec<u64> = p.on_time_above(None).collect();
        assert_eq!(above, vec![400, 200], "older than the window: gone");
    }
}
