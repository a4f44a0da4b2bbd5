//! The coordinator's epoch (D7, X7): every order a coordinator sends carries the
//! fencing token of the process that decided it (`Message::Order`). A node
//! follows the highest epoch it has heard — a restarted coordinator, or the one
//! that took over another's managers, has a higher one — and ignores an order
//! of an older epoch (counted in `stale_orders`, reported as
//! `Event::StaleOrder`), so a coordinator that lost its place cannot fight its
//! successor. A node keeps what an older epoch ordered (its parents stay) until
//! the new epoch orders otherwise.
//!
//! A bare coordinator message (not an order) is taken only while no epoch has
//! been heard — the unit tests' coordinator, which speaks to a node directly;
//! every driver sends orders ([`tiercast_proto::Message::Order`]). An order
//! from anyone but the coordinator is invalid.

use crate::event::Event;
use crate::node::Node;
use tiercast_proto::{Message, NodeId, COORDINATOR_ID};

impl Node {
    /// The highest coordinator epoch heard (0: none yet).
    pub fn coordinator_epoch(&self) -> u64 {
        self.coordinator_epoch
    }

    /// What of `msg` the node acts on: an order of the current or a newer epoch,
    /// unwrapped; anything else from the coordinator only before any epoch; every
    /// other sender's messages as they are.
    pub(crate) fn fence(&mut self, from: NodeId, msg: Message) -> Option<Message> {
        let Message::Order { epoch, order } = msg else {
            // `ServedElsewhere` and `Coordinators` are not orders (crate::elsewhere).
            let order_kind = !msg.is_block()
                && !matches!(
                    msg,
                    Message::ServedElsewhere { .. } | Message::Coordinators { .. }
                );
            if from == COORDINATOR_ID && self.coordinator_epoch > 0 && order_kind {
                self.invalid(from, msg.kind(), "a coordinator message without its epoch");
                return None;
            }
            return Some(msg);
        };
        if from != COORDINATOR_ID {
            self.invalid(from, "order", "only the coordinator gives orders");
            return None;
        }
        if epoch < self.coordinator_epoch {
            self.stats.stale_orders += 1;
            self.events.push_back(Event::StaleOrder {
                epoch,
                current: self.coordinator_epoch,
                kind: order.kind(),
            });
            return None;
        }
        if epoch > self.coordinator_epoch {
            self.coordinator_epoch = epoch;
            self.events.push_back(Event::CoordinatorEpoch { epoch });
        }
        Some(*order)
    }
}

#[cfg(test)]
mod tests {
    use crate::test_fixture::{feed, order, parent_ids, peer, CH};
    use crate::{Event, Node};
    use tiercast_proto::{Message, NodeId, Placement, Timestamp, COORDINATOR_ID};

    /// Parent set `version` naming parents 7 (substreams 0, 1) and 8 (2, 3).
    fn set(version: u64) -> Message {
        Message::ParentSet {
            channel: crate::test_fixture::desc(),
            version,
            placement: Placement::Member,
            parents: vec![feed(7, &[0, 1]), feed(8, &[2, 3])],
        }
    }

    fn stale(n: &mut Node) -> Vec<(u64, u64)> {
        std::iter::from_fn(|| n.poll_event())
            .filter_map(|e| match e {
                Event::StaleOrder { epoch, current, .. } => Some((epoch, current)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn an_older_epochs_order_is_ignored_and_a_newer_epoch_is_followed() {
        let mut n = peer();
        assert_eq!(parent_ids(&n), vec![5, 6]);
        n.handle_message(Timestamp(1), COORDINATOR_ID, order(3, set(2)));
        assert_eq!(n.coordinator_epoch(), 3);
        assert_eq!(
            parent_ids(&n),
            vec![5, 6, 7, 8],
            "connect before disconnect"
        );
        let _ = stale(&mut n);
        // The coordinator of epoch 2 lost its place: its order changes nothing.
        let old = Message::ParentSet {
            channel: crate::test_fixture::desc(),
            version: 3,
            placement: Placement::Member,
            parents: vec![feed(9, &[0, 1, 2, 3])],
        };
        n.handle_message(Timestamp(2), COORDINATOR_ID, order(2, old));
        assert_eq!(n.stats().stale_orders, 1);
        assert_eq!(stale(&mut n), vec![(2, 3)]);
        assert!(!parent_ids(&n).contains(&9));
        // Its successor's next epoch is followed.
        n.handle_message(Timestamp(3), COORDINATOR_ID, order(4, set(3)));
        assert_eq!(n.coordinator_epoch(), 4);
        assert_eq!(n.stats().stale_orders, 1);
    }

    #[test]
    fn only_the_coordinator_gives_orders_and_once_it_has_an_epoch_only_orders() {
        let mut n = peer();
        n.handle_message(Timestamp(1), NodeId(5), order(9, set(2)));
        assert_eq!(n.stats().invalid_messages, 1, "a parent cannot give orders");
        assert_eq!(n.coordinator_epoch(), 0);
        n.handle_message(Timestamp(2), COORDINATOR_ID, order(1, set(2)));
        assert_eq!(n.coordinator_epoch(), 1);
        // A bare coordinator message now: no epoch, not followed.
        n.handle_message(
            Timestamp(3),
            COORDINATOR_ID,
            Message::ChannelRetired { channel: CH },
        );
        assert_eq!(n.stats().invalid_messages, 2);
        assert!(n.channel(CH).is_some());
    }
}
