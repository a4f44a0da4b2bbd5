//! The measured phase of `tiercast bench heartbeats` (issue 12, X7/D8): every
//! node's heartbeat once per interval in a spread order, each encoded with the
//! wire codec (not measured: the node's work), then decoded from its bytes and
//! handed to `handle_message` at its virtual send time, the coordinator's timer
//! run as a driver runs it (`poll_timeout`) and its outputs drained. The thread's
//! CPU time is read around each batch's decode and its handling, so the two are
//! told apart without a clock read per heartbeat (and around each tick).

use super::links::Books;
use super::meter::thread_cpu_ns;
use super::population::{mix, Drained, Plan};
use bytes::BytesMut;
use tiercast_coordinator::Coordinator;
use tiercast_proto::codec::{decode_frame, encode_frame};
use tiercast_proto::{Message, NodeId, Timestamp};

/// Heartbeats encoded, decoded and handled together.
const BATCH: usize = 1024;

/// What one run of the phase did and cost.
#[derive(Clone, Debug, Default)]
pub struct Phase {
    pub heartbeats: u64,
    pub decode_errors: u64,
    pub ticks: u64,
    pub transmits: u64,
    pub events: u64,
    pub decode_cpu_ns: u64,
    pub handle_cpu_ns: u64,
    /// Of `handle_cpu_ns`: the timer's (`handle_timeout`, four ticks per interval).
    pub tick_cpu_ns: u64,
    pub wall_ns: u64,
    pub bytes: u64,
}

impl Phase {
    pub fn cpu_ns(&self) -> u64 {
        self.decode_cpu_ns + self.handle_cpu_ns
    }

    /// Heartbeats per CPU-second of this thread (= per core).
    pub fn per_cpu_second(&self) -> f64 {
        self.heartbeats as f64 / (self.cpu_ns().max(1) as f64 / 1e9)
    }
}

/// The send order: every node once, spread by a hash of its id.
pub fn spread_order(plan: &Plan) -> Vec<NodeId> {
    let mut ids: Vec<NodeId> = plan.ids().collect();
    ids.sort_by_key(|id| (mix(u64::from(id.0) ^ 0x0bde), id.0));
    ids
}

/// Runs `rounds` intervals of heartbeats from `start`, node `order[j]` sending
/// at `start + round·interval + j·interval/N`; `first_seq` numbers the first
/// round's heartbeats. Returns the cost, the clock at the end.
pub fn run(
    co: &mut Coordinator,
    books: &mut Books,
    order: &[NodeId],
    start: Timestamp,
    interval_us: u64,
    rounds: u64,
    first_seq: u64,
) -> (Phase, Timestamp) {
    let mut p = Phase::default();
    let n = order.len().max(1) as u64;
    let wall = std::time::Instant::now();
    let mut buf = BytesMut::new();
    let mut sends: Vec<(Timestamp, NodeId, usize)> = Vec::with_capacity(BATCH);
    let mut msgs: Vec<Option<Message>> = Vec::with_capacity(BATCH);
    let mut out = Drained::default();
    let mut end = start;
    for round in 0..rounds {
        for (b, batch) in order.chunks(BATCH).enumerate() {
            // The nodes' side: build and encode (not measured).
            buf.clear();
            sends.clear();
            for (k, id) in batch.iter().enumerate() {
                let j = (b * BATCH + k) as u64;
                let at = Timestamp(start.0 + round * interval_us + j * interval_us / n);
                let hb = books.heartbeat(*id, at.0, first_seq + round);
                let before = buf.len();
                if encode_frame(&Message::Heartbeat(hb), &mut buf).is_err() {
                    p.decode_errors += 1;
                    continue;
                }
                sends.push((at, *id, buf.len() - before));
            }
            p.bytes += buf.len() as u64;
            let frames = buf.split().freeze();
            // Decode from the bytes (measured).
            let c0 = thread_cpu_ns();
            msgs.clear();
            let mut off = 0;
            for (_, _, len) in &sends {
                // Past the 4-byte length field, as the driver's frame reader hands it.
                let body = frames.slice(off + 4..off + len);
                off += len;
                msgs.push(decode_frame(body).ok());
            }
            let c1 = thread_cpu_ns();
            // The coordinator's work (measured): timer, message, outputs drained.
            for ((at, from, _), msg) in sends.iter().zip(msgs.drain(..)) {
                while let Some(t) = co.poll_timeout().filter(|t| t <= at) {
                    let c = thread_cpu_ns();
                    co.handle_timeout(t);
                    p.tick_cpu_ns += thread_cpu_ns() - c;
                    p.ticks += 1;
                }
                match msg {
                    Some(m) => {
                        co.handle_message(*at, *from, m);
                        p.heartbeats += 1;
                    }
                    None => p.decode_errors += 1,
                }
                out.take(co);
                end = *at;
            }
            let c2 = thread_cpu_ns();
            p.decode_cpu_ns += c1 - c0;
            p.handle_cpu_ns += c2 - c1;
            // The nodes apply their parent sets (not measured).
            p.transmits += out.transmits.len() as u64;
            p.events += std::mem::take(&mut out.events);
            books.apply(out.transmits.drain(..));
        }
    }
    p.wall_ns = wall.elapsed().as_nanos() as u64;
    (p, end)
}
