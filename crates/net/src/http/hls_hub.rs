//! The HLS side of a relay's or peer's viewer server (X2, X3): one
//! [`Segmenter`] per channel asked for over HLS, fed by one feeder task that
//! joins the channel like a `/live` viewer would (one viewer per channel,
//! however many HLS players) and leaves after `idle_ms` without an HLS
//! request, or when the channel closes. Waiting requests park on a `watch`
//! of the segmenter's version; how many may park is bounded per node.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tiercast_media::hls::{HlsConfig, Segmenter};
use tiercast_proto::viewer_feed::ViewerFeed;
use tokio::sync::{broadcast, watch};
use tracing::{debug, info};

use super::response::Response;
use super::viewer::{join, leave, Context, ViewerStream};

/// Bounds of the HLS side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HlsLimits {
    pub config: HlsConfig,
    /// Channels with HLS state at once; a new one beyond evicts an idle one (no
    /// feeder, no request holding it) or gets 503.
    pub max_channels: usize,
    /// Requests parked (blocking reload, preload hint) at once on this node; beyond, 503.
    pub max_parked: usize,
    /// A channel's feeder leaves after this long without an HLS request.
    pub idle_ms: u64,
}

impl Default for HlsLimits {
    fn default() -> Self {
        HlsLimits {
            config: HlsConfig::default(),
            max_channels: 64,
            max_parked: 4_096,
            idle_ms: 30_000,
        }
    }
}

/// One channel's HLS state.
pub(super) struct HlsChannel {
    segmenter: Mutex<Segmenter>,
    version: watch::Sender<u64>,
    feeding: AtomicBool,
    /// ms since the hub's epoch.
    last_request_ms: AtomicU64,
    /// Requests parked on this channel now: the feed is not idle while any wait.
    waiting: AtomicUsize,
    /// One join at a time, so two first requests do not both join.
    starting: tokio::sync::Mutex<()>,
}

impl HlsChannel {
    pub(super) fn segmenter(&self) -> MutexGuard<'_, Segmenter> {
        self.segmenter
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts a parked request on this channel while the guard lives.
    pub(super) fn waiting(&self) -> ParkedSlot<'_> {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        ParkedSlot(&self.waiting)
    }

    /// Notified whenever the segmenter changes.
    pub(super) fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }
}

pub(super) struct HlsHub {
    limits: HlsLimits,
    epoch: Instant,
    channels: Mutex<BTreeMap<String, Arc<HlsChannel>>>,
    parked: AtomicUsize,
}

/// A parked request's place; frees it when dropped.
pub(super) struct ParkedSlot<'a>(&'a AtomicUsize);

