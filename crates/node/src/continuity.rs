//! A protocol viewer's seq accounting over its whole run (V9, V10; the honest
//! `blocks_missing` of issue 10): the first seq it ever received, which seqs
//! arrived since, how many relay switches happened and the longest silence
//! between two new blocks. It survives relay switches and the channel being
//! dropped and watched again, so a gap across a switch is counted.
//!
//! Memory is bounded: a bitmap of the last [`WINDOW_SEQS`] seqs; a hole that
//! leaves the window is counted missing once, and a block that arrives after
//! its seq left the window is counted `too_late`, not received. So
//! `missing == last_seq − first_seq + 1 − received` always holds.

use std::collections::BTreeMap;
use tiercast_proto::{NodeId, Timestamp};

/// Seqs tracked one by one behind the highest seq received (128 bytes a channel:
/// the simulator runs many viewers; blocks come in order within a switch's backlog).
pub const WINDOW_SEQS: u64 = 1024;
const WORDS: usize = (WINDOW_SEQS / 64) as usize;

/// What one channel's accounting says now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContinuityReport {
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// Distinct seqs received in `first_seq..=last_seq`.
    pub received: u64,
    /// Seqs in `first_seq..=last_seq` never received (in time).
    pub missing: u64,
    pub duplicates: u64,
    /// Blocks older than the window or than the first seq (not counted received).
    pub too_late: u64,
    /// Times the relay delivering new blocks changed.
    pub relay_switches: u64,
    /// Longest time between two new blocks, after the first (ms).
    pub longest_gap_ms: u64,
}

/// The accounting of one channel.
#[derive(Clone, Debug)]
pub struct SeqContinuity {
    first: Option<u64>,
    highest: u64,
    /// Bit `s % WINDOW_SEQS` set: seq `s` (within the window) was received.
    bits: [u64; WORDS],
    received: u64,
    /// Holes that left the window.
    settled_missing: u64,
    duplicates: u64,
    too_late: u64,
    relay: Option<NodeId>,
    relay_switches: u64,
    last_new_at: Option<Timestamp>,
    longest_gap_us: u64,
}

impl Default for SeqContinuity {
    fn default() -> Self {
        SeqContinuity {
            first: None,
            highest: 0,
            bits: [0; WORDS],
            received: 0,
            settled_missing: 0,
            duplicates: 0,
            too_late: 0,
            relay: None,
            relay_switches: 0,
            last_new_at: None,
            longest_gap_us: 0,
        }
    }
}

impl SeqContinuity {
    fn bit(seq: u64) -> (usize, u64) {
        let i = seq % WINDOW_SEQS;
        ((i / 64) as usize, 1u64 << (i % 64))
    }

    fn is_set(&self, seq: u64) -> bool {
        let (w, m) = Self::bit(seq);
        self.bits[w] & m != 0
    }

    fn set(&mut self, seq: u64, on: bool) {
        let (w, m) = Self::bit(seq);
        if on {
            self.bits[w] |= m;
        } else {
            self.bits[w] &= !m;
        }
    }

    /// Lowest seq still tracked one by one.
    fn window_start(&self) -> u64 {
        let first = self.first.unwrap_or(0);
        self.highest.saturating_sub(WINDOW_SEQS - 1).max(first)
    }

    /// Block `seq` arrived from `from` at `now` (after its signature was checked).
    pub fn block(&mut self, now: Timestamp, from: NodeId, seq: u64) {
        let Some(first) = self.first else {
            self.first = Some(seq);
            self.highest = seq;
            self.set(seq, true);
            self.new_block(now, from);
            return;
        };
        if seq < first || seq < self.window_start() {
            self.too_late += 1;
            return;
        }
        if seq <= self.highest {
            if self.is_set(seq) {
                self.duplicates += 1;
            } else {
                self.set(seq, true);
                self.new_block(now, from);
            }
            return;
        }
        self.advance_to(seq);
        self.set(seq, true);
        self.new_block(now, from);
    }

    /// Moves the highest seq to `seq`, settling the holes that leave the window.
    fn advance_to(&mut self, seq: u64) {
        let old_start = self.window_start();
        let new_start = seq.saturating_sub(WINDOW_SEQS - 1).max(old_start);
        if new_start > self.highest {
            // The whole window leaves: its holes, and every seq between, are missing.
            let held = (old_start..=self.highest)
                .filter(|s| !self.is_set(*s))
                .count() as u64;
            self.settled_missing += held + (new_start - self.highest - 1);
            self.bits.fill(0);
        } else {
            for s in old_start..new_start {
                if !self.is_set(s) {
                    self.settled_missing += 1;
                }
                self.set(s, false);
            }
        }
        self.highest = seq;
    }

