//! Registering with the coordinator, and registering again (D7, D8): a Register
//! that gets no answer is sent again after a backoff that doubles from one
//! heartbeat interval up to four, with ±25 % jitter drawn
//! from the node's id and attempt number (deterministic: the simulator replays
//! it); every unanswered attempt is reported (`Event::CoordinatorUnanswered`) so
//! the node can say on its own stderr that the coordinator is unreachable. The
//! attempts restart from the shortest wait whenever the coordinator answers.

use crate::event::Event;
use crate::node::Node;
use tiercast_proto::{Message, Register, Timestamp, COORDINATOR_ID};

/// Waits double up to this many heartbeat intervals.
const MAX_BACKOFF_INTERVALS: u64 = 4;

/// Registration attempts since the coordinator last answered.
#[derive(Clone, Copy, Debug, Default)]
pub struct Registration {
    pub attempts: u32,
    /// When an unanswered Register is sent again.
    pub retry_at: Option<Timestamp>,
}

impl Node {
    pub(crate) fn send_register(&mut self, now: Timestamp) {
        let reg = self.register_message();
        let wait_us = self.register_backoff_us(self.registration.attempts);
        self.registration.attempts = self.registration.attempts.saturating_add(1);
        self.registration.retry_at = Some(Timestamp(now.0.saturating_add(wait_us)));
        self.send(COORDINATOR_ID, Message::Register(reg));
    }

    /// This node's Register.
    pub(crate) fn register_message(&self) -> Register {
        Register {
            role: self.cfg.role,
            tier: self.cfg.tier,
            region: self.cfg.region.clone(),
            capacity: self.cfg.capacity,
            addr: self.cfg.addr.clone(),
            http_addr: self.cfg.http_addr.clone(),
            uplink_kbps: self.cfg.uplink_kbps,
            class: tiercast_proto::NodeClass::new(self.cfg.premium, self.cfg.device_class),
            incarnation: self.cfg.incarnation,
            manager_id: self.cfg.manager_id,
        }
    }

    /// The coordinator answered (registered or refused): no retry pending.
    pub(crate) fn registration_answered(&mut self) {
        self.registration = Registration::default();
    }

    /// Sends the Register again when its answer is overdue.
    pub(crate) fn retry_register(&mut self, now: Timestamp) {
        let Some(at) = self.registration.retry_at else {
            return;
        };
        if self.registered || now < at {
            return;
        }
        let attempts = self.registration.attempts;
        self.send_register(now);
        if attempts == 0 {
            // The first Register at a new address (crate::elsewhere), not a retry.
            return;
        }
        let retry_in_ms = self
            .registration
            .retry_at
            .map_or(0, |t| t.saturating_since(now) / 1000);
        self.events.push_back(Event::CoordinatorUnanswered {
            attempts,
            retry_in_ms,
        });
    }

    /// Registers sent since the coordinator last answered (1: the first; more: retries).
    pub fn register_attempts(&self) -> u32 {
        self.registration.attempts
    }

    /// When the next Register is due, if one is.
    pub fn register_retry_at(&self) -> Option<Timestamp> {
        self.registration.retry_at.filter(|_| !self.registered)
    }

    fn register_backoff_us(&self, attempt: u32) -> u64 {
        let interval_us = self.cfg.heartbeat_interval_ms.max(1) * 1000;
        jittered_backoff_us(interval_us, MAX_BACKOFF_INTERVALS, self.cfg.id, attempt, 0)
    }
}

/// A wait of `base_us` doubling with `attempt` up to `max_multiple` × `base_us`,
/// ±25 % jitter, a hash of (node id, attempt): nodes that lost the coordinator
/// together do not come back in step (and the simulator replays it); `salt` keeps
/// two kinds of retry of one node apart.
pub(crate) fn jittered_backoff_us(
    base_us: u64,
    max_multiple: u64,
    node: tiercast_proto::NodeId,
    attempt: u32,
    salt: u64,
) -> u64 {
    let cap = base_us.saturating_mul(max_multiple.max(1));
    let wait = base_us.saturating_mul(1u64 << attempt.min(16)).min(cap);
    let h = splitmix((((node.0 as u64) << 32) | attempt as u64) ^ (salt << 20));
    let quarter = wait / 4;
    wait - quarter + h % (2 * quarter + 1)
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use crate::{Event, Node, NodeConfig};
    use tiercast_proto::{Message, NodeId, Timestamp, COORDINATOR_ID};

    fn registers(n: &mut Node) -> usize {
        std::iter::from_fn(|| n.poll_transmit())
            .filter(|t| t.to == COORDINATOR_ID && matches!(t.msg, Message::Register(_)))
            .count()
    }

    /// Drives the node's timer for `ms` of virtual time; the send times of Registers.
    fn run(n: &mut Node, from_ms: u64, ms: u64) -> Vec<u64> {
        let mut sent = Vec::new();
        let mut now = Timestamp(from_ms * 1000);
        let end = Timestamp((from_ms + ms) * 1000);
        while let Some(t) = n.poll_timeout().filter(|t| *t <= end) {
            now = t.max(now);
            n.handle_timeout(now);
            if registers(n) > 0 {
                sent.push(now.0 / 1000);
            }
        }
        sent
    }

    #[test]
    fn an_unanswered_register_is_sent_again_with_a_bounded_growing_backoff() {
        let cfg = NodeConfig {
            id: NodeId(7),
            heartbeat_interval_ms: 1000,
            ..NodeConfig::default()
        };
        let mut n = Node::new(cfg, Timestamp(0));
        assert_eq!(registers(&mut n), 1, "registers at once");
        let sent = run(&mut n, 0, 20_000);
        let gaps: Vec<u64> = std::iter::once(0)
            .chain(sent.iter().copied())
            .collect::<Vec<_>>()
            .windows(2)
            .map(|w| w[1] - w[0])
            .collect();
        assert!(gaps.len() >= 5, "keeps retrying: {sent:?}");
        assert!(
            gaps[0] <= 1250 && gaps[2] > gaps[0],
            "starts at an interval, grows: {gaps:?}"
        );
        assert!(
            gaps.iter().all(|g| *g <= 5000),
            "never waits more than 4 intervals (+25 %): {gaps:?}"
        );
        let said = std::iter::from_fn(|| n.poll_event())
            .filter(|e| matches!(e, Event::CoordinatorUnanswered { .. }))
            .count();
        assert_eq!(said, sent.len(), "every unanswered attempt is reported");

        // An answer ends the retries; losing the coordinator starts again short.
        n.handle_message(
            Timestamp(20_000_000),
            COORDINATOR_ID,
            Message::Registered {
                heartbeat_interval_ms: 1000,
            },
        );
        let _ = std::iter::from_fn(|| n.poll_transmit()).count();
        assert!(n.register_retry_at().is_none());
        n.coordinator_lost(Timestamp(21_000_000));
        assert_eq!(registers(&mut n), 1);
        let again = run(&mut n, 21_000, 1300);
        assert_eq!(again.len(), 1, "first retry an interval later: {again:?}");
    }
}
