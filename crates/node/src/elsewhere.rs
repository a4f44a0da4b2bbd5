//! A coordinator that does not serve this node (D7, X7): with several
//! coordinator processes only the leader (the holder of the election's lease)
//! serves managers; a standby, or a leader whose lease ended, answers whatever a
//! node sends with `Message::ServedElsewhere` — where the leader is, when it
//! knows. The node stops counting itself registered, reports
//! `Event::CoordinatorElsewhere` so its driver points the coordinator link at
//! the leader (or at the next address it knows), and sends its Register there
//! [`MOVE_DELAY_MS`] later; once registered it reports its links at once
//! (`rejoined`), so the new leader takes them back rather than rebuilding.
//! Parents, children and blocks stay as they are throughout.
//!
//! The message is taken whatever epoch the node follows (it is not an order and
//! changes nothing the overlay carries), from the coordinator link only.

use crate::event::Event;
use crate::node::Node;
use tiercast_proto::Timestamp;

/// The wait before the Register goes to the new address: the driver has
/// re-pointed the link by then.
pub const MOVE_DELAY_MS: u64 = 50;

/// Answers `ServedElsewhere` in a row that keep a node on the short wait; after
/// that its Register waits out the usual backoff (no leader for a while: every
/// node must not ask every address many times a second).
const QUICK_MOVES: u32 = 30;

impl Node {
    pub(crate) fn on_served_elsewhere(&mut self, now: Timestamp, leader: Option<String>) {
        self.registered = false;
        self.moves_in_a_row = self.moves_in_a_row.saturating_add(1);
        if self.moves_in_a_row <= QUICK_MOVES {
            self.registration.attempts = 0;
            self.registration.retry_at = Some(now.plus_millis(MOVE_DELAY_MS));
        } else if self.registration.retry_at.is_none() {
            self.send_register(now);
        }
        self.events
            .push_back(Event::CoordinatorElsewhere { leader });
    }
}

impl Node {
    /// The coordinator listed its cluster's processes (X7): passed on to the
    /// driver, at most [`tiercast_proto::MAX_COORDINATORS`] of them.
    pub(crate) fn on_coordinators(&mut self, mut addrs: Vec<String>) {
        addrs.truncate(tiercast_proto::MAX_COORDINATORS);
        addrs.retain(|a| a.len() <= 256);
        self.events.push_back(Event::CoordinatorsKnown { addrs });
    }

    /// The driver pointed the coordinator link at another address after a
    /// Register went unanswered (the retry went to the old one): a Register
    /// goes to the new address now, not counted as another attempt.
    pub fn coordinator_moved(&mut self) {
        if !self.registered {
            let reg = self.register_message();
            self.send(
                tiercast_proto::COORDINATOR_ID,
                tiercast_proto::Message::Register(reg),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::MOVE_DELAY_MS;
    use crate::test_fixture::{order, parent_ids, peer};
    use crate::{Event, Node};
    use tiercast_proto::{Message, Timestamp, COORDINATOR_ID};

    /// (Registers, heartbeats) the node sent to the coordinator.
    fn to_coordinator(n: &mut Node) -> (usize, usize) {
        let sent: Vec<Message> = std::iter::from_fn(|| n.poll_transmit())
            .filter(|t| t.to == COORDINATOR_ID)
            .map(|t| t.msg)
            .collect();
        let count = |f: fn(&Message) -> bool| sent.iter().filter(|m| f(m)).count();
        (
            count(|m| matches!(m, Message::Register(_))),
            count(|m| matches!(m, Message::Heartbeat(_))),
        )
    }

    fn registered(n: &mut Node, at_ms: u64, epoch: u64) {
        let msg = Message::Registered {
            heartbeat_interval_ms: 1000,
        };
        n.handle_message(Timestamp(at_ms * 1000), COORDINATOR_ID, order(epoch, msg));
    }

    #[test]
    fn a_node_told_its_coordinator_serves_elsewhere_registers_at_the_leader_and_keeps_its_parents()
    {
        let mut n = peer();
        registered(&mut n, 0, 3);
        let _ = to_coordinator(&mut n);
        let _ = std::iter::from_fn(|| n.poll_event()).count();
        // Epoch 3's process lost its lease: a standby answers our heartbeat.
        let at = Timestamp(5_000_000);
        let leader = Some("127.0.0.1:7002".to_string());
        n.handle_message(
            at,
            COORDINATOR_ID,
            Message::ServedElsewhere {
                leader: leader.clone(),
            },
        );
        assert_eq!(n.stats().invalid_messages, 0, "taken though bare");
        let events: Vec<Event> = std::iter::from_fn(|| n.poll_event()).collect();
        assert!(events
            .iter()
            .any(|e| matches!(e, Event::CoordinatorElsewhere { leader: l } if *l == leader)));
        assert_eq!(
            to_coordinator(&mut n),
            (0, 0),
            "the driver moves the link first"
        );
        let due = n.register_retry_at().expect("a Register is due");
        assert_eq!(due.saturating_since(at), MOVE_DELAY_MS * 1000);
        n.handle_timeout(due);
        assert_eq!(to_coordinator(&mut n).0, 1, "the Register goes out then");
        // The leader (epoch 5) registers us: our links are reported at once,
        // our parents are the same.
        registered(&mut n, 5_300, 5);
        assert_eq!(to_coordinator(&mut n).1, 1, "the heartbeat of our links");
        assert_eq!(n.coordinator_epoch(), 5);
        assert_eq!(parent_ids(&n), vec![5, 6]);
        // The old epoch's late orders are ignored.
        registered(&mut n, 5_400, 3);
        assert_eq!(n.stats().stale_orders, 1);
    }

    #[test]
    fn a_node_no_leader_is_known_for_asks_again_on_the_short_wait_then_backs_off() {
        let mut n = peer();
        registered(&mut n, 0, 3);
        let mut t = Timestamp(1_000_000);
        let mut waits = Vec::new();
        for _ in 0..(super::QUICK_MOVES + 4) {
            n.handle_message(t, COORDINATOR_ID, Message::ServedElsewhere { leader: None });
            let due = n.register_retry_at().expect("a Register is due");
            waits.push(due.saturating_since(t) / 1000);
            n.handle_timeout(due);
            let _ = to_coordinator(&mut n);
            t = due;
        }
        let quick = super::QUICK_MOVES as usize;
        assert!(
            waits[..quick].iter().all(|w| *w == MOVE_DELAY_MS),
            "{waits:?}"
        );
        assert!(waits[quick..].iter().all(|w| *w >= 750), "{waits:?}");
    }
}
