//! HLS and LL-HLS for viewers in browsers (X2): sans-IO, no clock, no tokio.
//! The channel's blocks go in, in order, with their time (µs, passed in); out
//! come TS segments cut at keyframe blocks, partial segments made of whole
//! blocks, a live playlist, and the decision a blocking playlist reload needs.
//!
//! - [`segmenter`] — [`Segmenter`]: blocks → parts → segments; sliding window
//!   bounded in segments and bytes; media sequence; discontinuity after a gap.
//! - [`playlist`] — the live media playlist (RFC 8216bis, LL-HLS tags).
//! - [`reload`] — blocking reload (`_HLS_msn`, `_HLS_part`) and media lookup:
//!   ready, wait, or refuse — the driver only parks the request.
//! - [`clock`] — [`clock::MediaClock`]: a block's time from the video DTS,
//!   anchored to the origin's cut time.
//! - [`date`] — `#EXT-X-PROGRAM-DATE-TIME` from µs since the Unix epoch.

pub mod clock;
pub mod date;
pub mod playlist;
pub mod reload;
pub mod segmenter;

#[cfg(test)]
mod tests;

pub use playlist::render_playlist;
pub use reload::{lookup_media, playlist_readiness, MediaAnswer, Readiness};
pub use segmenter::{Part, Segment, Segmenter, SegmenterStats};

/// Settings of one channel's HLS; plain, with units in the names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HlsConfig {
    /// A segment closes at the first keyframe block at least this long after its start.
    pub target_duration_ms: u64,
    /// Partial segments aim at this duration (whole blocks, so it is an aim).
    pub part_target_ms: u64,
    /// Complete segments kept (the sliding window).
    pub window_segments: usize,
    /// Bytes the window may hold at most (older segments go first; the newest stays).
    pub max_window_bytes: usize,
    /// A segment that grows past this without a keyframe is dropped, and the
    /// segmenter waits for the next keyframe (with a discontinuity).
    pub max_segment_bytes: usize,
    /// Complete segments whose parts are still listed in the playlist.
    pub parts_listed_segments: usize,
}

impl Default for HlsConfig {
    fn default() -> Self {
        HlsConfig {
            target_duration_ms: 2_000,
            part_target_ms: 500,
            window_segments: 6,
            max_window_bytes: 64 * 1024 * 1024,
            max_segment_bytes: 16 * 1024 * 1024,
            parts_listed_segments: 2,
        }
    }
}

impl HlsConfig {
    /// Checks the settings make sense; call once at start.
    pub fn validate(&self) -> Result<(), String> {
        if self.target_duration_ms < 1_000 {
            return Err("HLS target_duration_ms must be at least 1000".into());
        }
        if self.part_target_ms == 0 || self.part_target_ms > self.target_duration_ms {
            return Err("HLS part_target_ms must be 1..=target_duration_ms".into());
        }
        if self.window_segments < 3 {
            return Err("HLS window_segments must be at least 3".into());
        }
        if self.max_segment_bytes == 0 || self.max_window_bytes < self.max_segment_bytes {
            return Err("HLS max_window_bytes must be at least max_segment_bytes (> 0)".into());
        }
        Ok(())
    }
}
