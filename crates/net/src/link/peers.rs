//! The peer table of the link layer (X3, V9): for every peer, its admitted
//! connections, the queue `send` feeds, dials in progress; plus the state shared
//! by the `Links` handle and the connection tasks.
//!
//! Which connection `send` uses: the newest admitted one. The one it replaces is
//! retired (see [`super::connection`]): it drains what was queued and then closes.
//! When both nodes dial each other at once, "newest" can differ between the two
//! ends, so for two connections of opposite directions admitted within
//! [`SIMULTANEOUS_DIAL_WINDOW`] both ends keep the one dialed by the lower node id.
//! Should the ends still disagree (admissions straddling the window), each keeps
//! writing on its choice and reading from both: nothing is lost, two connections
//! stay up until one ends.

use super::stats::{add, sub, LinkStats};
use super::{LinkConfig, LinkError, LinkEvent};
use bytes::{Bytes, BytesMut};
use quinn::Connection;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tiercast_proto::codec::{encode_block_head, BLOCK_HEADER_LEN};
use tiercast_proto::{encode_frame, Message, NodeId};
use tokio::sync::mpsc;

/// Two opposite-direction connections admitted this close together are a
/// simultaneous dial (tie-broken by node id) rather than a reconnection (newest wins).
pub(crate) const SIMULTANEOUS_DIAL_WINDOW: Duration = Duration::from_secs(2);

/// One queued frame, already encoded; a block's payload is kept as its own chunk.
/// Blocks and `Media` (recovery shards) count as media bytes, `Frame`s as control
/// (`Message::is_media`, the simulator's split).
pub(crate) enum Outgoing {
    Frame(Bytes),
    Media(Bytes),
    Block { head: Bytes, payload: Bytes },
}

impl Outgoing {
    pub fn encode(msg: Message, max_frame_bytes: usize) -> Result<Self, LinkError> {
        match msg {
            Message::Block(block) => {
                let len = 2 + BLOCK_HEADER_LEN + block.payload.len();
                if len > max_frame_bytes {
                    return Err(LinkError::FrameTooLarge {
                        len,
                        max: max_frame_bytes,
                    });
                }
                Ok(Outgoing::Block {
                    head: encode_block_head(&block),
                    payload: block.payload,
                })
            }
            other => {
                let media = other.is_media();
                let mut buf = BytesMut::new();
                encode_frame(&other, &mut buf)?;
                let len = buf.len() - 4;
                if len > max_frame_bytes {
                    return Err(LinkError::FrameTooLarge {
                        len,
                        max: max_frame_bytes,
                    });
                }
                let frame = buf.freeze();
                Ok(if media {
                    Outgoing::Media(frame)
                } else {
                    Outgoing::Frame(frame)
                })
            }
        }
    }
}

/// State shared by the `Links` handle and every connection task.
pub(crate) struct Shared {
    pub cfg: LinkConfig,
    pub endpoint: quinn::Endpoint,
    /// Dials to the coordinator use it (a short idle timeout, [`super::tls`]).
    pub coordinator_client: quinn::ClientConfig,
    pub local_addr: SocketAddr,
    pub state: Mutex<State>,
    /// Serialises `Up`/`Down` decisions with their delivery, so they reach the
    /// consumer in the order they were decided.
    pub lifecycle: tokio::sync::Mutex<()>,
    pub events: mpsc::Sender<LinkEvent>,
    pub stats: LinkStats,
    pub next_conn_id: AtomicU64,
    /// The runtime the endpoint was bound in: `send` may be called from any thread.
    pub runtime: tokio::runtime::Handle,
    /// Connection writers running (`connection::write_frames`): a graceful close
    /// waits, bounded, for them to hand what is queued to their peers.
    pub writers: AtomicU64,
}

#[derive(Default)]
pub(crate) struct State {
    pub closed: bool,
    pub addresses: HashMap<NodeId, SocketAddr>,
    pub peers: HashMap<NodeId, PeerEntry>,
}

#[derive(Default)]
pub(crate) struct PeerEntry {
    /// Where `send` queues: the newest admitted connection, or a dial in progress.
    pub current: Option<Queue>,
    /// Admitted connections still alive (the current one and retired ones).
    pub conns: Vec<LiveConn>,
    pub pending_dials: usize,
    /// Dials started before this connection id were cancelled by `disconnect`.
    pub cutoff: u64,
}

pub(crate) struct LiveConn {
    pub conn_id: u64,
    pub conn: Connection,
    /// We dialed it (rather than accepted it).
    pub dialed: bool,
    pub admitted_at: Instant,
}

