//! MPEG-TS handling for tiercast ingest and viewers. Pure: no tokio, no I/O,
//! no clock (feature X1; keyframe marks serve X2).
//!
//! Modules:
//! - [`audio_only`] — [`AudioOnlyFilter`]: the audio-only feed (C3): PAT kept, PMT
//!   rewritten to its audio streams, video and other PIDs dropped, the clock kept.
//! - [`ts`] — one 188-byte packet: PID, flags, random access, PCR, payload.
//! - [`psi`] — PAT and PMT: which PID is the video; writing them for tests.
//! - [`probe`] — is this MPEG-TS at all, and if not, what does it look like.
//! - [`cutter`] — [`BlockCutter`]: byte stream → blocks of whole packets,
//!   cut at PAT, marked when a viewer can start there (`cutter/config.rs`:
//!   settings; `cutter/program.rs`: PAT/PMT tracking; `tests.rs`, `props.rs`).
//! - [`ts_mux`] — [`TsMuxer`]: H.264 and AAC access units → TS (PAT/PMT, PCR,
//!   random-access marks), for the RTMP ingest.
//! - [`flv`] — [`FlvToTs`]: FLV video/audio tag bodies (AVCC, raw AAC) → TS.
//! - [`test_video`] — a tiny valid H.264 stream (flat grey frames, numbered).
//! - [`hls`] — [`hls::Segmenter`]: blocks → HLS / LL-HLS segments, parts, playlist,
//!   blocking-reload decisions (X2).
//! - [`test_source`] — [`TestSource`]: a constant-bitrate TS built from it.

pub mod audio_only;
pub mod cutter;
pub mod flv;
pub mod hls;
pub mod probe;
pub mod psi;
pub mod test_source;
pub mod test_video;
pub mod ts;
pub mod ts_mux;

pub use audio_only::{AudioOnlyFilter, AudioOnlyStats};
pub use cutter::{
    BlockCutter, CutBlock, CutterConfig, CutterConfigError, CutterStats, IngestError, TimedCutter,
};
pub use flv::{FlvError, FlvToTs};
pub use test_source::TestSource;
pub use ts::{TsPacket, PACKET_SIZE};
pub use ts_mux::TsMuxer;
