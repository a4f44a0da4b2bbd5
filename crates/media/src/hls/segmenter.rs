//! The HLS segmenter (X2): a channel's blocks, in order, become partial
//! segments of whole blocks and segments that each start at a keyframe block.
//!
//! Rules:
//! - A segment opens only with a keyframe block; blocks before the first
//!   keyframe (or after a gap, until the next keyframe) are dropped and counted.
//! - A segment closes at the first keyframe block at least `target_duration_ms`
//!   (less 10 %, for the ingest's jitter) after its start; that block opens the
//!   next segment.
//! - A part closes when the next block would likely take it past
//!   `part_target_ms` (its age plus the last block interval), and at every
//!   keyframe block, so a part that starts with a keyframe is independent.
//! - A seq that is not the last seq + 1 (a lag skip, a restart) closes the open
//!   segment; the next segment carries a discontinuity.
//! - The window keeps `window_segments` complete segments and at most
//!   `max_window_bytes` (the newest one always stays).
//!
//! Times: the origin's cut time passed in, replaced by the video's DTS anchored
//! to it when the block starts a video PES ([`MediaClock`], `clock.rs`), so
//! durations are the media's, not the ingest's jitter.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use super::clock::MediaClock;
use super::HlsConfig;

/// A keyframe this early (per mille of the target) still closes a segment: with
/// GOPs of half the target, ingest jitter would otherwise make some segments
/// three GOPs long (seen in e2e_hls: 2.96 s where 2 s was meant).
const CUT_EARLY_PER_MILLE: u64 = 100;

/// One partial segment: whole blocks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    pub bytes: Bytes,
    pub duration_us: u64,
    /// Starts with a keyframe block.
    pub independent: bool,
}

/// One complete segment; its parts share its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    pub msn: u64,
    pub bytes: Bytes,
    pub parts: Vec<Part>,
    pub duration_us: u64,
    /// Time (µs since the Unix epoch) of its first block.
    pub start_time_us: u64,
    /// A gap or restart comes before it.
    pub discontinuity: bool,
}

/// The segment being filled.
#[derive(Debug)]
pub(crate) struct OpenSegment {
    pub(crate) msn: u64,
    pub(crate) start_time_us: u64,
    pub(crate) discontinuity: bool,
    pub(crate) parts: Vec<Part>,
    part_blocks: Vec<Bytes>,
    part_start_us: u64,
    part_independent: bool,
    bytes: usize,
}

/// Counters since the segmenter was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SegmenterStats {
    pub blocks: u64,
    /// Blocks dropped while waiting for a keyframe.
    pub dropped_blocks: u64,
    /// Gaps and restarts seen.
    pub discontinuities: u64,
    pub segments: u64,
    pub parts: u64,
    /// Segments dropped because they outgrew `max_segment_bytes`.
    pub oversized_segments: u64,
    /// Longest part made (µs): may pass the part target when blocks are sparse.
    pub longest_part_us: u64,
}

pub struct Segmenter {
    config: HlsConfig,
    segments: VecDeque<Segment>,
    window_bytes: usize,
    open: Option<OpenSegment>,
    next_msn: u64,
    /// Discontinuities that left the window (`#EXT-X-DISCONTINUITY-SEQUENCE`).
    discontinuity_sequence: u64,
    last_seq: Option<u64>,
    last_time_us: u64,
    last_interval_us: u64,
    pending_discontinuity: bool,
    longest_segment_us: u64,
    /// Bumped on every change a waiting request may care about.
    version: u64,
    stats: SegmenterStats,
    clock: MediaClock,
}

impl Segmenter {
    pub fn new(config: HlsConfig) -> Self {
        Segmenter {
            config,
            segments: VecDeque::new(),
            window_bytes: 0,
            open: None,
            next_msn: 0,
            discontinuity_sequence: 0,
            last_seq: None,
            last_time_us: 0,
            last_interval_us: 0,
            pending_discontinuity: false,
            longest_segment_us: 0,
            version: 0,
            stats: SegmenterStats::default(),
            clock: MediaClock::default(),
        }
    }

    pub fn config(&self) -> &HlsConfig {
        &self.config
    }

    /// Takes the channel's next block, cut at `cut_time_us` (µs since the epoch).
    pub fn push(&mut self, seq: u64, cut_time_us: u64, keyframe: bool, payload: Bytes) {
        self.stats.blocks += 1;
        let time_us = self.clock.time_of(cut_time_us, &payload);
        if let Some(last) = self.last_seq {
            if seq != last.wrapping_add(1) {
                self.break_stream();
            }
        }
        let time_us = match self.last_seq {
            Some(_) if time_us < self.last_time_us => self.last_time_us,
            _ => time_us,
        };
        if self.last_seq.is_some() && self.open.is_some() {
            self.last_interval_us = time_us - self.last_time_us;
        }
        self.last_seq = Some(seq);
        self.last_time_us = time_us;
        if self.open.is_none() {
            if !keyframe {
                self.stats.dropped_blocks += 1;
                return;
            }
            self.open_segment(time_us);
        }
        let open = self.open.as_mut().expect("a segment is open");
        if keyframe && !open.part_blocks.is_empty() {
            let cut_after_us = self.config.target_duration_ms * (1_000 - CUT_EARLY_PER_MILLE);
            if time_us.saturating_sub(open.start_time_us) >= cut_after_us {
                self.close_segment(time_us);
                self.open_segment(time_us);
            } else {
                self.close_part(time_us);
            }
        } else if !open.part_blocks.is_empty() {
            let age = time_us - open.part_start_us;
            if age > 0 && age + self.last_interval_us > self.config.part_target_ms * 1_000 {
                self.close_part(time_us);
            }
        }
        let open = self.open.as_mut().expect("a segment is open");
        if open.part_blocks.is_empty() {
            open.part_start_us = time_us;
            open.part_independent = keyframe;
        }
        open.bytes += payload.len();
        open.part_blocks.push(payload);
        if open.bytes > self.config.max_segment_bytes {
            self.stats.oversized_segments += 1;
            self.open = None;
            self.pending_discontinuity = true;
            self.version += 1;
        }
    }

