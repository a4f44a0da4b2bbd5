//! The per-channel block buffer (V9): a ring indexed by `seq mod capacity`. The
//! inbound side may receive the same block from several parents; duplicates are
//! dropped by seq. The outbound side serves children and viewers from it: a new
//! viewer starts at the latest keyframe, a switching child resumes at a seq.
//!
//! Missing blocks are counted when a hole (a seq never received between the first
//! and the highest seq seen) leaves the window, and reported with the holes still
//! inside it.

use tiercast_proto::Block;

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum InsertOutcome {
    Stored,
    Duplicate,
    /// Older than everything the window still holds.
    TooOld,
}

#[derive(Debug)]
pub struct BlockBuffer {
    slots: Vec<Option<Block>>,
    first_seq: Option<u64>,
    highest: Option<u64>,
    missing_evicted: u64,
    duplicates: u64,
    stored: u64,
    bytes_stored: u64,
}

impl BlockBuffer {
    pub fn new(capacity: usize) -> Self {
        assert!(capacity > 0, "buffer capacity must be positive");
        BlockBuffer {
            slots: vec![None; capacity],
            first_seq: None,
            highest: None,
            missing_evicted: 0,
            duplicates: 0,
            stored: 0,
            bytes_stored: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    fn slot(&self, seq: u64) -> usize {
        (seq % self.slots.len() as u64) as usize
    }

    /// Lowest seq the window can hold now.
    fn window_start(&self) -> u64 {
        match self.highest {
            Some(h) => h.saturating_sub(self.slots.len() as u64 - 1),
            None => 0,
        }
    }

    pub fn insert(&mut self, block: Block) -> InsertOutcome {
        let seq = block.seq;
        match self.highest {
            None => {
                self.first_seq = Some(seq);
                self.highest = Some(seq);
            }
            Some(h) => {
                if seq < self.window_start() || Some(seq) < self.first_seq {
                    return InsertOutcome::TooOld;
                }
                if seq > h {
                    // Advance the window; holes that leave it are counted as missing.
                    let old_start = self.window_start().max(self.first_seq.unwrap_or(0));
                    let new_start = seq.saturating_sub(self.slots.len() as u64 - 1);
                    let mut s = old_start;
                    while s < new_start {
                        if s > h {
                            // Never received and already outside the window.
                            self.missing_evicted += new_start - s;
                            break;
                        }
                        let idx = self.slot(s);
                        if !matches!(&self.slots[idx], Some(b) if b.seq == s) {
                            self.missing_evicted += 1;
                        }
                        self.slots[idx] = None;
                        s += 1;
                    }
                    self.highest = Some(seq);
                }
            }
        }
        let idx = self.slot(seq);
        if matches!(&self.slots[idx], Some(b) if b.seq == seq) {
            self.duplicates += 1;
            return InsertOutcome::Duplicate;
        }
        self.bytes_stored += block.payload.len() as u64;
        self.stored += 1;
        self.slots[idx] = Some(block);
        InsertOutcome::Stored
    }

    pub fn get(&self, seq: u64) -> Option<&Block> {
        match &self.slots[self.slot(seq)] {
            Some(b) if b.seq == seq => Some(b),
            _ => None,
        }
    }

    pub fn highest_seq(&self) -> Option<u64> {
        self.highest
    }

    pub fn first_seq(&self) -> Option<u64> {
        self.first_seq
    }

    /// Lowest seq held now.
    pub fn lowest_held(&self) -> Option<u64> {
        let h = self.highest?;
        (self.window_start().max(self.first_seq.unwrap_or(0))..=h).find(|&s| self.get(s).is_some())
    }

    /// The most recent keyframe block still held.
    pub fn latest_keyframe(&self) -> Option<u64> {
        let h = self.highest?;
        let lo = self.window_start().max(self.first_seq.unwrap_or(0));
        (lo..=h)
            .rev()
            .find(|&s| self.get(s).is_some_and(|b| b.is_keyframe()))
    }

    /// Where a child asking for blocks from `from` resumes: at `from` when the
    /// window reaches back to it or nothing was ever evicted (the child lacks only
    /// what this buffer has after it — holes such as a restarted origin's downtime
    /// are skipped, not a reason to drop the backlog), `None` when the window has
    /// moved past it (the caller starts it at a keyframe instead).
    pub fn resume_from(&self, from: u64) -> Option<u64> {
        let start = self.window_start();
        let nothing_evicted = self.first_seq.is_some_and(|f| f >= start);
        (from >= start || nothing_evicted).then_some(from)
    }

    /// The first seq held whose block was cut at most `max_age_us` before the
    /// newest one (by the origin's clock): where a resuming child's backlog is cut
    /// off (a live player is past older blocks, and they would delay the current).
    pub fn newer_than(&self, max_age_us: u64) -> Option<u64> {
        let hi = self.highest?;
        let floor = self.get(hi)?.origin_time_us.saturating_sub(max_age_us);
        let lo = self.window_start().max(self.first_seq.unwrap_or(0));
        (lo..=hi).find(|s| self.get(*s).is_some_and(|b| b.origin_time_us >= floor))
    }

    /// Blocks held from `from` to the highest, in seq order (holes skipped).
    pub fn blocks_from(&self, from: u64) -> impl Iterator<Item = &Block> + '_ {
        let hi = self.highest.map(|h| h + 1).unwrap_or(0);
        let lo = from.max(self.window_start());
        (lo..hi).filter_map(move |s| self.get(s))
    }

    /// Blocks held now.
    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.highest.is_none()
    }

