//! The traffic the operator's servers sent so far in the current day, week and
//! month (C3's `network.traffic_budget`: "month-to-date"), kept in the history
//! store. The coordinator cannot see bytes, only heartbeats: a server's traffic
//! over an interval is read as the stream-rate share of each child link whose
//! last seq moved on, plus its local viewers at the stream rate
//! ([`super::heartbeat::read`]'s uplink achieved), times the time between its
//! two heartbeats (at most [`MAX_INTERVAL_US`]). An approximation: a link that
//! moved at all counts as carrying its whole share; framing, repair pulls and
//! retransmissions are not counted. `docs/POLICIES.md` says so.
//!
//! Periods are UTC: a day from midnight, a week from Monday, a month from its
//! first day. A period that began after the last count starts from zero. One GB
//! is 10^9 bytes. Not persisted: a restarted coordinator counts from zero.

use crate::policy::Period;

/// The longest interval one heartbeat is counted over (s): a server heard again
/// after a gap is not credited with traffic over the whole gap.
pub const MAX_INTERVAL_US: u64 = 10_000_000;

const DAY_S: u64 = 86_400;

/// Bytes counted in the current period of each kind.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrafficMeter {
    /// (period key, bytes) for day, week, month.
    counts: [(u64, f64); 3],
}

fn slot(p: Period) -> usize {
    match p {
        Period::Day => 0,
        Period::Week => 1,
        Period::Month => 2,
    }
}

/// The period containing Unix time `unix_s`, as a number that changes when a
/// new period begins.
pub fn period_key(p: Period, unix_s: u64) -> u64 {
    let days = unix_s / DAY_S;
    match p {
        Period::Day => days,
        // 1970-01-01 was a Thursday: weeks start three days later in the count.
        Period::Week => (days + 3) / 7,
        Period::Month => {
            let (y, m) = year_month(days);
            y * 12 + m
        }
    }
}

/// The civil (year, month 0..12) of a day count from 1970-01-01 (proleptic
/// Gregorian; H. Hinnant's `civil_from_days`).
fn year_month(days: u64) -> (u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m - 1)
}

impl TrafficMeter {
    /// `bytes` sent at Unix time `unix_s`.
    pub fn add(&mut self, unix_s: u64, bytes: f64) {
        for p in [Period::Day, Period::Week, Period::Month] {
            let key = period_key(p, unix_s);
            let c = &mut self.counts[slot(p)];
            if c.0 != key {
                *c = (key, 0.0);
            }
            c.1 += bytes.max(0.0);
        }
    }

    /// GB sent in the period of kind `p` that contains `unix_s`.
    pub fn used_gb(&self, p: Period, unix_s: u64) -> f64 {
        let (key, bytes) = self.counts[slot(p)];
        if key == period_key(p, unix_s) {
            bytes / 1e9
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_start_at_midnight_monday_and_the_first_of_the_month() {
        // 2024-02-29 (a Thursday) 23:00 UTC and 2024-03-01 00:00 UTC.
        let feb29 = 1_709_247_600;
        let mar1 = feb29 + 3600;
        assert_ne!(
            period_key(Period::Day, feb29),
            period_key(Period::Day, mar1)
        );
        assert_ne!(
            period_key(Period::Month, feb29),
            period_key(Period::Month, mar1)
        );
        assert_eq!(
            period_key(Period::Week, feb29),
            period_key(Period::Week, mar1)
        );
        // Monday 2024-03-04 00:00 UTC starts a new week.
        let mon = mar1 + 3 * DAY_S;
        assert_ne!(
            period_key(Period::Week, mon - 1),
            period_key(Period::Week, mon)
        );
        assert_eq!(year_month(0), (1970, 0));
    }

    #[test]
    fn a_count_starts_from_zero_when_its_period_begins() {
        let mut m = TrafficMeter::default();
        let t = 1_709_247_600; // Feb 29th, 23:00
        m.add(t, 2e9);
        assert_eq!(m.used_gb(Period::Month, t), 2.0);
        assert_eq!(m.used_gb(Period::Month, t + 3600), 0.0, "March began");
        m.add(t + 3600, 1e9);
        assert_eq!(m.used_gb(Period::Month, t + 3600), 1.0);
        assert_eq!(m.used_gb(Period::Week, t + 3600), 3.0, "same week");
    }
}
