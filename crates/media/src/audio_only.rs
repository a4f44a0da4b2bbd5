//! The audio-only feed (C3, provider rule "audio before video"): a state machine
//! that turns a channel's MPEG-TS into the same TS with only its audio. The PAT
//! passes unchanged; each PMT it names is rewritten to list only the audio
//! elementary streams (their descriptors kept, section length and CRC recomputed);
//! audio packets pass unchanged; video, data and every other PID are dropped.
//!
//! The program clock: when the PMT's PCR PID is a dropped stream (muxers usually
//! put the PCR on the video), each of its packets that carries a PCR — at most one
//! every [`MIN_PCR_SPACING_27MHZ`] — becomes an adaptation-field-only packet on
//! that PID (no payload, so no continuity to keep), and the PMT keeps naming it as
//! the PCR PID. A player thus keeps its clock without the video.
//!
//! Pure and bounded: input in whole 188-byte packets (a block as the cutter made
//! it), output never longer than the input; a packet that does not parse, or a PMT
//! that does not fit in one packet, is dropped and counted, never a panic.

use crate::psi::{crc32_mpeg2, parse_pat};
use crate::ts::{TsPacket, PACKET_SIZE, PID_PAT, SYNC_BYTE};

/// At most one PCR-only packet per this many 27 MHz ticks (40 ms, the DVB bound;
/// ISO 13818-1 asks for at most 100 ms between PCRs).
pub const MIN_PCR_SPACING_27MHZ: u64 = 27_000 * 40;
/// Programs (PMT PIDs) tracked at most; the PAT's further programs are ignored.
pub const MAX_PROGRAMS: usize = 16;

const TABLE_ID_PMT: u8 = 0x02;

/// Stream types that are audio on their own (MPEG-1/2 audio, AAC ADTS and LATM,
/// ATSC AC-3, E-AC-3, DTS, TrueHD as ffmpeg and broadcasters write them).
pub fn is_audio_stream_type(stream_type: u8) -> bool {
    matches!(
        stream_type,
        0x03 | 0x04 | 0x0F | 0x11 | 0x81 | 0x82 | 0x83 | 0x84 | 0x85 | 0x86 | 0x87 | 0x8A
    )
}

/// A PES private stream (type 0x06) is audio when a descriptor says so: DVB AC-3,
/// E-AC-3, DTS, AAC, or a registration descriptor naming an audio format (Opus).
fn private_stream_is_audio(es_info: &[u8]) -> bool {
    let mut rest = es_info;
    while let [tag, len, tail @ ..] = rest {
        let len = usize::from(*len);
        let Some(body) = tail.get(..len) else {
            return false;
        };
        match tag {
            0x6A | 0x7A | 0x7B | 0x7C => return true,
            0x05 if matches!(
                body.get(..4),
                Some(b"Opus" | b"AC-3" | b"EAC3" | b"DTS1" | b"DTS2" | b"DTS3")
            ) =>
            {
                return true
            }
            _ => {}
        }
        rest = &tail[len..];
    }
    false
}

/// What the filter has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AudioOnlyStats {
    pub packets_in: u64,
    pub packets_out: u64,
    /// Packets of dropped PIDs (video, data, tables other than PAT and PMT).
    pub dropped: u64,
    /// Packets that did not parse, PMTs that did not fit one packet or had a bad
    /// CRC, bytes left over after the last whole packet.
    pub malformed: u64,
    /// PCR-only packets written in place of a dropped PCR carrier.
    pub pcr_packets: u64,
}

/// What the filter knows of one program, from its PMT.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Program {
    pmt_pid: u16,
    audio_pids: Vec<u16>,
    /// `Some` when the PCR rides on a dropped PID.
    pcr_carrier: Option<u16>,
}

/// The audio-only filter of one viewer's stream (keeps PAT/PMT state across blocks).
#[derive(Debug, Default)]
pub struct AudioOnlyFilter {
    programs: Vec<Program>,
    last_pcr: Option<u64>,
    stats: AudioOnlyStats,
}

