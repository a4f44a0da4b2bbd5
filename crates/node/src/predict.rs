//! The ΔT look-ahead at a relay (V7, seed 001 [0054], [0058], [0062]): the relay
//! tracks its own login and logoff rates with the double exponential smoothing of
//! `tiercast_proto::smoothing` (updated every ΔT/10) and
//! - sends DISTRIBUTE early, when at those rates it would reach its max threshold
//!   within ΔT (time for the coordinator to bring new relays up before anyone is
//!   refused);
//! - sends CONSOLIDATE only in a contracting mode, while log-offs exceed log-ins.
//!
//! Off when `NodeConfig::predict_delta_t_ms` is 0 (the default): V4/V5 thresholds only.

use crate::channel::Phase;
use crate::event::Event;
use crate::node::Node;
use tiercast_proto::smoothing::{SEED_SMOOTHING_ALPHA, SEED_SMOOTHING_BETA};
use tiercast_proto::{ChannelId, Message, NodeRole, RateSmoother, Timestamp, COORDINATOR_ID};

/// A relay's own login and logoff rates (events per ms, machine-wide).
#[derive(Clone, Debug)]
pub struct LoadTrend {
    delta_t_ms: u64,
    period_ms: u64,
    last_fold: Timestamp,
    next_fold: Timestamp,
    logins: RateSmoother,
    logoffs: RateSmoother,
}

impl LoadTrend {
    pub fn new(now: Timestamp, delta_t_ms: u64) -> Self {
        let period_ms = (delta_t_ms / 10).max(1);
        LoadTrend {
            delta_t_ms,
            period_ms,
            last_fold: now,
            next_fold: now.plus_millis(period_ms),
            logins: RateSmoother::new(SEED_SMOOTHING_ALPHA, SEED_SMOOTHING_BETA),
            logoffs: RateSmoother::new(SEED_SMOOTHING_ALPHA, SEED_SMOOTHING_BETA),
        }
    }

    pub fn login(&mut self) {
        self.logins.record(1);
    }

    pub fn logoff(&mut self) {
        self.logoffs.record(1);
    }

    pub fn next_fold(&self) -> Timestamp {
        self.next_fold
    }

    /// Ends the ΔT/10 period when due: its counts become the observed rates.
    pub fn fold_if_due(&mut self, now: Timestamp) -> bool {
        if now < self.next_fold {
            return false;
        }
        let elapsed_ms = (now.saturating_since(self.last_fold) as f64 / 1000.0).max(1.0);
        self.logins.fold(elapsed_ms);
        self.logoffs.fold(elapsed_ms);
        self.last_fold = now;
        self.next_fold = now.plus_millis(self.period_ms);
        true
    }

    pub fn login_rate(&self) -> f64 {
        self.logins.rate_per_ms()
    }

    pub fn logoff_rate(&self) -> f64 {
        self.logoffs.rate_per_ms()
    }

    /// The load expected ΔT from now at the predicted rates.
    pub fn projected(&self, load: u32) -> f64 {
        load as f64 + self.delta_t_ms as f64 * (self.login_rate() - self.logoff_rate())
    }

    /// Log-offs exceed log-ins (the predicted rates; the current period's counts
    /// break a tie, so a relay whose rates have decayed to nothing can still tell).
    pub fn contracting(&self) -> bool {
        let (lin, loff) = (self.login_rate(), self.logoff_rate());
        loff > lin || (loff == lin && self.logoffs.pending() > self.logins.pending())
    }
}

impl Node {
    /// The relay's predicted rates, when the look-ahead is on.
    pub fn load_trend(&self) -> Option<&LoadTrend> {
        self.trend.as_ref()
    }

    pub(crate) fn note_login(&mut self) {
        if let Some(t) = self.trend.as_mut() {
            t.login();
        }
    }

    pub(crate) fn note_logoff(&mut self) {
        if let Some(t) = self.trend.as_mut() {
            t.logoff();
        }
    }

    /// At its rates, the machine reaches its max threshold within ΔT.
    pub(crate) fn foresees_full(&self, load: u32) -> bool {
        self.trend
            .as_ref()
            .is_some_and(|t| t.projected(load) >= self.cfg.max_threshold() as f64)
    }

    /// CONSOLIDATE is allowed: always without the look-ahead, else only while
    /// log-offs exceed log-ins.
    pub(crate) fn in_contracting_mode(&self) -> bool {
        self.trend.as_ref().is_none_or(|t| t.contracting())
    }

    /// Every ΔT/10: fold the rates, then DISTRIBUTE if the max threshold is now
    /// foreseen within ΔT, and CONSOLIDATE the channels below the min threshold that
    /// were waiting for a contracting mode.
    pub(crate) fn predict_tick(&mut self, now: Timestamp) {
        let Some(t) = self.trend.as_mut() else {
            return;
        };
        if !t.fold_if_due(now) || self.cfg.role != NodeRole::Relay {
            return;
        }
        let load = self.machine_load();
        if self.foresees_full(load) {
            self.distribute_expanding(load);
        }
        if !self.in_contracting_mode() {
            return;
        }
        let min = self.cfg.min_threshold;
        let due: Vec<(ChannelId, u32)> = self
            .channels
            .iter()
            .filter(|(_, c)| {
                c.phase == Phase::Contracting
                    && c.load() < min
                    && !c.consolidate_pending
                    && !c.consolidated
            })
            .map(|(id, c)| (*id, c.load()))
            .collect();
        for (channel, load) in due {
            if let Some(ch) = self.channels.get_mut(&channel) {
                ch.consolidate_pending = true;
            }
            self.send(COORDINATOR_ID, Message::Consolidate { channel, load });
            self.events
                .push_back(Event::ConsolidateSent { channel, load });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::LoadTrend;
    use tiercast_proto::Timestamp;

    #[test]
    fn rates_fold_every_tenth_of_delta_t() {
        let mut t = LoadTrend::new(Timestamp::ZERO, 10_000);
        for _ in 0..300 {
            t.login();
        }
        assert!(!t.fold_if_due(Timestamp::from_millis(999)));
        assert!(t.fold_if_due(Timestamp::from_millis(1000)));
        // [0065]: 300 logins in the last second: y = 0.3 per ms, S = 0.27.
        assert!((t.login_rate() - 0.27).abs() < 1e-12);
        // ΔT = 10 s ahead: 5 + 10 000 · 0.27 = 2705.
        assert!((t.projected(5) - 2705.0).abs() < 1e-6);
        assert!(!t.contracting());
        assert_eq!(t.next_fold(), Timestamp::from_millis(2000));
    }

    #[test]
    fn contracting_needs_more_logoffs_than_logins() {
        let mut t = LoadTrend::new(Timestamp::ZERO, 1000);
        assert!(!t.contracting(), "quiet is not contracting");
        t.logoff();
        assert!(
            t.contracting(),
            "a logoff in the current period breaks the tie"
        );
        t.login();
        t.login();
        t.fold_if_due(Timestamp::from_millis(100));
        assert!(!t.contracting());
        for _ in 0..5 {
            t.logoff();
        }
        t.fold_if_due(Timestamp::from_millis(200));
        assert!(t.contracting());
    }
}
