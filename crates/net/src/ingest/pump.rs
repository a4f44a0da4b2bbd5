//! One publisher's path from bytes to the block channel: push into a
//! [`TimedCutter`] (the cutter and its idle flush, sans-IO in `tiercast-media`),
//! send every finished block, and run the flush timer it asks for on the
//! session's clock (µs since the session started). Feature X1.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tiercast_media::{CutBlock, IngestError, TimedCutter};
use tokio::time::Instant;

use super::health::HealthEvent;
use super::{IngestStats, SessionConfig};
use tracing::info;

impl Drop for Pump {
    fn drop(&mut self) {
        let now = self.cfg.stats.now_us();
        self.cfg.stats.health().set_publishing(now, false);
    }
}

/// Why a session must stop.
#[derive(Debug)]
pub(crate) enum PumpError {
    /// The input is not MPEG-TS; the reason is for the publisher and the log.
    NotTransportStream(String),
    /// The block receiver is gone: the whole server stops.
    ReceiverGone,
}

impl From<IngestError> for PumpError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::NotTransportStream { reason } => PumpError::NotTransportStream(reason),
        }
    }
}

pub(crate) struct Pump {
    cutter: TimedCutter,
    cfg: SessionConfig,
    /// The session's clock: the cutter's time is µs since then.
    start: Instant,
    skipped_reported: u64,
}

impl Pump {
    pub fn new(cfg: SessionConfig) -> Self {
        let now = cfg.stats.now_us();
        cfg.stats.health().set_publishing(now, true);
        Pump {
            cutter: TimedCutter::new(cfg.cutter, cfg.flush_after_ms, 0),
            cfg,
            start: Instant::now(),
            skipped_reported: 0,
        }
    }

    fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    /// Starts over with a fresh cutter (UDP, after a stream was refused).
    pub fn reset(&mut self) {
        self.cutter = TimedCutter::new(self.cfg.cutter, self.cfg.flush_after_ms, self.now_us());
        self.skipped_reported = 0;
    }

    /// See [`TimedCutter::continues_stream`].
    pub fn continues_stream(&self, data: &[u8]) -> bool {
        self.cutter.continues_stream(data)
    }

    fn stats(&self) -> &IngestStats {
        &self.cfg.stats
    }

    pub async fn feed(&mut self, data: &[u8]) -> Result<(), PumpError> {
        IngestStats::count(&self.stats().bytes, data.len() as u64);
        let now = self.stats().now_us();
        let resumed = self.stats().health().on_bytes(now, data.len() as u64);
        if let Some(HealthEvent::Resumed { stalled_ms }) = resumed {
            info!(stalled_ms, "ingest event: encoder resumed");
        }
        let pushed = self.cutter.push(data);
        self.report_skipped();
        pushed?;
        self.drain().await
    }

    /// When the flush timer is due (far in the future when it is off).
    pub fn flush_deadline(&self) -> Instant {
        match self.cutter.poll_timeout() {
            Some(us) => self.start + Duration::from_micros(us),
            None => Instant::now() + Duration::from_secs(86_400),
        }
    }

    /// The flush timer fired: the cutter decides what to cut.
    pub async fn flush(&mut self) -> Result<(), PumpError> {
        let now = self.now_us();
        self.cutter.handle_timeout(now);
        self.drain().await
    }

    /// End of input: the last block, or the refusal of a short non-TS input.
    pub async fn finish(&mut self) -> Result<(), PumpError> {
        let finished = self.cutter.finish();
        self.report_skipped();
        finished?;
        self.drain().await
    }

    /// Bytes and blocks this session has produced so far.
    pub fn totals(&self) -> (u64, u64) {
        let stats = self.cutter.stats();
        (stats.bytes, stats.blocks)
    }

    async fn drain(&mut self) -> Result<(), PumpError> {
        loop {
            let now = self.now_us();
            let Some(block) = self.cutter.poll_block(now) else {
                return Ok(());
            };
            self.send(block).await?;
        }
    }

    async fn send(&mut self, block: CutBlock) -> Result<(), PumpError> {
        let keyframe = block.keyframe;
        let now = self.stats().now_us();
        self.stats()
            .health()
            .on_block(now, &block.payload, keyframe);
        self.cfg
            .out
            .send(block)
            .await
            .map_err(|_| PumpError::ReceiverGone)?;
        IngestStats::count(&self.stats().blocks, 1);
        if keyframe {
            IngestStats::count(&self.stats().keyframes, 1);
        }
        Ok(())
    }

    fn report_skipped(&mut self) {
        let skipped = self.cutter.stats().resyncs;
        let new = skipped - self.skipped_reported;
        if new > 0 {
            self.cfg
                .stats
                .skipped_bytes
                .fetch_add(new, Ordering::Relaxed);
            self.skipped_reported = skipped;
        }
    }
}
