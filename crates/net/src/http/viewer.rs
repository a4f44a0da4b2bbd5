//! The relay's viewer endpoint: `GET /live/<channel>.ts` asks the node driver
//! (through [`ViewerRequest::Join`]) for a [`ViewerStream`], then serves the
//! backlog and the live blocks as one MPEG-TS body that runs until close;
//! `?feed=audio` asks for the audio-only feed, `?delay=SECONDS` for a feed that
//! many seconds behind live (C3; `viewer_feed`: 400 with the reason for a bad
//! value or a delay past `max_delay_s`);
//! `GET /health` answers `ok`; `GET /status` answers the node's snapshot as JSON;
//! `GET /metrics` the node's Prometheus page (X4, `crate::metrics::node`).
//! Refusals from the driver become 404 / 302 / 503.
//!
//! Features: X2 (viewer HTTP, first half), V2 (redirect a viewer elsewhere),
//! X3 (connection cap, head size and time limits, write timeout, clear errors).
//!
//! Contract with the driver: for `Join`, subscribe `live` before taking the
//! `backlog` snapshot (live blocks that repeat the backlog's seqs are dropped
//! here). If sending the reply fails, the viewer never joined. Every viewer
//! that did join is reported once by `Leave` (a `HEAD` joins and leaves at
//! once, so its status is the one a `GET` would get). The server stops
//! accepting when the driver drops its `Receiver<ViewerRequest>`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tiercast_proto::ids::valid_channel_name;
use tiercast_proto::ViewerId;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::{debug, info};

use super::accept::{accept_loop, ConnectionCounters, BUSY_RETRY_AFTER_S};
use super::hls_hub::{HlsHub, HlsLimits};
use super::hls_routes::{self, HlsRoute};
use super::request::{read_request_head, truncate, Method, RequestHead, MAX_HEAD_BYTES};
use super::response::{close_gracefully, stream_head, write_with_timeout, Response};
use super::viewer_access::may_serve;
use super::viewer_feed::{pump_feed, FeedShaper};
use super::viewer_stream::{pump, StreamEnd};
use tiercast_proto::viewer_feed::ViewerFeed;

/// How long a `Join` may wait for the driver's answer.
pub const JOIN_REPLY_TIMEOUT_MS: u64 = 5_000;

/// One block of a channel as the relay's buffer hands it to viewers.
#[derive(Clone, Debug)]
pub struct LiveBlock {
    pub seq: u64,
    /// The block starts a keyframe: a player can start (or resync) here.
    pub keyframe: bool,
    /// When the origin cut it (µs, the origin's clock): paces a delayed feed (C3).
    pub origin_time_us: u64,
    pub payload: Bytes,
}

/// The tokio driver's blocks go through the core's playout stage on a peer.
impl tiercast_node::PlayoutBlock for LiveBlock {
    fn seq(&self) -> u64 {
        self.seq
    }
    fn keyframe(&self) -> bool {
        self.keyframe
    }
    fn origin_time_us(&self) -> u64 {
        self.origin_time_us
    }
}

/// What the driver hands a joining viewer: recent blocks from a keyframe on,
/// and a subscription to what comes next.
pub struct ViewerStream {
    pub viewer: ViewerId,
    pub backlog: Vec<LiveBlock>,
    pub live: broadcast::Receiver<LiveBlock>,
}

/// Why the driver will not serve a viewer here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ViewerRefusal {
    /// `404` with this reason.
    NotFound(String),
    /// `302 Found` to this absolute URL.
    Redirect(String),
    /// `503` with `Retry-After`.
    Unavailable { retry_after_s: u32, reason: String },
}

/// What the viewer server asks of the node driver.
pub enum ViewerRequest {
    Join {
        channel: String,
        /// Audio-only and/or delayed (C3); `ViewerFeed::LIVE` for the plain stream.
        feed: ViewerFeed,
        reply: oneshot::Sender<Result<ViewerStream, ViewerRefusal>>,
    },
    Leave {
        channel: String,
        viewer: ViewerId,
        delivered_blocks: u64,
        skipped_blocks: u64,
    },
    /// The node's state as JSON (`GET /status`).
    Status {
        reply: oneshot::Sender<serde_json::Value>,
    },
    /// The node's Prometheus page (`GET /metrics`, X4).
    Metrics { reply: oneshot::Sender<String> },
}

