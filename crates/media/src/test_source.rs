//! The built-in test source: a constant-bitrate MPEG-TS with one H.264 video
//! stream (see [`crate::test_video`]), for demos, tests and benchmarks
//! without ffmpeg. Features X1 (an ingest input) and X2 (viewers can play it).
//!
//! 25 frames/s; PAT+PMT before every IDR and at least every 100 ms; each frame
//! is one PES with a PTS, its first packet carries the PCR (stamped with the
//! packet's send time) and, for IDRs, random_access_indicator. Each access
//! unit is padded with filler to about 90 % of the per-frame budget; null
//! packets fill the rest, so the output is exactly `bitrate_kbps`.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use crate::psi::{write_pat_packet, write_pmt_packet};
use crate::test_video::access_unit;
use crate::ts::{encode_pcr, PACKET_SIZE, PID_NULL, SYNC_BYTE};

const FRAME_US: u64 = 40_000;
const PSI_INTERVAL_US: u64 = 100_000;
const PMT_PID: u16 = 0x1000;
const VIDEO_PID: u16 = 0x0100;
const PROGRAM_NUMBER: u16 = 1;
const STREAM_TYPE_H264: u8 = 0x1B;
/// PTS leads the PCR by this much (90 kHz), like ffmpeg's default muxdelay.
const PTS_DELAY_90KHZ: u64 = 63_000;
/// Bitrates are clamped to this range (the stream needs ~80 kbit/s).
const MIN_KBPS: u32 = 100;
const MAX_KBPS: u32 = 1_000_000;
/// One `generate` call returns at most this many packets (12 MB); the rest
/// stay due for the next call.
/// PES header with PTS (14 bytes) plus the PCR adaptation field (8 bytes).
const PES_AND_PCR_OVERHEAD: usize = 22;
const MAX_PACKETS_PER_CALL: u64 = 65_536;

struct Queued {
    packet: [u8; PACKET_SIZE],
    /// Bytes 6..12 are a PCR field to stamp when the packet is sent.
    stamp_pcr: bool,
}

/// A deterministic constant-bitrate test stream. See the module doc.
pub struct TestSource {
    bitrate_kbps: u32,
    gop_frames: u64,
    next_packet: u64,
    next_frame: u64,
    idr_count: u64,
    byte_credit: u64,
    last_psi_us: Option<u64>,
    queue: VecDeque<Queued>,
    cc_pat: u8,
    cc_pmt: u8,
    cc_video: u8,
}

impl TestSource {
    /// `bitrate_kbps` is clamped to 100..=1 000 000; the keyframe interval is
    /// rounded to whole frames (at least one).
    pub fn new(bitrate_kbps: u32, keyframe_interval_ms: u32) -> Self {
        TestSource {
            bitrate_kbps: bitrate_kbps.clamp(MIN_KBPS, MAX_KBPS),
            gop_frames: (u64::from(keyframe_interval_ms) * 1000)
                .div_ceil(FRAME_US)
                .max(1),
            next_packet: 0,
            next_frame: 0,
            idr_count: 0,
            byte_credit: 0,
            last_psi_us: None,
            queue: VecDeque::new(),
            cc_pat: 0,
            cc_pmt: 0,
            cc_video: 0,
        }
    }

    /// All packets due up to `elapsed_us` since the start (whole packets).
    pub fn generate(&mut self, elapsed_us: u64) -> Bytes {
        let mut out = BytesMut::new();
        let mut count = 0;
        while count < MAX_PACKETS_PER_CALL {
            let due_us = self.packet_due_us(self.next_packet);
            if due_us > elapsed_us {
                break;
            }
            while self.next_frame * FRAME_US <= due_us {
                self.queue_frame();
            }
            match self.queue.pop_front() {
                Some(mut queued) => {
                    if queued.stamp_pcr {
                        queued.packet[6..12].copy_from_slice(&encode_pcr(due_us * 27));
                    }
                    out.extend_from_slice(&queued.packet);
                }
                None => out.extend_from_slice(&null_packet()),
            }
            self.next_packet += 1;
            count += 1;
        }
        out.freeze()
    }

