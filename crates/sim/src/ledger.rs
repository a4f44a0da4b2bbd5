//! The on-time ledger (X5, X6; issue 10's honest metrics): per region and per slot —
//! a block's seq in blocks mode, a sample second in rate mode — what the watching
//! viewers were expected to play and what they played on time. Efficiency,
//! per-region continuity and the per-fault windows are sums over its slots, so a
//! gap counts wherever it happens (across relay or parent switches too: a viewer's
//! expected range runs from its first block to its last, whoever sent them).
//!
//! Efficiency = Σ on time / Σ expected · min(1, bound / rate), the bound taken in the
//! sample window of each slot: with capacity to spare it is the continuity; with
//! less, the share of what the capacity bound allows that arrived on time. Each
//! slot's on-time count is at most its expected count, so it exceeds 1 only if
//! viewers beat the capacity bound — which `report` records as an invariant
//! violation, never clamps.

use crate::metrics::Histogram;

pub(crate) struct Ledger {
    blocks: bool,
    /// Per region: expected per slot (a difference array in blocks mode until `settle`).
    expected: Vec<Vec<f64>>,
    got: Vec<Vec<f64>>,
    settled: bool,
    /// Per sample second `t` (covering `(t-1, t]`): min(1, bound / rate).
    factor: Vec<f64>,
    /// Per region: startup delays (ms).
    pub startup: Vec<Histogram>,
    /// Per region: viewers arrived.
    pub arrived: Vec<u64>,
}

fn at(v: &mut Vec<f64>, i: usize) -> &mut f64 {
    if v.len() <= i {
        v.resize(i + 1, 0.0);
    }
    &mut v[i]
}

impl Ledger {
    pub fn new(blocks: bool, regions: usize) -> Self {
        Ledger {
            blocks,
            expected: vec![Vec::new(); regions],
            got: vec![Vec::new(); regions],
            settled: false,
            factor: Vec::new(),
            startup: (0..regions).map(|_| Histogram::default()).collect(),
            arrived: vec![0; regions],
        }
    }

    /// Whether it counts blocks (else rate-mode samples).
    pub fn blocks(&self) -> bool {
        self.blocks
    }

    /// Blocks mode: a viewer was expected to play seqs `first..=last`.
    pub fn expect_range(&mut self, region: u16, first: u64, last: u64) {
        debug_assert!(self.blocks && !self.settled);
        let e = &mut self.expected[region as usize];
        *at(e, first as usize) += 1.0;
        *at(e, last as usize + 1) -= 1.0;
    }

    /// Blocks mode: a viewer's stretch from `first` ends — it was expected every seq
    /// up to `last_due` (the last due by the stretch's end), and the blocks it got
    /// on time that were due later (`due_after`) are taken back.
    pub fn close_range(
        &mut self,
        region: u16,
        first: u64,
        last_due: Option<u64>,
        due_after: impl IntoIterator<Item = u64>,
    ) {
        if let Some(e) = last_due.filter(|e| *e >= first) {
            self.expect_range(region, first, e);
        }
        for s in due_after {
            self.got(region, s, -1.0);
        }
    }

    /// Rate mode: `x` stream-seconds were expected in sample `slot`.
    pub fn expect(&mut self, region: u16, slot: u64, x: f64) {
        *at(&mut self.expected[region as usize], slot as usize) += x;
    }

    /// On time in `slot` (a block: 1; rate mode: stream-seconds); negative to take back.
    pub fn got(&mut self, region: u16, slot: u64, x: f64) {
        *at(&mut self.got[region as usize], slot as usize) += x;
    }

    /// The sample at second `t` had this capacity bound (bit/s; `None`: nobody watched).
    pub fn bound(&mut self, t_s: u64, bound_bps: Option<f64>, rate_bps: f64) {
        let f = bound_bps.map_or(1.0, |b| (b / rate_bps).min(1.0));
        *at(&mut self.factor, t_s as usize) = f;
    }