/// Limits of the viewer server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViewerLimits {
    /// Concurrent connections at most; beyond, `503` with `Retry-After: 2`.
    pub max_connections: usize,
    /// Deadline for a complete request head.
    pub head_timeout_ms: u64,
    /// A viewer whose socket stays unwritable this long is dropped.
    pub write_timeout_ms: u64,
    /// Longest `delay=` served (C3's delayed feed); a longer one is answered 400.
    /// A delayed viewer holds at most `max_delay_s` × [`DELAY_BLOCKS_PER_S`] blocks.
    pub max_delay_s: u32,
    /// HLS and LL-HLS: segmenting, window, parked requests (X2).
    pub hls: HlsLimits,
}

/// Blocks per second of delay a delayed viewer may hold (ffmpeg's streams run at
/// about 10 to 20: a block per PAT, every ~100 ms, and one per 64 KiB).
pub const DELAY_BLOCKS_PER_S: usize = 50;

impl Default for ViewerLimits {
    fn default() -> Self {
        ViewerLimits {
            max_connections: 10_000,
            head_timeout_ms: 10_000,
            write_timeout_ms: 10_000,
            max_delay_s: 60,
            hls: HlsLimits::default(),
        }
    }
}

impl ViewerLimits {
    /// Checks the limits make sense; call once at start.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_connections == 0 {
            return Err("viewer max_connections must be at least 1".into());
        }
        if self.head_timeout_ms == 0 || self.write_timeout_ms == 0 {
            return Err("viewer head_timeout_ms and write_timeout_ms must be at least 1".into());
        }
        if self.max_delay_s > tiercast_proto::viewer_feed::MAX_DELAY_S {
            return Err(format!(
                "max_delay_s {} is beyond {} s",
                self.max_delay_s,
                tiercast_proto::viewer_feed::MAX_DELAY_S
            ));
        }
        Ok(())
    }
}

/// Counters of the viewer server (read them any time; all relaxed).
#[derive(Debug, Default)]
pub struct ViewerServerStats {
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Connections open now.
    pub active: AtomicU64,
    /// Requests refused: connection limit, driver refusals, driver timeouts.
    pub refused: AtomicU64,
    /// Requests answered 400 / 404 / 405 / 408 / 431.
    pub bad_requests: AtomicU64,
    /// Times a viewer lagged the live channel and skipped to a keyframe.
    pub lagged_resyncs: AtomicU64,
    /// Bytes written to viewers (heads and bodies of streams).
    pub bytes_out: AtomicU64,
}

impl ConnectionCounters for ViewerServerStats {
    fn connections(&self) -> &AtomicU64 {
        &self.connections
    }
    fn active(&self) -> &AtomicU64 {
        &self.active
    }
    fn refused(&self) -> &AtomicU64 {
        &self.refused
    }
}

/// Serves viewers on `listener` until the driver drops the receiving end of
/// `requests`.
pub async fn serve_viewers(
    listener: TcpListener,
    requests: mpsc::Sender<ViewerRequest>,
    limits: ViewerLimits,
    stats: Arc<ViewerServerStats>,
) {
    let join_timeout = Duration::from_millis(JOIN_REPLY_TIMEOUT_MS);
    serve_viewers_with(listener, requests, limits, stats, join_timeout).await
}

pub(super) struct Context {
    requests: mpsc::Sender<ViewerRequest>,
    head_timeout: Duration,
    write_timeout: Duration,
    join_timeout: Duration,
    max_delay_s: u32,
    pub(super) stats: Arc<ViewerServerStats>,
    pub(super) hls: HlsHub,
}

pub(crate) async fn serve_viewers_with(
    listener: TcpListener,
    requests: mpsc::Sender<ViewerRequest>,
    limits: ViewerLimits,
    stats: Arc<ViewerServerStats>,
    join_timeout: Duration,
) {
    if let Err(problem) = limits.validate() {
        tracing::warn!(%problem, "viewer limits raised to their minimum");
    }
    let context = Arc::new(Context {
        requests: requests.clone(),
        head_timeout: Duration::from_millis(limits.head_timeout_ms.max(1)),
        write_timeout: Duration::from_millis(limits.write_timeout_ms.max(1)),
        join_timeout,
        max_delay_s: limits.max_delay_s,
        stats: stats.clone(),
        hls: HlsHub::new(limits.hls.clone()),
    });
    let until = async move { requests.closed().await };
    accept_loop(
        "viewer",
        listener,
        limits.max_connections.max(1),
        stats,
        until,
        |stream, peer| serve_connection(stream, peer, context.clone()),
    )
    .await
}

/// What a request asks for.
enum Route {
    Health,
    Status,
    Metrics,
    Live(String, ViewerFeed),
    Hls(HlsRoute),
}

