//! The epoch gate (D7, X7; issue 12, Must show 6): what a coordinator does with
//! a node that follows another epoch than its own.
//!
//! - A node following a **newer** epoch (its heartbeat's `epoch`) has heard a
//!   successor: the managers it belongs to are held by another process. Its
//!   message is not read; it is answered `ServedElsewhere { leader: None }`
//!   (bare, not an order, so the node reads it whatever epoch it follows: it
//!   goes to the next coordinator address), counted in
//!   `newer_epoch_heartbeats`, and this coordinator stops ordering
//!   ([`Coordinator::superseded_by`]; the event `Superseded` once per newer
//!   epoch). With etcd, the lease would have ended anyway; the heartbeat can
//!   tell sooner, and tells a coordinator run without an election that another
//!   one took its nodes.
//! - A node from an **older** epoch — registered with a predecessor, unknown
//!   here — is told to register again: `RegisterDenied { NotRegistered }` as an
//!   order of our epoch (in `Coordinator::handle_message`), which the node
//!   follows (our epoch is newer), registering again at once with the links it
//!   keeps (D7: the overlay is rebuilt from what it reports).

use crate::coordinator::Coordinator;
use crate::event::CoordEvent;
use tiercast_proto::{Message, NodeId};

impl Coordinator {
    /// `true` when `msg` comes from a node following a newer epoch than ours:
    /// it is answered and not read.
    pub(crate) fn newer_epoch_refused(&mut self, from: NodeId, msg: &Message) -> bool {
        let Message::Heartbeat(hb) = msg else {
            return false;
        };
        if hb.epoch <= self.cfg.epoch {
            return false;
        }
        self.stats.newer_epoch_heartbeats += 1;
        if self.superseded_by.is_none_or(|e| hb.epoch > e) {
            self.superseded_by = Some(hb.epoch);
            self.events.push_back(CoordEvent::Superseded {
                epoch: hb.epoch,
                reported_by: from,
            });
        }
        self.send(from, Message::ServedElsewhere { leader: None });
        true
    }

    /// The newest epoch a node reported following, if newer than ours: a
    /// successor holds the managers and this coordinator must order nothing
    /// more (its driver stops sending; see `epoch_gate`).
    pub fn superseded_by(&self) -> Option<u64> {
        self.superseded_by
    }
}
