//! L2 rate limits on answering Measure: one token bucket per sender and one for
//! all senders. A flood is answered at the bounded rate; the rest is dropped and
//! counted. The per-sender table is bounded (idle buckets are forgotten first).

use std::collections::BTreeMap;
use tiercast_proto::{NodeId, Timestamp};

/// Per-sender buckets kept at most.
pub const MAX_TRACKED_SENDERS: usize = 4096;

#[derive(Clone, Copy, Debug)]
struct Bucket {
    /// Tokens × 10⁶ (µs resolution without floats).
    micro_tokens: u64,
    at: Timestamp,
}

impl Bucket {
    fn full(rate: u32, now: Timestamp) -> Self {
        Bucket {
            micro_tokens: rate as u64 * 1_000_000,
            at: now,
        }
    }

    /// Refills at `rate`/s up to a burst of `rate`, then takes one if it can.
    fn take(&mut self, rate: u32, now: Timestamp) -> bool {
        let cap = rate as u64 * 1_000_000;
        let dt = now.saturating_since(self.at);
        self.micro_tokens = (self.micro_tokens + dt * rate as u64).min(cap);
        self.at = now.max(self.at);
        if self.micro_tokens >= 1_000_000 {
            self.micro_tokens -= 1_000_000;
            true
        } else {
            false
        }
    }
}

#[derive(Debug)]
pub struct MeasureLimiter {
    per_peer: u32,
    total: u32,
    peers: BTreeMap<NodeId, Bucket>,
    all: Bucket,
    pub answered: u64,
    pub dropped: u64,
}

impl MeasureLimiter {
    pub fn new(per_peer: u32, total: u32) -> Self {
        MeasureLimiter {
            per_peer,
            total,
            peers: BTreeMap::new(),
            all: Bucket::full(total, Timestamp::ZERO),
            answered: 0,
            dropped: 0,
        }
    }

    /// Whether a Measure from `from` at `now` is answered.
    pub fn allow(&mut self, now: Timestamp, from: NodeId) -> bool {
        if self.peers.len() >= MAX_TRACKED_SENDERS && !self.peers.contains_key(&from) {
            let rate = self.per_peer;
            // Forget buckets that have refilled: they hold no state worth keeping.
            let cap = rate as u64 * 1_000_000;
            self.peers
                .retain(|_, b| b.micro_tokens + now.saturating_since(b.at) * (rate as u64) < cap);
            if self.peers.len() >= MAX_TRACKED_SENDERS {
                self.dropped += 1;
                return false;
            }
        }
        let peer = self
            .peers
            .entry(from)
            .or_insert_with(|| Bucket::full(self.per_peer, now));
        let mut peer_after = *peer;
        if !peer_after.take(self.per_peer, now) {
            *peer = peer_after;
            self.dropped += 1;
            return false;
        }
        if !self.all.take(self.total, now) {
            self.dropped += 1;
            return false;
        }
        *peer = peer_after;
        self.answered += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_from_one_sender_is_answered_at_its_rate() {
        let mut l = MeasureLimiter::new(20, 1000);
        let mut answered = 0;
        // 10 000 probes over 10 s from one sender (1000/s).
        for i in 0..10_000u64 {
            if l.allow(Timestamp(i * 1000), NodeId(9)) {
                answered += 1;
            }
        }
        // Burst 20 plus 20/s for 10 s.
        assert!((200..=221).contains(&answered), "answered {answered}");
        assert_eq!(l.dropped, 10_000 - answered);
    }

    #[test]
    fn many_senders_are_capped_overall() {
        let mut l = MeasureLimiter::new(20, 100);
        let mut answered = 0;
        // 5000 senders, one probe each, within 1 s.
        for i in 0..5000u64 {
            if l.allow(Timestamp(i * 200), NodeId(i as u32)) {
                answered += 1;
            }
        }
        assert!((100..=201).contains(&answered), "answered {answered}");
        assert!(l.peers.len() <= MAX_TRACKED_SENDERS);
    }

    #[test]
    fn polite_senders_are_all_answered() {
        let mut l = MeasureLimiter::new(20, 1000);
        for i in 0..100u64 {
            assert!(l.allow(Timestamp(i * 100_000), NodeId((i % 7) as u32)));
        }
        assert_eq!(l.dropped, 0);
    }
}