    fn packet_due_us(&self, n: u64) -> u64 {
        // bits / (kbit/s) = ms; times 1000 for µs.
        let bits = u128::from(n) * (PACKET_SIZE as u128) * 8;
        (bits * 1000 / u128::from(self.bitrate_kbps)) as u64
    }

    fn queue_frame(&mut self) {
        let frame = self.next_frame;
        let frame_us = frame * FRAME_US;
        let frames_since_idr = (frame % self.gop_frames) as u32;
        let idr = frames_since_idr == 0;
        let psi_due = match self.last_psi_us {
            // Send now if waiting for the next frame would leave a gap over 100 ms.
            Some(last) => frame_us + FRAME_US > last + PSI_INTERVAL_US,
            None => true,
        };
        if idr || psi_due {
            self.queue_psi();
            self.last_psi_us = Some(frame_us);
        }
        // Size the access unit in whole packets so the last one is not mostly
        // stuffing; a byte credit carries fractions over to later frames.
        let budget = u64::from(self.bitrate_kbps) * 1000 / 8 * FRAME_US / 1_000_000;
        // PAT+PMT go out every `PSI_INTERVAL_US / FRAME_US` frames (rounded down).
        let psi_share = 2 * PACKET_SIZE as u64 / (PSI_INTERVAL_US / FRAME_US);
        self.byte_credit += budget.saturating_sub(psi_share) * 9 / 10;
        let packets = (self.byte_credit / PACKET_SIZE as u64).max(1);
        let target = packets as usize * (PACKET_SIZE - 4) - PES_AND_PCR_OVERHEAD;
        let au = access_unit(frame, frames_since_idr, self.idr_count, target);
        if idr {
            self.idr_count += 1;
        }
        let used = (au.len() + PES_AND_PCR_OVERHEAD).div_ceil(PACKET_SIZE - 4) as u64;
        self.byte_credit = self.byte_credit.saturating_sub(used * PACKET_SIZE as u64);
        let pts = frame * FRAME_US * 9 / 100 + PTS_DELAY_90KHZ;
        self.queue_pes(&au, pts, idr);
        self.next_frame += 1;
    }

    fn queue_psi(&mut self) {
        let pat = write_pat_packet(1, PROGRAM_NUMBER, PMT_PID, self.cc_pat);
        let pmt = write_pmt_packet(
            PMT_PID,
            PROGRAM_NUMBER,
            VIDEO_PID,
            &[(STREAM_TYPE_H264, VIDEO_PID)],
            self.cc_pmt,
        );
        self.cc_pat = (self.cc_pat + 1) & 0x0F;
        self.cc_pmt = (self.cc_pmt + 1) & 0x0F;
        for packet in [pat, pmt] {
            self.queue.push_back(Queued {
                packet,
                stamp_pcr: false,
            });
        }
    }

    fn queue_pes(&mut self, es: &[u8], pts_90khz: u64, random_access: bool) {
        let mut pes = Vec::with_capacity(es.len() + 14);
        pes.extend_from_slice(&[0, 0, 1, 0xE0]);
        // Length 0 (unbounded) is allowed for video in TS when it would overflow.
        let length = u16::try_from(es.len() + 8).unwrap_or(0);
        pes.extend_from_slice(&length.to_be_bytes());
        pes.extend_from_slice(&[0x80, 0x80, 5]); // PTS only
        pes.extend_from_slice(&encode_pts(pts_90khz));
        pes.extend_from_slice(es);

        let mut rest = pes.as_slice();
        let mut first = true;
        while !rest.is_empty() {
            let (packet, used) = self.video_packet(rest, first, random_access && first);
            self.queue.push_back(Queued {
                packet,
                stamp_pcr: first,
            });
            rest = &rest[used..];
            first = false;
        }
    }

