//! The seconds around each full recomputation of the peer overlay (C7; issue 10's
//! "recomputation without outage"): the coordinator's `PeersRecomputed` events are
//! noted as they happen, and metrics.json gets, for each one, the on-time
//! continuity of every whole second from [`BEFORE_S`] before it to [`AFTER_S`]
//! after it (from the settled ledger, the same slots as every other continuity)
//! and the worst of those seconds; beside it, the worst second of the timeline's
//! receive ratio (blocks a viewer received in that second over blocks cut in it:
//! a pause that the playout deadline absorbs still shows there). The summary
//! figures are the worst seconds around the recomputations made from
//! `steady_from_s` on; those made while the first viewers were still arriving are
//! listed too, marked `steady: false`.

use crate::world::Simulation;
use serde::Serialize;

/// Seconds looked at before a recomputation...
pub const BEFORE_S: u64 = 2;
/// ...and after it.
pub const AFTER_S: u64 = 10;

/// One recomputation's seconds in metrics.json.
#[derive(Clone, Debug, Serialize)]
pub struct RecomputeWindow {
    pub at_s: f64,
    /// Made at or after `steady_from_s`.
    pub steady: bool,
    /// The worst whole second's continuity in the window (None: nothing expected).
    pub min_second_continuity: Option<f64>,
    /// The second it happened in, counted from the recomputation (may be negative).
    pub worst_second_offset_s: Option<i64>,
    /// The worst whole second's continuity over the overlay's members at the time
    /// (peers it ejected are not counted while out; see `members_ledger`).
    pub min_second_continuity_members: Option<f64>,
    /// The second the members' worst happened in, counted from the recomputation.
    pub worst_members_second_offset_s: Option<i64>,
    /// Continuity over the whole window.
    pub continuity: Option<f64>,
    /// The worst second of the timeline's receive ratio in the window (blocks
    /// mode: received in the second / cut in it, averaged over viewers).
    pub min_second_received: Option<f64>,
}

impl Simulation {
    /// The coordinator made a full recomputation now.
    pub(crate) fn recomputed(&mut self) {
        self.recomputes.push(self.now);
    }

    /// Every recomputation's window (the ledger settled).
    pub(crate) fn recompute_window_metrics(&self) -> Vec<RecomputeWindow> {
        let steady_us = self.sc.steady_from_us();
        self.recomputes
            .iter()
            .map(|&at| {
                let a = at.saturating_sub(BEFORE_S * 1_000_000);
                let b = (at + AFTER_S * 1_000_000).min(self.end);
                let mut worst: Option<(f64, i64)> = None;
                let mut worst_members: Option<(f64, i64)> = None;
                let mut s = a;
                while s + 1_000_000 <= b {
                    if let Some(c) = self.continuity_in(s, s + 1_000_000) {
                        let off = (s as i64 - at as i64).div_euclid(1_000_000);
                        if worst.is_none_or(|(w, _)| c < w) {
                            worst = Some((c, off));
                        }
                    }
                    if let Some(c) = self.members_continuity_in(s, s + 1_000_000) {
                        let off = (s as i64 - at as i64).div_euclid(1_000_000);
                        if worst_members.is_none_or(|(w, _)| c < w) {
                            worst_members = Some((c, off));
                        }
                    }
                    s += 1_000_000;
                }
                let min_second_received = self
                    .metrics
                    .timeline
                    .iter()
                    .filter(|r| r.t_s * 1_000_000 > a && r.t_s * 1_000_000 <= b)
                    .map(|r| r.continuity)
                    .reduce(f64::min);
                RecomputeWindow {
                    at_s: at as f64 / 1e6,
                    steady: at >= steady_us,
                    min_second_continuity: worst.map(|w| w.0),
                    worst_second_offset_s: worst.map(|w| w.1),
                    min_second_continuity_members: worst_members.map(|w| w.0),
                    worst_members_second_offset_s: worst_members.map(|w| w.1),
                    continuity: self.continuity_in(a, b),
                    min_second_received,
                }
            })
            .collect()
    }
}

/// The worst second of the members around the steady recomputations.
pub fn worst_steady_members_second(ws: &[RecomputeWindow]) -> Option<f64> {
    ws.iter()
        .filter(|w| w.steady)
        .filter_map(|w| w.min_second_continuity_members)
        .reduce(f64::min)
}

/// The worst on-time second and the worst receive-ratio second around the
/// steady recomputations.
pub fn worst_steady_seconds(ws: &[RecomputeWindow]) -> (Option<f64>, Option<f64>) {
    let steady = || ws.iter().filter(|w| w.steady);
    (
        steady()
            .filter_map(|w| w.min_second_continuity)
            .reduce(f64::min),
        steady()
            .filter_map(|w| w.min_second_received)
            .reduce(f64::min),
    )
}
