//! Connection set-up (X5; issue 13 Must show 1): a real node talks to another over
//! a QUIC connection it opens on its first message — the TLS 1.3 handshake (one
//! round trip) and the cluster-key admission (one more) before the message goes —
//! and keeps it while both ends live. `tiercast cluster` measured a viewer's
//! startup 140–300 ms longer than the simulator's, which sent the first message
//! at once: the simulator was wrong. A pair of hosts pays `rtts` round trips on
//! its first message (either way), again after either end crashed, left or
//! restarted. The real links' idle timeout is not modelled: a pair stays open.

use std::collections::HashMap;

/// Round trips before the first message of a connection: the handshake and the
/// admission (crates/net/src/link: dial + admission + message + reply measured
/// 489 ms at 80 ms one way, three round trips).
pub const DEFAULT_HANDSHAKE_RTTS: u32 = 2;

#[derive(Default)]
pub struct Connections {
    rtts: u32,
    /// Per host, bumped when it dies or restarts: its old connections are gone.
    incarnation: Vec<u32>,
    /// Open pairs (`low << 32 | high`) with both ends' incarnations at opening.
    open: HashMap<u64, (u32, u32)>,
}

impl Connections {
    /// `rtts` round trips per new connection; 0 switches the model off.
    pub fn new(rtts: u32) -> Self {
        Connections {
            rtts,
            ..Default::default()
        }
    }

    pub fn rtts(&self) -> u32 {
        self.rtts
    }

    fn incarnation(&self, host: u32) -> u32 {
        self.incarnation.get(host as usize).copied().unwrap_or(0)
    }

    /// `host` died, left or restarted: every connection it had is gone.
    pub fn reset(&mut self, host: u32) {
        if self.rtts == 0 {
            return;
        }
        let i = host as usize;
        if self.incarnation.len() <= i {
            self.incarnation.resize(i + 1, 0);
        }
        self.incarnation[i] = self.incarnation[i].wrapping_add(1);
    }

    /// The set-up delay of a message from `a` to `b` now (µs): 0 on an open
    /// connection, else `rtts` round trips of `rtt_us`, and the pair is open.
    pub fn setup_us(&mut self, a: u32, b: u32, rtt_us: u64) -> u64 {
        if self.rtts == 0 || a == b {
            return 0;
        }
        let (lo, hi) = (a.min(b), a.max(b));
        let key = u64::from(lo) << 32 | u64::from(hi);
        let now = (self.incarnation(lo), self.incarnation(hi));
        match self.open.insert(key, now) {
            Some(was) if was == now => 0,
            _ => u64::from(self.rtts) * rtt_us,
        }
    }

    /// Open pairs held (stale ones included until reused).
    pub fn len(&self) -> usize {
        self.open.len()
    }

    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_message_of_a_pair_pays_the_handshake_once_either_way() {
        let mut c = Connections::new(2);
        assert_eq!(c.setup_us(1, 2, 90_000), 180_000);
        assert_eq!(c.setup_us(1, 2, 90_000), 0);
        assert_eq!(
            c.setup_us(2, 1, 90_000),
            0,
            "one connection carries both ways"
        );
        assert_eq!(c.setup_us(1, 3, 10_000), 20_000);
    }

    #[test]
    fn a_crash_or_restart_closes_every_connection_of_that_host() {
        let mut c = Connections::new(2);
        c.setup_us(1, 2, 1000);
        c.setup_us(3, 2, 1000);
        c.reset(2);
        assert_eq!(c.setup_us(1, 2, 1000), 2000);
        assert_eq!(c.setup_us(2, 3, 1000), 2000);
        assert_eq!(c.setup_us(1, 2, 1000), 0);
    }

    #[test]
    fn zero_round_trips_is_the_old_model() {
        let mut c = Connections::new(0);
        assert_eq!(c.setup_us(1, 2, 90_000), 0);
        c.reset(1);
        assert_eq!(c.setup_us(1, 2, 90_000), 0);
        assert!(c.is_empty());
    }
}
