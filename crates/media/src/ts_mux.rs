//! A small MPEG-TS muxer for one H.264 video and one AAC audio stream (feature
//! X1: the RTMP ingest remuxes FLV into the transport stream the cutter takes).
//! Pure and sans-IO: elementary access units in, 188-byte packets appended to
//! a `Vec`. PAT and PMT go before every keyframe (and first); the video PID
//! carries the PCR; a keyframe's first packet has `random_access_indicator`
//! set, so the cutter marks its block as a keyframe block. PIDs follow
//! ffmpeg's: PMT 0x1000, video 0x100, audio 0x101.
//!
//! No crate was used: the TS muxing crates on crates.io still need the caller
//! to split PES into packets, pace PSI and set PCR/RAI, which is all this is.

use crate::psi::{write_pat_packet, write_pmt_packet};
use crate::ts::{encode_pcr, PACKET_SIZE, SYNC_BYTE};

pub const PMT_PID: u16 = 0x1000;
pub const VIDEO_PID: u16 = 0x100;
pub const AUDIO_PID: u16 = 0x101;
const STREAM_TYPE_H264: u8 = 0x1B;
const STREAM_TYPE_AAC_ADTS: u8 = 0x0F;
/// The PCR runs this far (90 kHz) behind the decode time stamps.
const PCR_LEAD_90K: u64 = 63_000;
/// Added to every timestamp, so that DTS − PCR_LEAD never goes below zero.
const TIMESTAMP_OFFSET_90K: u64 = 126_000;
/// Largest access unit muxed (a bound on the output of one call).
pub const MAX_ACCESS_UNIT_BYTES: usize = 8 << 20;

/// Muxer state: continuity counters and which streams the PMT names.
#[derive(Debug, Clone)]
pub struct TsMuxer {
    with_audio: bool,
    cc_pat: u8,
    cc_pmt: u8,
    cc_video: u8,
    cc_audio: u8,
    psi_written: bool,
}

impl TsMuxer {
    /// `with_audio`: the PMT also names the AAC stream.
    pub fn new(with_audio: bool) -> Self {
        TsMuxer {
            with_audio,
            cc_pat: 0,
            cc_pmt: 0,
            cc_video: 0,
            cc_audio: 0,
            psi_written: false,
        }
    }

    /// Names the audio stream in the PMT from the next PAT/PMT on.
    pub fn set_audio(&mut self, with_audio: bool) {
        if self.with_audio != with_audio {
            self.with_audio = with_audio;
            self.psi_written = false;
        }
    }

    fn write_psi(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(&write_pat_packet(1, 1, PMT_PID, next(&mut self.cc_pat)));
        let mut streams = vec![(STREAM_TYPE_H264, VIDEO_PID)];
        if self.with_audio {
            streams.push((STREAM_TYPE_AAC_ADTS, AUDIO_PID));
        }
        out.extend_from_slice(&write_pmt_packet(
            PMT_PID,
            1,
            VIDEO_PID,
            &streams,
            next(&mut self.cc_pmt),
        ));
        self.psi_written = true;
    }

    /// One H.264 access unit in Annex B form; times in ms (FLV's clock), `cts_ms` = PTS − DTS.
    pub fn write_video(
        &mut self,
        dts_ms: u64,
        cts_ms: i64,
        keyframe: bool,
        annex_b: &[u8],
        out: &mut Vec<u8>,
    ) {
        if keyframe || !self.psi_written {
            self.write_psi(out);
        }
        let dts = dts_ms * 90 + TIMESTAMP_OFFSET_90K;
        let pts = dts.saturating_add_signed(cts_ms.saturating_mul(90));
        let mut pes = Vec::with_capacity(annex_b.len() + 19);
        // Video PES: length 0 (unbounded), allowed for video in TS.
        pes.extend_from_slice(&[0, 0, 1, 0xE0, 0, 0, 0x80]);
        if pts != dts {
            pes.extend_from_slice(&[0xC0, 10]);
            pes.extend_from_slice(&encode_timestamp(0x3, pts));
            pes.extend_from_slice(&encode_timestamp(0x1, dts));
        } else {
            pes.extend_from_slice(&[0x80, 5]);
            pes.extend_from_slice(&encode_timestamp(0x2, pts));
        }
        pes.extend_from_slice(annex_b);
        let pcr = dts.saturating_sub(PCR_LEAD_90K) * 300;
        let cc = &mut self.cc_video;
        write_pes(VIDEO_PID, cc, &pes, Some(pcr), keyframe, out);
    }

    /// One AAC frame with its ADTS header; time in ms.
    pub fn write_audio(&mut self, pts_ms: u64, adts: &[u8], out: &mut Vec<u8>) {
        if !self.psi_written {
            self.write_psi(out);
        }
        let pts = pts_ms * 90 + TIMESTAMP_OFFSET_90K;
        let mut pes = Vec::with_capacity(adts.len() + 14);
        let len = adts.len() + 8;
        let len16 = if len <= 0xFFFF { len as u16 } else { 0 };
        pes.extend_from_slice(&[0, 0, 1, 0xC0]);
        pes.extend_from_slice(&len16.to_be_bytes());
        pes.extend_from_slice(&[0x80, 0x80, 5]);
        pes.extend_from_slice(&encode_timestamp(0x2, pts));
        pes.extend_from_slice(adts);
        let cc = &mut self.cc_audio;
        write_pes(AUDIO_PID, cc, &pes, None, false, out);
    }
}

