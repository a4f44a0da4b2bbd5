//! How long a peer taken back after a coordinator restart waits for its reported
//! parents, counted in its own heartbeats (D7; issue 12). The wait is
//! [`super::rejoin::ADOPT_WAIT_HEARTBEATS`] heartbeat intervals from the peer's
//! first report, where the interval is the larger of the coordinator's and the
//! widest spacing seen between the peer's own reports. Peers may heartbeat less
//! often than the coordinator's interval (2 s against 1 s in
//! `peers-coordinator-crash-100k`); a wait of two coordinator intervals then ran
//! out at the peer's second report, while parents whose first report came up to
//! one peer interval after the child's were still coming back: 1–1.3 % of 10⁴
//! peers were re-placed 0.4 s before their parents returned.

use tiercast_proto::Timestamp;

/// A peer's reports while it waits: the first, the last, the widest spacing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ReportWait {
    /// Its first report: the wait runs from then.
    pub since: Timestamp,
    last: Timestamp,
    /// Widest spacing between two consecutive reports seen, µs.
    gap_us: u64,
}

impl ReportWait {
    /// A wait starting with a report at `now`.
    pub(crate) fn new(now: Timestamp) -> Self {
        ReportWait {
            since: now,
            last: now,
            gap_us: 0,
        }
    }

    /// Another report at `now`.
    pub(crate) fn report(&mut self, now: Timestamp) {
        self.gap_us = self.gap_us.max(now.saturating_since(self.last));
        self.last = now;
    }

    /// Whether the wait ran out by `now`: `heartbeats` intervals from the first
    /// report, an interval being the larger of `interval_us` (the coordinator's)
    /// and the peer's own widest spacing.
    pub(crate) fn waited(&self, now: Timestamp, heartbeats: u64, interval_us: u64) -> bool {
        let wait = heartbeats.saturating_mul(interval_us.max(self.gap_us));
        now.saturating_since(self.since) >= wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Timestamp {
        Timestamp::from_millis(v)
    }

    #[test]
    fn a_peer_heartbeating_at_the_coordinators_interval_waits_two_of_them() {
        let mut w = ReportWait::new(ms(0));
        w.report(ms(1000));
        assert!(!w.waited(ms(1000), 2, 1_000_000));
        w.report(ms(2000));
        assert!(w.waited(ms(2000), 2, 1_000_000));
    }

    #[test]
    fn a_peer_heartbeating_every_two_seconds_waits_two_of_its_own_intervals() {
        let mut w = ReportWait::new(ms(0));
        w.report(ms(2000));
        // Two coordinator intervals are over, two of its own are not.
        assert!(!w.waited(ms(2000), 2, 1_000_000));
        w.report(ms(4000));
        assert!(w.waited(ms(4000), 2, 1_000_000));
    }

    #[test]
    fn a_report_sent_early_does_not_shorten_the_wait() {
        // The heartbeat sent right behind a Register, then the regular ones.
        let mut w = ReportWait::new(ms(0));
        w.report(ms(300));
        w.report(ms(2300));
        assert!(!w.waited(ms(2300), 2, 1_000_000));
        w.report(ms(4300));
        assert!(w.waited(ms(4300), 2, 1_000_000));
    }
}
