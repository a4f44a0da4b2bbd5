//! The network emulation's socket (issue 13, for `tiercast cluster`; X5's
//! regions over real sockets): a quinn [`AsyncUdpSocket`] around the runtime's
//! UDP socket that asks the [`Emulator`] about every datagram sent and drops
//! it, sends it at once, or holds it in a bounded delay queue until it is due.
//! One tokio task drains the queue, sleeping until its head is due. The
//! receive path is the inner socket's: each side delays its own sends, so each
//! direction gets its own one-way latency.
//!
//! GSO is off (`max_transmit_segments() == 1`), and a transmit that still
//! carries several segments is split, so every datagram is decided alone.

use super::emulate::{EmulationStats, Emulator, NetEmulation, Verdict};
use quinn::udp::{EcnCodepoint, RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, UdpPoller};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Datagrams the delay queue holds at most; more are dropped and counted (a
/// router's full buffer).
pub const DELAY_QUEUE_DATAGRAMS: usize = 16_384;

/// How much sooner than its due time the drain task wakes for a datagram:
/// tokio's timer fires at the first millisecond tick past its deadline (and
/// the task is then scheduled), so a datagram woken for at its due time went
/// out 1.2 ms late on average on an idle machine — 6 one-way flights of a
/// dial, a message and its reply 8–12 ms over their emulated latency, and the
/// 14 flights of a protocol viewer's startup 16–35 ms over the simulator's
/// under `tiercast cluster`'s load (issue 13, Must show 1). Waking one tick
/// early and sending what is due within it centres the error on zero.
pub(crate) const TIMER_LEAD_US: u64 = 1_000;

/// A datagram waiting for its due time.
struct Held {
    destination: SocketAddr,
    ecn: Option<EcnCodepoint>,
    src_ip: Option<IpAddr>,
    contents: Vec<u8>,
}

/// Queue order: due time, then arrival in the queue (FIFO among equals).
type Key = Reverse<(u64, u64)>;

struct Entry(Key, Held);

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        self.0 == o.0
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.0.cmp(&o.0)
    }
}

struct State {
    emulator: Emulator,
    queue: BinaryHeap<Entry>,
    next_seq: u64,
    /// The drain task holds a datagram popped from the queue and not yet sent:
    /// a direct send now could overtake it.
    in_flight: bool,
    /// The socket is gone: the drain task sends what is left, then ends.
    closed: bool,
    capacity: usize,
}

/// What the socket and its drain task share; also the handle for the counters.
pub struct EmulationShared {
    state: Mutex<State>,
    wake: Notify,
    epoch: Instant,
}

impl EmulationShared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    /// The emulator's counters and the queue's current length.
    pub fn stats(&self) -> EmulationStats {
        let st = self.state();
        EmulationStats {
            queued: st.queue.len() as u64,
            ..st.emulator.stats()
        }
    }
}

/// The wrapper quinn is given instead of the runtime's socket.
pub struct EmulatedSocket {
    inner: Arc<dyn AsyncUdpSocket>,
    shared: Arc<EmulationShared>,
}

impl fmt::Debug for EmulatedSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmulatedSocket")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl EmulatedSocket {
    /// Wraps `inner` and spawns the drain task on the current tokio runtime.
    pub fn new(
        inner: Arc<dyn AsyncUdpSocket>,
        cfg: &NetEmulation,
        capacity: usize,
    ) -> (Arc<EmulatedSocket>, Arc<EmulationShared>) {
        let shared = Arc::new(EmulationShared {
            state: Mutex::new(State {
                emulator: Emulator::new(cfg.clone()),
                queue: BinaryHeap::new(),
                next_seq: 0,
                in_flight: false,
                closed: false,
                capacity: capacity.max(1),
            }),
            wake: Notify::new(),
            epoch: Instant::now(),
        });
        tokio::spawn(drain(inner.clone(), shared.clone()));
        let socket = Arc::new(EmulatedSocket {
            inner,
            shared: shared.clone(),
        });
        (socket, shared)
    }

    /// One datagram: decided, then sent now, queued or dropped.
    /// `direct`: a datagram due now may go straight to the inner socket (and
    /// come back `WouldBlock` for quinn to retry); else it is queued.
    fn send_one(&self, t: &Transmit, contents: &[u8], direct: bool) -> io::Result<()> {
        let mut st = self.shared.state();
        if st.queue.len() >= st.capacity {
            st.emulator.on_queue_full();
            return Ok(());
        }
        let now = self.shared.now_us();
        let due = match st.emulator.on_send(now, t.destination.ip(), contents.len()) {
            Verdict::Drop => return Ok(()),
            Verdict::At(due) => due,
        };
        if direct && due <= now && st.queue.is_empty() && !st.in_flight {
            drop(st);
            return self.inner.try_send(&Transmit {
                destination: t.destination,
                ecn: t.ecn,
                contents,
                segment_size: None,
                src_ip: t.src_ip,
            });
        }
        let seq = st.next_seq;
        st.next_seq += 1;
        let new_head = st.queue.peek().is_none_or(|h| (h.0).0 .0 > due);
        st.queue.push(Entry(
            Reverse((due, seq)),
            Held {
                destination: t.destination,
                ecn: t.ecn,
                src_ip: t.src_ip,
                contents: contents.to_vec(),
            },
        ));
        drop(st);
        if new_head {
            self.shared.wake.notify_one();
        }
        Ok(())
    }
}

