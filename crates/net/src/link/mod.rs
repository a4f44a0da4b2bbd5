//! Links between nodes (X3 node admission and encrypted links, V9 transport):
//! one QUIC endpoint per node, acting as server and client, carrying framed
//! [`Message`]s on one bidirectional stream per connection.
//!
//! - [`admission`] — the cluster key and the Hello proofs that admit a link.
//! - [`tls`] — QUIC/TLS configuration (ring only, ALPN `tiercast/1`, windows).
//! - `connection` — per-connection tasks: dial/accept, writer, reader.
//! - `peers` — the peer table: connections per peer, send queues, tie-breaks.
//! - [`stats`] — counters, [`LinkStatsSnapshot`].
//! - [`emulate`] — network emulation for `tiercast cluster` (issue 13): per
//!   destination region, latency, jitter and loss decided sans-IO;
//!   `emulate_socket` applies it under quinn when [`LinkConfig::emulation`] is set.
//!
//! The driver talks to [`Links`] by node id only: it learns addresses from
//! `PeerInfo`s (`set_address`), `send`s messages (the link is dialed on demand),
//! and reads [`LinkEvent`]s. Nothing here decides anything about the overlay.

pub mod admission;
mod connection;
pub mod emulate;
#[cfg(test)]
mod emulate_link_tests;
pub mod emulate_socket;
#[cfg(test)]
mod emulate_tests;
mod peers;
pub mod stats;
#[cfg(test)]
mod tests;
pub mod tls;

pub use admission::{AdmissionError, ClusterKey};
pub use emulate::{EmulationError, EmulationStats, NetEmulation};
pub use stats::LinkStatsSnapshot;

use connection::CLOSE_DISCONNECTED;
use peers::{Outgoing, Queue, Shared, State};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use thiserror::Error;
use tiercast_proto::{CodecError, Message, NodeId, COORDINATOR_ID, MAX_FRAME_BYTES};
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::sync::Semaphore;
use tracing::debug;

/// Capacity of the event stream returned by [`Links::bind`].
pub const EVENT_QUEUE: usize = 4096;
/// Most incoming handshakes (TLS + admission) in progress at once; more are refused.
pub const MAX_PENDING_HANDSHAKES: usize = 256;
/// How long [`Links::close`] waits for connections to finish closing.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// How long a close waits for the queued frames to reach their peers. Before,
/// the endpoint closed at once and dropped them: `tiercast cluster` saw most
/// leaving peers found gone only at the heartbeat timeout (3.5 s) instead of at
/// their `Unwatch`, and their children starve meanwhile.
const DRAIN_GRACE: Duration = Duration::from_millis(500);

#[derive(Clone, Debug)]
pub struct LinkConfig {
    pub node_id: NodeId,
    pub cluster_key: ClusterKey,
    /// Largest frame accepted (and sent); longer frames are skipped and counted.
    pub max_frame_bytes: usize,
    /// Frames queued per peer before `send` drops and reports `QueueFull`.
    pub send_queue_frames: usize,
    pub idle_timeout_ms: u64,
    pub keep_alive_ms: u64,
    /// Initial congestion window: loopback/LAN blocks of ~60 KiB must not wait
    /// on congestion-window growth.
    pub initial_window_bytes: u64,
    /// Emulated latency, jitter and loss on every datagram sent (`tiercast
    /// cluster`, issue 13); `None`: the runtime's socket, untouched.
    pub emulation: Option<Arc<NetEmulation>>,
}

/// The keys of the endpoint's stateless resets and connection ids, derived from
/// the cluster key and the node id: a node restarted with the same id (the
/// coordinator is always id 0) recognises the connection ids of its previous
/// run and answers their packets with a reset the other side accepts, so it
/// redials at once instead of waiting out the idle timeout (D7).
fn restart_keys(cfg: &LinkConfig) -> (ring::hmac::Key, u64) {
    let master = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &cfg.cluster_key.0);
    let mut label = b"tiercast-stateless-reset-v1".to_vec();
    label.extend_from_slice(&cfg.node_id.0.to_be_bytes());
    let derived = ring::hmac::sign(&master, &label);
    let d = derived.as_ref();
    let mut cid = [0u8; 8];
    cid.copy_from_slice(&d[24..32]);
    (
        ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &d[..24]),
        u64::from_be_bytes(cid),
    )
}

