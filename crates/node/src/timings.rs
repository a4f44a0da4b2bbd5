//! What a node measures of each channel it watches or carries, for its report
//! (`/status`, `--report`; issue 13: `tiercast cluster` writes the simulator's
//! metrics.json from the nodes' own reports; X5, D4): startup, the lag of the
//! blocks it stored, and the blocks and wire bytes it stored. Time is passed in.
//!
//! Each figure mirrors one the simulator computes at its viewers (peers and
//! protocol viewers; `crates/sim/src/blocks.rs` `viewer_block`, run on every
//! `Event::BlockStored`), so the same rule is counted at the same point:
//!
//! - `startup_ms`: from the first `watch` of the channel (a viewer or peer; a
//!   relay: when it was first placed on the channel) to the first block stored —
//!   the simulator's `startup_delay_ms` (`ViewerStats::watch_at` is the arrival,
//!   when it calls `Node::watch`; `first_at` its first `BlockStored`). Once per
//!   channel over the node's life: watching again does not start it over.
//! - `startup_playable_ms`: the same to the first keyframe stored — the
//!   simulator's `startup_playable_ms`.
//! - `lag`: origin time → stored, for each block stored — the simulator's
//!   `lag_ms` for viewers without a playout stage (protocol viewers: relay-fed,
//!   they have none; a peer with a stage reports its stage's own lag in
//!   `playout.lag`, which is the simulator's figure when `playout_stage` is on).
//! - `delivered_bytes`: wire bytes (`codec::block_frame_len`) of each block
//!   stored — the simulator's `delivered_bytes` summed at viewers.
//! - `blocks_stored`: `BlockStored` events — the simulator's
//!   `unique_blocks_stored` (viewers, peers and relays).
//!
//! Off unless the driver asks ([`crate::config::NodeConfig::timings`]): the
//! simulator measures the same figures itself and runs a million viewers, which
//! would each pay ~900 bytes for the histogram.

use crate::lag_histogram::LagHistogram;
use tiercast_proto::{Block, Timestamp};

/// How a node measures (set by a driver that reports).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimingsConfig {
    /// Added to the node's `now` to get the origin's clock (block origin times are
    /// wall-clock µs since the Unix epoch; a driver's `now` may count from its
    /// start). 0 when both are the same clock (tests).
    pub origin_clock_offset_us: i64,
}

/// One channel's figures, by name (a channel's id may change when it is watched again).
#[derive(Clone, Debug)]
pub struct ChannelTimings {
    pub name: String,
    /// When the node first asked for the channel (or was placed on it).
    pub asked_at: Timestamp,
    pub first_block_at: Option<Timestamp>,
    pub first_keyframe_at: Option<Timestamp>,
    pub lag: LagHistogram,
    pub delivered_bytes: u64,
    pub blocks_stored: u64,
}

impl ChannelTimings {
    /// Ms from the ask to the first block stored (the sim's `startup_delay_ms`).
    pub fn startup_ms(&self) -> Option<u64> {
        self.first_block_at
            .map(|t| t.saturating_since(self.asked_at) / 1000)
    }

    /// Ms from the ask to the first keyframe stored (the sim's `startup_playable_ms`).
    pub fn startup_playable_ms(&self) -> Option<u64> {
        self.first_keyframe_at
            .map(|t| t.saturating_since(self.asked_at) / 1000)
    }
}

/// Every channel measured, at most `limit` of them.
#[derive(Clone, Debug)]
pub struct Timings {
    cfg: TimingsConfig,
    channels: Vec<ChannelTimings>,
}

impl Timings {
    pub fn new(cfg: TimingsConfig) -> Self {
        Timings {
            cfg,
            channels: Vec::new(),
        }
    }

    /// The node asked for `name` (or was placed on it) at `now`: the start of its
    /// startup, unless it asked before.
    pub fn asked(&mut self, now: Timestamp, name: &str, limit: usize) {
        if self.get(name).is_some() || self.channels.len() >= limit {
            return;
        }
        self.channels.push(ChannelTimings {
            name: name.to_string(),
            asked_at: now,
            first_block_at: None,
            first_keyframe_at: None,
            lag: LagHistogram::default(),
            delivered_bytes: 0,
            blocks_stored: 0,
        });
    }

    /// `block` of channel `name` was stored at `now` (`Event::BlockStored`). A
    /// channel never asked for (an origin's own) is not measured.
    pub fn stored(&mut self, now: Timestamp, name: &str, block: &Block) {
        let offset = self.cfg.origin_clock_offset_us;
        let Some(c) = self.channels.iter_mut().find(|c| c.name == name) else {
            return;
        };
        c.first_block_at.get_or_insert(now);
        if block.is_keyframe() {
            c.first_keyframe_at.get_or_insert(now);
        }
        let at = now.as_micros() as i128 + offset as i128;
        let lag = (at - block.origin_time_us as i128).clamp(0, u64::MAX as i128);
        c.lag.record_us(lag as u64);
        c.delivered_bytes += tiercast_proto::codec::block_frame_len(block) as u64;
        c.blocks_stored += 1;
    }

    pub fn get(&self, name: &str) -> Option<&ChannelTimings> {
        self.channels.iter().find(|c| c.name == name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &ChannelTimings> {
        self.channels.iter()
    }
}

#[cfg(test)]
#[path = "timings_tests.rs"]
mod tests;