impl Drop for EmulatedSocket {
    fn drop(&mut self) {
        self.shared.state().closed = true;
        self.shared.wake.notify_one();
    }
}

/// Sends the queue's datagrams as they fall due; ends once the socket is
/// dropped and the queue is empty.
async fn drain(inner: Arc<dyn AsyncUdpSocket>, shared: Arc<EmulationShared>) {
    enum Next {
        Send(Held),
        Wait(Option<Duration>),
        End,
    }
    let mut poller = inner.clone().create_io_poller();
    loop {
        let next = {
            let mut st = shared.state();
            let now = shared.now_us();
            match st.queue.peek().map(|h| (h.0).0 .0) {
                None if st.closed => Next::End,
                None => Next::Wait(None),
                Some(due) if due <= now + TIMER_LEAD_US => {
                    st.in_flight = true;
                    Next::Send(st.queue.pop().expect("peeked").1)
                }
                Some(due) => Next::Wait(Some(Duration::from_micros(due - now - TIMER_LEAD_US))),
            }
        };
        match next {
            Next::End => return,
            Next::Send(held) => {
                send_held(&*inner, poller.as_mut(), &held).await;
                shared.state().in_flight = false;
            }
            Next::Wait(Some(d)) => {
                let _ = tokio::time::timeout(d, shared.wake.notified()).await;
            }
            Next::Wait(None) => shared.wake.notified().await,
        }
    }
}

/// Sends one held datagram, waiting while the socket is not writable; other
/// errors drop it as the network would (quinn recovers).
async fn send_held(inner: &dyn AsyncUdpSocket, mut poller: Pin<&mut dyn UdpPoller>, h: &Held) {
    let t = Transmit {
        destination: h.destination,
        ecn: h.ecn,
        contents: &h.contents,
        segment_size: None,
        src_ip: h.src_ip,
    };
    loop {
        match inner.try_send(&t) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let ready = std::future::poll_fn(|cx| poller.as_mut().poll_writable(cx)).await;
                if let Err(e) = ready {
                    tracing::debug!(error = %e, "emulated socket: writable wait failed");
                    return;
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, dst = %h.destination, "emulated socket: send failed");
                return;
            }
            Ok(()) => return,
        }
    }
}

impl AsyncUdpSocket for EmulatedSocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        self.inner.clone().create_io_poller()
    }

    fn try_send(&self, t: &Transmit) -> io::Result<()> {
        match t.segment_size {
            Some(seg) if seg > 0 && seg < t.contents.len() => {
                // Quinn was told no GSO; split anyway rather than delay a batch
                // as one. Queued, never sent directly: a `WouldBlock` half way
                // would make quinn send the first segments twice.
                for chunk in t.contents.chunks(seg) {
                    self.send_one(t, chunk, false)?;
                }
                Ok(())
            }
            _ => self.send_one(t, t.contents, true),
        }
    }

    fn poll_recv(
        &self,
        cx: &mut Context,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        self.inner.poll_recv(cx, bufs, meta)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn max_transmit_segments(&self) -> usize {
        1
    }

    fn max_receive_segments(&self) -> usize {
        self.inner.max_receive_segments()
    }

    fn may_fragment(&self) -> bool {
        self.inner.may_fragment()
    }
}
