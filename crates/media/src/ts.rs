//! MPEG-TS packet parsing (ISO/IEC 13818-1 §2.4.3): the 4-byte header, the
//! adaptation field (random access, discontinuity, PCR) and the payload slice
//! of one 188-byte packet. Feature X1 (ingest cuts on packet boundaries) and
//! X2 (viewers start at packets marked here).
//!
//! Parsing never panics: every length is checked against the packet.

use thiserror::Error;

/// Every transport stream packet is exactly this long.
pub const PACKET_SIZE: usize = 188;
/// First byte of every packet.
pub const SYNC_BYTE: u8 = 0x47;
/// The PID that carries the Program Association Table.
pub const PID_PAT: u16 = 0x0000;
/// PIDs below this carry standard tables (PAT, CAT, NIT, SDT, EIT, ...).
pub const PID_FIRST_USER: u16 = 0x0020;
/// Stuffing packets; their content means nothing.
pub const PID_NULL: u16 = 0x1FFF;

/// Why 188 bytes could not be read as a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum PacketError {
    #[error("a packet is 188 bytes, got {0}")]
    WrongLength(usize),
    #[error("packet starts with {0:#04x}, not the sync byte 0x47")]
    NoSyncByte(u8),
    #[error("adaptation field length {0} does not fit in the packet")]
    AdaptationFieldTooLong(u8),
}

/// One parsed packet; `payload` borrows from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TsPacket<'a> {
    pub pid: u16,
    pub transport_error: bool,
    pub payload_unit_start: bool,
    /// `transport_scrambling_control != 0`.
    pub scrambled: bool,
    pub adaptation_field_present: bool,
    /// `adaptation_field_control` says a payload follows.
    pub has_payload: bool,
    pub continuity_counter: u8,
    pub discontinuity: bool,
    /// A decoder can start here (set by muxers on the first packet of a keyframe).
    pub random_access: bool,
    /// Program clock reference in 27 MHz ticks.
    pub pcr: Option<u64>,
    pub payload: &'a [u8],
}

impl<'a> TsPacket<'a> {
    /// Parses one packet. `bytes` must be exactly [`PACKET_SIZE`] long.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, PacketError> {
        let packet: &[u8; PACKET_SIZE] = bytes
            .try_into()
            .map_err(|_| PacketError::WrongLength(bytes.len()))?;
        if packet[0] != SYNC_BYTE {
            return Err(PacketError::NoSyncByte(packet[0]));
        }
        let control = (packet[3] >> 4) & 0b11;
        let adaptation_field_present = control & 0b10 != 0;
        let has_payload = control & 0b01 != 0;
        let mut parsed = TsPacket {
            pid: pid_of(packet),
            transport_error: packet[1] & 0x80 != 0,
            payload_unit_start: packet[1] & 0x40 != 0,
            scrambled: packet[3] & 0xC0 != 0,
            adaptation_field_present,
            has_payload,
            continuity_counter: packet[3] & 0x0F,
            discontinuity: false,
            random_access: false,
            pcr: None,
            payload: &[],
        };
        let mut payload_start = 4;
        if adaptation_field_present {
            let af_len = packet[4];
            // With a payload the field leaves room for at least one payload byte.
            let max_len = if has_payload { 182 } else { 183 };
            if usize::from(af_len) > max_len {
                return Err(PacketError::AdaptationFieldTooLong(af_len));
            }
            let af = &packet[5..5 + usize::from(af_len)];
            if let Some(&flags) = af.first() {
                parsed.discontinuity = flags & 0x80 != 0;
                parsed.random_access = flags & 0x40 != 0;
                if flags & 0x10 != 0 && af.len() >= 7 {
                    parsed.pcr = Some(decode_pcr(&af[1..7]));
                }
            }
            payload_start = 5 + usize::from(af_len);
        }
        if has_payload {
            parsed.payload = &packet[payload_start..];
        }
        Ok(parsed)
    }
}

