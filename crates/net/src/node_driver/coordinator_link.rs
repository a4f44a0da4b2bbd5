//! The node's link to its coordinator (D7, X3, X7): which of the coordinator
//! addresses it talks to, and what it says about that link on its own stderr
//! (through [`super::coordinator_cause`]: a coordinator that refused our
//! cluster key, one unreachable and why — one line per cause, rate-limited —,
//! the coordinator answering again). The machine decides when
//! to register again ([`tiercast_node::register`], [`tiercast_node::elsewhere`]);
//! this decides where:
//!
//! - the link to the coordinator went down, or a Register got no answer: the
//!   next address of the list (with one address, the same one);
//! - a coordinator that does not serve us named the leader: that address
//!   (added to the list if new) — unless it is the one we just lost, whose
//!   lease has not run out yet;
//! - it named no leader (an election under way, or it cannot reach etcd
//!   itself), or the one we just lost: the next address of the list;
//! - the link went silent and another address, asked who leads
//!   ([`super::silence`]), named a leader other than ours: that leader.

use super::coordinator_cause::{Cause, CauseLog};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

/// A leader named within this long of losing its address is not believed
/// (its lease has not run out in etcd yet).
const LOST_RECENTLY: Duration = Duration::from_secs(5);
/// Addresses learnt from `ServedElsewhere` or `Coordinators` kept at most.
const MAX_ADDRESSES: usize = 16;

#[derive(Debug)]
pub(crate) struct CoordinatorLink {
    addrs: Vec<SocketAddr>,
    current: usize,
    /// The address whose link went down last, and when.
    lost: Option<(SocketAddr, Instant)>,
    /// Addresses that said they know no leader, and when (skipped by `next`
    /// for a while, but believed when another names them the leader).
    uninformed: Vec<(SocketAddr, Instant)>,
    /// Trouble was reported since the coordinator last answered.
    troubled: bool,
    /// What was said about why the coordinator does not take us (rate limit).
    causes: CauseLog,
    /// An address that did not answer, for no cause known yet: the driver
    /// probes its TCP port ([`super::coordinator_cause::tcp_cause`]).
    probe_wanted: Option<SocketAddr>,
    /// The wait before the next registration, as last reported (ms).
    retry_in_ms: Option<u64>,
}

impl CoordinatorLink {
    pub(crate) fn new(addrs: &[SocketAddr]) -> Self {
        CoordinatorLink {
            addrs: addrs.to_vec(),
            current: 0,
            lost: None,
            uninformed: Vec::new(),
            troubled: false,
            causes: CauseLog::default(),
            probe_wanted: None,
            retry_in_ms: None,
        }
    }

