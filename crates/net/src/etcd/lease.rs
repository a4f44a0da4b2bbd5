//! What a leader may believe of its lease (X7 fencing): etcd counts a lease's
//! time to live from when it *handles* a keep-alive, which is never before the
//! leader *sent* it, so `sent + TTL` is a deadline etcd's own cannot precede. A
//! leader whose keep-alives stop being answered holds the lease until that
//! deadline and not a moment after: it stops issuing orders then, and a
//! standby can only win the election once etcd has expired the lease — later.

use std::time::{Duration, Instant};

/// See the module doc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseClock {
    valid_until: Instant,
}

impl LeaseClock {
    /// Granted (or renewed) for `ttl` by a request sent at `sent`.
    pub fn granted(sent: Instant, ttl: Duration) -> Self {
        LeaseClock {
            valid_until: sent + ttl,
        }
    }

    /// A keep-alive sent at `sent` was answered with `ttl` left: the deadline
    /// moves on (never back).
    pub fn renewed(&mut self, sent: Instant, ttl: Duration) {
        self.valid_until = self.valid_until.max(sent + ttl);
    }

    /// The lease is ours at `now`.
    pub fn holds(&self, now: Instant) -> bool {
        now < self.valid_until
    }

    pub fn valid_until(&self) -> Instant {
        self.valid_until
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lease_runs_from_the_send_time_of_the_last_answered_keep_alive() {
        let t0 = Instant::now();
        let ttl = Duration::from_secs(1);
        let mut lease = LeaseClock::granted(t0, ttl);
        assert!(lease.holds(t0 + Duration::from_millis(999)));
        assert!(!lease.holds(t0 + ttl));
        // Renewed by a keep-alive sent 500 ms in (answered whenever).
        lease.renewed(t0 + Duration::from_millis(500), ttl);
        assert!(lease.holds(t0 + Duration::from_millis(1400)));
        assert!(!lease.holds(t0 + Duration::from_millis(1500)));
        // An answer to an older keep-alive never shortens it.
        lease.renewed(t0 + Duration::from_millis(100), ttl);
        assert_eq!(lease.valid_until(), t0 + Duration::from_millis(1500));
    }
}
