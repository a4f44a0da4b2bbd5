//! Counters of the link layer (X3, V9): frames and bytes each way, frames dropped
//! as malformed or oversized, refused admissions, sends dropped on a full queue,
//! and the number of live admitted connections. Also the back-off used to keep
//! warnings about bad input from flooding the log.

use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};

/// A point-in-time copy of the counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LinkStatsSnapshot {
    pub frames_in: u64,
    pub frames_out: u64,
    /// Stream bytes read after admission (including frames later dropped).
    pub bytes_in: u64,
    /// Stream bytes written after admission.
    pub bytes_out: u64,
    /// Frames dropped because they did not decode (version, kind, body).
    pub bad_frames: u64,
    /// Frames dropped because their length exceeded `max_frame_bytes`.
    pub oversized_frames: u64,
    /// Links refused: wrong cluster key, our own node id, bad or missing Hello.
    pub refused_admissions: u64,
    /// Messages dropped by `send` because the peer's queue was full.
    pub queue_full_drops: u64,
    /// Admitted connections currently alive.
    pub connections: u64,
}

#[derive(Debug, Default)]
pub(crate) struct LinkStats {
    pub frames_in: AtomicU64,
    pub frames_out: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub bad_frames: AtomicU64,
    pub oversized_frames: AtomicU64,
    pub refused_admissions: AtomicU64,
    pub queue_full_drops: AtomicU64,
    pub connections: AtomicU64,
}

impl LinkStats {
    pub fn snapshot(&self) -> LinkStatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        LinkStatsSnapshot {
            frames_in: get(&self.frames_in),
            frames_out: get(&self.frames_out),
            bytes_in: get(&self.bytes_in),
            bytes_out: get(&self.bytes_out),
            bad_frames: get(&self.bad_frames),
            oversized_frames: get(&self.oversized_frames),
            refused_admissions: get(&self.refused_admissions),
            queue_full_drops: get(&self.queue_full_drops),
            connections: get(&self.connections),
        }
    }
}

/// Adds `n` and returns the new total.
pub(crate) fn add(counter: &AtomicU64, n: u64) -> u64 {
    counter.fetch_add(n, Ordering::Relaxed).wrapping_add(n)
}

pub(crate) fn sub(counter: &AtomicU64, n: u64) {
    counter.fetch_sub(n, Ordering::Relaxed);
}

/// Whether the `total`-th occurrence of a warning should be logged: the first ten,
/// then at powers of two, so a hostile or broken peer cannot flood the log.
pub(crate) fn worth_logging(total: u64) -> bool {
    total <= 10 || total.is_power_of_two()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_back_off() {
        let logged: Vec<u64> = (1..=300).filter(|&n| worth_logging(n)).collect();
        assert_eq!(
            logged,
            vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 16, 32, 64, 128, 256]
        );
    }

    #[test]
    fn snapshot_reads_counters() {
        let s = LinkStats::default();
        assert_eq!(add(&s.bad_frames, 2), 2);
        add(&s.connections, 3);
        sub(&s.connections, 1);
        let snap = s.snapshot();
        assert_eq!(snap.bad_frames, 2);
        assert_eq!(snap.connections, 2);
    }
}
