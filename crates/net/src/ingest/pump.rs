//! One publisher's path from bytes to the block channel: push into a
//! [`BlockCutter`], send every finished block, and cut a partial block when no
//! cut happened for `flush_after_ms` (low bitrates). Feature X1.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tiercast_media::{BlockCutter, CutBlock, IngestError};
use tokio::time::Instant;

use super::{IngestStats, SessionConfig};

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
    cutter: BlockCutter,
    cfg: SessionConfig,
    flush_after: Option<Duration>,
    last_cut: Instant,
    skipped_reported: u64,
}

impl Pump {
    pub fn new(cfg: SessionConfig) -> Self {
        Pump {
            cutter: BlockCutter::new(cfg.cutter),
            flush_after: (cfg.flush_after_ms > 0)
                .then(|| Duration::from_millis(cfg.flush_after_ms)),
            cfg,
            last_cut: Instant::now(),
            skipped_reported: 0,
        }
    }

    /// Starts over with a fresh cutter (UDP, after a stream was refused).
    pub fn reset(&mut self) {
        self.cutter = BlockCutter::new(self.cfg.cutter);
        self.skipped_reported = 0;
    }

    /// See [`BlockCutter::continues_stream`].
    pub fn continues_stream(&self, data: &[u8]) -> bool {
        self.cutter.continues_stream(data)
    }

    fn stats(&self) -> &IngestStats {
        &self.cfg.stats
    }

    pub async fn feed(&mut self, data: &[u8]) -> Result<(), PumpError> {
        IngestStats::count(&self.stats().bytes, data.len() as u64);
        let pushed = self.cutter.push(data);
        self.report_skipped();
        pushed?;
        self.drain().await
    }

    /// When the flush timer is due (far in the future when it is off).
    pub fn flush_deadline(&self) -> Instant {
        match self.flush_after {
            Some(after) => self.last_cut + after,
            None => self.last_cut + Duration::from_secs(86_400),
        }
    }

    pub async fn flush(&mut self) -> Result<(), PumpError> {
        if let Some(block) = self.cutter.flush() {
            self.send(block).await?;
        }
        self.drain().await?;
        // Also when nothing was pending, so an idle stream wakes once per period.
        self.last_cut = Instant::now();
        Ok(())
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
        while let Some(block) = self.cutter.poll_block() {
            self.send(block).await?;
        }
        Ok(())
    }

    async fn send(&mut self, block: CutBlock) -> Result<(), PumpError> {
        let keyframe = block.keyframe;
        self.cfg
            .out
            .send(block)
            .await
            .map_err(|_| PumpError::ReceiverGone)?;
        IngestStats::count(&self.stats().blocks, 1);
        if keyframe {
            IngestStats::count(&self.stats().keyframes, 1);
        }
        self.last_cut = Instant::now();
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
