//! The origin's upload as sent (X5, X6; issue 10): bytes are counted over the time
//! the network model's uplink actually transmits them (`depart_start..depart_end`,
//! spread in proportion over the seconds it spans), not when a machine queues them.
//! So no second of the timeline shows more than the origin's uplink can carry, and
//! bytes still queued at the end of a run are not counted as uploaded.

use crate::world::Simulation;

#[derive(Default)]
pub(crate) struct UploadMeter {
    /// Bytes sent in second `k` (covering `[k, k+1)` s of virtual time).
    per_second: Vec<f64>,
    /// The most any timeline second showed (bit/s).
    pub max_bps: f64,
}

const SECOND_US: u64 = 1_000_000;

impl UploadMeter {
    /// `bytes` left the uplink over `[start, end]` (µs).
    pub fn sent(&mut self, start: u64, end: u64, bytes: u64) {
        if end <= start {
            self.add((start / SECOND_US) as usize, bytes as f64);
            return;
        }
        let span = (end - start) as f64;
        let mut t = start;
        while t < end {
            let k = t / SECOND_US;
            let next = ((k + 1) * SECOND_US).min(end);
            self.add(k as usize, bytes as f64 * (next - t) as f64 / span);
            t = next;
        }
    }

    fn add(&mut self, k: usize, x: f64) {
        if self.per_second.len() <= k {
            self.per_second.resize(k + 1, 0.0);
        }
        self.per_second[k] += x;
    }

    /// Bytes sent in second `[k, k+1)`.
    pub fn second(&self, k: u64) -> f64 {
        self.per_second.get(k as usize).copied().unwrap_or(0.0)
    }

    /// Bytes sent before `end_us`.
    pub fn total_until(&self, end_us: u64) -> f64 {
        let full = (end_us / SECOND_US) as usize;
        let mut s: f64 = self.per_second.iter().take(full).sum();
        let part = end_us % SECOND_US;
        if part > 0 {
            // A partial last second (a run's end is usually whole): a bucket does not
            // keep when within the second its bytes left, so count it in proportion.
            s += self.second(full as u64) * part as f64 / SECOND_US as f64;
        }
        s
    }
}

impl Simulation {
    /// A timeline second's origin upload (bit/s) can't exceed the origin's uplink: an
    /// invariant (the network model never sends faster; this checks the accounting).
    pub(crate) fn check_origin_second(&mut self, bps: f64) {
        let meter = &mut self.origin_sent;
        meter.max_bps = meter.max_bps.max(bps);
        let up = self.net.uplink_kbps(self.origin);
        if up > 0 && bps > f64::from(up) * 1000.0 * (1.0 + 1e-9) {
            self.checker.record(
                "origin_upload_over_uplink",
                format!(
                    "second ending at {:.0}s: the origin sent {bps:.0} bit/s over its {up} kbps uplink",
                    self.now as f64 / 1e6
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_spread_over_the_seconds_they_take() {
        let mut m = UploadMeter::default();
        // 3000 bytes from 0.5 s to 2.0 s: 1000 in second 0, 2000 in second 1.
        m.sent(500_000, 2_000_000, 3000);
        assert!((m.second(0) - 1000.0).abs() < 1e-6);
        assert!((m.second(1) - 2000.0).abs() < 1e-6);
        assert_eq!(m.second(2), 0.0);
        m.sent(2_100_000, 2_100_000, 7);
        assert!((m.second(2) - 7.0).abs() < 1e-9);
        assert!((m.total_until(2_000_000) - 3000.0).abs() < 1e-6);
    }
}
