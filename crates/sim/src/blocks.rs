//! The "blocks" data plane (X5): the origin machine's `ingest_block` is called every
//! block interval (stream rate / block size) with a real `Block` (one shared zeroed
//! payload), the machines forward it and the network model carries it. Viewers'
//! blocks are counted here: startup delay (first block − watch time), lag (arrival −
//! origin time; with the playout stage, played − origin time, counted in
//! `playout_books.rs` as the stage counts it), continuity (on-time blocks / blocks
//! expected since the start).
//! A relay's viewer's block is on time when it arrives within the playout
//! deadline; a peer viewer's goes through the core's playout stage first and is on
//! time when played within it (`playout_books.rs`, with `playout_stage` on).

use crate::playout::ViewerPlayout;
use crate::scenario::{DataPlane, Scenario};
use crate::viewer::{Mark, ViewerStats, NONE};
use crate::world::Simulation;
use bytes::Bytes;
use tiercast_proto::{Block, ChannelDesc, Timestamp};

pub(crate) struct Ingest {
    /// When the origin cut block 0 (the channel became ready).
    pub start: Option<u64>,
    pub next_seq: u64,
    pub payload: Bytes,
    pub interval_us: u64,
    pub keyframe_every: u64,
    /// Blocks cut since the last sample.
    pub in_sample: u64,
    /// First seq cut at or after the first relay fault.
    pub fault_seq: Option<u64>,
}

impl Ingest {
    pub fn new(sc: &Scenario) -> Self {
        let interval_us = sc.block_interval_us();
        let payload = match sc.data_plane {
            DataPlane::Blocks => Bytes::from(vec![0u8; sc.stream.block_bytes as usize]),
            DataPlane::Rate => Bytes::new(),
        };
        Ingest {
            start: None,
            next_seq: 0,
            payload,
            interval_us,
            keyframe_every: (sc.stream.keyframe_interval_ms * 1000 / interval_us).max(1),
            in_sample: 0,
            fault_seq: None,
        }
    }

    /// Origin time of block `seq`.
    pub fn origin_time(&self, seq: u64) -> u64 {
        self.start.unwrap_or(0) + seq * self.interval_us
    }

    /// The last seq cut at or before `t`.
    pub fn last_seq_at(&self, t: u64) -> Option<u64> {
        let start = self.start?;
        if t < start || self.next_seq == 0 {
            return None;
        }
        Some(((t - start) / self.interval_us).min(self.next_seq - 1))
    }

    /// The first seq cut at or after `t`.
    pub fn first_seq_from(&self, t: u64) -> u64 {
        match self.start {
            Some(s) if t > s => (t - s).div_ceil(self.interval_us),
            _ => 0,
        }
    }
}

/// Expected and on-time blocks of one viewer (`group` counts from the fault seq).
pub(crate) struct BlockTally {
    pub expected: u64,
    pub received: u64,
}

/// Blocks of `ingest`'s channel expected and received on time by viewer `v`
/// whose watch ends at `t` (from `from_seq` on, when given). With `played`, the
/// viewer's playout stage says where its run starts and which seqs it played on
/// time (`playout_books.rs`).
pub(crate) fn tally_blocks(
    ingest: &Ingest,
    v: &ViewerStats,
    t: u64,
    (deadline, grace): (u64, u64),
    from_seq: Option<u64>,
    played: Option<Option<&ViewerPlayout>>,
) -> BlockTally {
    let zero = BlockTally {
        expected: 0,
        received: 0,
    };
    let Some(s_end) = t.checked_sub(deadline).and_then(|x| ingest.last_seq_at(x)) else {
        return zero;
    };
    let (run_first, above) = match played {
        None => (v.first_seq, v.received_above(s_end)),
        Some(None) => (NONE, 0),
        Some(Some(p)) => (p.first_seq(), p.on_time_above(Some(s_end)).count() as u64),
    };
    let (first, received) = if run_first != NONE {
        let first = run_first.max(from_seq.unwrap_or(0));
        let got = if from_seq.is_some() {
            v.post_on_time
        } else {
            v.on_time
        };
        (first, got.saturating_sub(above))
    } else {
        let from = ingest.first_seq_from(v.watch_at + grace);
        (from.max(from_seq.unwrap_or(0)), 0)
    };
    if s_end < first {
        return zero;
    }
    let expected = s_end - first + 1;
    BlockTally {
        expected,
        received: received.min(expected),
    }
}

