//! One task per link connection (X3, V9): dial or accept, admit, then a writer
//! draining the peer's bounded send queue onto the frame stream and a reader
//! decoding frames into [`LinkEvent`]s.
//!
//! A connection replaced by a newer one (see [`super::peers`]) is retired: its
//! writer drains what was already queued, finishes the stream and waits until the
//! peer has read it all; its reader keeps delivering until the peer finishes its
//! side too. Only then is it closed. `Up` is emitted when a peer goes from no
//! admitted connection to one, `Down` when its last one ends (or a dial to it fails).

use super::admission::{admit_incoming, admit_outgoing, AdmissionError, Admitted};
use super::peers::{dial_failed, install, uninstall, Outgoing, Shared};
use super::stats::{add, worth_logging};
use super::tls::SERVER_NAME;
use super::LinkEvent;
use bytes::Bytes;
use quinn::{Connection, ConnectionError, RecvStream, SendStream, VarInt};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tiercast_proto::{CodecError, FrameDecoder, NodeId};
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tracing::{debug, info, warn};

/// Application close codes.
pub(crate) const CLOSE_DONE: u32 = 0;
pub(crate) const CLOSE_NOT_ADMITTED: u32 = 1;
pub(crate) const CLOSE_DISCONNECTED: u32 = 2;
pub(crate) const CLOSE_SHUTDOWN: u32 = 3;
pub(crate) const CLOSE_WRONG_NODE: u32 = 4;
/// Most queued frames one write call gathers.
const WRITE_BATCH_FRAMES: usize = 64;
/// Longest peer-supplied close reason repeated in events and logs.
const MAX_REASON_CHARS: usize = 200;

/// Dials `peer` at `addr`, admits the link and serves it; `tx`/`rx` is the queue
/// `send` already put messages into. Emits `Down` if the dial fails.
pub(crate) async fn dial(
    shared: Arc<Shared>,
    peer: NodeId,
    addr: SocketAddr,
    conn_id: u64,
    tx: mpsc::Sender<Outgoing>,
    rx: mpsc::Receiver<Outgoing>,
) {
    match connect_and_admit(&shared, peer, addr).await {
        Ok((conn, admitted)) => serve(shared, conn, admitted, conn_id, tx, rx, true).await,
        Err(reason) => {
            debug!(%peer, %addr, %reason, "link dial failed");
            let _lifecycle = shared.lifecycle.lock().await;
            let peer_is_down = dial_failed(&shared, peer, conn_id);
            if peer_is_down {
                shared.emit(LinkEvent::Down { peer, reason }).await;
            }
        }
    }
}

async fn connect_and_admit(
    shared: &Shared,
    peer: NodeId,
    addr: SocketAddr,
) -> Result<(Connection, Admitted), String> {
    let conn = handshake(shared, peer, addr).await?;
    let admitted = match admit_outgoing(&conn, &shared.cfg.cluster_key, shared.cfg.node_id).await {
        Ok(admitted) => admitted,
        Err(e) => {
            refuse(shared, &conn, &e);
            return Err(e.to_string());
        }
    };
    if admitted.peer != peer {
        let reason = format!("dialed {peer} at {addr} but reached {}", admitted.peer);
        warn!(%reason, "link refused: stale address");
        conn.close(VarInt::from_u32(CLOSE_WRONG_NODE), reason.as_bytes());
        return Err(reason);
    }
    Ok((conn, admitted))
}

/// How long each handshake with the coordinator may take before it is started
/// afresh, then one more without a bound (a coordinator over a slow path).
/// QUIC backs off its retransmissions while a peer is silent: a coordinator
/// restarted after 4 s was reached 1.3 s after it came up; with fresh
/// handshakes every second at most, within one (D7, issue 10 Must show 1).
const COORDINATOR_HANDSHAKE_ATTEMPTS_MS: [u64; 9] =
    [500, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000];

/// The QUIC handshake with `peer` at `addr`. The coordinator is dialled with its
/// own client configuration ([`super::tls`]) and handshakes started afresh
/// ([`COORDINATOR_HANDSHAKE_ATTEMPTS_MS`]); any other node once.
async fn handshake(shared: &Shared, peer: NodeId, addr: SocketAddr) -> Result<Connection, String> {
    let coordinator = peer == tiercast_proto::COORDINATOR_ID;
    let dial = || {
        if coordinator {
            let cfg = shared.coordinator_client.clone();
            shared.endpoint.connect_with(cfg, addr, SERVER_NAME)
        } else {
            shared.endpoint.connect(addr, SERVER_NAME)
        }
        .map_err(|e| format!("cannot dial {addr}: {e}"))
    };
    let failed =
        |e: quinn::ConnectionError| format!("cannot connect to {addr}: {}", describe_close(&e));
    let attempts: &[u64] = if coordinator {
        &COORDINATOR_HANDSHAKE_ATTEMPTS_MS
    } else {
        &[]
    };
    for &ms in attempts {
        match tokio::time::timeout(Duration::from_millis(ms), dial()?).await {
            Ok(r) => return r.map_err(failed),
            Err(_) => debug!(%addr, ms, "coordinator handshake slow; dialing afresh"),
        }
    }
    dial()?.await.map_err(failed)
}

