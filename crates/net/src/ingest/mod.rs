//! MPEG-TS ingest servers (features X1, X3): a publisher pushes a transport
//! stream over UDP, TCP, HTTP `POST`/`PUT` or SRT, or FLV over RTMP; a [`BlockCutter`] turns it into
//! [`CutBlock`]s that go into a bounded channel (backpressure: the server
//! waits for room; when the receiver is gone the server stops).
//!
//! - [`udp`] — one socket; each datagram is pushed; non-TS datagrams are
//!   dropped, counted, and logged at most once per 10 s with sender and reason.
//! - [`tcp`] — one publisher at a time; a fresh cutter per connection.
//! - [`http_post`] — `POST`/`PUT` with `Content-Length` or chunked body
//!   (`ffmpeg -f mpegts -method POST http://host:port/ingest`); `200` when
//!   the body ends, `400` with the reason when it is not MPEG-TS.
//! - [`rtmp`] — RTMP server (`rml_rtmp`), FLV remuxed to TS; the stream key is the key.
//! - [`srt`] — SRT listener (`srt-tokio`); the stream id carries the key.
//! - [`srt_caller`] — SRT caller: the origin dials a listening encoder.
//! - [`publish_key`] — publish keys, reloaded on change or `SIGHUP`.
//! - [`allow`] — the UDP/TCP per-source allow-list.
//! - [`health`] — bitrate in, keyframe interval, gaps, PCR jumps, stalls.
//! - [`slot`] — one publisher per channel (refuse a second, or take over).
//! - `chunked` — incremental chunked transfer-coding decoder with limits.
//! - `pump` — cutter → channel, with the flush timer for low bitrates.
//!
//! Limits: 64 concurrent connections, 16 KiB request heads, 10 s to send a
//! head, 30 s of silence ends a publisher.

pub mod allow;
#[doc(hidden)]
pub mod chunked; // pub for the fuzz target (fuzz/fuzz_targets/chunked_body.rs)
pub mod health;
pub mod http_post;
pub mod publish_key;
mod pump;
pub mod rtmp;
pub mod slot;
pub mod srt;
pub mod srt_caller;
pub mod tcp;
pub mod udp;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tracing::{debug, warn};

pub use allow::{AllowList, Cidr};
pub use publish_key::{KeyRefusal, PublishKeys};
pub(crate) use slot::{PublisherGuard, PublisherSlot};
pub use tiercast_media::{CutBlock, CutterConfig};

/// Connections (publishers plus ones being refused) handled at once.
pub const MAX_CONNECTIONS: usize = 64;
/// A publisher that sends nothing for this long is disconnected.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes read from a socket at a time.
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// Where and how to listen for a publisher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestListen {
    Udp(SocketAddr),
    Tcp(SocketAddr),
    Http(SocketAddr),
    /// SRT listener (the publisher calls).
    Srt(SocketAddr),
    /// RTMP server (`rtmp://ADDR/live/KEY`).
    Rtmp(SocketAddr),
    /// SRT caller: the origin dials a listening encoder at this address.
    SrtCall(SocketAddr),
}

/// Who may publish and how: keys, allow-list, takeover, SRT settings.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// The channel's publish keys (open when none is configured).
    pub keys: PublishKeys,
    /// UDP/TCP sources allowed (empty: any while keys are off, none while on).
    pub allow: AllowList,
    /// A second publisher takes over from the live one instead of being refused.
    pub publisher_takeover: bool,
    /// SRT receive latency (ms): how long SRT may spend recovering lost packets.
    pub srt_latency_ms: u64,
    /// SRT encryption passphrase (10-79 characters); None: unencrypted.
    pub srt_passphrase: Option<String>,
    /// The stream id the SRT caller sends (None: none).
    pub srt_stream_id: Option<String>,
}

impl IngestOptions {
    /// Open ingest for `channel`: no key, any source, no takeover.
    pub fn open(channel: &str) -> Self {
        IngestOptions {
            keys: PublishKeys::open(channel),
            allow: AllowList::default(),
            publisher_takeover: false,
            srt_latency_ms: srt::DEFAULT_LATENCY_MS,
            srt_passphrase: None,
            srt_stream_id: None,
        }
    }

    /// Checks the values a user gives.
    pub fn validate(&self) -> Result<(), String> {
        if !(20..=10_000).contains(&self.srt_latency_ms) {
            return Err(format!(
                "--srt-latency-ms {}: give 20..=10000",
                self.srt_latency_ms
            ));
        }
        if let Some(p) = &self.srt_passphrase {
            if !(10..=79).contains(&p.len()) {
                return Err("--srt-passphrase: give 10-79 characters (SRT's rule)".into());
            }
        }
        if self.srt_stream_id.as_ref().is_some_and(|s| s.len() > 512) {
            return Err("--srt-stream-id: at most 512 characters (SRT's limit)".into());
        }
        if self.allow.0.len() > allow::MAX_ALLOW_BLOCKS {
            return Err(format!(
                "--ingest-allow: at most {} blocks",
                allow::MAX_ALLOW_BLOCKS
            ));
        }
        Ok(())
    }
}

