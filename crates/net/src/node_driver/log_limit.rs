//! Rate-limited warnings (X3, X4): a relay fed blocks under a key it does not
//! know (an origin restarted with a new key, a forger) would log every block;
//! each kind is logged at most once per [`LOG_EVERY`] per channel, with the
//! number suppressed since. Every block is still counted by the machine.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tiercast_proto::ChannelId;

pub const LOG_EVERY: Duration = Duration::from_secs(1);
/// Channels tracked at most (a node carries ≤ 64); beyond, the oldest is forgotten.
const MAX_TRACKED: usize = 256;

#[derive(Default)]
pub struct LogLimit {
    last: BTreeMap<ChannelId, (Instant, u64)>,
}

impl LogLimit {
    /// `Some(suppressed)` when this occurrence is to be logged (with how many
    /// were not since the last one), `None` when it is to be counted only.
    pub fn allow(&mut self, channel: ChannelId, now: Instant) -> Option<u64> {
        if self.last.len() >= MAX_TRACKED && !self.last.contains_key(&channel) {
            let oldest = self
                .last
                .iter()
                .min_by_key(|(_, (t, _))| *t)
                .map(|(c, _)| *c);
            if let Some(c) = oldest {
                self.last.remove(&c);
            }
        }
        match self.last.get_mut(&channel) {
            Some((at, n)) if now.duration_since(*at) < LOG_EVERY => {
                *n += 1;
                None
            }
            Some((at, n)) => {
                let suppressed = *n;
                *at = now;
                *n = 0;
                Some(suppressed)
            }
            None => {
                self.last.insert(channel, (now, 0));
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_second_per_channel_with_the_count_of_the_others() {
        let mut l = LogLimit::default();
        let t0 = Instant::now();
        assert_eq!(l.allow(ChannelId(1), t0), Some(0));
        for i in 1..25 {
            assert_eq!(
                l.allow(ChannelId(1), t0 + Duration::from_millis(i * 40)),
                None
            );
        }
        assert_eq!(l.allow(ChannelId(2), t0), Some(0), "channels apart");
        assert_eq!(l.allow(ChannelId(1), t0 + LOG_EVERY), Some(24));
    }
}
