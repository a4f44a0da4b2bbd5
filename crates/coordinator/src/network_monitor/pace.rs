//! Each channel's block rate as the heartbeats show it (C5's measurement-based
//! mode): the highest seq any node reports for the channel, followed over time.
//! The graph measures links in blocks per second; this turns them into a share of
//! the stream, so what a manager's links across a capped pair really carry can
//! be counted in bit/s. A window of at least [`WINDOW_US`] of seq advance gives
//! one rate; until the first window closes there is none. One entry per channel
//! (bounded by the coordinator's channels; a retired channel's goes).

use std::collections::BTreeMap;
use tiercast_proto::{ChannelId, Timestamp};

/// Seq advance is measured over windows of at least this long.
pub const WINDOW_US: u64 = 10_000_000;

#[derive(Clone, Copy, Debug)]
struct Window {
    start: (Timestamp, u64),
    last: (Timestamp, u64),
    /// Blocks per second × 1000 over the last closed window.
    rate_milli: Option<u64>,
}

/// The channels' block rates.
#[derive(Clone, Debug, Default)]
pub struct ChannelPace {
    windows: BTreeMap<ChannelId, Window>,
}

impl ChannelPace {
    /// A node reported `seq` as the highest it holds of `channel` at `now`.
    pub fn observe(&mut self, now: Timestamp, channel: ChannelId, seq: u64) {
        let w = self.windows.entry(channel).or_insert(Window {
            start: (now, seq),
            last: (now, seq),
            rate_milli: None,
        });
        if seq <= w.last.1 {
            return;
        }
        w.last = (now, seq);
        let dt = now.saturating_since(w.start.0);
        if dt >= WINDOW_US {
            let blocks = u128::from(seq.saturating_sub(w.start.1));
            let rate = blocks * 1_000_000_000 / u128::from(dt);
            w.rate_milli = Some(rate.min(u128::from(u64::MAX)) as u64);
            w.start = w.last;
        }
    }

    /// `channel`'s blocks per second × 1000 over its last closed window.
    pub fn rate_milli(&self, channel: ChannelId) -> Option<u64> {
        self.windows.get(&channel).and_then(|w| w.rate_milli)
    }

    /// Whether `channel` has been seen.
    pub fn tracks(&self, channel: ChannelId) -> bool {
        self.windows.contains_key(&channel)
    }

    /// `channel` was retired.
    pub fn forget(&mut self, channel: ChannelId) {
        self.windows.remove(&channel);
    }

    pub fn len(&self) -> usize {
        self.windows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_is_the_highest_seqs_advance_over_a_closed_window() {
        let mut p = ChannelPace::default();
        let c = ChannelId(1);
        let t = |s: u64| Timestamp(s * 1_000_000);
        p.observe(t(0), c, 100);
        p.observe(t(5), c, 150);
        assert_eq!(p.rate_milli(c), None, "no window closed yet");
        // A lagging node's older seq changes nothing.
        p.observe(t(9), c, 120);
        p.observe(t(10), c, 200);
        assert_eq!(p.rate_milli(c), Some(10_000), "100 blocks in 10 s");
        p.observe(t(30), c, 300);
        assert_eq!(p.rate_milli(c), Some(5_000), "100 blocks in 20 s");
        p.forget(c);
        assert!(p.is_empty() && p.rate_milli(c).is_none());
    }
}