impl AudioOnlyFilter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn stats(&self) -> AudioOnlyStats {
        self.stats
    }

    /// The audio PIDs of every program known now, in PMT order.
    pub fn audio_pids(&self) -> Vec<u16> {
        self.programs
            .iter()
            .flat_map(|p| p.audio_pids.iter().copied())
            .collect()
    }

    /// Filters `input` (whole packets; a trailing partial packet is dropped and
    /// counted) and returns the audio-only TS. Until the PMT has been seen, only
    /// the PAT passes (a viewer starts at a block that begins with PAT and PMT).
    pub fn filter(&mut self, input: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(input.len() / 8);
        let chunks = input.chunks_exact(PACKET_SIZE);
        if !chunks.remainder().is_empty() {
            self.stats.malformed += 1;
        }
        for raw in chunks {
            self.stats.packets_in += 1;
            let Ok(packet) = TsPacket::parse(raw) else {
                self.stats.malformed += 1;
                continue;
            };
            let before = out.len();
            self.one_packet(raw, &packet, &mut out);
            if out.len() > before {
                self.stats.packets_out += 1;
            }
        }
        out
    }

    fn one_packet(&mut self, raw: &[u8], packet: &TsPacket<'_>, out: &mut Vec<u8>) {
        if packet.pid == PID_PAT {
            if packet.payload_unit_start {
                match parse_pat(packet) {
                    Ok(pat) => self.learn_pat(pat.programs.iter().map(|e| e.pmt_pid)),
                    Err(_) => {
                        self.stats.malformed += 1;
                        return;
                    }
                }
            }
            out.extend_from_slice(raw);
            return;
        }
        let Some(index) = self.programs.iter().position(|p| p.pmt_pid == packet.pid) else {
            self.audio_or_clock(raw, packet, out);
            return;
        };
        match rewrite_pmt(raw, packet) {
            Some((rewritten, audio_pids, pcr_pid)) => {
                let pcr_carrier =
                    (!audio_pids.contains(&pcr_pid) && pcr_pid != 0x1FFF).then_some(pcr_pid);
                let program = &mut self.programs[index];
                program.audio_pids = audio_pids;
                program.pcr_carrier = pcr_carrier;
                out.extend_from_slice(&rewritten);
            }
            None => self.stats.malformed += 1,
        }
    }

    fn learn_pat(&mut self, pmt_pids: impl Iterator<Item = u16>) {
        let pmt_pids: Vec<u16> = pmt_pids.take(MAX_PROGRAMS).collect();
        // Programs the PAT still names keep what their PMT said.
        self.programs.retain(|p| pmt_pids.contains(&p.pmt_pid));
        for pid in pmt_pids {
            if !self.programs.iter().any(|p| p.pmt_pid == pid) {
                self.programs.push(Program {
                    pmt_pid: pid,
                    audio_pids: Vec::new(),
                    pcr_carrier: None,
                });
            }
        }
    }

    fn audio_or_clock(&mut self, raw: &[u8], packet: &TsPacket<'_>, out: &mut Vec<u8>) {
        if self
            .programs
            .iter()
            .any(|p| p.audio_pids.contains(&packet.pid))
        {
            out.extend_from_slice(raw);
            return;
        }
        let carries_clock = self
            .programs
            .iter()
            .any(|p| p.pcr_carrier == Some(packet.pid));
        match packet.pcr {
            Some(pcr) if carries_clock && self.pcr_due(pcr) => {
                self.last_pcr = Some(pcr);
                self.stats.pcr_packets += 1;
                out.extend_from_slice(&pcr_only_packet(raw, packet.pid));
            }
            _ => self.stats.dropped += 1,
        }
    }

    /// A PCR is due when none was sent yet, the spacing has passed, or the clock
    /// went backwards (a wrap or a new source: resynchronise at once).
    fn pcr_due(&self, pcr: u64) -> bool {
        match self.last_pcr {
            None => true,
            Some(last) => pcr < last || pcr - last >= MIN_PCR_SPACING_27MHZ,
        }
    }
}