/// The 13-bit PID of a packet (no checks beyond length; 0x1FFF if too short).
pub fn pid_of(packet: &[u8]) -> u16 {
    match packet {
        [_, b1, b2, ..] => (u16::from(*b1 & 0x1F) << 8) | u16::from(*b2),
        _ => PID_NULL,
    }
}

/// Decodes the 6-byte PCR field into 27 MHz ticks.
fn decode_pcr(field: &[u8]) -> u64 {
    let base = (u64::from(field[0]) << 25)
        | (u64::from(field[1]) << 17)
        | (u64::from(field[2]) << 9)
        | (u64::from(field[3]) << 1)
        | (u64::from(field[4]) >> 7);
    let ext = (u64::from(field[4] & 0x01) << 8) | u64::from(field[5]);
    base * 300 + ext
}

/// Encodes a 27 MHz PCR into the 6-byte field (base modulo 2^33).
pub fn encode_pcr(pcr_27mhz: u64) -> [u8; 6] {
    let base = (pcr_27mhz / 300) & ((1 << 33) - 1);
    let ext = pcr_27mhz % 300;
    [
        (base >> 25) as u8,
        (base >> 17) as u8,
        (base >> 9) as u8,
        (base >> 1) as u8,
        (((base & 1) << 7) as u8) | 0x7E | ((ext >> 8) as u8 & 1),
        ext as u8,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn packet(header: [u8; 4]) -> [u8; PACKET_SIZE] {
        let mut p = [0xFFu8; PACKET_SIZE];
        p[..4].copy_from_slice(&header);
        p
    }

    #[test]
    fn parses_header_fields() {
        let p = packet([0x47, 0x41, 0x00, 0x1A]);
        let t = TsPacket::parse(&p).unwrap();
        assert_eq!(t.pid, 0x100);
        assert!(t.payload_unit_start);
        assert!(!t.adaptation_field_present);
        assert!(t.has_payload);
        assert_eq!(t.continuity_counter, 0xA);
        assert_eq!(t.payload.len(), 184);
        assert!(!t.random_access);
    }

    #[test]
    fn parses_adaptation_field_with_rai_and_pcr() {
        let mut p = packet([0x47, 0x01, 0x00, 0x30]);
        p[4] = 7;
        p[5] = 0x50;
        p[6..12].copy_from_slice(&encode_pcr(27_000_000 * 3 + 123));
        let t = TsPacket::parse(&p).unwrap();
        assert!(t.adaptation_field_present && t.has_payload);
        assert!(t.random_access);
        assert_eq!(t.pcr, Some(27_000_000 * 3 + 123));
        assert_eq!(t.payload.len(), 184 - 8);
    }

    #[test]
    fn adaptation_only_packet_has_no_payload() {
        let mut p = packet([0x47, 0x01, 0x00, 0x20]);
        p[4] = 183;
        p[5] = 0x40;
        let t = TsPacket::parse(&p).unwrap();
        assert!(!t.has_payload && t.payload.is_empty() && t.random_access);
    }

    #[test]
    fn rejects_bad_packets() {
        assert_eq!(
            TsPacket::parse(&[0x47; 10]),
            Err(PacketError::WrongLength(10))
        );
        let p = packet([0x48, 0, 0, 0x10]);
        assert_eq!(TsPacket::parse(&p), Err(PacketError::NoSyncByte(0x48)));
        let mut p = packet([0x47, 0, 0, 0x30]);
        p[4] = 183;
        assert_eq!(
            TsPacket::parse(&p),
            Err(PacketError::AdaptationFieldTooLong(183))
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = TsPacket::parse(&bytes);
            let _ = pid_of(&bytes);
            if bytes.len() >= PACKET_SIZE {
                let mut p = bytes[..PACKET_SIZE].to_vec();
                p[0] = SYNC_BYTE;
                let _ = TsPacket::parse(&p);
            }
        }

        #[test]
        fn pcr_round_trips(pcr in 0u64..(1u64 << 33) * 300) {
            prop_assert_eq!(decode_pcr(&encode_pcr(pcr)), pcr);
        }
    }
}