impl LinkConfig {
    pub fn new(node_id: NodeId, cluster_key: ClusterKey) -> Self {
        LinkConfig {
            node_id,
            cluster_key,
            ..Default::default()
        }
    }

    /// Checks the limits once, at start, with a message saying which one is wrong.
    pub fn validate(&self) -> Result<(), LinkError> {
        let bad = |why: String| Err(LinkError::Config(why));
        if !(4096..=1 << 30).contains(&self.max_frame_bytes) {
            return bad(format!(
                "max_frame_bytes {} is not within 4 KiB..=1 GiB",
                self.max_frame_bytes
            ));
        }
        if !(1..=1 << 20).contains(&self.send_queue_frames) {
            return bad(format!(
                "send_queue_frames {} is not within 1..=1048576",
                self.send_queue_frames
            ));
        }
        if self.keep_alive_ms == 0 || self.idle_timeout_ms <= self.keep_alive_ms {
            return bad(format!(
                "need 0 < keep_alive_ms ({}) < idle_timeout_ms ({})",
                self.keep_alive_ms, self.idle_timeout_ms
            ));
        }
        if self.idle_timeout_ms > 24 * 3600 * 1000 {
            return bad(format!(
                "idle_timeout_ms {} exceeds one day",
                self.idle_timeout_ms
            ));
        }
        if !(2400..=1 << 30).contains(&self.initial_window_bytes) {
            return bad(format!(
                "initial_window_bytes {} is not within 2400..=1 GiB",
                self.initial_window_bytes
            ));
        }
        Ok(())
    }
}

impl Default for LinkConfig {
    /// Defaults for every limit. `node_id` and `cluster_key` are placeholders (the
    /// coordinator's id, the public development key): set both.
    fn default() -> Self {
        LinkConfig {
            node_id: COORDINATOR_ID,
            cluster_key: ClusterKey::dev_default(),
            max_frame_bytes: MAX_FRAME_BYTES,
            send_queue_frames: 1024,
            idle_timeout_ms: 10_000,
            keep_alive_ms: 500,
            initial_window_bytes: 4 * 1024 * 1024,
            emulation: None,
        }
    }
}

#[derive(Clone, Debug)]
pub enum LinkEvent {
    /// The peer has an admitted connection (its first).
    Up {
        peer: NodeId,
        addr: SocketAddr,
    },
    Message {
        from: NodeId,
        msg: Message,
    },
    /// The peer's last connection ended, or dialing it failed.
    Down {
        peer: NodeId,
        reason: String,
    },
}

#[derive(Debug, Error)]
pub enum LinkError {
    #[error("invalid cluster key: {0}")]
    InvalidClusterKey(String),
    #[error("invalid link config: {0}")]
    Config(String),
    #[error("cannot bind QUIC endpoint on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("TLS setup failed: {0}")]
    Tls(String),
    #[error("no known address for node {0}")]
    UnknownAddress(NodeId),
    #[error("send queue to node {0} is full; message dropped")]
    QueueFull(NodeId),
    #[error("no connection to node {0}")]
    NotConnected(NodeId),
    #[error("node {0} is ourselves")]
    OwnNodeId(NodeId),
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    FrameTooLarge { len: usize, max: usize },
    #[error("message cannot be encoded: {0}")]
    Encode(#[from] CodecError),
    #[error("links are closed")]
    Closed,
}

/// Handle to the node's link endpoint; cheap to clone. When the last clone is
/// dropped the endpoint is closed, as by [`Links::close`] (without the wait).
#[derive(Clone)]
pub struct Links {
    shared: Arc<Shared>,
    /// The emulation stage's counters, when it is on.
    emulation: Option<Arc<emulate_socket::EmulationShared>>,
    _last_handle: Arc<CloseOnDrop>,
}

/// Connection tasks hold `Shared` too, so the endpoint's lifetime follows this.
struct CloseOnDrop(Arc<Shared>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.shut_down();
    }
}

