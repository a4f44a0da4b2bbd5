//! The media clock of the HLS segmenter (X2): a block's time from the video's
//! DTS (or PTS) when the block starts a video PES, so segment and part
//! durations are the media's own (a 1 s GOP gives 2.000 s segments), not the
//! ingest's arrival jitter. The DTS is anchored to the origin's cut time of the
//! first block that has one, so times stay on the origin's wall clock (for
//! `#EXT-X-PROGRAM-DATE-TIME`); a DTS jump of more than [`MAX_DRIFT_US`] from
//! that clock (a new encoder, a wrap the anchor cannot follow) re-anchors.
//! Blocks without a video PES start keep the last time; streams without video
//! fall back to the cut times. Parsing never panics.

use crate::psi::{parse_pat, parse_pmt};
use crate::ts::{TsPacket, PACKET_SIZE, PID_PAT};

/// Media time and cut time may drift apart this far before the clock re-anchors.
pub const MAX_DRIFT_US: u64 = 5_000_000;
const WRAP_90KHZ: u64 = 1 << 33;

#[derive(Debug, Default)]
pub struct MediaClock {
    pmt_pid: Option<u16>,
    video_pid: Option<u16>,
    /// (unwrapped 90 kHz ticks, µs) of the anchor.
    anchor: Option<(u64, u64)>,
    last_ticks: u64,
    last_time_us: Option<u64>,
}

impl MediaClock {
    /// The time of a block cut at `cut_time_us` with this payload.
    pub fn time_of(&mut self, cut_time_us: u64, payload: &[u8]) -> u64 {
        let Some(raw) = self.first_video_dts(payload) else {
            return match (self.anchor, self.last_time_us) {
                (Some(_), Some(last)) => last,
                _ => cut_time_us,
            };
        };
        let time = match self.anchor {
            None => None,
            Some((anchor_ticks, anchor_us)) => {
                let ticks = unwrap_near(raw, self.last_ticks);
                self.last_ticks = ticks;
                let delta_us = |t: u64| t * 100 / 9;
                let time = if ticks >= anchor_ticks {
                    anchor_us.checked_add(delta_us(ticks - anchor_ticks))
                } else {
                    anchor_us.checked_sub(delta_us(anchor_ticks - ticks))
                };
                time.filter(|t| t.abs_diff(cut_time_us) <= MAX_DRIFT_US)
            }
        };
        let time = time.unwrap_or_else(|| {
            self.anchor = Some((raw, cut_time_us));
            self.last_ticks = raw;
            cut_time_us
        });
        self.last_time_us = Some(time);
        time
    }

    /// The DTS (else PTS) of the first video PES that starts in `payload`,
    /// learning the video PID from the PAT and PMT on the way.
    fn first_video_dts(&mut self, payload: &[u8]) -> Option<u64> {
        for chunk in payload.chunks_exact(PACKET_SIZE) {
            let Ok(packet) = TsPacket::parse(chunk) else {
                continue;
            };
            if !packet.payload_unit_start {
                continue;
            }
            if packet.pid == PID_PAT {
                if let Ok(pat) = parse_pat(&packet) {
                    self.pmt_pid = pat.programs.first().map(|p| p.pmt_pid);
                }
            } else if Some(packet.pid) == self.pmt_pid {
                if let Ok(pmt) = parse_pmt(&packet) {
                    self.video_pid = pmt.video_pid();
                }
            } else if Some(packet.pid) == self.video_pid {
                if let Some(dts) = pes_dts(packet.payload) {
                    return Some(dts);
                }
            }
        }
        None
    }
}

/// The DTS, else the PTS, of a PES header (90 kHz, 33 bits).
pub fn pes_dts(pes: &[u8]) -> Option<u64> {
    if pes.len() < 14 || pes[0..3] != [0, 0, 1] || pes[6] & 0xC0 != 0x80 {
        return None;
    }
    let header_len = usize::from(pes[8]);
    match pes[7] >> 6 {
        0b11 if pes.len() >= 19 && header_len >= 10 => Some(timestamp(&pes[14..19])),
        0b10 if header_len >= 5 => Some(timestamp(&pes[9..14])),
        _ => None,
    }
}

fn timestamp(b: &[u8]) -> u64 {
    (u64::from(b[0] & 0x0E) << 29)
        | (u64::from(b[1]) << 22)
        | (u64::from(b[2] & 0xFE) << 14)
        | (u64::from(b[3]) << 7)
        | (u64::from(b[4]) >> 1)
}

/// `raw` (33 bits) plus the multiple of 2^33 that brings it nearest `last`.
fn unwrap_near(raw: u64, last: u64) -> u64 {
    let base = last - last % WRAP_90KHZ;
    [
        base.checked_sub(WRAP_90KHZ),
        Some(base),
        base.checked_add(WRAP_90KHZ),
    ]
    .into_iter()
    .flatten()
    .map(|b| b + raw)
    .min_by_key(|t| t.abs_diff(last))
    .unwrap_or(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwraps_across_33_bits() {
        assert_eq!(unwrap_near(10, WRAP_90KHZ - 5), WRAP_90KHZ + 10);
        assert_eq!(unwrap_near(WRAP_90KHZ - 5, WRAP_90KHZ + 10), WRAP_90KHZ - 5);
        assert_eq!(unwrap_near(500, 400), 500);
    }

    #[test]
    fn reads_pts_and_dts() {
        let mut pes = vec![0, 0, 1, 0xE0, 0, 0, 0x80, 0x80, 5];
        pes.extend_from_slice(&[0x21, 0x00, 0x05, 0xBF, 0x21]); // PTS 90 000
        assert_eq!(pes_dts(&pes), Some(90_000));
        let mut with_dts = pes.clone();
        with_dts[7] = 0xC0;
        with_dts[8] = 10;
        with_dts.extend_from_slice(&[0x11, 0x00, 0x05, 0xBF, 0x21]); // DTS 90 000
        with_dts[13] = 0x23; // PTS 90 001
        assert_eq!(pes_dts(&with_dts), Some(90_000));
        assert_eq!(pes_dts(&pes[..10]), None);
        assert_eq!(pes_dts(&[0xFF; 20]), None);
    }

    #[test]
    fn garbage_falls_back_to_the_cut_time() {
        let mut clock = MediaClock::default();
        assert_eq!(clock.time_of(1_000, &[0x47; 400]), 1_000);
        assert_eq!(clock.time_of(2_000, &[]), 2_000);
    }
}
