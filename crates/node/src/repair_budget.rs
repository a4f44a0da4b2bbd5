//! The repair budget of a parent (D3, seed 003's lazy links): blocks sent in
//! answer to `Want` share the uplink with the pushes the coordinator booked, and a
//! repair queued ahead of a push delays every child of that push. So repairs get
//! `repair_share` of the declared uplink at most, and never more than what the
//! pushes of the last second left of [`UPLINK_FILL`] of it: a parent whose pushes
//! fill its uplink answers `WantUnmet` at once (the child asks another holder)
//! rather than building a queue that makes every pushed block late. At most a
//! second's worth is saved up.

use tiercast_proto::Timestamp;

/// Share of the declared uplink pushes and repairs together may fill (the rest:
/// control messages, wire overhead, the jitter of a second's measure).
pub const UPLINK_FILL: f64 = 0.9;

/// Token bucket of repair bytes, and the meter of the pushes beside them.
#[derive(Clone, Debug)]
pub struct RepairBudget {
    tokens: f64,
    at: Timestamp,
    /// Bytes sent as repairs, ever.
    repair_bytes: u64,
    /// The push meter's window: since when, and the push bytes then.
    window_at: Timestamp,
    window_push_bytes: u64,
    /// Pushes over the last whole window (bit/s).
    push_bps: f64,
}

impl RepairBudget {
    pub fn new(now: Timestamp) -> Self {
        RepairBudget {
            tokens: 0.0,
            at: now,
            repair_bytes: 0,
            window_at: now,
            window_push_bytes: 0,
            push_bps: 0.0,
        }
    }

    /// Whether a repair of `bytes` may go now (and takes it): `bytes_out` is every
    /// byte of blocks and shards the node sent so far, repairs included.
    pub fn take(
        &mut self,
        now: Timestamp,
        bytes: u64,
        uplink_kbps: u32,
        share: f64,
        bytes_out: u64,
    ) -> bool {
        if uplink_kbps == 0 {
            return true;
        }
        let pushed = bytes_out.saturating_sub(self.repair_bytes);
        let span = now.saturating_since(self.window_at);
        if span >= 1_000_000 {
            let b = pushed.saturating_sub(self.window_push_bytes);
            self.push_bps = b as f64 * 8.0 * 1e6 / span as f64;
            self.window_at = now;
            self.window_push_bytes = pushed;
        }
        let up_bps = f64::from(uplink_kbps) * 1000.0;
        let left_bps = (UPLINK_FILL * up_bps - self.push_bps).max(0.0);
        let rate = (share * up_bps).min(left_bps) / 8.0;
        let refilled = (self.tokens + rate * now.saturating_since(self.at) as f64 / 1e6).min(rate);
        self.at = now;
        if refilled < bytes as f64 {
            self.tokens = refilled;
            return false;
        }
        self.tokens = refilled - bytes as f64;
        self.repair_bytes += bytes;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Repair bytes granted over `secs` seconds of 10 ms asks of `ask` bytes, the
    /// node pushing `push_kbps` beside them on a `up_kbps` uplink.
    fn granted(up_kbps: u32, push_kbps: u64, secs: u64, ask: u64) -> u64 {
        let mut b = RepairBudget::new(Timestamp(0));
        let (mut out, mut got) = (0u64, 0u64);
        for ms in (10..=secs * 1000).step_by(10) {
            out += push_kbps * 1000 / 8 / 100; // 10 ms of pushes
            if b.take(Timestamp(ms * 1000), ask, up_kbps, 0.2, out) {
                out += ask;
                got += ask;
            }
        }
        got
    }

    #[test]
    fn repairs_get_their_share_when_the_pushes_leave_room() {
        // 10 Mbit/s, pushing 5: repairs may use 2 (the share) — 250 kB/s.
        let got = granted(10_000, 5_000, 10, 5_000);
        assert!((2_300_000..=2_600_000).contains(&got), "{got}");
    }

    #[test]
    fn repairs_only_get_what_the_pushes_leave_of_the_uplink() {
        // Pushing 8 of 10 Mbit/s: 0.9·10 − 8 = 1 Mbit/s left for repairs.
        let got = granted(10_000, 8_000, 10, 5_000);
        assert!((1_100_000..=1_400_000).contains(&got), "{got}");
        // A full uplink answers no repair at all once measured.
        let got = granted(10_000, 9_500, 10, 1_000);
        assert!(
            got <= 250_000,
            "only before the first second's measure: {got}"
        );
    }
}
