//! `Block`: the unit forwarded through the overlay (X1, V9). A block is a run of
//! whole MPEG-TS packets cut by the origin; a block that begins a keyframe is
//! marked so a new viewer can start there. The payload is `bytes::Bytes`, so a
//! block travels from socket to socket without copying.

use crate::ids::ChannelId;
use crate::time::Timestamp;
use bytes::Bytes;

/// Flag bit: the block begins a keyframe (random access point).
pub const FLAG_KEYFRAME: u8 = 0x01;

/// Length of an origin signature (Ed25519).
pub const SIGNATURE_LEN: usize = 64;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    pub channel: ChannelId,
    /// Consecutive per channel, starting at 0 when the origin starts.
    pub seq: u64,
    /// Origin wall-clock time when the block was cut (µs since the Unix epoch).
    pub origin_time_us: u64,
    pub flags: u8,
    pub payload: Bytes,
    /// Origin signature over [`Block::signed_digest`]; all zero when unsigned.
    pub signature: [u8; SIGNATURE_LEN],
}

impl Block {
    pub fn new(
        channel: ChannelId,
        seq: u64,
        origin_time: Timestamp,
        keyframe: bool,
        payload: Bytes,
    ) -> Self {
        Block {
            channel,
            seq,
            origin_time_us: origin_time.as_micros(),
            flags: if keyframe { FLAG_KEYFRAME } else { 0 },
            payload,
            signature: [0; SIGNATURE_LEN],
        }
    }

    pub fn is_keyframe(&self) -> bool {
        self.flags & FLAG_KEYFRAME != 0
    }

    /// Bytes the block occupies on the wire (header + payload), used for accounting.
    pub fn wire_len(&self) -> usize {
        crate::codec::BLOCK_HEADER_LEN + self.payload.len()
    }

    /// What the origin signs: every header field and a SHA-256 of the payload, so
    /// signing and checking never copy the payload.
    pub fn signed_digest(&self) -> [u8; 53] {
        let mut out = [0u8; 53];
        out[0..4].copy_from_slice(&self.channel.0.to_be_bytes());
        out[4..12].copy_from_slice(&self.seq.to_be_bytes());
        out[12..20].copy_from_slice(&self.origin_time_us.to_be_bytes());
        out[20] = self.flags;
        let d = ring::digest::digest(&ring::digest::SHA256, &self.payload);
        out[21..53].copy_from_slice(d.as_ref());
        out
    }
}
