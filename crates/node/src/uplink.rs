//! The uplink cap (C4) and its pacing, in the core so that the network driver and
//! the simulator run the same rule. A peer that declared an uplink
//! (`NodeConfig.uplink_kbps`, sent at registration and booked by the coordinator)
//! sends no more than that: every block bound for another node waits in that
//! node's queue, and one token bucket at the declared rate releases the oldest
//! waiting block (over all children, so each sees blocks in the order they were
//! made). Everything else the node sends (control, shards) leaves at once but is
//! charged to the same bucket, so the queue below the pacer (the socket, the
//! simulator's uplink) stays short and control never waits behind seconds of media.
//!
//! A late block is worth less than the next one: a queue holds at most
//! `max_queue_blocks` (one more drops that queue's oldest), and a block that waited
//! `max_wait_ms` is dropped when it reaches the head — both counted. The child pulls
//! what it misses from another holder (D3) while it is still useful. A queue that
//! was offered less than its rate over the last half second to a second drains a
//! one-off burst (the children of a healed partition logging in again with their
//! backlogs) rather than a steady overload: while it drains, blocks may wait twice
//! as long. Over
//! seeds 31..42 (`scripts/robust-sweep.py`) that took partition-under-peers after
//! the heal from worst 0.9949 / mean 0.9974 to worst 0.9966 / mean 0.9981, and a
//! full recomputation's worst second (members) from 0.9911 to 0.9999; a flat 2 s
//! for every block had cost a tight population (Σu 1.25, seed 37) 0.9937 where
//! the overload needs the 1 s.
//!
//! Sans-IO: the node [`UplinkPacer::push`]es blocks and releases what
//! [`UplinkPacer::poll_send`] lets out; its [`UplinkPacer::poll_timeout`] is one of
//! the node's timers.

use std::collections::{BTreeMap, VecDeque};
use tiercast_proto::codec::block_frame_len;
use tiercast_proto::{Block, NodeId, Timestamp};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UplinkConfig {
    pub rate_kbps: u32,
    /// Bucket depth: bytes that may leave at once after an idle spell, as time at
    /// the rate. A block larger than the bucket leaves when the bucket is full.
    pub burst_ms: u64,
    /// Blocks queued per child at most.
    pub max_queue_blocks: usize,
    /// A block that waited this long is dropped rather than sent late; 0: never.
    pub max_wait_ms: u64,
}

impl UplinkConfig {
    pub fn new(rate_kbps: u32) -> Self {
        UplinkConfig {
            rate_kbps,
            burst_ms: 100,
            max_queue_blocks: 64,
            max_wait_ms: 0,
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.rate_kbps == 0 {
            return Err("uplink rate must be > 0 kbit/s".into());
        }
        if self.burst_ms == 0 || self.burst_ms > 10_000 {
            return Err(format!(
                "uplink burst must be 1..=10000 ms, got {}",
                self.burst_ms
            ));
        }
        if self.max_queue_blocks == 0 {
            return Err("uplink max_queue_blocks must be >= 1".into());
        }
        if self.max_wait_ms > 60_000 {
            return Err(format!(
                "uplink_max_wait_ms must be 0 (off) or <= 60000, got {}",
                self.max_wait_ms
            ));
        }
        Ok(())
    }
}

/// Counters of the pacer (bytes are frame bytes on the wire: length, header, payload).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct UplinkStats {
    pub rate_kbps: u32,
    pub sent_blocks: u64,
    pub sent_bytes: u64,
    /// Oldest blocks dropped because a child's queue was full.
    pub dropped_blocks: u64,
    pub dropped_bytes: u64,
    /// Blocks dropped because they waited `max_wait_ms` (they would arrive late).
    pub stale_blocks: u64,
    pub stale_bytes: u64,
    /// Blocks discarded because their child left.
    pub discarded_blocks: u64,
    pub queued_blocks: u64,
    /// Bytes sent beside the paced blocks (control, shards) and charged to the bucket.
    pub charged_bytes: u64,
    /// Longest time a sent block waited in its queue (µs).
    pub max_wait_us: u64,
}

#[derive(Debug)]
struct Queued {
    order: u64,
    at: Timestamp,
    block: Block,
}

