//! The event heap of the discrete-event simulator (X5): a `BinaryHeap<Reverse<…>>`
//! keyed by `(time µs, seq)`, so equal times pop in the order they were pushed and a
//! run replays exactly. Messages in flight wait in a slab beside the heap; the heap
//! itself holds only small fixed-size entries.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use tiercast_proto::Message;

/// What happens at an instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Ev {
    /// A message (in the slab) reaches its receiver.
    Deliver(u32),
    /// A machine's timer (node id, generation: stale generations are ignored).
    Timer { node: u32, gen: u32 },
    /// The origin cuts the next block (blocks mode).
    Ingest,
    /// The once-per-virtual-second sample of metrics.
    Sample,
    /// The next viewer of arrival process `n`.
    Arrival(u16),
    /// A viewer leaves.
    Leave(u32),
    /// Fault `n` of the scenario starts.
    FaultStart(u16),
    /// Fault `n` ends (link restored, partition healed).
    FaultEnd(u16),
    /// `node` notices its link to `peer` is gone (if it still is).
    LinkDown { node: u32, peer: u32 },
    /// `node`'s link to `peer` meets `peer`'s new process (a stateless reset: the
    /// peer restarted before the link timed out), so it goes down whatever
    /// `peer`'s state is now.
    LinkReset { node: u32, peer: u32 },
    /// A leave wave (arrival process `n`) picks its leavers.
    LeaveWave(u16),
    /// `node`'s link to the coordinator is reset (the coordinator restarted).
    CoordinatorReset(u32),
    /// Policy step `n` of the scenario is applied.
    Policy(u16),
    /// The origin cuts the second channel's next block (`second.rs`).
    IngestSecond,
    /// A flaky peer crashes (`flaky.rs`).
    FlakyDown(u32),
    /// A flaky peer starts again under its id.
    FlakyUp(u32),
}

pub struct InFlight {
    pub from: u32,
    pub to: u32,
    pub msg: Message,
}

#[derive(Default)]
pub struct Queue {
    heap: BinaryHeap<Reverse<(u64, u64, Ev)>>,
    seq: u64,
    slab: Vec<Option<InFlight>>,
    free: Vec<u32>,
}

impl Queue {
    pub fn push(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.heap.push(Reverse((at, self.seq, ev)));
    }

    pub fn push_message(&mut self, at: u64, from: u32, to: u32, msg: Message) {
        let item = Some(InFlight { from, to, msg });
        let slot = match self.free.pop() {
            Some(i) => {
                self.slab[i as usize] = item;
                i
            }
            None => {
                self.slab.push(item);
                (self.slab.len() - 1) as u32
            }
        };
        self.push(at, Ev::Deliver(slot));
    }

    /// The message of a `Deliver` event, taken out of the slab.
    pub fn take_message(&mut self, slot: u32) -> InFlight {
        let m = self.slab[slot as usize]
            .take()
            .expect("a Deliver event owns its slab slot");
        self.free.push(slot);
        m
    }

    pub fn pop(&mut self) -> Option<(u64, Ev)> {
        self.heap.pop().map(|Reverse((at, _, ev))| (at, ev))
    }

    pub fn peek_time(&self) -> Option<u64> {
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Messages in flight now.
    pub fn in_flight(&self) -> usize {
        self.slab.len() - self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tiercast_proto::ChannelId;

    #[test]
    fn pops_by_time_then_push_order() {
        let mut q = Queue::default();
        q.push(5, Ev::Sample);
        q.push(3, Ev::Leave(1));
        q.push(3, Ev::Leave(2));
        q.push_message(
            4,
            1,
            2,
            Message::Logoff {
                channel: ChannelId(1),
            },
        );
        assert_eq!(q.pop(), Some((3, Ev::Leave(1))));
        assert_eq!(q.pop(), Some((3, Ev::Leave(2))));
        let (t, ev) = q.pop().unwrap();
        assert_eq!(t, 4);
        let Ev::Deliver(slot) = ev else {
            panic!("expected a delivery")
        };
        assert_eq!(q.in_flight(), 1);
        let m = q.take_message(slot);
        assert_eq!((m.from, m.to), (1, 2));
        assert_eq!(q.in_flight(), 0);
        q.push_message(
            9,
            3,
            4,
            Message::Logoff {
                channel: ChannelId(1),
            },
        );
        assert_eq!(q.slab.len(), 1, "slots are reused");
        assert_eq!(q.pop().unwrap().0, 5);
    }
}