    /// Turns the blocks-mode difference arrays into counts (once, at the end).
    pub fn settle(&mut self) {
        if self.blocks && !self.settled {
            for e in &mut self.expected {
                let mut acc = 0.0;
                for x in e.iter_mut() {
                    acc += *x;
                    *x = acc;
                }
            }
        }
        self.settled = true;
    }

    /// Expected and on time over `slots` (every slot when `None`), one region or all.
    pub fn sums(&self, region: Option<usize>, slots: Option<(u64, u64)>) -> (f64, f64) {
        debug_assert!(self.settled || !self.blocks);
        let (mut e, mut g) = (0.0, 0.0);
        for r in 0..self.expected.len() {
            if region.is_some_and(|x| x != r) {
                continue;
            }
            let (lo, hi) = slots.unwrap_or((0, u64::MAX));
            let hi_e = (hi as usize).min(self.expected[r].len());
            let hi_g = (hi as usize).min(self.got[r].len());
            let lo = lo as usize;
            if lo < hi_e {
                e += self.expected[r][lo..hi_e].iter().sum::<f64>();
            }
            if lo < hi_g {
                g += self.got[r][lo..hi_g].iter().sum::<f64>();
            }
        }
        (e, g)
    }

    /// Slots (of any region) where more arrived on time than was expected: none
    /// unless the bookkeeping is broken (the simulator records it as a violation).
    pub fn slots_over(&self) -> usize {
        let mut n = 0;
        for (e, g) in self.expected.iter().zip(&self.got) {
            n += g
                .iter()
                .enumerate()
                .filter(|(s, x)| **x > e.get(*s).copied().unwrap_or(0.0) + 1e-9)
                .count();
        }
        n
    }

    /// Σ on time / Σ expected · min(1, bound/rate); `window(slot)` is the sample second
    /// whose bound applies to a slot. `None` when nothing was expected.
    pub fn efficiency(&self, window: impl Fn(u64) -> u64) -> Option<f64> {
        // Both sums in one order: rounding is monotone, so with capacity to spare
        // (factor 1, on time <= expected in every slot) the ratio can't pass 1.
        let (mut cap, mut got) = (0.0, 0.0);
        for r in 0..self.expected.len() {
            let (e, g) = (&self.expected[r], &self.got[r]);
            for s in 0..e.len().max(g.len()) {
                let f = self
                    .factor
                    .get(window(s as u64) as usize)
                    .copied()
                    .unwrap_or(1.0);
                cap += e.get(s).copied().unwrap_or(0.0) * f;
                got += g.get(s).copied().unwrap_or(0.0);
            }
        }
        (cap > 0.0).then(|| got / cap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_sum_and_a_gap_counts() {
        let mut l = Ledger::new(true, 2);
        l.expect_range(0, 0, 9);
        l.expect_range(1, 5, 9);
        for s in (0..10).filter(|s| !(3..6).contains(s)) {
            l.got(0, s, 1.0);
        }
        for s in 5..10 {
            l.got(1, s, 1.0);
        }
        l.settle();
        assert_eq!(l.sums(None, None), (15.0, 12.0));
        assert_eq!(l.sums(Some(0), Some((3, 6))), (3.0, 0.0));
        assert_eq!(l.sums(Some(1), None), (5.0, 5.0));
        // Capacity to spare everywhere: efficiency is the continuity.
        assert_eq!(l.efficiency(|s| s), Some(12.0 / 15.0));
        assert_eq!(l.slots_over(), 0);
        l.got(1, 2, 1.0);
        assert_eq!(l.slots_over(), 1, "a block nobody expected");
    }

    #[test]
    fn efficiency_is_against_the_bound_of_each_window() {
        let mut l = Ledger::new(false, 1);
        // Two seconds: the bound is half the rate in the second one.
        l.bound(1, Some(2000.0), 1000.0);
        l.bound(2, Some(500.0), 1000.0);
        l.expect(0, 1, 10.0);
        l.got(0, 1, 10.0);
        l.expect(0, 2, 10.0);
        l.got(0, 2, 5.0);
        l.settle();
        assert_eq!(l.efficiency(|s| s), Some(1.0));
        assert_eq!(l.sums(None, None), (20.0, 15.0));
    }
}
