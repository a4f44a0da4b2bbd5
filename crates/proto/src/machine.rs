//! The driving contract every sans-IO machine of tiercast follows — the node
//! ([`tiercast_node::Node`]) and the coordinator
//! ([`tiercast_coordinator::Coordinator`]) — written once, for the tokio drivers
//! (`tiercast-net`) and the simulator (`tiercast-sim`) alike (issue 13; DESIGN.md
//! §1; X5).
//!
//! # The loop
//!
//! A driver owns the sockets and the clock; the machine owns every decision.
//! After **every input** — a message ([`Machine::handle_message`]), a timer
//! ([`Machine::handle_timeout`]), or one of a machine's own verbs (a node's
//! `coordinator_lost`, a coordinator's `node_lost`, …) — the driver:
//!
//! 1. drains [`Machine::poll_output`] until it returns `None`: each
//!    [`Output::Transmit`] is put on the wire as [`Transmit::into_wire`] (never
//!    `msg` bare: a coordinator's decisions carry its epoch), each
//!    [`Output::Event`] goes to logs, status and metrics. Handling an event may
//!    be an input of its own (a node driver moving its coordinator link), after
//!    which the drain goes on;
//! 2. reads [`Machine::poll_timeout`] and arms its one timer for that instant,
//!    replacing the one it had (a machine has one deadline: the earliest of its
//!    timer table), or disarms it on `None`;
//! 3. when that instant comes, calls [`Machine::handle_timeout`] with the time it
//!    reads then (never earlier than the deadline) and goes back to 1.
//!
//! Transmits come out before events: an event never describes a message that
//! has not been handed to the driver yet. Every poll is `#[must_use]`: an output
//! left in the machine is a message never sent or a timer never armed.
//!
//! What a driver adds is only I/O: addresses for node ids, sockets, wall or
//! virtual time. `docs/ARCHITECTURE.md` ("The driving contract") lists what each
//! driver adds.

use crate::{Message, NodeId, Timestamp};

/// A message to send, addressed by node id (the driver knows the addresses).
/// A coordinator's carries the epoch it was decided in (D7, X7: the fencing
/// token); a node's carries none.
#[derive(Clone, Debug)]
pub struct Transmit {
    pub to: NodeId,
    pub msg: Message,
    /// The coordinator epoch that decided it; `None` for a node's message.
    pub epoch: Option<u64>,
}

impl Transmit {
    /// A node's message: not an order.
    pub fn plain(to: NodeId, msg: Message) -> Self {
        Transmit {
            to,
            msg,
            epoch: None,
        }
    }

    /// A coordinator's decision of `epoch`.
    pub fn order(to: NodeId, msg: Message, epoch: u64) -> Self {
        Transmit {
            to,
            msg,
            epoch: Some(epoch),
        }
    }

    /// What goes on the wire: a coordinator's `msg` as an order of its epoch —
    /// but `ServedElsewhere` bare: it orders nothing, and a node following a
    /// newer epoch must still read it (the coordinator's epoch gate); a node's
    /// message as it is.
    pub fn into_wire(self) -> Message {
        match self.epoch {
            Some(epoch) if !matches!(self.msg, Message::ServedElsewhere { .. }) => Message::Order {
                epoch,
                order: Box::new(self.msg),
            },
            _ => self.msg,
        }
    }
}

/// One output of a machine: a message to send or an event to report.
#[derive(Clone, Debug)]
pub enum Output<E> {
    Transmit(Transmit),
    Event(E),
}

/// A sans-IO machine driven as the module docs say.
pub trait Machine {
    /// What it reports to its driver (logs, status, metrics).
    type Event;

    /// A message from `from` arrived at `now`.
    fn handle_message(&mut self, now: Timestamp, from: NodeId, msg: Message);

    /// The deadline [`Self::poll_timeout`] gave has come; `now` is not earlier.
    fn handle_timeout(&mut self, now: Timestamp);

    /// The next message to send.
    #[must_use = "a transmit left in the machine is a message never sent"]
    fn poll_transmit(&mut self) -> Option<Transmit>;

    /// The next event to report.
    #[must_use = "an event left in the machine is never reported"]
    fn poll_event(&mut self) -> Option<Self::Event>;

    /// When [`Self::handle_timeout`] is next due: the earliest of the machine's
    /// timer table, `None` when nothing is.
    #[must_use = "a deadline not armed is a timer that never fires"]
    fn poll_timeout(&self) -> Option<Timestamp>;

    /// The next output: every transmit queued, then every event. Drained until
    /// `None` after each input.
    #[must_use = "an output left in the machine is lost work"]
    fn poll_output(&mut self) -> Option<Output<Self::Event>> {
        if let Some(t) = self.poll_transmit() {
            return Some(Output::Transmit(t));
        }
        self.poll_event().map(Output::Event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A machine that answers each message with one transmit and one event,
    /// and wants a tick 10 ms after the last input.
    #[derive(Default)]
    struct Echo {
        out: Vec<Transmit>,
        events: Vec<&'static str>,
        due: Option<Timestamp>,
    }

    impl Machine for Echo {
        type Event = &'static str;
        fn handle_message(&mut self, now: Timestamp, from: NodeId, msg: Message) {
            self.out.push(Transmit::order(from, msg, 7));
            self.events.push("echoed");
            self.due = Some(now.plus_millis(10));
        }
        fn handle_timeout(&mut self, _now: Timestamp) {
            self.due = None;
            self.events.push("ticked");
        }
        fn poll_transmit(&mut self) -> Option<Transmit> {
            self.out.pop()
        }
        fn poll_event(&mut self) -> Option<&'static str> {
            self.events.pop()
        }
        fn poll_timeout(&self) -> Option<Timestamp> {
            self.due
        }
    }

    #[test]
    fn outputs_come_transmits_first_then_events() {
        let mut m = Echo::default();
        m.handle_message(Timestamp(0), NodeId(3), Message::Probe);
        let outs: Vec<Output<&str>> = std::iter::from_fn(|| m.poll_output()).collect();
        assert!(matches!(outs[0], Output::Transmit(ref t) if t.to == NodeId(3)));
        assert!(matches!(outs[1], Output::Event("echoed")));
        assert_eq!(outs.len(), 2);
        assert_eq!(m.poll_timeout(), Some(Timestamp::from_millis(10)));
    }

    #[test]
    fn a_coordinators_transmit_goes_out_as_an_order_and_a_nodes_bare() {
        let order = Transmit::order(NodeId(3), Message::Probe, 7).into_wire();
        assert!(
            matches!(order, Message::Order { epoch: 7, ref order } if matches!(**order, Message::Probe))
        );
        let bare = Transmit::plain(NodeId(3), Message::Probe).into_wire();
        assert!(matches!(bare, Message::Probe));
        let elsewhere = Message::ServedElsewhere { leader: None };
        let out = Transmit::order(NodeId(3), elsewhere, 7).into_wire();
        assert!(
            matches!(out, Message::ServedElsewhere { .. }),
            "never an order"
        );
    }
}
