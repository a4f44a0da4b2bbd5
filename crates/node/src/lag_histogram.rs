//! A bounded histogram of end-to-end lag (D4, X5; issue 13 Must show 3): how
//! long after the origin cut a block the playout stage played it, in
//! milliseconds. Fixed memory (208 `u32` buckets): 1 ms buckets below 16 ms, then
//! 16 buckets per octave up to 65.5 s (each at most 1/16 of its lower bound
//! wide; later values share the last bucket). Mergeable (viewers summed into one
//! figure) and exact in its count and maximum. A quantile is reported as the
//! highest value its bucket holds (capped at the maximum seen), so it is never
//! below the true quantile and at most 6.25 % above it: the figure never flatters.
//!
//! Serialized sparse for `/status`: count, p50/p95/p99/max and the non-empty
//! buckets as `[lowest_ms, highest_ms, count]`, which is enough to merge viewers.

use serde::ser::{SerializeStruct, Serializer};
use serde::Serialize;

/// 1 ms buckets below this.
const LINEAR_MS: u64 = 16;
/// Buckets per octave above `LINEAR_MS` (log2).
const SUB_BITS: u32 = 4;
const SUB: usize = 1 << SUB_BITS;
/// Octaves from 16 ms: up to 16 · 2^12 ms = 65.5 s.
const OCTAVES: usize = 12;
const BUCKETS: usize = LINEAR_MS as usize + OCTAVES * SUB;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LagHistogram {
    counts: [u32; BUCKETS],
    total: u64,
    max_ms: u64,
    sum_ms: u64,
}

impl Default for LagHistogram {
    fn default() -> Self {
        LagHistogram {
            counts: [0; BUCKETS],
            total: 0,
            max_ms: 0,
            sum_ms: 0,
        }
    }
}

/// The bucket holding `ms`.
fn bucket(ms: u64) -> usize {
    if ms < LINEAR_MS {
        return ms as usize;
    }
    let k = 63 - ms.leading_zeros(); // 2^k <= ms < 2^(k+1), k >= 4
    let octave = (k - SUB_BITS) as usize;
    if octave >= OCTAVES {
        return BUCKETS - 1;
    }
    let sub = (ms >> (k - SUB_BITS)) as usize - SUB;
    LINEAR_MS as usize + octave * SUB + sub
}

/// The lowest and highest ms bucket `i` holds (the last one: up to `u64::MAX`).
fn bounds(i: usize) -> (u64, u64) {
    if i < LINEAR_MS as usize {
        return (i as u64, i as u64);
    }
    let octave = (i - LINEAR_MS as usize) / SUB;
    let sub = (i - LINEAR_MS as usize) % SUB;
    let lo = ((SUB + sub) as u64) << octave;
    if i == BUCKETS - 1 {
        return (lo, u64::MAX);
    }
    (lo, lo + (1u64 << octave) - 1)
}

impl LagHistogram {
    /// One block played `lag_us` after its origin time.
    pub fn record_us(&mut self, lag_us: u64) {
        let ms = lag_us / 1000;
        let b = &mut self.counts[bucket(ms)];
        *b = b.saturating_add(1);
        self.total += 1;
        self.max_ms = self.max_ms.max(ms);
        self.sum_ms = self.sum_ms.saturating_add(ms);
    }

    /// Adds another viewer's lags.
    pub fn merge(&mut self, other: &LagHistogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a = a.saturating_add(*b);
        }
        self.total += other.total;
        self.max_ms = self.max_ms.max(other.max_ms);
        self.sum_ms = self.sum_ms.saturating_add(other.sum_ms);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    pub fn max_ms(&self) -> Option<u64> {
        (self.total > 0).then_some(self.max_ms)
    }

    pub fn mean_ms(&self) -> Option<f64> {
        (self.total > 0).then(|| self.sum_ms as f64 / self.total as f64)
    }

    /// Nearest-rank quantile `q` (0..=1) in ms: the highest value of the bucket
    /// holding it, capped at the maximum (`None` when empty).
    pub fn quantile_ms(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut acc = 0u64;
        for (i, n) in self.counts.iter().enumerate() {
            acc += *n as u64;
            if acc >= rank {
                return Some(bounds(i).1.min(self.max_ms));
            }
        }
        Some(self.max_ms)
    }

    /// The non-empty buckets: (lowest ms, highest ms, count).
    pub fn buckets(&self) -> impl Iterator<Item = (u64, u64, u32)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(i, n)| {
                let (lo, hi) = bounds(i);
                (lo, hi, *n)
            })
    }
}

impl Serialize for LagHistogram {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("LagHistogram", 7)?;
        st.serialize_field("count", &self.total)?;
        st.serialize_field("mean_ms", &self.mean_ms())?;
        st.serialize_field("p50_ms", &self.quantile_ms(0.50))?;
        st.serialize_field("p95_ms", &self.quantile_ms(0.95))?;
        st.serialize_field("p99_ms", &self.quantile_ms(0.99))?;
        st.serialize_field("max_ms", &self.max_ms())?;
        let buckets: Vec<(u64, u64, u32)> = self.buckets().collect();
        st.serialize_field("buckets", &buckets)?;
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_tile_the_range_and_stay_within_a_sixteenth() {
        let mut prev_hi = None;
        for i in 0..BUCKETS {
            let (lo, hi) = bounds(i);
            assert_eq!(bucket(lo), i);
            if i < BUCKETS - 1 {
                assert_eq!(bucket(hi), i);
                assert!((hi - lo) * 16 <= lo.max(16), "bucket {i}: {lo}..={hi}");
            }
            if let Some(p) = prev_hi {
                assert_eq!(lo, p + 1, "no hole before bucket {i}");
            }
            prev_hi = Some(hi);
        }
        assert_eq!(bucket(u64::MAX / 1000), BUCKETS - 1);
    }

    #[test]
    fn quantiles_are_never_below_the_truth_and_close_to_it() {
        let mut h = LagHistogram::default();
        assert_eq!(h.quantile_ms(0.95), None);
        // 1..=1000 ms, once each: the true p50 is 500, p95 950.
        for ms in 1..=1000u64 {
            h.record_us(ms * 1000 + 999);
        }
        let p50 = h.quantile_ms(0.50).unwrap();
        let p95 = h.quantile_ms(0.95).unwrap();
        assert!((500..=500 + 500 / 16).contains(&p50), "p50 {p50}");
        assert!((950..=950 + 950 / 16).contains(&p95), "p95 {p95}");
        assert_eq!(h.quantile_ms(1.0), Some(1000));
        assert_eq!(h.max_ms(), Some(1000));
        assert_eq!(h.count(), 1000);
    }

    #[test]
    fn merging_is_adding() {
        let (mut a, mut b, mut both) = Default::default();
        for ms in [3u64, 40, 700, 2500] {
            LagHistogram::record_us(&mut a, ms * 1000);
            LagHistogram::record_us(&mut both, ms * 1000);
        }
        for ms in [5u64, 90_000] {
            LagHistogram::record_us(&mut b, ms * 1000);
            LagHistogram::record_us(&mut both, ms * 1000);
        }
        a.merge(&b);
        assert_eq!(a, both);
        assert_eq!(a.max_ms(), Some(90_000));
        assert_eq!(
            a.quantile_ms(1.0),
            Some(90_000),
            "the last bucket reports the max"
        );
        let json = serde_json::to_value(&a).unwrap();
        assert_eq!(json["count"], 6);
        assert_eq!(json["buckets"].as_array().unwrap().len(), 6);
    }
}