    /// Holes that left the window plus holes inside it.
    pub fn missing_total(&self) -> u64 {
        let Some(h) = self.highest else { return 0 };
        let lo = self.window_start().max(self.first_seq.unwrap_or(0));
        let holes = (lo..=h).filter(|&s| self.get(s).is_none()).count() as u64;
        self.missing_evicted + holes
    }

    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    pub fn stored(&self) -> u64 {
        self.stored
    }

    pub fn bytes_stored(&self) -> u64 {
        self.bytes_stored
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use proptest::prelude::*;
    use tiercast_proto::{ChannelId, Timestamp};

    fn blk(seq: u64, key: bool) -> Block {
        Block::new(
            ChannelId(1),
            seq,
            Timestamp(seq),
            key,
            Bytes::from(vec![seq as u8; 4]),
        )
    }

    #[test]
    fn duplicates_are_dropped() {
        let mut b = BlockBuffer::new(8);
        assert_eq!(b.insert(blk(0, true)), InsertOutcome::Stored);
        assert_eq!(b.insert(blk(0, true)), InsertOutcome::Duplicate);
        assert_eq!(b.insert(blk(1, false)), InsertOutcome::Stored);
        assert_eq!(b.duplicates(), 1);
        assert_eq!(b.missing_total(), 0);
    }

    #[test]
    fn holes_are_counted_when_they_leave_the_window() {
        let mut b = BlockBuffer::new(4);
        b.insert(blk(10, true));
        b.insert(blk(12, false));
        assert_eq!(b.missing_total(), 1);
        b.insert(blk(20, false));
        // 11 missing, 13..=16 missing (left the window), 17..=19 holes inside.
        assert_eq!(b.missing_total(), 1 + 4 + 3);
        assert_eq!(b.insert(blk(11, false)), InsertOutcome::TooOld);
    }

    #[test]
    fn latest_keyframe_and_resume() {
        let mut b = BlockBuffer::new(16);
        for s in 0..10 {
            b.insert(blk(s, s.is_multiple_of(4)));
        }
        assert_eq!(b.latest_keyframe(), Some(8));
        let seqs: Vec<u64> = b.blocks_from(6).map(|x| x.seq).collect();
        assert_eq!(seqs, vec![6, 7, 8, 9]);
        assert_eq!(b.lowest_held(), Some(0));
    }

    #[test]
    fn a_resume_skips_holes_but_not_a_window_that_moved_on() {
        // A restarted origin's downtime: 10..=13 never existed here.
        let mut b = BlockBuffer::new(16);
        for s in (0..10).chain(14..18) {
            b.insert(blk(s, s.is_multiple_of(4)));
        }
        assert_eq!(b.resume_from(10), Some(10));
        let seqs: Vec<u64> = b.blocks_from(10).map(|x| x.seq).collect();
        assert_eq!(seqs, vec![14, 15, 16, 17]);
        // A caught-up child gets nothing again.
        assert_eq!(b.resume_from(18), Some(18));
        assert_eq!(b.blocks_from(18).count(), 0);
        // A buffer that started after the child's seq sends all it has.
        let mut late = BlockBuffer::new(16);
        for s in 30..34 {
            late.insert(blk(s, s == 30));
        }
        assert_eq!(late.resume_from(20), Some(20));
        assert_eq!(late.blocks_from(20).count(), 4);
        // Once the window has moved past the seq, the caller falls back.
        for s in 34..60 {
            late.insert(blk(s, false));
        }
        assert_eq!(late.resume_from(20), None);
    }

    #[test]
    fn a_backlog_is_cut_to_the_newest_blocks_by_origin_time() {
        // Block s cut at s µs: blocks at most 3 µs older than the newest (9).
        let mut b = BlockBuffer::new(16);
        for s in (0..4).chain(6..10) {
            b.insert(blk(s, false));
        }
        assert_eq!(b.newer_than(3), Some(6));
        assert_eq!(b.newer_than(1), Some(8));
        assert_eq!(b.newer_than(100), Some(0));
        assert_eq!(BlockBuffer::new(8).newer_than(3), None);
    }

    proptest! {
        /// Delivering every seq of a range in any order, with duplicates, loses
        /// nothing when the range fits the window.
        #[test]
        fn any_order_with_duplicates_loses_nothing(mut order in proptest::collection::vec(0u64..32, 0..200)) {
            let mut b = BlockBuffer::new(64);
            order.extend(0..32);
            for s in order { b.insert(blk(s, false)); }
            prop_assert_eq!(b.missing_total(), 0);
            prop_assert_eq!(b.stored(), 32 - b.first_seq().unwrap());
            prop_assert_eq!(b.highest_seq(), Some(31));
        }

        /// In-order delivery with some seqs dropped counts exactly the dropped ones.
        #[test]
        fn dropped_seqs_are_counted(drop in proptest::collection::btree_set(1u64..500, 0..50)) {
            let mut b = BlockBuffer::new(16);
            for s in 0..500u64 {
                if !drop.contains(&s) { b.insert(blk(s, false)); }
            }
            let highest = (0..500u64).rev().find(|s| !drop.contains(s)).unwrap();
            let expected = drop.iter().filter(|&&s| s < highest).count() as u64;
            prop_assert_eq!(b.missing_total(), expected);
        }
    }
}