/// The packet's header and PCR only: adaptation field of 183 bytes, no payload.
fn pcr_only_packet(raw: &[u8], pid: u16) -> [u8; PACKET_SIZE] {
    let mut p = [0xFFu8; PACKET_SIZE];
    p[0] = SYNC_BYTE;
    p[1] = (pid >> 8) as u8 & 0x1F;
    p[2] = pid as u8;
    // adaptation field only; the continuity counter does not advance without payload.
    p[3] = 0x20 | (raw[3] & 0x0F);
    p[4] = 183;
    // flags: the PCR flag only (discontinuity kept when the source set it).
    p[5] = 0x10 | (raw[5] & 0x80);
    p[6..12].copy_from_slice(&raw[6..12]);
    p
}

/// The PMT packet rewritten to list only its audio streams, with the audio PIDs
/// and the PCR PID; `None` when it is not a one-packet PMT with a good CRC.
fn rewrite_pmt(raw: &[u8], packet: &TsPacket<'_>) -> Option<([u8; PACKET_SIZE], Vec<u16>, u16)> {
    if !packet.payload_unit_start {
        return None;
    }
    let payload = packet.payload;
    let pointer = usize::from(*payload.first()?);
    let sec = payload.get(1 + pointer..)?;
    if sec.len() < 3 || sec[0] != TABLE_ID_PMT || sec[1] & 0x80 == 0 {
        return None;
    }
    let section_length = usize::from(u16::from_be_bytes([sec[1] & 0x0F, sec[2]]));
    if section_length < 13 {
        return None;
    }
    let whole = sec.get(..3 + section_length)?;
    if crc32_mpeg2(whole) != 0 {
        return None;
    }
    // 3 bytes of table header, 5 of long header, 4 of PCR PID and program info length.
    let pcr_pid = u16::from_be_bytes([whole[8] & 0x1F, whole[9]]);
    let program_info_len = usize::from(u16::from_be_bytes([whole[10] & 0x0F, whole[11]]));
    let streams_at = 12 + program_info_len;
    let crc_at = whole.len() - 4;
    let mut rest = whole.get(streams_at..crc_at)?;
    let mut kept: Vec<u8> = Vec::with_capacity(rest.len());
    let mut audio_pids = Vec::new();
    while rest.len() >= 5 {
        let stream_type = rest[0];
        let pid = u16::from_be_bytes([rest[1] & 0x1F, rest[2]]);
        let es_info_len = usize::from(u16::from_be_bytes([rest[3] & 0x0F, rest[4]]));
        let entry = rest.get(..5 + es_info_len)?;
        let audio = is_audio_stream_type(stream_type)
            || (stream_type == 0x06 && private_stream_is_audio(&entry[5..]));
        if audio {
            kept.extend_from_slice(entry);
            audio_pids.push(pid);
        }
        rest = &rest[5 + es_info_len..];
    }
    let mut section = Vec::with_capacity(streams_at + kept.len() + 4);
    section.extend_from_slice(&whole[..streams_at]);
    section.extend_from_slice(&kept);
    let new_length = section.len() - 3 + 4;
    section[1] = (section[1] & 0xF0) | (new_length >> 8) as u8;
    section[2] = new_length as u8;
    let crc = crc32_mpeg2(&section);
    section.extend_from_slice(&crc.to_be_bytes());

    // Same header as the original (PID, continuity), a fresh payload.
    let mut p = [0xFFu8; PACKET_SIZE];
    p[..4].copy_from_slice(&raw[..4]);
    p[3] = 0x10 | (raw[3] & 0x0F);
    p[4] = 0; // pointer_field
              // The rewritten section is never longer than the original, which fitted.
    let end = 5 + section.len();
    p.get_mut(5..end)?.copy_from_slice(&section);
    Some((p, audio_pids, pcr_pid))
}

#[cfg(test)]
#[path = "audio_only_tests.rs"]
mod tests;