pub(crate) struct Queue {
    pub conn_id: u64,
    pub tx: mpsc::Sender<Outgoing>,
}

impl Shared {
    pub fn state(&self) -> MutexGuard<'_, State> {
        // No code path panics while holding the lock; if one ever did, the maps
        // are still consistent enough to keep serving.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks the links closed and retires every connection's queue: no frame is
    /// queued any more, and each writer sends what was queued, finishes its
    /// stream and waits for the peer to read it (the graceful half of a close).
    pub fn retire_all(&self) {
        let mut st = self.state();
        st.closed = true;
        for entry in st.peers.values_mut() {
            entry.current = None;
        }
    }

    /// Marks the links closed and closes the endpoint (and with it every connection).
    pub fn shut_down(&self) {
        self.retire_all();
        self.endpoint.close(
            quinn::VarInt::from_u32(super::connection::CLOSE_SHUTDOWN),
            b"node shutting down",
        );
    }

    pub fn new_conn_id(&self) -> u64 {
        add(&self.next_conn_id, 1)
    }

    pub async fn emit(&self, event: LinkEvent) {
        // Fails only when the consumer has gone away; nobody is left to tell.
        let _ = self.events.send(event).await;
    }
}

/// Makes the connection the one `send` queues to. Returns whether it is the
/// peer's first live connection, or `None` if the link must not be used.
pub(crate) fn install(
    shared: &Shared,
    peer: NodeId,
    conn: &Connection,
    conn_id: u64,
    tx: mpsc::Sender<Outgoing>,
    dialed: bool,
) -> Option<bool> {
    let mut st = shared.state();
    if st.closed {
        return None;
    }
    st.addresses.entry(peer).or_insert(conn.remote_address());
    let entry = st.peers.entry(peer).or_default();
    if dialed {
        entry.pending_dials = entry.pending_dials.saturating_sub(1);
        if conn_id < entry.cutoff {
            remove_if_idle(&mut st, peer);
            return None;
        }
    }
    let now = Instant::now();
    let current = entry
        .current
        .as_ref()
        .and_then(|q| entry.conns.iter().find(|c| c.conn_id == q.conn_id));
    let replaces_current = match current {
        None => true,
        Some(c) if c.dialed == dialed => true,
        Some(c) if now.duration_since(c.admitted_at) > SIMULTANEOUS_DIAL_WINDOW => true,
        // Simultaneous dials: keep the connection the lower node id dialed.
        Some(_) => dialed == (shared.cfg.node_id < peer),
    };
    entry.conns.push(LiveConn {
        conn_id,
        conn: conn.clone(),
        dialed,
        admitted_at: now,
    });
    if replaces_current {
        // Dropping the old sender retires the old writer: it drains and finishes.
        entry.current = Some(Queue { conn_id, tx });
    }
    // else `tx` is dropped here: this connection drains what was queued and retires.
    add(&shared.stats.connections, 1);
    Some(entry.conns.len() == 1)
}

pub(crate) fn remove_if_idle(st: &mut State, peer: NodeId) {
    if let Some(entry) = st.peers.get(&peer) {
        if entry.current.is_none() && entry.conns.is_empty() && entry.pending_dials == 0 {
            st.peers.remove(&peer);
        }
    }
}

/// Forgets a connection that ended. Returns whether it was the peer's last one.
pub(crate) fn uninstall(shared: &Shared, peer: NodeId, conn_id: u64) -> bool {
    let mut st = shared.state();
    let last = match st.peers.get_mut(&peer) {
        Some(entry) => {
            entry.conns.retain(|c| c.conn_id != conn_id);
            if entry.current.as_ref().is_some_and(|q| q.conn_id == conn_id) {
                entry.current = None;
            }
            entry.conns.is_empty()
        }
        None => true,
    };
    remove_if_idle(&mut st, peer);
    sub(&shared.stats.connections, 1);
    last
}

/// Forgets a dial that failed. Returns whether the peer has no live connection.
pub(crate) fn dial_failed(shared: &Shared, peer: NodeId, conn_id: u64) -> bool {
    let mut st = shared.state();
    let entry = st.peers.entry(peer).or_default();
    entry.pending_dials = entry.pending_dials.saturating_sub(1);
    if entry.current.as_ref().is_some_and(|q| q.conn_id == conn_id) {
        entry.current = None;
    }
    let down = entry.conns.is_empty();
    remove_if_idle(&mut st, peer);
    down
}
