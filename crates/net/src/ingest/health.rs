//! Ingest health (features X1, X4; issue 17): bitrate in, keyframe interval,
//! input gaps, PCR jumps, and whether the encoder has stalled. Sans-IO: time
//! (µs on the ingest's clock) is passed in; the pump feeds it, a 500 ms timer
//! in the server asks [`HealthTracker::check_stall`] and logs the events.

use std::collections::VecDeque;

use serde::Serialize;
use tiercast_media::ts::{TsPacket, PACKET_SIZE};

/// Silence longer than this while publishing is a gap.
pub const GAP_US: u64 = 1_000_000;
/// Silence longer than this is a stalled encoder (an event).
pub const STALL_US: u64 = 3_000_000;
/// The bitrate is averaged over this window.
pub const BITRATE_WINDOW_US: u64 = 5_000_000;
/// A PCR step over this, this far off the wall clock, is a jump.
pub const PCR_JUMP_US: u64 = 1_000_000;
/// Most samples kept for the bitrate (one per push; old ones merged).
const MAX_SAMPLES: usize = 512;

/// What the encoder did, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthEvent {
    /// No input for `silent_ms` while a publisher is connected.
    Stalled { silent_ms: u64 },
    /// Input again after a stall of `stalled_ms`.
    Resumed { stalled_ms: u64 },
}

/// A snapshot for reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IngestHealth {
    pub publishing: bool,
    pub bitrate_in_kbps: u64,
    /// Between the latest two keyframe blocks.
    pub keyframe_interval_ms: Option<u64>,
    pub max_keyframe_interval_ms: u64,
    /// Silences over 1 s while publishing, and the longest.
    pub gaps: u64,
    pub longest_gap_ms: u64,
    /// PCR steps more than 1 s off the wall clock (or backwards).
    pub timestamp_jumps: u64,
    pub stalled: bool,
    pub stalls: u64,
}

#[derive(Debug, Default)]
pub struct HealthTracker {
    publishing: bool,
    samples: VecDeque<(u64, u64)>,
    last_input_us: Option<u64>,
    last_keyframe_us: Option<u64>,
    keyframe_interval_ms: Option<u64>,
    max_keyframe_interval_ms: u64,
    gaps: u64,
    longest_gap_ms: u64,
    /// (wall µs, PCR in 27 MHz ticks) of the latest PCR seen.
    last_pcr: Option<(u64, u64)>,
    timestamp_jumps: u64,
    stalled_since_us: Option<u64>,
    stalls: u64,
}

impl HealthTracker {
    /// A publisher came (a fresh stream: timing starts over) or went.
    pub fn set_publishing(&mut self, now_us: u64, publishing: bool) {
        let _ = now_us;
        self.publishing = publishing;
        // Stalls count from the first byte: a UDP ingest waiting for its
        // first datagram has not stalled.
        self.last_input_us = None;
        self.last_pcr = None;
        self.last_keyframe_us = None;
        self.stalled_since_us = None;
    }

    /// `n` bytes arrived; returns `Resumed` if the encoder had stalled.
    pub fn on_bytes(&mut self, now_us: u64, n: u64) -> Option<HealthEvent> {
        if let Some(last) = self.last_input_us {
            let silent = now_us.saturating_sub(last);
            if silent > GAP_US {
                self.gaps += 1;
                self.longest_gap_ms = self.longest_gap_ms.max(silent / 1000);
            }
        }
        self.last_input_us = Some(now_us);
        if self.samples.len() >= MAX_SAMPLES {
            if let (Some(a), Some(b)) = (self.samples.pop_front(), self.samples.front_mut()) {
                b.1 += a.1;
            }
        }
        self.samples.push_back((now_us, n));
        while self
            .samples
            .front()
            .is_some_and(|(t, _)| now_us.saturating_sub(*t) > BITRATE_WINDOW_US)
        {
            self.samples.pop_front();
        }
        let since = self.stalled_since_us.take()?;
        Some(HealthEvent::Resumed {
            stalled_ms: now_us.saturating_sub(since) / 1000,
        })
    }

