//! The block cutter: turns an ingest byte stream (any split: UDP datagrams,
//! TCP reads, HTTP body chunks) into blocks of whole 188-byte TS packets, each
//! marked whether a new viewer can start there. Features X1 (ingest) and X2
//! (viewers join at keyframe blocks).
//!
//! Rules, in order of precedence:
//! - Detection: the first `probe_bytes` must hold [`SYNC_RUN`] sync bytes at
//!   188-byte spacing, else the stream is rejected, with a reason, for good.
//! - Sync: packets are taken while each starts with 0x47; on a miss the cutter
//!   skips bytes (counted in `resyncs`) to an offset with a sync byte at that
//!   offset and 188 bytes further.
//! - Cuts: a block starts at every PAT (PID 0, section start) — muxers send
//!   PAT+PMT before each keyframe and about every 100 ms — and when the block
//!   would grow past `max_block_bytes`.
//! - Keyframes: a block that starts with PAT is a keyframe block if a video
//!   packet (any non-PSI packet while no video PID is known) with
//!   random_access_indicator comes before any video payload without it.
//!   Once the PMT names a video PID, a random-access video packet anywhere
//!   else starts a new block that opens with copies of the latest PAT and PMT, so every keyframe block is
//!   playable from its first byte. Those copies are the only bytes that differ
//!   from the input; a continuing decoder sees them as repeated tables.
//!
//! - Frames ([`frames`]): a cut by size or by the flush timer is made before
//!   the open block's last video PES start when a video payload comes before
//!   it — that PES may be unfinished, and a block ending mid-frame can be the
//!   last a viewer gets of an origin that dies then (D7, issue 12).

//!
//! Use: after every `push` drain `poll_block`; call `flush` on a timer at low
//! bitrates and `finish` at end of input — or use [`TimedCutter`]
//! (`idle_flush.rs`), which keeps that timer with time passed in, as every
//! ingest path does. Pure: no clock, no I/O.

use std::collections::VecDeque;

use bytes::Bytes;
use thiserror::Error;

use crate::probe::{describe, find_sync_run, SyncSearch, SYNC_RUN};
use crate::ts::{pid_of, TsPacket, PACKET_SIZE, PID_PAT, SYNC_BYTE};

mod config;
mod frames;
mod idle_flush;
mod program;
pub use config::{CutterConfig, CutterConfigError};
use config::{MAX_PROBE_BYTES, MIN_BLOCK_PACKETS};
pub use idle_flush::TimedCutter;
use program::ProgramTracker;

/// A finished block: whole TS packets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CutBlock {
    pub payload: Bytes,
    /// Starts with PAT and PMT followed by a random access point of the video.
    pub keyframe: bool,
}

/// Why ingest input was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IngestError {
    #[error("not an MPEG-TS stream: {reason}")]
    NotTransportStream { reason: String },
}

