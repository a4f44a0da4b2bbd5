//! Double exponential smoothing of login and logoff rates (seed 001 [0064]–[0065]),
//! one implementation shared by the coordinator (V7: SysLinRate, Loffrate_s) and the
//! relays (V7: the ΔT look-ahead of DISTRIBUTE and the contracting mode of CONSOLIDATE).
//!
//! ```text
//! S_t = α·y_t + (1 − α)·(S_{t−1} + b_{t−1})
//! b_t = β·(S_t − S_{t−1}) + (1 − β)·b_{t−1}
//! ```
//! `y_t` is the rate observed over the last period (events per millisecond: 300
//! logins in the last second give 0.3); `S_t` is the predicted average rate. Both
//! start at 0: before anything was observed, nothing logged in.

/// The seed's suggested weights ([0064]).
pub const SEED_SMOOTHING_ALPHA: f64 = 0.9;
pub const SEED_SMOOTHING_BETA: f64 = 0.1;

/// `true` when `w` is a valid smoothing weight (0 < w < 1).
pub fn valid_weight(w: f64) -> bool {
    w.is_finite() && w > 0.0 && w < 1.0
}

/// The two equations of [0064] over a series of observations.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DoubleSmoother {
    alpha: f64,
    beta: f64,
    level: f64,
    trend: f64,
}

impl DoubleSmoother {
    /// Panics unless `0 < alpha, beta < 1` (configs are validated before use).
    pub fn new(alpha: f64, beta: f64) -> Self {
        assert!(
            valid_weight(alpha) && valid_weight(beta),
            "smoothing weights must be in (0, 1): alpha {alpha}, beta {beta}"
        );
        DoubleSmoother {
            alpha,
            beta,
            level: 0.0,
            trend: 0.0,
        }
    }

    /// Folds in the last observed value `y_t`; returns the new `S_t`.
    pub fn observe(&mut self, y: f64) -> f64 {
        let previous = self.level;
        self.level = self.alpha * y + (1.0 - self.alpha) * (previous + self.trend);
        self.trend = self.beta * (self.level - previous) + (1.0 - self.beta) * self.trend;
        self.level
    }

    /// `S_t`: the predicted average value.
    pub fn level(&self) -> f64 {
        self.level
    }

    /// `b_t`: the trend per observation period.
    pub fn trend(&self) -> f64 {
        self.trend
    }

    /// `S_t + k·b_t`: the value expected `periods` observation periods ahead.
    pub fn forecast(&self, periods: f64) -> f64 {
        self.level + periods * self.trend
    }
}

/// Counts events (logins or logoffs) during a period and folds the period's rate
/// into a [`DoubleSmoother`] when the period ends.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateSmoother {
    smoother: DoubleSmoother,
    count: u64,
}

impl RateSmoother {
    pub fn new(alpha: f64, beta: f64) -> Self {
        RateSmoother {
            smoother: DoubleSmoother::new(alpha, beta),
            count: 0,
        }
    }

    /// `n` events happened in the current period.
    pub fn record(&mut self, n: u64) {
        self.count = self.count.saturating_add(n);
    }

    /// Events counted in the current period, not yet folded in.
    pub fn pending(&self) -> u64 {
        self.count
    }

    /// Ends the current period (`period_ms` long): its rate, events per ms, becomes
    /// `y_t`. Returns the new predicted rate.
    pub fn fold(&mut self, period_ms: f64) -> f64 {
        let y = self.count as f64 / period_ms.max(1e-3);
        self.count = 0;
        self.smoother.observe(y);
        self.rate_per_ms()
    }

    /// The predicted average rate, events per ms (never negative).
    pub fn rate_per_ms(&self) -> f64 {
        self.smoother.level().max(0.0)
    }

    pub fn smoother(&self) -> &DoubleSmoother {
        &self.smoother
    }

    /// Nothing pending and nothing left to predict: the tracker can be forgotten.
    pub fn is_quiet(&self) -> bool {
        self.count == 0 && self.smoother.level().abs() < 1e-9 && self.smoother.trend().abs() < 1e-9
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn smoother_matches_hand_computed_values() {
        let mut s = DoubleSmoother::new(0.9, 0.1);
        // S1 = 0.9·0.3 + 0.1·(0 + 0) = 0.27; b1 = 0.1·0.27 + 0.9·0 = 0.027
        assert!(close(s.observe(0.3), 0.27));
        assert!(close(s.trend(), 0.027));
        // S2 = 0.27 + 0.1·(0.27 + 0.027) = 0.2997; b2 = 0.1·0.0297 + 0.9·0.027 = 0.02727
        assert!(close(s.observe(0.3), 0.2997));
        assert!(close(s.trend(), 0.02727));
        // S3 = 0 + 0.1·(0.2997 + 0.02727) = 0.032697
        // b3 = 0.1·(0.032697 − 0.2997) + 0.9·0.02727 = −0.0021573
        assert!(close(s.observe(0.0), 0.032697));
        assert!(close(s.trend(), -0.0021573));
        // Two periods ahead: 0.032697 − 2·0.0021573
        assert!(close(s.forecast(2.0), 0.0283824));
    }

    #[test]
    fn other_weights() {
        let mut s = DoubleSmoother::new(0.5, 0.5);
        // S1 = 0.5·4 = 2, b1 = 0.5·2 = 1; S2 = 0.5·4 + 0.5·(2 + 1) = 3.5, b2 = 0.5·1.5 + 0.5·1 = 1.25
        s.observe(4.0);
        assert!(close(s.level(), 2.0) && close(s.trend(), 1.0));
        s.observe(4.0);
        assert!(close(s.level(), 3.5) && close(s.trend(), 1.25));
    }

    #[test]
    fn rate_of_the_seed_example() {
        // [0065]: Δt = 10 000 ms, 300 logins in the last Δt/10 = 1000 ms: y = 0.3 per ms.
        let mut r = RateSmoother::new(SEED_SMOOTHING_ALPHA, SEED_SMOOTHING_BETA);
        r.record(100);
        r.record(200);
        assert_eq!(r.pending(), 300);
        assert!(close(r.fold(1000.0), 0.27));
        assert_eq!(r.pending(), 0);
        // A quiet period: S = 0.1·(0.27 + 0.027) = 0.0297.
        assert!(close(r.fold(1000.0), 0.0297));
        assert!(!r.is_quiet());
    }

    #[test]
    fn rates_are_never_negative() {
        let mut r = RateSmoother::new(0.9, 0.1);
        r.record(1000);
        r.fold(1.0);
        for _ in 0..4 {
            r.fold(1.0);
        }
        assert!(
            r.smoother().level() < 0.0,
            "the trend overshoots below zero"
        );
        assert_eq!(r.rate_per_ms(), 0.0);
    }

    #[test]
    #[should_panic(expected = "smoothing weights")]
    fn weights_are_checked() {
        DoubleSmoother::new(1.0, 0.1);
    }
}
