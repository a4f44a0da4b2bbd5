//! The origin's ingest health sent to the coordinator (X1, issue 17): a task
//! reads the ingest's [`HealthTracker`](crate::ingest::health::HealthTracker) every
//! 500 ms and hands the node an [`IngestReport`] every
//! [`REPORT_EVERY_MS`], and at once when the encoder stalls or resumes. A
//! backup origin reports only while promoted (its `standing` flag is down): the
//! coordinator takes reports from a channel's origin alone.

use crate::ingest::health::IngestHealth;
use crate::ingest::IngestStats;
use crate::node_driver::NodeCommand;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tiercast_proto::{ChannelId, IngestReport};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// A report at least this often while nothing changes.
pub const REPORT_EVERY_MS: u64 = 5_000;
/// How often the tracker is read (a stall reaches the coordinator within this
/// of the ingest's own stall check, itself every 500 ms).
const POLL_MS: u64 = 500;

/// The wire form of a snapshot (counters saturate at `u32::MAX`).
pub fn to_report(channel: ChannelId, h: &IngestHealth) -> IngestReport {
    let n = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
    IngestReport {
        channel,
        publishing: h.publishing,
        bitrate_in_kbps: n(h.bitrate_in_kbps),
        keyframe_interval_ms: h.keyframe_interval_ms.map(n),
        gaps: n(h.gaps),
        longest_gap_ms: n(h.longest_gap_ms),
        timestamp_jumps: n(h.timestamp_jumps),
        stalled: h.stalled,
        stalls: n(h.stalls),
    }
}

/// Whether a report is due: the stall state changed, or the last is old.
pub fn due(last: Option<(u64, bool)>, now_ms: u64, stalled: bool) -> bool {
    match last {
        None => true,
        Some((at_ms, was)) => was != stalled || now_ms.saturating_sub(at_ms) >= REPORT_EVERY_MS,
    }
}

/// Starts the reporter; it ends when the node's driver has stopped. With
/// `standing` (a backup origin), nothing is sent while it is up, and a report
/// goes at once when it comes down (the backup promoted).
pub fn spawn_reporter(
    stats: Arc<IngestStats>,
    channel: ChannelId,
    commands: mpsc::Sender<NodeCommand>,
    standing: Option<Arc<AtomicBool>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(POLL_MS));
        let mut last: Option<(u64, bool)> = None;
        loop {
            tick.tick().await;
            if standing.as_ref().is_some_and(|s| s.load(Ordering::Relaxed)) {
                last = None;
                continue;
            }
            let now_ms = stats.now_us() / 1000;
            let health = stats.health_snapshot();
            if !due(last, now_ms, health.stalled) {
                continue;
            }
            last = Some((now_ms, health.stalled));
            let report = to_report(channel, &health);
            if commands
                .send(NodeCommand::IngestHealth(report))
                .await
                .is_err()
            {
                return;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_on_change_and_every_few_seconds() {
        assert!(due(None, 0, false));
        assert!(!due(Some((0, false)), 4_999, false));
        assert!(due(Some((0, false)), 5_000, false));
        assert!(due(Some((0, false)), 500, true), "a stall at once");
        assert!(due(Some((500, true)), 1_000, false), "a resume at once");
    }

    #[test]
    fn counters_saturate() {
        let h = IngestHealth {
            bitrate_in_kbps: u64::MAX,
            keyframe_interval_ms: Some(2_000),
            stalled: true,
            ..IngestHealth::default()
        };
        let r = to_report(ChannelId(3), &h);
        assert_eq!(
            (r.bitrate_in_kbps, r.keyframe_interval_ms, r.stalled),
            (u32::MAX, Some(2_000), true)
        );
    }
}