fn route(head: &RequestHead) -> Result<Route, Response> {
    if let Some(hls) = hls_routes::parse(head) {
        return hls.map(Route::Hls);
    }
    if let Method::Other(method) = &head.method {
        return Err(Response::text(
            405,
            format!(
                "method {} not allowed: use GET or HEAD",
                truncate(method, 16)
            ),
        )
        .header("Allow", "GET, HEAD"));
    }
    if head.path == "/health" {
        return Ok(Route::Health);
    }
    if head.path == "/status" {
        return Ok(Route::Status);
    }
    if head.path == "/metrics" {
        return Ok(Route::Metrics);
    }
    let channel = head
        .path
        .strip_prefix("/live/")
        .and_then(|rest| rest.strip_suffix(".ts"));
    match channel {
        Some(name) if valid_channel_name(name) => {
            let feed = ViewerFeed::from_params(head.query_param("feed"), head.query_param("delay"))
                .map_err(|e| Response::text(400, e.to_string()))?;
            Ok(Route::Live(name.to_string(), feed))
        }
        Some(name) => Err(Response::text(
            400,
            format!(
                "invalid channel name {:?}: use 1-64 characters of A-Z a-z 0-9 _ -",
                truncate(name, 64)
            ),
        )),
        None => Err(Response::text(
            404,
            format!(
                "no such path {:?}: viewers play /live/<channel>.ts (also /status, /metrics, /health)",
                truncate(&head.path, 64)
            ),
        )),
    }
}

async fn serve_connection(mut stream: TcpStream, peer: SocketAddr, context: Arc<Context>) {
    let stats = &context.stats;
    let head = match read_request_head(&mut stream, MAX_HEAD_BYTES, context.head_timeout).await {
        Ok(head) => head,
        Err(e) => {
            debug!(%peer, reason = %e, "viewer request unreadable");
            if let Some(status) = e.status() {
                stats.bad_requests.fetch_add(1, Ordering::Relaxed);
                Response::text(status, e.to_string())
                    .send(stream, false)
                    .await;
            }
            return;
        }
    };
    let head_only = head.is_head();
    match route(&head) {
        Ok(Route::Health) => Response::text(200, "ok").send(stream, head_only).await,
        Ok(Route::Status) => status(&context).await.send(stream, head_only).await,
        Ok(Route::Metrics) => metrics(&context).await.send(stream, head_only).await,
        Ok(Route::Live(_, feed)) if feed.delay_s > context.max_delay_s => {
            stats.bad_requests.fetch_add(1, Ordering::Relaxed);
            let reason = format!(
                "delay {} s is beyond this relay's limit of {} s (relay --max-delay-s)",
                feed.delay_s, context.max_delay_s
            );
            Response::text(400, reason).send(stream, head_only).await
        }
        Ok(Route::Hls(hls)) => hls_routes::serve(stream, hls, &head, &context).await,
        Ok(Route::Live(channel, feed)) => match may_serve(&channel, &head) {
            Ok(()) => serve_live(stream, peer, channel, feed, head_only, &context).await,
            Err(refusal) => refusal.send(stream, head_only).await,
        },
        Err(response) => {
            stats.bad_requests.fetch_add(1, Ordering::Relaxed);
            debug!(%peer, status = response.status(), reason = response.body_text(), "viewer request refused");
            response.send(stream, head_only).await;
        }
    }
}

/// Asks the driver for its Prometheus page.
async fn metrics(context: &Context) -> Response {
    let (reply, answer) = oneshot::channel();
    let asked = async {
        context
            .requests
            .send(ViewerRequest::Metrics { reply })
            .await
            .ok()?;
        answer.await.ok()
    };
    match tokio::time::timeout(context.join_timeout, asked).await {
        Ok(Some(page)) => Response::metrics(page),
        Ok(None) => Response::unavailable(BUSY_RETRY_AFTER_S, "node is shutting down"),
        Err(_elapsed) => Response::unavailable(BUSY_RETRY_AFTER_S, "node did not answer in time"),
    }
}

/// Asks the driver for its snapshot.
async fn status(context: &Context) -> Response {
    let (reply, answer) = oneshot::channel();
    let asked = async {
        context
            .requests
            .send(ViewerRequest::Status { reply })
            .await
            .ok()?;
        answer.await.ok()
    };
    match tokio::time::timeout(context.join_timeout, asked).await {
        Ok(Some(value)) => Response::json(&value),
        Ok(None) => Response::unavailable(BUSY_RETRY_AFTER_S, "node is shutting down"),
        Err(_elapsed) => Response::unavailable(BUSY_RETRY_AFTER_S, "node did not answer in time"),
    }
}

