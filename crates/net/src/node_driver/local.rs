//! What a node's local HTTP viewers are fed (X2; D4 for peers): per channel, a
//! bounded `broadcast` of blocks, and the backlog a joining viewer starts with. A
//! relay receives its blocks in order and broadcasts them as they are stored; a
//! peer receives them out of order (one parent per substream, late repairs), so
//! its blocks first pass the core's [`Playout`] stage (`tiercast_node::playout`,
//! the one the simulator runs per peer too) that puts them back in order, and its
//! viewers start from the playout's current GOP. A peer keeps its channels' hubs
//! when the node leaves a channel (ejected, re-homed): the players stay connected
//! and resume at the next keyframe once blocks flow again. A delayed viewer (C3)
//! starts in the relay's buffer the delay back (`BlockBuffer::delayed_start`).

use crate::http::LiveBlock;
use std::collections::BTreeMap;
use tiercast_node::{BlockBuffer, Playout, PlayoutConfig, PlayoutStats};
use tiercast_proto::{Block, ChannelId, Timestamp};
use tokio::sync::broadcast;

pub(crate) struct LocalViewers {
    hub: BTreeMap<ChannelId, broadcast::Sender<LiveBlock>>,
    /// Blocks queued per viewer before a slow one is resynced.
    live_queue_blocks: usize,
    /// Set for peers: blocks are reordered before viewers see them.
    playout: Option<PlayoutConfig>,
    playouts: BTreeMap<ChannelId, Playout<LiveBlock>>,
}

impl LocalViewers {
    pub fn new(live_queue_blocks: usize, playout: Option<PlayoutConfig>) -> Self {
        LocalViewers {
            hub: BTreeMap::new(),
            live_queue_blocks: live_queue_blocks.max(4),
            playout,
            playouts: BTreeMap::new(),
        }
    }

    /// The node stored a block (each seq once, in any order).
    pub fn block_stored(&mut self, now: Timestamp, block: &Block) {
        let live = live_block(block);
        match &self.playout {
            None => {
                if let Some(tx) = self.hub.get(&block.channel) {
                    let _ = tx.send(live);
                }
            }
            Some(cfg) => {
                let cfg = cfg.clone();
                let p = self
                    .playouts
                    .entry(block.channel)
                    .or_insert_with(|| Playout::with_origin_clock(cfg, origin_clock_offset(now)));
                let before = GapCounters::of(p);
                p.push(now, live);
                log_gaps(block.channel, &before, p);
                self.flush(block.channel);
            }
        }
    }

    /// Gives up the gaps whose playout delay ran out.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        let due: Vec<ChannelId> = self
            .playouts
            .iter()
            .filter(|(_, p)| p.poll_timeout().is_some_and(|t| t <= now))
            .map(|(c, _)| *c)
            .collect();
        for c in due {
            if let Some(p) = self.playouts.get_mut(&c) {
                let before = GapCounters::of(p);
                p.handle_timeout(now);
                log_gaps(c, &before, p);
            }
            self.flush(c);
        }
    }

    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.playouts
            .values()
            .filter_map(|p| p.poll_timeout())
            .min()
    }

    /// A viewer joins `channel`: its subscription (taken first) and its backlog.
    pub fn join(
        &mut self,
        channel: ChannelId,
        buffer: &BlockBuffer,
        delay_us: u64,
    ) -> (broadcast::Receiver<LiveBlock>, Vec<LiveBlock>) {
        let cap = self.live_queue_blocks;
        let live = self
            .hub
            .entry(channel)
            .or_insert_with(|| broadcast::channel(cap).0)
            .subscribe();
        let backlog = match (&self.playout, self.playouts.get(&channel)) {
            (Some(_), Some(p)) => p.backlog(),
            (Some(_), None) => Vec::new(),
            // A delayed viewer (C3) starts the delay back, or as far back as held.
            (None, _) if delay_us > 0 => match buffer.delayed_start(delay_us) {
                Some(start) => buffer.blocks_from(start.seq).map(live_block).collect(),
                None => Vec::new(),
            },
            (None, _) => match buffer.latest_keyframe() {
                Some(k) => buffer.blocks_from(k).map(live_block).collect(),
                None => Vec::new(),
            },
        };
        (live, backlog)
    }

    /// The node left `channel`: a relay's viewers are told the stream ended.
    pub fn deactivated(&mut self, channel: ChannelId) {
        if self.playout.is_none() {
            self.hub.remove(&channel);
        }
    }

    pub fn playout_stats(&self, channel: ChannelId) -> Option<PlayoutStats> {
        self.playouts.get(&channel).map(|p| p.stats().clone())
    }

    fn flush(&mut self, channel: ChannelId) {
        let Some(p) = self.playouts.get_mut(&channel) else {
            return;
        };
        let tx = self.hub.get(&channel);
        while let Some(b) = p.poll_output() {
            if let Some(tx) = tx {
                let _ = tx.send(b);
            }
        }
    }
}

/// Blocks carry wall-clock origin times (`crate::clock::wall_micros`, the same
/// clock in every process of a machine); the driver's clock is monotonic since it
/// started. Their difference, taken once when a stage is made, lets the stage
/// measure lag on the origin's clock.
fn origin_clock_offset(now: Timestamp) -> i64 {
    crate::clock::wall_micros() as i64 - now.as_micros() as i64
}

/// The counters `log_gaps` compares, taken before a push or timeout.
struct GapCounters {
    gaps: u64,
    skipped_missing: u64,
    skipped_resync: u64,
    gap_at: Option<u64>,
}

impl GapCounters {
    fn of(p: &Playout<LiveBlock>) -> Self {
        let s = p.stats();
        GapCounters {
            gaps: s.gaps,
            skipped_missing: s.skipped_missing,
            skipped_resync: s.skipped_resync,
            gap_at: p.next_seq(),
        }
    }
}

/// Says when the playout gave a gap up (the player sees a skip to a keyframe).
fn log_gaps(channel: ChannelId, before: &GapCounters, p: &Playout<LiveBlock>) {
    let after = p.stats();
    if after.gaps > before.gaps {
        tracing::info!(
            %channel,
            gap_at = ?before.gap_at,
            missing = after.skipped_missing - before.skipped_missing,
            dropped_for_resync = after.skipped_resync - before.skipped_resync,
            next_seq = ?p.next_seq(),
            waiting = p.pending_len(),
            "playout skipped a gap"
        );
    }
}

pub(crate) fn live_block(b: &Block) -> LiveBlock {
    LiveBlock {
        seq: b.seq,
        keyframe: b.is_keyframe(),
        origin_time_us: b.origin_time_us,
        payload: b.payload.clone(),
    }
}
