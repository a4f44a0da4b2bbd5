//! The cutter's idle flush, sans-IO (X1; issue 13: every rule that decides a
//! figure lives in the core, time passed in). At low bitrates no PAT or size cut
//! may come for a long time, so a block that stays open too long would hold the
//! stream back: when no block was cut for `flush_after_ms`, the open block is
//! cut as it is ([`BlockCutter::flush`], which ends it before an unfinished
//! frame: `frames.rs`). The flush timer also restarts when nothing was pending,
//! so an idle stream wakes once per period.
//!
//! [`TimedCutter`] is the cutter with this timer: `push` the bytes, drain
//! `poll_block(now)`, arm a timer at `poll_timeout()`, call
//! `handle_timeout(now)` when it fires, then drain again. Time is any
//! monotonic count of microseconds the driver chooses (the ingest sessions and
//! the built-in test source count from their own start).

use std::collections::VecDeque;

use super::{BlockCutter, CutBlock, CutterConfig, CutterStats, IngestError};

/// A [`BlockCutter`] with its idle flush timer.
#[derive(Debug)]
pub struct TimedCutter {
    cutter: BlockCutter,
    /// `None`: the flush is off.
    flush_after_us: Option<u64>,
    /// When a block was last cut (or the timer last fired).
    last_cut_us: u64,
    /// Blocks cut before a flush, then the flush's: handed out before what
    /// the cutter cuts later, so the order is the stream's.
    ready: VecDeque<CutBlock>,
}

impl TimedCutter {
    /// A cutter started at `now_us`; `flush_after_ms` 0 turns the flush off.
    pub fn new(cfg: CutterConfig, flush_after_ms: u64, now_us: u64) -> Self {
        TimedCutter {
            cutter: BlockCutter::new(cfg),
            flush_after_us: (flush_after_ms > 0).then(|| flush_after_ms.saturating_mul(1000)),
            last_cut_us: now_us,
            ready: VecDeque::new(),
        }
    }

    /// Bytes in (see [`BlockCutter::push`]).
    pub fn push(&mut self, data: &[u8]) -> Result<(), IngestError> {
        self.cutter.push(data)
    }

    /// The next finished block; a block handed out at `now_us` restarts the
    /// flush timer.
    pub fn poll_block(&mut self, now_us: u64) -> Option<CutBlock> {
        let b = self
            .ready
            .pop_front()
            .or_else(|| self.cutter.poll_block())?;
        self.last_cut_us = self.last_cut_us.max(now_us);
        Some(b)
    }

    /// When the flush is due, `None` when it is off.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.flush_after_us
            .map(|after| self.last_cut_us.saturating_add(after))
    }

    /// The flush timer fired at `now_us`: if it is due, the open block is cut
    /// (handed out by the next `poll_block`) and the timer restarts, whether
    /// or not anything was pending.
    pub fn handle_timeout(&mut self, now_us: u64) {
        if self.poll_timeout().is_none_or(|due| now_us < due) {
            return;
        }
        while let Some(b) = self.cutter.poll_block() {
            self.ready.push_back(b);
        }
        self.ready.extend(self.cutter.flush());
        self.last_cut_us = now_us;
    }

    /// End of input (see [`BlockCutter::finish`]); drain `poll_block` after.
    pub fn finish(&mut self) -> Result<(), IngestError> {
        self.cutter.finish()
    }

    /// See [`BlockCutter::continues_stream`].
    pub fn continues_stream(&self, data: &[u8]) -> bool {
        self.cutter.continues_stream(data)
    }

    pub fn stats(&self) -> CutterStats {
        self.cutter.stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TestSource;

    fn cfg() -> CutterConfig {
        CutterConfig::default()
    }

    /// A few packets of a low-bitrate stream: no cut of their own for a while.
    fn some_bytes() -> Vec<u8> {
        let mut s = TestSource::new(64, 1000);
        let mut out = Vec::new();
        let mut t = 0;
        while out.len() < 188 * 40 {
            t += 10_000;
            out.extend_from_slice(&s.generate(t));
        }
        out
    }

    #[test]
    fn an_open_block_is_cut_when_no_cut_came_for_the_flush_period() {
        let mut c = TimedCutter::new(cfg(), 200, 0);
        c.push(&some_bytes()).unwrap();
        while c.poll_block(10_000).is_some() {}
        let due = c.poll_timeout().expect("armed");
        assert_eq!(due, 10_000 + 200_000, "from the last cut");
        c.handle_timeout(due - 1);
        assert!(c.poll_block(due - 1).is_none(), "not due yet");
        c.handle_timeout(due);
        assert!(c.poll_block(due).is_some(), "the open block cut");
        assert_eq!(c.poll_timeout(), Some(due + 200_000));
    }

    #[test]
    fn an_idle_stream_wakes_once_per_period_and_an_off_flush_never() {
        let mut c = TimedCutter::new(cfg(), 100, 5_000);
        assert_eq!(c.poll_timeout(), Some(105_000));
        c.handle_timeout(105_000);
        assert!(c.poll_block(105_000).is_none(), "nothing pending");
        assert_eq!(c.poll_timeout(), Some(205_000), "restarted anyway");
        let off = TimedCutter::new(cfg(), 0, 0);
        assert_eq!(off.poll_timeout(), None);
    }
}