impl Simulation {
    pub(crate) fn channel_ready(&mut self, desc: ChannelDesc) {
        self.channel = Some(desc.id);
        if self.sc.data_plane == DataPlane::Blocks && self.ingest.start.is_none() {
            self.ingest.start = Some(self.now);
            self.queue.push(self.now, crate::queue::Ev::Ingest);
        }
    }

    pub(crate) fn ingest_next(&mut self) {
        let Some(channel) = self.channel else {
            return;
        };
        if !self.is_alive(self.origin) {
            // The source keeps going while the origin is down (a restart): its
            // blocks of the downtime are lost, and counted as expected.
            self.ingest.next_seq += 1;
            self.ingest.in_sample += 1;
            let next = self.ingest.origin_time(self.ingest.next_seq);
            self.queue.push(next, crate::queue::Ev::Ingest);
            return;
        }
        let seq = self.ingest.next_seq;
        let mut block = Block::new(
            channel,
            seq,
            Timestamp(self.now),
            seq.is_multiple_of(self.ingest.keyframe_every),
            self.ingest.payload.clone(),
        );
        self.signing.sign(&mut block);
        let origin = self.origin;
        if let Some(n) = self.slots[origin as usize].node.as_mut() {
            n.ingest_block(Timestamp(self.now), block);
        }
        self.drain_node(origin);
        self.ingest.next_seq += 1;
        self.ingest.in_sample += 1;
        let next = self.ingest.origin_time(self.ingest.next_seq);
        self.queue.push(next, crate::queue::Ev::Ingest);
    }

    /// A block was stored at viewer `id`.
    pub(crate) fn viewer_block(&mut self, id: u32, block: &Block) {
        if crate::signing::altered(block, &self.ingest.payload) {
            self.metrics.tampered_blocks_viewed += 1;
        }
        let vi = (id - self.first_viewer) as usize;
        let now = self.now;
        let deadline = self.sc.playout_deadline_ms * 1000;
        let v = &mut self.viewers[vi];
        match v.mark(block.seq) {
            Mark::New => {}
            Mark::Duplicate => {
                let label = self.label(tiercast_proto::NodeId(id));
                self.checker.record(
                    "duplicate_block",
                    format!(
                        "block {} counted twice at viewer {label} (t={:.6}s)",
                        block.seq,
                        now as f64 / 1e6
                    ),
                );
                return;
            }
            Mark::Resent | Mark::TooOld => return,
        }
        let region = self.net.region_of(id);
        let v = &mut self.viewers[vi];
        v.last_new_at = now;
        if v.first_at == NONE {
            v.first_at = now;
            let startup = now - v.watch_at;
            self.metrics.startup_ms.add(startup / 1000);
            self.ledger.startup[region as usize].add(startup / 1000);
        }
        if v.playable_at == NONE && block.is_keyframe() {
            v.playable_at = now;
            self.metrics
                .startup_playable_ms
                .add((now - v.watch_at) / 1000);
        }
        let lag = now.saturating_sub(block.origin_time_us);
        if self.playout_cfg.is_none() {
            // With a playout stage, lag is counted when the stage plays the block.
            self.metrics.lag_ms.add(lag / 1000);
        }
        v.recv_in_sample += 1;
        let first_seq = v.first_seq;
        self.metrics.delivered_bytes += crate::run::wire_bytes_block(block);
        self.metrics.delivered_payload_bytes += block.payload.len() as u64;
        if self.plays_out() {
            self.playout_push(vi, block);
        } else if lag <= deadline && block.seq >= first_seq {
            // A block older than the viewer's first is not in its run: not on
            // time, not counted (continuity counted one, the ledger did not, and
            // continuity passed efficiency: middle-erasure 0.99723 > 0.99715).
            self.on_time_block(vi, region, block.seq);
        }
    }

