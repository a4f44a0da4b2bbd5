//! A silent coordinator link, and what the other coordinators say meanwhile
//! (D7, X7). Sans-IO: the driver hands in the link's count of datagrams
//! received and its RTT every [`CHECK_EVERY`], and the answers of the probes
//! it sent ([`super::leader_probe`]); this decides when to ask and when to move.
//!
//! A link that hears nothing for 1.5 keep-alives plus two RTTs is *silent*:
//! the node then asks its other coordinator addresses who leads, one every
//! [`PROBE_EVERY`] in turn (every [`SLOW_PROBE_EVERY`] once the silence is
//! older than [`QUICK_FOR`]), without dropping the link. It moves only when one of them
//! names a leader that is not the address it talks to — the election in etcd
//! moved on. A healthy but busy coordinator still holds its lease, so the
//! others keep naming it and the node stays: no false failover, only a few
//! probes. Once the link is heard again, probing stops and late answers are
//! ignored. Without this the node found a dead leader out only when the QUIC
//! link idled out ([`crate::link::COORDINATOR_IDLE_TIMEOUT_MS`], 2 s).
//!
//! The herd: every node of a dead coordinator finds its silence within the
//! same few hundred milliseconds. Each node is given at start (the driver
//! draws them) a delay of up to [`PROBE_EVERY`] before its first probe and the
//! address its rounds start from, so their probes spread over the interval and
//! over the surviving coordinators instead of all asking the first address at
//! once ([`Silence::spread`]).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How often the driver looks at the coordinator link.
pub(crate) const CHECK_EVERY: Duration = Duration::from_millis(100);
/// Probes of a fresh silence go out this often (one address at a time, in
/// turn: 10 a second per node at most, for the [`QUICK_FOR`] of a silence).
pub(crate) const PROBE_EVERY: Duration = Duration::from_millis(100);
/// A silence older than this is probed every [`SLOW_PROBE_EVERY`] only (the
/// link has idled out by then; the Register retries take over).
pub(crate) const QUICK_FOR: Duration = Duration::from_secs(3);
pub(crate) const SLOW_PROBE_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub(crate) struct Silence {
    keep_alive: Duration,
    /// The link's datagram count last seen (`None`: no connection).
    seen: Option<u64>,
    rtt: Duration,
    /// When the link last received something (or was moved).
    heard_at: Instant,
    last_probe: Option<Instant>,
    /// The address last asked (the next probe asks the one after it).
    last_asked: Option<SocketAddr>,
    /// Addresses asked whose answer has not come yet.
    in_flight: Vec<SocketAddr>,
    /// Waited past the silence before the first probe (see [`Silence::spread`]).
    first_delay: Duration,
    /// The position in the address list the first round starts from.
    start: usize,
}

impl Silence {
    pub(crate) fn new(now: Instant, keep_alive: Duration) -> Self {
        Silence {
            keep_alive,
            seen: None,
            rtt: Duration::ZERO,
            heard_at: now,
            last_probe: None,
            last_asked: None,
            in_flight: Vec::new(),
            first_delay: Duration::ZERO,
            start: 0,
        }
    }

    /// This node's place in the herd: `delay` (capped at [`PROBE_EVERY`]) is
    /// waited past the silence before its first probe, and its first round
    /// starts at `start` (modulo the addresses).
    pub(crate) fn spread(mut self, delay: Duration, start: usize) -> Self {
        self.first_delay = delay.min(PROBE_EVERY);
        self.start = start;
        self
    }

    /// The quiet a healthy link never shows: the keep-alive fires after one
    /// interval without a packet and its ACK is back within an RTT.
    pub(crate) fn silent_after(&self) -> Duration {
        self.keep_alive * 3 / 2 + 2 * self.rtt
    }

    /// The link now: datagrams received over its connections (`None`: none
    /// is up) and its RTT.
    pub(crate) fn observe(&mut self, now: Instant, received: Option<u64>, rtt: Duration) {
        if received.is_some() && received != self.seen {
            self.heard_at = now;
            self.last_probe = None;
            self.rtt = rtt;
        }
        self.seen = received;
    }

    /// Probes went out in this silence.
    pub(crate) fn probing(&self) -> bool {
        self.last_probe.is_some()
    }

