//! Program Specific Information (ISO/IEC 13818-1 §2.4.4): the PAT on PID 0
//! names the PMT PIDs, each PMT lists the elementary streams of a program and
//! their stream types, from which the cutter learns which PID is video.
//! Also writes single-packet PAT/PMT for the test source. Feature X1.
//!
//! Only sections that fit in one packet are read (every common muxer writes
//! PAT and PMT that way); anything else is an error, never a panic.

use crate::ts::{TsPacket, PACKET_SIZE, SYNC_BYTE};
use thiserror::Error;

const TABLE_ID_PAT: u8 = 0x00;
const TABLE_ID_PMT: u8 = 0x02;

/// Why a packet could not be read as a PAT or PMT.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PsiError {
    #[error("packet does not start a section (payload_unit_start not set)")]
    NotSectionStart,
    #[error("section does not fit in one packet")]
    Truncated,
    #[error("table id {found:#04x}, expected {expected:#04x}")]
    WrongTableId { expected: u8, found: u8 },
    #[error("section syntax indicator not set")]
    NoSectionSyntax,
    #[error("section is not current (current_next_indicator = 0)")]
    NotCurrent,
    #[error("CRC32 mismatch")]
    BadCrc,
}

/// One entry of the Program Association Table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatEntry {
    pub program_number: u16,
    pub pmt_pid: u16,
}

/// The Program Association Table (program number 0, the NIT, is left out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pat {
    pub transport_stream_id: u16,
    pub programs: Vec<PatEntry>,
}

/// One elementary stream of a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElementaryStream {
    pub stream_type: u8,
    pub pid: u16,
}

/// A Program Map Table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pmt {
    pub program_number: u16,
    pub pcr_pid: u16,
    pub streams: Vec<ElementaryStream>,
}

impl Pmt {
    /// The first video stream of the program, if any.
    pub fn video_pid(&self) -> Option<u16> {
        self.streams
            .iter()
            .find(|s| is_video_stream_type(s.stream_type))
            .map(|s| s.pid)
    }
}

/// MPEG-1/2 video, MPEG-4 part 2, H.264, HEVC, CAVS, VC-1 (SMPTE 421M as 0xEA).
pub fn is_video_stream_type(stream_type: u8) -> bool {
    matches!(stream_type, 0x01 | 0x02 | 0x10 | 0x1B | 0x24 | 0x42 | 0xEA)
}