    /// One packet of the video PID; with `pcr` it reserves a PCR field.
    fn video_packet(
        &mut self,
        data: &[u8],
        pcr: bool,
        random_access: bool,
    ) -> ([u8; PACKET_SIZE], usize) {
        let mut packet = [0xFFu8; PACKET_SIZE];
        packet[0] = SYNC_BYTE;
        packet[1] = (u8::from(pcr) << 6) | (VIDEO_PID >> 8) as u8;
        packet[2] = VIDEO_PID as u8;
        let flags_len = if pcr { 8 } else { 0 }; // length, flags, 6 PCR bytes
        let room = PACKET_SIZE - 4 - flags_len;
        let used = data.len().min(room);
        let adaptation = flags_len + (room - used);
        packet[3] = if adaptation > 0 { 0x30 } else { 0x10 } | self.cc_video;
        self.cc_video = (self.cc_video + 1) & 0x0F;
        if adaptation > 0 {
            packet[4] = (adaptation - 1) as u8;
            if adaptation > 1 {
                packet[5] = if pcr { 0x10 } else { 0 } | if random_access { 0x40 } else { 0 };
            }
        }
        packet[4 + adaptation..].copy_from_slice(&data[..used]);
        (packet, used)
    }
}

fn encode_pts(pts: u64) -> [u8; 5] {
    let pts = pts & ((1 << 33) - 1);
    [
        0x21 | ((pts >> 29) as u8 & 0x0E),
        (pts >> 22) as u8,
        0x01 | ((pts >> 14) as u8 & 0xFE),
        (pts >> 7) as u8,
        0x01 | ((pts << 1) as u8 & 0xFE),
    ]
}

fn null_packet() -> [u8; PACKET_SIZE] {
    let mut packet = [0xFFu8; PACKET_SIZE];
    packet[..4].copy_from_slice(&[SYNC_BYTE, (PID_NULL >> 8) as u8, PID_NULL as u8, 0x10]);
    packet
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::psi::{parse_pat, parse_pmt};
    use crate::test_video::frame_number;
    use crate::ts::TsPacket;
    use std::collections::HashMap;

    #[test]
    fn bitrate_is_exact() {
        let mut source = TestSource::new(1000, 1000);
        let one_second = source.generate(1_000_000);
        // 1 Mbit/s = 125 000 bytes/s = 664.9 packets; packets 0..=664 are due.
        assert_eq!(one_second.len(), 665 * PACKET_SIZE);
        assert!(source.generate(1_000_000).is_empty());
    }

    #[test]
    fn stream_is_well_formed() {
        let mut source = TestSource::new(500, 1000);
        let data = source.generate(3_000_000);
        let mut cc: HashMap<u16, u8> = HashMap::new();
        let (mut rai, mut pats, mut frames) = (0, 0, Vec::new());
        let mut last_pcr = 0;
        for raw in data.chunks(PACKET_SIZE) {
            let p = TsPacket::parse(raw).expect("valid packet");
            if p.pid == PID_NULL {
                continue;
            }
            if let Some(prev) = cc.insert(p.pid, p.continuity_counter) {
                assert_eq!(p.continuity_counter, (prev + 1) & 0x0F, "pid {:#x}", p.pid);
            }
            match p.pid {
                0 => {
                    parse_pat(&p).unwrap();
                    pats += 1;
                }
                PMT_PID => assert_eq!(parse_pmt(&p).unwrap().video_pid(), Some(VIDEO_PID)),
                VIDEO_PID => {
                    rai += usize::from(p.random_access);
                    if let Some(pcr) = p.pcr {
                        assert!(pcr >= last_pcr);
                        last_pcr = pcr;
                    }
                    if let Some(n) = frame_number(p.payload) {
                        frames.push(n);
                    }
                }
                other => panic!("unexpected pid {other:#x}"),
            }
        }
        assert_eq!(rai, 3, "one IDR per second");
        assert!(pats >= 30, "PAT at least every 100 ms, got {pats}");
        assert_eq!(frames, (0..frames.len() as u64).collect::<Vec<_>>());
        assert!(frames.len() >= 74);
    }

    #[test]
    fn low_bitrate_is_clamped_and_keeps_up() {
        let mut source = TestSource::new(1, 500);
        let data = source.generate(10_000_000);
        assert_eq!(data.len() % PACKET_SIZE, 0);
        assert!(source.queue.len() < 20, "no backlog at the minimum bitrate");
    }
}
