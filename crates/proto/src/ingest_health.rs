//! The origin's ingest health as it reports it to the coordinator (X1, issue 17):
//! bitrate in, keyframe interval, gaps, timestamp jumps and whether the encoder
//! has stalled. Fixed-size: every field is a number or a flag, so a report is a
//! few dozen bytes on the wire whatever the sender puts in it.

use crate::ids::ChannelId;
use serde::{Deserialize, Serialize};

/// One report of a channel's ingest, sent by its origin every few seconds and at
/// once when the encoder stalls or resumes ([`crate::Message::IngestHealth`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestReport {
    pub channel: ChannelId,
    /// A publisher (encoder) is connected.
    pub publishing: bool,
    /// Averaged over the origin's bitrate window (5 s).
    pub bitrate_in_kbps: u32,
    /// Between the latest two keyframes; `None` before the second one.
    pub keyframe_interval_ms: Option<u32>,
    /// Silences over 1 s while publishing, since the origin started.
    pub gaps: u32,
    pub longest_gap_ms: u32,
    /// PCR steps the wall clock does not explain (or backwards).
    pub timestamp_jumps: u32,
    /// The encoder is silent past the origin's stall threshold (3 s).
    pub stalled: bool,
    /// Stalls since the origin started.
    pub stalls: u32,
}
