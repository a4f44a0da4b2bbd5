//! Accumulators behind metrics.json (X5; relay counts for V4–V7): continuity,
//! startup and lag histograms, bytes by kind, relay counts against their lower
//! bound, the capacity bound, and the timeline. Everything here is a plain sum or
//! a histogram with fixed bins, so a replay gives the same figures bit for bit.

use crate::sample::{Census, Row};
use crate::scenario::Scenario;

/// Millisecond histogram, 1 ms bins up to 120 s (later values share the last bin).
#[derive(Clone, Debug)]
pub(crate) struct Histogram {
    bins: Vec<u64>,
    total: u64,
    max: u64,
}

const HIST_MS: usize = 120_000;

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            bins: vec![0; HIST_MS + 1],
            total: 0,
            max: 0,
        }
    }
}

impl Histogram {
    pub fn add(&mut self, ms: u64) {
        self.bins[(ms as usize).min(HIST_MS)] += 1;
        self.total += 1;
        self.max = self.max.max(ms);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    /// Nearest-rank percentile in ms (`None` when empty).
    pub fn percentile(&self, p: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((p * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut acc = 0;
        for (ms, n) in self.bins.iter().enumerate() {
            acc += n;
            if acc >= rank {
                return Some(if ms == HIST_MS { self.max } else { ms as u64 });
            }
        }
        Some(self.max)
    }

    pub fn max(&self) -> Option<u64> {
        (self.total > 0).then_some(self.max)
    }
}

#[derive(Default)]
pub(crate) struct Metrics {
    pub nodes_created: u64,
    /// Σ uplink of the peers watching now (the capacity bound counts them).
    pub peer_uplink_kbps_live: f64,
    /// Expected and delivered of viewers the overlay ejected (C6).
    pub ejected_expected: f64,
    pub ejected_delivered: f64,
    /// Expected and delivered of premium viewers (C3).
    pub premium_expected: f64,
    pub premium_delivered: f64,
    pub watching: u64,
    pub viewers_arrived: u64,
    pub viewer_seconds: f64,
    /// Blocks (blocks mode) or stream-seconds (rate mode) expected and delivered.
    pub expected: f64,
    pub delivered: f64,
    /// The same after the first relay fault, per viewer group (see `viewer::GROUP_*`).
    pub group_expected: [f64; 3],
    pub group_delivered: [f64; 3],
    pub startup_ms: Histogram,
    /// Blocks mode: from the watch to the first keyframe held (a player starts
    /// there; a child started at the live edge waits for the next one).
    pub startup_playable_ms: Histogram,
    pub lag_ms: Histogram,
    pub delivered_bytes: u64,
    /// The stream's own bytes among them (no block headers): the achieved rate.
    pub delivered_payload_bytes: u64,
    pub media_bytes: u64,
    pub media_cross_region_bytes: u64,
    /// Counted when queued; metrics.json reports the bytes as sent (`upload`).
    pub origin_upload_bytes: u64,
    pub control_bytes: u64,
    pub control_messages: u64,
    pub block_msgs_received: u64,
    pub unique_blocks_stored: u64,
    pub dropped_messages: u64,
    pub to_departed: u64,
    pub to_unknown: u64,
    pub watch_denied: u64,
    pub login_denied: u64,
    pub node_invalid: u64,
    /// Blocks (received or rebuilt) that failed the origin signature check.
    pub rejected_blocks: u64,
    /// Blocks viewers counted whose payload is not the origin's (`signing.rs`).
    pub tampered_blocks_viewed: u64,
    pub relays_failed: u64,
    pub starving_viewer_samples: u64,
    pub timeline: Vec<Row>,
    pub active_relays_max: u32,
    pub lower_bound_at_max: u32,
    pub lower_bound_cascade_at_max: u32,
    pub lower_bound_regional_at_max: u32,
    pub steady_ratio_sum: f64,
    pub steady_ratio_cascade_sum: f64,
    pub steady_ratio_regional_sum: f64,
    pub steady_samples: u64,
    pub bound_sum: f64,
    pub bound_samples: u64,
    pub viewers_max: u64,
}

impl Metrics {
    pub fn new(_sc: &Scenario) -> Self {
        Metrics::default()
    }

    pub fn on_sample(
        &mut self,
        now: u64,
        steady_from: u64,
        c: &Census,
        bound: Option<f64>,
        watching: u64,
    ) {
        self.viewers_max = self.viewers_max.max(watching);
        if c.active > self.active_relays_max {
            self.active_relays_max = c.active;
            self.lower_bound_at_max = c.lower_bound;
            self.lower_bound_cascade_at_max = c.lower_bound_cascade;
            self.lower_bound_regional_at_max = c.lower_bound_regional;
        }
        if now >= steady_from && c.lower_bound > 0 && watching > 0 {
            self.steady_ratio_sum += c.active as f64 / c.lower_bound as f64;
            self.steady_ratio_cascade_sum += c.active as f64 / c.lower_bound_cascade.max(1) as f64;
            self.steady_ratio_regional_sum +=
                c.active as f64 / c.lower_bound_regional.max(1) as f64;
            self.steady_samples += 1;
        }
        if let Some(b) = bound {
            self.bound_sum += b;
            self.bound_samples += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut h = Histogram::default();
        assert_eq!(h.percentile(0.5), None);
        for ms in 1..=100 {
            h.add(ms);
        }
        assert_eq!(h.percentile(0.5), Some(50));
        assert_eq!(h.percentile(0.95), Some(95));
        assert_eq!(h.percentile(1.0), Some(100));
        h.add(500_000);
        assert_eq!(h.percentile(1.0), Some(500_000));
        assert_eq!(h.max(), Some(500_000));
    }
}
