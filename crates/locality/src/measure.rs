//! L2 distance by measurement: the prober. A measurement of a target is
//! `probes_per_measure` Measure probes, spaced by `probe_interval_ms`; its RTT is
//! the minimum of the answers (queueing and jitter only ever add), `None` when
//! none came back within `probe_timeout_ms` of the last probe. Results are kept
//! (time-stamped) as the measurement cache the other rules read.

use crate::config::LocalityConfig;
use std::collections::{BTreeMap, VecDeque};
use tiercast_proto::{NodeId, Timestamp};

#[derive(Clone, Debug)]
struct ProbeSet {
    sent: u8,
    next_send: Timestamp,
    last_sent: Timestamp,
    min_rtt_us: Option<u64>,
    answers: u8,
}

/// One finished measurement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Measured {
    pub target: NodeId,
    pub rtt_us: Option<u64>,
}

#[derive(Debug, Default)]
pub struct Prober {
    running: BTreeMap<NodeId, ProbeSet>,
    /// nonce → (target, sent at).
    in_flight: BTreeMap<u32, (NodeId, Timestamp)>,
    next_nonce: u32,
    /// Probes to send now: (target, nonce).
    to_send: VecDeque<(NodeId, u32)>,
    done: VecDeque<Measured>,
    /// The last result per target (µs, when); `None` RTT = unreachable.
    cache: BTreeMap<NodeId, (Option<u64>, Timestamp)>,
    pub probes_sent: u64,
}

impl Prober {
    /// Starts measuring `target` unless a measurement of it is running.
    pub fn start(&mut self, now: Timestamp, target: NodeId) {
        self.running.entry(target).or_insert(ProbeSet {
            sent: 0,
            next_send: now,
            last_sent: now,
            min_rtt_us: None,
            answers: 0,
        });
    }

    pub fn is_running(&self, target: NodeId) -> bool {
        self.running.contains_key(&target)
    }

    /// The cached RTT of `target` if measured (unreachable = `Some(None)`).
    pub fn cached(&self, target: NodeId) -> Option<Option<u64>> {
        self.cache.get(&target).map(|(r, _)| *r)
    }

    /// The cached RTT if measured no earlier than `since`.
    pub fn fresh(&self, target: NodeId, since: Timestamp) -> Option<Option<u64>> {
        self.cache
            .get(&target)
            .filter(|(_, at)| *at >= since)
            .map(|(r, _)| *r)
    }

    /// Sends due probes and closes measurements whose last probe timed out.
    pub fn tick(&mut self, now: Timestamp, cfg: &LocalityConfig) {
        let mut finished = Vec::new();
        for (target, p) in self.running.iter_mut() {
            while p.sent < cfg.probes_per_measure && p.next_send <= now {
                self.next_nonce = self.next_nonce.wrapping_add(1);
                self.in_flight.insert(self.next_nonce, (*target, now));
                self.to_send.push_back((*target, self.next_nonce));
                self.probes_sent += 1;
                p.sent += 1;
                p.last_sent = now;
                p.next_send = now.plus_millis(cfg.probe_interval_ms);
            }
            let all_in = p.answers >= cfg.probes_per_measure;
            let timed_out = p.sent >= cfg.probes_per_measure
                && now >= p.last_sent.plus_millis(cfg.probe_timeout_ms);
            if all_in || timed_out {
                finished.push(*target);
            }
        }
        for t in finished {
            self.finish(now, t);
        }
        // Nonces of finished measurements are forgotten, bounded by the timeout.
        let horizon = Timestamp(now.0.saturating_sub(cfg.probe_timeout_ms * 1000 * 2));
        self.in_flight.retain(|_, (_, at)| *at >= horizon);
    }

    fn finish(&mut self, now: Timestamp, target: NodeId) {
        if let Some(p) = self.running.remove(&target) {
            self.cache.insert(target, (p.min_rtt_us, now));
            self.done.push_back(Measured {
                target,
                rtt_us: p.min_rtt_us,
            });
        }
    }

    /// An answer to probe `nonce` from `from` arrived at `now`.
    pub fn on_reply(&mut self, now: Timestamp, from: NodeId, nonce: u32, cfg: &LocalityConfig) {
        let Some((target, sent_at)) = self.in_flight.remove(&nonce) else {
            return;
        };
        if target != from {
            return;
        }
        if let Some(p) = self.running.get_mut(&target) {
            let rtt = now.saturating_since(sent_at);
            p.min_rtt_us = Some(p.min_rtt_us.map_or(rtt, |m| m.min(rtt)));
            p.answers += 1;
            if p.answers >= cfg.probes_per_measure {
                self.finish(now, target);
            }
        }
    }

    pub fn poll_probe(&mut self) -> Option<(NodeId, u32)> {
        self.to_send.pop_front()
    }

    pub fn poll_done(&mut self) -> Option<Measured> {
        self.done.pop_front()
    }

    /// When `tick` has something to do next.
    pub fn next_deadline(&self, cfg: &LocalityConfig) -> Option<Timestamp> {
        self.running
            .values()
            .map(|p| {
                if p.sent < cfg.probes_per_measure {
                    p.next_send
                } else {
                    p.last_sent.plus_millis(cfg.probe_timeout_ms)
                }
            })
            .min()
    }

    /// Drops the oldest cached results beyond `max` entries.
    pub fn trim_cache(&mut self, max: usize) {
        if self.cache.len() <= max {
            return;
        }
        let mut ages: Vec<(Timestamp, NodeId)> =
            self.cache.iter().map(|(n, (_, at))| (*at, *n)).collect();
        ages.sort();
        for (_, n) in ages.into_iter().take(self.cache.len() - max) {
            self.cache.remove(&n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimum_of_the_probes_and_timeout() {
        let cfg = LocalityConfig::default();
        let mut p = Prober::default();
        let t0 = Timestamp::ZERO;
        p.start(t0, NodeId(5));
        p.tick(t0, &cfg);
        let (to, n1) = p.poll_probe().unwrap();
        assert_eq!(to, NodeId(5));
        assert!(p.poll_probe().is_none(), "probes are spaced");
        p.on_reply(Timestamp::from_millis(30), NodeId(5), n1, &cfg);
        p.tick(Timestamp::from_millis(20), &cfg);
        let (_, n2) = p.poll_probe().unwrap();
        p.on_reply(Timestamp::from_millis(32), NodeId(5), n2, &cfg); // 12 ms
        p.tick(Timestamp::from_millis(40), &cfg);
        let (_, _n3) = p.poll_probe().unwrap(); // lost
        assert!(p.poll_done().is_none());
        // A reply from the wrong node is ignored.
        p.on_reply(Timestamp::from_millis(41), NodeId(6), _n3, &cfg);
        let t = p.next_deadline(&cfg).unwrap();
        assert_eq!(t, Timestamp::from_millis(1040));
        p.tick(t, &cfg);
        assert_eq!(
            p.poll_done(),
            Some(Measured {
                target: NodeId(5),
                rtt_us: Some(12_000)
            })
        );
        assert_eq!(p.cached(NodeId(5)), Some(Some(12_000)));
        assert_eq!(p.probes_sent, 3);
    }

    #[test]
    fn unanswered_target_is_unreachable() {
        let cfg = LocalityConfig::default();
        let mut p = Prober::default();
        p.start(Timestamp::ZERO, NodeId(1));
        let mut now = Timestamp::ZERO;
        while let Some(t) = p.next_deadline(&cfg) {
            now = t.max(now);
            p.tick(now, &cfg);
            while p.poll_probe().is_some() {}
        }
        assert_eq!(p.poll_done().unwrap().rtt_us, None);
    }
}