/// A token bucket over per-child queues.
#[derive(Debug)]
pub struct UplinkPacer {
    cfg: UplinkConfig,
    bytes_per_s: u64,
    burst_bytes: i64,
    /// Bytes that may be sent now; negative after a block larger than what was left.
    tokens: i64,
    refilled_at: Timestamp,
    /// Sub-byte remainder of the last refill (in byte·µs), so slow rates do not stall.
    remainder: u64,
    queues: BTreeMap<NodeId, VecDeque<Queued>>,
    next_order: u64,
    stats: UplinkStats,
    /// Bytes offered to the uplink so far (blocks pushed, bytes charged).
    offered: u64,
    /// `offered` sampled every [`TREND_MS`]: the latest sample, the one before.
    trend: [(Timestamp, u64); 2],
}

/// How often the bytes offered are sampled to tell a draining burst from overload.
const TREND_MS: u64 = 500;

/// While the queue drains, a block may wait this many times `max_wait_ms`.
const DRAINING_WAIT_FACTOR: u64 = 2;

impl UplinkPacer {
    pub fn new(cfg: UplinkConfig, now: Timestamp) -> Self {
        let bytes_per_s = u64::from(cfg.rate_kbps.max(1)) * 1000 / 8;
        let burst_bytes = (bytes_per_s * cfg.burst_ms.max(1) / 1000).max(1) as i64;
        UplinkPacer {
            stats: UplinkStats {
                rate_kbps: cfg.rate_kbps,
                ..Default::default()
            },
            cfg,
            bytes_per_s,
            burst_bytes,
            tokens: burst_bytes,
            refilled_at: now,
            remainder: 0,
            queues: BTreeMap::new(),
            next_order: 0,
            offered: 0,
            trend: [(now, 0); 2],
        }
    }

    pub fn stats(&self) -> UplinkStats {
        self.stats
    }

    /// Brings the bucket to `now` (the node calls it as every input arrives, so a
    /// block pushed during that input is stamped with the input's time).
    pub fn advance(&mut self, now: Timestamp) {
        self.refill(now);
    }

    /// Queues a block for `child`, stamped with the time of the last
    /// [`UplinkPacer::advance`]; a full queue loses its oldest block.
    pub fn push_now(&mut self, child: NodeId, block: Block) {
        let now = self.refilled_at;
        self.push(now, child, block);
    }

    /// Queues a block for `child`; a full queue loses its oldest block.
    pub fn push(&mut self, now: Timestamp, child: NodeId, block: Block) {
        let q = self.queues.entry(child).or_default();
        if q.len() >= self.cfg.max_queue_blocks {
            if let Some(old) = q.pop_front() {
                self.stats.dropped_blocks += 1;
                self.stats.dropped_bytes += block_frame_len(&old.block) as u64;
                self.stats.queued_blocks -= 1;
            }
        }
        self.offered += block_frame_len(&block) as u64;
        q.push_back(Queued {
            order: self.next_order,
            at: now,
            block,
        });
        self.next_order += 1;
        self.stats.queued_blocks += 1;
    }

    /// Bytes sent beside the queues (they leave at once): the bucket pays for them.
    pub fn charge(&mut self, bytes: usize) {
        self.tokens -= bytes as i64;
        self.offered += bytes as u64;
        self.stats.charged_bytes += bytes as u64;
    }

    /// The child is gone: what waited for it is dropped.
    pub fn forget(&mut self, child: NodeId) {
        if let Some(q) = self.queues.remove(&child) {
            self.stats.discarded_blocks += q.len() as u64;
            self.stats.queued_blocks -= q.len() as u64;
        }
    }

    /// The next block the bucket lets out now, oldest first over all children.
    pub fn poll_send(&mut self, now: Timestamp) -> Option<(NodeId, Block)> {
        self.refill(now);
        self.drop_stale(now);
        let (child, size) = self.head()?;
        if self.tokens < size.min(self.burst_bytes) {
            return None;
        }
        let item = self.pop(child);
        self.tokens -= size;
        self.stats.sent_blocks += 1;
        self.stats.sent_bytes += size as u64;
        self.stats.max_wait_us = self.stats.max_wait_us.max(now.saturating_since(item.at));
        Some((child, item.block))
    }

