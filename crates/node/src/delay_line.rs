//! The time-delayed feed (C3, provider rule "a time-delayed feed for free
//! viewers"): one viewer's line of blocks held until they are `delay` behind live.
//! A block leaves when the relay has received a block cut `delay` after it (by the
//! origin's clock), so the viewer plays exactly the live stream shifted by the
//! delay, paced by the live stream itself: no local clock, no skew between the
//! origin's and the relay's clocks. The line starts at a keyframe; it holds at
//! most `max_items` blocks and, when that is not enough for the delay (a stream of
//! many small blocks), drops its oldest blocks up to the next keyframe (the
//! viewer skips, counted) rather than grow.
//!
//! [`BlockBuffer::delayed_start`] says where a delayed viewer starts in the relay's
//! buffer: the newest keyframe at least `delay` old, or, when the buffer does not
//! reach back that far, its oldest keyframe (the line then waits before it
//! releases anything: the delay is never shorter than asked).

use crate::buffer::BlockBuffer;
use std::collections::VecDeque;

struct Held<T> {
    origin_time_us: u64,
    keyframe: bool,
    item: T,
}

/// One delayed viewer's blocks, in arrival order (the relay's order, by seq).
pub struct DelayLine<T> {
    delay_us: u64,
    max_items: usize,
    held: VecDeque<Held<T>>,
    newest_origin_us: Option<u64>,
    started: bool,
    skipped: u64,
}

impl<T> DelayLine<T> {
    /// `max_items` is raised to 2 (a keyframe and what follows).
    pub fn new(delay_us: u64, max_items: usize) -> Self {
        DelayLine {
            delay_us,
            max_items: max_items.max(2),
            held: VecDeque::new(),
            newest_origin_us: None,
            started: false,
            skipped: 0,
        }
    }

    pub fn delay_us(&self) -> u64 {
        self.delay_us
    }

    /// Blocks held now.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Blocks dropped: before the first keyframe, or to stay within `max_items`.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// A block arrived (from the buffer's backlog, then live).
    pub fn push(&mut self, origin_time_us: u64, keyframe: bool, item: T) {
        self.newest_origin_us = Some(
            self.newest_origin_us
                .map_or(origin_time_us, |n| n.max(origin_time_us)),
        );
        if !self.started {
            if !keyframe {
                self.skipped += 1;
                return;
            }
            self.started = true;
        }
        if self.held.len() >= self.max_items {
            self.drop_to_next_keyframe();
        }
        self.held.push_back(Held {
            origin_time_us,
            keyframe,
            item,
        });
    }

    /// The next block due (at least `delay` older than the newest one seen).
    pub fn pop_due(&mut self) -> Option<T> {
        let newest = self.newest_origin_us?;
        let front = self.held.front()?;
        if front.origin_time_us.saturating_add(self.delay_us) <= newest {
            self.held.pop_front().map(|h| h.item)
        } else {
            None
        }
    }

    /// Drops the oldest block and every block up to the next keyframe held.
    fn drop_to_next_keyframe(&mut self) {
        if self.held.pop_front().is_some() {
            self.skipped += 1;
        }
        while self.held.front().is_some_and(|h| !h.keyframe) {
            self.held.pop_front();
            self.skipped += 1;
        }
    }
}

/// Where a delayed viewer starts in a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DelayedStart {
    /// The keyframe block to start from.
    pub seq: u64,
    /// `false` when the buffer does not reach back `delay`: the viewer waits for
    /// the rest of the delay before its first block.
    pub reaches_back: bool,
}

impl BlockBuffer {
    /// The newest keyframe cut at least `delay_us` before the newest block, else
    /// the oldest keyframe held; `None` without a keyframe.
    pub fn delayed_start(&self, delay_us: u64) -> Option<DelayedStart> {
        let hi = self.highest_seq()?;
        let newest = self.get(hi)?.origin_time_us;
        let lo = self.lowest_held()?;
        let mut oldest_keyframe = None;
        for seq in (lo..=hi).rev() {
            let Some(b) = self.get(seq) else { continue };
            if !b.is_keyframe() {
                continue;
            }
            if b.origin_time_us.saturating_add(delay_us) <= newest {
                return Some(DelayedStart {
                    seq,
                    reaches_back: true,
                });
            }
            oldest_keyframe = Some(seq);
        }
        oldest_keyframe.map(|seq| DelayedStart {
            seq,
            reaches_back: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use tiercast_proto::{Block, ChannelId, Timestamp};

    const S: u64 = 1_000_000;

    /// Blocks every 100 ms (by origin time), a keyframe every second.
    fn feed(line: &mut DelayLine<u64>, seqs: std::ops::Range<u64>) -> Vec<u64> {
        let mut out = Vec::new();
        for seq in seqs {
            line.push(seq * S / 10, seq.is_multiple_of(10), seq);
            out.extend(std::iter::from_fn(|| line.pop_due()));
        }
        out
    }

    #[test]
    fn blocks_leave_exactly_the_delay_behind_live() {
        let mut line = DelayLine::new(3 * S, 1000);
        // Nothing leaves during the first 3 s of stream.
        assert!(feed(&mut line, 0..30).is_empty());
        // Then one block leaves per block arriving, 30 blocks (3 s) behind.
        assert_eq!(feed(&mut line, 30..31), vec![0]);
        assert_eq!(feed(&mut line, 31..40), (1..10).collect::<Vec<_>>());
        assert_eq!(line.len(), 30);
        assert_eq!(line.skipped(), 0);
    }

    #[test]
    fn the_line_starts_at_a_keyframe() {
        let mut line = DelayLine::new(S, 1000);
        let out = feed(&mut line, 5..40);
        assert_eq!(
            out.first(),
            Some(&10),
            "blocks 5..=9 precede the first keyframe"
        );
        assert_eq!(line.skipped(), 5);
    }

    #[test]
    fn a_full_line_skips_whole_gops_and_never_shortens_the_delay() {
        // 3 s of delay but room for 25 blocks (2.5 s): the line cannot hold it.
        let mut line = DelayLine::new(3 * S, 25);
        for seq in 0..200u64 {
            line.push(seq * S / 10, seq.is_multiple_of(10), seq);
            assert!(line.len() <= 25);
            while let Some(out) = line.pop_due() {
                assert!(seq - out >= 30, "{out} left at {seq}: less than 3 s behind");
            }
        }
        assert!(
            line.skipped() > 0 && line.skipped().is_multiple_of(10),
            "whole GOPs: {}",
            line.skipped()
        );
    }

    fn blk(seq: u64) -> Block {
        Block::new(
            ChannelId(1),
            seq,
            Timestamp(seq * S / 10),
            seq.is_multiple_of(10),
            Bytes::from_static(b"x"),
        )
    }

    #[test]
    fn a_delayed_viewer_starts_at_the_keyframe_the_delay_back() {
        let mut buffer = BlockBuffer::new(512);
        for seq in 0..100 {
            buffer.insert(blk(seq));
        }
        // Newest block cut at 9.9 s: 3 s back is 6.9 s, the keyframe before it is 6 s.
        let start = buffer.delayed_start(3 * S).unwrap();
        assert_eq!(
            start,
            DelayedStart {
                seq: 60,
                reaches_back: true
            }
        );
        // 20 s back is before the buffer's first block: its oldest keyframe, waiting.
        let start = buffer.delayed_start(20 * S).unwrap();
        assert_eq!(
            start,
            DelayedStart {
                seq: 0,
                reaches_back: false
            }
        );
        assert_eq!(BlockBuffer::new(8).delayed_start(S), None);
    }
}