impl Drop for ParkedSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl HlsHub {
    pub(super) fn new(limits: HlsLimits) -> Self {
        if let Err(problem) = limits.config.validate() {
            tracing::warn!(%problem, "HLS settings replaced by the defaults");
        }
        let limits = if limits.config.validate().is_ok() {
            limits
        } else {
            HlsLimits {
                config: HlsConfig::default(),
                ..limits
            }
        };
        HlsHub {
            limits,
            epoch: Instant::now(),
            channels: Mutex::new(BTreeMap::new()),
            parked: AtomicUsize::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn map(&self) -> MutexGuard<'_, BTreeMap<String, Arc<HlsChannel>>> {
        self.channels
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A place among the parked requests, or `None` when all are taken.
    pub(super) fn park(&self) -> Option<ParkedSlot<'_>> {
        let before = self.parked.fetch_add(1, Ordering::Relaxed);
        let slot = ParkedSlot(&self.parked);
        (before < self.limits.max_parked).then_some(slot)
    }

    /// How long a request may wait: three target durations (RFC 8216bis 6.2.5.2).
    pub(super) fn max_wait(&self, channel: &HlsChannel) -> Duration {
        Duration::from_secs(3 * channel.segmenter().target_duration_s())
    }

    /// The channel's HLS state, joining the channel first if no feeder runs.
    pub(super) async fn channel(
        &self,
        name: &str,
        context: &Arc<Context>,
    ) -> Result<Arc<HlsChannel>, Response> {
        if let Some(found) = self.running(name) {
            return Ok(found);
        }
        let channel = self.entry(name)?;
        let _one_at_a_time = channel.starting.lock().await;
        if channel.feeding.load(Ordering::Relaxed) {
            return Ok(channel.clone());
        }
        let stream = match join(context, name, ViewerFeed::LIVE).await {
            Ok(stream) => stream,
            Err(refusal) => {
                // An unknown name leaves no entry behind.
                let mut map = self.map();
                if map
                    .get(name)
                    .is_some_and(|c| !c.feeding.load(Ordering::Relaxed))
                {
                    map.remove(name);
                }
                return Err(hls_refusal(refusal));
            }
        };
        channel.feeding.store(true, Ordering::Relaxed);
        channel
            .last_request_ms
            .store(self.now_ms(), Ordering::Relaxed);
        info!(channel = name, viewer = ?stream.viewer, "HLS feed joined");
        let idle_ms = self.limits.idle_ms;
        let epoch = self.epoch;
        tokio::spawn(feed(
            channel.clone(),
            name.to_string(),
            stream,
            context.clone(),
            epoch,
            idle_ms,
        ));
        Ok(channel.clone())
    }

    fn running(&self, name: &str) -> Option<Arc<HlsChannel>> {
        let found = self.map().get(name)?.clone();
        found
            .last_request_ms
            .store(self.now_ms(), Ordering::Relaxed);
        found.feeding.load(Ordering::Relaxed).then_some(found)
    }

    /// The channel's entry, made if new (evicting an idle one at the limit).
    fn entry(&self, name: &str) -> Result<Arc<HlsChannel>, Response> {
        let mut map = self.map();
        if let Some(found) = map.get(name) {
            return Ok(found.clone());
        }
        if map.len() >= self.limits.max_channels {
            let idle = map
                .iter()
                .find(|(_, c)| !c.feeding.load(Ordering::Relaxed) && Arc::strong_count(c) == 1)
                .map(|(k, _)| k.clone());
            match idle {
                Some(k) => {
                    map.remove(&k);
                }
                None => {
                    return Err(Response::unavailable(
                        5,
                        format!(
                            "this node serves HLS for {} channels already",
                            self.limits.max_channels
                        ),
                    ))
                }
            }
        }
        let made = Arc::new(HlsChannel {
            segmenter: Mutex::new(Segmenter::new(self.limits.config.clone())),
            version: watch::channel(0).0,
            feeding: AtomicBool::new(false),
            last_request_ms: AtomicU64::new(self.now_ms()),
            waiting: AtomicUsize::new(0),
            starting: tokio::sync::Mutex::new(()),
        });
        map.insert(name.to_string(), made.clone());
        Ok(made)
    }
}

/// A driver's refusal as an HLS answer: a redirect to another relay's `/live`
/// URL becomes one to its playlist; one to anything else (the coordinator's
/// `/watch`, which answers with a `/live` URL) becomes a 503 that says so.
fn hls_refusal(response: Response) -> Response {
    let Some(location) = response
        .header_value("Location")
        .filter(|_| response.status() == 302)
    else {
        return response;
    };
    let playlist = location.split_once("/live/").and_then(|(base, rest)| {
        let channel = rest.split(['.', '?']).next()?;
        Some(format!("{base}/hls/{channel}/index.m3u8"))
    });
    match playlist {
        Some(playlist) => Response::redirect(&playlist),
        None => Response::unavailable(
            5,
            format!("this node has no room for the channel; {location} names one that has"),
        ),
    }
}

/// Feeds the channel's blocks to its segmenter until the channel closes or no
/// HLS request came for `idle_ms`; then leaves and forgets the window.
async fn feed(
    channel: Arc<HlsChannel>,
    name: String,
    stream: ViewerStream,
    context: Arc<Context>,
    epoch: Instant,
    idle_ms: u64,
) {
    let ViewerStream {
        viewer,
        backlog,
        mut live,
    } = stream;
    let backlog_last = backlog.last().map(|b| b.seq);
    let mut caught_up = backlog_last.is_none();
    let mut delivered = 0u64;
    let mut skipped = 0u64;
    let push = |b: super::viewer::LiveBlock| {
        let mut seg = channel.segmenter();
        seg.push(b.seq, b.origin_time_us, b.keyframe, b.payload);
        let version = seg.version();
        drop(seg);
        channel.version.send_if_modified(|v| {
            let changed = *v != version;
            *v = version;
            changed
        });
    };
    for b in backlog {
        push(b);
        delivered += 1;
    }
    let why = loop {
        let since = epoch.elapsed().as_millis() as u64;
        let quiet_ms = since.saturating_sub(channel.last_request_ms.load(Ordering::Relaxed));
        if quiet_ms > idle_ms && channel.waiting.load(Ordering::Relaxed) == 0 {
            break "no HLS request lately";
        }
        match tokio::time::timeout(Duration::from_secs(1), live.recv()).await {
            Ok(Ok(b)) => {
                if !caught_up {
                    if backlog_last.is_some_and(|last| b.seq <= last) {
                        continue;
                    }
                    caught_up = true;
                }
                push(b);
                delivered += 1;
            }
            Ok(Err(broadcast::error::RecvError::Lagged(n))) => skipped += n,
            Ok(Err(broadcast::error::RecvError::Closed)) => break "channel closed",
            Err(_quiet) => {}
        }
    };
    info!(
        channel = name,
        ?viewer,
        delivered,
        skipped,
        why,
        "HLS feed left"
    );
    {
        let mut seg = channel.segmenter();
        seg.reset();
        let version = seg.version();
        channel.feeding.store(false, Ordering::Relaxed);
        channel.version.send_replace(version);
    }
    leave(&context, &name, viewer, delivered, skipped).await;
    debug!(channel = name, "HLS window forgotten");
}