/// Counters shared with the ingest task.
#[derive(Debug, Default)]
pub struct IngestStats {
    /// Bytes handed to the cutter.
    pub bytes: AtomicU64,
    /// Blocks sent to the channel.
    pub blocks: AtomicU64,
    /// Of which keyframe blocks.
    pub keyframes: AtomicU64,
    /// Bytes the cutter skipped to find packet sync.
    pub skipped_bytes: AtomicU64,
    /// Publishers accepted (TCP connections, HTTP requests with a body).
    pub publishers: AtomicU64,
    /// TCP/HTTP connections refused: not MPEG-TS, busy, malformed request.
    pub rejected_connections: AtomicU64,
    /// UDP datagrams dropped because they were not MPEG-TS or their sender
    /// is not allowed.
    pub rejected_datagrams: AtomicU64,
    /// Publishers refused for a missing or wrong key or a source not allowed
    /// (also counted in `rejected_connections`, except UDP datagrams).
    pub refused_keys: AtomicU64,
    /// Publishers refused because another one was live.
    pub refused_busy: AtomicU64,
    /// Publishers that took over from a live one.
    pub takeovers: AtomicU64,
    /// RTMP tags dropped because they could not be remuxed.
    pub dropped_tags: AtomicU64,
    /// SRT port: datagrams that were not SRT (the SRT crate's parse errors).
    pub garbage_packets: AtomicU64,
    /// The latest reason a publisher or datagram was refused.
    pub last_error: Mutex<Option<String>>,
    /// Bitrate, keyframe interval, gaps, jumps, stalls of the live input.
    pub health: Mutex<health::HealthTracker>,
    /// The clock of `health` (µs since the first use).
    clock: std::sync::OnceLock<std::time::Instant>,
}

impl IngestStats {
    /// The latest refusal reason, if any.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// µs on the ingest's clock.
    pub fn now_us(&self) -> u64 {
        self.clock
            .get_or_init(std::time::Instant::now)
            .elapsed()
            .as_micros() as u64
    }

    pub(crate) fn health(&self) -> std::sync::MutexGuard<'_, health::HealthTracker> {
        self.health.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The input's health now.
    pub fn health_snapshot(&self) -> health::IngestHealth {
        let now = self.now_us();
        self.health().snapshot(now)
    }

    /// Counters and health as JSON (the origin's `--ingest-report`).
    pub fn to_json(&self) -> serde_json::Value {
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        serde_json::json!({
            "bytes": n(&self.bytes),
            "blocks": n(&self.blocks),
            "keyframes": n(&self.keyframes),
            "skipped_bytes": n(&self.skipped_bytes),
            "publishers": n(&self.publishers),
            "rejected_connections": n(&self.rejected_connections),
            "rejected_datagrams": n(&self.rejected_datagrams),
            "refused_keys": n(&self.refused_keys),
            "refused_busy": n(&self.refused_busy),
            "takeovers": n(&self.takeovers),
            "dropped_tags": n(&self.dropped_tags),
            "garbage_packets": n(&self.garbage_packets),
            "last_error": self.last_error(),
            "health": self.health_snapshot(),
        })
    }

    pub(crate) fn set_error(&self, reason: String) {
        *self
            .last_error
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(reason);
    }

    pub(crate) fn reject_connection(&self, reason: String) {
        self.rejected_connections.fetch_add(1, Ordering::Relaxed);
        self.set_error(reason);
    }

    pub(crate) fn refuse_key(&self, reason: String) {
        self.refused_keys.fetch_add(1, Ordering::Relaxed);
        self.reject_connection(reason);
    }

    pub(crate) fn refuse_busy(&self, reason: String) {
        self.refused_busy.fetch_add(1, Ordering::Relaxed);
        self.reject_connection(reason);
    }

    pub(crate) fn count(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// A running ingest server; dropping it stops the server and its connections.
#[derive(Debug)]
pub struct IngestHandle {
    pub local_addr: SocketAddr,
    pub stats: Arc<IngestStats>,
    task: JoinHandle<()>,
    key_watcher: Option<JoinHandle<()>>,
    stall_watcher: JoinHandle<()>,
}

impl IngestHandle {
    /// True once the server has stopped (the receiver went away).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl Drop for IngestHandle {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(w) = &self.key_watcher {
            w.abort();
        }
        self.stall_watcher.abort();
    }
}

/// Binds `listen` and starts the server. `flush_after_ms`: a partial block is
/// cut after this long without a cut (low bitrates); 0 turns the timer off.
pub async fn start_ingest(
    listen: IngestListen,
    cutter: CutterConfig,
    out: mpsc::Sender<CutBlock>,
    flush_after_ms: u64,
) -> std::io::Result<IngestHandle> {
    start_ingest_with(
        listen,
        IngestOptions::open("live"),
        cutter,
        out,
        flush_after_ms,
    )
    .await
}

