//! The blocks plane's books for peer viewers that run the core's playout stage
//! (X5, D4; issue 13 Must show 2; `playout.rs` drives the stage). With
//! `playout_stage` on (the default in blocks mode with peers), a peer viewer's
//! block counts as on time when its stage *plays* it no later than
//! `playout_deadline_ms` after the block's origin time — not when it merely
//! arrives by then:
//! - a gap the stage gives up is missed, and so are the blocks it drops until the
//!   next keyframe (a decoder cannot use them);
//! - a block held behind a gap that filled late is played late: missed too (the
//!   player stalled), counted in `playout.played_late`;
//! - a viewer's counted run starts at the stage's first played block (a
//!   keyframe), as a real peer's `PlayoutStats` count: the blocks before its
//!   first keyframe were never playable (`startup_playable_ms` measures that wait).
//!
//! The stage's delay is the scenario's `playout_deadline_ms` (a real peer's
//! `--playout-ms`), with at most 512 blocks waiting, as a real peer.

use crate::playout::{SimBlock, ViewerPlayout};
use crate::viewer::NONE;
use crate::world::Simulation;
use tiercast_node::PlayoutConfig;
use tiercast_proto::Block;

/// The stage a simulated peer viewer runs (the tokio driver's peer default but
/// for the delay, and a one-block backlog: nobody joins a simulated viewer).
pub(crate) fn stage_config(playout_deadline_ms: u64) -> PlayoutConfig {
    PlayoutConfig {
        delay_ms: playout_deadline_ms,
        history_blocks: 1,
        ..PlayoutConfig::default()
    }
}

impl Simulation {
    /// Whether viewer blocks go through a playout stage (peers, blocks mode, on).
    pub(crate) fn plays_out(&self) -> bool {
        self.playout_cfg.is_some()
    }

    /// Viewer `vi` stored a new `block` now: its stage is fed, what it plays counted.
    pub(crate) fn playout_push(&mut self, vi: usize, block: &Block) {
        let Some(cfg) = self.playout_cfg.as_ref() else {
            return;
        };
        let trace = self
            .opts
            .playout_trace
            .then_some(self.first_viewer + vi as u32);
        let now = self.now;
        let mut out = std::mem::take(&mut self.playout_scratch);
        let p = self
            .playouts
            .entry(vi as u32)
            .or_insert_with(|| ViewerPlayout::new(cfg.clone(), trace));
        if p.closed() {
            // A flaky peer back under its id: a new process, a new stage.
            if !self.viewers[vi].watching() {
                self.playout_scratch = out;
                return;
            }
            *p = ViewerPlayout::new(cfg.clone(), trace);
        }
        p.push(
            now,
            SimBlock {
                seq: block.seq,
                keyframe: block.is_keyframe(),
                origin_time_us: block.origin_time_us,
            },
            &mut out,
        );
        self.count_played(vi, &mut out);
        self.playout_scratch = out;
    }

    /// Viewer `vi`'s stage handles the timeouts due by `t` (before its books are read).
    pub(crate) fn playout_catch_up(&mut self, vi: usize, t: u64) {
        let Some(p) = self.playouts.get_mut(&(vi as u32)) else {
            return;
        };
        let mut out = std::mem::take(&mut self.playout_scratch);
        p.catch_up(t, &mut out);
        self.count_played(vi, &mut out);
        self.playout_scratch = out;
    }

    /// Counts what viewer `vi`'s stage played (`out` is left empty).
    fn count_played(&mut self, vi: usize, out: &mut Vec<(u64, SimBlock)>) {
        if out.is_empty() {
            return;
        }
        let deadline = self.sc.playout_deadline_ms * 1000;
        let Some(p) = self.playouts.get_mut(&(vi as u32)) else {
            out.clear();
            return;
        };
        // Lag is counted where the player gets the block: when the stage plays
        // it (the same figure as the stage's own `PlayoutStats::lag`).
        for (at, b) in out.iter() {
            self.metrics
                .lag_ms
                .add(at.saturating_sub(b.origin_time_us) / 1000);
        }
        p.keep_on_time(out, deadline);
        let region = self.net.region_of(self.first_viewer + vi as u32);
        for (_, b) in out.drain(..) {
            self.on_time_block(vi, region, b.seq);
        }
    }

    /// The first seq of viewer `vi`'s counted run (`NONE`: none yet): its stage's
    /// first played block, or without a stage its first block.
    pub(crate) fn run_first_seq(&self, vi: usize) -> u64 {
        if !self.plays_out() {
            return self.viewers[vi].first_seq;
        }
        self.playouts
            .get(&(vi as u32))
            .map_or(NONE, |p| p.first_seq())
    }

    /// Viewer `vi`'s seqs counted on time above `s_end` (within the 256-seq window).
    pub(crate) fn on_time_above(&self, vi: usize, s_end: Option<u64>) -> Vec<u64> {
        if !self.plays_out() {
            let v = &self.viewers[vi];
            return v.seqs_above(s_end).filter(|s| *s >= v.first_seq).collect();
        }
        self.playouts
            .get(&(vi as u32))
            .map_or_else(Vec::new, |p| p.on_time_above(s_end).collect())
    }

    /// Viewer `vi`'s books are closed: its stage's counters go to the totals
    /// (and its trace to the report), and the stage is dropped (where its run
    /// started and its on-time seqs near the top stay, for the report's tallies).
    pub(crate) fn playout_closed(&mut self, vi: usize, t: u64) {
        let Some(p) = self.playouts.get_mut(&(vi as u32)).filter(|p| !p.closed()) else {
            return;
        };
        let (stats, trace) = p.close(t);
        let late = p.played_late;
        self.playout_totals.add(&stats, late);
        self.playout_traces.extend(trace);
    }
}