    /// How long the link has heard nothing.
    pub(crate) fn quiet(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.heard_at)
    }

    /// Silent for how long (`None`: not silent).
    fn silence(&self, now: Instant) -> Option<Duration> {
        let quiet = self.quiet(now);
        (quiet >= self.silent_after()).then_some(quiet)
    }

    /// The address to ask who leads now, when the link is silent and a probe
    /// is due: the one after the last asked, not `current`, not one whose
    /// answer is still awaited.
    pub(crate) fn probe_due(
        &mut self,
        now: Instant,
        addrs: &[SocketAddr],
        current: SocketAddr,
    ) -> Option<SocketAddr> {
        let quiet = self.silence(now)?;
        if self.last_probe.is_none() && quiet < self.silent_after() + self.first_delay {
            return None;
        }
        let every = if quiet < QUICK_FOR {
            PROBE_EVERY
        } else {
            SLOW_PROBE_EVERY
        };
        if self
            .last_probe
            .is_some_and(|t| now.saturating_duration_since(t) < every)
        {
            return None;
        }
        let n = addrs.len();
        let after = self
            .last_asked
            .and_then(|l| addrs.iter().position(|a| *a == l))
            .map_or(self.start % n.max(1), |i| i + 1);
        let due = (0..n)
            .map(|k| addrs[(after + k) % n])
            .find(|a| *a != current && !self.in_flight.contains(a))?;
        self.last_probe = Some(now);
        self.last_asked = Some(due);
        self.in_flight.push(due);
        Some(due)
    }

    /// `probed` answered (`Some(leader)`: it named one; `None`: it knows none,
    /// or gave no answer): the address to move the link to, if any.
    pub(crate) fn answered(
        &mut self,
        now: Instant,
        probed: SocketAddr,
        current: SocketAddr,
        leader: Option<SocketAddr>,
    ) -> Option<SocketAddr> {
        self.in_flight.retain(|a| *a != probed);
        self.silence(now)?;
        leader.filter(|l| *l != current)
    }

    /// The link was pointed at another address: its new connection is given
    /// a whole silence to come up before probing starts again.
    pub(crate) fn moved(&mut self, now: Instant) {
        self.heard_at = now;
        self.last_probe = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(p: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], p))
    }

    const KEEP_ALIVE: Duration = Duration::from_millis(500);
    const RTT: Duration = Duration::from_millis(10);

    fn ms(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn a_link_heard_within_its_keep_alives_is_never_probed() {
        let t0 = Instant::now();
        let mut s = Silence::new(t0, KEEP_ALIVE);
        let addrs = [a(1), a(2), a(3)];
        // A keep-alive round trip every 500 ms: the quiet never reaches 770 ms.
        for i in 0..100u64 {
            let now = ms(t0, i * 100);
            s.observe(now, Some(i / 5), RTT);
            assert_eq!(s.probe_due(now, &addrs, a(1)), None, "at {i}00 ms");
        }
        assert_eq!(s.silent_after(), Duration::from_millis(770));
    }

    #[test]
    fn a_silent_link_asks_the_others_in_turn_and_moves_only_when_one_names_another_leader() {
        let t0 = Instant::now();
        let mut s = Silence::new(t0, KEEP_ALIVE);
        let addrs = [a(1), a(2), a(3)];
        s.observe(t0, Some(40), RTT);
        s.observe(ms(t0, 700), Some(40), RTT);
        assert_eq!(s.probe_due(ms(t0, 700), &addrs, a(1)), None);
        // 770 ms of quiet: the others are asked in turn, never the silent one.
        let now = ms(t0, 800);
        s.observe(now, Some(40), RTT);
        assert!(!s.probing());
        assert_eq!(s.probe_due(now, &addrs, a(1)), Some(a(2)));
        assert!(s.probing());
        assert_eq!(s.quiet(now), Duration::from_millis(800));
        assert_eq!(s.probe_due(now, &addrs, a(1)), None, "one a round");
        // The lease of 1 still holds in etcd: 2 names it; the node stays.
        assert_eq!(s.answered(ms(t0, 805), a(2), a(1), Some(a(1))), None);
        assert_eq!(s.probe_due(ms(t0, 850), &addrs, a(1)), None);
        assert_eq!(s.probe_due(ms(t0, 900), &addrs, a(1)), Some(a(3)));
        // 3 knows no leader yet (the key just expired).
        assert_eq!(s.answered(ms(t0, 906), a(3), a(1), None), None);
        assert_eq!(s.probe_due(ms(t0, 1000), &addrs, a(1)), Some(a(2)));
        // 3 took over: 2 says so and the node moves there.
        assert_eq!(s.answered(ms(t0, 1005), a(2), a(1), Some(a(3))), Some(a(3)));
        s.moved(ms(t0, 1005));
        assert_eq!(
            s.probe_due(ms(t0, 1100), &addrs, a(3)),
            None,
            "a moved link gets its time"
        );
        // A late answer while the new link is not silent moves nothing.
        s.probe_due(ms(t0, 1800), &addrs, a(3));
        s.observe(ms(t0, 1850), Some(3), RTT);
        assert_eq!(s.answered(ms(t0, 1860), a(1), a(3), Some(a(2))), None);
    }

    #[test]
    fn a_busy_coordinator_heard_again_keeps_its_nodes() {
        let t0 = Instant::now();
        let mut s = Silence::new(t0, KEEP_ALIVE);
        let addrs = [a(1), a(2)];
        s.observe(t0, Some(7), RTT);
        assert_eq!(s.probe_due(ms(t0, 900), &addrs, a(1)), Some(a(2)));
        // The stalled coordinator answers again before the probe does.
        s.observe(ms(t0, 950), Some(9), RTT);
        assert!(!s.probing(), "heard: the silence is over");
        // A standby with a newer view names another: not followed while the
        // link is heard (the old leader will say so itself if it lost its lease).
        assert_eq!(s.answered(ms(t0, 960), a(2), a(1), Some(a(2))), None);
        assert_eq!(s.probe_due(ms(t0, 1000), &addrs, a(1)), None);
    }

    #[test]
    fn probes_slow_down_with_an_old_silence_and_a_slow_answer_is_not_asked_twice() {
        let t0 = Instant::now();
        let mut s = Silence::new(t0, KEEP_ALIVE);
        let addrs = [a(1), a(2), a(3)];
        s.observe(t0, None, RTT);
        assert_eq!(s.probe_due(ms(t0, 800), &addrs, a(1)), Some(a(2)));
        // 2 has not answered yet (its probe times out later): 3, then 3 again.
        assert_eq!(s.probe_due(ms(t0, 900), &addrs, a(1)), Some(a(3)));
        assert_eq!(s.answered(ms(t0, 950), a(3), a(1), None), None);
        assert_eq!(s.probe_due(ms(t0, 1000), &addrs, a(1)), Some(a(3)));
        assert_eq!(s.answered(ms(t0, 1050), a(3), a(1), None), None);
        assert_eq!(s.answered(ms(t0, 1100), a(2), a(1), None), None);
        let mut sent = 0;
        for t in (3_000..6_000).step_by(100) {
            if let Some(p) = s.probe_due(ms(t0, t), &addrs, a(1)) {
                let _ = s.answered(ms(t0, t), p, a(1), None);
                sent += 1;
            }
        }
        assert_eq!(sent, 3, "one a second after {QUICK_FOR:?}");
        // One address: nowhere to ask.
        let mut one = Silence::new(t0, KEEP_ALIVE);
        assert_eq!(one.probe_due(ms(t0, 5_000), &[a(1)], a(1)), None);
    }

    #[test]
    fn the_herd_is_spread_over_the_interval_and_the_addresses() {
        let t0 = Instant::now();
        let addrs = [a(1), a(2), a(3), a(4)];
        // 770 ms of quiet make the silence; this node waits 60 ms more and
        // starts its round at the fourth address.
        let mut s = Silence::new(t0, KEEP_ALIVE).spread(Duration::from_millis(60), 3);
        s.observe(t0, Some(1), RTT);
        assert_eq!(s.probe_due(ms(t0, 800), &addrs, a(1)), None);
        assert_eq!(s.probe_due(ms(t0, 830), &addrs, a(1)), Some(a(4)));
        // Then in turn, skipping the silent one, every PROBE_EVERY.
        assert_eq!(s.probe_due(ms(t0, 930), &addrs, a(1)), Some(a(2)));
        // The delay never exceeds one probe interval.
        let mut late = Silence::new(t0, KEEP_ALIVE).spread(Duration::from_secs(5), 0);
        late.observe(t0, Some(1), RTT);
        assert_eq!(late.probe_due(ms(t0, 869), &addrs, a(1)), None);
        assert_eq!(late.probe_due(ms(t0, 870), &addrs, a(1)), Some(a(2)));
        // Many nodes: their first probes fall across the whole interval and
        // on every other address.
        let mut firsts = std::collections::BTreeMap::new();
        for i in 0..300u64 {
            let mut n =
                Silence::new(t0, KEEP_ALIVE).spread(Duration::from_millis(i % 100), i as usize);
            n.observe(t0, Some(1), RTT);
            let at = (770..=900)
                .find_map(|t| n.probe_due(ms(t0, t), &addrs, a(1)).map(|p| (t, p)))
                .expect("probed within the interval");
            *firsts.entry(at.1).or_insert(0) += 1;
            assert!(at.0 >= 770 && at.0 < 870, "first probe at {} ms", at.0);
        }
        assert_eq!(firsts.len(), 3, "every other address asked first by some");
        assert!(firsts.values().all(|n| *n >= 75), "{firsts:?}");
    }
}