/// [`start_ingest`] with publish keys, allow-list, takeover and SRT settings.
pub async fn start_ingest_with(
    listen: IngestListen,
    options: IngestOptions,
    cutter: CutterConfig,
    out: mpsc::Sender<CutBlock>,
    flush_after_ms: u64,
) -> std::io::Result<IngestHandle> {
    let invalid = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, e);
    options.validate().map_err(invalid)?;
    cutter.validate().map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("ingest cutter config: {e}"),
        )
    })?;
    let stats = Arc::new(IngestStats::default());
    let session = SessionConfig {
        cutter,
        out,
        stats: stats.clone(),
        flush_after_ms,
        options: Arc::new(options),
        slot: PublisherSlot::default(),
    };
    let key_watcher = session.options.keys.spawn_watcher();
    let (local_addr, task) = match listen {
        IngestListen::Udp(addr) => {
            let socket = UdpSocket::bind(addr).await?;
            let local = socket.local_addr()?;
            (local, tokio::spawn(udp::serve(socket, session)))
        }
        IngestListen::Tcp(addr) => {
            let listener = TcpListener::bind(addr).await?;
            let local = listener.local_addr()?;
            (local, tokio::spawn(tcp::serve(listener, session)))
        }
        IngestListen::Http(addr) => {
            let listener = TcpListener::bind(addr).await?;
            let local = listener.local_addr()?;
            (local, tokio::spawn(http_post::serve(listener, session)))
        }
        IngestListen::Rtmp(addr) => {
            let listener = TcpListener::bind(addr).await?;
            let local = listener.local_addr()?;
            (local, tokio::spawn(rtmp::serve(listener, session)))
        }
        IngestListen::SrtCall(remote) => (remote, tokio::spawn(srt_caller::serve(remote, session))),
        IngestListen::Srt(addr) => {
            let (listener, incoming, local) = srt::bind(addr, &session.options).await?;
            (local, tokio::spawn(srt::serve(listener, incoming, session)))
        }
    };
    tracing::info!(?listen, %local_addr, "ingest listening");
    let stats_for_watch = stats.clone();
    Ok(IngestHandle {
        local_addr,
        stats,
        task,
        key_watcher,
        stall_watcher: tokio::spawn(watch_stalls(stats_for_watch)),
    })
}

/// Logs a stalled encoder as an event (X4): every 500 ms the health tracker
/// is asked whether the live publisher went silent.
async fn watch_stalls(stats: Arc<IngestStats>) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        let now = stats.now_us();
        let event = stats.health().check_stall(now);
        if let Some(health::HealthEvent::Stalled { silent_ms }) = event {
            warn!(
                silent_ms,
                "ingest event: encoder stalled, no input from the live publisher"
            );
        }
    }
}

/// What every server needs to run publisher sessions.
#[derive(Debug, Clone)]
pub(crate) struct SessionConfig {
    pub cutter: CutterConfig,
    pub out: mpsc::Sender<CutBlock>,
    pub stats: Arc<IngestStats>,
    pub flush_after_ms: u64,
    pub options: Arc<IngestOptions>,
    /// One publisher at a time, across all of this origin's servers.
    pub slot: PublisherSlot,
}

impl SessionConfig {
    /// The publisher slot, or the refusal counted and logged (`None`).
    pub async fn take_slot(&self, who: &str) -> Option<PublisherGuard> {
        if let Some(g) = self.slot.try_take() {
            return Some(g);
        }
        match self.slot.take(self.options.publisher_takeover).await {
            Ok(g) => {
                warn!(%who, "ingest: new publisher took over from the live one");
                IngestStats::count(&self.stats.takeovers, 1);
                Some(g)
            }
            Err(busy) => {
                warn!(%who, reason = busy.reason(), "ingest: refusing a second publisher");
                self.stats
                    .refuse_busy(format!("{who}: refused, {}", busy.reason()));
                None
            }
        }
    }
}

/// Accepts connections until the block receiver is gone, running `session`
/// for each in a task that ends with the server (a [`JoinSet`] aborts them on
/// drop). Over [`MAX_CONNECTIONS`] a connection is closed at once.
pub(crate) async fn accept_loop<F, Fut>(listener: TcpListener, cfg: SessionConfig, session: F)
where
    F: Fn(TcpStream, SocketAddr, SessionConfig, PublisherSlot) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let slot = cfg.slot.clone();
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            _ = cfg.out.closed() => break,
            Some(_) = sessions.join_next() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if sessions.len() >= MAX_CONNECTIONS {
                        warn!(%peer, limit = MAX_CONNECTIONS, "ingest: too many connections, closing");
                        cfg.stats.reject_connection(format!("{peer}: over {MAX_CONNECTIONS} connections"));
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    sessions.spawn(session(stream, peer, cfg.clone(), slot.clone()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off briefly.
                    warn!(error = %e, "ingest: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
    debug!("ingest server stopped: block receiver gone");
}