/// Counters since the cutter was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CutterStats {
    /// Whole packets taken from the input.
    pub packets: u64,
    /// Bytes pushed.
    pub bytes: u64,
    /// Bytes skipped to find sync (leading garbage, garbage between packets,
    /// an unfinished packet at `finish`).
    pub resyncs: u64,
    /// Blocks cut.
    pub blocks: u64,
    /// Blocks cut with `keyframe: true`.
    pub keyframes: u64,
    /// PAT/PMT packets copied into blocks that start at a mid-block keyframe.
    pub psi_copies: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// Looking for the first sync run; candidates below `next` are ruled out.
    Probing {
        next: usize,
    },
    Locked,
    Resync,
    Rejected(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyState {
    Pending,
    Yes,
    No,
}

#[derive(Debug)]
struct OpenBlock {
    bytes: Vec<u8>,
    starts_with_pat: bool,
    key: KeyState,
}

/// Cuts a TS byte stream into blocks. See the module doc for the rules.
#[derive(Debug)]
pub struct BlockCutter {
    max_block_bytes: usize,
    probe_bytes: usize,
    phase: Phase,
    /// Input not yet taken; `pos` is the first byte still to look at.
    pending: Vec<u8>,
    pos: usize,
    block: OpenBlock,
    ready: VecDeque<CutBlock>,
    psi: ProgramTracker,
    stats: CutterStats,
    /// The last flush held a possibly unfinished PES back and no packet came
    /// since: the next flush cuts it.
    held_at_flush: bool,
}

impl BlockCutter {
    /// Makes a cutter; out-of-range settings are clamped (see [`CutterConfig::validate`]).
    pub fn new(cfg: CutterConfig) -> Self {
        let max_block_bytes =
            (cfg.max_block_bytes / PACKET_SIZE).max(MIN_BLOCK_PACKETS) * PACKET_SIZE;
        let probe_bytes = cfg
            .probe_bytes
            .clamp((SYNC_RUN - 1) * PACKET_SIZE + 1, MAX_PROBE_BYTES);
        BlockCutter {
            max_block_bytes,
            probe_bytes,
            phase: Phase::Probing { next: 0 },
            pending: Vec::with_capacity(probe_bytes),
            pos: 0,
            block: OpenBlock {
                bytes: Vec::with_capacity(max_block_bytes),
                starts_with_pat: false,
                key: KeyState::Pending,
            },
            ready: VecDeque::new(),
            psi: ProgramTracker::default(),
            stats: CutterStats::default(),
            held_at_flush: false,
        }
    }

    /// Feeds bytes as they arrive, split anywhere. Once the input has been
    /// found not to be MPEG-TS every call returns that error.
    pub fn push(&mut self, data: &[u8]) -> Result<(), IngestError> {
        self.check_rejected()?;
        self.stats.bytes += data.len() as u64;
        self.pending.extend_from_slice(data);
        self.probe(false)?;
        self.take_packets(false);
        self.compact();
        Ok(())
    }

    /// The next finished block.
    pub fn poll_block(&mut self) -> Option<CutBlock> {
        self.ready.pop_front()
    }

    /// Cuts the packets gathered so far into a block (for low bitrates, on a
    /// timer), up to the last video PES start (see the module's rules), and
    /// returns the next finished block; drain `poll_block` after.
    pub fn flush(&mut self) -> Option<CutBlock> {
        if matches!(self.phase, Phase::Locked | Phase::Resync) {
            self.flush_cut();
        }
        self.ready.pop_front()
    }

    /// End of input: decides on input shorter than `probe_bytes` (a run of
    /// sync bytes as long as the data allows), takes the last packet, drops an
    /// unfinished one and cuts the last block. Drain `poll_block` after.
    pub fn finish(&mut self) -> Result<(), IngestError> {
        self.check_rejected()?;
        self.probe(true)?;
        self.take_packets(true);
        self.skip(self.pending.len() - self.pos);
        self.compact();
        self.cut();
        Ok(())
    }

    /// True once the input has been recognised as MPEG-TS.
    pub fn detected(&self) -> bool {
        matches!(self.phase, Phase::Locked | Phase::Resync)
    }

    /// True when `data`, pushed next, keeps packet sync: every offset in it
    /// where a packet would start holds 0x47 (vacuously true for a fragment
    /// inside one packet). False unless the cutter is locked on a stream.
    /// Lets a datagram receiver tell the pieces of an unaligned sender from
    /// stray datagrams.
    pub fn continues_stream(&self, data: &[u8]) -> bool {
        if self.phase != Phase::Locked {
            return false;
        }
        let partial = (self.pending.len() - self.pos) % PACKET_SIZE;
        let first_start = (PACKET_SIZE - partial) % PACKET_SIZE;
        data.iter()
            .skip(first_start)
            .step_by(PACKET_SIZE)
            .all(|&b| b == SYNC_BYTE)
    }

    /// The video PID named by the PMT, once known.
    pub fn video_pid(&self) -> Option<u16> {
        self.psi.video_pid
    }

    pub fn stats(&self) -> CutterStats {
        self.stats
    }

    fn check_rejected(&self) -> Result<(), IngestError> {
        match &self.phase {
            Phase::Rejected(reason) => Err(IngestError::NotTransportStream {
                reason: reason.clone(),
            }),
            _ => Ok(()),
        }
    }

    fn reject(&mut self, reason: String) -> IngestError {
        self.phase = Phase::Rejected(reason.clone());
        self.pending = Vec::new();
        self.pos = 0;
        IngestError::NotTransportStream { reason }
    }

    fn probe(&mut self, at_end: bool) -> Result<(), IngestError> {
        let Phase::Probing { next } = self.phase else {
            return Ok(());
        };
        match find_sync_run(&self.pending, next, self.probe_bytes) {
            SyncSearch::Found(start) => self.lock_at(start),
            SyncSearch::NotFound => {
                let seen = &self.pending[..self.pending.len().min(self.probe_bytes)];
                let reason = format!(
                    "no 0x47 sync byte at 188-byte spacing in the first {} bytes; looks like {}",
                    self.probe_bytes,
                    describe(seen)
                );
                return Err(self.reject(reason));
            }
            SyncSearch::NeedMore(next) if !at_end => self.phase = Phase::Probing { next },
            SyncSearch::NeedMore(_) if self.pending.is_empty() => {}
            SyncSearch::NeedMore(_) => match short_input_start(&self.pending) {
                Some(start) => self.lock_at(start),
                None => {
                    let reason = format!(
                        "input ended after {} bytes without a 0x47 sync byte at 188-byte spacing; looks like {}",
                        self.pending.len(),
                        describe(&self.pending)
                    );
                    return Err(self.reject(reason));
                }
            },
        }
        Ok(())
    }

    fn lock_at(&mut self, start: usize) {
        self.skip(start);
        self.phase = Phase::Locked;
    }

    fn skip(&mut self, n: usize) {
        self.pos += n;
        self.stats.resyncs += n as u64;
    }

    fn compact(&mut self) {
        if !matches!(self.phase, Phase::Probing { .. }) {
            self.pending.drain(..self.pos);
            self.pos = 0;
        }
    }

    /// Takes whole packets from `pending`, resynchronising where needed.
    /// `at_end`: no more input will come, so a sync candidate with one whole
    /// packet after it is taken without seeing the next sync byte.
    fn take_packets(&mut self, at_end: bool) {
        loop {
            let available = self.pending.len() - self.pos;
            match self.phase {
                Phase::Locked => {
                    if available < PACKET_SIZE {
                        return;
                    }
                    if self.pending[self.pos] != SYNC_BYTE {
                        self.phase = Phase::Resync;
                        continue;
                    }
                    let packet: [u8; PACKET_SIZE] = self.pending[self.pos..self.pos + PACKET_SIZE]
                        .try_into()
                        .expect("a whole packet is available");
                    self.pos += PACKET_SIZE;
                    self.accept(&packet);
                }
                Phase::Resync => {
                    let rest = &self.pending[self.pos..];
                    let Some(offset) = rest.iter().position(|&b| b == SYNC_BYTE) else {
                        self.skip(available);
                        return;
                    };
                    let confirmed = rest.get(offset + PACKET_SIZE).map(|&b| b == SYNC_BYTE);
                    self.skip(offset);
                    match confirmed {
                        Some(true) => self.phase = Phase::Locked,
                        Some(false) => self.skip(1),
                        None if at_end && available - offset >= PACKET_SIZE => {
                            self.phase = Phase::Locked;
                        }
                        None => return,
                    }
                }
                Phase::Probing { .. } | Phase::Rejected(_) => return,
            }
        }
    }

    fn accept(&mut self, packet: &[u8; PACKET_SIZE]) {
        self.stats.packets += 1;
        self.held_at_flush = false;
        let pid = pid_of(packet);
        let payload_unit_start = packet[1] & 0x40 != 0;
        let parsed = TsPacket::parse(packet).ok();
        let random_access = parsed.is_some_and(|p| p.random_access);
        let has_payload = parsed.is_some_and(|p| !p.payload.is_empty());
        if let Some(parsed) = &parsed {
            self.psi.observe(parsed, packet);
        }
        let is_video = self.psi.is_video(pid);
        let awaiting_keyframe = self.block.starts_with_pat && self.block.key == KeyState::Pending;

        if pid == PID_PAT && payload_unit_start {
            self.cut();
            self.block.starts_with_pat = true;
        } else if is_video && random_access && !awaiting_keyframe && self.psi.video_pid.is_some() {
            if let (Some(pat), Some((_, pmt))) = (self.psi.last_pat, self.psi.last_pmt) {
                self.cut();
                self.block.bytes.extend_from_slice(&pat);
                self.block.bytes.extend_from_slice(&pmt);
                self.block.starts_with_pat = true;
                self.stats.psi_copies += 2;
            }
        }
        if self.block.bytes.len() + PACKET_SIZE > self.max_block_bytes {
            self.size_cut();
        }
        self.block.bytes.extend_from_slice(packet);
        if is_video && self.block.starts_with_pat && self.block.key == KeyState::Pending {
            if random_access {
                self.block.key = KeyState::Yes;
            } else if has_payload {
                self.block.key = KeyState::No;
            }
        }
    }

    /// Moves the open block, if any, to the ready queue.
    fn cut(&mut self) {
        if !self.block.bytes.is_empty() {
            // Copy out so the block holds exactly its bytes, not the builder's capacity.
            let payload = Bytes::copy_from_slice(&self.block.bytes);
            let keyframe = self.block.key == KeyState::Yes;
            self.ready.push_back(CutBlock { payload, keyframe });
            self.stats.blocks += 1;
            self.stats.keyframes += u64::from(keyframe);
            self.block.bytes.clear();
        }
        self.block.starts_with_pat = false;
        self.block.key = KeyState::Pending;
    }
}

/// For input that ended before `probe_bytes`: the first offset with a whole
/// packet after it where every sync position the data reaches (up to
/// [`SYNC_RUN`]) holds 0x47.
fn short_input_start(data: &[u8]) -> Option<usize> {
    (0..data.len()).find(|&i| {
        data.len() - i >= PACKET_SIZE
            && (0..SYNC_RUN)
                .filter_map(|k| data.get(i + k * PACKET_SIZE))
                .all(|&b| b == SYNC_BYTE)
    })
}

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;