/// Accepts one incoming connection, admits it and serves it. `permit` bounds the
/// handshakes in progress and is released once admission is decided.
pub(crate) async fn accept(
    shared: Arc<Shared>,
    incoming: quinn::Incoming,
    permit: OwnedSemaphorePermit,
) {
    let remote = incoming.remote_address();
    let conn = match incoming.await {
        Ok(conn) => conn,
        Err(e) => {
            debug!(%remote, error = %describe_close(&e), "incoming link handshake failed");
            return;
        }
    };
    let admitted = admit_incoming(&conn, &shared.cfg.cluster_key, shared.cfg.node_id).await;
    drop(permit);
    match admitted {
        Ok(admitted) => {
            let conn_id = shared.new_conn_id();
            let (tx, rx) = mpsc::channel(shared.cfg.send_queue_frames);
            serve(shared, conn, admitted, conn_id, tx, rx, false).await;
        }
        Err(e) => refuse(&shared, &conn, &e),
    }
}

/// Closes a connection that failed admission; counts and logs real refusals.
fn refuse(shared: &Shared, conn: &Connection, e: &AdmissionError) {
    let remote = conn.remote_address();
    if e.is_refusal() {
        let total = add(&shared.stats.refused_admissions, 1);
        if worth_logging(total) {
            warn!(%remote, reason = %e, total, "link refused");
        }
        let reason = e.to_string();
        conn.close(VarInt::from_u32(CLOSE_NOT_ADMITTED), reason.as_bytes());
    } else {
        debug!(%remote, reason = %e, "link failed during admission");
    }
}

/// Runs an admitted connection until it ends, then emits `Down` if it was the last.
async fn serve(
    shared: Arc<Shared>,
    conn: Connection,
    admitted: Admitted,
    conn_id: u64,
    tx: mpsc::Sender<Outgoing>,
    mut rx: mpsc::Receiver<Outgoing>,
    dialed: bool,
) {
    let Admitted {
        peer,
        mut send,
        mut recv,
    } = admitted;
    let addr = conn.remote_address();
    {
        let _lifecycle = shared.lifecycle.lock().await;
        let first = match install(&shared, peer, &conn, conn_id, tx, dialed) {
            Some(first) => first,
            None => {
                conn.close(VarInt::from_u32(CLOSE_DISCONNECTED), b"disconnected");
                return;
            }
        };
        info!(%peer, %addr, dialed, "link up");
        if first {
            shared.emit(LinkEvent::Up { peer, addr }).await;
        }
    }

    let reason = run_streams(&shared, &conn, peer, &mut send, &mut recv, &mut rx).await;
    // A no-op if the connection already failed; otherwise the peer learns why.
    conn.close(VarInt::from_u32(CLOSE_DONE), reason.as_bytes());
    drop(rx);

    let _lifecycle = shared.lifecycle.lock().await;
    let last = uninstall(&shared, peer, conn_id);
    info!(%peer, %addr, %reason, "link down");
    if last {
        shared.emit(LinkEvent::Down { peer, reason }).await;
    }
}

/// Runs writer and reader until both have finished cleanly or either fails.
/// Returns why the connection ended.
async fn run_streams(
    shared: &Shared,
    conn: &Connection,
    peer: NodeId,
    send: &mut SendStream,
    recv: &mut RecvStream,
    rx: &mut mpsc::Receiver<Outgoing>,
) -> String {
    let writer = write_frames(shared, conn, send, rx);
    let reader = read_frames(shared, conn, peer, recv);
    tokio::pin!(writer, reader);
    tokio::select! {
        written = &mut writer => match written {
            Ok(()) => reader.await.err().unwrap_or_else(|| "connection retired".into()),
            Err(reason) => reason,
        },
        read = &mut reader => match read {
            Ok(()) => writer.await.err().unwrap_or_else(|| "connection retired".into()),
            Err(reason) => reason,
        },
    }
}