    /// Viewer `vi` got block `seq` on time (arrived, or played, by its deadline).
    pub(crate) fn on_time_block(&mut self, vi: usize, region: u16, seq: u64) {
        let fault_seq = self.ingest.fault_seq;
        let v = &mut self.viewers[vi];
        v.on_time += 1;
        self.ledger.got(region, seq, 1.0);
        if v.group != 0 && fault_seq.is_some_and(|f| seq >= f) {
            v.post_on_time += 1;
        }
        self.member_block(vi, region, seq);
    }

    /// Blocks expected and received on time by a viewer whose watch ends at `t`.
    /// With `from_seq`, counting starts there (the post-fault tally).
    pub(crate) fn block_tally(&self, vi: usize, t: u64, from_seq: Option<u64>) -> BlockTally {
        let deadline = self.sc.playout_deadline_ms * 1000;
        let grace = self.sc.startup_grace_ms * 1000;
        let played = self.plays_out().then(|| self.playouts.get(&(vi as u32)));
        let v = &self.viewers[vi];
        tally_blocks(&self.ingest, v, t, (deadline, grace), from_seq, played)
    }

    /// Whether the origin cut a block lately (see `starving`).
    pub(crate) fn stream_live(&self) -> bool {
        self.ingest.next_seq > 0
            && self.is_alive(self.origin)
            && self
                .now
                .saturating_sub(self.ingest.origin_time(self.ingest.next_seq - 1))
                <= crate::starving::STARVING_AFTER_MS * 1000
    }

    /// The sample second whose capacity bound applies to block `seq` (the sample at
    /// `t` covers `(t-1, t]`).
    pub(crate) fn window_of_seq(&self, seq: u64) -> u64 {
        self.ingest.origin_time(seq).div_ceil(1_000_000)
    }

    /// The ledger's share of a leaving viewer: every seq from its first block (or
    /// the end of its grace) to the last one due by `t`, across relay and parent
    /// switches; on-time blocks due after `t` are taken back.
    fn ledger_blocks(&mut self, vi: usize, t: u64) {
        let id = self.first_viewer + vi as u32;
        let region = self.net.region_of(id);
        let v = &self.viewers[vi];
        let s_end = self.last_seq_due(t);
        let run_first = self.run_first_seq(vi);
        let first = if run_first != NONE {
            run_first
        } else {
            self.ingest
                .first_seq_from(v.watch_at + self.sc.startup_grace_ms * 1000)
        };
        let due_after = self.on_time_above(vi, s_end);
        self.ledger.close_range(region, first, s_end, due_after);
    }

    /// The last seq due at a viewer by `t` (cut a playout deadline before it).
    pub(crate) fn last_seq_due(&self, t: u64) -> Option<u64> {
        t.checked_sub(self.sc.playout_deadline_ms * 1000)
            .and_then(|x| self.ingest.last_seq_at(x))
    }

    /// Adds a departed (or, at the end, a remaining) viewer's blocks to the totals.
    pub(crate) fn finalize_blocks(&mut self, vi: usize, t: u64) {
        self.playout_catch_up(vi, t);
        self.ledger_blocks(vi, t);
        self.member_stretch_ends(vi, t);
        let all = self.block_tally(vi, t, None);
        self.metrics.expected += all.expected as f64;
        self.metrics.delivered += all.received as f64;
        let group = self.viewers[vi].group;
        if group != 0 {
            let post = self.block_tally(vi, t, Some(self.ingest.fault_seq.unwrap_or(0)));
            let g = (group - 1) as usize;
            self.metrics.group_expected[g] += post.expected as f64;
            self.metrics.group_delivered[g] += post.received as f64;
        }
        self.playout_closed(vi, t);
    }
}
