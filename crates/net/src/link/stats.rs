//! Counters of the link layer (X3, V9): frames and bytes each way, frames dropped
//! as malformed or oversized, refused admissions, sends dropped on a full queue,
//! and the number of live admitted connections; bytes split into media and
//! control as the simulator splits them (issue 13: `tiercast cluster` sums them
//! over the nodes' reports). Also the back-off used to keep warnings about bad
//! input from flooding the log.

use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use tiercast_proto::{Message, NodeId, COORDINATOR_ID};

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
    /// Wire bytes (whole frames: length, version, kind, body) of media messages
    /// — blocks and recovery shards, `Message::is_media` — written and decoded:
    /// what the simulator counts in `media_bytes` (at the sender) and, at the
    /// origin, `origin_upload_bytes`.
    pub media_bytes_out: u64,
    pub media_bytes_in: u64,
    /// Wire bytes of every other message (the simulator's `control_bytes`, also
    /// counted at the sender), to and from the coordinator included.
    pub control_bytes_out: u64,
    pub control_bytes_in: u64,
    /// Of `control_bytes_in`, what the coordinator sent (its own sends, which no
    /// node's `control_bytes_out` holds).
    pub coordinator_bytes_in: u64,
    /// `Message::Block` frames decoded, duplicates included (not shards): the
    /// simulator's `block_msgs_received`, the numerator of `duplicate_factor`.
    pub block_msgs_in: u64,
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
    pub media_bytes_out: AtomicU64,
    pub media_bytes_in: AtomicU64,
    pub control_bytes_out: AtomicU64,
    pub control_bytes_in: AtomicU64,
    pub coordinator_bytes_in: AtomicU64,
    pub block_msgs_in: AtomicU64,
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
            media_bytes_out: get(&self.media_bytes_out),
            media_bytes_in: get(&self.media_bytes_in),
            control_bytes_out: get(&self.control_bytes_out),
            control_bytes_in: get(&self.control_bytes_in),
            coordinator_bytes_in: get(&self.coordinator_bytes_in),
            block_msgs_in: get(&self.block_msgs_in),
        }
    }

    /// Counts a decoded message from `from` as media or control (its whole
    /// frame, as the simulator's `wire_bytes`) and a block message.
    pub fn count_in(&self, from: NodeId, msg: &Message) {
        let bytes = tiercast_proto::codec::frame_len(msg) as u64;
        if msg.is_media() {
            add(&self.media_bytes_in, bytes);
        } else {
            add(&self.control_bytes_in, bytes);
            if from == COORDINATOR_ID {
                add(&self.coordinator_bytes_in, bytes);
            }
        }
        if msg.is_block() {
            add(&self.block_msgs_in, 1);
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