/// Drains the queue onto the stream, gathering what is queued into one vectored
/// write. Ends `Ok` once the queue is retired and the peer has read everything.
async fn write_frames(
    shared: &Shared,
    conn: &Connection,
    send: &mut SendStream,
    rx: &mut mpsc::Receiver<Outgoing>,
) -> Result<(), String> {
    let _writing = Writing::start(&shared.writers);
    let mut chunks: Vec<Bytes> = Vec::with_capacity(2 * WRITE_BATCH_FRAMES);
    loop {
        let first = tokio::select! {
            next = rx.recv() => next,
            e = conn.closed() => return Err(describe_close(&e)),
        };
        let Some(first) = first else { break };
        chunks.clear();
        let mut frames = 0;
        let mut media = 0;
        let mut next = Some(first);
        while let Some(out) = next {
            match out {
                Outgoing::Frame(frame) => chunks.push(frame),
                Outgoing::Media(frame) => {
                    media += frame.len();
                    chunks.push(frame);
                }
                Outgoing::Block { head, payload } => {
                    media += head.len() + payload.len();
                    chunks.extend([head, payload]);
                }
            }
            frames += 1;
            next = if frames < WRITE_BATCH_FRAMES {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        let bytes: usize = chunks.iter().map(Bytes::len).sum();
        send.write_all_chunks(&mut chunks)
            .await
            .map_err(|e| lost(conn, e))?;
        add(&shared.stats.frames_out, frames as u64);
        add(&shared.stats.bytes_out, bytes as u64);
        add(&shared.stats.media_bytes_out, media as u64);
        add(&shared.stats.control_bytes_out, (bytes - media) as u64);
    }
    // Retired: no sender is left. Tell the peer and wait until it has read it all.
    let _ = send.finish();
    send.stopped().await.map_err(|e| lost(conn, e))?;
    Ok(())
}

/// Counts a running writer while it lives ([`Shared::writers`]).
struct Writing<'a>(&'a std::sync::atomic::AtomicU64);

impl<'a> Writing<'a> {
    fn start(n: &'a std::sync::atomic::AtomicU64) -> Self {
        n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Writing(n)
    }
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Decodes frames into events until the peer finishes the stream (`Ok`) or the
/// connection fails. A bad or oversized frame is dropped, counted and logged.
async fn read_frames(
    shared: &Shared,
    conn: &Connection,
    peer: NodeId,
    recv: &mut RecvStream,
) -> Result<(), String> {
    let mut decoder = FrameDecoder::new(shared.cfg.max_frame_bytes);
    let mut segments: [Bytes; 16] = Default::default();
    loop {
        let n = match recv.read_chunks(&mut segments).await {
            Ok(Some(n)) => n,
            Ok(None) => return Ok(()),
            Err(e) => return Err(lost(conn, e)),
        };
        for segment in &mut segments[..n] {
            add(&shared.stats.bytes_in, segment.len() as u64);
            decoder.extend(segment);
            *segment = Bytes::new();
        }
        while let Some(frame) = decoder.next_frame() {
            match frame {
                Ok(msg) => {
                    add(&shared.stats.frames_in, 1);
                    shared.stats.count_in(peer, &msg);
                    if shared
                        .events
                        .send(LinkEvent::Message { from: peer, msg })
                        .await
                        .is_err()
                    {
                        return Err("link event receiver dropped".into());
                    }
                }
                Err(e) => count_bad_frame(shared, conn, peer, &e),
            }
        }
    }
}

fn count_bad_frame(shared: &Shared, conn: &Connection, peer: NodeId, e: &CodecError) {
    let (kind, counter) = match e {
        CodecError::Oversized { .. } => ("oversized", &shared.stats.oversized_frames),
        _ => ("malformed", &shared.stats.bad_frames),
    };
    let total = add(counter, 1);
    if worth_logging(total) {
        warn!(%peer, remote = %conn.remote_address(), error = %e, total, "{kind} frame dropped");
    }
}

/// Why a stream operation failed: the connection's close reason when there is one.
fn lost(conn: &Connection, e: impl std::fmt::Display) -> String {
    match conn.close_reason() {
        Some(reason) => describe_close(&reason),
        None => e.to_string(),
    }
}

/// A connection error as a reason for `Down`: the peer's own words when it closed
/// the connection, e.g. "not admitted: cluster key mismatch".
pub(crate) fn describe_close(e: &ConnectionError) -> String {
    match e {
        ConnectionError::ApplicationClosed(close) => {
            let reason = String::from_utf8_lossy(&close.reason);
            if reason.is_empty() {
                format!("closed by peer (code {})", close.error_code)
            } else {
                reason.chars().take(MAX_REASON_CHARS).collect()
            }
        }
        ConnectionError::LocallyClosed => "closed locally".into(),
        other => other.to_string(),
    }
}