impl Links {
    /// Binds a QUIC endpoint (server + client) on `listen` (UDP). Returns the handle
    /// and the event stream. Events are never silently lost: when the consumer is
    /// slow, readers wait (and QUIC flow control pushes back on the senders).
    pub async fn bind(
        listen: SocketAddr,
        cfg: LinkConfig,
    ) -> Result<(Links, mpsc::Receiver<LinkEvent>), LinkError> {
        cfg.validate()?;
        let tls::EndpointConfigs {
            server,
            client,
            coordinator_client,
        } = tls::endpoint_configs(&cfg)?;
        let bind_err = |source| LinkError::Bind {
            addr: listen,
            source,
        };
        let socket = std::net::UdpSocket::bind(listen).map_err(bind_err)?;
        let runtime = quinn::default_runtime()
            .ok_or_else(|| bind_err(std::io::Error::other("no async runtime found")))?;
        let (reset, cid_key) = restart_keys(&cfg);
        let mut endpoint_cfg = quinn::EndpointConfig::new(Arc::new(reset));
        endpoint_cfg.cid_generator(move || {
            Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(cid_key))
        });
        let mut emulation = None;
        let mut endpoint = match &cfg.emulation {
            None => quinn::Endpoint::new(endpoint_cfg, Some(server), socket, runtime),
            Some(emu) => {
                let inner = runtime.wrap_udp_socket(socket).map_err(bind_err)?;
                let (socket, shared) = emulate_socket::EmulatedSocket::new(
                    inner,
                    emu,
                    emulate_socket::DELAY_QUEUE_DATAGRAMS,
                );
                emulation = Some(shared);
                quinn::Endpoint::new_with_abstract_socket(
                    endpoint_cfg,
                    Some(server),
                    socket,
                    runtime,
                )
            }
        }
        .map_err(bind_err)?;
        endpoint.set_default_client_config(client);
        let local_addr = endpoint.local_addr().map_err(bind_err)?;
        let (events, events_rx) = mpsc::channel(EVENT_QUEUE);
        let shared = Arc::new(Shared {
            cfg,
            endpoint: endpoint.clone(),
            coordinator_client,
            local_addr,
            state: Mutex::new(State::default()),
            lifecycle: tokio::sync::Mutex::new(()),
            events,
            stats: Default::default(),
            next_conn_id: AtomicU64::new(0),
            runtime: tokio::runtime::Handle::current(),
            writers: AtomicU64::new(0),
        });
        tokio::spawn(accept_loop(shared.clone(), endpoint));
        let links = Links {
            _last_handle: Arc::new(CloseOnDrop(shared.clone())),
            shared,
            emulation,
        };
        Ok((links, events_rx))
    }

    /// The bound address (with the real port when `listen` had port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    pub fn node_id(&self) -> NodeId {
        self.shared.cfg.node_id
    }

    /// Remembers where a node listens (learned from `PeerInfo`). Used by the next
    /// dial; live connections are not touched.
    pub fn set_address(&self, peer: NodeId, addr: SocketAddr) {
        self.shared.state().addresses.insert(peer, addr);
    }

    /// Queues a message to `peer`, dialing it (from the address book) if no
    /// connection is up. Never blocks. On `QueueFull` the message is dropped and
    /// counted; for blocks this is a congested child.
    pub fn send(&self, peer: NodeId, msg: Message) -> Result<(), LinkError> {
        if peer == self.shared.cfg.node_id {
            return Err(LinkError::OwnNodeId(peer));
        }
        let out = Outgoing::encode(msg, self.shared.cfg.max_frame_bytes)?;
        let mut st = self.shared.state();
        if st.closed {
            return Err(LinkError::Closed);
        }
        let out = match st.peers.get(&peer).and_then(|e| e.current.as_ref()) {
            Some(queue) => match queue.tx.try_send(out) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Full(_)) => {
                    stats::add(&self.shared.stats.queue_full_drops, 1);
                    return Err(LinkError::QueueFull(peer));
                }
                // That connection's writer has ended: dial a new one below.
                Err(TrySendError::Closed(out)) => out,
            },
            None => out,
        };
        let addr = *st
            .addresses
            .get(&peer)
            .ok_or(LinkError::UnknownAddress(peer))?;
        let (tx, rx) = mpsc::channel(self.shared.cfg.send_queue_frames);
        if tx.try_send(out).is_err() {
            unreachable!("a new queue has room for one frame");
        }
        let conn_id = self.shared.new_conn_id();
        let entry = st.peers.entry(peer).or_default();
        entry.current = Some(Queue {
            conn_id,
            tx: tx.clone(),
        });
        entry.pending_dials += 1;
        drop(st);
        debug!(%peer, %addr, "dialing link");
        self.shared.runtime.spawn(connection::dial(
            self.shared.clone(),
            peer,
            addr,
            conn_id,
            tx,
            rx,
        ));
        Ok(())
    }

    /// Closes every connection to `peer` and cancels a dial in progress; a `Down`
    /// event follows if the peer was connected. What was still queued is dropped.
    pub fn disconnect(&self, peer: NodeId) {
        let conns = {
            let mut st = self.shared.state();
            let cutoff = self.shared.new_conn_id();
            let Some(entry) = st.peers.get_mut(&peer) else {
                return;
            };
            entry.current = None;
            entry.cutoff = cutoff;
            entry
                .conns
                .iter()
                .map(|c| c.conn.clone())
                .collect::<Vec<_>>()
        };
        for conn in conns {
            conn.close(quinn::VarInt::from_u32(CLOSE_DISCONNECTED), b"disconnected");
        }
    }

    /// Whether `peer` has at least one admitted connection.
    pub fn is_connected(&self, peer: NodeId) -> bool {
        self.shared
            .state()
            .peers
            .get(&peer)
            .is_some_and(|e| !e.conns.is_empty())
    }

    /// UDP datagrams received so far over `peer`'s live connections (QUIC
    /// keep-alives and ACKs included), and the newest one's RTT; `None` when
    /// none is up. A count that stops moving is a silent peer (D7: a node
    /// watches its coordinator so).
    pub fn received(&self, peer: NodeId) -> Option<(u64, Duration)> {
        let st = self.shared.state();
        let conns = &st.peers.get(&peer)?.conns;
        let newest = conns.iter().max_by_key(|c| c.conn_id)?;
        let datagrams = conns.iter().map(|c| c.conn.stats().udp_rx.datagrams).sum();
        Some((datagrams, newest.conn.rtt()))
    }

    pub fn stats(&self) -> LinkStatsSnapshot {
        self.shared.stats.snapshot()
    }

    /// The network emulation's counters; `None` when it is off.
    pub fn emulation_stats(&self) -> Option<EmulationStats> {
        self.emulation.as_ref().map(|e| e.stats())
    }

    /// Test hook: writes raw bytes, in queue order, on the established stream to
    /// `peer` (for malformed-frame tests). Does not dial.
    pub fn send_raw_for_test(&self, peer: NodeId, bytes: bytes::Bytes) -> Result<(), LinkError> {
        let st = self.shared.state();
        let queue = st
            .peers
            .get(&peer)
            .filter(|e| !e.conns.is_empty())
            .and_then(|e| e.current.as_ref())
            .ok_or(LinkError::NotConnected(peer))?;
        queue
            .tx
            .try_send(Outgoing::Frame(bytes))
            .map_err(|e| match e {
                TrySendError::Full(_) => LinkError::QueueFull(peer),
                TrySendError::Closed(_) => LinkError::NotConnected(peer),
            })
    }

    /// Closes every connection and the endpoint; later `send`s fail with `Closed`.
    /// What was queued before is delivered first — a node's goodbye (`Unwatch`,
    /// `Logoff`) reaches the coordinator — waiting at most [`DRAIN_GRACE`] for the
    /// writers; then the endpoint closes, waiting briefly for the peers to be told.
    pub async fn close(&self) {
        self.shared.retire_all();
        let drained = async {
            while self.shared.writers.load(Ordering::Relaxed) > 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        let _ = tokio::time::timeout(DRAIN_GRACE, drained).await;
        self.shared.shut_down();
        let _ = tokio::time::timeout(CLOSE_GRACE, self.shared.endpoint.wait_idle()).await;
    }
}

async fn accept_loop(shared: Arc<Shared>, endpoint: quinn::Endpoint) {
    let handshakes = Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES));
    while let Some(incoming) = endpoint.accept().await {
        match handshakes.clone().try_acquire_owned() {
            Ok(permit) => {
                tokio::spawn(connection::accept(shared.clone(), incoming, permit));
            }
            Err(_) => {
                debug!(remote = %incoming.remote_address(), "too many link handshakes; refused");
                incoming.refuse();
            }
        }
    }
}