    /// When the bucket will let the oldest waiting block out.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let (_, size) = self.head()?;
        let need = size.min(self.burst_bytes) - self.tokens;
        if need <= 0 {
            return Some(self.refilled_at);
        }
        let us = (need as u64 * 1_000_000).div_ceil(self.bytes_per_s);
        Some(Timestamp(self.refilled_at.as_micros() + us))
    }

    /// Drops the oldest blocks while they waited `max_wait_ms` or more.
    fn drop_stale(&mut self, now: Timestamp) {
        if self.cfg.max_wait_ms == 0 {
            return;
        }
        let draining = self.draining(now);
        let factor = if draining { DRAINING_WAIT_FACTOR } else { 1 };
        let max_us = self.cfg.max_wait_ms * 1000 * factor;
        while let Some((child, _)) = self.head() {
            let waited = self.queues[&child]
                .front()
                .map_or(0, |f| now.saturating_since(f.at));
            if waited < max_us {
                return;
            }
            let item = self.pop(child);
            self.stats.stale_blocks += 1;
            self.stats.stale_bytes += block_frame_len(&item.block) as u64;
        }
    }

    /// Whether less was offered over the last half second to a second than the
    /// rate lets out: the queue drains a one-off burst (children logging in again
    /// with their backlogs), not a steady overload, and its blocks may wait longer.
    fn draining(&mut self, now: Timestamp) -> bool {
        if now.saturating_since(self.trend[0].0) >= TREND_MS * 1000 {
            self.trend = [(now, self.offered), self.trend[0]];
        }
        let (since, base) = self.trend[1];
        let us = now.saturating_since(since);
        us > 0 && (self.offered - base) * 1_000_000 < self.bytes_per_s * us
    }

    /// Takes the head block of `child`'s queue (which [`UplinkPacer::head`] found).
    fn pop(&mut self, child: NodeId) -> Queued {
        let q = self.queues.get_mut(&child).expect("head() found it");
        let item = q.pop_front().expect("head() found it");
        if q.is_empty() {
            self.queues.remove(&child);
        }
        self.stats.queued_blocks -= 1;
        item
    }

    /// The child whose head block is the oldest, and that block's size.
    fn head(&self) -> Option<(NodeId, i64)> {
        self.queues
            .iter()
            .filter_map(|(c, q)| q.front().map(|f| (f.order, *c, block_frame_len(&f.block))))
            .min()
            .map(|(_, c, size)| (c, size as i64))
    }

    fn refill(&mut self, now: Timestamp) {
        let elapsed = now.saturating_since(self.refilled_at);
        if elapsed == 0 {
            return;
        }
        self.refilled_at = now;
        // Ten seconds fill any bucket (burst_ms ≤ 10 s) and keep the product in range.
        let elapsed = elapsed.min(10_000_000);
        let total = elapsed * self.bytes_per_s + self.remainder;
        let add = (total / 1_000_000) as i64;
        self.remainder = total % 1_000_000;
        self.tokens = (self.tokens + add).min(self.burst_bytes);
        if self.tokens == self.burst_bytes {
            self.remainder = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use tiercast_proto::ChannelId;

    const HEAD: usize = 4 + 2 + tiercast_proto::codec::BLOCK_HEADER_LEN;

    fn blk(seq: u64, payload: usize) -> Block {
        Block::new(
            ChannelId(1),
            seq,
            Timestamp(0),
            false,
            Bytes::from(vec![0u8; payload]),
        )
    }

    /// Sends everything the pacer lets out until `end`, waking when it asks.
    fn run(p: &mut UplinkPacer, from: Timestamp, end: Timestamp) -> Vec<(Timestamp, NodeId, u64)> {
        let mut sent = Vec::new();
        let mut now = from;
        loop {
            while let Some((c, b)) = p.poll_send(now) {
                sent.push((now, c, b.seq));
            }
            match p.poll_timeout() {
                Some(t) if t <= end => now = t.max(now),
                _ => return sent,
            }
        }
    }

    #[test]
    fn the_average_rate_is_the_declared_one() {
        // 800 kbit/s = 100 000 B/s; blocks of 10 000 B on the wire.
        let mut p = UplinkPacer::new(UplinkConfig::new(800), Timestamp(0));
        for s in 0..40 {
            p.push(Timestamp(0), NodeId(7), blk(s, 10_000 - HEAD));
        }
        let sent = run(&mut p, Timestamp(0), Timestamp::from_secs(100));
        assert_eq!(sent.len(), 40);
        // The bucket (10 000 B) lets the first out at once; 39 more take 3.9 s.
        let last = sent.last().unwrap().0;
        assert_eq!(last, Timestamp::from_millis(3900));
        assert_eq!(p.stats().sent_bytes, 400_000);
        assert_eq!(p.stats().queued_blocks, 0);
    }

    #[test]
    fn children_are_served_oldest_block_first() {
        let mut p = UplinkPacer::new(UplinkConfig::new(80), Timestamp(0));
        for s in 0..6 {
            let child = NodeId(1 + (s % 3) as u32);
            p.push(Timestamp(0), child, blk(s, 100));
        }
        let sent = run(&mut p, Timestamp(0), Timestamp::from_secs(60));
        let seqs: Vec<u64> = sent.iter().map(|(_, _, s)| *s).collect();
        assert_eq!(seqs, vec![0, 1, 2, 3, 4, 5]);
        let children: Vec<u32> = sent.iter().map(|(_, c, _)| c.0).collect();
        assert_eq!(children, vec![1, 2, 3, 1, 2, 3]);
    }

    #[test]
    fn a_full_queue_drops_its_oldest_block_and_counts_it() {
        let mut cfg = UplinkConfig::new(8);
        cfg.max_queue_blocks = 4;
        let mut p = UplinkPacer::new(cfg, Timestamp(0));
        for s in 0..10 {
            p.push(Timestamp(0), NodeId(1), blk(s, 500));
        }
        p.push(Timestamp(0), NodeId(2), blk(100, 500));
        let st = p.stats();
        assert_eq!(st.dropped_blocks, 6);
        assert_eq!(st.queued_blocks, 5);
        let sent = run(&mut p, Timestamp(0), Timestamp::from_secs(3600));
        let seqs: Vec<u64> = sent.iter().map(|(_, _, s)| *s).collect();
        assert_eq!(seqs, vec![6, 7, 8, 9, 100], "the newest four of child 1");
    }

    #[test]
    fn a_block_larger_than_the_bucket_still_leaves_and_the_debt_is_paid() {
        // 8 kbit/s = 1000 B/s, bucket 100 B; a 5000 B block.
        let mut p = UplinkPacer::new(UplinkConfig::new(8), Timestamp(0));
        p.push(Timestamp(0), NodeId(1), blk(0, 5000 - HEAD));
        p.push(Timestamp(0), NodeId(1), blk(1, 100 - HEAD));
        let sent = run(&mut p, Timestamp(0), Timestamp::from_secs(60));
        assert_eq!(sent[0].0, Timestamp(0));
        // The debt of 4900 B plus the next 100 B take 5 s.
        assert_eq!(sent[1].0, Timestamp::from_secs(5));
    }

    #[test]
    fn a_child_that_leaves_takes_nothing_more() {
        let mut p = UplinkPacer::new(UplinkConfig::new(8), Timestamp(0));
        for s in 0..3 {
            p.push(Timestamp(0), NodeId(1), blk(s, 400));
            p.push(Timestamp(0), NodeId(2), blk(10 + s, 400));
        }
        p.forget(NodeId(1));
        let sent = run(&mut p, Timestamp(0), Timestamp::from_secs(60));
        assert!(sent.iter().all(|(_, c, _)| *c == NodeId(2)));
        assert_eq!(p.stats().discarded_blocks, 3);
        assert_eq!(p.poll_timeout(), None);
    }

    #[test]
    fn a_slow_rate_does_not_stall_on_rounding() {
        // 1 kbit/s = 125 B/s: refills of a few µs each must add up.
        let mut p = UplinkPacer::new(UplinkConfig::new(1), Timestamp(0));
        p.push(Timestamp(0), NodeId(1), blk(0, 100));
        p.push(Timestamp(0), NodeId(1), blk(1, 100));
        let mut now = Timestamp(0);
        let mut sent = 0;
        for _ in 0..2_000_000 {
            now = Timestamp(now.as_micros() + 7);
            while p.poll_send(now).is_some() {
                sent += 1;
            }
            if sent == 2 {
                break;
            }
        }
        assert_eq!(sent, 2);
        assert!(now < Timestamp::from_secs(5));
    }

    #[test]
    fn a_block_that_waited_too_long_is_dropped_not_sent_late() {
        // 800 kbit/s = 100 000 B/s, blocks of 10 000 B: one leaves every 100 ms.
        let mut cfg = UplinkConfig::new(800);
        cfg.max_wait_ms = 450;
        let mut p = UplinkPacer::new(cfg, Timestamp(0));
        for s in 0..10 {
            p.push(Timestamp(0), NodeId(1), blk(s, 10_000 - HEAD));
        }
        let sent = run(&mut p, Timestamp(0), Timestamp::from_secs(10));
        // Blocks 0..4 leave at 0, 100, 200, 300, 400 ms; the rest waited 450 ms.
        let seqs: Vec<u64> = sent.iter().map(|(_, _, s)| *s).collect();
        assert_eq!(seqs, vec![0, 1, 2, 3, 4]);
        assert!(sent
            .iter()
            .all(|(t, _, _)| *t < Timestamp::from_millis(450)));
        let st = p.stats();
        assert_eq!((st.stale_blocks, st.stale_bytes), (5, 50_000));
        assert_eq!(st.queued_blocks, 0);
        assert_eq!(p.poll_timeout(), None, "nothing left to wait for");
    }

    /// Pushes block `seq` to child 1 at `at_ms` for each `(seq, at_ms)`, sending
    /// what the pacer lets out meanwhile until `end_ms`; the waits (ms) of the
    /// blocks sent.
    fn offer(p: &mut UplinkPacer, pushes: &[(u64, u64)], end_ms: u64) -> Vec<u64> {
        let mut waits = Vec::new();
        let mut next = 0;
        let mut now = Timestamp(0);
        loop {
            while next < pushes.len() && Timestamp::from_millis(pushes[next].1) <= now {
                p.push(now, NodeId(1), blk(pushes[next].0, 10_000 - HEAD));
                next += 1;
            }
            while let Some((_, b)) = p.poll_send(now) {
                let pushed = pushes.iter().find(|(s, _)| *s == b.seq).expect("pushed").1;
                waits.push(now.as_micros() / 1000 - pushed);
            }
            let due_push = pushes.get(next).map(|(_, at)| Timestamp::from_millis(*at));
            let t = match (p.poll_timeout(), due_push) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => match a.or(b) {
                    Some(t) => t,
                    None => return waits,
                },
            };
            if t > Timestamp::from_millis(end_ms) {
                return waits;
            }
            now = t.max(now);
        }
    }

    #[test]
    fn a_draining_burst_may_wait_longer_than_a_steady_overload() {
        // 800 kbit/s: one 10 000 B block leaves every 100 ms; at most 1 s waits.
        let cfg = UplinkConfig {
            max_wait_ms: 1000,
            ..UplinkConfig::new(800)
        };
        // A burst of 15 blocks (1.5 s of the uplink), then a block every 125 ms
        // (80 % of the rate): the queue shrinks by 20 ms a second.
        let burst: Vec<(u64, u64)> = (0..15)
            .map(|s| (s, 0))
            .chain((15..55).map(|s| (s, (s - 14) * 125)))
            .collect();
        let mut p = UplinkPacer::new(cfg.clone(), Timestamp(0));
        let waits = offer(&mut p, &burst, 20_000);
        assert_eq!(
            p.stats().stale_blocks,
            0,
            "the burst drains: nothing dropped"
        );
        assert_eq!(waits.len(), 55);
        let longest = *waits.iter().max().expect("sent");
        assert!(longest > 1000 && longest < 2000, "waited {longest} ms");
        // Twice the rate for 5 s: while the overload lasts, the 1 s holds.
        let over: Vec<(u64, u64)> = (0..100).map(|s| (s, s * 50)).collect();
        let mut p = UplinkPacer::new(cfg, Timestamp(0));
        let waits = offer(&mut p, &over, 4_950);
        assert!(p.stats().stale_blocks > 0, "an overload drops");
        let longest = *waits.iter().max().expect("sent");
        assert!(longest < 1000, "waited {longest} ms");
    }

    #[test]
    fn bytes_sent_beside_the_queues_delay_the_blocks_by_their_time_at_the_rate() {
        // 800 kbit/s = 100 000 B/s; the bucket (10 000 B) is spent by a block, then
        // 50 000 B of control go out at once: the next block waits for both.
        let mut p = UplinkPacer::new(UplinkConfig::new(800), Timestamp(0));
        p.push(Timestamp(0), NodeId(1), blk(0, 10_000 - HEAD));
        assert!(p.poll_send(Timestamp(0)).is_some());
        p.charge(50_000);
        p.push(Timestamp(0), NodeId(1), blk(1, 10_000 - HEAD));
        let sent = run(&mut p, Timestamp(0), Timestamp::from_secs(10));
        assert_eq!(sent, vec![(Timestamp::from_millis(600), NodeId(1), 1)]);
        assert_eq!(p.stats().charged_bytes, 50_000);
    }

    #[test]
    fn the_configuration_is_checked() {
        assert!(UplinkConfig::new(0).validate().is_err());
        let mut c = UplinkConfig::new(1000);
        assert!(c.validate().is_ok());
        c.max_wait_ms = 60_001;
        assert!(c.validate().unwrap_err().contains("max_wait_ms"));
        c.max_wait_ms = 0;
        c.burst_ms = 0;
        assert!(c.validate().is_err());
    }
}