    fn new_block(&mut self, now: Timestamp, from: NodeId) {
        self.received += 1;
        if let Some(t) = self.last_new_at {
            self.longest_gap_us = self.longest_gap_us.max(now.saturating_since(t));
        }
        self.last_new_at = Some(now);
        if self.relay.is_some_and(|r| r != from) {
            self.relay_switches += 1;
        }
        self.relay = Some(from);
    }

    /// The next seq this viewer needs (where a new relay should start).
    pub fn resume_seq(&self) -> Option<u64> {
        self.first.map(|_| self.highest + 1)
    }

    /// When the last new block arrived.
    pub fn last_new_at(&self) -> Option<Timestamp> {
        self.last_new_at
    }

    pub fn report(&self) -> ContinuityReport {
        let Some(first) = self.first else {
            return ContinuityReport::default();
        };
        let lo = self.window_start();
        let holes = (lo..=self.highest).filter(|s| !self.is_set(*s)).count() as u64;
        ContinuityReport {
            first_seq: Some(first),
            last_seq: Some(self.highest),
            received: self.received,
            missing: self.settled_missing + holes,
            duplicates: self.duplicates,
            too_late: self.too_late,
            relay_switches: self.relay_switches,
            longest_gap_ms: self.longest_gap_us / 1000,
        }
    }
}

/// Every channel a protocol viewer watched, by name (a channel's id may change
/// when it is watched again), at most `limit` of them.
#[derive(Clone, Debug, Default)]
pub struct Continuity {
    channels: BTreeMap<String, SeqContinuity>,
}

impl Continuity {
    /// Block `seq` of channel `name` arrived; a channel beyond `limit` is not tracked.
    pub fn block(&mut self, now: Timestamp, name: &str, from: NodeId, seq: u64, limit: usize) {
        if let Some(c) = self.channels.get_mut(name) {
            c.block(now, from, seq);
        } else if self.channels.len() < limit {
            let mut c = SeqContinuity::default();
            c.block(now, from, seq);
            self.channels.insert(name.to_string(), c);
        }
    }

    pub fn get(&self, name: &str) -> Option<&SeqContinuity> {
        self.channels.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &SeqContinuity)> {
        self.channels.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(ms: u64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    #[test]
    fn a_window_jump_counts_every_seq_between() {
        let mut c = SeqContinuity::default();
        c.block(at(0), NodeId(1), 10);
        c.block(at(1), NodeId(1), 12);
        c.block(at(2), NodeId(1), 12 + 3 * WINDOW_SEQS);
        let r = c.report();
        assert_eq!(r.received, 3);
        assert_eq!(r.missing, 3 * WINDOW_SEQS + 3 - 3);
        assert_eq!(
            r.missing,
            r.last_seq.unwrap() - r.first_seq.unwrap() + 1 - r.received
        );
        // A block whose seq left the window is too late, not received.
        c.block(at(3), NodeId(1), 11);
        assert_eq!(c.report().too_late, 1);
        assert_eq!(c.report().received, 3);
    }

    proptest! {
        /// Any arrival order with duplicates keeps missing == span − received, and
        /// with every seq delivered inside the window nothing is missing.
        #[test]
        fn missing_is_the_span_less_the_received(
            seqs in proptest::collection::vec(0u64..30_000, 1..400),
        ) {
            let mut c = SeqContinuity::default();
            for (i, s) in seqs.iter().enumerate() {
                c.block(at(i as u64), NodeId((s % 3) as u32), *s);
            }
            let r = c.report();
            prop_assert_eq!(
                r.missing,
                r.last_seq.unwrap() - r.first_seq.unwrap() + 1 - r.received
            );
            prop_assert_eq!(
                r.received + r.duplicates + r.too_late,
                seqs.len() as u64
            );
        }

        /// In-order delivery with seqs dropped counts exactly the dropped ones.
        #[test]
        fn dropped_seqs_are_counted(drop in proptest::collection::btree_set(1u64..20_000, 0..300)) {
            let mut c = SeqContinuity::default();
            for s in 0..20_000u64 {
                if !drop.contains(&s) { c.block(at(s), NodeId(1), s); }
            }
            let highest = (0..20_000u64).rev().find(|s| !drop.contains(s)).unwrap();
            let expected = drop.iter().filter(|&&s| s < highest).count() as u64;
            prop_assert_eq!(c.report().missing, expected);
        }
    }
}