    /// Forgets the window and the open segment (the feed stopped); the media
    /// sequence goes on, and what comes next carries a discontinuity.
    pub fn reset(&mut self) {
        if let Some(open) = self.open.take() {
            self.next_msn = self.next_msn.max(open.msn + 1);
        }
        for s in self.segments.drain(..) {
            if s.discontinuity {
                self.discontinuity_sequence += 1;
            }
        }
        self.window_bytes = 0;
        self.last_seq = None;
        self.pending_discontinuity = true;
        self.version += 1;
    }

    /// A gap: the open segment ends at its last block; wait for a keyframe.
    fn break_stream(&mut self) {
        self.stats.discontinuities += 1;
        if self.open.is_some() {
            let end = self.last_time_us + self.last_interval_us;
            self.close_segment(end);
        }
        self.pending_discontinuity = true;
    }

    fn open_segment(&mut self, time_us: u64) {
        self.open = Some(OpenSegment {
            msn: self.next_msn,
            start_time_us: time_us,
            discontinuity: std::mem::take(&mut self.pending_discontinuity),
            parts: Vec::new(),
            part_blocks: Vec::new(),
            part_start_us: time_us,
            part_independent: false,
            bytes: 0,
        });
        self.next_msn += 1;
    }

    fn close_part(&mut self, end_us: u64) {
        let open = self.open.as_mut().expect("a segment is open");
        if open.part_blocks.is_empty() {
            return;
        }
        let duration_us = end_us.saturating_sub(open.part_start_us);
        let bytes = concat(&open.part_blocks);
        open.part_blocks.clear();
        open.parts.push(Part {
            bytes,
            duration_us,
            independent: open.part_independent,
        });
        self.stats.parts += 1;
        self.stats.longest_part_us = self.stats.longest_part_us.max(duration_us);
        self.version += 1;
    }

    fn close_segment(&mut self, end_us: u64) {
        self.close_part(end_us);
        let open = self.open.take().expect("a segment is open");
        let whole = concat(open.parts.iter().map(|p| &p.bytes));
        let mut at = 0;
        let parts = open
            .parts
            .into_iter()
            .map(|p| {
                let len = p.bytes.len();
                at += len;
                Part {
                    bytes: whole.slice(at - len..at),
                    ..p
                }
            })
            .collect();
        let duration_us = end_us.saturating_sub(open.start_time_us);
        self.longest_segment_us = self.longest_segment_us.max(duration_us);
        self.window_bytes += whole.len();
        self.segments.push_back(Segment {
            msn: open.msn,
            bytes: whole,
            parts,
            duration_us,
            start_time_us: open.start_time_us,
            discontinuity: open.discontinuity,
        });
        self.stats.segments += 1;
        while self.segments.len() > self.config.window_segments
            || (self.window_bytes > self.config.max_window_bytes && self.segments.len() > 1)
        {
            let gone = self.segments.pop_front().expect("not empty");
            self.window_bytes -= gone.bytes.len();
            if gone.discontinuity {
                self.discontinuity_sequence += 1;
            }
        }
        self.version += 1;
    }

    /// Complete segments in the window, oldest first.
    pub fn segments(&self) -> &VecDeque<Segment> {
        &self.segments
    }

    /// The segment being filled: its msn, start time, discontinuity and closed parts.
    pub(crate) fn open(&self) -> Option<&OpenSegment> {
        self.open.as_ref()
    }

    /// The msn and part index the next part will have (the preload hint).
    pub fn next_part(&self) -> (u64, usize) {
        match &self.open {
            Some(open) => (open.msn, open.parts.len()),
            None => (self.next_msn, 0),
        }
    }

    /// The newest complete segment's msn.
    pub fn last_complete_msn(&self) -> Option<u64> {
        self.segments.back().map(|s| s.msn)
    }

    /// `#EXT-X-MEDIA-SEQUENCE`: the msn of the first segment listed.
    pub fn media_sequence(&self) -> u64 {
        match (self.segments.front(), &self.open) {
            (Some(s), _) => s.msn,
            (None, Some(o)) => o.msn,
            (None, None) => self.next_msn,
        }
    }

    pub fn discontinuity_sequence(&self) -> u64 {
        self.discontinuity_sequence
    }

    /// `#EXT-X-TARGETDURATION` (s): every EXTINF so far, rounded up, fits under it.
    pub fn target_duration_s(&self) -> u64 {
        let configured = self.config.target_duration_ms.div_ceil(1_000);
        configured.max(self.longest_segment_us.div_ceil(1_000_000))
    }

    /// Bytes held by the complete segments.
    pub fn window_bytes(&self) -> usize {
        self.window_bytes
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn stats(&self) -> SegmenterStats {
        self.stats
    }
}

fn concat<'a>(pieces: impl IntoIterator<Item = &'a Bytes> + Clone) -> Bytes {
    let len = pieces.clone().into_iter().map(Bytes::len).sum();
    let mut out = BytesMut::with_capacity(len);
    for piece in pieces {
        out.extend_from_slice(piece);
    }
    out.freeze()
}