    /// A block was cut: keyframe spacing and the PCRs in it.
    pub fn on_block(&mut self, now_us: u64, payload: &[u8], keyframe: bool) {
        if keyframe {
            if let Some(last) = self.last_keyframe_us {
                let ms = now_us.saturating_sub(last) / 1000;
                self.keyframe_interval_ms = Some(ms);
                self.max_keyframe_interval_ms = self.max_keyframe_interval_ms.max(ms);
            }
            self.last_keyframe_us = Some(now_us);
        }
        for packet in payload.chunks_exact(PACKET_SIZE) {
            // Only packets with an adaptation field can carry a PCR.
            if packet[3] & 0x20 == 0 {
                continue;
            }
            let Some(pcr) = TsPacket::parse(packet).ok().and_then(|p| p.pcr) else {
                continue;
            };
            if let Some((wall, last)) = self.last_pcr {
                let pcr_us = pcr.wrapping_sub(last) / 27;
                let wall_us = now_us.saturating_sub(wall);
                // Backwards, or a step over 1 s (PCRs come every 100 ms at
                // most) that the wall clock does not explain (a stalled
                // encoder whose clock ran on is a gap, not a jump).
                if pcr < last || (pcr_us > PCR_JUMP_US && pcr_us.abs_diff(wall_us) > PCR_JUMP_US) {
                    self.timestamp_jumps += 1;
                }
            }
            self.last_pcr = Some((now_us, pcr));
        }
    }

    /// The stall timer: `Stalled` once when a publisher went silent.
    pub fn check_stall(&mut self, now_us: u64) -> Option<HealthEvent> {
        if !self.publishing || self.stalled_since_us.is_some() {
            return None;
        }
        let last = self.last_input_us?;
        let silent = now_us.saturating_sub(last);
        (silent > STALL_US).then(|| {
            self.stalled_since_us = Some(last);
            self.stalls += 1;
            HealthEvent::Stalled {
                silent_ms: silent / 1000,
            }
        })
    }

    pub fn snapshot(&self, now_us: u64) -> IngestHealth {
        let bytes: u64 = self
            .samples
            .iter()
            .filter(|(t, _)| now_us.saturating_sub(*t) <= BITRATE_WINDOW_US)
            .map(|(_, n)| n)
            .sum();
        IngestHealth {
            publishing: self.publishing,
            bitrate_in_kbps: bytes * 8 * 1000 / BITRATE_WINDOW_US,
            keyframe_interval_ms: self.keyframe_interval_ms,
            max_keyframe_interval_ms: self.max_keyframe_interval_ms,
            gaps: self.gaps,
            longest_gap_ms: self.longest_gap_ms,
            timestamp_jumps: self.timestamp_jumps,
            stalled: self.stalled_since_us.is_some(),
            stalls: self.stalls,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tiercast_media::ts::encode_pcr;

    fn pcr_packet(pcr_27mhz: u64) -> Vec<u8> {
        let mut p = vec![0x47, 0x01, 0x00, 0x30, 7, 0x10];
        p.extend_from_slice(&encode_pcr(pcr_27mhz));
        p.resize(PACKET_SIZE, 0xFF);
        p
    }

    #[test]
    fn bitrate_keyframes_gaps_and_stalls() {
        let mut h = HealthTracker::default();
        h.set_publishing(0, true);
        for i in 0..50 {
            assert_eq!(h.on_bytes(i * 100_000, 12_500), None);
        }
        // 50 × 12.5 kB over 5 s = 1 Mbit/s.
        assert_eq!(h.snapshot(4_900_000).bitrate_in_kbps, 1000);
        h.on_block(0, &[], true);
        h.on_block(2_000_000, &[], true);
        assert_eq!(h.snapshot(0).keyframe_interval_ms, Some(2000));
        assert_eq!(h.check_stall(6_000_000), None);
        let stalled = h.check_stall(8_000_000);
        assert_eq!(stalled, Some(HealthEvent::Stalled { silent_ms: 3100 }));
        assert_eq!(h.check_stall(9_000_000), None, "one event per stall");
        assert!(h.snapshot(9_000_000).stalled);
        assert_eq!(
            h.on_bytes(10_000_000, 100),
            Some(HealthEvent::Resumed { stalled_ms: 5100 })
        );
        let s = h.snapshot(10_000_000);
        assert_eq!(
            (s.gaps, s.longest_gap_ms, s.stalls, s.stalled),
            (1, 5100, 1, false)
        );
    }

    #[test]
    fn pcr_jumps_are_counted() {
        let mut h = HealthTracker::default();
        h.set_publishing(0, true);
        h.on_block(0, &pcr_packet(27_000_000), false);
        h.on_block(100_000, &pcr_packet(27_000_000 + 2_700_000), false);
        assert_eq!(h.snapshot(0).timestamp_jumps, 0);
        h.on_block(200_000, &pcr_packet(27_000_000 * 100), false);
        h.on_block(300_000, &pcr_packet(0), false);
        assert_eq!(h.snapshot(0).timestamp_jumps, 2);
        // 5 s of silence, the clock ran on: a gap, not a jump.
        h.on_block(5_300_000, &pcr_packet(27 * 5_000_000), false);
        assert_eq!(h.snapshot(0).timestamp_jumps, 2);
    }
}