/// CRC-32/MPEG-2 (poly 0x04C11DB7, init all ones, no reflection, no final xor).
/// Over a whole section including its CRC the result is 0.
pub fn crc32_mpeg2(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in data {
        crc ^= u32::from(byte) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04C1_1DB7
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The section that starts in this packet, with its CRC checked.
/// Returns `(table_id_extension, body)` where body lies between the 8-byte
/// long header and the CRC.
fn section<'a>(packet: &TsPacket<'a>, table_id: u8) -> Result<(u16, &'a [u8]), PsiError> {
    if !packet.payload_unit_start {
        return Err(PsiError::NotSectionStart);
    }
    let payload = packet.payload;
    let pointer = usize::from(*payload.first().ok_or(PsiError::Truncated)?);
    let sec = payload.get(1 + pointer..).ok_or(PsiError::Truncated)?;
    if sec.len() < 3 {
        return Err(PsiError::Truncated);
    }
    if sec[0] != table_id {
        return Err(PsiError::WrongTableId {
            expected: table_id,
            found: sec[0],
        });
    }
    if sec[1] & 0x80 == 0 {
        return Err(PsiError::NoSectionSyntax);
    }
    let section_length = usize::from(u16::from_be_bytes([sec[1] & 0x0F, sec[2]]));
    // 5 bytes of long header after the length, 4 bytes of CRC.
    if section_length < 9 {
        return Err(PsiError::Truncated);
    }
    let whole = sec.get(..3 + section_length).ok_or(PsiError::Truncated)?;
    if crc32_mpeg2(whole) != 0 {
        return Err(PsiError::BadCrc);
    }
    if whole[5] & 0x01 == 0 {
        return Err(PsiError::NotCurrent);
    }
    let extension = u16::from_be_bytes([whole[3], whole[4]]);
    Ok((extension, &whole[8..whole.len() - 4]))
}

/// Reads a PAT from a packet on PID 0.
pub fn parse_pat(packet: &TsPacket<'_>) -> Result<Pat, PsiError> {
    let (transport_stream_id, body) = section(packet, TABLE_ID_PAT)?;
    let programs = body
        .chunks_exact(4)
        .map(|e| PatEntry {
            program_number: u16::from_be_bytes([e[0], e[1]]),
            pmt_pid: u16::from_be_bytes([e[2] & 0x1F, e[3]]),
        })
        .filter(|e| e.program_number != 0)
        .collect();
    Ok(Pat {
        transport_stream_id,
        programs,
    })
}

/// Reads a PMT from a packet on a PMT PID named by the PAT.
pub fn parse_pmt(packet: &TsPacket<'_>) -> Result<Pmt, PsiError> {
    let (program_number, body) = section(packet, TABLE_ID_PMT)?;
    if body.len() < 4 {
        return Err(PsiError::Truncated);
    }
    let pcr_pid = u16::from_be_bytes([body[0] & 0x1F, body[1]]);
    let program_info_len = usize::from(u16::from_be_bytes([body[2] & 0x0F, body[3]]));
    let mut rest = body
        .get(4 + program_info_len..)
        .ok_or(PsiError::Truncated)?;
    let mut streams = Vec::new();
    while rest.len() >= 5 {
        let es_info_len = usize::from(u16::from_be_bytes([rest[3] & 0x0F, rest[4]]));
        streams.push(ElementaryStream {
            stream_type: rest[0],
            pid: u16::from_be_bytes([rest[1] & 0x1F, rest[2]]),
        });
        rest = rest.get(5 + es_info_len..).ok_or(PsiError::Truncated)?;
    }
    Ok(Pmt {
        program_number,
        pcr_pid,
        streams,
    })
}

/// Writes a one-packet PAT naming one program.
pub fn write_pat_packet(
    transport_stream_id: u16,
    program_number: u16,
    pmt_pid: u16,
    continuity_counter: u8,
) -> [u8; PACKET_SIZE] {
    let [p0, p1] = program_number.to_be_bytes();
    let [m0, m1] = pmt_pid.to_be_bytes();
    section_packet(
        crate::ts::PID_PAT,
        continuity_counter,
        TABLE_ID_PAT,
        transport_stream_id,
        &[p0, p1, 0xE0 | m0, m1],
    )
}

/// Writes a one-packet PMT for one program; `streams` are `(stream_type, pid)`.
pub fn write_pmt_packet(
    pmt_pid: u16,
    program_number: u16,
    pcr_pid: u16,
    streams: &[(u8, u16)],
    continuity_counter: u8,
) -> [u8; PACKET_SIZE] {
    let [c0, c1] = pcr_pid.to_be_bytes();
    let mut body = vec![0xE0 | c0, c1, 0xF0, 0x00];
    for &(stream_type, pid) in streams {
        let [s0, s1] = pid.to_be_bytes();
        body.extend_from_slice(&[stream_type, 0xE0 | s0, s1, 0xF0, 0x00]);
    }
    section_packet(
        pmt_pid,
        continuity_counter,
        TABLE_ID_PMT,
        program_number,
        &body,
    )
}

fn section_packet(
    pid: u16,
    continuity_counter: u8,
    table_id: u8,
    extension: u16,
    body: &[u8],
) -> [u8; PACKET_SIZE] {
    let section_length = 5 + body.len() + 4;
    assert!(
        section_length + 3 + 5 <= PACKET_SIZE,
        "section must fit in one packet"
    );
    let mut section = Vec::with_capacity(section_length + 3);
    section.push(table_id);
    section.push(0xB0 | (section_length >> 8) as u8);
    section.push(section_length as u8);
    section.extend_from_slice(&extension.to_be_bytes());
    // reserved '11', version 0, current_next_indicator 1, section 0 of 0.
    section.extend_from_slice(&[0xC1, 0x00, 0x00]);
    section.extend_from_slice(body);
    let crc = crc32_mpeg2(&section);
    section.extend_from_slice(&crc.to_be_bytes());

    let mut packet = [0xFFu8; PACKET_SIZE];
    packet[0] = SYNC_BYTE;
    packet[1] = 0x40 | (pid >> 8) as u8 & 0x1F;
    packet[2] = pid as u8;
    packet[3] = 0x10 | (continuity_counter & 0x0F);
    packet[4] = 0; // pointer_field
    packet[5..5 + section.len()].copy_from_slice(&section);
    packet
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn crc_of_known_vector() {
        // CRC-32/MPEG-2 check value.
        assert_eq!(crc32_mpeg2(b"123456789"), 0x0376_E6E7);
    }

    #[test]
    fn pat_round_trips() {
        let p = write_pat_packet(7, 1, 0x1000, 3);
        let pat = parse_pat(&TsPacket::parse(&p).unwrap()).unwrap();
        assert_eq!(pat.transport_stream_id, 7);
        assert_eq!(
            pat.programs,
            vec![PatEntry {
                program_number: 1,
                pmt_pid: 0x1000
            }]
        );
    }

    #[test]
    fn pmt_round_trips_and_finds_video() {
        let p = write_pmt_packet(0x1000, 1, 0x100, &[(0x0F, 0x101), (0x1B, 0x100)], 0);
        let pmt = parse_pmt(&TsPacket::parse(&p).unwrap()).unwrap();
        assert_eq!(pmt.pcr_pid, 0x100);
        assert_eq!(pmt.streams.len(), 2);
        assert_eq!(pmt.video_pid(), Some(0x100));
        let audio_only = write_pmt_packet(0x1000, 1, 0x101, &[(0x0F, 0x101)], 0);
        let pmt = parse_pmt(&TsPacket::parse(&audio_only).unwrap()).unwrap();
        assert_eq!(pmt.video_pid(), None);
    }

    #[test]
    fn rejects_corrupt_sections() {
        let mut p = write_pat_packet(1, 1, 0x1000, 0);
        p[10] ^= 0x01;
        assert_eq!(
            parse_pat(&TsPacket::parse(&p).unwrap()),
            Err(PsiError::BadCrc)
        );
        let p = write_pat_packet(1, 1, 0x1000, 0);
        assert!(matches!(
            parse_pmt(&TsPacket::parse(&p).unwrap()),
            Err(PsiError::WrongTableId { .. })
        ));
        let mut p = write_pat_packet(1, 1, 0x1000, 0);
        p[4] = 200; // pointer beyond the packet
        assert_eq!(
            parse_pat(&TsPacket::parse(&p).unwrap()),
            Err(PsiError::Truncated)
        );
    }

    proptest! {
        #[test]
        fn parsers_never_panic(payload in proptest::collection::vec(any::<u8>(), 184)) {
            let mut p = [0u8; PACKET_SIZE];
            p[..4].copy_from_slice(&[0x47, 0x40, 0x00, 0x10]);
            p[4..].copy_from_slice(&payload);
            let t = TsPacket::parse(&p).unwrap();
            let _ = parse_pat(&t);
            let _ = parse_pmt(&t);
        }
    }
}