    /// The address the link goes to now.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addrs[self.current]
    }

    /// Every address known, the current one included.
    pub(crate) fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The coordinator listed its cluster's processes (`Coordinators`, X7):
    /// those not known yet are added, up to [`MAX_ADDRESSES`]; what does not
    /// parse is skipped. The number added.
    pub(crate) fn learn(&mut self, addrs: &[String]) -> usize {
        let before = self.addrs.len();
        for a in addrs.iter().filter_map(|a| a.parse::<SocketAddr>().ok()) {
            if self.addrs.len() >= MAX_ADDRESSES {
                break;
            }
            if !self.addrs.contains(&a) {
                self.addrs.push(a);
            }
        }
        self.addrs.len() - before
    }

    /// Points at `leader` (learnt if new; replacing the current address when
    /// the list is full).
    fn point_at(&mut self, leader: SocketAddr) {
        match self.addrs.iter().position(|a| *a == leader) {
            Some(i) => self.current = i,
            None if self.addrs.len() < MAX_ADDRESSES => {
                self.addrs.push(leader);
                self.current = self.addrs.len() - 1;
            }
            None => {
                self.addrs[self.current] = leader;
            }
        }
    }

    /// Our link is silent and `probed`, asked who leads, named `leader`, not
    /// us: the address to register at.
    pub(crate) fn named_by_probe(&mut self, probed: SocketAddr, leader: SocketAddr) -> SocketAddr {
        let silent = self.addr();
        self.uninformed.retain(|(u, _)| *u != leader);
        self.point_at(leader);
        self.troubled = true;
        info!("coordinator {silent} is silent and {probed} names {leader} the leader: registering there");
        leader
    }

    /// The next address of the list, skipping one lost a moment ago when
    /// another is left.
    fn next(&mut self) -> SocketAddr {
        let n = self.addrs.len();
        self.uninformed
            .retain(|(_, at)| at.elapsed() < LOST_RECENTLY);
        let lost = self.lost.filter(|(_, at)| at.elapsed() < LOST_RECENTLY);
        let skip = |a: SocketAddr| {
            lost.is_some_and(|(l, _)| l == a) || self.uninformed.iter().any(|(u, _)| *u == a)
        };
        let step = (1..=n)
            .find(|s| !skip(self.addrs[(self.current + s) % n]))
            .unwrap_or(1);
        self.current = (self.current + step) % n;
        self.addr()
    }

    /// The link to the coordinator went down, or a dial to it failed: the
    /// address to register at next.
    pub(crate) fn down(&mut self, reason: &str, retry_in_ms: Option<u64>) -> SocketAddr {
        let lost = self.addr();
        self.lost = Some((lost, Instant::now()));
        let next = self.next();
        let retry = retry_in_ms.map_or("at once".to_string(), |ms| {
            format!("in {:.1} s", ms as f64 / 1000.0)
        });
        self.troubled = true;
        let now = Instant::now();
        if reason.contains("cluster key") {
            let retry_in_ms = retry_in_ms.or(self.retry_in_ms);
            if let Some(line) = self.causes.seen(lost, Cause::KeyMismatch, retry_in_ms, now) {
                warn!("{line}");
            }
        } else if self.causes.latest(lost) == Some(&Cause::KeyMismatch) {
            // Another trouble now: found out afresh at the next silence.
            self.causes.clear();
            info!("link to coordinator {lost} down ({reason}); registering again at {next}");
        } else if self.causes.known(lost, now).is_some() {
            // Said already, in better words than the dial's.
            debug!(
                "link to coordinator {lost} down ({reason}); registering again at {next} {retry}"
            );
        } else {
            info!("link to coordinator {lost} down ({reason}); registering again at {next}");
        }
        next
    }

    /// The address to probe for why it does not answer, once.
    pub(crate) fn take_probe(&mut self) -> Option<SocketAddr> {
        self.probe_wanted.take()
    }

    /// The probe of `addr` found `cause`.
    pub(crate) fn probed(&mut self, addr: SocketAddr, cause: Cause) {
        // Its port answers because it runs: the refused key explains the rest.
        if cause == Cause::NoAnswerOnUdp && self.causes.latest(addr) == Some(&Cause::KeyMismatch) {
            return;
        }
        if let Some(line) = self
            .causes
            .seen(addr, cause, self.retry_in_ms, Instant::now())
        {
            warn!("{line}");
        }
    }

    /// A Register got no answer: the address to send the next one to, when it
    /// is another.
    pub(crate) fn unanswered(&mut self, attempts: u32, retry_in_ms: u64) -> Option<SocketAddr> {
        self.troubled = true;
        self.retry_in_ms = Some(retry_in_ms);
        let silent = self.addr();
        let next = self.next();
        let now = Instant::now();
        // A refused key explains every silence that follows it (each retry
        // is refused again); other causes are found out afresh after a while.
        let known = match self.causes.latest(silent) {
            Some(Cause::KeyMismatch) => Some(Cause::KeyMismatch),
            _ => self.causes.known(silent, now).cloned(),
        };
        match known {
            Some(cause) => {
                if let Some(line) = self.causes.seen(silent, cause, Some(retry_in_ms), now) {
                    warn!("{line}");
                }
            }
            None => self.probe_wanted = Some(silent),
        }
        debug!(
            "coordinator {silent}: no answer to {attempts} registration(s), retrying in {:.1} s at {next}",
            retry_in_ms as f64 / 1000.0
        );
        (next != silent).then_some(next)
    }

    /// The coordinator at the current address does not serve us: where to go
    /// (`None`: stay and ask again — nowhere else is known).
    pub(crate) fn elsewhere(&mut self, leader: Option<&str>) -> Option<SocketAddr> {
        let here = self.addr();
        let named: Option<SocketAddr> = leader.and_then(|l| l.parse().ok());
        let just_lost = |l: SocketAddr| {
            self.lost
                .is_some_and(|(a, at)| a == l && at.elapsed() < LOST_RECENTLY)
        };
        let leader = match named {
            Some(l) if l != here && !just_lost(l) => l,
            _ => {
                if named.is_none() && self.uninformed.len() < MAX_ADDRESSES {
                    // It cannot tell who leads: ask the others first for a while.
                    self.uninformed.push((here, Instant::now()));
                }
                let next = self.next();
                return (next != here).then_some(next);
            }
        };
        self.uninformed.retain(|(u, _)| *u != leader);
        self.point_at(leader);
        info!(
            "the coordinator at our address does not serve us: registering at the leader, {leader}"
        );
        Some(leader)
    }

    /// The coordinator answered a registration.
    pub(crate) fn answered(&mut self) {
        self.causes.clear();
        self.probe_wanted = None;
        if std::mem::take(&mut self.troubled) {
            info!("coordinator {} answers: registered", self.addr());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(p: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], p))
    }

    #[test]
    fn listed_coordinators_are_learnt_once_and_bounded() {
        let mut l = CoordinatorLink::new(&[a(1)]);
        let list: Vec<String> = ["127.0.0.1:1", "127.0.0.1:2", "garbage", "127.0.0.1:3"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(l.learn(&list), 2);
        assert_eq!(l.addrs(), &[a(1), a(2), a(3)]);
        assert_eq!(l.addr(), a(1), "still talking to the same one");
        assert_eq!(l.learn(&list), 0, "nothing new");
        let many: Vec<String> = (10..40).map(|p| format!("127.0.0.1:{p}")).collect();
        l.learn(&many);
        assert_eq!(l.addrs().len(), MAX_ADDRESSES);
        assert_eq!(l.down("timed out", None), a(2), "the learnt ones are tried");
    }

    #[test]
    fn the_next_address_after_a_loss_and_the_named_leader_unless_just_lost() {
        let mut l = CoordinatorLink::new(&[a(1), a(2), a(3)]);
        assert_eq!(l.addr(), a(1));
        assert_eq!(l.down("timed out", None), a(2));
        // 2 still believes 1 leads (its lease runs on): not believed, on to 3.
        assert_eq!(l.elsewhere(Some("127.0.0.1:1")), Some(a(3)));
        // No leader known at 3: on to 1 (lost a moment ago, skipped), 2.
        assert_eq!(l.elsewhere(None), Some(a(2)));
        // 2 names the new leader, 3 (which knew of none a moment ago).
        assert_eq!(l.elsewhere(Some("127.0.0.1:3")), Some(a(3)));
        assert_eq!(l.addr(), a(3));
        // Two addresses, the one cut off from etcd knows no leader: the other
        // names it — it is not believed — and the node stays there.
        let mut two = CoordinatorLink::new(&[a(1), a(2)]);
        assert_eq!(two.elsewhere(None), Some(a(2)));
        assert_eq!(
            two.elsewhere(Some("garbage")),
            Some(a(1)),
            "all uninformed: round"
        );
        let mut two = CoordinatorLink::new(&[a(1), a(2)]);
        assert_eq!(two.down("timed out", None), a(2));
        assert_eq!(two.elsewhere(Some("127.0.0.1:1")), None);
        assert_eq!(two.addr(), a(2));
        // A leader we were not told of is learnt.
        assert_eq!(l.elsewhere(Some("127.0.0.1:9")), Some(a(9)));
        assert_eq!(
            l.unanswered(1, 1000),
            Some(a(2)),
            "round the list, 1 (lost) skipped"
        );
        // One address: always that one.
        let mut one = CoordinatorLink::new(&[a(7)]);
        assert_eq!(one.down("reset", Some(10)), a(7));
        assert_eq!(one.unanswered(2, 10), None, "nowhere else to go");
        assert_eq!(one.elsewhere(None), None);
    }

    #[test]
    fn a_refused_key_explains_the_silences_after_it_others_are_probed() {
        let mut l = CoordinatorLink::new(&[a(7)]);
        l.unanswered(1, 1000);
        assert_eq!(l.take_probe(), Some(a(7)), "no cause known: probe its port");
        assert_eq!(l.take_probe(), None, "once");
        l.down("not admitted: cluster key mismatch", Some(1000));
        l.unanswered(2, 2000);
        assert_eq!(l.take_probe(), None, "the key refusal is the cause");
        l.down("cannot connect: timed out", None);
        l.unanswered(3, 4000);
        assert_eq!(l.take_probe(), Some(a(7)), "another trouble now");
        l.answered();
        l.unanswered(1, 1000);
        assert_eq!(l.take_probe(), Some(a(7)));
    }

    #[test]
    fn a_leader_named_by_a_probe_is_pointed_at_and_learnt_when_new() {
        let mut l = CoordinatorLink::new(&[a(1), a(2), a(3)]);
        assert_eq!(l.named_by_probe(a(2), a(3)), a(3));
        assert_eq!(l.addr(), a(3));
        assert_eq!(l.addrs(), &[a(1), a(2), a(3)]);
        assert_eq!(l.named_by_probe(a(2), a(9)), a(9));
        assert_eq!(l.addrs(), &[a(1), a(2), a(3), a(9)]);
        // Not a loss: 3, silent a moment ago, is believed when named again.
        assert_eq!(l.elsewhere(Some("127.0.0.1:3")), Some(a(3)));
    }
}