fn next(cc: &mut u8) -> u8 {
    let now = *cc;
    *cc = (*cc + 1) & 0x0F;
    now
}

/// A 33-bit PTS/DTS field with its 4-bit prefix.
fn encode_timestamp(prefix: u8, ts: u64) -> [u8; 5] {
    let ts = ts & ((1 << 33) - 1);
    [
        (prefix << 4) | ((ts >> 29) as u8 & 0x0E) | 1,
        (ts >> 22) as u8,
        ((ts >> 14) as u8 & 0xFE) | 1,
        (ts >> 7) as u8,
        ((ts << 1) as u8 & 0xFE) | 1,
    ]
}

/// Splits a PES packet into TS packets; the first carries the PCR and the
/// random-access flag; the last is padded with adaptation-field stuffing.
fn write_pes(
    pid: u16,
    cc: &mut u8,
    pes: &[u8],
    pcr: Option<u64>,
    random_access: bool,
    out: &mut Vec<u8>,
) {
    let mut pos = 0;
    let mut first = true;
    while pos < pes.len() {
        // Adaptation field after its length byte.
        let mut af: Vec<u8> = Vec::new();
        if first && (pcr.is_some() || random_access) {
            af.push(if random_access { 0x40 } else { 0 } | if pcr.is_some() { 0x10 } else { 0 });
            if let Some(pcr) = pcr {
                af.extend_from_slice(&encode_pcr(pcr));
            }
        }
        let mut af_total = if af.is_empty() { 0 } else { 1 + af.len() };
        let remaining = pes.len() - pos;
        if remaining < 184 - af_total {
            let need = 184 - remaining;
            if af.is_empty() && need >= 2 {
                af.push(0);
            }
            while 1 + af.len() < need {
                af.push(0xFF);
            }
            af_total = need;
        }
        let take = 184 - af_total;
        out.push(SYNC_BYTE);
        out.push(if first { 0x40 } else { 0 } | (pid >> 8) as u8 & 0x1F);
        out.push(pid as u8);
        out.push(if af_total > 0 { 0x30 } else { 0x10 } | next(cc));
        if af_total > 0 {
            out.push((af_total - 1) as u8);
            out.extend_from_slice(&af[..af_total - 1]);
        }
        out.extend_from_slice(&pes[pos..pos + take]);
        pos += take;
        first = false;
    }
    debug_assert_eq!(out.len() % PACKET_SIZE, 0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ts::TsPacket;
    use crate::{BlockCutter, CutterConfig};

    fn packets(ts: &[u8]) -> Vec<TsPacket<'_>> {
        ts.chunks(PACKET_SIZE)
            .map(|p| TsPacket::parse(p).expect("valid packet"))
            .collect()
    }

    #[test]
    fn every_size_fills_whole_packets() {
        for size in [
            0usize, 1, 2, 150, 165, 166, 167, 168, 170, 183, 184, 185, 400, 5000,
        ] {
            let mut m = TsMuxer::new(true);
            let mut out = Vec::new();
            m.write_video(40, 0, true, &vec![7u8; size], &mut out);
            m.write_audio(40, &vec![9u8; size], &mut out);
            assert_eq!(out.len() % PACKET_SIZE, 0, "size {size}");
            let ps = packets(&out);
            let video: usize = ps
                .iter()
                .filter(|p| p.pid == VIDEO_PID)
                .map(|p| p.payload.len())
                .sum();
            let header = 14; // PES header with a PTS only (cts 0)
            assert_eq!(video, size + header, "video payload bytes, size {size}");
        }
    }

    #[test]
    fn keyframes_start_with_psi_and_random_access() {
        let mut m = TsMuxer::new(false);
        let mut out = Vec::new();
        m.write_video(0, 40, true, &[0, 0, 0, 1, 0x65, 1, 2, 3], &mut out);
        m.write_video(40, 40, false, &[0, 0, 0, 1, 0x41, 1, 2, 3], &mut out);
        let ps = packets(&out);
        assert_eq!(ps[0].pid, 0);
        assert_eq!(ps[1].pid, PMT_PID);
        assert_eq!(ps[2].pid, VIDEO_PID);
        assert!(ps[2].random_access);
        assert!(ps[2].pcr.is_some());
        assert!(!ps[3].random_access);
        // The cutter takes it and marks the keyframe block.
        let mut cutter = BlockCutter::new(CutterConfig::default());
        cutter.push(&out).unwrap();
        cutter.finish().unwrap();
        let first = cutter.poll_block().expect("a block");
        assert!(first.keyframe);
    }

    #[test]
    fn continuity_counters_wrap() {
        let mut m = TsMuxer::new(false);
        let mut out = Vec::new();
        for i in 0..40 {
            m.write_video(i * 40, 0, false, &[1u8; 100], &mut out);
        }
        let ccs: Vec<u8> = packets(&out)
            .iter()
            .filter(|p| p.pid == VIDEO_PID)
            .map(|p| p.continuity_counter)
            .collect();
        for w in ccs.windows(2) {
            assert_eq!(w[1], (w[0] + 1) & 0x0F);
        }
    }
}