/// Asks the driver for the channel; `Err` is the response to send instead.
pub(super) async fn join(
    context: &Context,
    channel: &str,
    feed: ViewerFeed,
) -> Result<ViewerStream, Response> {
    let (reply, mut answer) = oneshot::channel();
    let request = ViewerRequest::Join {
        channel: channel.to_string(),
        feed,
        reply,
    };
    let asked = async {
        context.requests.send(request).await.ok()?;
        (&mut answer).await.ok()
    };
    let shutting_down = || Response::unavailable(BUSY_RETRY_AFTER_S, "relay is shutting down");
    match tokio::time::timeout(context.join_timeout, asked).await {
        Ok(Some(Ok(viewer_stream))) => Ok(viewer_stream),
        Ok(Some(Err(refusal))) => Err(match refusal {
            ViewerRefusal::NotFound(reason) => Response::text(404, reason),
            ViewerRefusal::Redirect(location) => Response::redirect(&location),
            ViewerRefusal::Unavailable {
                retry_after_s,
                reason,
            } => Response::unavailable(retry_after_s, reason),
        }),
        Ok(None) => Err(shutting_down()),
        Err(_elapsed) => {
            // An answer that raced the deadline must still be handed back.
            answer.close();
            if let Ok(Ok(late)) = answer.try_recv() {
                leave(context, channel, late.viewer, 0, 0).await;
            }
            Err(Response::unavailable(
                BUSY_RETRY_AFTER_S,
                format!(
                    "relay did not answer within {} ms; retry shortly",
                    context.join_timeout.as_millis()
                ),
            ))
        }
    }
}

pub(super) async fn leave(
    context: &Context,
    channel: &str,
    viewer: ViewerId,
    delivered: u64,
    skipped: u64,
) {
    let request = ViewerRequest::Leave {
        channel: channel.to_string(),
        viewer,
        delivered_blocks: delivered,
        skipped_blocks: skipped,
    };
    if context.requests.send(request).await.is_err() {
        debug!(?viewer, channel, "leave not delivered: driver is gone");
    }
}

async fn serve_live(
    mut stream: TcpStream,
    peer: SocketAddr,
    channel: String,
    feed: ViewerFeed,
    head_only: bool,
    context: &Context,
) {
    let stats = &context.stats;
    let viewer_stream = match join(context, &channel, feed).await {
        Ok(viewer_stream) => viewer_stream,
        Err(response) => {
            stats.refused.fetch_add(1, Ordering::Relaxed);
            debug!(%peer, channel, status = response.status(), reason = response.body_text(), "viewer refused");
            response.send(stream, head_only).await;
            return;
        }
    };
    let ViewerStream {
        viewer,
        backlog,
        live,
    } = viewer_stream;
    let _ = stream.set_nodelay(true);
    let head = stream_head("video/mp2t");
    if head_only {
        let written = write_with_timeout(&mut stream, &head, context.write_timeout).await;
        leave(context, &channel, viewer, 0, 0).await;
        if written.is_ok() {
            stats
                .bytes_out
                .fetch_add(head.len() as u64, Ordering::Relaxed);
            close_gracefully(stream).await;
        }
        return;
    }
    info!(%peer, channel, ?viewer, backlog = backlog.len(), feed = %feed.query(), "viewer joined");
    let (end, delivery) = if feed.is_live_full() {
        pump(
            &mut stream,
            head,
            backlog,
            live,
            context.write_timeout,
            stats,
        )
        .await
    } else {
        let max_held = (feed.delay_s as usize).saturating_mul(DELAY_BLOCKS_PER_S);
        let shaper = FeedShaper::new(feed, max_held);
        pump_feed(
            &mut stream,
            head,
            backlog,
            live,
            shaper,
            context.write_timeout,
            stats,
        )
        .await
    };
    let why = match &end {
        StreamEnd::ChannelClosed => "channel closed".to_string(),
        StreamEnd::WriteFailed(e) => format!("client gone: {e}"),
    };
    info!(
        %peer, channel, ?viewer,
        delivered = delivery.delivered_blocks,
        skipped = delivery.skipped_blocks,
        why,
        "viewer left"
    );
    leave(
        context,
        &channel,
        viewer,
        delivery.delivered_blocks,
        delivery.skipped_blocks,
    )
    .await;
    if let StreamEnd::ChannelClosed = end {
        close_gracefully(stream).await;
    }
}
